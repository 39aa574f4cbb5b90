"""Meta's Graph API for publishing to Facebook Pages and Instagram Business accounts, following
developers.facebook.com (Pages API, Instagram content publishing), on top of `FakeMeta`'s
Facebook Login:

- Facebook: POST /{page-id}/feed (`message`, `link`, `attached_media[n]={"media_fbid"}`),
  /{page-id}/photos (`url` or multipart `source`, `caption`, `alt_text_custom`, `published`),
  /{page-id}/videos (`file_url` or `source`, `description`); GET /{page-id}/feed (newest first,
  cursors); code 506 for a duplicate message.
- Instagram: POST /{ig-user-id}/media (`image_url`, `video_url` + `media_type` REELS/VIDEO,
  `is_carousel_item`, CAROUSEL + `children`, `caption` up to 2,200 characters, `alt_text`)
  → a container; GET /{container-id}?fields=status_code answers IN_PROGRESS for
  `processing_polls` polls, then FINISHED (ERROR when a URL is not http(s));
  POST /{ig-user-id}/media_publish (`creation_id`); GET /{ig-user-id}/media; GET /{media-id}.
- DELETE /{object-id} → `{"success": true}`; a missing object is code 100, subcode 33.
- Errors: `{"error": {"message", "type", "code", "error_subcode", "is_transient",
  "error_user_msg", "fbtrace_id"}}`; every answer carries X-App-Usage.

The page token (`token(page_id)`) acts for the page and its Instagram account, as the
connector's stored credentials do. Faults beyond `FakeServer`'s: `throttle_next(path, minutes)`
(code 80001 with X-Business-Use-Case-Usage's `estimated_time_to_regain_access`),
`error_next(path, status=500)` (code 1, transient), `reject_next(path, message)` (code 100 with
`error_user_msg`). `facebook_posts_made` and `instagram_posts_made` count what was published
(`posts_made`: both).
"""

from __future__ import annotations

import itertools
import json
import secrets
from datetime import UTC, datetime
from typing import Any

from tests.fakes.http_server import Request, Response
from tests.fakes.oauth_networks import FakeMeta

IG_USER = "17841400000000001"  # the Instagram account of page 1001 in FakeMeta


def graph_error(
    status: int,
    code: int,
    message: str,
    *,
    subcode: int | None = None,
    transient: bool = False,
    user_message: str | None = None,
) -> Response:
    error: dict[str, Any] = {
        "message": message,
        "type": "OAuthException",
        "code": code,
        "is_transient": transient,
        "fbtrace_id": "A" + secrets.token_hex(8),
    }
    if subcode is not None:
        error["error_subcode"] = subcode
    if user_message:
        error["error_user_msg"] = user_message
    return Response(status, {"error": error})


def _time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S+0000")


class FakeMetaNetwork(FakeMeta):
    facebook_create_path = "/1001/feed"
    instagram_create_path = f"/{IG_USER}/media_publish"

    def __init__(self, client_id: str, client_secret: str) -> None:
        super().__init__(client_id, client_secret)
        self.processing_polls = 1
        self.objects: dict[str, dict[str, Any]] = {}
        self.facebook_posts_made = 0
        self.instagram_posts_made = 0
        self._ids = itertools.count(100_000_000_001)
        self.route("POST", "/*")(self._post)
        self.route("DELETE", "/*")(self._delete)

    @property
    def posts_made(self) -> int:
        return self.facebook_posts_made + self.instagram_posts_made

    def token(self, page_id: str = "1001") -> str:
        token = "pg-" + secrets.token_urlsafe(12)
        self.page_tokens[token] = page_id
        return token

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.objects.values() if o["kind"] == kind]

    # -- faults in Meta's words ---------------------------------------------------------------

    def throttle_next(self, path: str, minutes: int) -> None:
        usage = {
            "1001": [
                {
                    "type": "pages",
                    "call_count": 100,
                    "total_cputime": 25,
                    "total_time": 25,
                    "estimated_time_to_regain_access": minutes,
                }
            ]
        }
        response = graph_error(
            400, 80001, "There have been too many calls to this Page account. Wait a bit."
        )
        self.fail_next(
            path, response.status, response.body, **{"X-Business-Use-Case-Usage": json.dumps(usage)}
        )

    def error_next(self, path: str, status: int = 500) -> None:
        response = graph_error(status, 1, "An unknown error has occurred.", transient=True)
        self.fail_next(path, response.status, response.body)

    def reject_next(self, path: str, message: str) -> None:
        response = graph_error(400, 100, "Invalid parameter", user_message=message)
        self.fail_next(path, response.status, response.body)

    # -- helpers ------------------------------------------------------------------------------

    @staticmethod
    def _fields(request: Request) -> dict[str, str]:
        values = dict(request.params)
        values.update({k: p.text for k, p in request.multipart.items() if p.filename is None})
        return values

    def _page_of(self, request: Request) -> str | None:
        token = request.bearer or self._fields(request).get("access_token", "")
        return self.page_tokens.get(token)

    def _ig_of(self, page_id: str) -> str | None:
        page = next((p for p in self.pages if p["id"] == page_id), None)
        return ((page or {}).get("instagram_business_account") or {}).get("id")

    def _usage(self, response: Response) -> Response:
        response.headers["X-App-Usage"] = json.dumps(
            {"call_count": 1, "total_cputime": 1, "total_time": 1}
        )
        return response

    def _new(self, kind: str, owner: str, **values: Any) -> dict[str, Any]:
        object_id = str(next(self._ids))
        item = {"id": object_id, "kind": kind, "owner": owner, "created": datetime.now(UTC)}
        item.update(values)
        self.objects[object_id] = item
        return item

    # -- routing ------------------------------------------------------------------------------

    def _post(self, request: Request) -> Response:
        page_id = self._page_of(request)
        if page_id is None:
            return graph_error(400, 190, "Invalid OAuth access token - Cannot parse access token")
        parts = request.path.strip("/").split("/")
        if len(parts) != 2:
            return graph_error(400, 100, "Unsupported post request.")
        node, edge = parts
        ig = self._ig_of(page_id)
        handlers = {
            (page_id, "feed"): self._feed,
            (page_id, "photos"): self._photos,
            (page_id, "videos"): self._videos,
            (ig, "media"): self._container,
            (ig, "media_publish"): self._publish,
        }
        handler = handlers.get((node, edge))
        if handler is None:
            return graph_error(
                403, 200, "(#200) Permissions error", user_message=f"Cannot post to {node}"
            )
        return self._usage(handler(request, node))

    def _node(self, request: Request) -> Response:
        page_id = self._page_of(request)
        parts = request.path.strip("/").split("/")
        if page_id is not None and parts[0] == page_id and len(parts) == 1:
            return super()._node(request)
        if page_id is None:
            return graph_error(400, 190, "Invalid OAuth access token - Cannot parse access token")
        ig = self._ig_of(page_id)
        if len(parts) == 2 and parts == [page_id, "feed"]:
            return self._usage(self._list(request, "facebook_post", page_id))
        if len(parts) == 2 and parts == [ig, "media"]:
            return self._usage(self._list(request, "instagram_media", ig or ""))
        item = self.objects.get(parts[0])
        if item is None or item["owner"] not in (page_id, ig) or len(parts) != 1:
            return graph_error(
                400,
                100,
                f"Unsupported get request. Object with ID '{parts[0]}' does not exist",
                subcode=33,
            )
        if item["kind"] == "container":
            if item["status_code"] == "IN_PROGRESS":
                if item["polls_left"] > 0:
                    item["polls_left"] -= 1
                else:
                    item["status_code"] = "FINISHED"
            body = {"id": item["id"], "status_code": item["status_code"]}
            body["status"] = item.get("status") or item["status_code"]
            return self._usage(Response(200, body))
        return self._usage(Response(200, self._public(item)))

    def _public(self, item: dict[str, Any]) -> dict[str, Any]:
        body = {"id": item["id"]}
        if item["kind"] == "facebook_post":
            body.update(
                message=item.get("message"),
                created_time=_time(item["created"]),
                permalink_url=f"https://www.facebook.com/{item['id']}",
            )
        elif item["kind"] == "instagram_media":
            body.update(
                caption=item.get("caption"),
                timestamp=_time(item["created"]),
                permalink=f"https://www.instagram.com/p/{item['shortcode']}/",
                media_type=item["media_type"],
            )
        return {k: v for k, v in body.items() if v is not None}

    def _list(self, request: Request, kind: str, owner: str) -> Response:
        items = sorted(
            (o for o in self.objects.values() if o["kind"] == kind and o["owner"] == owner),
            key=lambda o: int(o["id"]),
            reverse=True,
        )
        if kind == "facebook_post":
            items = [o for o in items if o.get("published", True)]
        start = int(request.query.get("after") or 0)
        limit = min(int(request.query.get("limit") or 25), 100)
        page = items[start : start + limit]
        body: dict[str, Any] = {"data": [self._public(o) for o in page]}
        if start + limit < len(items):
            body["paging"] = {"cursors": {"before": str(start), "after": str(start + limit)}}
        return Response(200, body)

    # -- Facebook -----------------------------------------------------------------------------

    def _feed(self, request: Request, page_id: str) -> Response:
        fields = self._fields(request)
        message, link = fields.get("message"), fields.get("link")
        attached = []
        for key in sorted(k for k in fields if k.startswith("attached_media[")):
            try:
                photo = self.objects.get(str(json.loads(fields[key])["media_fbid"]))
            except (ValueError, KeyError, TypeError):
                photo = None
            if photo is None or photo["kind"] != "photo" or photo["owner"] != page_id:
                return graph_error(400, 100, "(#100) Invalid media_fbid in attached_media")
            attached.append(photo["id"])
        if not message and not link and not attached:
            return graph_error(400, 100, "(#100) The post is empty.")
        if message and any(
            o["kind"] == "facebook_post" and o["owner"] == page_id and o.get("message") == message
            for o in self.objects.values()
        ):
            return graph_error(400, 506, "(#506) Duplicate status message")
        post = self._post_object(page_id, message=message, link=link, attached=attached)
        return Response(200, {"id": post["id"]})

    def _post_object(self, page_id: str, **values: Any) -> dict[str, Any]:
        post = self._new("facebook_post", page_id, **values)
        # Page post ids read "{page-id}_{post-id}".
        self.objects[f"{page_id}_{post['id']}"] = post
        del self.objects[post["id"]]
        post["id"] = f"{page_id}_{post['id']}"
        self.facebook_posts_made += 1
        return post

    def _media_source(self, request: Request, url_field: str) -> str | Response:
        fields = self._fields(request)
        upload = request.multipart.get("source")
        if fields.get(url_field):
            return fields[url_field]
        if upload is not None and upload.filename is not None and upload.data:
            return f"upload:{len(upload.data)}"
        return graph_error(400, 324, "(#324) Requires upload file")

    def _photos(self, request: Request, page_id: str) -> Response:
        source = self._media_source(request, "url")
        if isinstance(source, Response):
            return source
        fields = self._fields(request)
        published = fields.get("published", "true") != "false"
        photo = self._new(
            "photo",
            page_id,
            source=source,
            alt_text=fields.get("alt_text_custom"),
            published=published,
        )
        if not published:
            return Response(200, {"id": photo["id"]})
        post = self._post_object(page_id, message=fields.get("caption"), attached=[photo["id"]])
        return Response(200, {"id": photo["id"], "post_id": post["id"]})

    def _videos(self, request: Request, page_id: str) -> Response:
        source = self._media_source(request, "file_url")
        if isinstance(source, Response):
            return source
        fields = self._fields(request)
        video = self._new("video", page_id, source=source)
        post = self._post_object(page_id, message=fields.get("description"), video=video["id"])
        video["post_id"] = post["id"]
        return Response(200, {"id": video["id"]})

    # -- Instagram ----------------------------------------------------------------------------

    def _container(self, request: Request, ig: str) -> Response:
        fields = self._fields(request)
        caption = fields.get("caption") or ""
        if len(caption) > 2200:
            return graph_error(
                400, 100, "Invalid parameter", user_message="The caption is too long."
            )
        media_type = fields.get("media_type") or "IMAGE"
        if media_type == "CAROUSEL":
            children = [c for c in (fields.get("children") or "").split(",") if c]
            ready = [self.objects.get(c) for c in children]
            if not 2 <= len(children) <= 10 or any(
                c is None or c["kind"] != "container" or not c.get("carousel_item") for c in ready
            ):
                return graph_error(400, 100, "(#100) The children parameter is invalid")
            url = None
        else:
            url = fields.get("video_url" if media_type in ("VIDEO", "REELS") else "image_url")
            if not url:
                return graph_error(400, 9004, "Only photo or video can be accepted as media type.")
        status_code = "IN_PROGRESS"
        status = None
        if url is not None and not url.startswith(("http://", "https://")):
            status_code = "ERROR"
            status = (
                "Error: Media download has failed. The media URI doesn't meet our requirements."
            )
        container = self._new(
            "container",
            ig,
            media_type=media_type,
            url=url,
            caption=caption,
            alt_text=fields.get("alt_text"),
            carousel_item=fields.get("is_carousel_item") == "true",
            children=fields.get("children"),
            status_code=status_code,
            status=status,
            polls_left=self.processing_polls,
        )
        return Response(200, {"id": container["id"]})

    def _publish(self, request: Request, ig: str) -> Response:
        container = self.objects.get(self._fields(request).get("creation_id", ""))
        if container is None or container["kind"] != "container" or container["owner"] != ig:
            return graph_error(400, 100, "(#100) Param creation_id is invalid")
        if container["status_code"] == "PUBLISHED":
            return graph_error(400, 9007, "The media has already been published", subcode=2207020)
        if container["status_code"] != "FINISHED":
            return graph_error(
                400,
                9007,
                "Media ID is not available",
                subcode=2207027,
                user_message="The media is not ready for publishing, please wait for a moment",
            )
        container["status_code"] = "PUBLISHED"
        media = self._new(
            "instagram_media",
            ig,
            caption=container["caption"],
            media_type="CAROUSEL_ALBUM" if container["media_type"] == "CAROUSEL" else "IMAGE",
            shortcode=secrets.token_urlsafe(8),
            container=container["id"],
        )
        self.instagram_posts_made += 1
        return Response(200, {"id": media["id"]})

    # -- deleting -----------------------------------------------------------------------------

    def _delete(self, request: Request) -> Response:
        page_id = self._page_of(request)
        if page_id is None:
            return graph_error(400, 190, "Invalid OAuth access token - Cannot parse access token")
        object_id = request.path.strip("/")
        item = self.objects.get(object_id)
        if item is None or item["owner"] not in (page_id, self._ig_of(page_id)):
            return graph_error(
                400,
                100,
                f"Unsupported delete request. Object with ID '{object_id}' does not exist, "
                "cannot be loaded due to missing permissions, or does not support this operation",
                subcode=33,
            )
        del self.objects[object_id]
        return self._usage(Response(200, {"success": True}))
