"""Bulk import of posts from CSV: every row is checked first, then all are created or none.

The format (also in the API description):

- UTF-8 (a BOM is accepted), comma-separated, a header row, RFC 4180 quoting;
- `text` (required): the post's text;
- `accounts` (required): ids of the brand's social accounts, separated by spaces or `;`;
- `time` (optional): RFC 3339 with an offset, in the future; empty adds the post to the queue
  (the brand's next free posting slot, one after the other in file order);
- `labels` (optional): labels separated by `;`.

Rows are numbered as a spreadsheet shows them: the header is row 1, the first post row 2.
In a brand whose approval mode is not `none`, posts cannot be scheduled before approval: rows are
imported as drafts, and a row with a `time` is an error.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import marshmallow as ma

from app import tenancy
from app.errors import PayloadTooLarge, ValidationFailed
from app.extensions import db
from app.fields import Name, Text, Timestamp
from app.models import (
    ApprovalMode,
    Brand,
    Post,
    PostLabel,
    PostStatus,
    PostVariant,
    SocialAccount,
)
from app.models.base import utcnow
from app.models.post import MAX_TEXT
from app.services import audit, content_rules, deliveries, posting_slots, slot_times

MAX_BYTES = 1024 * 1024
MAX_ROWS = 1000
MAX_LABEL = 100
MAX_LABELS = 50
COLUMNS = ("text", "accounts", "time", "labels")
REQUIRED = ("text", "accounts")
# Enough to show what is wrong without an answer as large as the file.
MAX_REPORTED_ERRORS = 200

_text_field = Text(min_len=0, max_len=MAX_TEXT)
_time_field = Timestamp()
_label_field = Name(max_len=MAX_LABEL)


@dataclass
class Row:
    number: int
    text: str = ""
    account_ids: list[str] = field(default_factory=list)
    at: datetime | None = None
    labels: list[str] = field(default_factory=list)
    # An empty time cell: the row goes to the queue.
    queued: bool = False


class _Errors:
    def __init__(self) -> None:
        self.by_key: dict[str, list[str]] = {}
        self.count = 0

    def add(self, row: int, column: str, message: str) -> None:
        self.count += 1
        if len(self.by_key) < MAX_REPORTED_ERRORS:
            self.by_key.setdefault(f"rows.{row}.{column}", []).append(message)


def too_large() -> PayloadTooLarge:
    return PayloadTooLarge(
        f"The CSV is larger than {MAX_BYTES // 1024} KiB; split it into several imports.",
        errors={"file": [f"At most {MAX_BYTES} bytes."]},
    )


def decode(raw: bytes) -> str:
    if len(raw) > MAX_BYTES:
        raise too_large()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValidationFailed(
            "The CSV is not UTF-8 text.", errors={"file": ["Save the file as UTF-8 CSV."]}
        ) from exc


def _read_rows(content: str) -> tuple[list[str], list[list[str]]]:
    if "\x00" in content:
        raise ValidationFailed("The CSV contains NUL bytes.", errors={"file": ["Not a text file."]})
    try:
        records = list(csv.reader(io.StringIO(content, newline="")))
    except csv.Error as exc:
        raise ValidationFailed(
            f"The CSV cannot be read: {exc}.", errors={"file": ["Malformed CSV."]}
        ) from exc
    records = [r for r in records if any(cell.strip() for cell in r)] if records else []
    if not records:
        raise ValidationFailed(
            "The CSV is empty; it needs a header row (text,accounts,time,labels) and posts.",
            errors={"file": ["Empty."]},
        )
    header = [cell.strip().lower() for cell in records[0]]
    problems = []
    unknown = [h for h in header if h not in COLUMNS]
    if unknown:
        problems.append(f"Unknown columns {unknown}; the columns are {list(COLUMNS)}.")
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        problems.append(f"Missing columns {missing}.")
    if len(set(header)) != len(header):
        problems.append("A column appears twice.")
    if problems:
        raise ValidationFailed(" ".join(problems), errors={"rows.1": problems})
    body = records[1:]
    if not body:
        raise ValidationFailed("The CSV has a header but no posts.", errors={"file": ["No rows."]})
    if len(body) > MAX_ROWS:
        raise ValidationFailed(
            f"At most {MAX_ROWS} posts per import; this file has {len(body)}.",
            errors={"file": [f"At most {MAX_ROWS} rows."]},
        )
    return header, body


def _field(field_: ma.fields.Field, value: str) -> Any:
    return field_.deserialize(value)


def parse(content: str, brand: Brand) -> tuple[list[Row], list[datetime]]:
    """Check every row; raise one 422 listing every problem (`rows.<row>.<column>`).

    Returns the rows and the queue instants the queued rows take, in file order.
    """
    header, body = _read_rows(content)
    accounts = {
        a.id: a
        for a in db.session.scalars(
            tenancy.scoped_select(SocialAccount).where(SocialAccount.brand_id == brand.id)
        )
    }
    needs_approval = brand.approval_mode != ApprovalMode.NONE.value
    now = utcnow()
    errors = _Errors()
    rows: list[Row] = []
    for offset, record in enumerate(body):
        number = offset + 2
        if len(record) > len(header):
            errors.add(number, "row", f"{len(record)} cells for {len(header)} columns.")
            continue
        cells = dict(zip(header, record + [""] * (len(header) - len(record)), strict=True))
        row = Row(number)
        try:
            row.text = _field(_text_field, cells["text"])
        except ma.ValidationError as exc:
            errors.add(number, "text", " ".join(exc.messages))
        ids = [i for i in re.split(r"[\s;]+", cells["accounts"].strip()) if i]
        if not ids:
            errors.add(number, "accounts", "Give at least one account id.")
        for account_id in ids:
            if account_id not in accounts:
                errors.add(number, "accounts", f"No account '{account_id[:64]}' in this brand.")
            elif account_id not in row.account_ids:
                row.account_ids.append(account_id)
        time_cell = cells.get("time", "").strip()
        row.queued = not time_cell
        if time_cell:
            if needs_approval:
                errors.add(
                    number,
                    "time",
                    f"This brand's approval mode is '{brand.approval_mode}': posts are imported "
                    "as drafts to approve first; leave time empty.",
                )
            else:
                try:
                    row.at = _field(_time_field, time_cell)
                except ma.ValidationError as exc:
                    errors.add(number, "time", " ".join(exc.messages))
                else:
                    if row.at <= now:
                        errors.add(number, "time", f"{time_cell} is in the past.")
        for label in (p for p in cells.get("labels", "").split(";") if p.strip()):
            try:
                value = _field(_label_field, label)
            except ma.ValidationError as exc:
                errors.add(number, "labels", f"'{label[:40]}': " + " ".join(exc.messages))
            else:
                if value not in row.labels:
                    row.labels.append(value)
        if len(row.labels) > MAX_LABELS:
            errors.add(number, "labels", f"At most {MAX_LABELS} labels.")
        for account_id in row.account_ids:
            account = accounts[account_id]
            for violation in content_rules.validate_post(row.text, [], account):
                errors.add(number, violation.field, f"account {account_id}: {violation.message}")
        rows.append(row)
    queue = [] if needs_approval else _queue_instants(brand, rows, errors)
    if errors.count:
        raise ValidationFailed(
            f"{errors.count} problem(s) in the CSV; nothing was imported. "
            "Rows are numbered with the header as row 1.",
            errors=errors.by_key,
        )
    return rows, queue


def import_posts(
    brand: Brand, content: str, *, user_id: str | None, actor: audit.Actor
) -> list[dict[str, Any]]:
    """Validate every row, then create (and schedule or queue) them all in one transaction."""
    if brand.approval_mode == ApprovalMode.NONE.value:
        posting_slots.hold_queue(brand)  # the queued rows' slots are read in parse
    rows, queue_instants = parse(content, brand)
    schedule = brand.approval_mode == ApprovalMode.NONE.value
    created: list[dict[str, Any]] = []
    try:
        for row in rows:
            post = Post(
                agency_id=brand.agency_id,
                brand_id=brand.id,
                text=row.text,
                status=PostStatus.DRAFT.value,
                created_by_user_id=user_id,
                variants=[
                    PostVariant(agency_id=brand.agency_id, brand_id=brand.id, account_id=a)
                    for a in row.account_ids
                ],
                label_rows=[
                    PostLabel(agency_id=brand.agency_id, brand_id=brand.id, label=label)
                    for label in sorted(row.labels)
                ],
            )
            db.session.add(post)
            db.session.flush()
            if schedule:
                at = row.at or queue_instants.pop(0)
                deliveries.plan_deliveries(post, at, actor=actor)
            created.append({"row": row.number, "post": post})
        audit.record(
            "posts.imported",
            actor=actor,
            agency_id=brand.agency_id,
            brand_id=brand.id,
            target_type="brand",
            target_id=brand.id,
            data={"count": len(created)},
        )
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    return created


def _queue_instants(brand: Brand, rows: list[Row], errors: _Errors) -> list[datetime]:
    """The free slots the queued rows take, in file order (an error on each row left over)."""
    wanted = [row for row in rows if row.queued]
    if not wanted:
        return []
    weekly = posting_slots.weekly_slots(brand)
    now = utcnow()
    taken = posting_slots.taken_instants(brand, now) | {r.at for r in rows if r.at}
    free = slot_times.next_free_slots(
        weekly,
        brand.timezone,
        now,
        taken=taken,
        count=len(wanted),
        horizon=slot_times.DEFAULT_HORIZON,
    )
    if len(free) < len(wanted):
        reason = (
            "the brand has no posting slots"
            if not weekly
            else f"only {len(free)} free slot(s) in the coming year"
        )
        for row in wanted[len(free) :]:
            errors.add(row.number, "time", f"Empty time means the queue, but {reason}.")
    return free
