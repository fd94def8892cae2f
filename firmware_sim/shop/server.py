"""The reference shop: a real HTTP server speaking the Reorder API.

It stands in for the commerce backend in the demo and in every test: SQLite
persistence, strict idempotency (``Idempotency-Key``), order statuses that advance
with the (scalable) clock, and fault knobs that make it misbehave on purpose.
The contract is ``docs/commerce-api.md``.

Embedded, for fast tests::

    shop = ShopServer(tmp_path / "shop.db", token="s3cret").start()
    httpx.post(f"{shop.url}/orders", ...)          # shop.url ends in /api/v1
    shop.set_faults(error_rate=0.5, seed=1)
    shop.orders()                                  # every order, as the API shows it
    shop.stop()

As a process::

    SHOP_TOKEN=s3cret reorder-shop --port 0 --db demo-state/shop.db --time-scale 600
    listening on http://127.0.0.1:41234/api/v1
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from contextlib import suppress
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from firmware_sim.cliargs import positive_number
from firmware_sim.shop.app import API, Request, Response, ShopApp
from firmware_sim.shop.catalog import DEFAULT_CATALOG, CatalogError, load_catalog
from firmware_sim.shop.faults import GARBAGE_KINDS, FaultInjector, Faults, FaultSettingError
from firmware_sim.shop.requests import MAX_BODY_BYTES, ApiError, bad_request
from firmware_sim.shop.store import Lifecycle, ShopStore
from gateway.clock import Clock, make_clock
from gateway.config.models import parse_duration
from gateway.config.secrets import SecretFileError, read_secret_file
from gateway.outputs.log_clock import stamp_logs_with

log = logging.getLogger("reorder_shop")

__all__ = ["ShopServer", "main"]


class ShopServer:
    """The shop, serving in a background thread. One start/stop per instance:
    to "restart", open a new ShopServer on the same database.

    >>> import tempfile, pathlib
    >>> shop = ShopServer(pathlib.Path(tempfile.mkdtemp()) / "shop.db", token="t").start()
    >>> shop.url.endswith("/api/v1")
    True
    >>> shop.stop()
    """

    def __init__(
        self,
        db_path: Path | str,
        token: str,
        *,
        catalog: Path | str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Clock | None = None,
        time_scale: float | None = None,
        ship_after: float | str = "2h",
        deliver_after: float | str = "1d",
        faults: Mapping[str, object] | None = None,
    ) -> None:
        if not token:
            raise ValueError("the shop needs a bearer token")
        self._token = token
        self._host, self._port = host, port
        lifecycle = Lifecycle(_seconds(ship_after), _seconds(deliver_after))
        products = load_catalog(Path(catalog) if catalog else DEFAULT_CATALOG)
        self._injector = FaultInjector(Faults().changed(faults or {}))
        self._store = ShopStore(Path(db_path), lifecycle)
        self._app = ShopApp(
            self._store, products, token, clock or make_clock(time_scale), self._injector
        )
        self._httpd: _HttpServer | None = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"ShopServer(url={self.url if self._httpd else None!r}, db={self._store.path})"

    # ------------------------------------------------------------------ life

    def start(self) -> ShopServer:
        """Bind (port 0 picks a free one) and serve in a daemon thread."""
        self._httpd = _HttpServer((self._host, self._port), self._app)
        self._port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="reorder-shop",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop like a process would: stop listening, hang up on every client."""
        self._injector.stop()  # releases requests held by slow_seconds
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd.hang_up_all()
            self._httpd.wait_idle(timeout=5.0)
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None
        self._store.close()

    def __enter__(self) -> ShopServer:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------ for tests and demos

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        """The base URL clients use, e.g. ``http://127.0.0.1:41234/api/v1``."""
        host = "127.0.0.1" if self._host in ("", "0.0.0.0") else self._host  # noqa: S104
        return f"http://{host}:{self._port}{API}"

    @property
    def token(self) -> str:
        return self._token

    def set_faults(self, **knobs: object) -> dict[str, Any]:
        """Change fault knobs (see :class:`firmware_sim.shop.faults.Faults`); returns all."""
        return self._injector.update(knobs).as_dict()

    def faults(self) -> dict[str, Any]:
        return self._injector.faults.as_dict()

    def orders(self, sku: str | None = None) -> list[dict[str, Any]]:
        """Every order as ``GET /orders`` shows it (statuses advanced to now)."""
        return self._store.list_orders(self._app.clock.now(), sku)

    def stats(self) -> dict[str, Any]:
        return self._app.stats()


def _seconds(value: float | str) -> float:
    return parse_duration(value) if isinstance(value, str) else float(value)


# ---------------------------------------------------------------------- HTTP transport


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # socketserver's default backlog of 5 resets a burst of simultaneous clients.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], app: ShopApp) -> None:
        self.app = app
        self._connections: set[socket.socket] = set()
        self._busy = 0
        self._idle = threading.Condition()
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that resets mid-request is routine: one line, no traceback."""
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):
            log.info("%s: connection lost (%s)", client_address[0], exc)
        else:
            log.exception("unexpected error serving %s", client_address[0])

    def track(self, connection: socket.socket, open_: bool) -> None:
        with self._idle:
            if open_:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def hang_up_all(self) -> None:
        with self._idle:
            for connection in list(self._connections):
                _hang_up(connection)

    def busy(self, delta: int) -> None:
        with self._idle:
            self._busy += delta
            self._idle.notify_all()

    def wait_idle(self, timeout: float) -> None:
        with self._idle:
            self._idle.wait_for(lambda: self._busy == 0, timeout)


def _hang_up(connection: socket.socket) -> None:
    with suppress(OSError):
        connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    server: _HttpServer
    protocol_version = "HTTP/1.1"  # keep-alive, like a real API behind a proxy
    timeout = 120  # idle keep-alive connections are closed after this
    # Headers and body go out in two writes; with Nagle on, delayed ACKs add
    # ~40 ms to every keep-alive response.
    disable_nagle_algorithm = True

    def version_string(self) -> str:
        return "reorder-shop/0.1"  # no Python version: nothing for a scanner to match

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, open_=True)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass  # the client or a fault hung up; nothing left to flush
        finally:
            self.server.track(self.connection, open_=False)

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def _serve(self) -> None:
        self.server.busy(+1)
        try:
            request = self._read_request()
            try:
                response = self.server.app.handle(request)
            except Exception:
                log.exception("%s %s failed", self.command, request.path)
                response = Response.error(
                    ApiError(500, "internal_error", "the shop failed to handle this request")
                )
            self._write(response)
            log.info(
                "%s %s %d%s%s",
                self.command,
                self.path,
                response.status,
                " replayed" if response.replayed else "",
                f" {response.note}" if response.note else "",
            )
        finally:
            self.server.busy(-1)

    def _read_request(self) -> Request:
        parts = urlsplit(self.path)
        headers = {name.lower(): value for name, value in self.headers.items()}
        body, problem = b"", None
        if "chunked" in headers.get("transfer-encoding", "").lower():
            self.close_connection = True
            problem = bad_request("chunked bodies are not accepted; send a Content-Length")
        elif "content-length" in headers:
            try:
                length = int(headers["content-length"])
                if length < 0:
                    raise ValueError(length)
            except ValueError:
                self.close_connection = True
                problem = bad_request("the Content-Length header is not a number")
            else:
                if length > MAX_BODY_BYTES:
                    # Not read at all; closing keeps the unread bytes from being
                    # taken for the next request on this connection.
                    self.close_connection = True
                    problem = bad_request(
                        f"the body is {length} bytes; at most {MAX_BODY_BYTES} are accepted",
                        "body_too_large",
                    )
                else:
                    body = self.rfile.read(length)
        return Request(
            method=self.command,
            path=parts.path,
            query=parse_qs(parts.query),
            headers=headers,
            body=body,
            body_error=problem,
        )

    def _write(self, response: Response) -> None:
        try:
            if response.delivery == "drop":
                self.close_connection = True
                _hang_up(self.connection)
                return
            payload = response.body
            if response.delivery == "truncate":
                payload = payload[: len(payload) // 2]
                self.close_connection = True
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            # The full length even when truncating: the client must notice the cut.
            self.send_header("Content-Length", str(len(response.body)))
            for name, value in response.headers.items():
                self.send_header(name, value)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(payload)
            if response.delivery == "truncate":
                _hang_up(self.connection)
        except OSError as exc:
            self.close_connection = True
            log.info("%s %s: client went away (%s)", self.command, self.path, exc)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Protocol-level errors (bad request line, huge headers) as JSON too."""
        self.close_connection = True
        # A request line we could not parse leaves HTTP/0.9 set, which would
        # suppress the status line; every client we serve speaks HTTP/1.x.
        self.request_version = "HTTP/1.1"
        phrase = message or HTTPStatus(code).phrase
        body = json.dumps({"error": {"code": "bad_http_request", "message": phrase}}).encode()
        with suppress(OSError):
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
        log.info("%s %s %d %s", self.command, getattr(self, "path", "-"), code, phrase)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Silenced: :meth:`_serve` logs one line per request with more detail."""

    def log_message(self, format: str, *args: Any) -> None:
        log.info("%s: %s", self.address_string(), format % args)


# ---------------------------------------------------------------------- CLI


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="reorder-shop",
        description="The reference Reorder API shop (see docs/commerce-api.md).",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    p.add_argument("--db", required=True, type=Path, help="SQLite file (created 0600)")
    p.add_argument("--catalog", type=Path, default=DEFAULT_CATALOG, help="SKU catalog YAML")
    token = p.add_mutually_exclusive_group()
    token.add_argument("--token", help="bearer token (visible in ps: prefer --token-file)")
    token.add_argument("--token-file", type=Path, help="file holding the bearer token")
    p.add_argument("--time-scale", type=positive_number, help="600 = 10 min per second")
    p.add_argument("--ship-after", type=_duration, default=_duration("2h"))
    p.add_argument("--deliver-after", type=_duration, default=_duration("1d"))
    faults = p.add_argument_group("fault knobs (also POST /_admin/faults)")
    for name in ("error", "drop-after-commit", "slow", "rate-limit", "garbage"):
        faults.add_argument(f"--{name}-rate", type=float, default=0.0, metavar="P")
    faults.add_argument("--slow-seconds", type=float, default=0.0, metavar="S")
    faults.add_argument("--retry-after", type=int, default=1, metavar="S")
    faults.add_argument("--garbage-kind", choices=GARBAGE_KINDS, default="html")
    faults.add_argument("--seed", type=int, default=None)
    return p


def _read_token(args: argparse.Namespace, parser: argparse.ArgumentParser) -> str:
    if args.token_file is not None:
        # The gateway's reader, so one token file means the same token to both.
        try:
            token = read_secret_file(args.token_file)
        except SecretFileError as exc:
            parser.error(f"--token-file: {exc}")
        if not token:
            parser.error(f"--token-file {args.token_file} is empty")
        return token
    token = args.token or os.environ.get("SHOP_TOKEN", "")
    if not token:
        parser.error("a bearer token is required: --token-file PATH, --token, or SHOP_TOKEN")
    return str(token)


def main(argv: Sequence[str] | None = None) -> int:
    """``reorder-shop``: serve until SIGTERM or SIGINT, then exit 0."""
    parser = _parser()
    args = parser.parse_args(argv)
    token = _read_token(args, parser)
    knobs = {
        name: getattr(args, name)
        for name in Faults.__dataclass_fields__
        if getattr(args, name) != getattr(Faults(), name)
    }
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format="%(asctime)s reorder-shop %(message)s"
    )
    clock = make_clock(args.time_scale)
    # Scaled (the demo): its log lines are dated by the clock its orders are dated by.
    stamp_logs_with(clock)
    try:
        shop = ShopServer(
            args.db,
            token,
            catalog=args.catalog,
            host=args.host,
            port=args.port,
            clock=clock,
            time_scale=args.time_scale,
            ship_after=args.ship_after,
            deliver_after=args.deliver_after,
            faults=knobs,
        )
    except (CatalogError, FaultSettingError) as exc:
        parser.error(str(exc))
    except OSError as exc:
        print(f"reorder-shop: error: cannot open the database {args.db}: {exc}", file=sys.stderr)
        return 1
    try:
        shop.start()
    except OSError as exc:
        print(
            f"reorder-shop: error: cannot listen on {args.host}:{args.port}: {exc.strerror}",
            file=sys.stderr,
        )
        return 1

    stopping = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    print(f"listening on {shop.url}", flush=True)
    log.info("serving %s (db %s, time scale %s)", shop.url, args.db, args.time_scale or 1)
    while not stopping.wait(1.0):
        pass
    started = time.monotonic()
    shop.stop()
    log.info("stopped cleanly in %.2f s", time.monotonic() - started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
