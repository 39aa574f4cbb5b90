"""A threaded HTTP server on 127.0.0.1 with a route table and failure injection.

Faults, each for the next request to one path (matched exactly), in the order queued:
- `fail_next(path, status, body, **headers)`: this answer instead of the real one;
- `delay_next(path, seconds)`: wait before handling (the client may give up first, and the
  request is handled anyway, later);
- `answer_late_next(path, seconds)`: handle at once, answer after `seconds` (a client timeout
  AFTER the server did the work: what makes an outcome unknown);
- `drop_next(path, after_handling=False)`: close the connection without any answer, before
  handling the request (nothing happened) or after (the work is done).
`latency` (seconds) delays every request, as a distant network would; `refuse_connections()`
and `accept_connections()` take the server off the network and back, its state kept.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    raw_query: str = ""

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

    @property
    def form_lists(self) -> dict[str, list[str]]:
        """Form fields, repeated ones kept (`media_ids[]=1&media_ids[]=2`)."""
        return parse_qs(self.body.decode(), keep_blank_values=True)

    @property
    def multipart(self) -> dict[str, Part]:
        """The fields of a multipart/form-data body, by name."""
        content_type = self.headers.get("content-type", "")
        if not content_type.startswith("multipart/form-data"):
            return {}
        head = f"Content-Type: {content_type}\r\n\r\n".encode()
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + self.body)
        parts = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if name:
                parts[str(name)] = Part(
                    filename=part.get_filename(),
                    content_type=part.get_content_type(),
                    data=part.get_payload(decode=True) or b"",
                )
        return parts


@dataclass
class Part:
    filename: str | None
    content_type: str
    data: bytes

    @property
    def text(self) -> str:
        return self.data.decode()


@dataclass
class Response:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


# Answered as a connection closed without a response.
DROP = Response(status=0)

Handler = Callable[[Request], Response]


class FakeServer:
    """Routes are (method, path) or (method, path-prefix + "*"); `fail_next` injects failures."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Handler] = {}
        self.requests: list[Request] = []
        self.latency = 0.0
        self._failures: list[tuple[str, Response]] = []
        self._delays: list[tuple[str, float]] = []
        self._late: list[tuple[str, float]] = []
        self._drops: list[tuple[str, bool]] = []
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
                    raw_query=parts.query,
                )
                response = fake.dispatch(request)
                if response is DROP:
                    self.close_connection = True
                    return
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

            do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _serve

            def log_message(self, *_args: Any) -> None:
                pass

        self._handler = _Handler
        self._listen(0)

    def _listen(self, port: int) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler)
        self._server.daemon_threads = True
        # A short poll: `stop` waits for it, and suites stop many fakes.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

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

    def refuse_connections(self) -> None:
        """Stop listening, state kept: connections are refused, so no request is ever sent (a
        failure "before sending"), until `accept_connections`."""
        self.stop()

    def accept_connections(self) -> None:
        """Listen again on the same port, after `refuse_connections`."""
        self._listen(self._server.server_address[1])
        self.start()

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

    def answer_late_next(self, path: str, seconds: float) -> None:
        """The next request to `path` is handled at once and answered after `seconds`: its
        client may time out although the work (a post) is done."""
        with self._lock:
            self._late.append((path, seconds))

    def drop_next(self, path: str, *, after_handling: bool = False) -> None:
        """The next request to `path` gets no answer: the connection is closed, before the
        request is handled or, with `after_handling`, after."""
        with self._lock:
            self._drops.append((path, after_handling))

    @staticmethod
    def _take(queue: list[tuple[str, Any]], path: str) -> Any:
        for i, (queued_path, value) in enumerate(queue):
            if queued_path == path:
                del queue[i]
                return value
        return None

    def dispatch(self, request: Request) -> Response:
        # All decided on arrival: a delayed request, answered after its client gave up, must
        # not take a failure that the test queued meanwhile for the next request.
        with self._lock:
            delay = self._take(self._delays, request.path) or 0.0
            planned: Response | None = self._take(self._failures, request.path)
            late = self._take(self._late, request.path) or 0.0
            drop: bool | None = self._take(self._drops, request.path)
        if self.latency:
            time.sleep(self.latency)
        if delay:
            time.sleep(delay)
        with self._lock:
            self.requests.append(request)
        if drop is False:
            return DROP
        if planned is not None:
            return planned
        response = self._handle(request)
        if late:
            time.sleep(late)
        return DROP if drop else response

    def _handle(self, request: Request) -> Response:
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
