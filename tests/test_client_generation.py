"""What a front-end developer runs on the committed spec, with each tool's default options:
redocly's recommended lint, openapi-python-client (its client then used against a live server),
and openapi-typescript with openapi-fetch, type-checked by tsc.

The npm tools are installed once into RELAIS_PEERS_CACHE (tests/peers/npm.py); without Node,
or when the install fails, their tests skip and say why.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from werkzeug.serving import make_server

from tests.peers import npm

SPEC = Path(__file__).resolve().parent.parent / "openapi" / "openapi.json"

SPEC_TOOLS = [
    "@redocly/cli@2.77.0",
    "openapi-typescript@7.13.0",
    "typescript@5.9.3",  # openapi-typescript 7 does not work with TypeScript 7
    "openapi-fetch@0.17.0",
]
# Redocly sends usage data and looks for updates unless told not to; the suite talks to nobody.
QUIET_REDOCLY = {
    "REDOCLY_TELEMETRY": "off",
    "REDOCLY_SUPPRESS_UPDATE_NOTICE": "true",
    "REDOCLY_SUPPRESS_NOTIFICATIONS": "true",
}


@pytest.fixture(scope="module")
def spec_tools() -> Path:
    return npm.require("spec-tools", SPEC_TOOLS) / "node_modules"


def _run(command: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=300, **kwargs)


# -- redocly lint --------------------------------------------------------------------------------

# Warnings the recommended rules may still give on our spec, each (rule, where) with the reason
# it stays. Add one only with its reason.
ACCEPTED_REDOCLY_WARNINGS: dict[tuple[str, str], str] = {
    ("operation-4xx-response", "#/paths/~1v1/get/responses"): (
        "GET /v1 is a public index with no parameter and no body: nothing a client sends can "
        "make it a 4xx, and a documented one would be a lie."
    ),
}


def test_redocly_recommended_rules_find_nothing(spec_tools: Path, tmp_path: Path):
    try:
        npm.check_node((20, 19))  # @redocly/cli 2.x
    except npm.NpmUnavailable as exc:
        npm.skip(f"redocly cannot run here: {exc}")
    done = _run(
        [str(spec_tools / ".bin" / "redocly"), "lint", str(SPEC), "--extends=recommended"]
        + ["--format=json"],
        cwd=tmp_path,  # no redocly.yaml up the tree: the recommended rules, as they ship
        env={**os.environ, **QUIET_REDOCLY},
    )
    report = json.loads(done.stdout)
    found = [
        f"{p['severity']} {p['ruleId']}: {p['message']} at {p['location'][0]['pointer']}"
        for p in report["problems"]
        if p["severity"] == "error"
        or (p["ruleId"], p["location"][0]["pointer"]) not in ACCEPTED_REDOCLY_WARNINGS
    ]
    assert not found, "\n".join(found)


# -- openapi-python-client -----------------------------------------------------------------------

# What openapi-python-client warns about and leaves out, each with the reason it stays: the
# client still has the three operations, it only reads their bodies as raw bytes.
ACCEPTED_PYTHON_CLIENT_WARNINGS = {
    # A CSV body: the generator takes JSON, forms and octet-stream only; the same operation
    # takes the file as multipart/form-data, which the generated function sends.
    "POST /v1/brands/{brand_id}/posts/import",
    # Image and video bytes in the media's own type: the generator parses JSON and
    # octet-stream only; the response's `content` has the bytes.
    "GET /v1/brands/{brand_id}/media/{media_id}/content",
    "GET /v1/media-files/{token}",
}


@pytest.fixture(scope="module")
def python_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    generator = Path(sys.executable).with_name("openapi-python-client")
    if not generator.exists():
        pytest.skip("openapi-python-client is not installed (pip install -e '.[dev]')")
    out = tmp_path_factory.mktemp("python-client") / "relais-client"
    # Default options; the generator formats its output with ruff, found on PATH.
    path = f"{generator.parent}{os.pathsep}{os.environ.get('PATH', '')}"
    done = _run(
        [str(generator), "generate", "--path", str(SPEC), "--output-path", str(out)],
        env={**os.environ, "PATH": path},
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    warned = {
        line.removeprefix("WARNING parsing ").rsplit(" within ", 1)[0]
        for line in output.splitlines()
        if line.startswith("WARNING parsing ")
    }
    assert warned == ACCEPTED_PYTHON_CLIENT_WARNINGS, output
    sys.path.insert(0, str(out))
    try:
        yield importlib.import_module("relais_api_client")
    finally:
        sys.path.remove(str(out))
        for name in [m for m in sys.modules if m.split(".")[0] == "relais_api_client"]:
            del sys.modules[name]


@pytest.fixture
def live_server(app) -> Iterator[str]:
    """The suite's app on a free port of 127.0.0.1, served by werkzeug in a thread."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()


def _sign_up(client_module: ModuleType, base_url: str, app):
    """A new agency's owner, signed in: ask, read the confirmation mail, confirm (the token
    arrives by mail only, as it does for a person), then sign in."""
    from relais_api_client import AuthenticatedClient, Client
    from relais_api_client.api.identity import login, signup, verify_signup
    from relais_api_client.models import (
        Accepted,
        Signup,
        SignupResult,
        SignupVerify,
        TokenPair,
        TokenRequest,
    )

    from tests.mail import last_mail, token_in

    anonymous = Client(base_url=base_url, raise_on_unexpected_status=True)
    email, password = f"ana-{uuid.uuid4().hex[:8]}@example.com", "correct horse battery"
    body = Signup(agency_name="Agence Lumière", name="Ana", email=email, password=password)
    assert isinstance(signup.sync(client=anonymous, body=body), Accepted)
    token = token_in(last_mail(app, email), "/verify-email")
    confirmed = verify_signup.sync(
        client=anonymous, body=SignupVerify(token=token, password=password)
    )
    assert isinstance(confirmed, SignupResult)
    tokens = login.sync(client=anonymous, body=TokenRequest(email=email, password=password))
    assert isinstance(tokens, TokenPair)
    return AuthenticatedClient(
        base_url=base_url, token=tokens.access_token, raise_on_unexpected_status=True
    )


def test_generated_python_client_works_against_a_live_server(python_client, live_server, app):
    from relais_api_client.api.brands import create_brand, get_brand, list_brands
    from relais_api_client.api.identity import get_me
    from relais_api_client.models import Brand, BrandCreate, BrandPage, Me, MeKind, Problem, User

    owner = _sign_up(python_client, live_server, app)

    me = get_me.sync(client=owner)
    assert isinstance(me, Me) and me.kind == MeKind.USER and isinstance(me.user, User)

    # Only the name is required: the time zone and the approval mode have server defaults.
    brand = create_brand.sync(client=owner, body=BrandCreate(name="Café Lumière"))
    assert isinstance(brand, Brand) and brand.timezone == "UTC"
    body = BrandCreate(name="Bistro", timezone="Europe/Paris")
    paris = create_brand.sync(client=owner, body=body)
    assert isinstance(paris, Brand) and paris.timezone == "Europe/Paris"

    page = list_brands.sync(client=owner, limit=10)
    assert isinstance(page, BrandPage)
    assert [b.id for b in page.items] == [brand.id, paris.id]

    # An error is a typed problem document, parsed from application/problem+json.
    missing = get_brand.sync_detailed(brand_id="brd_" + "0" * 26, client=owner)
    assert missing.status_code == 404
    assert isinstance(missing.parsed, Problem)
    assert missing.parsed.status == 404 and missing.parsed.detail


# -- openapi-typescript + openapi-fetch + tsc ----------------------------------------------------

# Calls a front end makes, written as a front-end developer would. tsc fails if the spec makes a
# defaulted field required, loses an operationId, or types `Me` loosely.
CLIENT_TS = """\
import createClient from "openapi-fetch";
import type { components, operations, paths } from "./schema";

type Brand = components["schemas"]["Brand"];
type Problem = components["schemas"]["Problem"];
type ApprovePost = operations["approvePost"];
type ListPosts = operations["listPosts"];

const api = createClient<paths>({ baseUrl: "http://127.0.0.1:8000" });

export async function walkThrough(mailedToken: string): Promise<Brand[]> {
  const asked = await api.POST("/v1/signup", {
    body: {
      agency_name: "Agence Lumière",
      name: "Ana",
      email: "ana@example.com",
      password: "correct horse battery",
    },
  });
  if (asked.error) throw new Error(asked.error.detail);
  const signedUp = await api.POST("/v1/signup/verify", {
    body: { token: mailedToken, password: "correct horse battery" },
  });
  if (signedUp.error) throw new Error(signedUp.error.detail);
  const headers = { Authorization: `Bearer ${signedUp.data.tokens.access_token}` };

  const me = await api.GET("/v1/me", { headers });
  if (me.data) {
    const kind: "user" | "api_key" = me.data.kind;
    const name: string | undefined = me.data.user?.name;
    console.log(kind, name);
  }

  const created = await api.POST("/v1/brands", { body: { name: "Café Lumière" }, headers });
  if (created.error) throw new Error(created.error.title);
  const zone: string = created.data.timezone;
  console.log(zone);

  const missing = await api.GET("/v1/brands/{brand_id}", {
    params: { path: { brand_id: "brd_00000000000000000000000000" } },
    headers,
  });
  if (missing.error) {
    const problem: Problem = missing.error;
    console.log(problem.status, problem.detail);
  }

  const query: ListPosts["parameters"]["query"] = { limit: 10 };
  const approved: ApprovePost["responses"][200]["content"]["application/json"]["status"] =
    "approved";
  console.log(query, approved);

  const page = await api.GET("/v1/brands", { params: { query: { limit: 10 } }, headers });
  return page.data?.items ?? [];
}
"""

TSCONFIG = {
    "compilerOptions": {
        "strict": True,
        "noEmit": True,
        "target": "ES2022",
        "module": "ESNext",
        "moduleResolution": "Bundler",
        "lib": ["ES2022", "DOM"],
        "skipLibCheck": True,
    },
    "files": ["client.ts"],
}


def test_typescript_client_type_checks(spec_tools: Path, tmp_path: Path):
    (tmp_path / "node_modules").symlink_to(spec_tools, target_is_directory=True)
    generated = _run(
        [str(spec_tools / ".bin" / "openapi-typescript"), str(SPEC), "-o", "schema.d.ts"],
        cwd=tmp_path,
    )
    assert generated.returncode == 0, generated.stdout + generated.stderr
    (tmp_path / "client.ts").write_text(CLIENT_TS)
    (tmp_path / "tsconfig.json").write_text(json.dumps(TSCONFIG))
    checked = _run([str(spec_tools / ".bin" / "tsc"), "--noEmit", "-p", "."], cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
