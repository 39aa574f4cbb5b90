"""Bluesky / AT Protocol, through the `atproto` SDK, against the account's PDS.

The person gives a handle and an app password; com.atproto.server.createSession turns them
into an access JWT (minutes) and a refresh JWT (about 90 days, rotated on every refresh). We
keep the JWTs, never the password. Refreshing before the refresh JWT runs out keeps the account
connected indefinitely.

Publishing writes an `app.bsky.feed.post` record with com.atproto.repo.createRecord under a
record key we choose: a TID derived from the request's idempotency key (`record_key`). The PDS
refuses a second record under the same key, so a retried publish cannot post twice; it finds
the record the first attempt made (com.atproto.repo.getRecord), which is also what
`find_existing` does. Facets (links, mentions resolved to DIDs, hashtags) are located by UTF-8
byte offsets, as the lexicon wants; images and videos go up with uploadBlob, with their alt
text and aspect ratio. Text longer than one post becomes a thread only when the request asks
for one; each part has its own key, the root's plus its position, so a thread interrupted
halfway is completed by publishing again, never duplicated.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from atproto import Client
from atproto_client import exceptions as at_errors
from atproto_client import models
from atproto_client.request import Request
from flask import current_app

from app.networks import http
from app.networks.base import (
    ConnectedAccount,
    Connector,
    ContentRejected,
    CredentialsRejected,
    Identity,
    MediaItem,
    NetworkAccount,
    NetworkError,
    OutcomeUnknown,
    Published,
    PublishRequest,
    TokenExpired,
    TokenSet,
    TransientNetworkError,
)
from app.networks.bluesky_text import (
    MAX_THREAD_PARTS,
    facets_of,
    part_key,
    record_key,
    thread_parts,
)
from app.security.outbound import TargetRefused

# XRPC errors (HTTP 400) that mean "this session is over".
_DEAD_SESSION_ERRORS = {"ExpiredToken", "InvalidToken", "AuthenticationRequired", "AccountTakedown"}


def jwt_expiry(token: str) -> datetime | None:
    """The `exp` of a JWT, read without verifying it (only the PDS can, and it will)."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return datetime.fromtimestamp(int(claims["exp"]), UTC)
    except (IndexError, KeyError, ValueError, TypeError):
        return None


def _xrpc_error(exc: at_errors.RequestErrorBase) -> str:
    content = getattr(getattr(exc, "response", None), "content", None)
    return str(getattr(content, "error", "") or "")


@contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except TargetRefused as exc:
        raise NetworkError(str(exc)) from exc
    except at_errors.UnauthorizedError as exc:
        raise CredentialsRejected("the PDS refused the credentials", status=401) from exc
    except at_errors.BadRequestError as exc:
        error = _xrpc_error(exc)
        if error in _DEAD_SESSION_ERRORS:
            raise CredentialsRejected(f"the PDS ended the session ({error})", status=400) from exc
        raise NetworkError(f"the PDS refused the request ({error or 400})", status=400) from exc
    except at_errors.NetworkError as exc:  # transport failures, timeouts, 502
        raise TransientNetworkError("could not reach the PDS") from exc
    except (at_errors.ModelError, ValueError) as exc:
        # The SDK validates answers against the lexicon; an odd PDS fails here.
        raise NetworkError(f"the PDS answered something unreadable ({type(exc).__name__})") from exc
    except at_errors.RequestException as exc:
        status = getattr(getattr(exc, "response", None), "status_code", None)
        if status == 429 or (status or 0) >= 500:
            raise TransientNetworkError(f"the PDS answered {status}", status=status) from exc
        raise NetworkError(f"the PDS answered {status}", status=status) from exc


def _tokens(session: Any) -> TokenSet:
    secrets = {"access_jwt": session.access_jwt, "refresh_jwt": session.refresh_jwt}
    return TokenSet(secrets=secrets, expires_at=jwt_expiry(session.refresh_jwt))


class BlueskyConnector(Connector):
    network = "bluesky"
    uses_oauth = False

    # -- the account services' hooks (see Connector) -------------------------------------------
    display_name = "Bluesky"
    per_instance = True
    instance_url_field = "pds_url"
    secret_field = "app_password"

    def default_instance_url(self) -> str | None:
        return current_app.config["BLUESKY_DEFAULT_PDS_URL"]

    def _client(self, pds_url: str) -> Client:
        request = Request(
            timeout=current_app.config["NETWORK_HTTP_TIMEOUT_SECONDS"],
            **http.bounded_options(user_given=True),
        )
        return Client(base_url=f"{pds_url}/xrpc", request=request)

    @staticmethod
    def _bearer(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    def connect_direct(self, data: dict[str, Any]) -> ConnectedAccount:
        pds_url = data["pds_url"]
        client = self._client(pds_url)
        with _translated():
            session = client.com.atproto.server.create_session(
                models.ComAtprotoServerCreateSession.Data(
                    # People write a handle with its "@"; the PDS wants it without.
                    identifier=data["handle"].lstrip("@"),
                    password=data["app_password"],
                ),
                ignore_session_check=True,
            )
        identity = Identity(external_id=session.did, handle=f"@{session.handle}")
        return ConnectedAccount(identity, _tokens(session), pds_url)

    def verify(self, secrets: dict[str, Any], instance_url: str | None) -> Identity:
        client = self._client(instance_url or "")
        with _translated():
            session = client.com.atproto.server.get_session(
                headers=self._bearer(secrets["access_jwt"]), ignore_session_check=True
            )
        return Identity(external_id=session.did, handle=f"@{session.handle}")

    def can_refresh(self, secrets: dict[str, Any]) -> bool:
        return bool(secrets.get("refresh_jwt"))

    def refresh(self, secrets: dict[str, Any], instance_url: str | None) -> TokenSet:
        client = self._client(instance_url or "")
        with _translated():
            session = client.com.atproto.server.refresh_session(
                headers=self._bearer(secrets["refresh_jwt"]), ignore_session_check=True
            )
        return _tokens(session)

    def revoke(self, secrets: dict[str, Any], instance_url: str | None) -> None:
        client = self._client(instance_url or "")
        with _translated():
            client.com.atproto.server.delete_session(
                headers=self._bearer(secrets["refresh_jwt"]), ignore_session_check=True
            )

    # -- publishing ------------------------------------------------------------------------------

    idempotency_window = timedelta.max  # a record key, once used, stays used

    def publish(self, account: NetworkAccount, request: PublishRequest) -> Published:
        client, headers, did = self._acting_as(account)
        root_key = record_key(request.idempotency_key, request.scheduled_for)
        parts = thread_parts(request.text_with_link()) if request.thread else None
        texts = parts or [request.text_with_link()]
        with _publishing_errors(creates=False):
            embed = self._embed(client, headers, request.media) if request.media else None
        root: dict[str, str] | None = None
        parent: dict[str, str] | None = None
        created_at = client.get_current_time_iso()
        for index, text in enumerate(texts):
            record: dict[str, Any] = {
                "$type": POST_COLLECTION,
                "text": text,
                "createdAt": created_at,
            }
            with _publishing_errors(creates=False):
                facets = self._facets(client, text)
            if facets:
                record["facets"] = facets
            if request.language:
                record["langs"] = [request.language]
            if embed is not None and index == 0:
                record["embed"] = embed
            if root is not None and parent is not None:
                record["reply"] = {"root": root, "parent": parent}
            ref = self._create_once(client, headers, did, part_key(root_key, index), record)
            root = root or ref
            parent = ref
        assert root is not None
        return _published(did, root["uri"], created_at)

    def _acting_as(self, account: NetworkAccount) -> tuple[Client, dict[str, str], str]:
        access = account.secrets["access_jwt"]
        expiry = jwt_expiry(access)
        # An access JWT lives minutes to hours; refreshing is the caller's (it stores the
        # rotated refresh JWT). Sending one we know is dead would only cost a round trip.
        if expiry is not None and expiry <= datetime.now(UTC) + timedelta(seconds=30):
            raise TokenExpired("the Bluesky access token has expired; refresh the session")
        return self._client(account.instance_url or ""), self._bearer(access), account.external_id

    def _embed(
        self, client: Client, headers: dict[str, str], media: tuple[MediaItem, ...]
    ) -> dict[str, Any]:
        blobs = [(item, self._upload(client, headers, item)) for item in media]
        videos = [(item, blob) for item, blob in blobs if item.is_video]
        if videos:
            item, blob = videos[0]
            embed: dict[str, Any] = {"$type": "app.bsky.embed.video", "video": blob}
            if item.alt_text:
                embed["alt"] = item.alt_text
            if item.width and item.height:
                embed["aspectRatio"] = {"width": item.width, "height": item.height}
            return embed
        images = []
        for item, blob in blobs:
            image: dict[str, Any] = {"image": blob, "alt": item.alt_text or ""}
            if item.width and item.height:
                image["aspectRatio"] = {"width": item.width, "height": item.height}
            images.append(image)
        return {"$type": "app.bsky.embed.images", "images": images}

    @staticmethod
    def _upload(client: Client, headers: dict[str, str], item: MediaItem) -> dict[str, Any]:
        with item.open() as stream:
            data = stream.read()
        response = client.invoke_procedure(
            "com.atproto.repo.uploadBlob",
            content=data,
            headers={**headers, "Content-Type": item.content_type},
            ignore_session_check=True,
        )
        content = response.content
        blob = content.get("blob") if isinstance(content, dict) else None
        if not isinstance(blob, dict) or not blob.get("ref"):
            raise NetworkError("the PDS answered the upload without a blob")
        return blob

    def _facets(self, client: Client, text: str) -> list[dict[str, Any]]:
        dids: dict[str, str | None] = {}

        def resolve(handle: str) -> str | None:
            if handle not in dids:
                try:
                    dids[handle] = client.com.atproto.identity.resolve_handle(
                        {"handle": handle}, ignore_session_check=True
                    ).did
                except at_errors.BadRequestError:
                    dids[handle] = None  # no such handle: plain text, as the apps do
            return dids[handle]

        return facets_of(text, resolve)

    def _create_once(
        self,
        client: Client,
        headers: dict[str, str],
        did: str,
        rkey: str,
        record: dict[str, Any],
    ) -> dict[str, str]:
        """createRecord under `rkey`; when the PDS refuses because the key is taken (an earlier
        attempt made the record), the record there is the one we wanted."""
        with _publishing_errors(creates=True):
            try:
                created = client.com.atproto.repo.create_record(
                    models.ComAtprotoRepoCreateRecord.Data(
                        repo=did, collection=POST_COLLECTION, rkey=rkey, record=record
                    ),
                    headers=headers,
                    ignore_session_check=True,
                )
            except at_errors.RequestErrorBase as exc:
                # PDS 0.4 answers a taken key with a 500; others may say 400 or 409.
                status = exc.response.status_code if exc.response is not None else None
                if status in (400, 409, 500):
                    existing = self._record(client, did, rkey)
                    if existing is not None:
                        return {"uri": existing.uri, "cid": existing.cid or ""}
                raise
        return {"uri": created.uri, "cid": created.cid}

    @staticmethod
    def _record(client: Client, did: str, rkey: str) -> Any | None:
        """com.atproto.repo.getRecord of one post of `did`; None when there is none."""
        try:
            return client.com.atproto.repo.get_record(
                {"repo": did, "collection": POST_COLLECTION, "rkey": rkey},
                ignore_session_check=True,
            )
        except at_errors.BadRequestError as exc:
            if _xrpc_error(exc) == "RecordNotFound":
                return None
            raise

    def find_existing(
        self, account: NetworkAccount, request: PublishRequest, *, since: datetime
    ) -> Published | None:
        """getRecord on the request's record key: the key is ours alone, so a record there is
        the post. A thread counts once its last part is there; until then publishing again
        completes it without repeating the parts already made."""
        client = self._client(account.instance_url or "")
        did = account.external_id
        root_key = record_key(request.idempotency_key, request.scheduled_for)
        parts = thread_parts(request.text_with_link()) if request.thread else None
        with _publishing_errors(creates=False):
            root = self._record(client, did, root_key)
            if root is None:
                return None
            last = part_key(root_key, len(parts) - 1) if parts and len(parts) > 1 else None
            if last and self._record(client, did, last) is None:
                return None
        value = root.value
        created_at = getattr(value, "created_at", None) or (
            value.get("createdAt") if isinstance(value, dict) else None
        )
        return _published(did, root.uri, created_at)

    def delete(self, account: NetworkAccount, external_id: str) -> None:
        """Delete the post and, for a thread, the parts after it (their keys follow the
        root's). deleteRecord of a record already gone succeeds."""
        client, headers, did = self._acting_as(account)
        rkey = external_id.rsplit("/", 1)[-1]
        with _publishing_errors(creates=False):
            for index in range(MAX_THREAD_PARTS):
                key = part_key(rkey, index)
                if index > 0 and self._record(client, did, key) is None:
                    break
                client.com.atproto.repo.delete_record(
                    models.ComAtprotoRepoDeleteRecord.Data(
                        repo=did, collection=POST_COLLECTION, rkey=key
                    ),
                    headers=headers,
                    ignore_session_check=True,
                )


POST_COLLECTION = "app.bsky.feed.post"


def _published(did: str, uri: str, created_at: Any) -> Published:
    published_at = None
    if isinstance(created_at, str):
        try:
            published_at = datetime.fromisoformat(created_at)
        except ValueError:
            published_at = None
    rkey = uri.rsplit("/", 1)[-1]
    return Published(
        external_id=uri,
        url=f"https://bsky.app/profile/{did}/post/{rkey}",
        published_at=published_at,
    )


# -- errors while publishing ---------------------------------------------------------------------

_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


@contextmanager
def _publishing_errors(*, creates: bool) -> Iterator[None]:
    """The SDK's errors as connector errors, telling "never sent" from "sent, no answer"."""
    try:
        yield
    except NetworkError:
        raise
    except TargetRefused as exc:
        raise NetworkError(str(exc)) from exc
    except (at_errors.NetworkError, httpx.TransportError, http.AnswerTooLarge) as exc:
        response = getattr(exc, "response", None)
        if response is not None:  # 409, 413, 502 answered
            status = response.status_code
            if status == 413:
                message = "the PDS refused the upload as too large"
                raise ContentRejected(message, status=413) from exc
            raise TransientNetworkError(f"the PDS answered {status}", status=status) from exc
        cause = exc.__cause__ or exc
        if isinstance(cause, _NOT_SENT) or not creates:
            message = f"could not reach the PDS ({type(cause).__name__})"
            raise TransientNetworkError(message) from exc
        raise OutcomeUnknown(
            f"no answer from the PDS after sending the post ({type(cause).__name__})"
        ) from exc
    except at_errors.UnauthorizedError as exc:
        if _xrpc_error(exc) == "ExpiredToken":
            raise TokenExpired("the Bluesky access token has expired") from exc
        raise CredentialsRejected("the PDS refused the credentials", status=401) from exc
    except at_errors.BadRequestError as exc:
        error = _xrpc_error(exc)
        if error == "ExpiredToken":
            raise TokenExpired("the Bluesky access token has expired", status=400) from exc
        if error in _DEAD_SESSION_ERRORS:
            raise CredentialsRejected(f"the PDS ended the session ({error})", status=400) from exc
        message = _xrpc_message(exc) or error or "the PDS refused the post"
        raise ContentRejected(message, status=400) from exc
    except at_errors.RateLimitExceededError as exc:
        retry_after = exc.retry_after
        if retry_after is None and exc.reset_at is not None:
            retry_after = http.seconds_until(exc.reset_at)
        raise TransientNetworkError(
            "the PDS rate limit was reached",
            status=429,
            retry_after=int(retry_after + 0.999) if retry_after is not None else None,
        ) from exc
    except at_errors.RequestException as exc:
        status = getattr(getattr(exc, "response", None), "status_code", None)
        # A 5xx is safe to retry: the record key keeps a retry from posting twice.
        if (status or 0) >= 500:
            raise TransientNetworkError(f"the PDS answered {status}", status=status) from exc
        raise NetworkError(
            f"the PDS answered {status}: {_xrpc_message(exc)}".rstrip(": "), status=status
        ) from exc
    except (at_errors.ModelError, ValueError) as exc:
        error_class: type[NetworkError] = OutcomeUnknown if creates else NetworkError
        raise error_class(f"the PDS answered something unreadable ({type(exc).__name__})") from exc


def _xrpc_message(exc: at_errors.RequestErrorBase) -> str:
    content = getattr(getattr(exc, "response", None), "content", None)
    return str(getattr(content, "message", "") or "")
