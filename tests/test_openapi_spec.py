"""The committed spec is what the code generates, and every operation is fully documented."""

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from app.openapi_dump import generate, render
from app.schemas.common import IANA_TIMEZONES

SPEC_PATH = Path(__file__).resolve().parent.parent / "openapi" / "openapi.json"


def test_committed_spec_matches_code():
    generated = render(generate())
    committed = SPEC_PATH.read_text()
    assert json.loads(committed) == json.loads(generated), (
        "openapi/openapi.json is stale: run `make openapi` and commit it"
    )


def _operations(spec: dict):
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            if method in {"get", "post", "put", "patch", "delete"}:
                yield f"{method.upper()} {path}", path, op


def test_every_operation_has_summary_description_security_and_errors():
    spec = generate()
    problems = []
    for where, path, op in _operations(spec):
        if not op.get("summary"):
            problems.append(f"{where}: no summary")
        if not op.get("description"):
            problems.append(f"{where}: no description (docstring: summary, blank line, paragraph)")
        if "security" not in op:
            problems.append(f"{where}: no security requirement")
            continue
        responses = op.get("responses", {})
        expected = {"default"}
        if op["security"]:
            expected |= {"401", "403"}
        if "{" in path:
            expected.add("404")
        if "requestBody" in op:
            expected |= {"400", "415", "422"}
        if any(p.get("in") == "query" for p in op.get("parameters", [])):
            expected.add("422")
        for status in sorted(expected - set(responses)):
            problems.append(f"{where}: no {status} documented")
    assert not problems, "\n".join(problems)


def test_secured_operations_accept_a_token_or_an_api_key():
    spec = generate()
    schemes = spec["components"]["securitySchemes"]
    assert schemes["bearerAuth"]["scheme"] == "bearer"
    assert schemes["apiKeyAuth"] == {**schemes["apiKeyAuth"], "in": "header", "name": "X-API-Key"}
    for where, _path, op in _operations(spec):
        assert op["security"] in ([], [{"bearerAuth": []}, {"apiKeyAuth": []}]), where


def test_every_error_response_is_problem_json():
    spec = generate()
    components = spec["components"]["responses"]
    for where, _path, op in _operations(spec):
        for status, response in op["responses"].items():
            if status.startswith(("2", "3")):
                continue
            if "$ref" in response:
                response = components[response["$ref"].rsplit("/", 1)[-1]]
            assert list(response.get("content", {})) == ["application/problem+json"], (
                f"{where} {status}"
            )


def test_errors_are_documented_as_problem_json():
    spec = generate()
    default = spec["components"]["responses"]["DEFAULT_ERROR"]
    assert list(default["content"]) == ["application/problem+json"]


# -- a contract for generated clients -------------------------------------------------------------
# openapi-python-client and openapi-typescript, with their default options, must accept the spec
# and give precise types (tests/test_client_generation.py runs them); these checks say why
# sooner, without Node or a generator.

OPERATION_ID = re.compile(r"^[a-z]+(?:[A-Z][a-z0-9]*)*$")


def _walk(node: Any, where: str = "#") -> Iterator[tuple[str, dict]]:
    """Every JSON object in the spec, with its JSON pointer."""
    if isinstance(node, dict):
        yield where, node
        for key, value in node.items():
            yield from _walk(value, f"{where}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _walk(value, f"{where}/{index}")


def test_every_operation_has_a_unique_conventional_operation_id():
    """Generated clients name their functions after it (`listPosts`, `approvePost`): without
    one they get `post_v1_brands_brand_id_posts_post_id_approve`."""
    seen: dict[str, str] = {}
    problems = []
    for where, _path, op in _operations(generate()):
        operation_id = op.get("operationId")
        if not operation_id:
            problems.append(f"{where}: no operationId (add @blp.doc(operationId=...))")
        elif not OPERATION_ID.match(operation_id):
            problems.append(f"{where}: operationId {operation_id!r} is not lowerCamelCase")
        elif operation_id in seen:
            problems.append(f"{where}: operationId {operation_id!r} also on {seen[operation_id]}")
        else:
            seen[operation_id] = where
    assert not problems, "\n".join(problems)


def test_operation_ids_are_the_conventional_names():
    """A few names a front-end developer will look for, as they are spelled."""
    ids = {where: op["operationId"] for where, _path, op in _operations(generate())}
    assert ids["GET /v1/brands/{brand_id}/posts"] == "listPosts"
    assert ids["GET /v1/brands/{brand_id}/posts/{post_id}"] == "getPost"
    assert ids["POST /v1/brands/{brand_id}/posts"] == "createPost"
    assert ids["PATCH /v1/brands/{brand_id}/posts/{post_id}"] == "updatePost"
    assert ids["POST /v1/brands/{brand_id}/posts/{post_id}/approve"] == "approvePost"
    assert ids["GET /v1/brands"] == "listBrands"
    assert ids["POST /v1/brands"] == "createBrand"


# Enums turn into types and identifiers: a long one makes every client carry it, and values that
# differ only by punctuation (`GMT0`, `GMT-0`) become one identifier and crash
# openapi-python-client. Anything longer than this should be a validated string.
MAX_ENUM_VALUES = 30


def test_no_giant_or_colliding_enum():
    problems = []
    for where, node in _walk(generate()):
        values = node.get("enum")
        if not isinstance(values, list):
            continue
        if len(values) > MAX_ENUM_VALUES:
            problems.append(f"{where}: an enum of {len(values)} values")
        names: dict[str, Any] = {}
        for value in values:
            name = re.sub(r"[^0-9A-Za-z]", "", str(value)).upper()
            if name in names:
                problems.append(f"{where}: {names[name]!r} and {value!r} make one identifier")
            names[name] = value
    assert not problems, "\n".join(problems)


def test_timezone_is_a_validated_string_with_an_example():
    schemas = generate()["components"]["schemas"]
    for name in ("BrandCreate", "BrandUpdate"):
        timezone = schemas[name]["properties"]["timezone"]
        assert timezone["type"] == "string" and "enum" not in timezone, name
        assert timezone["example"] == "Europe/Paris"
        # The pattern the spec states lets every real name through (the server then checks the
        # name is in the tz database).
        pattern = re.compile(timezone["pattern"])
        assert all(pattern.search(zone) for zone in IANA_TIMEZONES)
        assert max(map(len, IANA_TIMEZONES)) <= timezone["maxLength"]


def test_me_is_precisely_typed():
    schemas = generate()["components"]["schemas"]
    me = schemas["Me"]["properties"]
    assert me["kind"]["enum"] == ["user", "api_key"]
    # The person, or null for an API key: the User schema itself, not "any object".
    assert me["user"]["anyOf"] == [{"$ref": "#/components/schemas/User"}, {"type": "null"}]
    access = schemas["MembershipSummary"]["properties"]
    assert access["agency_role"]["anyOf"][1] == {"type": "null"}
    assert access["agency_role"]["anyOf"][0]["enum"] == ["owner", "admin", "member"]
    assert set(access["brand_roles"]["additionalProperties"]["enum"]) == {
        "manager",
        "editor",
        "approver",
        "client",
    }


def test_no_composition_with_a_bare_object():
    """`anyOf: [{type: object}, {$ref: User}]` reads as "any object": a generated client then
    types the field as a dict, or as a union it cannot narrow."""
    problems = []
    for where, node in _walk(generate()):
        for keyword in ("anyOf", "oneOf", "allOf"):
            for alternative in node.get(keyword, []):
                bare = set(alternative) <= {"type", "nullable", "description"}
                if bare and alternative.get("type") in ("object", None):
                    problems.append(f"{where}/{keyword}: {alternative}")
    assert not problems, "\n".join(problems)


def test_schemas_carry_no_default():
    """openapi-typescript (default options) makes a property with a `default` required, as if
    the server always sent it: in a request body, that would force clients to send it. The
    default the server applies is told in the description instead."""
    schemas = generate()["components"]["schemas"]
    found = [where for where, node in _walk(schemas) if "default" in node]
    assert not found, found
    described = schemas["BrandCreate"]["properties"]
    assert 'Defaults to `"UTC"`' in described["timezone"]["description"]
    assert 'Defaults to `"none"`' in described["approval_mode"]["description"]


def test_no_null_example():
    spec = generate()
    found = [where for where, node in _walk(spec) if "example" in node and node["example"] is None]
    assert not found, found


def test_servers_and_license():
    spec = generate()
    # Relative: wherever the spec was fetched from; no deployment's address in the committed spec.
    assert spec["servers"] == [{"url": "/", "description": "The server that serves this spec"}]
    assert spec["info"]["license"]["name"] == "AGPL-3.0-or-later"  # the SPDX identifier
    assert spec["info"]["license"]["url"] == "https://spdx.org/licenses/AGPL-3.0-or-later.html"


def test_blp_doc_documents_without_wrapping_the_view():
    """`@blp.doc(operationId=...)` sits on every view: it must cost requests nothing."""
    from app.api.http import Blueprint

    def view():
        return "ok"

    documented = Blueprint.doc(operationId="listThings")(Blueprint.doc(summary="Things")(view))
    assert documented is view
    assert view._apidoc["manual_doc"] == {"operationId": "listThings", "summary": "Things"}
