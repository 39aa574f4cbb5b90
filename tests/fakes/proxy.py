"""A proxy on 127.0.0.1 in front of a real server (the Bluesky PDS), with `FakeServer`'s faults:
`answer_late_next(path, seconds)` lets the real server do the work and answers too late for
the client, `drop_next(path, after_handling=...)` closes the connection before or after the real
server saw the request, `fail_next` answers in its place. What the real server holds afterwards
(the posts in a repository) is the truth a fault test counts."""

from __future__ import annotations

import httpx

from tests.fakes.http_server import FakeServer, Request, Response

# Hop-by-hop and framing headers: the proxy's own connection sets them.
_SKIPPED = {"host", "content-length", "transfer-encoding", "connection", "keep-alive"}


class FaultyProxy(FakeServer):
    def __init__(self, upstream: str) -> None:
        super().__init__()
        self.upstream = upstream.rstrip("/")
        self._client = httpx.Client(timeout=60)

    def _handle(self, request: Request) -> Response:
        url = self.upstream + request.path + (f"?{request.raw_query}" if request.raw_query else "")
        headers = {k: v for k, v in request.headers.items() if k not in _SKIPPED}
        answer = self._client.request(request.method, url, headers=headers, content=request.body)
        kept = {k: v for k, v in answer.headers.items() if k.lower() not in _SKIPPED}
        kept.pop("content-encoding", None)  # httpx decoded the body already
        return Response(answer.status_code, answer.content, kept)

    def stop(self) -> None:
        super().stop()
        self._client.close()
