"""A threaded HTTP server on 127.0.0.1 with a route table and failure injection."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    @property
    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.body.decode()))

    @property
    def json(self) -> Any:
        return json.loads(self.body or b"null")

    @property
    def params(self) -> dict[str, str]:
        """Query and form fields together (several token endpoints take either)."""
        values = dict(self.query)
        if "x-www-form-urlencoded" in self.headers.get("content-type", ""):
            values.update(self.form)
        return values

    @property
    def bearer(self) -> str | None:
        value = self.headers.get("authorization", "")
        return value[7:] if value.lower().startswith("bearer ") else None


@dataclass
class Response:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[Request], Response]


class FakeServer:
    """Routes are (method, path) or (method, path-prefix + "*"); `fail_next` injects failures."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Handler] = {}
        self.requests: list[Request] = []
        self._failures: list[tuple[str, Response]] = []
        self._delays: list[tuple[str, float]] = []
        self._lock = threading.Lock()
        fake = self

        class _Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                parts = urlsplit(self.path)
                request = Request(
                    method=self.command,
                    path=parts.path,
                    query=dict(parse_qsl(parts.query)),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=self.rfile.read(length) if length else b"",
                )
                response = fake.dispatch(request)
                payload = b""
                if response.body is not None:
                    payload = (
                        response.body
                        if isinstance(response.body, bytes)
                        else json.dumps(response.body).encode()
                    )
                self.send_response(response.status)
                if response.body is not None and not isinstance(response.body, bytes):
                    self.send_header("Content-Type", "application/json")
                for name, value in response.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_DELETE = do_PUT = _serve

            def log_message(self, *_args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def route(self, method: str, path: str) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.routes[(method, path)] = handler
            return handler

        return register

    def fail_next(self, path: str, status: int, body: Any = None, **headers: str) -> None:
        """The next request to `path` gets this answer instead of the real one."""
        with self._lock:
            self._failures.append((path, Response(status, body, headers)))

    def delay_next(self, path: str, seconds: float) -> None:
        """The next request to `path` is answered only after `seconds` (to provoke timeouts)."""
        with self._lock:
            self._delays.append((path, seconds))

    def dispatch(self, request: Request) -> Response:
        delay = 0.0
        planned: Response | None = None
        # Both decided on arrival: a delayed request, answered after its client gave up, must
        # not take a failure that the test queued meanwhile for the next request.
        with self._lock:
            for i, (path, seconds) in enumerate(self._delays):
                if path == request.path:
                    del self._delays[i]
                    delay = seconds
                    break
            for i, (path, failure) in enumerate(self._failures):
                if path == request.path:
                    del self._failures[i]
                    planned = failure
                    break
        if delay:
            time.sleep(delay)
        with self._lock:
            self.requests.append(request)
        if planned is not None:
            return planned
        handler = self.routes.get((request.method, request.path))
        if handler is None:
            for (method, pattern), candidate in self.routes.items():
                if (
                    method == request.method
                    and pattern.endswith("*")
                    and request.path.startswith(pattern[:-1])
                ):
                    handler = candidate
                    break
        if handler is None:
            return Response(404, {"error": "not_found"})
        with self._lock:
            return handler(request)

    def hits(self, path: str) -> list[Request]:
        return [r for r in self.requests if r.path == path]
