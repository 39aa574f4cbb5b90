"""What every request and response goes through, whatever the route: the body's size, JSON
nesting, security headers, UTF-8 JSON, and the API's root (`GET /v1`)."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from app import create_app
from app.json_provider import MAX_JSON_DEPTH, json_depth
from tests.media_files import image_bytes

PROBLEM = "application/problem+json"
MIB = 1024 * 1024
SIGNUP = {
    "agency_name": "Agence Lumière",
    "name": "Ana Owner",
    "email": "ana@example.com",
    "password": "correct horse battery",
}


class BodyThatMustNotBeRead(io.RawIOBase):
    """A request body announced as huge: reading any of it fails the test."""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        raise AssertionError("the server read a body it should have refused from its length")


class EndlessBody(io.RawIOBase):
    """A body sent without Content-Length (chunked) that never ends; counts what was read."""

    def __init__(self) -> None:
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        buffer[: len(buffer)] = b" " * len(buffer)
        self.read_bytes += len(buffer)
        assert self.read_bytes < 10 * MIB, "the server kept reading past the limit"
        return len(buffer)


def _post_stream(client, url: str, stream: Any, *, length: int | None, **kwargs: Any):
    """POST a body the test client does not measure: from a stream, announced as `length`
    bytes, or chunked (no length, and the stream ended by the server, as gunicorn does)."""
    environ = {"wsgi.input": stream}
    if length is None:
        kwargs["headers"] = {**kwargs.get("headers", {}), "Transfer-Encoding": "chunked"}
        environ["wsgi.input_terminated"] = True
    else:
        environ["CONTENT_LENGTH"] = str(length)
    return client.post(url, environ_overrides=environ, **kwargs)


def _assert_too_large(response, limit: int) -> None:
    assert response.status_code == 413, response.get_data(as_text=True)
    assert response.content_type == PROBLEM
    problem = response.get_json()
    assert problem["status"] == 413
    assert f"at most {limit} bytes" in problem["detail"]


# -- request size ---------------------------------------------------------------------------------


def test_an_announced_150_mb_body_is_refused_before_it_is_read(app, client):
    assert app.config["MAX_CONTENT_LENGTH"] == MIB
    response = _post_stream(
        client,
        "/v1/signup",
        BodyThatMustNotBeRead(),
        length=150_000_000,
        content_type="application/json",
    )
    _assert_too_large(response, MIB)


def test_an_oversized_body_is_refused_before_authentication(client):
    # No credentials and a 150 MB body: the cheaper refusal comes first, nothing is read.
    response = _post_stream(
        client,
        "/v1/brands",
        BodyThatMustNotBeRead(),
        length=150_000_000,
        content_type="application/json",
    )
    _assert_too_large(response, MIB)


def test_a_chunked_body_is_cut_off_at_the_limit(client):
    body = EndlessBody()
    response = _post_stream(
        client, "/v1/signup", body, length=None, content_type="application/json"
    )
    _assert_too_large(response, MIB)
    assert body.read_bytes <= MIB + 64 * 1024


def test_a_body_under_the_limit_is_read(client):
    padded = json.dumps(SIGNUP) + " " * (MIB - 1000)
    response = client.post("/v1/signup", data=padded, content_type="application/json")
    assert response.status_code == 202, response.get_json()


def test_the_limit_is_configurable(app, client, monkeypatch):
    monkeypatch.setitem(app.config, "MAX_CONTENT_LENGTH", 100)
    response = client.post("/v1/signup", json=SIGNUP)
    _assert_too_large(response, 100)


def test_media_upload_takes_files_larger_than_the_app_limit(app, client, make_agency, monkeypatch):
    owner = make_agency()
    brand = owner.brands[0]
    content = image_bytes("PNG", (400, 400))
    monkeypatch.setitem(app.config, "MAX_CONTENT_LENGTH", 1000)
    assert len(content) > 1000
    response = client.post(
        f"/v1/brands/{brand}/media",
        data={"file": (io.BytesIO(content), "big.png")},
        headers=owner.headers,
        content_type="multipart/form-data",
    )
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["size_bytes"] == len(content)

    # Its own cap, MEDIA_MAX_BYTES (plus room for the form), is checked just as early.
    monkeypatch.setitem(app.config, "MEDIA_MAX_BYTES", 5000)
    refused = _post_stream(
        client,
        f"/v1/brands/{brand}/media",
        BodyThatMustNotBeRead(),
        length=150_000_000,
        content_type="multipart/form-data; boundary=x",
        headers=owner.headers,
    )
    _assert_too_large(refused, 5000 + 64 * 1024)


def test_csv_import_has_its_own_cap(app, client, make_agency, monkeypatch):
    owner = make_agency()
    url = f"/v1/brands/{owner.brands[0]}/posts/import"
    headers = {**owner.headers, "Content-Type": "text/csv"}
    monkeypatch.setitem(app.config, "MAX_CONTENT_LENGTH", 1000)
    rows = "text,accounts\n" + "A post,acc_01JD5ZQ7R9X4M2B8C6N3P1T0VW\n" * 100
    assert len(rows) > 1000
    # Read and checked row by row (an unknown account), not refused for its size.
    checked = client.post(url, data=rows, headers=headers)
    assert checked.status_code == 422
    assert "rows.2.accounts" in checked.get_json()["errors"]

    from app.services.post_import import MAX_BYTES

    oversized = client.post(url, data="text,accounts\n" + "x" * MAX_BYTES, headers=headers)
    assert oversized.status_code == 413
    assert oversized.content_type == PROBLEM
    announced = _post_stream(
        client, url, BodyThatMustNotBeRead(), length=150_000_000, headers=headers
    )
    _assert_too_large(announced, MAX_BYTES + 64 * 1024)


def test_the_spec_documents_413_on_every_body(app):
    spec = app.extensions["flask-smorest"]["apis"][""]["ext_obj"].spec.to_dict()
    missing = [
        f"{method.upper()} {path}"
        for path, operations in spec["paths"].items()
        for method, operation in operations.items()
        if "requestBody" in operation and "413" not in operation["responses"]
    ]
    assert not missing, missing


# -- JSON nesting ---------------------------------------------------------------------------------


def _nested(kind: str, depth: int) -> str:
    opening, closing = ("[", "]") if kind == "arrays" else ('{"a":', "}")
    return opening * depth + "1" + closing * depth


@pytest.mark.parametrize("kind", ["arrays", "objects"])
@pytest.mark.parametrize("depth", [1_000, 100_000])
def test_deeply_nested_json_is_a_400(client, make_agency, kind, depth):
    body = _nested(kind, depth)
    owner = make_agency()
    calls = [
        ("/v1/signup", {}),
        # With an Idempotency-Key, the body is fingerprinted (request.get_json) first.
        ("/v1/signup", {"Idempotency-Key": f"deep-{kind}-{depth}"}),
        ("/v1/brands", owner.headers),
        ("/v1/brands", {**owner.headers, "Idempotency-Key": f"deep-{kind}-{depth}"}),
    ]
    for url, headers in calls:
        response = client.post(url, data=body, content_type="application/json", headers=headers)
        assert response.status_code == 400, (url, headers, response.get_data(as_text=True))
        assert response.content_type == PROBLEM
        assert f"more than {MAX_JSON_DEPTH} levels" in response.get_json()["detail"]


def test_json_at_the_depth_limit_is_parsed(client):
    # Parsed, then refused by the schema (422), not by the depth check (400).
    body = {**SIGNUP, "name": json.loads(_nested("arrays", MAX_JSON_DEPTH - 1))}
    response = client.post("/v1/signup", json=body)
    assert response.status_code == 422, response.get_json()
    assert "name" in response.get_json()["errors"]


def test_json_depth_counts_what_nests():
    assert json_depth("1") == 0
    assert json_depth('{"a": [1, {"b": []}]}') == 4
    assert json_depth(b'[[], [], {"x": [1]}]') == 3
    # Brackets inside strings, escaped quotes included, do not count.
    assert json_depth(r'{"a": "[[[[\"{{{{"}') == 1
    assert json_depth(_nested("objects", 5000)) == 5000
    # Adversarial forms finish (the scan is linear): an unterminated string full of escaped
    # quotes, and a string that never closes after a trailing backslash.
    assert json_depth('"' + '\\"' * 500_000) == 0
    assert json_depth('["' + "\\" * 500_001) == 1


# -- headers --------------------------------------------------------------------------------------


@pytest.fixture
def cors_app(app_config):
    app = create_app({**app_config, "CORS_ORIGINS": ["https://app.example.com"]})

    @app.get("/boom")
    def _boom():
        raise RuntimeError("an unexpected failure")

    return app


def _assert_security_headers(response) -> None:
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


def test_every_response_carries_security_headers(cors_app, make_agency):
    client = cors_app.test_client()
    responses = {
        "index": client.get("/v1"),
        "health": client.get("/healthz"),
        "docs": client.get("/docs"),
        "spec": client.get("/openapi.json"),
        "401": client.get("/v1/brands"),
        "404": client.get("/v1/nothing-here"),
        "405": client.delete("/v1/signup"),
        "422": client.post("/v1/signup", json={}),
        "413": client.post("/v1/signup", data=b"x" * (MIB + 1), content_type="application/json"),
        "500": client.get("/boom"),
        "preflight": client.options(
            "/v1/brands",
            headers={
                "Origin": "https://app.example.com",
                "Access-Control-Request-Method": "POST",
            },
        ),
    }
    assert responses["500"].status_code == 500
    for name, response in responses.items():
        assert response.status_code < 300 or response.content_type == PROBLEM, name
        _assert_security_headers(response)


def test_vary_origin_when_cors_is_on(cors_app):
    client = cors_app.test_client()
    from_browser = client.get("/v1", headers={"Origin": "https://app.example.com"})
    assert from_browser.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    responses = (
        from_browser,
        client.get("/v1"),  # no Origin: flask-cors adds no Vary to these
        client.get("/v1/brands", headers={"Origin": "https://elsewhere.example.com"}),
        client.get("/healthz"),
    )
    for response in responses:
        vary = response.headers.getlist("Vary")
        assert len(vary) == 1 and "Origin" in [v.strip() for v in vary[0].split(",")], vary


def test_no_vary_origin_when_cors_is_off(client):
    assert "Origin" not in client.get("/v1").headers.get("Vary", "")


# -- UTF-8 JSON -----------------------------------------------------------------------------------


def test_json_is_utf8_not_escapes(client, make_agency):
    owner = make_agency(brands=0)
    response = client.post("/v1/brands", json={"name": "Agence Lumière"}, headers=owner.headers)
    assert response.status_code == 201
    # application/json is UTF-8 by definition (RFC 8259, section 8.1).
    assert response.mimetype == "application/json"
    raw = response.get_data()
    assert "Agence Lumière".encode() in raw
    assert b"\\u00e8" not in raw
    problem = client.post("/v1/signup", json={**SIGNUP, "email": "pas-une-adresse-é"})
    assert problem.status_code == 422 and problem.content_type == PROBLEM
    assert b"\\u00e9" not in problem.get_data()


def test_a_lone_surrogate_is_still_valid_json(app):
    with app.test_request_context():
        text = app.json.dumps({"name": "\ud800 Lumière"})
    assert json.loads(text) == {"name": "\ud800 Lumière"}
    text.encode("utf-8")  # sendable


# -- the API's root -------------------------------------------------------------------------------


def test_api_index_links_to_docs_spec_and_health(client):
    response = client.get("/v1")
    assert response.status_code == 200
    body = response.get_json()
    assert body["version"] == "v1"
    links = body["links"]
    assert set(links) == {"docs", "openapi", "health", "ready"}
    for name, url in links.items():
        assert url.startswith("http://localhost/"), (name, url)
        assert client.get(url).status_code in (200, 503), name  # readyz: 503 without Redis


def test_api_index_is_in_the_spec(app):
    spec = app.extensions["flask-smorest"]["apis"][""]["ext_obj"].spec.to_dict()
    operation = spec["paths"]["/v1"]["get"]
    assert operation["operationId"] == "getApiIndex"
    assert operation["security"] == []
