"""Mastodon (https://docs.joinmastodon.org/): OAuth on the user's own instance, or a token made
in the instance's Development settings.

Our app is registered once per instance (POST /api/v1/apps); the services cache the client id
and secret and pass them in `AuthorizationRequest.extra`. Mastodon tokens do not expire and come
without refresh tokens; PKCE (S256) is supported since Mastodon 4.3 and ignored by older ones.

An account is named after the instance's own domain (`domain` of GET /api/v2/instance, the
server's LOCAL_DOMAIN), not after the URL the person typed: one server may answer on several
names, and its web address may differ from its accounts' domain (social.example.com serving
@alice@example.com). So the same account reached through two URLs is one account.

Publishing: media through POST /api/v2/media (202 while the server processes it, then polled
at GET /api/v1/media/:id until its `url` is set), then POST /api/v1/statuses with our
`Idempotency-Key`. Mastodon keeps that key for one hour: within it, sending the same status
again returns the status already made instead of a second one. There is no look-up by key, so
`find_existing` reads the account's own recent statuses and matches the text.
"""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import urlsplit

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
    Published,
    PublishRequest,
    TokenSet,
    TransientNetworkError,
)
from app.networks.oauth import OAuth2Connector


class MastodonConnector(OAuth2Connector):
    network = "mastodon"
    supports_pkce = True
    user_given_urls = True

    # -- the account services' hooks (see Connector) -------------------------------------------
    display_name = "Mastodon"
    per_instance = True
    registers_app_per_instance = True

    def app_scopes(self) -> str:
        return current_app.config["MASTODON_SCOPES"]

    def reconnects_with_credentials(self, data: dict[str, Any]) -> bool:
        # A new token from the Development settings, or else OAuth again.
        return bool(data.get("access_token"))

    def register_app(self, instance_url: str, redirect_uri: str, scopes: str) -> tuple[str, str]:
        """POST /api/v1/apps: our client id and secret on this instance."""
        payload = {
            "client_name": current_app.config["MASTODON_APP_NAME"],
            "redirect_uris": redirect_uri,
            "scopes": scopes,
        }
        if current_app.config.get("MASTODON_APP_WEBSITE"):
            payload["website"] = current_app.config["MASTODON_APP_WEBSITE"]
        with http.translated_errors(), http.client(user_given=True) as c:
            body = http.json_of(c.post(f"{instance_url}/api/v1/apps", data=payload))
        if not body.get("client_id") or not body.get("client_secret"):
            raise NetworkError("the instance registered no client id and secret")
        return str(body["client_id"]), str(body["client_secret"])

    def scopes(self, account_kind: str | None) -> list[str]:
        return current_app.config["MASTODON_SCOPES"].split()

    def client_credentials(self, request: AuthorizationRequest | None) -> tuple[str, str]:
        assert request is not None
        return request.extra["client_id"], request.extra["client_secret"]

    def stored_client_credentials(self, secrets: dict[str, Any]) -> tuple[str, str]:
        return secrets["client_id"], secrets["client_secret"]

    def authorize_endpoint(self, request: AuthorizationRequest) -> str:
        return f"{request.instance_url}/oauth/authorize"

    def token_endpoint(self, instance_url: str | None) -> str:
        return f"{instance_url}/oauth/token"

    def revoke_endpoint(self, instance_url: str | None) -> str | None:
        return f"{instance_url}/oauth/revoke"

    def can_refresh(self, secrets: dict[str, Any]) -> bool:
        return False

    def identities(
        self, token: dict[str, Any], request: AuthorizationRequest
    ) -> list[ConnectedAccount]:
        client_id, client_secret = self.client_credentials(request)
        tokens = self.token_set(token, client_id=client_id, client_secret=client_secret)
        instance = self._instance_document(request.instance_url or "")
        identity = self._identity(tokens.secrets, request.instance_url or "", instance)
        limits = self.instance_limits(request.instance_url or "", instance)
        return [ConnectedAccount(identity, tokens, request.instance_url, limits)]

    def unused_token_secrets(
        self, token: dict[str, Any], request: AuthorizationRequest
    ) -> dict[str, Any]:
        # Revoking at /oauth/revoke takes our app's credentials on this instance.
        client_id, client_secret = self.client_credentials(request)
        return self.token_set(token, client_id=client_id, client_secret=client_secret).secrets

    def connect_direct(self, data: dict[str, Any]) -> ConnectedAccount:
        secrets = {"access_token": data["access_token"], "token_type": "Bearer"}
        instance = self._instance_document(data["instance_url"])
        identity = self._identity(secrets, data["instance_url"], instance)
        limits = self.instance_limits(data["instance_url"], instance)
        return ConnectedAccount(identity, TokenSet(secrets=secrets), data["instance_url"], limits)

    def _instance_document(self, instance_url: str) -> dict[str, Any] | None:
        """GET /api/v2/instance, falling back to v1 on servers without it (Mastodon < 4.0 and
        several other implementations); None when neither exists. A failure that is not "no
        such endpoint" is raised: guessing the domain from the URL would name the account
        wrongly on servers whose web and account domains differ."""
        with http.translated_errors(), http.client(user_given=True) as c:
            for version in ("v2", "v1"):
                response = c.get(f"{instance_url}/api/{version}/instance")
                if response.status_code in (404, 410):
                    continue
                return http.json_of(response) | {"_version": version}
        return None

    @staticmethod
    def account_domain(instance_url: str, instance: dict[str, Any] | None) -> str:
        """The domain in the instance's account handles (@user@domain)."""
        if instance:
            if instance.get("_version") == "v2" and isinstance(instance.get("domain"), str):
                domain = instance["domain"]
            else:  # v1 `uri` is the domain, though some servers put a URL there
                uri = str(instance.get("uri") or "")
                domain = (urlsplit(uri).hostname or "") if "://" in uri else uri
            domain = domain.strip().lower()
            if domain and "/" not in domain and "@" not in domain:
                return domain
        return (urlsplit(instance_url).hostname or "").lower()

    def instance_limits(
        self, instance_url: str, instance: dict[str, Any] | None = None
    ) -> dict[str, int]:
        """The instance's own limits (GET /api/v2/instance `configuration`), best effort:
        an instance that does not say keeps Mastodon's defaults."""
        body = instance
        if body is None:
            try:
                with http.translated_errors(), http.client(user_given=True) as c:
                    body = http.json_of(c.get(f"{instance_url}/api/v2/instance"))
            except NetworkError:
                return {}
        configuration = body.get("configuration") or {}
        statuses = configuration.get("statuses") or {}
        media = configuration.get("media_attachments") or {}
        found = {
            "max_characters": statuses.get("max_characters"),
            "max_media_attachments": statuses.get("max_media_attachments"),
            "characters_reserved_per_url": statuses.get("characters_reserved_per_url"),
            "image_size_limit": media.get("image_size_limit"),
            "video_size_limit": media.get("video_size_limit"),
        }
        return {
            key: value
            for key, value in found.items()
            if isinstance(value, int) and not isinstance(value, bool) and value > 0
        }

    def verify(self, secrets: dict[str, Any], instance_url: str | None) -> Identity:
        instance = self._instance_document(instance_url or "")
        return self._identity(secrets, instance_url or "", instance)

    def _identity(
        self, secrets: dict[str, Any], instance_url: str, instance: dict[str, Any] | None
    ) -> Identity:
        body = self.bearer_get(
            f"{instance_url}/api/v1/accounts/verify_credentials", secrets["access_token"]
        )
        username = str(body.get("username") or body.get("acct") or "")
        if not body.get("id") or not username:
            raise NetworkError("verify_credentials answered without an account id")
        # An `acct` with a domain names it itself (servers that always write it out).
        _, _, acct_domain = str(body.get("acct") or "").partition("@")
        domain = acct_domain.lower() or self.account_domain(instance_url, instance)
        # Numeric ids are only unique within one instance.
        return Identity(
            external_id=f"{body['id']}@{domain}",
            handle=f"@{username}@{domain}",
            display_name=body.get("display_name") or None,
        )

    def revoke(self, secrets: dict[str, Any], instance_url: str | None) -> None:
        # A token pasted from the Development settings was not issued to our app: only the
        # person can revoke it, there.
        if not secrets.get("client_id"):
            return
        super().revoke(secrets, instance_url)

    # -- publishing ------------------------------------------------------------------------------

    idempotency_window = timedelta(hours=1)
    # How far back from an attempt's start `find_existing` looks (clocks differ), and how many
    # pages of 40 statuses it reads at most.
    clock_skew: ClassVar[timedelta] = timedelta(minutes=5)
    search_pages: ClassVar[int] = 5

    @staticmethod
    def _headers(account: NetworkAccount) -> dict[str, str]:
        return {"Authorization": f"Bearer {account.secrets['access_token']}"}

    def publish(self, account: NetworkAccount, request: PublishRequest) -> Published:
        base = account.instance_url or ""
        headers = self._headers(account)
        with http.client(user_given=True) as c:
            media_ids = [self._upload(c, base, headers, item) for item in request.media]
            payload: dict[str, Any] = {"status": request.text_with_link()}
            if media_ids:
                payload["media_ids"] = media_ids
            if request.content_warning:
                payload["spoiler_text"] = request.content_warning
            if request.sensitive or (request.content_warning and media_ids):
                payload["sensitive"] = True
            if request.visibility:
                payload["visibility"] = request.visibility
            if request.language:
                payload["language"] = request.language
            response = http.send(
                c,
                "POST",
                f"{base}/api/v1/statuses",
                creates=True,
                json=payload,
                headers={**headers, "Idempotency-Key": request.idempotency_key},
            )
            if not response.is_success:
                raise self._failure(response, creates=True)
            return self._published(http.answer_json(response, creates=True))

    def _upload(self, c: httpx.Client, base: str, headers: dict[str, str], item: MediaItem) -> str:
        """POST /api/v2/media; a 202 means "processing": poll until the media has its `url`
        (a status cannot attach media still being processed: 422)."""
        data = {"description": item.alt_text} if item.alt_text else {}
        with item.open() as stream:
            response = http.send(
                c,
                "POST",
                f"{base}/api/v2/media",
                files={"file": (item.filename, stream, item.content_type)},
                data=data,
                headers=headers,
            )
        if not response.is_success:
            raise self._failure(response)
        media = http.answer_json(response)
        media_id = str(media.get("id") or "")
        if not media_id:
            raise NetworkError("the instance answered the upload without a media id")
        if response.status_code == 200 and media.get("url"):
            return media_id

        def processed() -> str | None:
            polled = http.send(c, "GET", f"{base}/api/v1/media/{media_id}", headers=headers)
            if polled.status_code == 206:
                return None  # still processing
            if not polled.is_success:
                raise self._failure(polled)
            return media_id if http.answer_json(polled).get("url") else None

        return http.wait_until_ready(
            processed,
            f"media {media_id}",
            every=self.media_poll_seconds,
            limit=self.media_wait_seconds,
        )

    def _failure(self, response: httpx.Response, *, creates: bool = False) -> NetworkError:
        body = http.error_body(response)
        message = str(body.get("error") or "") if isinstance(body, dict) else ""
        status = response.status_code
        if status == 422 and "finished processing" in message:
            # "Cannot attach files that have not finished processing. Try again in a moment!"
            return TransientNetworkError(message, status=status, retry_after=5)
        if status == 403:
            # Missing scope, suspended or disabled account: only reconnecting can fix it.
            return CredentialsRejected(message or "the instance refused the token", status=403)
        if status == 422:
            return ContentRejected(message or "the instance refused the status", status=422)
        # Retrying a status with the same Idempotency-Key is safe within the hour, 5xx included.
        return http.failed_publishing(
            response,
            message,
            creates=creates,
            idempotent=True,
            retry_after=self._rate_limit_reset(response),
        )

    @staticmethod
    def _rate_limit_reset(response: httpx.Response) -> int | None:
        """Mastodon's Retry-After, else X-RateLimit-Reset (an ISO 8601 time) on a 429."""
        if response.status_code != 429 or response.headers.get("Retry-After"):
            return None
        reset = _parse_time(response.headers.get("X-RateLimit-Reset"))
        return http.seconds_until(reset) if reset else None

    @staticmethod
    def _published(status: dict[str, Any]) -> Published:
        if not status.get("id"):
            raise NetworkError("the instance answered without a status id")
        return Published(
            external_id=str(status["id"]),
            url=status.get("url") or status.get("uri") or None,
            published_at=_parse_time(status.get("created_at")),
        )

    def find_existing(
        self, account: NetworkAccount, request: PublishRequest, *, since: datetime
    ) -> Published | None:
        """The account's statuses since the attempt began (less `clock_skew`), newest first:
        one whose text (and content warning and media count) is the request's. The rendered
        HTML is compared first; when it differs only in how the server rendered mentions or
        links, the status's source text (GET /api/v1/statuses/:id/source) decides."""
        base = account.instance_url or ""
        headers = self._headers(account)
        account_id = account.external_id.split("@", 1)[0]
        expected = _squeeze(request.text_with_link())
        warning = request.content_warning or ""
        oldest = since - self.clock_skew
        params: dict[str, Any] = {"limit": 40, "exclude_reblogs": "true"}
        with http.client(user_given=True) as c:
            for _ in range(self.search_pages):
                response = http.send(
                    c,
                    "GET",
                    f"{base}/api/v1/accounts/{account_id}/statuses",
                    params=params,
                    headers=headers,
                )
                if not response.is_success:
                    raise self._failure(response)
                page = http.parse_json(response)
                if not isinstance(page, list) or not page:
                    return None
                for status in page:
                    if not isinstance(status, dict):
                        continue
                    created = _parse_time(status.get("created_at"))
                    if created is None or created < oldest:
                        return None  # newest first: nothing older can be ours
                    if (status.get("spoiler_text") or "") != warning:
                        continue
                    if len(status.get("media_attachments") or []) != len(request.media):
                        continue
                    if _squeeze(_plain_text(str(status.get("content") or ""))) == expected:
                        return self._published(status)
                    if self._source_text(c, base, headers, status) == expected:
                        return self._published(status)
                params["max_id"] = str(page[-1].get("id") if isinstance(page[-1], dict) else "")
        return None

    def _source_text(
        self, c: httpx.Client, base: str, headers: dict[str, str], status: dict[str, Any]
    ) -> str | None:
        response = http.send(
            c, "GET", f"{base}/api/v1/statuses/{status.get('id')}/source", headers=headers
        )
        if response.status_code == 404:
            return None  # servers without the endpoint (it came with Mastodon 3.5)
        if not response.is_success:
            raise self._failure(response)
        return _squeeze(str(http.answer_json(response).get("text") or ""))

    def delete(self, account: NetworkAccount, external_id: str) -> None:
        base = account.instance_url or ""
        with http.client(user_given=True) as c:
            response = http.send(
                c, "DELETE", f"{base}/api/v1/statuses/{external_id}", headers=self._headers(account)
            )
        if response.status_code == 404 or response.is_success:
            return
        raise self._failure(response)


_BREAK = re.compile(r"<br\s*/?>|</p>\s*<p>", re.IGNORECASE)
_TAG = re.compile(r"<[^>]*>")
_SPACE = re.compile(r"\s+")


def _plain_text(content: str) -> str:
    """A status's HTML back to text: line and paragraph breaks kept, tags dropped (a link's
    hidden `invisible` spans hold the rest of its URL, so the whole URL comes back)."""
    return html.unescape(_TAG.sub("", _BREAK.sub("\n", content)))


def _squeeze(text: str) -> str:
    return _SPACE.sub(" ", text).strip()


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
