"""X (https://docs.x.com/resources/fundamentals/authentication/oauth-2-0/): OAuth 2.0
authorization code with PKCE (required), confidential client (HTTP Basic on the token endpoint).

Access tokens live two hours; `offline.access` brings a refresh token, which X rotates on every
refresh, so the new one must be stored at once.

Publishing (https://docs.x.com/x-api/): media through the v2 chunked upload (POST
/2/media/upload/initialize, /{id}/append, /{id}/finalize, then GET /2/media/upload?command=STATUS
while X processes videos and GIFs), alt text through POST /2/media/metadata, then POST
/2/tweets. X has no idempotency key: a tweet whose answer was lost is looked for in the
account's timeline (GET /2/users/{id}/tweets) before anything is sent again.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import httpx
from flask import current_app

from app.networks import http
from app.networks.base import (
    AuthorizationRequest,
    ConnectedAccount,
    ContentRejected,
    Identity,
    MediaItem,
    NetworkAccount,
    NetworkError,
    Published,
    PublishRequest,
    same_text,
)
from app.networks.oauth import OAuth2Connector

SCOPES = ["tweet.read", "tweet.write", "users.read", "media.write", "offline.access"]


class XConnector(OAuth2Connector):
    network = "x"
    display_name = "X"
    client_id_setting = "X_CLIENT_ID"
    supports_pkce = True
    token_auth_method = "client_secret_basic"

    def client_credentials(self, request: AuthorizationRequest | None) -> tuple[str, str]:
        return current_app.config["X_CLIENT_ID"], current_app.config["X_CLIENT_SECRET"]

    def authorize_endpoint(self, request: AuthorizationRequest) -> str:
        return current_app.config["X_AUTHORIZE_URL"]

    def token_endpoint(self, instance_url: str | None) -> str:
        return f"{current_app.config['X_API_URL']}/2/oauth2/token"

    def revoke_endpoint(self, instance_url: str | None) -> str | None:
        return f"{current_app.config['X_API_URL']}/2/oauth2/revoke"

    def scopes(self, account_kind: str | None) -> list[str]:
        return SCOPES

    def identities(
        self, token: dict[str, Any], request: AuthorizationRequest
    ) -> list[ConnectedAccount]:
        tokens = self.token_set(token)
        return [ConnectedAccount(self.verify(tokens.secrets, None), tokens)]

    def verify(self, secrets: dict[str, Any], instance_url: str | None) -> Identity:
        api = current_app.config["X_API_URL"]
        body = self.bearer_get(f"{api}/2/users/me", secrets["access_token"])
        user = body.get("data") or {}
        if not user.get("id") or not user.get("username"):
            raise NetworkError("users/me answered without a user")
        return Identity(
            external_id=str(user["id"]),
            handle=f"@{user['username']}",
            display_name=user.get("name") or None,
        )

    # -- publishing ------------------------------------------------------------------------------

    # Bytes per APPEND (X takes up to 5 MB per segment).
    chunk_bytes: ClassVar[int] = 4 * 1024 * 1024
    clock_skew: ClassVar[timedelta] = timedelta(minutes=5)
    search_pages: ClassVar[int] = 3

    def _api(self) -> str:
        return current_app.config["X_API_URL"]

    def publish(self, account: NetworkAccount, request: PublishRequest) -> Published:
        self.check_token_fresh(account)
        headers = {"Authorization": f"Bearer {account.secrets['access_token']}"}
        with http.client() as c:
            media_ids = [self._upload(c, headers, item) for item in request.media]
            payload: dict[str, Any] = {"text": request.text_with_link()}
            if media_ids:
                payload["media"] = {"media_ids": media_ids}
            response = http.send(
                c, "POST", f"{self._api()}/2/tweets", creates=True, json=payload, headers=headers
            )
            if not response.is_success:
                raise self._failure(response, creates=True)
            tweet = http.answer_json(response, creates=True).get("data") or {}
        if not tweet.get("id"):
            raise NetworkError("X answered the tweet without an id")
        return Published(
            external_id=str(tweet["id"]), url=f"https://x.com/i/web/status/{tweet['id']}"
        )

    def _upload(self, c: httpx.Client, headers: dict[str, str], item: MediaItem) -> str:
        api = self._api()
        if item.is_video:
            category = "tweet_video"
        elif item.content_type == "image/gif":
            category = "tweet_gif"
        else:
            category = "tweet_image"
        started = self._ok(
            http.send(
                c,
                "POST",
                f"{api}/2/media/upload/initialize",
                json={
                    "media_type": item.content_type,
                    "total_bytes": item.size_bytes,
                    "media_category": category,
                },
                headers=headers,
            )
        )
        media_id = str((started.get("data") or {}).get("id") or "")
        if not media_id:
            raise NetworkError("X answered the upload without a media id")
        with item.open() as stream:
            segment = 0
            while chunk := stream.read(self.chunk_bytes):
                self._ok(
                    http.send(
                        c,
                        "POST",
                        f"{api}/2/media/upload/{media_id}/append",
                        files={"media": (item.filename, chunk, "application/octet-stream")},
                        data={"segment_index": str(segment)},
                        headers=headers,
                    ),
                    empty=True,
                )
                segment += 1
        finished = self._ok(
            http.send(c, "POST", f"{api}/2/media/upload/{media_id}/finalize", headers=headers)
        )
        if self._processing(media_id, finished) is None:

            def processed() -> str | None:
                status = self._ok(
                    http.send(
                        c,
                        "GET",
                        f"{api}/2/media/upload",
                        params={"command": "STATUS", "media_id": media_id},
                        headers=headers,
                    )
                )
                return self._processing(media_id, status)

            http.wait_until_ready(
                processed,
                f"media {media_id}",
                every=self.media_poll_seconds,
                limit=self.media_wait_seconds,
            )
        if item.alt_text and not item.is_video:
            self._ok(
                http.send(
                    c,
                    "POST",
                    f"{api}/2/media/metadata",
                    json={"id": media_id, "metadata": {"alt_text": {"text": item.alt_text}}},
                    headers=headers,
                )
            )
        return media_id

    @staticmethod
    def _processing(media_id: str, answer: dict[str, Any]) -> str | None:
        """`media_id` once X is done with it; None while it still works; ContentRejected when
        processing failed (an unsupported video, say), with X's message."""
        info = (answer.get("data") or {}).get("processing_info")
        if not info or info.get("state") == "succeeded":
            return media_id
        if info.get("state") == "failed":
            error = info.get("error") or {}
            raise ContentRejected(str(error.get("message") or "X could not process the media"))
        return None

    def _ok(self, response: httpx.Response, *, empty: bool = False) -> dict[str, Any]:
        if not response.is_success:
            raise self._failure(response)
        if empty and not response.content:
            return {}
        return http.answer_json(response)

    def _failure(self, response: httpx.Response, *, creates: bool = False) -> NetworkError:
        body = http.error_body(response)
        body = body if isinstance(body, dict) else {}
        messages = [
            str(e.get("message"))
            for e in body.get("errors") or []
            if isinstance(e, dict) and e.get("message")
        ]
        message = "; ".join(messages) or str(body.get("detail") or body.get("title") or "")
        status = response.status_code
        if status == 403:
            problem = str(body.get("type") or "")
            if "client-forbidden" in problem or "unsupported-authentication" in problem:
                # Our app's access level, not this post: the operator must act.
                return NetworkError(f"X refused our app: {message}", status=403)
            # Duplicate or too long: X's words, for the person who wrote the post.
            return ContentRejected(message or "X refused the tweet", status=403)
        return http.failed_publishing(
            response, message, creates=creates, retry_after=self._reset(response)
        )

    @staticmethod
    def _reset(response: httpx.Response) -> int | None:
        """On a 429, seconds until the limit that ran out resets: the 24-hour user limit if
        that is the one, else the endpoint's 15-minute window (epoch seconds in both)."""
        if response.status_code != 429:
            return None
        headers = response.headers
        if headers.get("x-user-limit-24hour-remaining") == "0":
            reset = headers.get("x-user-limit-24hour-reset", "")
        else:
            reset = headers.get("x-rate-limit-reset", "")
        if not reset.isdigit():
            return None
        return http.seconds_until(datetime.fromtimestamp(int(reset), tz=UTC))

    def find_existing(
        self, account: NetworkAccount, request: PublishRequest, *, since: datetime
    ) -> Published | None:
        """The account's tweets since the attempt began: one with the request's text (X shows
        links as t.co, so URLs are left out of the comparison) and as many media."""
        self.check_token_fresh(account)
        headers = {"Authorization": f"Bearer {account.secrets['access_token']}"}
        start = (since - self.clock_skew).strftime("%Y-%m-%dT%H:%M:%SZ")
        params: dict[str, Any] = {
            "start_time": start,
            "max_results": 100,
            "tweet.fields": "created_at,attachments",
            "exclude": "retweets,replies",
        }
        url = f"{self._api()}/2/users/{account.external_id}/tweets"
        with http.client() as c:
            for _ in range(self.search_pages):
                page = self._ok(http.send(c, "GET", url, params=params, headers=headers))
                for tweet in page.get("data") or []:
                    media = (tweet.get("attachments") or {}).get("media_keys") or []
                    if len(media) == len(request.media) and same_text(
                        request.text_with_link(), str(tweet.get("text") or "")
                    ):
                        return Published(
                            external_id=str(tweet["id"]),
                            url=f"https://x.com/i/web/status/{tweet['id']}",
                            published_at=_parse_time(tweet.get("created_at")),
                        )
                token = (page.get("meta") or {}).get("next_token")
                if not token:
                    return None
                params["pagination_token"] = token
        return None

    def delete(self, account: NetworkAccount, external_id: str) -> None:
        self.check_token_fresh(account)
        headers = {"Authorization": f"Bearer {account.secrets['access_token']}"}
        with http.client() as c:
            response = http.send(
                c, "DELETE", f"{self._api()}/2/tweets/{external_id}", headers=headers
            )
        if response.status_code == 404 or response.is_success:
            return
        raise self._failure(response)


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None
