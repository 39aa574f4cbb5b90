"""Weekly posting slots turned into instants, in the brand's IANA time zone (pure: no database).

A brand defines slots as a weekday and a local wall-clock time ("Monday 09:00"). This module
turns them into UTC instants with `zoneinfo`, so a 09:00 slot stays 09:00 local on both sides of
a DST change (its UTC instant moves by the DST offset instead).

Two local times need a rule, because DST makes the local clock skip or repeat an hour:

- **Skipped times** (spring forward: 02:30 does not exist on 2026-03-29 in Europe/Paris nor on
  2026-03-08 in America/New_York): the slot moves forward to the first valid local time after the
  gap, which is the transition instant itself (03:00 local in both zones). It still fires once that
  day, as close as possible to the time asked for, and never on the day before.
- **Repeated times** (fall back: 02:30 happens twice on 2026-10-25 in Paris, 01:30 twice on
  2026-11-01 in New York): the slot fires at the FIRST occurrence (PEP 495 `fold=0`, the
  daylight-saving offset) and never twice.

Two slots that land on the same instant (02:30 moved to 03:00 next to a 03:00 slot) count as one.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from app.models.post import WEEKDAYS

# How far ahead `next_free_slots` looks before giving up (every slot taken for a year and more).
DEFAULT_HORIZON = timedelta(days=366)


@dataclass(frozen=True, order=True)
class WeeklySlot:
    """One weekly slot: `weekday` 0 = Monday … 6 = Sunday, `local_time` on the brand's clock."""

    weekday: int
    local_time: time

    def __post_init__(self) -> None:
        if not 0 <= self.weekday <= 6:
            raise ValueError(f"weekday must be 0 (Monday) to 6 (Sunday), not {self.weekday}")
        if self.local_time.tzinfo is not None:
            raise ValueError("a weekly slot's time is a local wall-clock time, without offset")

    @property
    def weekday_name(self) -> str:
        return WEEKDAYS[self.weekday]


def resolve_local(day: date, wall: time, zone: ZoneInfo) -> datetime:
    """The instant (aware, UTC) at which the local clock of `zone` shows `wall` on `day`.

    Skipped times move to the end of the gap; repeated times take their first occurrence
    (the rules in the module docstring).
    """
    local = datetime.combine(day, wall.replace(fold=0), tzinfo=zone)
    instant = local.astimezone(UTC)
    if _wall(instant.astimezone(zone)) == _wall(local):
        return instant  # exists (fold=0 already picked the first of two occurrences)
    return _gap_end(local, zone)


def _wall(value: datetime) -> datetime:
    return value.replace(tzinfo=None, fold=0)


def _gap_end(local: datetime, zone: ZoneInfo) -> datetime:
    """The transition instant of the gap `local` falls into: the first valid local time after it.

    With fold=0 a skipped time reads with the offset before the change, with fold=1 with the
    offset after it, so the two readings bracket the transition; a search on whole seconds finds
    it (gaps are at most a few hours, so about 15 steps).
    """
    first = local.replace(fold=0).astimezone(UTC)
    second = local.replace(fold=1).astimezone(UTC)
    lo, hi = min(first, second), max(first, second)
    offset_after = hi.astimezone(zone).utcoffset()
    # Invariant: the offset at lo is the one before the change, at hi the one after.
    while hi - lo > timedelta(seconds=1):
        mid = lo + (hi - lo) / 2
        mid = mid.replace(microsecond=0)
        if mid.astimezone(zone).utcoffset() == offset_after:
            hi = mid
        else:
            lo = mid
    return hi


def _instants_on(day: date, slots: Iterable[WeeklySlot], zone: ZoneInfo) -> list[datetime]:
    weekday = day.weekday()
    instants = {resolve_local(day, s.local_time, zone) for s in slots if s.weekday == weekday}
    return sorted(instants)


def iter_slot_instants(
    slots: Iterable[WeeklySlot], zone: ZoneInfo | str, start: datetime
) -> Iterator[datetime]:
    """Every slot instant at or after `start` (aware), in order, without end (empty if no slot)."""
    zone = _zone(zone)
    _require_aware(start)
    slots = tuple(slots)
    if not slots:
        return
    # Begin a day early: a slot on the previous local date can still be at or after `start`
    # once offsets are taken into account (e.g. late-evening slots east of UTC).
    day = start.astimezone(zone).date() - timedelta(days=1)
    while True:
        for instant in _instants_on(day, slots, zone):
            if instant >= start:
                yield instant
        day += timedelta(days=1)


def slots_between(
    slots: Iterable[WeeklySlot], zone: ZoneInfo | str, start: datetime, end: datetime
) -> list[datetime]:
    """Slot instants in [start, end), in order, each once."""
    _require_aware(end)
    found: list[datetime] = []
    for instant in iter_slot_instants(slots, zone, start):
        if instant >= end:
            break
        found.append(instant)
    return found


def next_free_slots(
    slots: Iterable[WeeklySlot],
    zone: ZoneInfo | str,
    after: datetime,
    *,
    taken: Iterable[datetime] = (),
    count: int = 1,
    horizon: timedelta = DEFAULT_HORIZON,
) -> list[datetime]:
    """The next `count` slot instants strictly after `after` that are not in `taken`.

    Fewer (possibly none) are returned when there are no slots or all are taken up to `horizon`.
    """
    _require_aware(after)
    busy = {t.astimezone(UTC) for t in taken}
    limit = after + horizon
    found: list[datetime] = []
    for instant in iter_slot_instants(slots, zone, after):
        if instant > limit or len(found) >= count:
            break
        if instant > after and instant not in busy:
            found.append(instant)
    return found


def local_view(instant: datetime, zone: ZoneInfo | str) -> datetime:
    """`instant` on the brand's clock, with the offset in force then."""
    return instant.astimezone(_zone(zone))


def _zone(zone: ZoneInfo | str) -> ZoneInfo:
    return zone if isinstance(zone, ZoneInfo) else ZoneInfo(zone)


def _require_aware(value: datetime) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("instants must be timezone-aware")
