"""Guards on outgoing requests to addresses users give us (Mastodon instances, Bluesky PDSs).

A user-given URL must resolve, after DNS, only to public addresses: no loopback, private,
link-local (cloud metadata at 169.254.169.254), shared, multicast or reserved ranges, unless
ALLOW_PRIVATE_NETWORK_TARGETS is set. The check runs again on every request the HTTP client
sends, redirects included, so a redirect cannot lead inside: an httpx request hook checks the
URL, and `PinnedTransport` resolves the name once, vets every address and connects to a vetted
one, so that a second DNS answer (a rebinding to 127.0.0.1) is never used.

NETWORK_TARGETS_LOOPBACK_ONLY (tests) is stricter and runs before any DNS look-up: every
request, to any network, must go to a loopback IP literal or `localhost`.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any
from urllib.parse import urlsplit

import httpx
from flask import current_app

from app.errors import ValidationFailed

_LOOPBACK_NAMES = {"localhost", "localhost."}


class TargetRefused(ValueError):
    """The URL points somewhere we do not send requests to."""


def normalize_base_url(url: str) -> str:
    """`https://Mastodon.Social/` → `https://mastodon.social`; refuses anything but a base URL."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TargetRefused(
            "Give an http(s) URL with a host name, such as https://mastodon.social."
        )
    if parts.username or parts.password or parts.query or parts.fragment:
        raise TargetRefused("Give the server's base URL only (no credentials, query or fragment).")
    if parts.path not in ("", "/"):
        raise TargetRefused("Give the server's base URL only, without a path.")
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError as exc:
        raise TargetRefused("The URL's port is not valid.") from exc
    return f"{parts.scheme}://{host}" + (f":{port}" if port else "")


def _is_loopback_literal(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _resolve(host: str, port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise TargetRefused(f"The host '{host}' does not resolve.") from exc
    addresses = []
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%")[0])
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        addresses.append(address)
    return addresses


def vetted_addresses(
    host: str, port: int, *, allow_private: bool
) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """`host`'s addresses, resolved once; TargetRefused if any of them is not public (unless
    private targets are allowed): a name with one inside address is refused as a whole."""
    addresses = list(dict.fromkeys(_resolve(host, port)))
    if not allow_private:
        for address in addresses:
            if not address.is_global or address.is_multicast:
                raise TargetRefused(
                    f"'{host}' resolves to {address}, a private or reserved address; "
                    "only public servers can be connected."
                )
    return addresses


def check_target(url: str, *, user_given: bool, resolve: bool = True) -> None:
    """Raise TargetRefused unless a request to `url` is allowed by configuration.

    `resolve=False` leaves the addresses to `PinnedTransport`, which vets those it connects to.
    """
    config = current_app.config
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not host:
        raise TargetRefused("Only http(s) URLs are allowed.")
    if config.get("NETWORK_TARGETS_LOOPBACK_ONLY"):
        if not _is_loopback_literal(host):
            raise TargetRefused(f"Requests to '{host}' are disabled here (loopback only).")
        return
    if not user_given:
        return  # configured endpoints (the networks' own APIs) are trusted
    if config.get("ALLOW_PRIVATE_NETWORK_TARGETS"):
        return
    if parts.scheme != "https":
        raise TargetRefused("Only https URLs are allowed.")
    if resolve:
        vetted_addresses(host, parts.port or 443, allow_private=False)


def guarded_base_url(url: str, *, field: str) -> str:
    """A user-given server URL, normalized and checked, or a 422 naming the field."""
    try:
        base = normalize_base_url(url)
        check_target(base, user_given=True)
    except TargetRefused as exc:
        raise ValidationFailed(str(exc), errors={field: [str(exc)]}) from exc
    return base


def request_hook(*, user_given: bool):
    """An httpx request hook re-checking every request (redirects included) before it leaves.

    For user-given URLs it checks all but the addresses: a client for them sends through
    `PinnedTransport` (see `guarded_client_options`), which resolves and vets once, itself.
    """

    def _hook(request: httpx.Request) -> None:
        check_target(str(request.url), user_given=user_given, resolve=not user_given)

    return _hook


def guarded_client_options(*, user_given: bool, **transport_options: Any) -> dict[str, Any]:
    """What an httpx client (or the atproto SDK's, which takes httpx.Client's options) needs to
    send only where `check_target` allows: the request hook and, for user-given URLs, the
    pinned transport. `transport_options` go to the transport (`verify`, say: httpx ignores a
    client's own once it is given a transport)."""
    options: dict[str, Any] = {"event_hooks": {"request": [request_hook(user_given=user_given)]}}
    if user_given:
        allow_private = bool(current_app.config.get("ALLOW_PRIVATE_NETWORK_TARGETS"))
        options["transport"] = PinnedTransport(allow_private=allow_private, **transport_options)
    elif transport_options:
        options["transport"] = httpx.HTTPTransport(**transport_options)
    return options


class PinnedTransport(httpx.BaseTransport):
    """Sends each request to an address it resolved and vetted itself.

    Vetting a name and then letting the HTTP client resolve it again to connect leaves a gap
    that a DNS server can use: answer a public address to the check, then 127.0.0.1 or the
    cloud metadata address to the connection (DNS rebinding). Here the name is resolved once,
    every address vetted, and the connection made to a vetted address, while the request keeps
    the name: in the Host header (httpx set it from the URL) and, for TLS, as the SNI and the
    name the certificate must match (httpcore's `sni_hostname` extension).
    """

    def __init__(self, *, allow_private: bool, **transport_options: Any) -> None:
        self._allow_private = allow_private
        self._options = transport_options
        # One connection pool per (name, address): a pool keyed by address alone would reuse a
        # TLS connection made for one name for another name on the same address.
        self._transports: dict[tuple[str, str], httpx.HTTPTransport] = {}

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        host = url.host
        port = url.port or (443 if url.scheme == "https" else 80)
        addresses = vetted_addresses(host, port, allow_private=self._allow_private)
        literal = _is_ip_literal(host)
        failure: httpx.ConnectError | None = None
        for address in addresses:
            pinned = request
            if not literal:
                pinned = httpx.Request(
                    request.method,
                    url.copy_with(host=str(address)),
                    headers=request.headers,
                    stream=request.stream,
                    extensions={**request.extensions, "sni_hostname": host},
                )
            try:
                return self._transport(host, str(address)).handle_request(pinned)
            except httpx.ConnectError as exc:
                failure = exc  # the next address, as a connection by name would try it
        assert failure is not None  # _resolve returns at least one address or raises
        raise failure

    def _transport(self, host: str, address: str) -> httpx.HTTPTransport:
        key = (host, address)
        if key not in self._transports:
            self._transports[key] = httpx.HTTPTransport(**self._options)
        return self._transports[key]

    def close(self) -> None:
        for transport in self._transports.values():
            transport.close()
        self._transports.clear()


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
