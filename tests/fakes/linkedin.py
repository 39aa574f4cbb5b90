"""LinkedIn's versioned REST API for publishing (learn.microsoft.com/linkedin/marketing):

- Images API: POST /rest/images?action=initializeUpload → `uploadUrl` + `image` URN; PUT the
  bytes there (201); GET /rest/images/{urn} says PROCESSING for `processing_polls` polls, then
  AVAILABLE.
- Videos API: POST /rest/videos?action=initializeUpload (`fileSizeBytes`) → upload
  instructions in parts of `video_part_bytes`; PUT each (201 with an ETag);
  POST /rest/videos?action=finalizeUpload with the ETags; GET /rest/videos/{urn}.
- Posts API: POST /rest/posts → 201, empty body, the URN in `x-restli-id`; `LinkedIn-Version`
  and `X-Restli-Protocol-Version: 2.0.0` required; commentary over 3,000 characters and a
  duplicate of a recent post are 422 with LinkedIn's `message`; the author must be the
  member or an organization they administer (403 ACCESS_DENIED). GET /rest/posts?q=author
  (X-RestLi-Method: FINDER; for members only with `member_posts_readable`, as r_member_social
  is restricted), DELETE /rest/posts/{urn} (204).
- Errors: `{"status", "serviceErrorCode", "code", "message"}`.

Faults beyond `FakeServer`'s: `throttle_next(path, seconds=None)` (429; LinkedIn sends no
Retry-After unless `seconds` is given), `error_next(path, status=500)`, `reject_next(path,
message)` (422). `posts_made` counts posts ever created.
"""

from __future__ import annotations

import itertools
import time
from typing import Any
from urllib.parse import unquote

from tests.fakes.http_server import Request, Response
from tests.fakes.oauth_networks import FakeLinkedIn


def _error(status: int, code: str, message: str, service_code: int = 100) -> Response:
    return Response(
        status,
        {"status": status, "serviceErrorCode": service_code, "code": code, "message": message},
    )


class FakeLinkedInNetwork(FakeLinkedIn):
    create_path = "/rest/posts"

    def __init__(self, client_id: str, client_secret: str) -> None:
        super().__init__(client_id, client_secret)
        self.processing_polls = 1
        self.video_part_bytes = 4 * 1024 * 1024
        self.member_posts_readable = False
        self.posts: dict[str, dict[str, Any]] = {}
        self.assets: dict[str, dict[str, Any]] = {}
        self.posts_made = 0
        self._ids = itertools.count(7_200_000_000_000_000_000)
        self.route("POST", "/rest/images")(self._initialize)
        self.route("POST", "/rest/videos")(self._videos)
        self.route("GET", "/rest/images/*")(self._asset)
        self.route("GET", "/rest/videos/*")(self._asset)
        self.route("PUT", "/upload/*")(self._put)
        self.route("POST", "/rest/posts")(self._create)
        self.route("GET", "/rest/posts")(self._find)
        self.route("DELETE", "/rest/posts/*")(self._delete)

    def member_urn(self, user: str) -> str:
        return f"urn:li:person:sub-{user}"  # what userinfo's `sub` makes

    def token(self, user: str) -> str:
        return self.issue(user)["access_token"]

    def posts_of(self, author: str) -> list[dict[str, Any]]:
        return [p for p in self.posts.values() if p["author"] == author]

    # -- faults in LinkedIn's words -------------------------------------------------------------

    def throttle_next(self, path: str, seconds: int | None = None) -> None:
        headers = {"Retry-After": str(seconds)} if seconds is not None else {}
        body = {
            "status": 429,
            "serviceErrorCode": 101,
            "code": "TOO_MANY_REQUESTS",
            "message": "Resource level throttle APPLICATION DAY limit for calls to this "
            "resource is reached.",
        }
        self.fail_next(path, 429, body, **headers)

    def error_next(self, path: str, status: int = 500) -> None:
        self.fail_next(
            path, status, {"status": status, "code": "INTERNAL_SERVER_ERROR", "message": "Error"}
        )

    def reject_next(self, path: str, message: str) -> None:
        self.fail_next(
            path, 422, {"status": 422, "code": "UNPROCESSABLE_ENTITY", "message": message}
        )

    # -- helpers ----------------------------------------------------------------------------------

    def _authorized(self, request: Request) -> str | Response:
        user = self.user_of(request)
        if user is None:
            return _error(401, "REVOKED_ACCESS_TOKEN", "Invalid access token", 65601)
        if not request.headers.get("linkedin-version"):
            return _error(
                426,
                "VERSION_MISSING",
                "A version must be present. Please specify a version by adding the "
                "LinkedIn-Version header.",
            )
        return user

    def _may_act_as(self, user: str, author: str) -> bool:
        return author == self.member_urn(user) or author in {
            f"urn:li:organization:{org}" for org in self.organizations
        }

    # -- media ------------------------------------------------------------------------------------

    def _initialize(self, request: Request) -> Response:
        return self._start(request, "image")

    def _videos(self, request: Request) -> Response:
        if request.query.get("action") == "finalizeUpload":
            return self._finalize(request)
        return self._start(request, "video")

    def _start(self, request: Request, kind: str) -> Response:
        user = self._authorized(request)
        if isinstance(user, Response):
            return user
        if request.query.get("action") != "initializeUpload":
            return _error(400, "ILLEGAL_ARGUMENT", "Unknown action")
        init = (request.json or {}).get("initializeUploadRequest") or {}
        owner = str(init.get("owner") or "")
        if not self._may_act_as(user, owner):
            return _error(403, "ACCESS_DENIED", f"Not enough permissions to act as {owner}")
        asset_id = f"D4E{next(self._ids)}"
        urn = f"urn:li:{kind}:{asset_id}"
        asset = {
            "urn": urn,
            "kind": kind,
            "owner": owner,
            "data": {},
            "status": "WAITING_UPLOAD",
            "polls_left": self.processing_polls,
        }
        self.assets[urn] = asset
        if kind == "image":
            value = {"uploadUrl": f"{self.url}/upload/image/{asset_id}", "image": urn}
        else:
            size = int(init.get("fileSizeBytes") or 0)
            parts = []
            for index, first in enumerate(range(0, max(size, 1), self.video_part_bytes)):
                last = min(first + self.video_part_bytes, size) - 1
                url = f"{self.url}/upload/video/{asset_id}/{index}"
                parts.append({"uploadUrl": url, "firstByte": first, "lastByte": last})
            asset["size"] = size
            value = {"video": urn, "uploadInstructions": parts, "uploadToken": ""}
        return Response(
            200, {"value": {**value, "uploadUrlExpiresAt": int(time.time() + 86400) * 1000}}
        )

    def _put(self, request: Request) -> Response:
        if self.user_of(request) is None:
            return _error(401, "REVOKED_ACCESS_TOKEN", "Invalid access token", 65601)
        parts = request.path.split("/")  # ['', 'upload', kind, id, (part)]
        asset = self.assets.get(f"urn:li:{parts[2]}:{parts[3]}")
        if asset is None:
            return Response(404)
        index = int(parts[4]) if len(parts) > 4 else 0
        asset["data"][index] = request.body
        if asset["kind"] == "image":
            asset["status"] = "PROCESSING"
            return Response(201)
        return Response(201, None, {"ETag": f"etag-{parts[3]}-{index}"})

    def _finalize(self, request: Request) -> Response:
        user = self._authorized(request)
        if isinstance(user, Response):
            return user
        final = (request.json or {}).get("finalizeUploadRequest") or {}
        asset = self.assets.get(str(final.get("video") or ""))
        if asset is None:
            return _error(404, "NOT_FOUND", "No such video")
        received = sum(len(d) for d in asset["data"].values())
        expected = [f"etag-{asset['urn'].rsplit(':', 1)[1]}-{i}" for i in sorted(asset["data"])]
        if received != asset["size"] or final.get("uploadedPartIds") != expected:
            return _error(400, "ILLEGAL_ARGUMENT", "Upload is incomplete")
        asset["status"] = "PROCESSING"
        return Response(200)

    def _asset(self, request: Request) -> Response:
        user = self._authorized(request)
        if isinstance(user, Response):
            return user
        asset = self.assets.get(unquote(request.path.rsplit("/", 1)[1]))
        if asset is None:
            return _error(404, "NOT_FOUND", "Not found")
        if asset["status"] == "PROCESSING":
            if asset["polls_left"] > 0:
                asset["polls_left"] -= 1
            else:
                asset["status"] = "AVAILABLE"
        return Response(
            200, {"id": asset["urn"], "status": asset["status"], "owner": asset["owner"]}
        )

    # -- posts ------------------------------------------------------------------------------------

    def _create(self, request: Request) -> Response:
        user = self._authorized(request)
        if isinstance(user, Response):
            return user
        if request.headers.get("x-restli-protocol-version") != "2.0.0":
            return _error(400, "ILLEGAL_ARGUMENT", "Missing X-Restli-Protocol-Version")
        body = request.json if isinstance(request.json, dict) else {}
        author = str(body.get("author") or "")
        if not self._may_act_as(user, author):
            return _error(403, "ACCESS_DENIED", f"Not enough permissions to post as {author}")
        for field in ("visibility", "distribution", "lifecycleState"):
            if field not in body:
                return _error(422, "UNPROCESSABLE_ENTITY", f"/{field} is required")
        commentary = str(body.get("commentary") or "")
        if len(commentary) > 3000:
            return _error(
                422,
                "UNPROCESSABLE_ENTITY",
                "/commentary :: string length is more than the maximum of 3000",
            )
        content = body.get("content") or {}
        urns = (
            [content["media"]["id"]]
            if "media" in content
            else [image["id"] for image in (content.get("multiImage") or {}).get("images") or []]
        )
        for urn in urns:
            asset = self.assets.get(urn)
            if asset is None or asset["status"] != "AVAILABLE":
                return _error(422, "UNPROCESSABLE_ENTITY", f"{urn} is not available")
        for post in self.posts.values():
            if post["author"] == author and post["commentary"] == commentary and commentary:
                return _error(422, "DUPLICATE_POST", f"Content is a duplicate of {post['id']}", 100)
        urn = f"urn:li:share:{next(self._ids)}"
        now = int(time.time() * 1000)
        self.posts[urn] = {
            "id": urn,
            "author": author,
            "commentary": commentary,
            "content": content or None,
            "visibility": body["visibility"],
            "lifecycleState": body["lifecycleState"],
            "createdAt": now,
            "publishedAt": now,
            "lastModifiedAt": now,
        }
        self.posts_made += 1
        return Response(201, None, {"x-restli-id": urn})

    def _find(self, request: Request) -> Response:
        user = self._authorized(request)
        if isinstance(user, Response):
            return user
        query = request.query
        if query.get("q") != "author" or request.headers.get("x-restli-method") != "FINDER":
            return _error(400, "ILLEGAL_ARGUMENT", "Unsupported finder")
        author = query.get("author", "")
        if not self._may_act_as(user, author):
            return _error(403, "ACCESS_DENIED", "Not enough permissions")
        if author.startswith("urn:li:person:") and not self.member_posts_readable:
            return _error(
                403, "ACCESS_DENIED", "Not enough permissions to access: partnerApiPostsExternal"
            )
        posts = sorted(self.posts_of(author), key=lambda p: p["createdAt"], reverse=True)
        start, count = int(query.get("start") or 0), int(query.get("count") or 10)
        elements = [
            {k: v for k, v in p.items() if v is not None} for p in posts[start : start + count]
        ]
        return Response(
            200,
            {"elements": elements, "paging": {"start": start, "count": count, "links": []}},
        )

    def _delete(self, request: Request) -> Response:
        user = self._authorized(request)
        if isinstance(user, Response):
            return user
        post = self.posts.get(unquote(request.path.split("/rest/posts/", 1)[1]))
        if post is None:
            return _error(404, "NOT_FOUND", "Post not found")
        if not self._may_act_as(user, post["author"]):
            return _error(403, "ACCESS_DENIED", "Not enough permissions")
        del self.posts[post["id"]]
        return Response(204)
