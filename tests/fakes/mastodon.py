"""A Mastodon instance that publishes, following docs.joinmastodon.org (REST API, v4):

- POST /api/v2/media (multipart `file`, `description`): 202 with `url: null` while the file is
  processed, then GET /api/v1/media/:id answers 206 until it is done and 200 with the `url`;
  `processing_polls` says how many polls answer 206 (0: the upload answers 200 at once).
- POST /api/v1/statuses (JSON or form): `status`, `media_ids`, `spoiler_text`, `sensitive`,
  `visibility`, `language`; `Idempotency-Key` kept one hour per account: the same key returns
  the status it made, and makes no second one. 422 `{"error": "Validation failed: ..."}`.
- GET /api/v1/statuses/:id, GET /api/v1/statuses/:id/source, DELETE /api/v1/statuses/:id,
  GET /api/v1/accounts/:id/statuses (newest first, `limit` ≤ 40, `max_id`, Link header).
- Every authenticated answer carries X-RateLimit-Limit/-Remaining/-Reset (ISO 8601).

Statuses are rendered to HTML the way Mastodon does (links with `invisible` spans, remote
mentions shown without their domain), so matching a status by its text meets what it meets on
a real instance. The length limit counts code points with URLs in full, as some servers that
speak Mastodon's API do (Mastodon counts graphemes and every URL as 23): `max_characters`.

Faults beyond `FakeServer`'s: `throttle_next(path, seconds, retry_after_header=True)` (Mastodon's
429), `error_next(path, status=500)`, `reject_next(path, message)` (a 422 with that message).
`posts_made` counts statuses ever created (deleted ones included): "exactly once" is
`posts_made == 1`.
"""

from __future__ import annotations

import html
import itertools
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.fakes.http_server import Request, Response
from tests.fakes.oauth_networks import FakeMastodon

VISIBILITIES = ("public", "unlisted", "private", "direct")
_LINK = re.compile(r"https?://[^\s<>\"]+")
_MENTION = re.compile(r"(?<![\w/])@(\w+)(?:@([\w.-]+\w))?")
IDEMPOTENCY_TTL = timedelta(hours=1)


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def render(text: str, instance: str) -> str:
    """Mastodon's HTML for a status text (simplified to what clients read back)."""

    def link(match: re.Match[str]) -> str:
        url = match.group(0)
        scheme, _, rest = url.partition("://")
        shown, hidden = rest[:30], rest[30:]
        return (
            f'<a href="{html.escape(url)}" target="_blank" rel="nofollow noopener">'
            f'<span class="invisible">{html.escape(scheme)}://</span>'
            f'<span class="{"ellipsis" if hidden else ""}">{html.escape(shown)}</span>'
            f'<span class="invisible">{html.escape(hidden)}</span></a>'
        )

    def mention(match: re.Match[str]) -> str:
        user, domain = match.group(1), match.group(2) or instance
        return (
            f'<span class="h-card"><a href="https://{domain}/@{user}" class="u-url mention">'
            f"@<span>{user}</span></a></span>"
        )

    paragraphs = []
    for paragraph in text.split("\n\n"):
        pieces, last = [], 0
        for match in _LINK.finditer(paragraph):
            pieces.append(_MENTION.sub(mention, html.escape(paragraph[last : match.start()])))
            pieces.append(link(match))
            last = match.end()
        pieces.append(_MENTION.sub(mention, html.escape(paragraph[last:])))
        paragraphs.append("".join(pieces).replace("\n", "<br />"))
    return "".join(f"<p>{p}</p>" for p in paragraphs)


class FakeMastodonNetwork(FakeMastodon):
    create_path = "/api/v1/statuses"

    def __init__(self, domain: str = "127.0.0.1") -> None:
        super().__init__()
        self.domain = domain
        self.processing_polls = 1
        self.max_media_attachments = 4
        self.statuses: dict[str, dict[str, Any]] = {}
        self.media: dict[str, dict[str, Any]] = {}
        self.posts_made = 0
        self._ids = itertools.count(110_000_000_000_000_000)
        self._idempotency: dict[tuple[str, str], tuple[str, datetime]] = {}
        self.route("POST", "/api/v2/media")(self._upload)
        self.route("GET", "/api/v1/media/*")(self._media)
        self.route("POST", "/api/v1/statuses")(self._create)
        self.route("GET", "/api/v1/statuses/*")(self._status)
        self.route("DELETE", "/api/v1/statuses/*")(self._delete)
        self.route("GET", "/api/v1/accounts/*")(self._account_statuses)

    # -- accounts ----------------------------------------------------------------------------

    def _instance(self, request: Request) -> Response:
        response = super()._instance(request)
        response.body["domain"] = self.domain
        return response

    def account_id(self, user: str) -> str:
        return str(abs(hash(user)) % 10**8)  # what verify_credentials answers

    def statuses_of(self, user: str) -> list[dict[str, Any]]:
        return [s for s in self.statuses.values() if s["_user"] == user]

    # -- faults in Mastodon's own words ------------------------------------------------------

    def throttle_next(self, path: str, seconds: int, *, retry_after_header: bool = True) -> None:
        headers = {
            "X-RateLimit-Limit": "300",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": _iso(_now() + timedelta(seconds=seconds)),
        }
        if retry_after_header:
            headers["Retry-After"] = str(seconds)
        self.fail_next(path, 429, {"error": "Too many requests"}, **headers)

    def error_next(self, path: str, status: int = 500) -> None:
        self.fail_next(path, status, {"error": "We're sorry, but something went wrong"})

    def reject_next(self, path: str, message: str) -> None:
        self.fail_next(path, 422, {"error": message})

    # -- helpers -------------------------------------------------------------------------------

    def _limits(self, response: Response) -> Response:
        reset = _now().replace(minute=(_now().minute // 5) * 5, second=0) + timedelta(minutes=5)
        response.headers.update(
            {
                "X-RateLimit-Limit": "300",
                "X-RateLimit-Remaining": "299",
                "X-RateLimit-Reset": _iso(reset),
            }
        )
        return response

    def _authorized(self, request: Request) -> str | Response:
        user = self.user_of(request)
        if user is None:
            return Response(401, {"error": "The access token is invalid"})
        return user

    @staticmethod
    def _params(request: Request) -> dict[str, Any]:
        if request.headers.get("content-type", "").startswith("application/json"):
            body = request.json
            return body if isinstance(body, dict) else {}
        values: dict[str, Any] = {}
        for key, items in request.form_lists.items():
            if key.endswith("[]"):
                values[key[:-2]] = items
            else:
                values[key] = items[-1]
        return values

    def _media_json(self, media: dict[str, Any]) -> dict[str, Any]:
        ready = media["polls_left"] == 0
        return {
            "id": media["id"],
            "type": media["type"],
            "url": media["url"] if ready else None,
            "preview_url": media["url"],
            "description": media["description"],
            "meta": {},
        }

    def _status_json(self, status: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in status.items() if not k.startswith("_")}

    # -- media -------------------------------------------------------------------------------

    def _upload(self, request: Request) -> Response:
        user = self._authorized(request)
        if isinstance(user, Response):
            return user
        fields = request.multipart
        upload = fields.get("file")
        if upload is None or not upload.data:
            return Response(422, {"error": "Validation failed: File can't be blank"})
        description = fields["description"].text if "description" in fields else None
        if description and len(description) > 1500:
            error = "Validation failed: Description is too long (maximum is 1500 characters)"
            return Response(422, {"error": error})
        kind = upload.content_type.split("/")[0]
        if kind not in ("image", "video", "audio"):
            return Response(422, {"error": "Validation failed: File has an unsupported type"})
        media_id = str(next(self._ids))
        media = {
            "id": media_id,
            "type": "gifv" if upload.content_type == "image/gif" else kind,
            "url": f"{self.url}/system/media/{media_id}/{upload.filename or 'file'}",
            "description": description,
            "size": len(upload.data),
            "polls_left": self.processing_polls,
            "_user": user,
            "_status": None,
        }
        self.media[media_id] = media
        return self._limits(Response(202 if media["polls_left"] else 200, self._media_json(media)))

    def _media(self, request: Request) -> Response:
        user = self._authorized(request)
        if isinstance(user, Response):
            return user
        media = self.media.get(request.path.rsplit("/", 1)[1])
        if media is None or media["_user"] != user:
            return Response(404, {"error": "Record not found"})
        if media["polls_left"] > 0:
            media["polls_left"] -= 1
            return self._limits(Response(206, {**self._media_json(media), "url": None}))
        return self._limits(Response(200, self._media_json(media)))

    # -- statuses ----------------------------------------------------------------------------

    def _create(self, request: Request) -> Response:
        user = self._authorized(request)
        if isinstance(user, Response):
            return user
        key = request.headers.get("idempotency-key")
        now = _now()
        if key:
            done = self._idempotency.get((user, key))
            if done and now - done[1] < IDEMPOTENCY_TTL and done[0] in self.statuses:
                return self._limits(Response(200, self._status_json(self.statuses[done[0]])))
        params = self._params(request)
        text = str(params.get("status") or "")
        media_ids = [str(m) for m in params.get("media_ids") or []]
        visibility = params.get("visibility") or "public"
        error = None
        if not text.strip() and not media_ids:
            error = "Validation failed: Text can't be blank"
        elif len(text) > self.max_characters:
            error = f"Validation failed: Text character limit of {self.max_characters} exceeded"
        elif visibility not in VISIBILITIES:
            error = "Validation failed: Visibility is not included in the list"
        elif len(media_ids) > self.max_media_attachments:
            error = (
                f"Validation failed: Media attachments can't be more than "
                f"{self.max_media_attachments}"
            )
        if error:
            return Response(422, {"error": error})
        attached = []
        for media_id in media_ids:
            media = self.media.get(media_id)
            if media is None or media["_user"] != user or media["_status"]:
                return Response(422, {"error": "Validation failed: Media attachments is invalid"})
            if media["polls_left"] > 0:
                return Response(
                    422,
                    {
                        "error": "Cannot attach files that have not finished processing. "
                        "Try again in a moment!"
                    },
                )
            attached.append(media)
        status_id = str(next(self._ids))
        for media in attached:
            media["_status"] = status_id
        spoiler = str(params.get("spoiler_text") or "")
        sensitive = params.get("sensitive") in (True, "true", "1") or bool(spoiler)
        status = {
            "id": status_id,
            "created_at": _iso(now),
            "uri": f"https://{self.domain}/users/{user}/statuses/{status_id}",
            "url": f"https://{self.domain}/@{user}/{status_id}",
            "content": render(text, self.domain),
            "spoiler_text": spoiler,
            "sensitive": sensitive,
            "visibility": visibility,
            "language": params.get("language") or "en",
            "media_attachments": [self._media_json(m) for m in attached],
            "account": {"id": self.account_id(user), "username": user, "acct": user},
            "application": {"name": "Relais", "website": None},
            "_user": user,
            "_text": text,
        }
        self.statuses[status_id] = status
        self.posts_made += 1
        if key:
            self._idempotency[(user, key)] = (status_id, now)
        return self._limits(Response(200, self._status_json(status)))

    def _own_status(self, request: Request) -> tuple[str, dict[str, Any]] | Response:
        user = self._authorized(request)
        if isinstance(user, Response):
            return user
        parts = request.path.split("/")  # ['', 'api', 'v1', 'statuses', id, ('source')]
        status = self.statuses.get(parts[4])
        if status is None or status["_user"] != user:
            return Response(404, {"error": "Record not found"})
        return parts[5] if len(parts) > 5 else "", status

    def _status(self, request: Request) -> Response:
        found = self._own_status(request)
        if isinstance(found, Response):
            return found
        what, status = found
        if what == "source":
            body = {"id": status["id"], "text": status["_text"]}
            body["spoiler_text"] = status["spoiler_text"]
            return self._limits(Response(200, body))
        return self._limits(Response(200, self._status_json(status)))

    def _delete(self, request: Request) -> Response:
        found = self._own_status(request)
        if isinstance(found, Response):
            return found
        _, status = found
        del self.statuses[status["id"]]
        return self._limits(Response(200, {**self._status_json(status), "text": status["_text"]}))

    def _account_statuses(self, request: Request) -> Response:
        user = self._authorized(request)
        if isinstance(user, Response):
            return user
        parts = request.path.split("/")  # ['', 'api', 'v1', 'accounts', id, 'statuses']
        if len(parts) != 6 or parts[5] != "statuses":
            return Response(404, {"error": "Record not found"})
        limit = min(int(request.query.get("limit") or 20), 40)
        newest_first = sorted(
            (s for s in self.statuses.values() if s["account"]["id"] == parts[4]),
            key=lambda s: int(s["id"]),
            reverse=True,
        )
        if request.query.get("max_id"):
            newest_first = [s for s in newest_first if int(s["id"]) < int(request.query["max_id"])]
        page = newest_first[:limit]
        response = Response(200, [self._status_json(s) for s in page])
        if page:
            response.headers["Link"] = (
                f'<{self.url}{request.path}?max_id={page[-1]["id"]}>; rel="next"'
            )
        return self._limits(response)

    def post_by_hand(self, user: str, text: str) -> str:
        """A status the person wrote themselves (not through us), for look-alike tests."""
        status_id = str(next(self._ids))
        self.statuses[status_id] = {
            "id": status_id,
            "created_at": _iso(_now()),
            "uri": f"https://{self.domain}/users/{user}/statuses/{status_id}",
            "url": f"https://{self.domain}/@{user}/{status_id}",
            "content": render(text, self.domain),
            "spoiler_text": "",
            "sensitive": False,
            "visibility": "public",
            "language": "en",
            "media_attachments": [],
            "account": {"id": self.account_id(user), "username": user, "acct": user},
            "application": None,
            "_user": user,
            "_text": text,
        }
        return status_id

    def token(self, user: str) -> str:
        """An access token for `user`, as if they had connected."""
        return self.personal_token(user)
