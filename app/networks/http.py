"""Outgoing HTTP for connectors: one client setup, one mapping of failures.

Every client has a timeout, follows no redirect on its own, and checks each request's target
before it leaves (see app.security.outbound). Failures become the errors of app.networks.base,
so callers tell a passing outage from a dead token in one place.

A network's answer is read within bounds (`MAX_ANSWER_BYTES`, `answer_deadline`, and JSON
nested at most `MAX_JSON_DEPTH` deep): a hostile or broken server costs a worker a bounded
amount of memory and time, never more.
"""

from __future__ import annotations

import email.utils
import json
import logging
import ssl
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import cache
from typing import Any, TypeVar

import authlib.deprecate  # noqa: F401  (installs its warning filter before ours below)
import httpx
from authlib.common.errors import AuthlibBaseError
from flask import current_app

with warnings.catch_warnings():
    # Authlib prefers the `httpx2` fork and warns when it falls back to httpx, which we use on
    # purpose (the atproto SDK and our own clients share it, and so its exception types).
    warnings.simplefilter("ignore", DeprecationWarning)
    from authlib.integrations.httpx_client import OAuth2Client

from app.json_provider import MAX_JSON_DEPTH, json_depth
from app.networks.base import (
    ContentRejected,
    CredentialsRejected,
    NetworkError,
    OutcomeUnknown,
    TransientNetworkError,
)
from app.security.outbound import TargetRefused, guarded_client_options

# httpx logs every request URL at INFO; keep tokens that some APIs take in query strings out of
# the logs for good.
logging.getLogger("httpx").setLevel(logging.WARNING)
logging.getLogger("httpcore").setLevel(logging.WARNING)

# OAuth error codes (RFC 6749 §5.2, RFC 6750 §3.1) meaning "these credentials are dead".
DEAD_TOKEN_ERRORS = {"invalid_grant", "invalid_token", "unauthorized_client", "invalid_client"}


# The most a network's answer may weigh. The largest we read is a page of 40 Mastodon
# statuses (~200 KB); anything far beyond is a broken or hostile server.
MAX_ANSWER_BYTES = 2 * 1024 * 1024


class AnswerTooLarge(ValueError):
    """The network's answer went past MAX_ANSWER_BYTES; the rest is not read."""


@cache
def _tls_context() -> ssl.SSLContext:
    # One per process: building one loads the CA bundle, ~20 ms, which every client paid.
    return httpx.create_ssl_context()


def prepare() -> None:
    """Build what every client shares (the TLS context) now: `relais worker` calls it before
    forking, so that no job pays for it."""
    _tls_context()


class _BoundedStream(httpx.SyncByteStream):
    """An answer's body read up to `limit` bytes and until `deadline` (time.monotonic): httpx's
    timeouts bound each read, not a server that drips one byte at a time."""

    def __init__(self, stream: httpx.SyncByteStream, limit: int, deadline: float) -> None:
        self._stream, self._limit, self._deadline = stream, limit, deadline

    def __iter__(self) -> Iterator[bytes]:
        received = 0
        for chunk in self._stream:
            received += len(chunk)
            if received > self._limit:
                raise AnswerTooLarge(f"the answer is larger than {self._limit} bytes")
            if time.monotonic() > self._deadline:
                raise httpx.ReadTimeout("the answer took too long to arrive")
            yield chunk

    def close(self) -> None:
        self._stream.close()


def _bound_answer(response: httpx.Response) -> None:
    if isinstance(response.stream, httpx.SyncByteStream):
        deadline = time.monotonic() + answer_deadline()
        response.stream = _BoundedStream(response.stream, MAX_ANSWER_BYTES, deadline)


def answer_deadline() -> float:
    """Seconds a whole answer may take once its headers arrived."""
    return 2 * float(current_app.config["NETWORK_HTTP_TIMEOUT_SECONDS"])


def bounded_options(user_given: bool) -> dict[str, Any]:
    """The outbound guard (see app.security.outbound), the shared TLS context and the bounded
    answer: what every client that talks to a network needs, the atproto SDK's included."""
    options = guarded_client_options(user_given=user_given, verify=_tls_context())
    options["event_hooks"]["response"] = [_bound_answer]
    return options


def _client_options(user_given: bool) -> dict[str, Any]:
    return {
        "timeout": current_app.config["NETWORK_HTTP_TIMEOUT_SECONDS"],
        "follow_redirects": False,
        "headers": {"User-Agent": "Relais (+https://relais.dev)"},
        **bounded_options(user_given),
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
        body = parse_json(response)
    except ValueError:
        return ""
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):  # Graph API: {"error": {"type": ..., "code": 190}}
            return "invalid_token" if error.get("code") in (102, 190) else str(error.get("type"))
        return str(error or "")
    return ""


def retry_after_seconds(response: httpx.Response) -> int | None:
    """Retry-After in seconds: either form RFC 9110 allows (seconds, or an HTTP date)."""
    value = response.headers.get("Retry-After", "").strip()
    if value.isdigit():
        return int(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return seconds_until(when)


def seconds_until(when: datetime) -> int:
    """Whole seconds from now until `when` (at least 1: "retry now" is what a 429 is not)."""
    return max(1, int((when - datetime.now(UTC)).total_seconds() + 0.999))


def check_response(response: httpx.Response) -> None:
    """Raise the right connector error for a non-2xx response."""
    status = response.status_code
    if 200 <= status < 300:
        return
    code = _error_code(response)
    where = f"{response.request.method} {response.request.url.copy_with(query=None)}"
    if status == 429 or status >= 500:
        raise TransientNetworkError(
            f"{where} answered {status}", status=status, retry_after=retry_after_seconds(response)
        )
    if status == 401 or code in DEAD_TOKEN_ERRORS:
        raise CredentialsRejected(
            f"{where} refused the credentials ({code or status})", status=status
        )
    raise NetworkError(f"{where} answered {status} {code}".strip(), status=status)


def parse_json(response: httpx.Response) -> Any:
    """The answer's JSON, refusing documents nested deeper than any network's answers are
    (ValueError, like any unreadable answer)."""
    content = response.content
    brackets = content.count(b"[") + content.count(b"{")
    if brackets > MAX_JSON_DEPTH and json_depth(content) > MAX_JSON_DEPTH:
        raise ValueError(f"the JSON answer nests more than {MAX_JSON_DEPTH} levels deep")
    return json.loads(content)


def json_of(response: httpx.Response) -> dict[str, Any]:
    check_response(response)
    try:
        body = parse_json(response)
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


# -- publishing: what was sent, and what the network may have done --------------------------
#
# A request that creates a post fails in one of two ways that must not be confused: before it
# reached the network (the connection never opened: trying again is safe), or after (the
# network may have created the post and we never heard: trying again may post twice).


def send(
    client: httpx.Client, method: str, url: str, *, creates: bool = False, **options: Any
) -> httpx.Response:
    """`client.request(...)` with transport failures turned into connector errors.

    `creates`: this request creates the post (or publishes it), so a failure after sending is
    OutcomeUnknown; for any other request (uploads, reads, polls) it is a TransientNetworkError,
    since nothing was published.
    """
    try:
        return client.request(method, url, **options)
    except TargetRefused as exc:
        raise NetworkError(str(exc)) from exc
    except (httpx.UnsupportedProtocol, httpx.LocalProtocolError) as exc:
        # A request we could not even form: nothing left, and retrying will not help.
        raise NetworkError(f"could not send the request ({exc})") from exc
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
        raise TransientNetworkError(f"could not reach the network ({type(exc).__name__})") from exc
    except (httpx.TransportError, AnswerTooLarge) as exc:
        if creates:
            raise OutcomeUnknown(
                f"no usable answer after sending {method} {_where(url)} "
                f"({type(exc).__name__}): the post may exist"
            ) from exc
        if isinstance(exc, AnswerTooLarge):
            raise NetworkError(str(exc)) from exc
        raise TransientNetworkError(
            f"the network did not answer in time ({type(exc).__name__})"
        ) from exc


def _where(url: str) -> str:
    return str(httpx.URL(url).copy_with(query=None))


def answer_json(response: httpx.Response, *, creates: bool = False) -> dict[str, Any]:
    """A 2xx answer's JSON object. When the answer to a creating request cannot be read, the
    post was made (2xx) but we do not know its id: OutcomeUnknown, for `find_existing`."""
    try:
        body = parse_json(response)
    except ValueError as exc:
        error: type[NetworkError] = OutcomeUnknown if creates else NetworkError
        raise error(f"the network answered something unreadable ({exc})") from exc
    if not isinstance(body, dict):
        error = OutcomeUnknown if creates else NetworkError
        raise error("the network answered an unexpected JSON document")
    return body


def error_body(response: httpx.Response) -> Any:
    """The JSON of an error answer, or None (error pages are often HTML)."""
    try:
        return parse_json(response)
    except ValueError:
        return None


def failed_publishing(
    response: httpx.Response,
    message: str,
    *,
    creates: bool = False,
    idempotent: bool = False,
    retry_after: int | None = None,
) -> NetworkError:
    """The error for a non-2xx answer while publishing, where the network's own rules have not
    decided already. `message` is the network's own explanation, kept verbatim.

    A 5xx answering the creating request is OutcomeUnknown unless the network deduplicates by
    our idempotency key (`idempotent`): a server can fail after it stored the post, and a blind
    retry would then post twice. 503 is the exception: servers send it when they refuse work.
    """
    status = response.status_code
    retry_after = retry_after if retry_after is not None else retry_after_seconds(response)
    where = f"{response.request.method} {_where(str(response.request.url))}"
    text = f"{where} answered {status}: {message}" if message else f"{where} answered {status}"
    if status == 429 or status == 503:
        return TransientNetworkError(text, status=status, retry_after=retry_after)
    if status >= 500:
        if creates and not idempotent:
            return OutcomeUnknown(text, status=status, retry_after=retry_after)
        return TransientNetworkError(text, status=status, retry_after=retry_after)
    if status == 401:
        return CredentialsRejected(text, status=status)
    if status in (400, 413, 422) and message:
        return ContentRejected(message, status=status)
    return NetworkError(text, status=status)


T = TypeVar("T")


def wait_until_ready(check: Callable[[], T | None], what: str, *, every: float, limit: float) -> T:
    """Poll `check` every `every` seconds until it returns something (media a network is still
    processing). Past `limit` seconds: TransientNetworkError, since nothing was published."""
    deadline = time.monotonic() + limit
    while True:
        ready = check()
        if ready is not None:
            return ready
        if time.monotonic() + every > deadline:
            raise TransientNetworkError(f"{what} was still being processed after {limit:g} s")
        time.sleep(every)
