"""Instagram Business accounts, through Meta's Graph API (the connection is Meta's: see
app/networks/meta.py): publishing is two steps, a media container made and polled until it is
FINISHED, then published; carousels for several media."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

import httpx

from app.networks import http
from app.networks.base import (
    ConnectedAccount,
    ContentRejected,
    Identity,
    MediaItem,
    NetworkAccount,
    NetworkError,
    NotSupported,
    OutcomeUnknown,
    Published,
    PublishRequest,
    TokenSet,
)
from app.networks.meta import MetaConnector, graph_time


class InstagramConnector(MetaConnector):
    network = "instagram"
    display_name = "Instagram"
    scope_list: ClassVar[list[str]] = [
        "pages_show_list",
        "pages_read_engagement",
        "business_management",
        "instagram_basic",
        "instagram_content_publish",
    ]
    nothing_found = "none of this person's Facebook pages has an Instagram Business account"

    def account_for_page(self, page: dict[str, Any]) -> ConnectedAccount | None:
        ig = page.get("instagram_business_account") or {}
        if not ig.get("id"):
            return None
        identity = Identity(
            external_id=str(ig["id"]),
            handle=f"@{ig.get('username') or ig['id']}",
            display_name=ig.get("name") or ig.get("username"),
            account_kind="business",
        )
        secrets = {"access_token": page["access_token"], "page_id": str(page["id"])}
        return ConnectedAccount(identity, TokenSet(secrets=secrets))

    def verify(self, secrets: dict[str, Any], instance_url: str | None) -> Identity:
        page = self.bearer_get(
            f"{self._graph()}/{secrets['page_id']}",
            secrets["access_token"],
            fields="id,instagram_business_account{id,username,name}",
        )
        account = self.account_for_page({**page, "access_token": secrets["access_token"]})
        if account is None:
            raise NetworkError("the page has no Instagram Business account any more")
        return account.identity

    # -- publishing ------------------------------------------------------------------------------

    def publish(self, account: NetworkAccount, request: PublishRequest) -> Published:
        if not request.media:
            raise ContentRejected("Instagram posts need at least one picture or video.")
        if any(not item.url for item in request.media):
            # Instagram downloads media itself; without a public link it has nothing to fetch.
            raise NetworkError("Instagram needs a public URL for every media item")
        ig = account.external_id
        headers = self._bearer(account)
        caption = request.text_with_link()
        with http.client() as c:
            if len(request.media) == 1:
                fields = {**_ig_media_fields(request.media[0], carousel_item=False)}
                fields["caption"] = caption
                container = self._container(c, headers, ig, fields)
            else:
                children = [
                    self._container(c, headers, ig, _ig_media_fields(item, carousel_item=True))
                    for item in request.media
                ]
                for child in children:
                    self._wait_finished(c, headers, child)
                fields = {
                    "media_type": "CAROUSEL",
                    "children": ",".join(children),
                    "caption": caption,
                }
                container = self._container(c, headers, ig, fields)
            self._wait_finished(c, headers, container)
            published = self._graph_call(
                c,
                "POST",
                f"{ig}/media_publish",
                creates=True,
                data={"creation_id": container},
                headers=headers,
            )
            media_id = str(published.get("id") or "")
            if not media_id:
                raise OutcomeUnknown("Instagram published without returning the media id")
            try:
                details = self._graph_call(
                    c,
                    "GET",
                    media_id,
                    params={"fields": "permalink,timestamp"},
                    headers=headers,
                )
            except NetworkError:
                details = {}  # published all the same; the link is a nicety
        return Published(
            external_id=media_id,
            url=details.get("permalink"),
            published_at=graph_time(details.get("timestamp")) or datetime.now(UTC),
        )

    def _container(
        self, c: httpx.Client, headers: dict[str, str], ig: str, fields: dict[str, str]
    ) -> str:
        # A container publishes nothing by itself: making one twice is harmless.
        created = self._graph_call(c, "POST", f"{ig}/media", data=fields, headers=headers)
        container = str(created.get("id") or "")
        if not container:
            raise NetworkError("Instagram answered without a container id")
        return container

    def _wait_finished(self, c: httpx.Client, headers: dict[str, str], container: str) -> None:
        def finished() -> bool | None:
            state = self._graph_call(
                c, "GET", container, params={"fields": "status_code,status"}, headers=headers
            )
            code = state.get("status_code")
            if code in ("FINISHED", "PUBLISHED"):
                return True
            if code in ("ERROR", "EXPIRED"):
                raise ContentRejected(
                    str(state.get("status") or f"Instagram could not use the media ({code})")
                )
            return None

        http.wait_until_ready(
            finished,
            f"container {container}",
            every=self.media_poll_seconds,
            limit=self.media_wait_seconds,
        )

    def find_existing(
        self, account: NetworkAccount, request: PublishRequest, *, since: datetime
    ) -> Published | None:
        with http.client() as c:
            found = self._recent(
                c,
                account,
                f"{account.external_id}/media",
                "id,caption,timestamp,permalink",
                since,
                "caption",
                request.text_with_link(),
            )
        if found is None:
            return None
        return Published(
            external_id=str(found["id"]),
            url=found.get("permalink"),
            published_at=graph_time(found.get("timestamp")),
        )

    def delete(self, account: NetworkAccount, external_id: str) -> None:
        try:
            super().delete(account, external_id)
        except ContentRejected as exc:
            # Accounts and media for which Meta offers no deletion answer "unsupported".
            raise NotSupported(f"Instagram refused to delete the post: {exc}") from exc


def _ig_media_fields(item: MediaItem, *, carousel_item: bool) -> dict[str, str]:
    fields: dict[str, str] = {}
    if item.is_video:
        fields["media_type"] = "VIDEO" if carousel_item else "REELS"
        fields["video_url"] = item.url or ""
    else:
        fields["image_url"] = item.url or ""
        if item.alt_text:
            fields["alt_text"] = item.alt_text
    if carousel_item:
        fields["is_carousel_item"] = "true"
    return fields


# Graph error codes (developers.facebook.com/docs/graph-api/guides/error-handling).
