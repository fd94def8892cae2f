"""A loopback HTTP proxy that forwards every request and, for chosen ones, drops the
answer after the server acted on it: the "lost answer" a retry must not turn into a
second order.

    proxy = AnswerDropper(ha.url, drop=lambda method, path, body: method == "POST").start()
    gateway_url = proxy.url
    proxy.dropped                  # answers dropped so far
    proxy.stop()

(tests/support/proxy.py cuts whole lines; this one acts per request.)
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

__all__ = ["AnswerDropper"]

DropRule = Callable[[str, str, bytes], bool]
# httpx hands over the body decoded: its length and encoding headers no longer apply.
_HOP_HEADERS = ("content-length", "content-encoding", "transfer-encoding", "connection")


class AnswerDropper:
    """Forwards to ``upstream``; drops the answer where ``drop(method, path, body)``."""

    def __init__(self, upstream: str, drop: DropRule) -> None:
        self.upstream = upstream.rstrip("/")
        self.drop = drop
        self.dropped = 0
        self.forwarded = 0
        self._lock = threading.Lock()
        self._client = httpx.Client(timeout=10.0)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> AnswerDropper:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._client.close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                answer = proxy._client.request(
                    self.command, proxy.upstream + self.path, headers=headers, content=body
                )
                with proxy._lock:
                    proxy.forwarded += 1
                    dropping = proxy.drop(self.command, self.path, body)
                    if dropping:
                        proxy.dropped += 1
                if dropping:
                    # The server acted; the client hears nothing but a closed line.
                    self.close_connection = True
                    return
                self.send_response(answer.status_code)
                for key, value in answer.headers.items():
                    if key.lower() not in _HOP_HEADERS:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            do_GET = do_POST = _forward

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler
