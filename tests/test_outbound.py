"""Outgoing requests to user-given servers connect to the address that was vetted (DNS rebinding).

A name is resolved by a fake resolver (socket.getaddrinfo, patched for the names below only),
and no traffic ever leaves 127.0.0.1: a connection to any other address is recorded and
refused before a packet is sent.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.networks import http
from app.networks.base import NetworkError, TransientNetworkError
from app.security.outbound import TargetRefused, guarded_client_options
from tests.fakes.http_server import FakeServer, Response

PUBLIC = "93.184.215.14"  # a global address: recorded, never connected to


class Network:
    """A resolver answering from a script per name, and a guard on outgoing connections."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.answers: dict[str, list[str]] = {}
        self.lookups: list[str] = []
        self.refused: list[str] = []
        real_getaddrinfo, real_connect = socket.getaddrinfo, socket.create_connection

        def getaddrinfo(host, port, *args, **kwargs):
            name = host.decode() if isinstance(host, bytes) else host
            if name not in self.answers:
                return real_getaddrinfo(host, port, *args, **kwargs)
            self.lookups.append(name)
            script = self.answers[name]
            address = script.pop(0) if len(script) > 1 else script[0]
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, int(port or 0)))]

        def create_connection(address, *args, **kwargs):
            host = address[0]
            try:
                literal = ipaddress.ip_address(host)
            except ValueError:
                literal = None  # a name: the real function resolves it (through the fake)
            if literal is not None and not literal.is_loopback:
                self.refused.append(host)
                raise ConnectionRefusedError(f"test network: {host} is not 127.0.0.1")
            return real_connect(address, *args, **kwargs)

        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
        monkeypatch.setattr(socket, "create_connection", create_connection)


@pytest.fixture
def network(monkeypatch) -> Network:
    return Network(monkeypatch)


@pytest.fixture
def listener() -> Iterator[tuple[int, list[str]]]:
    """A TCP listener on 127.0.0.1 that records each connection and closes it."""
    server = socket.create_server(("127.0.0.1", 0))
    accepted: list[str] = []

    def serve() -> None:
        while True:
            try:
                connection, peer = server.accept()
            except OSError:
                return
            accepted.append(peer[0])
            connection.close()

    threading.Thread(target=serve, daemon=True).start()
    yield server.getsockname()[1], accepted
    server.close()


@pytest.fixture
def public_targets_only(app, monkeypatch) -> None:
    """Production's rules: private targets refused, any name allowed."""
    monkeypatch.setitem(app.config, "ALLOW_PRIVATE_NETWORK_TARGETS", False)
    monkeypatch.setitem(app.config, "NETWORK_TARGETS_LOOPBACK_ONLY", False)


@pytest.fixture
def names_allowed(app, monkeypatch) -> None:
    """The suite's rules (private targets allowed) for names too, not only loopback literals."""
    monkeypatch.setitem(app.config, "NETWORK_TARGETS_LOOPBACK_ONLY", False)


def test_a_name_rebound_to_loopback_after_the_check_is_never_reached(
    app, network, listener, public_targets_only
):
    """The resolver answers a public address first and 127.0.0.1 next: the request goes to
    the public address, which was vetted, and never to the loopback listener."""
    port, accepted = listener
    network.answers["rebind.example"] = [PUBLIC, "127.0.0.1"]
    with (
        app.app_context(),
        pytest.raises(TransientNetworkError),
        http.translated_errors(),
        http.client(user_given=True) as client,
    ):
        client.get(f"https://rebind.example:{port}/api/v1/instance")
    assert accepted == []
    assert network.refused == [PUBLIC]
    assert network.lookups == ["rebind.example"]  # resolved once, for vetting and connecting


def test_a_name_that_resolves_inside_is_refused_before_connecting(
    app, network, listener, public_targets_only
):
    port, accepted = listener
    network.answers["inside.example"] = ["127.0.0.1"]
    with (
        app.app_context(),
        pytest.raises(NetworkError, match="private or reserved"),
        http.translated_errors(),
        http.client(user_given=True) as client,
    ):
        client.get(f"https://inside.example:{port}/")
    assert accepted == [] and network.refused == []


def test_redirects_are_vetted_and_pinned_too(app, network, public_targets_only):
    network.answers["rebind.example"] = [PUBLIC, "127.0.0.1"]
    network.answers["inside.example"] = ["169.254.169.254"]
    with app.app_context():
        options = guarded_client_options(user_given=True)
        with httpx.Client(follow_redirects=True, **options) as client:
            with pytest.raises(TargetRefused):
                client.get("https://inside.example/latest/meta-data/")
            with pytest.raises(httpx.ConnectError):
                client.get("https://rebind.example/")
    assert network.refused == [PUBLIC]


def test_a_normal_request_to_a_local_server_keeps_its_host_header(app, network, names_allowed):
    """The suite's configuration allows private targets: requests to the fake servers on
    127.0.0.1 go through the same pinned transport, and the server sees the name."""
    server = FakeServer().start()
    try:
        server.route("GET", "/api/v1/instance")(lambda _r: Response(200, {"ok": True}))
        port = server.url.rsplit(":", 1)[1]
        network.answers["mastodon.test"] = ["127.0.0.1"]
        with app.app_context(), http.client(user_given=True) as client:
            answer = client.get(f"http://mastodon.test:{port}/api/v1/instance")
            by_address = client.get(f"{server.url}/api/v1/instance")
    finally:
        server.stop()
    assert answer.status_code == by_address.status_code == 200
    assert answer.json() == {"ok": True}
    assert answer.request.url.host == "mastodon.test"
    assert [r.headers["host"] for r in server.requests] == [
        f"mastodon.test:{port}",
        f"127.0.0.1:{port}",
    ]


def _self_signed(directory: Path, name: str) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_tls_to_the_pinned_address_uses_the_name_for_sni_and_the_certificate(
    app, network, names_allowed, tmp_path
):
    cert_path, key_path = _self_signed(tmp_path, "pds.test")
    server_names: list[str | None] = []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    context.sni_callback = lambda _socket, name, _context: server_names.append(name)
    server = FakeServer()
    server._server.socket = context.wrap_socket(server._server.socket, server_side=True)
    # Keep-alive, so that a connection pool shared by names on one address would show.
    server._server.RequestHandlerClass.protocol_version = "HTTP/1.1"
    server.route("GET", "/xrpc/_health")(lambda _r: Response(200, {"version": "test"}))
    server.start()
    port = server.url.rsplit(":", 1)[1]
    network.answers["pds.test"] = ["127.0.0.1"]
    network.answers["other.test"] = ["127.0.0.1"]
    trusted = ssl.create_default_context(cafile=str(cert_path))
    try:
        with app.app_context():
            options = guarded_client_options(user_given=True, verify=trusted)
            with httpx.Client(**options) as client:
                answer = client.get(f"https://pds.test:{port}/xrpc/_health")
                # The same address under a name the certificate does not carry: refused, so
                # the certificate is checked against the name, not the address (and the open
                # connection to pds.test is not reused for it).
                with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                    client.get(f"https://other.test:{port}/xrpc/_health")
    finally:
        server.stop()
    assert answer.status_code == 200
    assert server_names[0] == "pds.test"
    assert server.requests[0].headers["host"] == f"pds.test:{port}"
