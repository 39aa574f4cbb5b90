"""Input rules people see: names that show something and read as written, RFC 3339 instants
only, and answers that print what was stored (handles, instants in UTC)."""

from __future__ import annotations

import sys
import unicodedata
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from app.fields import _BIDI_CONTROLS, _INVISIBLE, NAME_PATTERN, Timestamp
from app.openapi_dump import generate
from tests.conftest import PASSWORD
from tests.helpers import assert_problem

# Each looks like no name at all, or reads as another.
BAD_NAMES = {
    "zero-width spaces": "\u200b\u200b",
    "word joiner and spaces": " \u2060 \u00a0",
    "Hangul filler": "\u3164",
    "Braille blank": "\u2800\u2800",
    "tags": "\U000e0041\U000e0063\U000e006d\U000e0065",
    "variation selectors": "\ufe0f\U000e0100",
    "soft hyphen and BOM": "\u00ad\ufeff",
    "right-to-left override": "Acme\u202egnp.exe",
    "left-to-right embedding": "\u202aAcme\u202c",
    "isolates": "\u2067Acme\u2069",
}
GOOD_NAMES = [
    "Café Lumière",
    "\u05e9\u05dc\u05d5\u05dd \u200fAcme",  # Hebrew with a right-to-left mark: a mark, no override
    "\U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f Scotland",  # tag flag
    "\u2764\ufe0f Coffee",
    "\U0001f468\u200d\U0001f469\u200d\U0001f467",
]


def _names(client, owner, brand, account):
    """(what, request to send with a name, the field the 422 names) for every name people give."""
    base = f"/v1/brands/{brand}"
    return [
        (
            "signup agency",
            lambda n: client.post(
                "/v1/signup",
                json={
                    "agency_name": n,
                    "name": "Ana",
                    "email": f"a-{uuid.uuid4().hex[:8]}@example.com",
                    "password": PASSWORD,
                },
            ),
            "agency_name",
        ),
        (
            "signup person",
            lambda n: client.post(
                "/v1/signup",
                json={
                    "agency_name": "Agency",
                    "name": n,
                    "email": f"a-{uuid.uuid4().hex[:8]}@example.com",
                    "password": PASSWORD,
                },
            ),
            "name",
        ),
        (
            "agency",
            lambda n: client.patch("/v1/agency", json={"name": n}, headers=owner.headers),
            "name",
        ),
        (
            "new brand",
            lambda n: client.post("/v1/brands", json={"name": n}, headers=owner.headers),
            "name",
        ),
        (
            "brand",
            lambda n: client.patch(base, json={"name": n}, headers=owner.headers),
            "name",
        ),
        (
            "API key",
            lambda n: client.post("/v1/api-keys", json={"name": n}, headers=owner.headers),
            "name",
        ),
        (
            "account label",
            lambda n: client.patch(
                f"{base}/accounts/{account}", json={"label": n}, headers=owner.headers
            ),
            "label",
        ),
        (
            "post label",
            lambda n: client.post(
                f"{base}/posts",
                json={"text": "Hi", "account_ids": [account], "labels": [n]},
                headers=owner.headers,
            ),
            "labels",
        ),
        (
            "campaign",
            lambda n: client.post(
                f"{base}/posts",
                json={"text": "Hi", "account_ids": [account], "campaign": n},
                headers=owner.headers,
            ),
            "campaign",
        ),
        (
            "CSV label",
            lambda n: client.post(
                f"{base}/posts/import",
                data=f'text,accounts,labels\nHi,{account},"{n}"\n'.encode(),
                headers={**owner.headers, "Content-Type": "text/csv"},
            ),
            "rows.2.labels",
        ),
    ]


def _strings(messages) -> str:
    """Messages of a field, whether a list or nested by list index ({"0": [...]})."""
    if isinstance(messages, dict):
        return " ".join(_strings(v) for v in messages.values())
    return " ".join(messages)


def test_invisible_and_bidi_override_names_are_refused_naming_the_field(
    client,
    make_agency,
    factory,
):
    owner = make_agency("Names", approval_mode="internal")
    brand = owner.brands[0]
    account = factory.account(owner, brand)
    for what, send, field in _names(client, owner, brand, account):
        for kind, name in BAD_NAMES.items():
            problem = assert_problem(send(name), 422)
            keys = [k for k in problem["errors"] if k == field or k.startswith(f"{field}.")]
            assert keys, (what, kind, problem["errors"])
            message = " ".join(_strings(problem["errors"][k]) for k in keys)
            expected = (
                "Bidirectional"
                if kind
                in {
                    "right-to-left override",
                    "left-to-right embedding",
                    "isolates",
                }
                else "shows something"
            )
            assert expected in message, (what, kind, message)


def test_names_in_any_script_with_marks_and_emoji_are_kept_as_given(
    client,
    make_agency,
    factory,
):
    owner = make_agency("Good names", approval_mode="internal")
    brand = owner.brands[0]
    account = factory.account(owner, brand)
    for what, send, _field in _names(client, owner, brand, account):
        for name in GOOD_NAMES:
            answer = send(name)
            # 202: a sign-up is only asked for here; the name is checked before anything is sent.
            assert answer.status_code in (200, 201, 202), (what, name, answer.get_json())
    renamed = client.patch(
        f"/v1/brands/{brand}", json={"name": GOOD_NAMES[1]}, headers=owner.headers
    )
    assert renamed.get_json()["name"] == GOOD_NAMES[1]


def test_the_invisible_characters_cover_every_format_character():
    listed = {c for lo, hi in _INVISIBLE for c in range(lo, hi + 1)}
    format_characters = {
        c for c in range(sys.maxunicode + 1) if unicodedata.category(chr(c)) == "Cf"
    }
    assert format_characters - listed == set()
    assert {c for lo, hi in _BIDI_CONTROLS for c in range(lo, hi + 1)} <= format_characters


def test_the_spec_states_the_name_rule_the_server_applies():
    spec = generate()
    brand = spec["components"]["schemas"]["BrandCreate"]["properties"]["name"]
    assert brand["pattern"] == NAME_PATTERN
    assert brand["minLength"] == 1


# -- instants ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "2030-01-01T10:00:00Z",
        "2030-01-01t10:00:00z",
        "2030-01-01T10:00:00+02:00",
        "2030-01-01T10:00:00.123456789-05:30",
        "2030-01-01T10:00:00-00:00",
    ],
)
def test_rfc_3339_instants_are_accepted(value):
    assert Timestamp().deserialize(value).tzinfo == UTC


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("20300101T100000Z", "Not an RFC 3339 date-time"),  # ISO 8601 basic format
        ("2030-W01-1T10:00:00Z", "Not an RFC 3339 date-time"),  # week date
        ("2030-001T10:00:00Z", "Not an RFC 3339 date-time"),  # ordinal date
        ("2030-01-01T10:00Z", "Not an RFC 3339 date-time"),  # no seconds
        ("2030-01-01 10:00:00Z", "Not an RFC 3339 date-time"),  # space for T
        ("2030-01-01T10:00:00+0200", "Not an RFC 3339 date-time"),  # offset without colon
        ("2030-01-01T10", "Not an RFC 3339 date-time"),
        ("2030-01-01", "Not an RFC 3339 date-time"),
        ("2030-01-01T10:00:00", "has no offset"),
        ("2030-02-30T10:00:00Z", "No such date or time"),
        ("2030-01-01T24:00:00Z", "No such date or time"),
        ("2030-01-01T10:00:00+24:00", "No such date or time"),
        ("1899-12-31T23:00:00Z", "between the years 1900 and 9000"),
    ],
)
def test_other_forms_are_422_with_a_clear_message(client, make_agency, factory, value, says):
    owner = make_agency("Instants", approval_mode="none")
    brand = owner.brands[0]
    post = factory.post(owner, brand, [factory.account(owner, brand)], status="approved")
    answer = client.post(
        f"/v1/brands/{brand}/posts/{post}/schedule", json={"at": value}, headers=owner.headers
    )
    problem = assert_problem(answer, 422)
    assert says in " ".join(problem["errors"]["at"]), problem


def test_the_spec_states_the_instant_rule_the_server_applies():
    spec = generate()
    calendar = spec["paths"]["/v1/brands/{brand_id}/calendar"]["get"]["parameters"]
    patterns = {p["name"]: p["schema"].get("pattern") for p in calendar if "schema" in p}
    assert patterns["from"] == patterns["to"] == Timestamp.PATTERN


def test_schedule_answers_in_utc_as_every_later_read(client, make_agency, factory):
    owner = make_agency("Utc", approval_mode="none")
    brand = owner.brands[0]
    post = factory.post(owner, brand, [factory.account(owner, brand)], status="approved")
    instant = (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=0)
    in_utc = instant.strftime("%Y-%m-%dT%H:%M:%S") + "+00:00"
    paris = (instant + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S") + "+02:00"
    answer = client.post(
        f"/v1/brands/{brand}/posts/{post}/schedule", json={"at": paris}, headers=owner.headers
    )
    assert answer.status_code == 200, answer.get_json()
    read = client.get(f"/v1/brands/{brand}/posts/{post}", headers=owner.headers).get_json()
    assert answer.get_json()["scheduled_at"] == read["scheduled_at"] == in_utc
    moved = client.post(
        f"/v1/brands/{brand}/posts/{post}/reschedule",
        json={"at": paris.replace("+02:00", "-05:00")},
        headers=owner.headers,
    )
    assert moved.get_json()["scheduled_at"].endswith("+00:00")


# -- handles in messages ------------------------------------------------------------------------


def test_messages_print_handles_as_the_network_shows_them(client, make_agency, factory):
    owner = make_agency("Handles", approval_mode="none")
    brand = owner.brands[0]
    # A handle stored with its "@": the message prints it once.
    account_id = factory.account(owner, brand, "bluesky", handle="@cafe.bsky.social")
    post = factory.post(owner, brand, [account_id], text="a" * 301, status="approved")
    answer = client.post(
        f"/v1/brands/{brand}/posts/{post}/schedule",
        json={"at": (datetime.now(UTC) + timedelta(days=1)).isoformat()},
        headers=owner.headers,
    )
    detail = assert_problem(answer, 422)["detail"]
    assert f"bluesky account @cafe.bsky.social ({account_id})" in detail
    assert "@@" not in detail
