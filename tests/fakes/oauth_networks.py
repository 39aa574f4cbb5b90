"""Fakes of the OAuth 2 networks, following each one's documented endpoints.

Each fake is an authorization server (authorize → 302 with code and state, token with
authorization_code and refresh_token grants, PKCE S256 checked when a challenge was sent,
revocation) plus the "who am I" endpoints our connectors call. `approve(url)` plays the person
clicking "Allow" and returns the code and state the browser would bring back.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

from tests.fakes.http_server import FakeServer, Request, Response


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _oauth_error(error: str, status: int = 400) -> Response:
    return Response(status, {"error": error, "error_description": f"fake: {error}"})


class FakeOAuthNetwork(FakeServer):
    authorize_path = "/oauth/authorize"
    token_path = "/oauth/token"
    revoke_path: str | None = "/oauth/revoke"
    client_auth = "post"  # or "basic"
    pkce_required = False
    access_ttl: int | None = 3600
    issues_refresh = True
    rotates_refresh = False

    def __init__(self, client_id: str = "", client_secret: str = "") -> None:
        super().__init__()
        self.clients: dict[str, dict[str, Any]] = {}
        if client_id:
            self.clients[client_id] = {"secret": client_secret, "redirect_uris": None}
        self.codes: dict[str, dict[str, Any]] = {}
        self.access_tokens: dict[str, str] = {}
        self.refresh_tokens: dict[str, str] = {}
        self.revoked: list[str] = []
        self.user = "user-1"
        self.route("GET", self.authorize_path)(self._authorize)
        self.route("POST", self.token_path)(self._token)
        if self.revoke_path:
            self.route("POST", self.revoke_path)(self._revoke)

    # -- the person ------------------------------------------------------------------------------

    def approve(self, authorization_url: str) -> tuple[str, str]:
        """GET the authorization URL as a browser would; (code, state) from the redirect."""
        response = httpx.get(authorization_url, follow_redirects=False)
        assert response.status_code == 302, response.text
        query = parse_qs(urlsplit(response.headers["location"]).query)
        return query["code"][0], query["state"][0]

    # -- authorization server ----------------------------------------------------------------------

    def _authorize(self, request: Request) -> Response:
        q = request.query
        client = self.clients.get(q.get("client_id", ""))
        if client is None or q.get("response_type") != "code" or not q.get("redirect_uri"):
            return _oauth_error("invalid_request")
        allowed = client.get("redirect_uris")
        if allowed is not None and q["redirect_uri"] not in allowed:
            return _oauth_error("invalid_request")
        if self.pkce_required and not q.get("code_challenge"):
            return _oauth_error("invalid_request")
        if q.get("code_challenge") and q.get("code_challenge_method") != "S256":
            return _oauth_error("invalid_request")
        code = secrets.token_urlsafe(16)
        self.codes[code] = {
            "client_id": q["client_id"],
            "redirect_uri": q["redirect_uri"],
            "challenge": q.get("code_challenge"),
            "scope": q.get("scope", ""),
            "user": self.user,
        }
        location = q["redirect_uri"] + "?" + urlencode({"code": code, "state": q.get("state", "")})
        return Response(302, None, {"Location": location})

    def _client_of(self, request: Request) -> str | None:
        params = request.params
        if self.client_auth == "basic":
            header = request.headers.get("authorization", "")
            if not header.startswith("Basic "):
                return None
            client_id, _, secret = base64.b64decode(header[6:]).decode().partition(":")
        else:
            client_id, secret = params.get("client_id", ""), params.get("client_secret", "")
        client = self.clients.get(client_id)
        return client_id if client and client["secret"] == secret else None

    def issue(self, user: str, scope: str = "") -> dict[str, Any]:
        access = "at-" + secrets.token_urlsafe(16)
        self.access_tokens[access] = user
        body: dict[str, Any] = {"access_token": access, "token_type": "Bearer", "scope": scope}
        if self.access_ttl:
            body["expires_in"] = self.access_ttl
        if self.issues_refresh:
            refresh = "rt-" + secrets.token_urlsafe(16)
            self.refresh_tokens[refresh] = user
            body["refresh_token"] = refresh
        return body

    def _token(self, request: Request) -> Response:
        client_id = self._client_of(request)
        if client_id is None:
            return _oauth_error("invalid_client", 401)
        params = request.params
        grant = params.get("grant_type")
        if grant == "authorization_code":
            issued = self.codes.pop(params.get("code", ""), None)
            if issued is None or issued["client_id"] != client_id:
                return _oauth_error("invalid_grant")
            if issued["redirect_uri"] != params.get("redirect_uri"):
                return _oauth_error("invalid_grant")
            verifier = params.get("code_verifier", "")
            if issued["challenge"] and _s256(verifier) != issued["challenge"]:
                return _oauth_error("invalid_grant")
            return Response(200, self.issue(issued["user"], issued["scope"]))
        if grant == "refresh_token" and self.issues_refresh:
            token = params.get("refresh_token", "")
            user = self.refresh_tokens.get(token)
            if user is None:
                return _oauth_error("invalid_grant")
            body = self.issue(user)
            if not self.rotates_refresh:
                self.refresh_tokens.pop(body["refresh_token"])
                del body["refresh_token"]
            else:
                del self.refresh_tokens[token]
            return Response(200, body)
        return _oauth_error("unsupported_grant_type")

    def _revoke(self, request: Request) -> Response:
        if self._client_of(request) is None:
            return _oauth_error("invalid_client", 401)
        token = request.params.get("token", "")
        self.revoked.append(token)
        self.access_tokens.pop(token, None)
        self.refresh_tokens.pop(token, None)
        return Response(200, {})

    def user_of(self, request: Request) -> str | None:
        return self.access_tokens.get(request.bearer or "")


class FakeMastodon(FakeOAuthNetwork):
    """docs.joinmastodon.org: POST /api/v1/apps, /oauth/*, verify_credentials. No expiry."""

    access_ttl = None
    issues_refresh = False

    def __init__(self) -> None:
        super().__init__()
        self.route("POST", "/api/v1/apps")(self._register)
        self.route("GET", "/api/v1/accounts/verify_credentials")(self._verify)
        self.route("GET", "/api/v2/instance")(self._instance)
        self.max_characters = 1000

    def _instance(self, request: Request) -> Response:
        return Response(
            200,
            {
                "domain": "127.0.0.1",
                "configuration": {
                    "statuses": {
                        "max_characters": self.max_characters,
                        "max_media_attachments": 4,
                        "characters_reserved_per_url": 23,
                    },
                    "media_attachments": {
                        "image_size_limit": 16777216,
                        "video_size_limit": 103809024,
                    },
                },
            },
        )

    def _register(self, request: Request) -> Response:
        params = request.params
        if not params.get("client_name") or not params.get("redirect_uris"):
            return Response(422, {"error": "Validation failed"})
        client_id = secrets.token_urlsafe(12)
        self.clients[client_id] = {
            "secret": secrets.token_urlsafe(24),
            "redirect_uris": params["redirect_uris"].split(),
        }
        return Response(
            200,
            {
                "id": str(len(self.clients)),
                "name": params["client_name"],
                "client_id": client_id,
                "client_secret": self.clients[client_id]["secret"],
                "redirect_uri": params["redirect_uris"],
            },
        )

    def personal_token(self, user: str) -> str:
        token = "pt-" + secrets.token_urlsafe(16)
        self.access_tokens[token] = user
        return token

    def _verify(self, request: Request) -> Response:
        user = self.user_of(request)
        if user is None:
            return Response(401, {"error": "The access token is invalid"})
        number = str(abs(hash(user)) % 10**8)
        return Response(
            200,
            {
                "id": number,
                "username": user,
                "acct": user,
                "display_name": user.title(),
            },
        )


class FakeLinkedIn(FakeOAuthNetwork):
    """LinkedIn 3-legged OAuth (/oauth/v2/*), OpenID userinfo and organization ACLs."""

    authorize_path = "/oauth/v2/authorization"
    token_path = "/oauth/v2/accessToken"
    revoke_path = "/oauth/v2/revoke"
    access_ttl = 5184000  # 60 days

    def __init__(self, client_id: str, client_secret: str) -> None:
        super().__init__(client_id, client_secret)
        self.organizations = {"2414183": "Café Lumière", "5550001": "Lumière Group"}
        self.route("GET", "/v2/userinfo")(self._userinfo)
        self.route("GET", "/rest/organizationAcls")(self._acls)
        self.route("GET", "/rest/organizations/*")(self._organization)

    def _userinfo(self, request: Request) -> Response:
        user = self.user_of(request)
        if user is None:
            return Response(401, {"serviceErrorCode": 65600, "message": "Invalid access token"})
        return Response(200, {"sub": f"sub-{user}", "name": user.title(), "given_name": user})

    def _acls(self, request: Request) -> Response:
        if self.user_of(request) is None:
            return Response(401, {"message": "Invalid access token"})
        if request.headers.get("x-restli-protocol-version") != "2.0.0":
            return Response(400, {"message": "missing protocol version"})
        elements = [
            {
                "organization": f"urn:li:organization:{org}",
                "role": "ADMINISTRATOR",
                "state": "APPROVED",
            }
            for org in self.organizations
        ]
        return Response(200, {"elements": elements})

    def _organization(self, request: Request) -> Response:
        org = request.path.rsplit("/", 1)[1]
        if self.user_of(request) is None or org not in self.organizations:
            return Response(404, {"message": "not found"})
        return Response(
            200,
            {"id": int(org), "localizedName": self.organizations[org], "vanityName": f"org-{org}"},
        )


class FakeX(FakeOAuthNetwork):
    """X OAuth 2.0 with PKCE: /i/oauth2/authorize, /2/oauth2/token (Basic), rotating refresh."""

    authorize_path = "/i/oauth2/authorize"
    token_path = "/2/oauth2/token"
    revoke_path = "/2/oauth2/revoke"
    client_auth = "basic"
    pkce_required = True
    access_ttl = 7200
    rotates_refresh = True

    def __init__(self, client_id: str, client_secret: str) -> None:
        super().__init__(client_id, client_secret)
        self.route("GET", "/2/users/me")(self._me)

    def _me(self, request: Request) -> Response:
        user = self.user_of(request)
        if user is None:
            return Response(401, {"title": "Unauthorized", "status": 401})
        return Response(
            200,
            {"data": {"id": f"9{abs(hash(user)) % 10**9}", "name": user.title(), "username": user}},
        )


class FakeMeta(FakeOAuthNetwork):
    """Facebook Login manual flow, long-lived token exchange and /me/accounts (pages)."""

    authorize_path = "/dialog/oauth"
    token_path = "/oauth/access_token"
    revoke_path = None
    access_ttl = 3600
    issues_refresh = False

    def __init__(self, client_id: str, client_secret: str) -> None:
        super().__init__(client_id, client_secret)
        self.page_tokens: dict[str, str] = {}
        self.pages = [
            {
                "id": "1001",
                "name": "Café Lumière",
                "instagram_business_account": {
                    "id": "17841400000000001",
                    "username": "cafelumiere",
                },
            },
            {"id": "1002", "name": "Lumière Events"},
        ]
        self.route("GET", "/me/accounts")(self._accounts)
        self.route("GET", "/me")(self._me)
        self.route("GET", "/*")(self._node)

    def _token(self, request: Request) -> Response:
        params = request.params
        if params.get("grant_type") == "fb_exchange_token":
            if self._client_of(request) is None:
                return Response(400, {"error": {"type": "OAuthException", "code": 1}})
            user = self.access_tokens.get(params.get("fb_exchange_token", ""))
            if user is None:
                return Response(400, {"error": {"type": "OAuthException", "code": 190}})
            body = self.issue(user)
            body["expires_in"] = 5184000
            return Response(200, body)
        return super()._token(request)

    def _accounts(self, request: Request) -> Response:
        if self.user_of(request) is None:
            return Response(400, {"error": {"type": "OAuthException", "code": 190}})
        data = []
        for page in self.pages:
            token = "pg-" + secrets.token_urlsafe(12)
            self.page_tokens[token] = page["id"]
            data.append({**page, "access_token": token})
        return Response(200, {"data": data})

    def _me(self, request: Request) -> Response:
        page_id = self.page_tokens.get(request.bearer or "")
        if page_id is None:
            return Response(400, {"error": {"type": "OAuthException", "code": 190}})
        page = next(p for p in self.pages if p["id"] == page_id)
        return Response(200, {"id": page["id"], "name": page["name"]})

    def _node(self, request: Request) -> Response:
        page_id = self.page_tokens.get(request.bearer or "")
        if page_id is None or request.path.strip("/") != page_id:
            return Response(400, {"error": {"type": "OAuthException", "code": 190}})
        page = next(p for p in self.pages if p["id"] == page_id)
        return Response(200, page)
