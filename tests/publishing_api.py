"""The publishing pipeline seen from outside, for the tests that run it in real processes
(tests/test_publishing_faults.py, tests/test_publishing_crashes.py): a brand's accounts, posts
and deliveries through the API, the networks' own count of what they hold, and the processes
started with settings short enough for a test.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.queue import ALL_QUEUES, MAIL
from tests.fakes.http_server import FakeServer, Request, Response
from tests.fakes.mastodon import FakeMastodonNetwork
from tests.peers.bluesky_pds import BlueskyPds, PdsAccount
from tests.processes import RelaisProcesses, process_env, wait_until

# The processes give up on a network answer after this long (NETWORK_HTTP_TIMEOUT_SECONDS).
NETWORK_TIMEOUT = 3
# Settings that make the pipeline's waits short enough for a test (app/config.py): a claimed
# delivery that does not progress (its job lost with Redis, its worker killed) is looked at
# after a few seconds, a transient failure is retried after a second or a few rather than
# minutes, and an unknown outcome is reconciled soon.
FAST_PIPELINE = {
    "NETWORK_HTTP_TIMEOUT_SECONDS": str(NETWORK_TIMEOUT),
    "PUBLISH_LEASE_SECONDS": "5",
    "PUBLISH_RETRY_BASE_SECONDS": "1",
    "PUBLISH_RETRY_MAX_SECONDS": "4",
    "PUBLISH_RECONCILE_DELAY_SECONDS": "2",
}
# Every queue but mail: the test process sends its own mail (tests/mail.py works the mail queue
# to read a sign-up's confirmation), and a worker taking it first would race it.
WORKER_QUEUES = tuple(name for name in ALL_QUEUES if name != MAIL)
# How long a test waits for its batch to end, however busy the machine.
SETTLE_SECONDS = 240
FINAL_POST_STATUSES = {"published", "partially_published", "failed", "cancelled"}
FINAL_DELIVERY_STATUSES = {"published", "failed", "cancelled"}
MASTODON_CREATE = "/api/v1/statuses"
BLUESKY_CREATE = "/xrpc/com.atproto.repo.createRecord"


# -- networks ----------------------------------------------------------------------------------


def start_pds_or_none() -> BlueskyPds | None:
    """The real PDS, or None (and the reason printed) where it cannot run: the tests then do
    their Mastodon part only."""
    try:
        return BlueskyPds.start_or_skip()
    except pytest.skip.Exception as exc:
        print(f"\n[faults] the Bluesky part of these tests is skipped: {exc}")
        return None


def bluesky_or_skip(pds: BlueskyPds | None) -> BlueskyPds:
    if pds is None:
        pytest.skip("the real Bluesky PDS cannot run here (see the reason printed above)")
    return pds


def posts_in_repo(pds_url: str, did: str) -> list[dict[str, Any]]:
    """Every post record in the repository, read from the PDS itself (listRecords)."""
    records: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"repo": did, "collection": "app.bsky.feed.post", "limit": 100}
        if cursor:
            params["cursor"] = cursor
        page = httpx.get(f"{pds_url}/xrpc/com.atproto.repo.listRecords", params=params).json()
        records += page["records"]
        cursor = page.get("cursor")
        if not cursor or not page["records"]:
            return records


def record_arrivals(fake: FakeServer) -> list[tuple[float, str]]:
    """(monotonic time, path) of each request as it reaches `fake`, before any fault."""
    arrivals: list[tuple[float, str]] = []
    dispatch = fake.dispatch

    def recording(request: Request) -> Response:
        arrivals.append((time.monotonic(), request.path))
        return dispatch(request)

    fake.dispatch = recording  # type: ignore[method-assign]
    return arrivals


# -- one brand, through the API ----------------------------------------------------------------


@dataclass
class Brand:
    """An agency's brand seen through the API: its accounts, its posts, their deliveries."""

    client: Any
    owner: Any
    id: str
    texts: dict[str, str] = field(default_factory=dict)  # post id -> text

    @property
    def base(self) -> str:
        return f"/v1/brands/{self.id}"

    @staticmethod
    def _ok(response: Any, *codes: int) -> Any:
        assert response.status_code in (codes or (200,)), response.get_json()
        return response.get_json()

    def connect_mastodon(self, fake: FakeMastodonNetwork, user: str = "alice") -> str:
        body = {"network": "mastodon", "instance_url": fake.url, "access_token": fake.token(user)}
        created = self.client.post(f"{self.base}/accounts", json=body, headers=self.owner.headers)
        return self._ok(created, 201)["id"]

    def connect_bluesky(self, pds_url: str, person: PdsAccount) -> str:
        body = {
            "network": "bluesky",
            "handle": person.handle,
            "app_password": person.app_password,
            "pds_url": pds_url,
        }
        created = self.client.post(f"{self.base}/accounts", json=body, headers=self.owner.headers)
        return self._ok(created, 201)["id"]

    def schedule(self, text: str, at: datetime, account_ids: list[str]) -> str:
        """A post to `account_ids`, scheduled at `at`; returns its id."""
        headers = self.owner.headers
        body = {"text": text, "account_ids": account_ids}
        post = self._ok(self.client.post(f"{self.base}/posts", json=body, headers=headers), 201)
        url = f"{self.base}/posts/{post['id']}/schedule"
        self._ok(self.client.post(url, json={"at": at.isoformat()}, headers=headers))
        self.texts[post["id"]] = text
        return post["id"]

    def schedule_batch(
        self, count: int, first_at: datetime, account_ids: list[str], spread: float = 0.0
    ) -> list[str]:
        """`count` posts of distinct texts, the i-th due `i * spread` seconds after the first."""
        tag = uuid.uuid4().hex[:8]
        return [
            self.schedule(
                f"Batch {tag} post {i}: fresh bread at noon",
                first_at + timedelta(seconds=i * spread),
                account_ids,
            )
            for i in range(count)
        ]

    def post_statuses(self) -> dict[str, str]:
        statuses: dict[str, str] = {}
        cursor = None
        while True:
            query: dict[str, Any] = {"limit": 100} | ({"cursor": cursor} if cursor else {})
            url = f"{self.base}/posts"
            page = self._ok(self.client.get(url, query_string=query, headers=self.owner.headers))
            statuses.update({p["id"]: p["status"] for p in page["items"]})
            cursor = page["next_cursor"]
            if not cursor:
                return statuses

    def deliveries(self, post_id: str) -> list[dict[str, Any]]:
        url = f"{self.base}/posts/{post_id}/deliveries"
        return self._ok(self.client.get(url, headers=self.owner.headers))["items"]

    def delivery(self, post_id: str) -> dict[str, Any]:
        [only] = self.deliveries(post_id)
        return only

    def all_deliveries(self) -> list[dict[str, Any]]:
        return [d for post_id in self.texts for d in self.deliveries(post_id)]

    def wait_until_final(
        self, processes: RelaisProcesses, seconds: float = SETTLE_SECONDS
    ) -> dict[str, str]:
        """Every post of this brand in a final status (else the processes' logs)."""
        statuses: dict[str, str] = {}

        def final() -> bool:
            statuses.update(self.post_statuses())
            return all(statuses.get(p) in FINAL_POST_STATUSES for p in self.texts)

        try:
            wait_until(final, "every post reaching a final status", seconds, every=0.5)
        except AssertionError as exc:
            waiting = [p for p in self.texts if statuses.get(p) not in FINAL_POST_STATUSES]
            stuck = [
                {k: d[k] for k in ("id", "status", "attempts", "next_attempt_at", "attempt_log")}
                for p in waiting
                for d in self.deliveries(p)
                if d["status"] not in FINAL_DELIVERY_STATUSES
            ]
            about = [line for d in stuck for line in processes.lines_about(d["id"])]
            raise AssertionError(
                f"{exc}; {len(waiting)} posts still waiting, deliveries: {stuck}\n"
                + "\n".join(about[-40:])
                + f"\n{processes.logs()}"
            ) from None
        return statuses


def attempt_path(delivery: dict[str, Any]) -> list[tuple[str, str, int | None]]:
    """The delivery's tries as (action, outcome, the network's HTTP status), oldest first."""
    return [(a["action"], a["outcome"], a["status_code"]) for a in delivery["attempt_log"]]


def soon(seconds: float) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


def new_brand(client: Any, make_agency: Any) -> Brand:
    """A brand of a new agency that schedules without review."""
    owner = make_agency("Faults", approval_mode="none")
    return Brand(client, owner, owner.brands[0])


def assert_published_once_on_mastodon(
    brand: Brand, fake: FakeMastodonNetwork, account_id: str
) -> None:
    """One status per post on the fake, with the post's text, and each delivery naming it."""
    made = {s["id"]: s["_text"] for s in fake.statuses.values()}
    assert fake.posts_made == len(brand.texts), (fake.posts_made, len(brand.texts))
    assert sorted(made.values()) == sorted(brand.texts.values())
    for post_id, text in brand.texts.items():
        [delivery] = [d for d in brand.deliveries(post_id) if d["account_id"] == account_id]
        assert delivery["status"] == "published", delivery
        assert made.get(delivery["external_id"]) == text, delivery


def assert_published_once_on_bluesky(brand: Brand, pds_url: str, did: str, account_id: str) -> None:
    """One record per post in the PDS repository, and each delivery naming its own."""
    records = posts_in_repo(pds_url, did)
    texts = sorted(r["value"]["text"] for r in records)
    assert texts == sorted(brand.texts.values()), (len(texts), len(brand.texts))
    by_uri = {r["uri"]: r["value"]["text"] for r in records}
    for post_id, text in brand.texts.items():
        [delivery] = [d for d in brand.deliveries(post_id) if d["account_id"] == account_id]
        assert delivery["status"] == "published", delivery
        assert by_uri.get(delivery["external_id"]) == text, delivery


@dataclass
class Targets:
    """A brand with a Mastodon account (and a Bluesky one where the PDS runs), and how to
    count what each network holds."""

    brand: Brand
    mastodon: FakeMastodonNetwork
    mastodon_account: str
    pds: BlueskyPds | None = None
    person: PdsAccount | None = None
    bluesky_account: str | None = None

    @property
    def account_ids(self) -> list[str]:
        return [a for a in (self.mastodon_account, self.bluesky_account) if a]

    def assert_each_published_once(self) -> None:
        statuses = self.brand.post_statuses()
        assert {statuses[p] for p in self.brand.texts} == {"published"}, statuses
        deliveries = self.brand.all_deliveries()
        assert len(deliveries) == len(self.brand.texts) * len(self.account_ids)
        assert {d["status"] for d in deliveries} == {"published"}
        assert_published_once_on_mastodon(self.brand, self.mastodon, self.mastodon_account)
        if self.pds is not None:
            assert self.person is not None and self.bluesky_account is not None
            assert_published_once_on_bluesky(
                self.brand, self.pds.url, self.person.did, self.bluesky_account
            )


def targets(
    client: Any, make_agency: Any, mastodon: FakeMastodonNetwork, pds: BlueskyPds | None
) -> Targets:
    brand = new_brand(client, make_agency)
    found = Targets(brand, mastodon, brand.connect_mastodon(mastodon))
    if pds is not None:
        found.pds = pds
        found.person = pds.create_account(f"b{uuid.uuid4().hex[:8]}")
        found.bluesky_account = brand.connect_bluesky(pds.url, found.person)
    return found


# -- processes ---------------------------------------------------------------------------------


def start_processes(
    app_config: Mapping[str, Any], workdir: Path, *, workers: int = 1, crons: int = 1
) -> RelaisProcesses:
    """`workers` × `relais worker` and `crons` × `relais cron` of the test app's deployment,
    with FAST_PIPELINE, each ready (a worker registered, a cron leading or standing by)."""
    processes = RelaisProcesses(process_env(app_config, workdir, **FAST_PIPELINE), workdir)
    try:
        started = [processes.start_worker(f"w{i}", queues=WORKER_QUEUES) for i in range(workers)]
        started += [processes.start_cron(f"cron{i}") for i in range(crons)]
        for process in started:
            processes.wait_until_ready(process)
    except BaseException:
        processes.stop_all()
        raise
    return processes
