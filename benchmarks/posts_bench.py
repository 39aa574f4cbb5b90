"""Listing one brand's posts: does it stay as fast when the database grows 100-fold?

Run by hand on PostgreSQL (not part of the suite):

    .venv/bin/python benchmarks/posts_bench.py [--admin-url postgresql://postgres@127.0.0.1:5432/postgres]

What it does:

1. Makes two fresh databases, `relais_bench_10k` and `relais_bench_1m`, migrated by the owner,
   with the app connected as a run-time role that is neither owner nor superuser, so Row-Level
   Security applies as in production. In each, an agency signs up through the API; its first
   brand is the one measured.
2. "10k": 10,000 posts over 10 brands (1,000 each, one agency). "1M": 1,000,000 posts over
   1,000 brands (1,000 each, 10 brands per agency). The measured brand has 1,000 posts in both:
   what grows is everyone else's data, which must not slow it down. Rows are bulk-loaded with
   `INSERT … SELECT … generate_series` (each post with one variant and one or two labels; ids
   interleave across brands as they would over time), then `VACUUM ANALYZE`.
3. Calls `GET /v1/brands/{id}/posts` through the in-process test client (auth, RLS, query,
   serialisation, JSON) for five list shapes: no filter, status, status + label, a
   scheduled-time window, and a second page by cursor. The two sizes are called in turn, call
   by call, so the noise of a shared machine falls on both alike.
4. Prints p50/p99 per shape and overall, the p99 ratio 1M/10k (target: at most 1.3), and
   EXPLAIN ANALYZE of each list query at both sizes.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import create_engine, event, text
from sqlalchemy.pool import NullPool

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app import create_app, migrations  # noqa: E402
from app.config import TestConfig, config_as_dict  # noqa: E402

DB_PREFIX = "relais_bench"
EMAIL = "bench@example.com"
PASSWORD = "benchmark password 123"
TARGET = 1.3
APP_ROLE = "relais_bench_app"
POSTS_PER_BRAND = 1000
BRANDS_PER_AGENCY = 10
DEFAULT_BRANDS = "10,1000"  # 10k and 1M posts


def _size_label(posts: int) -> str:
    return f"{posts // 1_000_000}M" if posts >= 1_000_000 else f"{posts // 1000}k"


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


# -- database ------------------------------------------------------------------------------------


def prepare_database(admin_url: str, db_name: str) -> tuple[str, str]:
    return migrations.create_fresh_database(admin_url, db_name, APP_ROLE)


def _hex_id(prefix: str, number_sql: str) -> str:
    """SQL for a well-formed id: the prefix, "01J" and 23 upper-case hex digits (all valid
    Crockford base-32 characters), so ids sort by `number_sql`."""
    return f"'{prefix}_01J' || lpad(upper(to_hex({number_sql})), 23, '0')"


def load_brands(owner_url: str, agency_id: str, brand_id: str, start: int, stop: int) -> float:
    """Brands `start`…`stop-1` (brand 0 is the measured one, made through the API) with one
    account and POSTS_PER_BRAND posts each. Returns the seconds it took."""
    began = time.perf_counter()
    engine = create_engine(owner_url, poolclass=NullPool)
    agency_sql = (
        f"CASE WHEN b.idx / {BRANDS_PER_AGENCY} = 0 THEN :agency "
        f"ELSE {_hex_id('agy', f'b.idx / {BRANDS_PER_AGENCY}')} END"
    )
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS bench_brands"))
        conn.execute(
            text(
                "CREATE TABLE bench_brands AS SELECT b.idx, "
                f"CASE WHEN b.idx = 0 THEN :brand ELSE {_hex_id('brd', 'b.idx')} END AS id, "
                f"{agency_sql} AS agency_id, {_hex_id('acc', 'b.idx')} AS account_id "
                "FROM generate_series(:start, :stop - 1) AS b(idx)"
            ),
            {"agency": agency_id, "brand": brand_id, "start": start, "stop": stop},
        )
        conn.execute(
            text(
                "INSERT INTO agencies (id, name, plan, billing_status, created_at) "
                "SELECT DISTINCT agency_id, 'Bench agency', 'agency', 'active', now() "
                "FROM bench_brands WHERE agency_id <> :agency"
            ),
            {"agency": agency_id},
        )
        conn.execute(
            text(
                "INSERT INTO brands (id, name, slug, timezone, approval_mode, branding, status, "
                "version, agency_id, created_at) "
                "SELECT id, 'Brand ' || idx, 'brand-' || idx, 'Europe/Paris', 'none', '{}', "
                "'active', 1, agency_id, now() FROM bench_brands WHERE idx <> 0"
            )
        )
        conn.execute(
            text(
                "INSERT INTO social_accounts (id, network, external_id, handle, health, settings, "
                "version, brand_id, agency_id, created_at) "
                "SELECT account_id, 'mastodon', 'ext-' || idx, 'brand' || idx, 'active', '{}', "
                "1, id, agency_id, now() FROM bench_brands"
            )
        )
        # Post n of brand i: statuses cycle by n (2 draft, 1 in_review, 1 approved,
        # 3 scheduled, 3 published); scheduled ones lie ahead, published ones behind.
        post_number = "(n::bigint * 4096 + b.idx)"
        conn.execute(
            text(
                "INSERT INTO posts (id, text, status, scheduled_at, published_at, version, "
                "brand_id, agency_id, created_at, campaign) "
                f"SELECT {_hex_id('pst', post_number)}, 'Post ' || n || ' of brand ' || b.idx, "
                "s.status, "
                "CASE WHEN s.status = 'scheduled' THEN now() + n * interval '1 hour' "
                "     WHEN s.status = 'published' THEN now() - n * interval '1 hour' END, "
                "CASE WHEN s.status = 'published' THEN now() - n * interval '1 hour' END, "
                "1, b.id, b.agency_id, now() - n * interval '1 minute', "
                "CASE WHEN n % 4 = 0 THEN 'campaign-' || (n % 3) END "
                "FROM bench_brands b CROSS JOIN generate_series(0, :per - 1) AS n "
                "CROSS JOIN LATERAL (SELECT (ARRAY['draft','draft','in_review','approved',"
                "'scheduled','scheduled','scheduled','published','published','published'])"
                "[n % 10 + 1] AS status) s"
            ),
            {"per": POSTS_PER_BRAND},
        )
        conn.execute(
            text(
                "INSERT INTO post_variants (id, post_id, account_id, brand_id, agency_id, "
                "created_at) "
                f"SELECT {_hex_id('pvr', post_number)}, {_hex_id('pst', post_number)}, "
                "b.account_id, b.id, b.agency_id, now() "
                "FROM bench_brands b CROSS JOIN generate_series(0, :per - 1) AS n"
            ),
            {"per": POSTS_PER_BRAND},
        )
        conn.execute(
            text(
                "INSERT INTO post_labels (post_id, label, brand_id, agency_id) "
                f"SELECT {_hex_id('pst', post_number)}, l.label, b.id, b.agency_id "
                "FROM bench_brands b CROSS JOIN generate_series(0, :per - 1) AS n "
                "CROSS JOIN LATERAL (SELECT 'label-' || (n % 7) AS label UNION ALL "
                "SELECT 'label-' || (7 + n % 5) WHERE n % 2 = 0) l"
            ),
            {"per": POSTS_PER_BRAND},
        )
        conn.execute(text("DROP TABLE bench_brands"))
    with create_engine(owner_url, poolclass=NullPool, isolation_level="AUTOCOMMIT").connect() as c:
        c.execute(text("VACUUM ANALYZE"))
    engine.dispose()
    return time.perf_counter() - began


def count_posts(owner_url: str) -> int:
    engine = create_engine(owner_url, poolclass=NullPool)
    with engine.connect() as conn:
        total = conn.execute(text("SELECT count(*) FROM posts")).scalar_one()
    engine.dispose()
    return total


# -- measuring -----------------------------------------------------------------------------------


def list_shapes(client: Any, brand_id: str, headers: dict[str, str]) -> dict[str, str]:
    base = f"/v1/brands/{brand_id}/posts"
    now = datetime.now(UTC)
    window = {
        "from": (now + timedelta(days=5)).isoformat(),
        "to": (now + timedelta(days=35)).isoformat(),
    }
    first = client.get(f"{base}?status=published&limit=50", headers=headers).get_json()
    cursor = first["next_cursor"]
    return {
        "all": f"{base}?limit=50",
        "status": f"{base}?status=scheduled&limit=50",
        "status+label": f"{base}?status=published&label=label-3&limit=50",
        "time window": f"{base}?{urlencode(window)}&limit=50",
        "page 2": f"{base}?status=published&limit=50&cursor={cursor}",
    }


@contextmanager
def captured_sql(engine: Any) -> Iterator[list[tuple[str, Any]]]:
    seen: list[tuple[str, Any]] = []

    def remember(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
        seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", remember)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", remember)


def explain(app: Any, client: Any, shapes: dict[str, str], headers: dict[str, str], agency: str):
    from app.extensions import db

    with app.app_context():
        engine = db.engine
    for name, url in shapes.items():
        with captured_sql(engine) as seen:
            client.get(url, headers=headers)
        lists = [(s, p) for s, p in seen if "FROM posts" in s and "ORDER BY posts.id" in s]
        if not lists:
            print(f"  {name}: list query not captured")
            continue
        statement, parameters = lists[0]
        with engine.connect() as conn:
            raw = conn.connection.driver_connection
            with raw.cursor() as cur:
                cur.execute("SELECT set_config('app.agency_id', %s, false)", (agency,))
                cur.execute("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + statement, parameters)
                plan = "\n      ".join(row[0] for row in cur.fetchall())
                cur.execute("SELECT set_config('app.agency_id', '', false)")
            raw.rollback()
        print(f"  {name}:\n      {plan}")


@dataclass
class Size:
    """One database of the comparison, with its own app and signed-in owner."""

    label: str
    brands: int
    owner_url: str = ""
    app: Any = None
    client: Any = None
    agency_id: str = ""
    brand_id: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    shapes: dict[str, str] = field(default_factory=dict)
    timings: dict[str, list[float]] = field(default_factory=dict)


def set_up(size: Size, admin_url: str, redis_url: str) -> None:
    size.owner_url, app_url = prepare_database(admin_url, f"{DB_PREFIX}_{size.label.lower()}")
    settings = config_as_dict(TestConfig)
    settings.update(
        DATABASE_URL=app_url,
        MIGRATION_DATABASE_URL=size.owner_url,
        REDIS_URL=redis_url,
        TESTING=False,
    )
    size.app = create_app(settings)
    size.client = size.app.test_client()
    # The owner is made straight in the database, as `relais demo` does (sign-up over the API
    # waits for a mailed confirmation).
    from app.auth.passwords import hash_password
    from app.extensions import db
    from app.models import User
    from app.services import audit, signup

    with size.app.app_context():
        owner = User(email=EMAIL, name="Bench", password_hash=hash_password(PASSWORD))
        db.session.add(owner)
        db.session.flush()
        size.agency_id = signup.create_agency("Bench", owner, actor=audit.SYSTEM).id
        db.session.commit()
    token = size.client.post("/v1/auth/token", json={"email": EMAIL, "password": PASSWORD})
    headers = {"Authorization": f"Bearer {token.get_json()['access_token']}"}
    created = size.client.post("/v1/brands", json={"name": "Measured"}, headers=headers)
    size.brand_id = created.get_json()["id"]
    seconds = load_brands(size.owner_url, size.agency_id, size.brand_id, 0, size.brands)
    total = count_posts(size.owner_url)
    print(f"[{size.label}] {total:,} posts over {size.brands:,} brands, loaded in {seconds:.0f} s")


def sign_in(size: Size) -> None:
    # A fresh access token (they live 15 minutes, and loading 1M rows takes a while).
    token = size.client.post("/v1/auth/token", json={"email": EMAIL, "password": PASSWORD})
    size.headers = {"Authorization": f"Bearer {token.get_json()['access_token']}"}
    size.shapes = list_shapes(size.client, size.brand_id, size.headers)
    size.timings = {name: [] for name in size.shapes}


def measure(sizes: list[Size], rounds: int) -> None:
    """Every shape on every size in turn, so a noisy moment on the machine (other processes,
    GC) lands on both sizes alike instead of on whichever ran then."""
    for round_number in range(max(10, rounds // 10) + rounds):
        warming = round_number < max(10, rounds // 10)
        order = sizes if round_number % 2 == 0 else list(reversed(sizes))
        for name in sizes[0].shapes:
            for size in order:
                url = size.shapes[name]
                began = time.perf_counter()
                response = size.client.get(url, headers=size.headers)
                elapsed = (time.perf_counter() - began) * 1000
                if response.status_code != 200 or not response.get_json()["items"]:
                    raise SystemExit(f"{url}: {response.status_code} (or an empty page)")
                if not warming:
                    size.timings[name].append(elapsed)


def report(sizes: list[Size], rounds: int) -> None:
    small, large = sizes[0], sizes[-1]
    print()
    print(f"GET /v1/brands/{{id}}/posts (one page of 50), {rounds} calls per shape and size, ms")
    header = f"{'shape':<14}"
    for size in sizes:
        header += f"{size.label + ' p50':>11}{size.label + ' p99':>11}"
    print(header + f"{'p99 ratio':>11}")
    rows = [(name, small.timings[name], large.timings[name]) for name in small.shapes]
    every = (
        [v for values in small.timings.values() for v in values],
        [v for values in large.timings.values() for v in values],
    )
    for name, a, b in [*rows, ("all shapes", *every)]:
        line = f"{name:<14}"
        for values in (a, b):
            line += f"{statistics.median(values):>11.2f}{percentile(values, 99):>11.2f}"
        print(line + f"{percentile(b, 99) / percentile(a, 99):>11.2f}")
    ratio = percentile(every[1], 99) / percentile(every[0], 99)
    verdict = "OK" if ratio <= TARGET else "OVER TARGET"
    print(f"p99 {large.label} / p99 {small.label} = {ratio:.2f} (target <= {TARGET}): {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--admin-url",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="a PostgreSQL superuser URL (the bench creates its own databases and role)",
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/7")
    parser.add_argument("--rounds", type=int, default=500, help="timed calls per shape and size")
    parser.add_argument(
        "--brands",
        default=DEFAULT_BRANDS,
        help=f"brand counts of the two sizes, {POSTS_PER_BRAND} posts each (a quick try: 10,50)",
    )
    args = parser.parse_args()
    sizes = [Size(_size_label(int(n) * POSTS_PER_BRAND), int(n)) for n in args.brands.split(",")]
    for size in sizes:
        set_up(size, args.admin_url, args.redis_url)
    for size in sizes:
        sign_in(size)
    measure(sizes, args.rounds)
    report(sizes, args.rounds)
    for size in sizes:
        print()
        print(f"EXPLAIN ANALYZE of the list queries at {size.label}:")
        explain(size.app, size.client, size.shapes, size.headers, size.agency_id)


if __name__ == "__main__":
    main()
