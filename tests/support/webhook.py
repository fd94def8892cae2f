"""A real webhook receiver, as an owner would write one: it VERIFIES every request's
signature (HMAC-SHA256 over ``"<timestamp>.<body>"``, timestamp within a window) and
acts once per ``Idempotency-Key``, answering a repeat with the first answer.

    with WebhookReceiver(secret) as receiver:
        ...  # point a gateway's webhook shop at receiver.url
        assert receiver.accepted_keys() == [...]

It counts what arrived (``deliveries``: every verified POST, repeats included) apart
from what it acted on (``orders``: one per key), so a test can tell "delivered twice
with the same key" (allowed: at-least-once) from "ordered twice" (never).

Faults, set while running: ``down()`` / ``up()`` close and reopen the port (an
outage: connections are refused); ``lose_answers(n)`` acts on the next ``n`` orders
and then drops the connection without answering (a lost answer).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support.ports import free_port

TOLERANCE = 300.0
"""A signature older (or newer) than this is refused: a replayed capture."""


@dataclass(frozen=True)
class Delivery:
    key: str
    event_id: str
    repeat: bool


@dataclass
class _Book:
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)  # key -> first body
    answers: dict[str, bytes] = field(default_factory=dict)
    deliveries: list[Delivery] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # why requests were refused
    incomplete: int = 0  # bodies cut short (the sender died mid-request): never read
    lose: int = 0


def verify(secret: bytes, header: str, body: bytes, now: float) -> str | None:
    """None if ``header`` signs ``body``; else why not (what a receiver must check)."""
    parts = dict(item.split("=", 1) for item in header.split(",") if "=" in item)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return "no timestamp"
    if abs(now - timestamp) > TOLERANCE:
        return "timestamp outside the window"
    expected = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, parts.get("v1", "")):
        return "bad signature"
    return None


class WebhookReceiver:
    def __init__(
        self, secret: str, *, header: str = "Reorder-Signature", price_cents: int | None = 499
    ) -> None:
        self.secret = secret.encode()
        self.header = header
        self.price_cents = price_cents
        self.port = free_port()
        self._book = _Book()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    # ------------------------------------------------------------------ control

    def start(self) -> WebhookReceiver:
        self.up()
        return self

    def up(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def handle(self) -> None:
                # The gateway was SIGKILLed mid-request: it will ask again.
                with contextlib.suppress(ConnectionResetError, BrokenPipeError):
                    super().handle()

            def do_POST(self) -> None:
                receiver._handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()

    def down(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def stop(self) -> None:
        self.down()

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def lose_answers(self, n: int) -> None:
        with self._lock:
            self._book.lose = n

    # ------------------------------------------------------------------ facts

    def orders(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return dict(self._book.orders)

    def deliveries(self) -> list[Delivery]:
        with self._lock:
            return list(self._book.deliveries)

    def refused(self) -> list[str]:
        with self._lock:
            return list(self._book.refused)

    def incomplete(self) -> int:
        """Requests whose body never fully arrived (dropped unread)."""
        with self._lock:
            return self._book.incomplete

    def events(self) -> dict[str, int]:
        """Orders acted on, per ``source.event_id``: exactly one each is the promise."""
        counts: dict[str, int] = {}
        for order in self.orders().values():
            event_id = order["source"]["event_id"]
            counts[event_id] = counts.get(event_id, 0) + 1
        return counts

    # ------------------------------------------------------------------ one request

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        length = int(request.headers.get("Content-Length", "0"))
        body = request.rfile.read(length)
        if len(body) < length:
            # The sender died (SIGKILL) between the headers and the end of the body.
            # Any HTTP server drops such a request before a handler sees it; it is
            # neither an order nor a forged signature.
            with self._lock:
                self._book.incomplete += 1
            request.close_connection = True
            return
        key = request.headers.get("Idempotency-Key", "")
        why = verify(self.secret, request.headers.get(self.header, ""), body, time.time())
        if why is None and not key:
            why = "no Idempotency-Key"
        document: dict[str, Any] = {}
        if why is None:
            try:
                document = json.loads(body)
            except ValueError:
                why = "not JSON"
        if why is None and document.get("idempotency_key") != key:
            why = "the key in the body is not the header's"
        if why is not None:
            with self._lock:
                self._book.refused.append(why)
            self._answer(request, 401, json.dumps({"error": why}).encode())
            return
        with self._lock:
            book = self._book
            repeat = key in book.orders
            if repeat and book.orders[key] != document:
                book.refused.append("same key, different order")
                answer, status = b'{"error":"key reused for another order"}', 422
            else:
                if not repeat:
                    book.orders[key] = document
                    n = len(book.orders)
                    reply: dict[str, Any] = {"id": f"wh_{n}"}
                    if self.price_cents is not None:
                        reply |= {
                            "currency": "EUR",
                            "unit_price_cents": self.price_cents,
                            "total_cents": self.price_cents * int(document["quantity"]),
                        }
                    book.answers[key] = json.dumps(reply).encode()
                book.deliveries.append(Delivery(key, document["source"]["event_id"], repeat))
                answer, status = book.answers[key], 200 if repeat else 201
            lose = book.lose > 0 and status == 201
            if lose:
                book.lose -= 1
        if lose:
            # Acted on, then the connection drops before the answer: the gateway must
            # ask again with the same key, and this receiver must not act again.
            request.close_connection = True
            request.connection.close()
            return
        self._answer(request, status, answer, replayed=repeat)

    @staticmethod
    def _answer(
        request: BaseHTTPRequestHandler, status: int, body: bytes, *, replayed: bool = False
    ) -> None:
        try:
            request.send_response(status)
            request.send_header("Content-Type", "application/json")
            request.send_header("Content-Length", str(len(body)))
            if replayed:
                request.send_header("Idempotent-Replayed", "true")
            request.end_headers()
            request.wfile.write(body)
        except OSError:
            # The gateway was killed while we answered: it will ask again, same key.
            request.close_connection = True
