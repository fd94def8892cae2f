"""The household's page over HTTP(S): stdlib ``ThreadingHTTPServer`` in its own thread.

Reads come from the outbox's read-only views (:class:`~gateway.outbox.views.StateReader`);
every action is handed to the core thread (``submit``) as a core event or item, so the
web thread never writes the database. Readable without JavaScript: plain HTML forms.

>>> WebPage.ROUTES
('/', '/history', '/devices', '/health', '/events', '/live.js', '/login', '/logout')
"""

from __future__ import annotations

import html
import http.cookies
import importlib.resources
import logging
import queue
import ssl
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

from gateway.clock import Clock, rfc3339
from gateway.config.models import Config
from gateway.core.events import CancelByKey, ConfirmOrder, OrderState
from gateway.core.keys import short_key
from gateway.engine.decider import Item, Requeue
from gateway.outbox.views import OrderRow, StateReader
from gateway.web import views
from gateway.web.auth import (
    LoginLimiter,
    PasswordFileError,
    Session,
    Sessions,
    password_matches,
    read_password_file,
)
from gateway.web.live import CLOSED, MAX_CLIENTS, LiveFeed

log = logging.getLogger(__name__)

COOKIE = "rg_session"
HISTORY_DAYS = 90
_MAX_BODY = 4096  # a login or a button: anything larger is not ours
_DEAD = (OrderState.REJECTED, OrderState.BLOCKED)
KEEPALIVE = 15.0  # seconds between SSE comments: a dead client is noticed on the next write
_SCRIPT = importlib.resources.files("gateway.web").joinpath("static/live.js").read_bytes()
_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:0 auto;max-width:40rem;padding:1rem}"
    "nav a{margin-right:1rem}table{width:100%;border-collapse:collapse}"
    "td,th{text-align:left;padding:.3rem;border-bottom:1px solid #ddd}"
    "button{padding:.5rem 1rem;font-size:1rem}.paid{color:#a00}"
)


class WebPage:
    """The page's logic, one method per route; the HTTP plumbing is in :class:`_Handler`.

    ``submit`` is the core thread's queue (``Core.submit``): Cancel becomes
    :class:`~gateway.core.events.CancelByKey`, Confirm a
    :class:`~gateway.core.events.ConfirmOrder`, Retry a
    :class:`~gateway.engine.decider.Requeue`, each ``via="web"``.
    """

    ROUTES = ("/", "/history", "/devices", "/health", "/events", "/live.js", "/login", "/logout")

    def __init__(
        self,
        config: Config,
        reader: StateReader,
        submit: Callable[[Item], None],
        clock: Clock,
        live: LiveFeed | None = None,
    ) -> None:
        web = config.web
        assert web is not None
        self.config = config
        self.reader = reader
        self.submit = submit
        self.clock = clock
        self.live = live if live is not None else LiveFeed()
        self.password_file = Path(web.password_path(config.gateway.state_dir))
        self.sessions = Sessions(web.session_lifetime)
        self.limiter = LoginLimiter()
        self.secure = web.https

    # ------------------------------------------------------------------ auth

    def login(self, client: str, password: str) -> tuple[Session | None, int | None]:
        """(the new session, None) on success; (None, seconds to wait) when limited."""
        now = self.clock.monotonic()
        wait = self.limiter.retry_after(client, now)
        if wait is not None:
            return None, wait
        try:
            stored = read_password_file(self.password_file)
        except PasswordFileError as exc:
            log.warning("web: login refused: %s", exc)
            raise
        if password_matches(stored, password):
            self.limiter.succeeded(client)
            return self.sessions.open(now), None
        self.limiter.failed(client, now)
        return None, self.limiter.retry_after(client, now)

    def session(self, token: str | None) -> Session | None:
        return self.sessions.get(token, self.clock.monotonic())

    # ------------------------------------------------------------------ actions

    def act(self, action: str, key: str) -> bool:
        if action == "cancel":
            self.submit(CancelByKey(key, via="web"))
        elif action == "confirm":
            self.submit(ConfirmOrder(key, via="web"))
        elif action == "retry":
            self.submit(Requeue(key, via="web"))
        else:
            return False
        return True

    # ------------------------------------------------------------------ pages

    def now_page(self, session: Session) -> str:
        snapshot = self.reader.snapshot(self.clock.now())
        rows = self.reader.open_orders()
        parts = ["<h1>Now</h1>"]
        for name, product in self.config.products.items():
            mine = [r for r in rows if r.product == name]
            parts.append(f"<h2>{_e(name)}</h2>")
            for f in snapshot.forecasts:
                if f.get("product") == name:
                    parts.append(f"<p>usually due {_e(f.get('due'))}</p>")
            sensors = [s.name for s in self.config.sensors if s.product == name]
            for f in snapshot.forecasts:
                if f.get("sensor") in sensors:
                    parts.append(f"<p>{_e(f['sensor'])} runs out {_e(f.get('runs_out'))}</p>")
            if not mine:
                parts.append("<p>no open order</p>")
            for row in mine:
                parts.append(self._open_order(row, product.quantity, session))
        # id=now: what static/live.js swaps in when the core commits a change.
        return self._page("Now", '<main id="now">' + "".join(parts) + "</main>", session)

    def _open_order(self, row: OrderRow, quantity: int, session: Session) -> str:
        price = row.price.shown if row.price is not None else "price not known yet"
        shop_id = row.shop_order_id or "not at the shop yet"
        lines = [
            f'<div class="order" data-order="{_e(short_key(row.key))}">',
            f"<p><b>{_e(row.state.value)}</b>{' (cancel asked)' if row.cancel_requested else ''}"
            f" — {quantity} × {_e(row.sku)}, {_e(price)}; shop order {_e(shop_id)}</p>",
            f"<p>ordered {_e(rfc3339(row.created_at))} by {_e(row.device)} ({_e(row.trigger)})</p>",
        ]
        if not row.cancel_requested:
            lines.append(self._button(session, "cancel", row.key, "Cancel this order"))
        if row.state is OrderState.HELD and self.config.products[row.product].confirm:
            label = f"Confirm: place this paid order ({price})"
            lines.append(self._button(session, "confirm", row.key, label, paid=True))
        lines.append("</div>")
        return "".join(lines)

    def history_page(self, session: Session) -> str:
        since = self.clock.now() - HISTORY_DAYS * 86400.0
        rows = list(reversed(self.reader.orders_since(since)))
        body = [
            "<h1>History</h1><table><tr><th>when</th><th>product</th><th>trigger</th>"
            "<th>price</th><th>outcome</th></tr>"
        ]
        for r in rows:
            price = r.price.shown if r.price is not None else "—"
            body.append(
                f"<tr><td>{_e(rfc3339(r.created_at))}</td><td>{_e(r.product)}</td>"
                f"<td>{_e(r.device)} ({_e(r.trigger)})</td><td>{_e(price)}</td>"
                f"<td>{_e(r.state.value)}</td></tr>"
            )
        body.append("</table>" if rows else "</table><p>no orders in the last 90 days</p>")
        body.append(views.spending(self.config, rows, self.clock.now()))
        body.append(views.decisions(self.live.recent()))
        return self._page("History", "".join(body), session)

    def devices_page(self, session: Session) -> str:
        return self._page("Devices", views.devices(self.config, self.live.devices()), session)

    def health_page(self, session: Session) -> str:
        snapshot = self.reader.snapshot(self.clock.now())
        # Rejected is a final state: dead letters are looked for in the whole history.
        since = self.clock.now() - HISTORY_DAYS * 86400.0
        dead = [r for r in self.reader.orders_since(since) if r.state in _DEAD]
        body = [
            "<h1>Health</h1>",
            f"<p>queue: {snapshot.queue_depth} waiting to be sent</p>",
            "<h2>Dead letters</h2>",
        ]
        if not dead:
            body.append("<p>none</p>")
        for r in dead:
            body.append(
                f"<p>{_e(r.product)} {_e(short_key(r.key))}: {_e(r.state.value)} — "
                f"{_e(r.last_error or 'no reason given')}</p>"
                + self._button(session, "retry", r.key, "Retry")
            )
        return self._page("Health", "".join(body), session)

    def login_page(self, message: str = "") -> str:
        note = f"<p>{_e(message)}</p>" if message else ""
        return _document(
            "Log in",
            f"<h1>reorder-gateway</h1>{note}<form method=post action=/login>"
            "<label>Password <input type=password name=password autofocus></label> "
            "<button>Log in</button></form>",
        )

    def _button(
        self, session: Session, action: str, key: str, label: str, *, paid: bool = False
    ) -> str:
        css = ' class="paid"' if paid else ""
        return (
            f'<form method=post action="/{action}"><input type=hidden name=csrf '
            f'value="{_e(session.csrf)}"><input type=hidden name=key value="{_e(key)}">'
            f"<button{css}>{_e(label)}</button></form>"
        )

    def _page(self, title: str, body: str, session: Session) -> str:
        nav = (
            '<nav><a href="/">Now</a><a href="/history">History</a>'
            '<a href="/devices">Devices</a><a href="/health">Health</a></nav>'
            '<form method=post action="/logout"><input type=hidden name=csrf '
            f'value="{_e(session.csrf)}"><button>Log out</button></form>'
        )
        return _document(title, nav + body)


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _document(title: str, body: str) -> str:
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        f"<title>{_e(title)} — reorder-gateway</title><style>{_STYLE}</style></head>"
        f'<body>{body}<script src="/live.js" defer></script></body></html>'
    )


class _Handler(BaseHTTPRequestHandler):
    page: WebPage  # set on the subclass made per server
    server_version = "reorder-gateway"
    sys_version = ""

    def log_message(self, format: str, *args: object) -> None:
        log.debug("web: " + format, *args)

    def _token(self) -> str | None:
        cookie = http.cookies.SimpleCookie(self.headers.get("Cookie", ""))
        morsel = cookie.get(COOKIE)
        return morsel.value if morsel is not None else None

    def _send(self, status: HTTPStatus, body: str, headers: dict[str, str] | None = None) -> None:
        self._send_bytes(status, body.encode(), "text/html; charset=utf-8", headers)

    def _send_bytes(
        self,
        status: HTTPStatus,
        data: bytes,
        content_type: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self._common_headers()
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _common_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Frame-Options", "DENY")
        self.send_header("Content-Security-Policy", "default-src 'self'; style-src 'unsafe-inline'")

    def _events(self) -> None:
        """Server-sent events: one ``change`` per committed decision or reading."""
        client = self.page.live.subscribe()
        if client is None:
            log.warning("web: live stream refused: %d are open already", MAX_CLIENTS)
            self._send(
                HTTPStatus.SERVICE_UNAVAILABLE, "too many live pages open", {"Retry-After": "30"}
            )
            return
        try:
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", "text/event-stream")
            self._common_headers()
            self.end_headers()
            self.wfile.write(b"retry: 3000\n\n")
            self.wfile.flush()
            while True:
                try:
                    change = client.get(timeout=KEEPALIVE)
                except queue.Empty:
                    self.wfile.write(b": keepalive\n\n")
                    self.wfile.flush()
                    continue
                if change == CLOSED:
                    return
                self.wfile.write(f"event: change\ndata: {change}\n\n".encode())
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            log.debug("web: a live client went away")
        finally:
            self.page.live.unsubscribe(client)
            self.close_connection = True

    def _redirect(self, to: str, cookie: str | None = None) -> None:
        headers = {"Location": to}
        if cookie is not None:
            headers["Set-Cookie"] = cookie
        self._send(HTTPStatus.SEE_OTHER, "", headers)

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/login":
            self._send(HTTPStatus.OK, self.page.login_page())
            return
        if path == "/live.js":  # the same for everyone: no secret in it
            self._send_bytes(HTTPStatus.OK, _SCRIPT, "text/javascript; charset=utf-8")
            return
        session = self.page.session(self._token())
        if session is None:
            self._redirect("/login")
            return
        if path == "/events":
            self._events()
            return
        pages = {
            "/": self.page.now_page,
            "/history": self.page.history_page,
            "/devices": self.page.devices_page,
            "/health": self.page.health_page,
        }
        view = pages.get(path)
        if view is None:
            self._send(HTTPStatus.NOT_FOUND, _document("Not found", "<p>no such page</p>"))
            return
        self._send(HTTPStatus.OK, view(session))

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > _MAX_BODY:
            self._send(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "too large")
            return
        form = parse_qs(self.rfile.read(length).decode("utf-8", "replace"))
        field = {k: v[0] for k, v in form.items() if v}
        path = self.path.split("?", 1)[0]
        if path == "/login":
            self._login(field.get("password", ""))
            return
        session = self.page.session(self._token())
        if session is None or not session.csrf_ok(field.get("csrf")):
            self._send(HTTPStatus.FORBIDDEN, _document("Refused", "<p>refused: log in again</p>"))
            return
        if path == "/logout":
            self.page.sessions.close(session.token)
            self._redirect("/login", f"{COOKIE}=; Max-Age=0; Path=/; HttpOnly; SameSite=Strict")
            return
        key = field.get("key", "")
        if not key or not self.page.act(path.lstrip("/"), key):
            self._send(HTTPStatus.NOT_FOUND, _document("Not found", "<p>no such action</p>"))
            return
        self._redirect("/health" if path == "/retry" else "/")

    def _login(self, password: str) -> None:
        client = self.client_address[0]
        try:
            session, wait = self.page.login(client, password)
        except PasswordFileError:
            body = self.page.login_page(
                "no password is set yet: run 'reorder-gateway web-password' on the gateway"
            )
            self._send(HTTPStatus.SERVICE_UNAVAILABLE, body)
            return
        if session is None:
            if wait is not None:
                body = self.page.login_page(f"too many wrong passwords: wait {wait} s")
                self._send(HTTPStatus.TOO_MANY_REQUESTS, body, {"Retry-After": str(wait)})
            else:
                self._send(HTTPStatus.UNAUTHORIZED, self.page.login_page("wrong password"))
            return
        secure = "; Secure" if self.page.secure else ""
        self._redirect("/", f"{COOKIE}={session.token}; Path=/; HttpOnly; SameSite=Strict{secure}")


class NoWebServer:
    """Stands in when there is no ``web:`` section."""

    url: str | None = None

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def reconfigure(self, config: Config) -> None:
        pass


class WebServer:
    """The page's server thread. Binds when made (a taken port fails the build).

    >>> WebServer.__name__
    'WebServer'
    """

    url: str | None

    def __init__(self, page: WebPage, config: Config) -> None:
        self._page = page
        self._live = page.live
        web = config.web
        assert web is not None
        handler = type("Handler", (_Handler,), {"page": page})
        self._server = ThreadingHTTPServer((web.bind, web.port), handler)
        self._server.daemon_threads = True
        if web.certificate is not None and web.private_key is not None:
            from gateway.config.tls import web_tls_context

            context: ssl.SSLContext = web_tls_context(web.certificate, web.private_key)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        scheme = "https" if web.https else "http"
        self.url = f"{scheme}://{web.bind}:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="web", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def reconfigure(self, config: Config) -> None:
        """A reloaded config's products, buttons and sensors (the page reads its
        ``config`` per request; a swap of the reference is atomic). Its ``web:``
        section stays the running one: address and certificate are bound at start."""
        self._page.config = config

    def stop(self) -> None:
        self._live.close()  # ends the open /events streams
        # shutdown() waits for serve_forever, which never ran on a failed build.
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()
