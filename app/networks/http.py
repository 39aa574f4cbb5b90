"""Outgoing HTTP for connectors: one client setup, one mapping of failures.

Every client has a timeout, follows no redirect on its own, and checks each request's target
before it leaves (see app.security.outbound). Failures become the three errors of
app.networks.base, so callers tell a passing outage from a dead token in one place.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import authlib.deprecate  # noqa: F401  (installs its warning filter before ours below)
import httpx
from authlib.common.errors import AuthlibBaseError
from flask import current_app

with warnings.catch_warnings():
    # Authlib prefers the `httpx2` fork and warns when it falls back to httpx, which we use on
    # purpose (the atproto SDK and our own clients share it, and so its exception types).
    warnings.simplefilter("ignore", DeprecationWarning)
    from authlib.integrations.httpx_client import OAuth2Client

from app.networks.base import CredentialsRejected, NetworkError, TransientNetworkError
from app.security.outbound import TargetRefused, guarded_client_options

# httpx logs every request URL at INFO; keep tokens that some APIs take in query strings out of
# the logs for good.
logging.getLogger("httpx").setLevel(logging.WARNING)
logging.getLogger("httpcore").setLevel(logging.WARNING)

# OAuth error codes (RFC 6749 §5.2, RFC 6750 §3.1) meaning "these credentials are dead".
DEAD_TOKEN_ERRORS = {"invalid_grant", "invalid_token", "unauthorized_client", "invalid_client"}


def _client_options(user_given: bool) -> dict[str, Any]:
    return {
        "timeout": current_app.config["NETWORK_HTTP_TIMEOUT_SECONDS"],
        "follow_redirects": False,
        "headers": {"User-Agent": "Relais (+https://relais.dev)"},
        **guarded_client_options(user_given=user_given),
    }


def client(*, user_given: bool = False, **options: Any) -> httpx.Client:
    return httpx.Client(**{**_client_options(user_given), **options})


def oauth_client(*, user_given: bool = False, **options: Any) -> OAuth2Client:
    """An Authlib OAuth 2 client whose token responses go through `check_response` first."""
    oauth = OAuth2Client(**{**_client_options(user_given), **options})
    for hook in ("access_token_response", "refresh_token_response"):
        oauth.register_compliance_hook(hook, _checked)
    return oauth


def _checked(response: httpx.Response) -> httpx.Response:
    check_response(response)
    return response


def _error_code(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):  # Graph API: {"error": {"type": ..., "code": 190}}
            return "invalid_token" if error.get("code") in (102, 190) else str(error.get("type"))
        return str(error or "")
    return ""


def _retry_after(response: httpx.Response) -> int | None:
    value = response.headers.get("Retry-After", "")
    return int(value) if value.isdigit() else None


def check_response(response: httpx.Response) -> None:
    """Raise the right connector error for a non-2xx response."""
    status = response.status_code
    if 200 <= status < 300:
        return
    code = _error_code(response)
    where = f"{response.request.method} {response.request.url.copy_with(query=None)}"
    if status == 429 or status >= 500:
        raise TransientNetworkError(
            f"{where} answered {status}", status=status, retry_after=_retry_after(response)
        )
    if status == 401 or code in DEAD_TOKEN_ERRORS:
        raise CredentialsRejected(
            f"{where} refused the credentials ({code or status})", status=status
        )
    raise NetworkError(f"{where} answered {status} {code}".strip(), status=status)


def json_of(response: httpx.Response) -> dict[str, Any]:
    check_response(response)
    try:
        body = response.json()
    except ValueError as exc:
        raise NetworkError("the network answered something that is not JSON") from exc
    if not isinstance(body, dict):
        raise NetworkError("the network answered an unexpected JSON document")
    return body


@contextmanager
def translated_errors() -> Iterator[None]:
    """Turn transport and Authlib failures into connector errors."""
    try:
        yield
    except NetworkError:
        raise
    except TargetRefused as exc:
        raise NetworkError(str(exc)) from exc
    except httpx.TimeoutException as exc:
        raise TransientNetworkError("the network did not answer in time") from exc
    except httpx.TransportError as exc:
        raise TransientNetworkError(f"could not reach the network ({type(exc).__name__})") from exc
    except ValueError as exc:
        # An answer we cannot read (not JSON, fields missing) is the network's fault, not ours.
        raise NetworkError(f"the network answered something unreadable ({exc})") from exc
    except AuthlibBaseError as exc:
        error = getattr(exc, "error", "") or ""
        if error in DEAD_TOKEN_ERRORS:
            raise CredentialsRejected(f"the network refused the grant ({error})") from exc
        raise NetworkError(f"the OAuth exchange failed ({error or type(exc).__name__})") from exc
