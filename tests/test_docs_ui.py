"""/docs works offline: every file the page references is served by this app, with its type,
and nothing comes from another origin (the page used to load Swagger UI from a CDN)."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

# What a browser decides from the Content-Type (scripts and styles of another type are refused
# under X-Content-Type-Options: nosniff).
EXPECTED_TYPES = {
    ".js": {"text/javascript", "application/javascript"},
    ".css": {"text/css"},
    ".png": {"image/png"},
}


class _References(HTMLParser):
    """The URLs a page makes the browser load, and its inline scripts."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts = 0
        self._in_inline_script = False
        self.data_attributes: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "script":
            if attributes.get("src"):
                self.urls.append(attributes["src"] or "")
            else:
                self._in_inline_script = True
        elif tag == "link" and attributes.get("href"):
            self.urls.append(attributes["href"] or "")
        elif tag in ("img", "source", "iframe") and attributes.get("src"):
            self.urls.append(attributes["src"] or "")
        for name, value in attrs:
            if name.startswith("data-") and value is not None:
                self.data_attributes[name] = value

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_inline_script = False

    def handle_data(self, data: str) -> None:
        if self._in_inline_script and data.strip():
            self.inline_scripts += 1


def _same_origin(url: str) -> bool:
    parts = urlsplit(url)
    return not parts.scheme and not parts.netloc


def test_every_asset_of_the_docs_page_is_served_here(client):
    page = client.get("/docs")
    assert page.status_code == 200
    assert page.mimetype == "text/html"
    references = _References()
    references.feed(page.get_data(as_text=True))
    assert references.urls, "the page loads nothing: Swagger UI is missing"

    stylesheets = []
    for url in references.urls:
        assert _same_origin(url), f"{url} comes from another origin"
        served = client.get(urljoin("/docs", url))
        assert served.status_code == 200, url
        extension = re.search(r"\.[a-z]+$", urlsplit(url).path).group(0)
        assert served.mimetype in EXPECTED_TYPES[extension], (url, served.mimetype)
        assert served.data, url
        if extension == ".css":
            stylesheets.append(served.get_data(as_text=True))

    # Images and fonts the stylesheets pull in: inline data, or files of this origin.
    for css in stylesheets:
        for url in re.findall(r"url\(\s*['\"]?([^'\")]+)", css):
            assert url.startswith("data:") or _same_origin(url), url

    # The spec the page shows is this app's.
    spec_url = references.data_attributes["data-spec-url"]
    assert _same_origin(spec_url)
    spec = client.get(spec_url)
    assert spec.status_code == 200 and spec.mimetype == "application/json"
    assert spec.get_json()["info"]["title"] == "Relais API"


def test_docs_page_runs_under_a_strict_content_security_policy(client):
    page = client.get("/docs")
    references = _References()
    references.feed(page.get_data(as_text=True))
    assert references.inline_scripts == 0
    policy = page.headers["Content-Security-Policy"]
    assert "script-src 'self';" in policy and "default-src 'none'" in policy


def test_only_the_page_files_are_served(client):
    assert client.get("/docs/assets/swagger-ui.css").status_code == 200
    for name in ("index.html", "oauth2-redirect.html", "LICENSE", "..%2Fdocs.py", "docs.py"):
        response = client.get(f"/docs/assets/{name}")
        assert response.status_code == 404, name
        assert response.mimetype == "application/problem+json"
