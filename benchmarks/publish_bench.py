"""Publishing on time, under load: the real `relais worker` and `relais cron` against a local
Mastodon fake that answers after 20 ms, as a distant instance would.

Run by hand (never part of the suite), from the repository root:

    .venv/bin/python benchmarks/publish_bench.py [--admin-url postgresql://postgres@127.0.0.1:5432/postgres]
    .venv/bin/python benchmarks/publish_bench.py --sqlite       # the embedded default instead

It creates its own PostgreSQL database and run-time role (as benchmarks/api_bench.py does, whose
setup it reuses), starts its own Redis, the fake instance (tests/fakes/mastodon.py) in this
process, and the processes `make run` starts besides the API: by default ONE `relais worker`
(with rq's scheduler) and one `relais cron` (`--workers N` for more). The agency, its brands and
the Mastodon accounts (one per brand and user of the fake) are made through the API in this
process (Flask's test client); each post is created and scheduled through the API too, so its
deliveries are the real ones (a batch due at one instant is scheduled a day ahead, then moved
to the instant in one statement: scheduling a thousand takes longer than the instant is away).
Then, in one run:

(c) overhead: N bare rq jobs that do nothing (`time.sleep(0)`), on the same Redis and worker,
    against N deliveries due at one instant with the fake's latency set to 0: the time each
    takes once the line is moving (last completion − first, over N − 1). Target ≤ 1.5×.
(a) steady: 100 deliveries due per minute for `--minutes` minutes, each post scheduled well
    ahead; lateness = the delivery's published_at − its scheduled_for (and the fake's own
    created_at − scheduled_for). p50 / p99 / max; target p99 ≤ 1 s. Early ones are counted:
    going out before the time is as wrong as going out late.
(b) burst: `--burst` deliveries (1,000) due at the same instant, spread over the accounts: the
    time from that instant until the last one is published. Target ≤ 15 s.

It prints the figures and the targets; it asserts nothing.
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from api_bench import drop_database, prepare_database, start_redis  # noqa: E402

TARGET_P99_SECONDS = 1.0
TARGET_BURST_SECONDS = 15.0
TARGET_OVERHEAD_RATIO = 1.5
LATENCY_SECONDS = 0.02
CREATE = "/api/v1/statuses"


@dataclass
class Bench:
    """What the measurements need: the app (for the API and reads), the fake, the tokens."""

    app: Any
    client: Any
    fake: Any
    token: str
    accounts: list[tuple[str, str]]  # (brand id, account id), round-robin targets
    redis_url: str
    counter: int = 0

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def call(self, method: str, path: str, body: dict | None = None, ok: int = 200) -> Any:
        response = self.client.open(path, method=method, json=body, headers=self.headers)
        if response.status_code != ok:
            raise SystemExit(f"{method} {path}: {response.status_code} {response.get_json()}")
        return response.get_json()

    def schedule(self, at: datetime) -> str:
        """One post to the next account (round robin), scheduled at `at`; its id."""
        brand_id, account_id = self.accounts[self.counter % len(self.accounts)]
        self.counter += 1
        text = f"Bench post {self.counter}: the bakery opens at nine"
        post = self.call(
            "POST", f"/v1/brands/{brand_id}/posts", {"text": text, "account_ids": [account_id]}, 201
        )
        self.call("POST", f"/v1/brands/{brand_id}/posts/{post['id']}/schedule", {"at": _iso(at)})
        return post["id"]


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def _now() -> datetime:
    return datetime.now(UTC)


# -- setting up --------------------------------------------------------------------------------


def bench_settings(app_url: str, redis_url: str, tmp: Path) -> dict[str, Any]:
    from cryptography.fernet import Fernet

    return {
        "DATABASE_URL": app_url,
        "REDIS_URL": redis_url,
        "MEDIA_ROOT": str(tmp / "media"),
        "MAIL_DIR": str(tmp / "mail"),
        "CREDENTIALS_ENCRYPTION_KEYS": [Fernet.generate_key().decode()],
    }


def bench_app(settings: dict[str, Any], owner_url: str) -> Any:
    from app import create_app
    from app.config import Config, config_as_dict

    app = create_app(
        {
            **config_as_dict(Config),
            **settings,
            "MIGRATION_DATABASE_URL": owner_url,
            "SECRET_KEY": secrets.token_urlsafe(48),
            "ACCESS_TOKEN_TTL_SECONDS": 6 * 3600,
            "ALLOW_PRIVATE_NETWORK_TARGETS": True,
            "NETWORK_TARGETS_LOOPBACK_ONLY": True,
        }
    )
    # A line per request of this script's own API calls would bury the figures.
    logging.getLogger("relais.access").setLevel(logging.WARNING)
    return app


def seed(app: Any, fake: Any, brands: int, users_per_brand: int, redis_url: str) -> Bench:
    """An agency and its owner (straight in the database, as api_bench does), then over the API
    `brands` brands without review, each with `users_per_brand` Mastodon accounts on the fake."""
    from app.auth.passwords import hash_password
    from app.extensions import db
    from app.models import User
    from app.services import audit, signup

    email, password = "publish-bench@relais.test", "bench-password-123"
    with app.app_context():
        owner = User(email=email, name="Bench", password_hash=hash_password(password))
        db.session.add(owner)
        db.session.flush()
        signup.create_agency("Publish Bench", owner, actor=audit.SYSTEM)
        db.session.commit()
    client = app.test_client()
    answer = client.post("/v1/auth/token", json={"email": email, "password": password})
    bench = Bench(app, client, fake, answer.get_json()["access_token"], [], redis_url)
    for b in range(brands):
        brand = bench.call(
            "POST", "/v1/brands", {"name": f"Brand {b:02d}", "approval_mode": "none"}, 201
        )
        for u in range(users_per_brand):
            account = bench.call(
                "POST",
                f"/v1/brands/{brand['id']}/accounts",
                {
                    "network": "mastodon",
                    "instance_url": fake.url,
                    "access_token": fake.token(f"b{b}u{u}"),
                },
                201,
            )
            bench.accounts.append((brand["id"], account["id"]))
    return bench


def start_processes(settings: dict[str, Any], tmp: Path, workers: int) -> Any:
    from tests.processes import RelaisProcesses, process_env

    processes = RelaisProcesses(process_env(settings, tmp), tmp)
    started = [processes.start_worker("bench") for _ in range(workers)]
    started.append(processes.start_cron("bench-cron"))
    for process in started:
        processes.wait_until_ready(process)
    return processes


# -- reading the outcome -----------------------------------------------------------------------


@dataclass
class Outcome:
    post_id: str
    status: str
    scheduled_for: datetime
    published_at: datetime | None
    text: str


def outcomes(app: Any, post_ids: Iterable[str]) -> list[Outcome]:
    """Each post's delivery as stored (read across the agency, as an operator would)."""
    from sqlalchemy import select

    from app import tenancy
    from app.extensions import db
    from app.models import Delivery, Post

    wanted = list(post_ids)
    found: list[Outcome] = []
    with app.app_context(), tenancy.system_scope():
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            rows = db.session.execute(
                select(
                    Delivery.post_id,
                    Delivery.status,
                    Delivery.scheduled_for,
                    Delivery.published_at,
                    Post.text,
                )
                .join(Post, Post.id == Delivery.post_id)
                .where(Delivery.post_id.in_(chunk))
            )
            found += [Outcome(*row) for row in rows]
        db.session.rollback()
    for outcome in found:  # SQLite hands naive UTC back
        outcome.scheduled_for = _aware(outcome.scheduled_for)
        outcome.published_at = _aware(outcome.published_at)
    return found


def _aware(moment: datetime | None) -> datetime | None:
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment


FINAL = {"published", "failed", "cancelled"}


def wait_for(bench: Bench, post_ids: list[str], seconds: float) -> list[Outcome]:
    deadline = time.monotonic() + seconds
    while True:
        found = outcomes(bench.app, post_ids)
        if len(found) == len(post_ids) and all(o.status in FINAL for o in found):
            return found
        if time.monotonic() > deadline:
            waiting = sum(o.status not in FINAL for o in found)
            print(f"  ! {waiting} of {len(post_ids)} deliveries not final after {seconds:.0f}s")
            return found
        time.sleep(1)


def fake_times(fake: Any) -> dict[str, datetime]:
    """When the fake made each status, by its text."""
    return {
        s["_text"]: datetime.fromisoformat(s["created_at"].replace("Z", "+00:00"))
        for s in list(fake.statuses.values())
    }


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def _schedule_ahead(
    bench: Bench, instants: list[datetime], ahead: float, on_done: Callable[[list[str]], None]
) -> threading.Thread:
    """Schedule a post at each instant, each at least `ahead` seconds before it is due (as
    people do), from a thread, so that scheduling goes on while earlier ones publish."""

    def run() -> None:
        ids = []
        for at in instants:
            wait = (at - _now()).total_seconds() - ahead
            if wait > 0:
                time.sleep(wait)
            ids.append(bench.schedule(at))
        on_done(ids)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


# -- the measurements --------------------------------------------------------------------------


def measure_noop(bench: Bench, count: int) -> float:
    """Seconds per bare rq job on the same worker, once the line moves."""
    import redis
    from rq import Queue
    from rq.job import Job
    from rq.serializers import JSONSerializer

    from app.queue import DEFAULT

    connection = redis.Redis.from_url(bench.redis_url)
    queue = Queue(DEFAULT, connection=connection, serializer=JSONSerializer)
    jobs = [queue.enqueue("time.sleep", 0, result_ttl=3600) for _ in range(count)]
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        fetched = Job.fetch_many([j.id for j in jobs], connection=connection)
        if all(j is not None and j.get_status().value in ("finished", "failed") for j in fetched):
            break
        time.sleep(0.5)
    ends = sorted(j.ended_at for j in fetched if j is not None and j.ended_at)
    connection.close()
    return (ends[-1] - ends[0]).total_seconds() / (len(ends) - 1)


def measure_overhead(bench: Bench, count: int) -> tuple[float, list[Outcome]]:
    """Seconds per delivery, the fake answering at once, once the line moves."""
    bench.fake.latency = 0.0
    _, ids = schedule_at_one_instant(bench, count)
    done = wait_for(bench, ids, 600)
    bench.fake.latency = LATENCY_SECONDS
    times = sorted(o.published_at for o in done if o.published_at)
    return (times[-1] - times[0]).total_seconds() / (len(times) - 1), done


def measure_steady(bench: Bench, per_minute: int, minutes: float) -> list[Outcome]:
    gap = 60.0 / per_minute
    count = round(per_minute * minutes)
    start = _now() + timedelta(seconds=20)
    instants = [start + timedelta(seconds=i * gap) for i in range(count)]
    scheduled: list[str] = []
    thread = _schedule_ahead(bench, instants, ahead=15, on_done=scheduled.extend)
    thread.join()
    return wait_for(bench, scheduled, 300)


def schedule_at_one_instant(bench: Bench, count: int) -> tuple[datetime, list[str]]:
    """`count` posts due at one instant, 10 s from when they are all scheduled. Each is
    created and scheduled through the API a day ahead (scheduling a thousand takes longer than
    the instant is away), then the whole batch is moved to the instant in one statement, as
    a reschedule would move each: the same columns, the deliveries still `scheduled`."""
    from sqlalchemy import update

    from app import tenancy
    from app.extensions import db
    from app.models import Delivery, Post

    far = _now() + timedelta(days=1)
    ids = [bench.schedule(far) for _ in range(count)]
    due = _now() + timedelta(seconds=10)
    with bench.app.app_context(), tenancy.system_scope():
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            db.session.execute(
                update(Delivery)
                .where(Delivery.post_id.in_(chunk), Delivery.status == "scheduled")
                .values(scheduled_for=due, next_attempt_at=due)
            )
            db.session.execute(update(Post).where(Post.id.in_(chunk)).values(scheduled_at=due))
        db.session.commit()
    print(f"  {count} posts scheduled, all due at {due:%H:%M:%S.%f}", flush=True)
    return due, ids


def measure_burst(bench: Bench, count: int) -> tuple[datetime, list[Outcome]]:
    due, ids = schedule_at_one_instant(bench, count)
    return due, wait_for(bench, ids, 600)


# -- reporting ---------------------------------------------------------------------------------


def lateness_report(name: str, done: list[Outcome], fake: Any) -> float:
    published = [o for o in done if o.published_at]
    late = [(o.published_at - o.scheduled_for).total_seconds() for o in published]
    made = fake_times(fake)
    at_fake = [(made[o.text] - o.scheduled_for).total_seconds() for o in done if o.text in made]
    not_out = len(done) - len(published)
    early = sum(1 for v in at_fake if v < 0)
    p99 = percentile(late, 99)
    print(f"{name}: {len(published)} published, {not_out} not")
    print(
        f"  lateness (published_at - scheduled_for): p50 {percentile(late, 50):.3f}s  "
        f"p99 {p99:.3f}s  max {max(late, default=float('nan')):.3f}s  "
        f"min {min(late, default=float('nan')):.3f}s   target p99 <= {TARGET_P99_SECONDS:.0f}s "
        f"{'OK' if p99 <= TARGET_P99_SECONDS else 'MISSED'}"
    )
    print(
        f"  at the network (fake's created_at - scheduled_for): p50 {percentile(at_fake, 50):.3f}s"
        f"  p99 {percentile(at_fake, 99):.3f}s  early: {early}"
    )
    return p99


def duplicates(fake: Any) -> int:
    texts = [s["_text"] for s in list(fake.statuses.values())]
    return len(texts) - len(set(texts))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--admin-url",
        default=os.environ.get("BENCH_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
        help="a PostgreSQL role allowed to create databases and roles",
    )
    parser.add_argument("--db", default="relais_publish_bench")
    parser.add_argument("--role", default="relais_publish_bench_app")
    parser.add_argument("--sqlite", action="store_true", help="the embedded default instead")
    parser.add_argument(
        "--workers", type=int, default=1, help="relais worker processes (make run starts one)"
    )
    parser.add_argument("--brands", type=int, default=20)
    parser.add_argument("--users", type=int, default=5, help="Mastodon accounts per brand")
    parser.add_argument("--per-minute", type=int, default=100)
    parser.add_argument("--minutes", type=float, default=3)
    parser.add_argument("--burst", type=int, default=1000)
    parser.add_argument("--overhead-count", type=int, default=300)
    parser.add_argument(
        "--only", choices=["overhead", "steady", "burst"], action="append", help="repeatable"
    )
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    opts = parser.parse_args()
    wanted = set(opts.only or ["overhead", "steady", "burst"])
    # Stopped from outside (`timeout`, a SIGTERM): still stop the processes it started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    from tests.fakes.mastodon import FakeMastodonNetwork

    children: list[subprocess.Popen] = []
    processes = None
    fake = FakeMastodonNetwork().start()
    fake.latency = LATENCY_SECONDS
    with tempfile.TemporaryDirectory(prefix="relais-publish-bench-") as tmp_name:
        tmp = Path(tmp_name)
        try:
            if opts.sqlite:
                from app import migrations

                owner_url = app_url = f"sqlite:///{tmp / 'bench.db'}"
                migrations.upgrade(owner_url)
                print("database: SQLite file (the embedded default)", flush=True)
            else:
                print(f"database {opts.db} (run-time role {opts.role}), migrating…", flush=True)
                owner_url, app_url = prepare_database(opts.admin_url, opts.db, opts.role)
            redis_proc, redis_url = start_redis(tmp)
            children.append(redis_proc)
            settings = bench_settings(app_url, redis_url, tmp)
            app = bench_app(settings, owner_url)
            bench = seed(app, fake, opts.brands, opts.users, redis_url)
            print(
                f"{len(bench.accounts)} Mastodon accounts in {opts.brands} brands; fake instance "
                f"at {fake.url}, {LATENCY_SECONDS * 1000:.0f} ms per request",
                flush=True,
            )
            processes = start_processes(settings, tmp, opts.workers)
            print(
                f"processes: {opts.workers} × relais worker (with rq's scheduler), 1 × relais "
                f"cron; {os.cpu_count()} CPUs shared with the database, Redis, the fake and "
                "this script\n",
                flush=True,
            )
            figures: dict[str, str] = {}
            if "overhead" in wanted:
                print(
                    f"(c) overhead: {opts.overhead_count} bare rq jobs, then as many deliveries "
                    "(fake latency 0)…",
                    flush=True,
                )
                noop = measure_noop(bench, opts.overhead_count)
                print(f"  bare rq job: {noop * 1000:.1f} ms each", flush=True)
                per_delivery, done = measure_overhead(bench, opts.overhead_count)
                ratio = per_delivery / noop
                figures["overhead"] = (
                    f"{per_delivery * 1000:.1f} ms per delivery vs {noop * 1000:.1f} ms per "
                    f"bare rq job: {ratio:.2f}x (target <= {TARGET_OVERHEAD_RATIO}x "
                    f"{'OK' if ratio <= TARGET_OVERHEAD_RATIO else 'MISSED'})"
                )
                print("  " + figures["overhead"], flush=True)
            if "steady" in wanted:
                print(
                    f"(a) steady: {opts.per_minute} due per minute for {opts.minutes:g} min…",
                    flush=True,
                )
                done = measure_steady(bench, opts.per_minute, opts.minutes)
                p99 = lateness_report("  steady", done, fake)
                figures["steady"] = f"p99 lateness {p99:.3f}s"
            if "burst" in wanted:
                print(f"(b) burst: {opts.burst} due at the same instant…", flush=True)
                due, done = measure_burst(bench, opts.burst)
                times = sorted(o.published_at for o in done if o.published_at)
                if times:
                    last = (times[-1] - due).total_seconds()
                    first = (times[0] - due).total_seconds()
                    figures["burst"] = (
                        f"{len(times)} of {len(done)} published; first {first:.2f}s, last "
                        f"{last:.2f}s after the instant (target <= {TARGET_BURST_SECONDS:.0f}s "
                        f"{'OK' if last <= TARGET_BURST_SECONDS else 'MISSED'})"
                    )
                else:
                    figures["burst"] = "nothing published"
                print("  " + figures["burst"], flush=True)
            print(f"\nduplicates on the fake: {duplicates(fake)}; posts made: {fake.posts_made}")
            print("\nsummary")
            for name, line in figures.items():
                print(f"  {name}: {line}")
        finally:
            if processes is not None:
                processes.stop_all()
            for proc in reversed(children):
                if proc.poll() is None:
                    proc.terminate()
                    proc.wait(timeout=30)
            fake.stop()
            if not opts.sqlite and not opts.keep:
                drop_database(opts.admin_url, opts.db)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
