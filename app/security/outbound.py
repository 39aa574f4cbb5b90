"""Guards on outgoing requests to addresses users give us (Mastodon instances, Bluesky PDSs).

A user-given URL must resolve, after DNS, only to public addresses: no loopback, private,
link-local (cloud metadata at 169.254.169.254), shared, multicast or reserved ranges, unless
ALLOW_PRIVATE_NETWORK_TARGETS is set. The check runs again on every request the HTTP client
sends (an httpx request hook), redirects included, so a redirect cannot lead inside.

NETWORK_TARGETS_LOOPBACK_ONLY (tests) is stricter and runs before any DNS look-up: every
request, to any network, must go to a loopback IP literal or `localhost`.
"""

from __future__ import annotations

import ipaddress
import socket
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


def check_target(url: str, *, user_given: bool) -> None:
    """Raise TargetRefused unless a request to `url` is allowed by configuration."""
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
    port = parts.port or 443
    for address in _resolve(host, port):
        if not address.is_global or address.is_multicast:
            raise TargetRefused(
                f"'{host}' resolves to {address}, a private or reserved address; "
                "only public servers can be connected."
            )


def guarded_base_url(url: str, *, field: str) -> str:
    """A user-given server URL, normalized and checked, or a 422 naming the field."""
    try:
        base = normalize_base_url(url)
        check_target(base, user_given=True)
    except TargetRefused as exc:
        raise ValidationFailed(str(exc), errors={field: [str(exc)]}) from exc
    return base


def request_hook(*, user_given: bool):
    """An httpx request hook re-checking every request (redirects included) before it leaves."""

    def _hook(request: httpx.Request) -> None:
        check_target(str(request.url), user_given=user_given)

    return _hook
