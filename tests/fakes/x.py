"""X's API v2 for publishing, following docs.x.com:

- media: POST /2/media/upload/initialize (JSON `media_type`, `total_bytes`, `media_category`),
  POST /2/media/upload/{id}/append (multipart `media`, `segment_index`; 204 empty),
  POST /2/media/upload/{id}/finalize (a `processing_info` for videos and GIFs, which
  GET /2/media/upload?command=STATUS&media_id= reports `in_progress` for `processing_polls`
  polls, then `succeeded`), POST /2/media/metadata (alt text, at most 1,000 characters);
- POST /2/tweets (201 `{"data": {"id", "text"}}`; 403 for a duplicate of a recent tweet and
  for text over 280 weighted characters, with X's `detail`), DELETE /2/tweets/{id},
  GET /2/users/{id}/tweets (newest first, `start_time`, `max_results`, `pagination_token`;
  links shown as t.co, as X does);
- every answer carries x-rate-limit-limit/-remaining/-reset (epoch seconds); errors are
  problem documents (`title`, `detail`, `type`, `status`).

Faults beyond `FakeServer`'s: `throttle_next(path, seconds, daily=False)` (X's 429 with its
reset headers), `error_next(path, status=500)`, `reject_next(path, detail)` (403).
`posts_made` counts tweets ever created.
"""

from __future__ import annotations

import itertools
import re
import time
from datetime import UTC, datetime
from typing import Any

from tests.fakes.http_server import Request, Response
from tests.fakes.oauth_networks import FakeX

_URL = re.compile(r"https?://\S+")


def _problem(status: int, title: str, detail: str, kind: str = "about:blank") -> Response:
    return Response(status, {"title": title, "detail": detail, "type": kind, "status": status})


class FakeXNetwork(FakeX):
    create_path = "/2/tweets"

    def __init__(self, client_id: str, client_secret: str) -> None:
        super().__init__(client_id, client_secret)
        self.processing_polls = 1
        self.tweets: dict[str, dict[str, Any]] = {}
        self.media: dict[str, dict[str, Any]] = {}
        self.posts_made = 0
        self._ids = itertools.count(1_860_000_000_000_000_000)
        self._short = itertools.count(1)
        self.route("POST", "/2/media/upload/initialize")(self._initialize)
        self.route("POST", "/2/media/upload/*")(self._upload_step)
        self.route("GET", "/2/media/upload")(self._status)
        self.route("POST", "/2/media/metadata")(self._metadata)
        self.route("POST", "/2/tweets")(self._create)
        self.route("DELETE", "/2/tweets/*")(self._delete)
        self.route("GET", "/2/users/*")(self._timeline)

    def user_id(self, user: str) -> str:
        return f"9{abs(hash(user)) % 10**9}"  # what /2/users/me answers

    def token(self, user: str) -> str:
        return self.issue(user)["access_token"]

    # -- faults in X's words --------------------------------------------------------------------

    def throttle_next(self, path: str, seconds: int, *, daily: bool = False) -> None:
        reset = str(int(time.time()) + seconds)
        headers = {"x-rate-limit-limit": "100", "x-rate-limit-remaining": "0"}
        if daily:
            headers.update(
                {
                    "x-rate-limit-remaining": "50",
                    "x-rate-limit-reset": str(int(time.time()) + 5),
                    "x-user-limit-24hour-limit": "17",
                    "x-user-limit-24hour-remaining": "0",
                    "x-user-limit-24hour-reset": reset,
                }
            )
        else:
            headers["x-rate-limit-reset"] = reset
        body = {"title": "Too Many Requests", "detail": "Too Many Requests", "type": "about:blank"}
        self.fail_next(path, 429, {**body, "status": 429}, **headers)

    def error_next(self, path: str, status: int = 500) -> None:
        self.fail_next(path, status, {"title": "Internal Server Error", "status": status})

    def reject_next(self, path: str, detail: str) -> None:
        self.fail_next(path, 403, {"title": "Forbidden", "detail": detail, "status": 403})

    # -- helpers ----------------------------------------------------------------------------------

    def _answer(self, response: Response) -> Response:
        response.headers.update(
            {
                "x-rate-limit-limit": "100",
                "x-rate-limit-remaining": "99",
                "x-rate-limit-reset": str(int(time.time()) + 900),
            }
        )
        return response

    def _authorized(self, request: Request) -> str | Response:
        user = self.user_of(request)
        if user is None:
            return _problem(401, "Unauthorized", "Unauthorized")
        return user

    def _own_media(self, user: str, media_id: str) -> dict[str, Any] | None:
        media = self.media.get(media_id)
        return media if media is not None and media["user"] == user else None

    @staticmethod
    def _media_data(media: dict[str, Any]) -> dict[str, Any]:
        data = {
            "id": media["id"],
            "media_key": f"3_{media['id']}",
            "expires_after_secs": 86400,
            "size": media["received"],
        }
        if media["state"] is not None:
            data["processing_info"] = {"state": media["state"], "check_after_secs": 1}
        return data

    # -- media ------------------------------------------------------------------------------------

    def _initialize(self, request: Request) -> Response:
        user = self._authorized(request)
        if isinstance(user, Response):
            return user
        params = request.json if isinstance(request.json, dict) else {}
        if not params.get("media_type") or not isinstance(params.get("total_bytes"), int):
            return _problem(400, "Invalid Request", "media_type and total_bytes are required")
        media_id = str(next(self._ids))
        self.media[media_id] = {
            "id": media_id,
            "user": user,
            "type": params["media_type"],
            "category": params.get("media_category") or "tweet_image",
            "total": params["total_bytes"],
            "segments": {},
            "received": 0,
            "state": None,
            "polls_left": 0,
            "alt_text": None,
            "finalized": False,
        }
        return self._answer(Response(200, {"data": self._media_data(self.media[media_id])}))

    def _upload_step(self, request: Request) -> Response:
        user = self._authorized(request)
        if isinstance(user, Response):
            return user
        parts = request.path.split("/")  # ['', '2', 'media', 'upload', id, step]
        media = self._own_media(user, parts[4]) if len(parts) == 6 else None
        if media is None:
            return _problem(400, "Invalid Request", "The media_id is invalid")
        if parts[5] == "append":
            fields = request.multipart
            if "media" not in fields or "segment_index" not in fields:
                return _problem(400, "Invalid Request", "media and segment_index are required")
            media["segments"][int(fields["segment_index"].text)] = fields["media"].data
            media["received"] = sum(len(d) for d in media["segments"].values())
            return self._answer(Response(204))
        if parts[5] == "finalize":
            if media["received"] != media["total"]:
                return _problem(
                    400, "Invalid Request", "File size mismatch: total_bytes does not match"
                )
            media["finalized"] = True
            if media["category"] in ("tweet_video", "tweet_gif"):
                media["state"] = "pending"
                media["polls_left"] = self.processing_polls
            return self._answer(Response(200, {"data": self._media_data(media)}))
        return _problem(404, "Not Found", "No such endpoint")

    def _status(self, request: Request) -> Response:
        user = self._authorized(request)
        if isinstance(user, Response):
            return user
        if request.query.get("command") != "STATUS":
            return _problem(400, "Invalid Request", "command must be STATUS")
        media = self._own_media(user, request.query.get("media_id", ""))
        if media is None:
            return _problem(400, "Invalid Request", "The media_id is invalid")
        if media["state"] in ("pending", "in_progress"):
            if media["polls_left"] > 0:
                media["polls_left"] -= 1
                media["state"] = "in_progress"
            else:
                media["state"] = "succeeded"
        return self._answer(Response(200, {"data": self._media_data(media)}))

    def _metadata(self, request: Request) -> Response:
        user = self._authorized(request)
        if isinstance(user, Response):
            return user
        params = request.json if isinstance(request.json, dict) else {}
        media = self._own_media(user, str(params.get("id") or ""))
        alt = ((params.get("metadata") or {}).get("alt_text") or {}).get("text")
        if media is None:
            return _problem(400, "Invalid Request", "The media_id is invalid")
        if not isinstance(alt, str) or len(alt) > 1000:
            return _problem(400, "Invalid Request", "alt_text.text must be 1 to 1000 characters")
        media["alt_text"] = alt
        return self._answer(Response(200, {"data": {"id": media["id"], "associated_metadata": {}}}))

    # -- tweets -----------------------------------------------------------------------------------

    @staticmethod
    def weighted_length(text: str) -> int:
        return len(_URL.sub("x" * 23, text))

    def _create(self, request: Request) -> Response:
        user = self._authorized(request)
        if isinstance(user, Response):
            return user
        params = request.json if isinstance(request.json, dict) else {}
        text = str(params.get("text") or "")
        media_ids = [str(m) for m in (params.get("media") or {}).get("media_ids") or []]
        if not text and not media_ids:
            return self._invalid("text", "Your request must include text or media.")
        if self.weighted_length(text) > 280:
            return _problem(
                403,
                "Forbidden",
                "Your Tweet text is too long. For more information on how Twitter determines "
                "text length see https://github.com/twitter/twitter-text.",
            )
        for media_id in media_ids:
            media = self._own_media(user, media_id)
            if media is None or not media["finalized"]:
                return self._invalid("media.media_ids", f"Your media IDs are invalid: {media_id}")
            if media["state"] not in (None, "succeeded"):
                return self._invalid("media.media_ids", "Media is still being processed.")
        if text and any(t["user"] == user and t["text"] == text for t in self.tweets.values()):
            return _problem(
                403, "Forbidden", "You are not allowed to create a Tweet with duplicate content."
            )
        tweet_id = str(next(self._ids))
        self.tweets[tweet_id] = {
            "id": tweet_id,
            "user": user,
            "text": text,
            "media_ids": media_ids,
            "created_at": datetime.now(UTC),
        }
        self.posts_made += 1
        return self._answer(Response(201, {"data": {"id": tweet_id, "text": self._shown(text)}}))

    def _invalid(self, parameter: str, message: str) -> Response:
        return Response(
            400,
            {
                "errors": [{"parameters": {parameter: []}, "message": message}],
                "title": "Invalid Request",
                "detail": "One or more parameters to your request was invalid.",
                "type": "https://api.twitter.com/2/problems/invalid-request",
            },
        )

    def _shown(self, text: str) -> str:
        """The text as X shows it: every link a t.co one."""
        return _URL.sub(lambda _m: f"https://t.co/{next(self._short):010d}", text)

    def _delete(self, request: Request) -> Response:
        user = self._authorized(request)
        if isinstance(user, Response):
            return user
        tweet = self.tweets.get(request.path.rsplit("/", 1)[1])
        if tweet is None:
            return _problem(404, "Not Found Error", "Could not find the tweet")
        if tweet["user"] != user:
            return _problem(
                403, "Forbidden", "You are not allowed to delete a Tweet you did not create"
            )
        del self.tweets[tweet["id"]]
        return self._answer(Response(200, {"data": {"deleted": True}}))

    def _timeline(self, request: Request) -> Response:
        user = self._authorized(request)
        if isinstance(user, Response):
            return user
        parts = request.path.split("/")  # ['', '2', 'users', id, 'tweets']
        if len(parts) != 5 or parts[4] != "tweets":
            return _problem(404, "Not Found", "No such endpoint")
        tweets = sorted(
            (t for t in self.tweets.values() if self.user_id(t["user"]) == parts[3]),
            key=lambda t: int(t["id"]),
            reverse=True,
        )
        if request.query.get("start_time"):
            start = datetime.fromisoformat(request.query["start_time"])
            tweets = [t for t in tweets if t["created_at"] >= start]
        size = min(max(int(request.query.get("max_results") or 10), 5), 100)
        offset = int(request.query.get("pagination_token") or 0)
        page = tweets[offset : offset + size]
        data = [
            {
                "id": t["id"],
                "text": self._shown(t["text"]),
                "created_at": t["created_at"].strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                "edit_history_tweet_ids": [t["id"]],
                **(
                    {"attachments": {"media_keys": [f"3_{m}" for m in t["media_ids"]]}}
                    if t["media_ids"]
                    else {}
                ),
            }
            for t in page
        ]
        meta: dict[str, Any] = {"result_count": len(data)}
        if offset + size < len(tweets):
            meta["next_token"] = str(offset + size)
        if data:
            meta.update(newest_id=data[0]["id"], oldest_id=data[-1]["id"])
        return self._answer(Response(200, {"data": data, "meta": meta} if data else {"meta": meta}))

    def post_by_hand(self, user: str, text: str) -> str:
        tweet_id = str(next(self._ids))
        self.tweets[tweet_id] = {
            "id": tweet_id,
            "user": user,
            "text": text,
            "media_ids": [],
            "created_at": datetime.now(UTC),
        }
        return tweet_id
