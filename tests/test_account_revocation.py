"""Offboarding a brand revokes its accounts at the networks, by jobs that outlive the brand:
revoked once the network answers, retried while it is down, given up on (and recorded) after
the last try or a refusal that retrying will not change. A job handed another agency's id
touches nothing, and the sweep enqueues again what Redis lost."""

from __future__ import annotations

import io
import json
import logging
from datetime import timedelta
from types import SimpleNamespace

import pytest
from rq import SimpleWorker
from rq.serializers import JSONSerializer

from app import logs, queue, tenancy
from app.extensions import db
from app.models import AccountRevocation
from app.models.base import utcnow
from app.services import account_revocations
from tests.accounts_helpers import Networks, connect_oauth

_revocations_log = logging.getLogger(account_revocations.__name__)


def _events(client, actor, action):
    response = client.get("/v1/audit-events", query_string={"limit": 200}, headers=actor.headers)
    assert response.status_code == 200, response.get_json()
    return [e for e in response.get_json()["items"] if e["action"] == action]


def _held(app, agency_id):
    """The agency's revocation rows, as plain values."""
    with app.app_context():
        tenancy.enter_agency(agency_id)
        rows = [
            SimpleNamespace(**{c.key: getattr(r, c.key) for c in AccountRevocation.__table__.c})
            for r in db.session.scalars(tenancy.scoped_select(AccountRevocation))
        ]
        db.session.rollback()
        return rows


def _run_default_jobs(app):
    """What `relais worker` does with the default queue, in process."""
    with app.app_context():
        default = queue.queue(queue.DEFAULT)
        worker = SimpleWorker([default], connection=default.connection, serializer=JSONSerializer)
        worker.work(burst=True)


@pytest.fixture
def networks(app, monkeypatch):
    """Fakes of the OAuth networks (tests/fakes/oauth_networks.py), with revocation."""
    fakes = Networks(app, monkeypatch)
    yield fakes
    fakes.stop()


@pytest.fixture
def empty_default_queue(app):
    with app.app_context():
        queue.queue(queue.DEFAULT).empty()
    yield
    with app.app_context():
        queue.queue(queue.DEFAULT).empty()


def _offboard_with_accounts(client, owner, networks):
    brand = owner.brands[0]
    for network in ("x", "linkedin"):
        done, _ = connect_oauth(client, owner, brand, networks, network)
        assert done.status_code == 200, done.get_json()
    assert client.delete(f"/v1/brands/{brand}", headers=owner.headers).status_code == 204
    return brand


def test_offboarding_revokes_every_account_at_its_network(
    app,
    client,
    make_agency,
    networks,
    empty_default_queue,
):
    owner = make_agency("Offboarded")
    brand = _offboard_with_accounts(client, owner, networks)
    # The accounts went with the brand; what revoking them needs waits in the agency's rows,
    # and one job each is queued.
    held = _held(app, owner.agency_id)
    assert sorted(r.network for r in held) == ["linkedin", "x"]
    assert {r.offboarded_brand_id for r in held} == {brand}
    with app.app_context():
        queued = set(queue.queue(queue.DEFAULT).job_ids)
    assert queued == {f"revoke-account-{r.id}" for r in held}
    assert networks.x.revoked == [] and networks.linkedin.revoked == []

    lines = io.StringIO()
    handler = logging.StreamHandler(lines)
    handler.addFilter(logs.ContextFilter())
    handler.setFormatter(logs.JSONFormatter())
    _revocations_log.addHandler(handler)
    try:
        _run_default_jobs(app)
    finally:
        _revocations_log.removeHandler(handler)

    # X revokes the refresh token (the whole grant), LinkedIn the access token.
    assert len(networks.x.revoked) == 1 and networks.x.revoked[0].startswith("rt-")
    assert len(networks.linkedin.revoked) == 1
    assert _held(app, owner.agency_id) == []
    revoked = _events(client, owner, "social_account.revoked_at_network")
    assert sorted(e["data"]["network"] for e in revoked) == ["linkedin", "x"]
    assert {e["target_id"] for e in revoked} == {r.account_id for r in held}
    assert all(e["actor_type"] == "system" and e["brand_id"] is None for e in revoked)
    # The jobs' log lines say which job, agency, brand and account they are about.
    entries = [json.loads(line) for line in lines.getvalue().splitlines()]
    assert len(entries) == 2
    for entry in entries:
        assert entry["job"] == "workers.jobs.accounts.revoke_offboarded_account"
        assert entry["job_id"].startswith("revoke-account-")
        assert entry["agency_id"] == owner.agency_id and entry["brand_id"] == brand
        assert entry["account_id"] in {r.account_id for r in held}


def test_a_network_that_is_down_is_tried_again_then_given_up_on(
    app,
    client,
    make_agency,
    networks,
    empty_default_queue,
    monkeypatch,
):
    monkeypatch.setitem(app.config, "ACCOUNT_REVOCATION_RETRY_INTERVALS", [60])
    owner = make_agency("Down")
    brand = owner.brands[0]
    done, _ = connect_oauth(client, owner, brand, networks, "x")
    assert done.status_code == 200
    assert client.delete(f"/v1/brands/{brand}", headers=owner.headers).status_code == 204
    [row] = _held(app, owner.agency_id)

    networks.x.fail_next("/2/oauth2/revoke", 503, {"title": "Service Unavailable"})
    with app.app_context(), pytest.raises(account_revocations.RevocationFailed):
        account_revocations.revoke(row.id, owner.agency_id)
    [waiting] = _held(app, owner.agency_id)
    assert waiting.attempts == 1 and "503" in (waiting.last_error or "")
    assert waiting.next_attempt_at > utcnow() + timedelta(seconds=50)
    assert _events(client, owner, "social_account.revocation_failed") == []

    # The last try fails too: given up, recorded with the reason, the credentials dropped.
    networks.x.fail_next("/2/oauth2/revoke", 503, {"title": "Service Unavailable"})
    with app.app_context():
        assert account_revocations.revoke(row.id, owner.agency_id) == "given_up"
    assert _held(app, owner.agency_id) == []
    [failed] = _events(client, owner, "social_account.revocation_failed")
    assert failed["target_id"] == row.account_id and failed["data"]["attempts"] == 2
    assert "503" in failed["data"]["reason"] and "x" in failed["data"]["what_to_do"]
    assert networks.x.revoked == []


def test_a_network_back_in_time_revokes_on_the_next_try(
    app,
    client,
    make_agency,
    networks,
    empty_default_queue,
):
    owner = make_agency("Back")
    brand = owner.brands[0]
    done, _ = connect_oauth(client, owner, brand, networks, "x")
    assert done.status_code == 200
    assert client.delete(f"/v1/brands/{brand}", headers=owner.headers).status_code == 204
    [row] = _held(app, owner.agency_id)
    networks.x.fail_next("/2/oauth2/revoke", 429, {"title": "Too Many Requests"})
    with app.app_context(), pytest.raises(account_revocations.RevocationFailed):
        account_revocations.revoke(row.id, owner.agency_id)
    with app.app_context():
        assert account_revocations.revoke(row.id, owner.agency_id) == "revoked"
    assert len(networks.x.revoked) == 1
    assert _held(app, owner.agency_id) == []


def test_a_refusal_that_retrying_cannot_change_is_given_up_at_once(
    app,
    client,
    make_agency,
    networks,
    empty_default_queue,
):
    owner = make_agency("Refused")
    brand = owner.brands[0]
    done, _ = connect_oauth(client, owner, brand, networks, "linkedin")
    assert done.status_code == 200
    assert client.delete(f"/v1/brands/{brand}", headers=owner.headers).status_code == 204
    [row] = _held(app, owner.agency_id)
    networks.linkedin.fail_next(
        "/oauth/v2/revoke", 400, {"error": "invalid_request", "error_description": "bad"}
    )
    with app.app_context():
        assert account_revocations.revoke(row.id, owner.agency_id) == "given_up"
    [failed] = _events(client, owner, "social_account.revocation_failed")
    assert failed["data"]["attempts"] == 1


def test_dead_credentials_leave_nothing_to_revoke(
    app,
    client,
    make_agency,
    networks,
    empty_default_queue,
):
    owner = make_agency("Dead")
    brand = owner.brands[0]
    done, _ = connect_oauth(client, owner, brand, networks, "x")
    assert done.status_code == 200
    assert client.delete(f"/v1/brands/{brand}", headers=owner.headers).status_code == 204
    [row] = _held(app, owner.agency_id)
    networks.x.fail_next("/2/oauth2/revoke", 401, {"error": "invalid_client"})
    with app.app_context():
        assert account_revocations.revoke(row.id, owner.agency_id) == "revoked"
    [done_event] = _events(client, owner, "social_account.revoked_at_network")
    assert "nothing to revoke" in done_event["data"]["note"]


def test_a_job_handed_another_agencys_id_touches_nothing(
    app,
    client,
    make_agency,
    networks,
    empty_default_queue,
):
    owner = make_agency("Owner")
    stranger = make_agency("Stranger")
    brand = owner.brands[0]
    done, _ = connect_oauth(client, owner, brand, networks, "x")
    assert done.status_code == 200
    assert client.delete(f"/v1/brands/{brand}", headers=owner.headers).status_code == 204
    [row] = _held(app, owner.agency_id)
    with app.app_context():
        assert account_revocations.revoke(row.id, stranger.agency_id) == "skipped"
    assert networks.x.revoked == []
    [still] = _held(app, owner.agency_id)
    assert still.attempts == 0
    assert _events(client, stranger, "social_account.revoked_at_network") == []


def test_the_sweep_enqueues_again_what_redis_lost(
    app,
    client,
    make_agency,
    networks,
    empty_default_queue,
):
    owner = make_agency("Lost")
    brand = owner.brands[0]
    done, _ = connect_oauth(client, owner, brand, networks, "x")
    assert done.status_code == 200
    assert client.delete(f"/v1/brands/{brand}", headers=owner.headers).status_code == 204
    [row] = _held(app, owner.agency_id)
    with app.app_context():
        queue.queue(queue.DEFAULT).empty()  # Redis lost the job
        assert account_revocations.enqueue_stalled() == 0  # not overdue yet
        tenancy.enter_agency(owner.agency_id)
        stored = db.session.get(AccountRevocation, row.id)
        stored.next_attempt_at = utcnow() - account_revocations.STALL_GRACE - timedelta(seconds=1)
        db.session.commit()
        tenancy.set_scope(tenancy.NO_SCOPE)
        assert account_revocations.enqueue_stalled() == 1
        assert queue.queue(queue.DEFAULT).job_ids == [f"revoke-account-{row.id}"]
    _run_default_jobs(app)
    assert len(networks.x.revoked) == 1
    assert _held(app, owner.agency_id) == []


def test_a_failed_offboarding_queues_nothing(app, client, make_agency, networks, monkeypatch):
    owner = make_agency("Rolled back")
    brand = owner.brands[0]
    done, _ = connect_oauth(client, owner, brand, networks, "x")
    assert done.status_code == 200
    with app.app_context():
        queue.queue(queue.DEFAULT).empty()
    from app.services import brands

    def refuse(*_args, **_kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(brands, "_forget_brand_in_api_keys", refuse)
    assert client.delete(f"/v1/brands/{brand}", headers=owner.headers).status_code == 500
    with app.app_context():
        assert queue.queue(queue.DEFAULT).job_ids == []
    assert _held(app, owner.agency_id) == []
    assert client.get(f"/v1/brands/{brand}", headers=owner.headers).status_code == 200
