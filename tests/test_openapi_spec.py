"""The committed spec is what the code generates, and every operation is fully documented."""

import json
from pathlib import Path

from app.openapi_dump import generate, render

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
