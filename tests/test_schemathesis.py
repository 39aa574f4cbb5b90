"""schemathesis against the app, in process, with every check, signed in as an agency owner.

Generated requests reach real objects as well as missing ones: a path id that schemathesis
generates as valid is swapped, for about half the cases, for the id of a live object of the
owner's agency (recreated when an earlier case deleted it).
"""

from __future__ import annotations

import re
import uuid
import zlib
from dataclasses import dataclass, field
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from app.api.idempotency import IDEMPOTENCY_KEY_PATTERN
from app.ids import looks_like_id
from app.openapi_dump import generate
from app.schemas.common import IANA_TIMEZONES, HttpUrl, Timezone
from tests.conftest import Actor

# The spec the code generates (the drift test keeps openapi/openapi.json equal to it); requests
# go in process to the suite's `app`, passed at call time. (`schemathesis.pytest.from_fixture`
# would load it from the fixture, but needs pytest's private `Function._nodeid`, gone in 9.2.)
#
# Adjustments to schemathesis' defaults, each for what no schema can state:
# - a valid request may be answered 412: If-Match is a valid header whose value the fuzzer
#   cannot know, and a stale one is a 412 by RFC 9110;
# - for the same reason an invalid request may be refused with 412 rather than 400/422: the
#   preconditions are evaluated before the server processes the request's content (RFC 9110,
#   13.2.1), and `brand_route` checks If-Match before the body is read;
# - a few operations may answer a valid request 422 (their docs say when):
#   - uploads, whose bytes are checked by content (magic numbers, decoding, pixel counts,
#     UTF-8 CSV), where a schema can only say "binary";
#   - the calendar, whose `to` must be after `from` and at most 92 days on: a rule between two
#     parameters, which OpenAPI 3.0 cannot state;
#   - connecting social accounts, whose credentials, instance and OAuth state are checked with
#     the network (which the suite's config confines to loopback);
#   - changing one's password, which needs the current one: a secret no schema holds.
_ACCEPTED = ["2xx", "3xx", "401", "403", "404", "409", "412", "429"]
# schemathesis' own list for refused invalid data, and the 412 above.
_REFUSED = [
    "400",
    "401",
    "403",
    "404",
    "405",
    "406",
    "409",
    "412",
    "415",
    "422",
    "428",
    "429",
    "5xx",
]
_CONFIG = schemathesis.Config.from_dict(
    {
        "checks": {
            "positive_data_acceptance": {"expected-statuses": _ACCEPTED},
            "negative_data_rejection": {"expected-statuses": _REFUSED},
        },
        "operations": [
            {
                "include-name": name,
                "checks": {"positive_data_acceptance": {"expected-statuses": [*_ACCEPTED, "422"]}},
            }
            for name in (
                "POST /v1/brands/{brand_id}/media",
                "POST /v1/brands/{brand_id}/posts/import",
                "GET /v1/brands/{brand_id}/calendar",
                "POST /v1/brands/{brand_id}/accounts",
                "POST /v1/brands/{brand_id}/accounts/connect",
                "POST /v1/brands/{brand_id}/accounts/callback",
                "POST /v1/brands/{brand_id}/accounts/{account_id}/reconnect",
                "POST /v1/me/password",
            )
        ],
    }
)
schema = schemathesis.openapi.from_dict(generate(), config=_CONFIG)


@dataclass
class LiveObjects:
    """Real objects of the owner's agency, recreated on demand after a generated DELETE."""

    client: Any
    owner: Actor
    invite_user: Any
    ids: dict[str, str] = field(default_factory=dict)

    def _exists(self, path: str) -> bool:
        return self.client.get(path, headers=self.owner.headers).status_code == 200

    def brand_id(self) -> str:
        brand_id = self.ids.get("brand_id")
        if brand_id and self._exists(f"/v1/brands/{brand_id}"):
            return brand_id
        created = self.client.post(
            "/v1/brands", json={"name": "Live brand"}, headers=self.owner.headers
        )
        assert created.status_code == 201, created.get_json()
        self.ids.pop("brand_membership_id", None)
        self.ids["brand_id"] = created.get_json()["id"]
        return self.ids["brand_id"]

    def agency_membership_id(self) -> str:
        membership_id = self.ids.get("agency_membership_id")
        if membership_id and self._exists(f"/v1/agency/members/{membership_id}"):
            return membership_id
        member = self.invite_user(self.owner, agency_role="member")
        members = self.client.get("/v1/agency/members?limit=200", headers=self.owner.headers)
        self.ids["member_user_id"] = member.user_id
        self.ids["agency_membership_id"] = next(
            m["id"] for m in members.get_json()["items"] if m["user_id"] == member.user_id
        )
        return self.ids["agency_membership_id"]

    def brand_membership_id(self) -> str:
        brand_id = self.brand_id()
        membership_id = self.ids.get("brand_membership_id")
        if membership_id and self._exists(f"/v1/brands/{brand_id}/members/{membership_id}"):
            return membership_id
        self.agency_membership_id()
        created = self.client.post(
            f"/v1/brands/{brand_id}/members",
            json={"user_id": self.ids["member_user_id"], "role": "editor"},
            headers=self.owner.headers,
        )
        assert created.status_code == 201, created.get_json()
        self.ids["brand_membership_id"] = created.get_json()["id"]
        return self.ids["brand_membership_id"]

    def key_id(self) -> str:
        key_id = self.ids.get("key_id")
        if key_id and self._exists(f"/v1/api-keys/{key_id}"):
            return key_id
        created = self.client.post(
            "/v1/api-keys", json={"name": "live key"}, headers=self.owner.headers
        )
        assert created.status_code == 201, created.get_json()
        self.ids["key_id"] = created.get_json()["id"]
        return self.ids["key_id"]

    def invitation_id(self) -> str:
        invitation_id = self.ids.get("invitation_id")
        if invitation_id and self._exists(f"/v1/invitations/{invitation_id}"):
            return invitation_id
        created = self.client.post(
            "/v1/invitations",
            json={"email": "live-invitee@example.com", "agency_role": "member"},
            headers=self.owner.headers,
        )
        assert created.status_code == 201, created.get_json()
        self.ids["invitation_id"] = created.get_json()["id"]
        return self.ids["invitation_id"]

    def endpoint_id(self) -> str:
        endpoint_id = self.ids.get("endpoint_id")
        if endpoint_id and self._exists(f"/v1/webhook-endpoints/{endpoint_id}"):
            return endpoint_id
        created = self.client.post(
            "/v1/webhook-endpoints",
            json={"url": "http://127.0.0.1:9/live"},
            headers=self.owner.headers,
        )
        assert created.status_code == 201, created.get_json()
        self.ids["endpoint_id"] = created.get_json()["id"]
        self.ids.pop("delivery_id", None)
        return self.ids["endpoint_id"]

    def delivery_id(self) -> str:
        """A delivery of the live endpoint (its test event; nothing sends it here)."""
        endpoint_id = self.endpoint_id()
        if "delivery_id" not in self.ids:
            self.client.patch(
                f"/v1/webhook-endpoints/{endpoint_id}",
                json={"enabled": True},
                headers=self.owner.headers,
            )
            sent = self.client.post(
                f"/v1/webhook-endpoints/{endpoint_id}/test", headers=self.owner.headers
            )
            assert sent.status_code == 202, sent.get_json()
            self.ids["delivery_id"] = sent.get_json()["id"]
        return self.ids["delivery_id"]

    def real_id(self, path: str, name: str) -> str | None:
        if name == "brand_id":
            return self.brand_id()
        if name == "membership_id":
            if path.startswith("/v1/brands/"):
                return self.brand_membership_id()
            return self.agency_membership_id()
        loader = getattr(self, name, None)
        return loader() if callable(loader) else None


@pytest.fixture
def live(client, make_agency, invite_user) -> LiveObjects:
    owner = make_agency("Fuzzed agency", brands=1)
    return LiveObjects(client=client, owner=owner, invite_user=invite_user)


def _use_real_ids(case: Any, live: LiveObjects) -> None:
    """Point about half the well-formed generated ids at live objects (chosen by the generated
    value, so that Hypothesis replays a failing case exactly). Malformed ids are kept."""
    for name, value in list((case.path_parameters or {}).items()):
        if not looks_like_id(value) or zlib.crc32(value.encode()) % 2:
            continue
        real = live.real_id(case.operation.path, name)
        if real is not None:
            case.path_parameters[name] = real
    _ = case.meta  # revalidate the case's metadata against the values now sent


def _fresh_idempotency_key(case: Any) -> None:
    """DESIGN.md makes a key reused with another body a 422, which schemathesis, knowing
    nothing of the requests before, reads as a valid request rejected; so a well-formed key
    becomes one never used before, as a real client's would. Malformed keys are kept."""
    headers = case.headers or {}
    key = headers.get("Idempotency-Key")
    if isinstance(key, str) and re.fullmatch(IDEMPOTENCY_KEY_PATTERN, key):
        headers["Idempotency-Key"] = uuid.uuid4().hex
        _ = case.meta


_ZONES = sorted(IANA_TIMEZONES)


def _real_timezone(case: Any) -> None:
    """A time zone must be a name in the tz database, which the spec states as a pattern (a
    597-value enum broke client generators); so a generated name that fits the pattern becomes
    a real one, chosen by the generated value. Names that do not fit are kept."""
    body = case.body
    name = body.get("timezone") if isinstance(body, dict) else None
    fits = isinstance(name, str) and re.fullmatch(Timezone.PATTERN, name)
    if fits and name not in IANA_TIMEZONES:
        body["timezone"] = _ZONES[zlib.crc32(name.encode()) % len(_ZONES)]
        _ = case.meta


def _loopback_webhook_url(case: Any) -> None:
    """The suite's outbound guard lets requests go to loopback addresses only (and refuses a
    webhook endpoint's URL elsewhere with a 422, as production refuses private ones); so a
    generated URL keeps its path and goes to 127.0.0.1. URLs that do not fit are kept."""
    body = case.body
    url = body.get("url") if isinstance(body, dict) else None
    if case.operation.path.startswith("/v1/webhook-endpoints") and isinstance(url, str):
        fits = re.fullmatch(HttpUrl.PATTERN, url)
        if fits:
            body["url"] = re.sub(r"^https?://[^/]+", "http://127.0.0.1:9", url)
            _ = case.meta


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)
def test_api_conforms_to_its_spec(case, app, live: LiveObjects) -> None:
    # Bind the in-process app (known only once fixtures run): requests, and the extra requests
    # some checks send (ignored_auth, unsupported_method), then go to it through WSGI.
    case.operation.app = case.operation.schema.app = app
    _use_real_ids(case, live)
    _fresh_idempotency_key(case)
    _real_timezone(case)
    _loopback_webhook_url(case)
    case.call_and_validate(headers=live.owner.headers)
