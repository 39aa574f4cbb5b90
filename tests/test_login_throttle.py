"""Password guessing: each source slows itself down, nobody can lock the owner out.

The clock of app/services/throttle.py is frozen and moved by hand, so delays are exact and no
test waits or measures time.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from app.models import LoginThrottle
from app.models.base import utcnow
from app.services import throttle
from tests.conftest import PASSWORD
from tests.helpers import assert_problem, owner_connection
from tests.mail import read_mail, text_of

ATTACKER = "203.0.113.7"
OWNER_HOME = "198.51.100.1"


class Clock:
    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self):
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock(monkeypatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(throttle, "utcnow", clock)
    return clock


def _login(client, email, password=PASSWORD, ip=ATTACKER):
    return client.post(
        "/v1/auth/token",
        json={"email": email, "password": password},
        environ_base={"REMOTE_ADDR": ip},
    )


def _burst_events(client, owner) -> list[dict]:
    events = client.get(
        "/v1/audit-events?action=user.sign_in_failures_burst&limit=100", headers=owner.headers
    ).get_json()["items"]
    return events


def test_a_stranger_guessing_never_locks_the_owner_out(client, clock, make_agency):
    """Five wrong passwords used to lock the account for everyone, and five more every 15
    minutes kept it locked. Now the guesser waits, and only the guesser."""
    owner = make_agency(brands=0)
    for _ in range(4):
        for _ in range(10):
            _login(client, owner.email, "wrong password!")
        assert _login(client, owner.email, "wrong password!").status_code == 429
        assert _login(client, owner.email, ip=OWNER_HOME).status_code == 200
        clock.advance(15 * 60)


def test_each_failure_from_one_source_makes_it_wait_longer(client, app, clock, make_agency):
    owner = make_agency(brands=0)
    free = app.config["LOGIN_FAILURES_BEFORE_DELAY"]
    first = app.config["LOGIN_DELAY_SECONDS"]
    for _ in range(free):
        assert_problem(_login(client, owner.email, "wrong password!"), 401)
    waits = []
    for _ in range(4):
        assert_problem(_login(client, owner.email, "wrong password!"), 401)
        # Even the right password waits: an answer during the delay would be a free guess.
        refused = _login(client, owner.email)
        assert_problem(refused, 429)
        assert refused.headers["Content-Type"] == "application/problem+json"
        waits.append(int(refused.headers["Retry-After"]))
        clock.advance(waits[-1])
    assert waits == [first, 2 * first, 4 * first, 8 * first]
    # Its wait over, the right password signs in and the streak is forgotten.
    assert _login(client, owner.email).status_code == 200
    for _ in range(free):
        assert_problem(_login(client, owner.email, "wrong password!"), 401)


def test_the_delay_is_capped(app):
    with app.app_context():
        free = app.config["LOGIN_FAILURES_BEFORE_DELAY"]
        assert throttle.delay_after(free) == 0
        assert throttle.delay_after(free + 1) == app.config["LOGIN_DELAY_SECONDS"]
        assert throttle.delay_after(10_000) == app.config["LOGIN_MAX_DELAY_SECONDS"]


def test_a_streak_is_forgotten_after_a_while(client, app, clock, make_agency):
    owner = make_agency(brands=0)
    for _ in range(app.config["LOGIN_FAILURES_BEFORE_DELAY"] + 1):
        _login(client, owner.email, "wrong password!")
    assert _login(client, owner.email).status_code == 429
    clock.advance(app.config["LOGIN_FAILURE_MEMORY_SECONDS"] + 1)
    for _ in range(app.config["LOGIN_FAILURES_BEFORE_DELAY"]):
        assert_problem(_login(client, owner.email, "wrong password!"), 401)


def test_unknown_accounts_are_slowed_like_known_ones(client, app, clock):
    for _ in range(app.config["LOGIN_FAILURES_BEFORE_DELAY"] + 1):
        assert_problem(_login(client, "ghost@example.com", "wrong password!"), 401)
    refused = assert_problem(_login(client, "ghost@example.com"), 429)
    assert "try again in" in refused["detail"]


def test_an_address_has_a_ceiling_across_accounts(client, app, clock, make_agency, monkeypatch):
    monkeypatch.setitem(app.config, "LOGIN_MAX_FAILURES_PER_IP", 3)
    owner = make_agency(brands=0)
    for i in range(3):
        assert _login(client, f"victim{i}@example.com", "wrong password!").status_code == 401
    blocked = _login(client, owner.email)
    assert_problem(blocked, 429)
    assert int(blocked.headers["Retry-After"]) == app.config["LOGIN_IP_WINDOW_SECONDS"]
    # The owner, from another address, signs in.
    assert _login(client, owner.email, ip=OWNER_HOME).status_code == 200
    clock.advance(app.config["LOGIN_IP_WINDOW_SECONDS"])
    assert _login(client, owner.email).status_code == 200


def test_successes_do_not_fill_the_address_ceiling(client, app, clock, make_agency, monkeypatch):
    monkeypatch.setitem(app.config, "LOGIN_MAX_FAILURES_PER_IP", 3)
    owner = make_agency(brands=0)
    # An office behind one address signs in all day.
    for _ in range(6):
        assert _login(client, owner.email).status_code == 200


def test_an_ipv6_source_counts_as_its_64_block(client, app, clock, make_agency):
    owner = make_agency(brands=0)
    for i in range(app.config["LOGIN_FAILURES_BEFORE_DELAY"] + 1):
        _login(client, owner.email, "wrong password!", ip=f"2001:db8:0:1::{i + 1:x}")
    assert_problem(_login(client, owner.email, ip="2001:db8:0:1:ffff::9"), 429)
    assert _login(client, owner.email, ip="2001:db8:0:2::1").status_code == 200
    assert throttle.source_of("::ffff:192.0.2.1") == "192.0.2.1"
    assert throttle.source_of("2001:db8:0:1:abcd::1") == "2001:db8:0:1::/64"


def test_a_burst_of_failures_is_recorded_once_per_window(client, app, clock, make_agency):
    owner = make_agency(brands=0)
    burst = app.config["LOGIN_BURST_FAILURES"]
    window = app.config["LOGIN_BURST_WINDOW_SECONDS"]
    # From many addresses, each below its own delay: only the account sees the burst.
    for i in range(burst - 1):
        assert _login(client, owner.email, "wrong password!", ip=f"192.0.2.{i}").status_code == 401
    assert _burst_events(client, owner) == []
    for i in range(burst - 1, burst + 5):
        assert _login(client, owner.email, "wrong password!", ip=f"192.0.2.{i}").status_code == 401
    (event,) = _burst_events(client, owner)
    assert event["target_type"] == "user" and event["target_id"] == owner.user_id
    assert event["actor_type"] == "system"
    assert event["data"] == {"failures": burst, "window_seconds": window}
    # The person is told by e-mail, once, with a way to change their password.
    (notice,) = [m for m in read_mail(app, owner.email) if "failed" in m["Subject"].lower()]
    assert f"There were {burst} failed attempts" in text_of(notice)
    assert "/reset-password" in text_of(notice)
    # A new window, a new notice.
    clock.advance(window + 1)
    for i in range(burst):
        _login(client, owner.email, "wrong password!", ip=f"198.18.0.{i}")
    assert len(_burst_events(client, owner)) == 2
    notices = [m for m in read_mail(app, owner.email) if "failed" in m["Subject"].lower()]
    assert len(notices) == 2


def test_the_burst_hook_is_called_with_the_account(client, app, clock, make_agency, monkeypatch):
    from app.services import security_notices

    calls = []
    monkeypatch.setattr(
        security_notices,
        "failed_sign_in_burst",
        lambda user, count, window, actor: calls.append((user.id, count, window)),
    )
    owner = make_agency(brands=0)
    for i in range(app.config["LOGIN_BURST_FAILURES"] + 3):
        _login(client, owner.email, "wrong password!", ip=f"192.0.2.{i}")
        _login(client, "nobody@example.com", "wrong password!", ip=f"192.0.2.{i}")
    window = timedelta(seconds=app.config["LOGIN_BURST_WINDOW_SECONDS"])
    assert calls == [(owner.user_id, app.config["LOGIN_BURST_FAILURES"], window)]


def test_housekeeping_forgets_stale_counters_but_keeps_waits(app, database):
    from app.services import maintenance

    now = utcnow()
    day = timedelta(days=1)
    long_ago = now - 2 * timedelta(seconds=app.config["LOGIN_FAILURE_MEMORY_SECONDS"])
    rows = {
        "src:192.0.2.1|stale@example.com": dict(window_started_at=long_ago, locked_until=None),
        "src:192.0.2.1|wait-over@example.com": dict(
            window_started_at=long_ago, locked_until=now - day
        ),
        "src:192.0.2.1|waiting@example.com": dict(
            window_started_at=long_ago, locked_until=now + day
        ),
        "src:192.0.2.1|recent@example.com": dict(window_started_at=now, locked_until=None),
        "ip:192.0.2.1": dict(window_started_at=long_ago, locked_until=None),
        "ip:192.0.2.2": dict(window_started_at=now, locked_until=None),
        "acct:old@example.com": dict(window_started_at=long_ago, locked_until=None),
        "acct:new@example.com": dict(window_started_at=now, locked_until=None),
    }
    with owner_connection(database) as connection:
        for key, values in rows.items():
            connection.execute(
                LoginThrottle.__table__.insert().values(key=key, failures=1, **values)
            )
    with app.app_context():
        assert maintenance.purge_expired()["login_throttles"] == 4
    with owner_connection(database) as connection:
        left = set(connection.scalars(select(LoginThrottle.key)))
    assert left == {
        "src:192.0.2.1|waiting@example.com",
        "src:192.0.2.1|recent@example.com",
        "ip:192.0.2.2",
        "acct:new@example.com",
    }
