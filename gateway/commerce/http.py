"""The Reorder API over HTTPS (httpx): see docs/commerce-api.md.

Errors are mapped to :mod:`gateway.errors` right where httpx raises them,
then classified into results; nothing httpx-specific leaves this module.

>>> from gateway.config.models import CommerceSection
>>> shop = HttpCommerce(CommerceSection(base_url="https://shop.example/api/v1", token="t"))
>>> shop.base_url
'https://shop.example/api/v1'
>>> shop.close()
"""

from __future__ import annotations

import email.utils
import json
import logging
import math
import ssl
import threading
from collections.abc import Callable
from datetime import UTC
from pathlib import Path

import httpx

from gateway import __version__
from gateway.clock import RealClock
from gateway.commerce.base import (
    Accepted,
    Blocked,
    Cancelled,
    CancelResult,
    Misconfigured,
    PlaceResult,
    Rejected,
    Retry,
    Status,
    StatusResult,
    TooLate,
    Unclear,
    build_body,
)
from gateway.config.models import CommerceSection
from gateway.config.tls import shop_tls_context
from gateway.core.events import OrderState, PlaceOrder
from gateway.errors import (
    CommerceConfigError,
    ConnectionDroppedError,
    NotAuthorizedError,
    RequestRefusedError,
    ShopBusyError,
    ShopRedirectError,
    ShopStatusError,
    ShopTimeoutError,
    ShopUnreachableError,
    TlsFileError,
    TransportError,
    UnreadableResponseError,
)

log = logging.getLogger(__name__)

MAX_RETRY_AFTER = 900.0
"""A shop asking us to wait longer than 15 minutes is capped: we ask again then."""

USER_AGENT = f"reorder-gateway/{__version__}"
_RETRYABLE = frozenset({408, 409, 425, 429})
_SHOP_STATES = {
    "accepted": OrderState.ACCEPTED,
    "shipped": OrderState.SHIPPED,
    "delivered": OrderState.DELIVERED,
    "cancelled": OrderState.CANCELLED,
}
_MAX_MESSAGE = 300


def parse_retry_after(
    value: str | None, *, now: float, server_date: str | None = None
) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delay-seconds or HTTP-date),
    clamped to ``[0, MAX_RETRY_AFTER]``; None if absent or unreadable.

    An HTTP-date is measured against the response's own ``Date`` header when there
    is one, so a skewed clock on either side does not distort the wait.

    >>> parse_retry_after("120", now=0.0)
    120.0
    >>> parse_retry_after("86400", now=0.0)
    900.0
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        when = _http_date(text)
        if when is None:
            return None
        reference = _http_date(server_date) if server_date else None
        seconds = when - (reference if reference is not None else now)
    if not math.isfinite(seconds):
        return None
    return min(max(0.0, seconds), MAX_RETRY_AFTER)


def _http_date(text: str) -> float | None:
    try:
        parsed = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


class _Token:
    """The bearer token, from the config or a file re-read when it changes, so that
    fixing a wrong token on disk unblocks the gateway without a restart."""

    def __init__(self, settings: CommerceSection) -> None:
        self._fixed = settings.token.get_secret_value() if settings.token else None
        self._file = Path(settings.token_file) if settings.token_file else None
        self._cached: tuple[float, str] | None = None
        self._lock = threading.Lock()

    def value(self) -> str | None:
        if self._file is None:
            return self._fixed
        with self._lock:
            try:
                mtime = self._file.stat().st_mtime_ns
                if self._cached is None or self._cached[0] != mtime:
                    self._cached = (mtime, self._file.read_text(encoding="utf-8").strip())
            except (OSError, UnicodeDecodeError) as exc:
                raise CommerceConfigError(
                    f"cannot read commerce.token_file {self._file}: {exc.__class__.__name__}"
                ) from exc
            return self._cached[1]


def _tls(settings: CommerceSection) -> bool | ssl.SSLContext:
    if not settings.verify_tls:
        log.warning("commerce.verify_tls is false: the shop's certificate is NOT checked")
        return False
    if settings.ca_file:
        # The same function `check` loads the file with, so that it never passes there
        # and fails here.
        try:
            return shop_tls_context(settings.ca_file)
        except TlsFileError as exc:
            raise CommerceConfigError(f"cannot load commerce.ca_file: {exc}") from exc
    return True


class HttpCommerce:
    """The Reorder API client.

    ``transport`` replaces the network (tests use ``httpx.MockTransport`` for
    wire cases a real server cannot produce); ``wall_clock`` is the time used to
    turn an HTTP-date Retry-After into seconds when the answer has no Date header —
    the machine's, whatever the gateway's clock: an HTTP date is real time.

    >>> from gateway.config.models import CommerceSection
    >>> s = CommerceSection(base_url="http://127.0.0.1:1/api/v1", token="t", connect_timeout="1s")
    >>> with HttpCommerce(s) as shop:
    ...     shop.get_order("ord_1").unreachable
    True
    """

    def __init__(
        self,
        settings: CommerceSection,
        *,
        transport: httpx.BaseTransport | None = None,
        wall_clock: Callable[[], float] | None = None,
    ) -> None:
        url = httpx.URL(settings.base_url)
        if url.scheme not in ("http", "https") or not url.host:
            raise CommerceConfigError(
                f"commerce.base_url must be an http(s) URL such as "
                f"https://shop.example/api/v1, not {settings.base_url!r}"
            )
        self.base_url = settings.base_url.rstrip("/")
        self._token = _Token(settings)
        self._wall_clock = wall_clock or RealClock().now
        self._client = httpx.Client(
            timeout=httpx.Timeout(
                connect=settings.connect_timeout,
                read=settings.timeout,
                write=settings.timeout,
                pool=settings.timeout,
            ),
            verify=_tls(settings),
            transport=transport,
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
            # A redirect on POST /orders is a configuration problem, never followed.
            follow_redirects=False,
            # Proxy and CA settings come from the config file only, not the environment.
            trust_env=False,
        )

    def __enter__(self) -> HttpCommerce:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    # ------------------------------------------------------------------ the API

    def place_order(self, intent: PlaceOrder) -> PlaceResult:
        try:
            response = self._send("POST", "/orders", key=intent.key, body=build_body(intent))
            document = _json_object(response)
            return Accepted(
                shop_order_id=_order_id(document),
                replayed=response.headers.get("Idempotent-Replayed", "").lower() == "true",
            )
        except (TransportError, ShopStatusError, UnreadableResponseError, CommerceConfigError) as e:
            return _classify(e)

    def get_order(self, shop_order_id: str) -> StatusResult:
        try:
            response = self._send("GET", f"/orders/{_path_id(shop_order_id)}")
            document = _json_object(response)
            status = document.get("status")
            if not isinstance(status, str) or status not in _SHOP_STATES:
                raise UnreadableResponseError(f"unknown order status {status!r}")
            return Status(shop_order_id=shop_order_id, state=_SHOP_STATES[status])
        except (TransportError, ShopStatusError, UnreadableResponseError, CommerceConfigError) as e:
            return _classify(e)

    def cancel_order(self, shop_order_id: str) -> CancelResult:
        try:
            response = self._send("POST", f"/orders/{_path_id(shop_order_id)}/cancel", body=b"{}")
            status = _json_object(response).get("status")
            if status != "cancelled":
                raise UnreadableResponseError(f"cancel answered with status {status!r}")
            return Cancelled()
        except ShopBusyError as exc:
            if exc.status == 409:
                return TooLate(exc.message)
            return _classify(exc)
        except (TransportError, ShopStatusError, UnreadableResponseError, CommerceConfigError) as e:
            return _classify(e)

    # ------------------------------------------------------------------ wire

    def _send(
        self, method: str, path: str, *, key: str | None = None, body: bytes | None = None
    ) -> httpx.Response:
        headers = {}
        token = self._token.value()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if key is not None:
            headers["Idempotency-Key"] = key
        if body is not None:
            headers["Content-Type"] = "application/json"
        request = self._client.build_request(
            method, self.base_url + path, content=body, headers=headers
        )
        try:
            # Streamed, so that a status line followed by a cut-off body is told apart
            # from no answer at all: the shop answered, we just could not read it.
            response = self._client.send(request, stream=True)
        except httpx.ConnectTimeout as exc:
            raise ShopUnreachableError(f"{method} {path}: connect timed out") from exc
        except httpx.ConnectError as exc:
            raise ShopUnreachableError(f"{method} {path}: cannot connect ({exc})") from exc
        except httpx.TimeoutException as exc:
            raise ShopTimeoutError(f"{method} {path}: no answer in time") from exc
        except (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError) as exc:
            raise ConnectionDroppedError(f"{method} {path}: connection dropped ({exc})") from exc
        except httpx.TransportError as exc:
            raise ShopUnreachableError(f"{method} {path}: {exc.__class__.__name__}") from exc
        try:
            response.read()
        except (httpx.TimeoutException, httpx.ReadError, httpx.RemoteProtocolError) as exc:
            if response.is_success:
                raise UnreadableResponseError(
                    f"HTTP {response.status_code} with a body cut off ({exc.__class__.__name__})"
                ) from exc
            raise ConnectionDroppedError(f"{method} {path}: answer cut off ({exc})") from exc
        finally:
            response.close()
        log.debug("%s %s -> %s", method, path, response.status_code)
        if response.is_success:
            return response
        raise self._status_error(response)

    def _status_error(self, response: httpx.Response) -> ShopStatusError:
        status = response.status_code
        code, message = _error_body(response)
        if status in (401, 403):
            return NotAuthorizedError(status, message, code)
        if status in _RETRYABLE or status >= 500:
            retry_after = parse_retry_after(
                response.headers.get("Retry-After"),
                now=self._wall_clock(),
                server_date=response.headers.get("Date"),
            )
            return ShopBusyError(status, message, code, retry_after)
        if response.is_redirect or status < 400:
            target = response.headers.get("Location", "?")
            return ShopRedirectError(status, f"HTTP {status} redirect to {target}", code)
        return RequestRefusedError(status, message, code)


def _classify(
    exc: TransportError | ShopStatusError | UnreadableResponseError | CommerceConfigError,
) -> Retry | Blocked | Rejected | Unclear | Misconfigured:
    if isinstance(exc, ShopRedirectError):
        # Never followed and never retried as if the shop were busy: base_url is wrong.
        return Misconfigured(f"the shop answered {exc.message} — check commerce.base_url")
    if isinstance(exc, ShopTimeoutError | ConnectionDroppedError):
        return Retry(str(exc), answer_lost=True)
    if isinstance(exc, TransportError):
        return Retry(str(exc), unreachable=True)
    if isinstance(exc, ShopBusyError):
        return Retry(str(exc), after=exc.retry_after)
    if isinstance(exc, NotAuthorizedError | CommerceConfigError):
        return Blocked(str(exc))
    if isinstance(exc, RequestRefusedError):
        return Rejected(str(exc))
    if isinstance(exc, UnreadableResponseError):
        return Unclear(str(exc))
    return Rejected(str(exc))


def _path_id(shop_order_id: str) -> str:
    # The id comes from the shop; it must not be able to change the path we call.
    if not shop_order_id or any(ch in shop_order_id for ch in "/?#%\\") or ".." in shop_order_id:
        raise UnreadableResponseError(f"unusable shop order id {shop_order_id!r}")
    return shop_order_id


def _snippet(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _MAX_MESSAGE else flat[:_MAX_MESSAGE] + "…"


def _json_object(response: httpx.Response) -> dict[str, object]:
    try:
        document = json.loads(response.content)
    except (ValueError, UnicodeDecodeError) as exc:
        kind = response.headers.get("Content-Type", "no content type")
        raise UnreadableResponseError(
            f"HTTP {response.status_code} with a body that is not JSON ({kind}, "
            f"{len(response.content)} bytes)"
        ) from exc
    if not isinstance(document, dict):
        raise UnreadableResponseError(f"HTTP {response.status_code}: expected a JSON object")
    return document


def _order_id(document: dict[str, object]) -> str:
    order_id = document.get("id")
    if not isinstance(order_id, str) or not order_id.strip():
        raise UnreadableResponseError("the shop accepted but sent no order id")
    return order_id


def _error_body(response: httpx.Response) -> tuple[str | None, str]:
    try:
        document = json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        document = None
    if isinstance(document, dict) and isinstance(document.get("error"), dict):
        error = document["error"]
        code = error.get("code")
        message = error.get("message")
        return (
            code if isinstance(code, str) else None,
            _snippet(message) if isinstance(message, str) else response.reason_phrase,
        )
    text = response.text if response.content else ""
    return None, _snippet(text) if text and "<" not in text[:1] else response.reason_phrase
