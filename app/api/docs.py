"""The docs page, `/docs`: Swagger UI on the spec, served same-origin from the pinned
`flask-swagger-ui` package (whose version is Swagger UI's), so it works offline and behind a
firewall, and loads nothing from a CDN.

The page holds no inline script (its start-up code is `docs.js`, next to this module), so it
is served with a Content-Security-Policy that allows scripts from this origin only.
"""

from __future__ import annotations

import hashlib
from importlib.metadata import version
from pathlib import Path

import flask_swagger_ui
from flask import Blueprint, Response, abort, render_template_string, send_from_directory, url_for

blp = Blueprint("docs", __name__)

SWAGGER_UI_DIR = Path(flask_swagger_ui.__file__).resolve().parent / "dist"
SWAGGER_UI_VERSION = version("flask-swagger-ui")
START_SCRIPT = Path(__file__).with_name("docs.js")

# What the page loads, and nothing else of the package is served. Types are stated rather than
# guessed from the host's mime tables (browsers refuse a script of the wrong type under nosniff).
ASSETS = {
    "swagger-ui.css": (SWAGGER_UI_DIR, "text/css"),
    "swagger-ui-bundle.js": (SWAGGER_UI_DIR, "text/javascript"),
    "favicon-32x32.png": (SWAGGER_UI_DIR, "image/png"),
    "favicon-16x16.png": (SWAGGER_UI_DIR, "image/png"),
    "docs.js": (START_SCRIPT.parent, "text/javascript"),
}

# Swagger UI sets inline styles on its elements (hence 'unsafe-inline' for styles only) and
# draws its icons from data: URLs; "Try it out" calls this origin.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>{{ title }}</title>
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <link rel="stylesheet" href="{{ asset('swagger-ui.css') }}">
  <link rel="icon" type="image/png" href="{{ asset('favicon-32x32.png') }}" sizes="32x32">
  <link rel="icon" type="image/png" href="{{ asset('favicon-16x16.png') }}" sizes="16x16">
</head>
<body>
  <div id="swagger-ui" data-spec-url="{{ spec_url }}"></div>
  <script src="{{ asset('swagger-ui-bundle.js') }}"></script>
  <script src="{{ asset('docs.js') }}"></script>
</body>
</html>
"""


# A version in each address (Swagger UI's, or our script's digest): a new file is a new URL,
# so browsers may keep the files a day and still never run a stale one.
_VERSIONS = {"docs.js": hashlib.sha256(START_SCRIPT.read_bytes()).hexdigest()[:12]}


def _asset_url(name: str) -> str:
    return url_for("docs.asset", name=name, v=_VERSIONS.get(name, SWAGGER_UI_VERSION))


@blp.get("/docs")
def page() -> Response:
    """Swagger UI on /openapi.json."""
    html = render_template_string(
        PAGE,
        title="Relais API",
        asset=_asset_url,
        spec_url=url_for("api-docs.openapi_json"),
    )
    response = Response(html, mimetype="text/html")
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    return response


@blp.get("/docs/assets/<name>")
def asset(name: str) -> Response:
    """One of the page's files."""
    if name not in ASSETS:
        abort(404)
    folder, mimetype = ASSETS[name]
    return send_from_directory(folder, name, mimetype=mimetype, max_age=86400)
