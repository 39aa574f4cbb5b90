"""Bodies the API cannot read, and addresses it does not have, are problems too (routing 404/405
and unexpected 500s are in test_conventions.py)."""

from __future__ import annotations

import pytest

from tests.helpers import assert_problem


def test_broken_json_body_is_a_400(client, make_agency):
    owner = make_agency(brands=0)
    response = client.post(
        "/v1/brands",
        data='{"name": "Café',
        headers={**owner.headers, "Content-Type": "application/json"},
    )
    assert_problem(response, 400)


def test_body_in_another_media_type_is_a_415(client, make_agency):
    owner = make_agency(brands=0)
    response = client.post(
        "/v1/brands",
        data="name=Café",
        headers={**owner.headers, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert_problem(response, 415)


@pytest.mark.parametrize("method", ["patch", "post"])
def test_missing_body_is_a_422_not_an_empty_change(client, make_agency, method):
    owner = make_agency(brands=1)
    path = f"/v1/brands/{owner.brands[0]}" if method == "patch" else "/v1/brands"
    body = assert_problem(getattr(client, method)(path, headers=owner.headers), 422)
    assert body["errors"] == {"_schema": ["A JSON body is required."]}


def test_malformed_id_in_a_path_is_a_404_from_routing(client, make_agency):
    owner = make_agency(brands=0)
    assert_problem(client.get("/v1/brands/not-an-id", headers=owner.headers), 404)
    # `accept` is not an invitation id: GET on it is a 405, not a lookup.
    assert_problem(client.get("/v1/invitations/accept", headers=owner.headers), 405)


def test_every_api_blueprint_uses_the_strict_body_parser(app):
    from app.api.http import Blueprint

    for name, blueprint in app.blueprints.items():
        if name != "health" and hasattr(blueprint, "ARGUMENTS_PARSER"):
            assert isinstance(blueprint, Blueprint), (
                f"blueprint {name!r}: use app.api.http.Blueprint, not flask_smorest's"
            )


def test_idempotent_upload_with_an_unnamed_part_is_not_a_500(client, make_agency):
    owner = make_agency(brands=1)
    boundary = "b0undary"
    body = (
        f"--{boundary}\r\nContent-Disposition: form-data\r\n\r\n{{}}\r\n"
        f'--{boundary}\r\nContent-Disposition: form-data; name="x"\r\n\r\n1\r\n--{boundary}--\r\n'
    )
    response = client.post(
        f"/v1/brands/{owner.brands[0]}/media",
        data=body,
        headers={
            **owner.headers,
            "Idempotency-Key": "unnamed-part",
            "Content-Type": f"multipart/form-data; boundary={boundary}",
        },
    )
    assert_problem(response, 422)
