"""Bluesky / AT Protocol, through the `atproto` SDK, against the account's PDS.

The person gives a handle and an app password; com.atproto.server.createSession turns them
into an access JWT (minutes) and a refresh JWT (about 90 days, rotated on every refresh). We
keep the JWTs, never the password. Refreshing before the refresh JWT runs out keeps the account
connected indefinitely.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from atproto import Client
from atproto_client import exceptions as at_errors
from atproto_client import models
from atproto_client.request import Request
from flask import current_app

from app.networks.base import (
    ConnectedAccount,
    Connector,
    CredentialsRejected,
    Identity,
    NetworkError,
    TokenSet,
    TransientNetworkError,
)
from app.security.outbound import TargetRefused, guarded_client_options

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
            **guarded_client_options(user_given=True),
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
