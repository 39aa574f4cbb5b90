"""Meta (https://developers.facebook.com/docs/facebook-login/guides/advanced/manual-flow/):
Facebook Pages and Instagram Business accounts, both reached through Facebook Login.

The code is exchanged for a user token, then for a long-lived one (60 days); the pages the person
manages come with page tokens derived from it, which do not expire. One Relais account per page
(Facebook) or per page's linked Instagram Business account (Instagram). Meta has no refresh
tokens. Disconnecting one page forgets its token but does not deauthorize the whole app
(DELETE /me/permissions would cut every other page the person connected too).

Publishing, with the page token:
- Facebook: POST /{page-id}/feed (text, link), /{page-id}/photos (one picture; several are
  uploaded unpublished and attached to one feed post), /{page-id}/videos.
- Instagram: the two steps of content publishing: POST /{ig-user-id}/media makes a container
  (Instagram fetches the picture or video from its public URL; a carousel's items are
  containers of their own), GET /{container-id}?fields=status_code until FINISHED, then
  POST /{ig-user-id}/media_publish.
The Graph API has no idempotency key: `find_existing` reads the page's feed, or the Instagram
account's media, back to the attempt's start.

Graph errors carry a `code`: 190/102 (dead token) and 10/200-299 (missing permission) need a
reconnection; 4/17/32/613/80001 and `is_transient` are passing (rate limits, with the wait in
X-Business-Use-Case-Usage's `estimated_time_to_regain_access`, in minutes); the others are
about the post, and their `error_user_msg`/`message` is Meta's own explanation.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import httpx
from flask import current_app

from app.networks import http
from app.networks.base import (
    AuthorizationRequest,
    ConnectedAccount,
    ContentRejected,
    CredentialsRejected,
    Identity,
    MediaItem,
    NetworkAccount,
    NetworkError,
    OutcomeUnknown,
    Published,
    PublishRequest,
    TokenSet,
    TransientNetworkError,
    same_text,
)
from app.networks.oauth import OAuth2Connector


class MetaConnector(OAuth2Connector):
    supports_pkce = True
    scope_separator = ","
    client_id_setting = "META_APP_ID"
    scope_list: ClassVar[list[str]] = []

    def client_credentials(self, request: AuthorizationRequest | None) -> tuple[str, str]:
        return current_app.config["META_APP_ID"], current_app.config["META_APP_SECRET"]

    def authorize_endpoint(self, request: AuthorizationRequest) -> str:
        return current_app.config["META_AUTHORIZE_URL"]

    def token_endpoint(self, instance_url: str | None) -> str:
        return f"{self._graph()}/oauth/access_token"

    def scopes(self, account_kind: str | None) -> list[str]:
        return self.scope_list

    def can_refresh(self, secrets: dict[str, Any]) -> bool:
        return False

    def _graph(self) -> str:
        return current_app.config["META_GRAPH_URL"]

    def _long_lived(self, short_token: str) -> dict[str, Any]:
        client_id, client_secret = self.client_credentials(None)
        with http.translated_errors(), http.client() as c:
            return http.json_of(
                c.post(
                    f"{self._graph()}/oauth/access_token",
                    data={
                        "grant_type": "fb_exchange_token",
                        "client_id": client_id,
                        "client_secret": client_secret,
                        "fb_exchange_token": short_token,
                    },
                )
            )

    def _pages(self, user_token: str) -> list[dict[str, Any]]:
        body = self.bearer_get(
            f"{self._graph()}/me/accounts",
            user_token,
            fields="id,name,access_token,instagram_business_account{id,username,name}",
        )
        return [p for p in body.get("data") or [] if p.get("id") and p.get("access_token")]

    def identities(
        self, token: dict[str, Any], request: AuthorizationRequest
    ) -> list[ConnectedAccount]:
        long_lived = self._long_lived(token["access_token"])
        user_token = long_lived.get("access_token") or token["access_token"]
        accounts = [
            account
            for page in self._pages(user_token)
            if (account := self.account_for_page(page)) is not None
        ]
        if not accounts:
            raise NetworkError(self.nothing_found)
        return accounts

    nothing_found: ClassVar[str] = ""

    def account_for_page(self, page: dict[str, Any]) -> ConnectedAccount | None:
        raise NotImplementedError

    def revoke(self, secrets: dict[str, Any], instance_url: str | None) -> None:
        return None

    # -- publishing ------------------------------------------------------------------------------

    clock_skew: ClassVar[timedelta] = timedelta(minutes=5)
    search_pages: ClassVar[int] = 3

    @staticmethod
    def _bearer(account: NetworkAccount) -> dict[str, str]:
        return {"Authorization": f"Bearer {account.secrets['access_token']}"}

    def _graph_call(
        self, c: httpx.Client, method: str, path: str, *, creates: bool = False, **options: Any
    ) -> dict[str, Any]:
        response = http.send(c, method, f"{self._graph()}/{path}", creates=creates, **options)
        if not response.is_success:
            raise graph_error(response, creates=creates)
        return http.answer_json(response, creates=creates)

    def _recent(
        self,
        c: httpx.Client,
        account: NetworkAccount,
        edge: str,
        fields: str,
        since: datetime,
        text_field: str,
        text: str,
    ) -> dict[str, Any] | None:
        """The first item of `edge` (newest first) whose `text_field` is `text`, among those
        made since the attempt began (less the clock skew)."""
        oldest = since - self.clock_skew
        params: dict[str, Any] = {"fields": fields, "limit": 25}
        url = edge
        for _ in range(self.search_pages):
            page = self._graph_call(c, "GET", url, params=params, headers=self._bearer(account))
            for item in page.get("data") or []:
                created = graph_time(item.get("created_time") or item.get("timestamp"))
                if created is None or created < oldest:
                    return None
                if same_text(text, str(item.get(text_field) or "")):
                    return item
            after = ((page.get("paging") or {}).get("cursors") or {}).get("after")
            if not after or not page.get("data"):
                return None
            params["after"] = after
        return None

    def delete(self, account: NetworkAccount, external_id: str) -> None:
        with http.client() as c:
            response = http.send(
                c, "DELETE", f"{self._graph()}/{external_id}", headers=self._bearer(account)
            )
        if response.is_success:
            return
        body = http.error_body(response)
        error = body.get("error") if isinstance(body, dict) else None
        error = error if isinstance(error, dict) else {}
        if (error.get("code"), error.get("error_subcode")) == (100, 33):
            return  # "Object does not exist": already deleted
        raise graph_error(response)


class FacebookConnector(MetaConnector):
    network = "facebook"
    display_name = "Facebook"
    scope_list: ClassVar[list[str]] = [
        "pages_show_list",
        "pages_read_engagement",
        "pages_manage_posts",
    ]
    nothing_found = "this Facebook user manages no page"

    def account_for_page(self, page: dict[str, Any]) -> ConnectedAccount | None:
        identity = Identity(
            external_id=str(page["id"]),
            handle=page.get("name") or str(page["id"]),
            display_name=page.get("name"),
            account_kind="page",
        )
        return ConnectedAccount(identity, TokenSet(secrets={"access_token": page["access_token"]}))

    def verify(self, secrets: dict[str, Any], instance_url: str | None) -> Identity:
        body = self.bearer_get(f"{self._graph()}/me", secrets["access_token"], fields="id,name")
        name = body.get("name")
        return Identity(str(body["id"]), name or str(body["id"]), name, "page")

    # -- publishing ------------------------------------------------------------------------------

    def publish(self, account: NetworkAccount, request: PublishRequest) -> Published:
        page = account.external_id
        headers = self._bearer(account)
        # Facebook draws the link's preview itself: the link goes as `link`, not in the text.
        message = request.text if request.link else request.text_with_link()
        videos = [item for item in request.media if item.is_video]
        with http.client() as c:
            if videos:
                data = {"description": message}
                created = self._send_media(c, headers, f"{page}/videos", videos[0], data, True)
                video_id = str(created.get("id") or "")
                return self._published(video_id, f"https://www.facebook.com/{video_id}")
            if len(request.media) == 1:
                data = {"caption": message, "published": "true"}
                created = self._send_media(
                    c, headers, f"{page}/photos", request.media[0], data, True
                )
                post_id = str(created.get("post_id") or created.get("id") or "")
                return self._published(post_id, f"https://www.facebook.com/{post_id}")
            fields: dict[str, Any] = {"message": message}
            if request.link:
                fields["link"] = request.link
            for index, item in enumerate(request.media):
                # Unpublished photos, attached to the one post below.
                data = {"published": "false"}
                photo = self._send_media(c, headers, f"{page}/photos", item, data, False)
                fields[f"attached_media[{index}]"] = json.dumps({"media_fbid": str(photo["id"])})
            created = self._graph_call(
                c, "POST", f"{page}/feed", creates=True, data=fields, headers=headers
            )
        post_id = str(created.get("id") or "")
        return self._published(post_id, f"https://www.facebook.com/{post_id}")

    def _send_media(
        self,
        c: httpx.Client,
        headers: dict[str, str],
        path: str,
        item: MediaItem,
        data: dict[str, str],
        creates: bool,
    ) -> dict[str, Any]:
        """A photo or video for the page: by its public URL when there is one (Facebook
        fetches it), else the bytes themselves."""
        data = dict(data)
        if item.alt_text and not item.is_video:
            data["alt_text_custom"] = item.alt_text
        if item.url:
            data["file_url" if item.is_video else "url"] = item.url
            return self._graph_call(c, "POST", path, creates=creates, data=data, headers=headers)
        with item.open() as stream:
            files = {"source": (item.filename, stream, item.content_type)}
            return self._graph_call(
                c, "POST", path, creates=creates, data=data, files=files, headers=headers
            )

    @staticmethod
    def _published(post_id: str, url: str) -> Published:
        if not post_id:
            raise OutcomeUnknown("Facebook created the post without returning its id")
        return Published(external_id=post_id, url=url, published_at=datetime.now(UTC))

    def find_existing(
        self, account: NetworkAccount, request: PublishRequest, *, since: datetime
    ) -> Published | None:
        message = request.text if request.link else request.text_with_link()
        with http.client() as c:
            found = self._recent(
                c,
                account,
                f"{account.external_id}/feed",
                "id,message,created_time,permalink_url",
                since,
                "message",
                message,
            )
        if found is None:
            return None
        return Published(
            external_id=str(found["id"]),
            url=found.get("permalink_url") or f"https://www.facebook.com/{found['id']}",
            published_at=graph_time(found.get("created_time")),
        )


_DEAD_TOKEN_CODES = {102, 190}
_RATE_LIMIT_CODES = {4, 17, 32, 613, 80001, 80002}
_TEMPORARY_CODES = {1, 2}


def graph_error(response: httpx.Response, *, creates: bool = False) -> NetworkError:
    """The connector error for a Graph API error answer."""
    body = http.error_body(response)
    error = body.get("error") if isinstance(body, dict) else None
    error = error if isinstance(error, dict) else {}
    code = error.get("code") if isinstance(error.get("code"), int) else None
    message = str(error.get("error_user_msg") or error.get("message") or "")
    status = response.status_code
    if code in _DEAD_TOKEN_CODES or status == 401:
        return CredentialsRejected(message or "Meta refused the token", status=status)
    if code == 10 or (code is not None and 200 <= code <= 299):
        return CredentialsRejected(message or "a permission is missing", status=status)
    if code in _RATE_LIMIT_CODES or status == 429:
        return TransientNetworkError(
            message or "Meta's rate limit was reached",
            status=status,
            retry_after=_regain_access_seconds(response),
        )
    if error.get("is_transient") or code in _TEMPORARY_CODES:
        # Meta says the failure passes; on the creating request it may still have happened.
        if creates and status >= 500 and status != 503:
            return OutcomeUnknown(message or "Meta failed while publishing", status=status)
        return TransientNetworkError(message or "Meta failed for a moment", status=status)
    if 400 <= status < 500 and message:
        return ContentRejected(message, status=status)
    return http.failed_publishing(response, message, creates=creates)


def _regain_access_seconds(response: httpx.Response) -> int | None:
    """X-Business-Use-Case-Usage: {"<id>": [{"estimated_time_to_regain_access": minutes}]}."""
    value = response.headers.get("x-business-use-case-usage")
    if value and len(value) < 10_000:
        try:
            usage = json.loads(value)
        except ValueError:
            usage = None
        minutes = [
            entry.get("estimated_time_to_regain_access")
            for entries in (usage.values() if isinstance(usage, dict) else [])
            if isinstance(entries, list)
            for entry in entries
            if isinstance(entry, dict)
        ]
        minutes = [m for m in minutes if isinstance(m, int) and m > 0]
        if minutes:
            return max(minutes) * 60
    return http.retry_after_seconds(response)


def graph_time(value: Any) -> datetime | None:
    """Graph times: "2024-05-01T09:00:00+0000" (no colon in the offset) or ISO 8601."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S%z")
    except ValueError:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
