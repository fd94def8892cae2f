"""What every HTTP-speaking backend shares: one request, its errors mapped to
:mod:`gateway.errors`, and those errors classified into results.

Backends differ in the requests they build and in how they read a success; a
failure is the same failure everywhere (a 503 is "try later" at any shop), so it is
classified here once.

>>> parse_retry_after("120", now=0.0)
120.0
"""

from __future__ import annotations

import email.utils
import json
import logging
import math
import ssl
from collections.abc import Callable
from datetime import UTC

import httpx

from gateway import __version__
from gateway.commerce.base import Blocked, Misconfigured, Probe, Rejected, Retry, Unclear
from gateway.config.models import ShopLink
from gateway.config.tls import shop_tls_context
from gateway.core.events import Price
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
_MAX_MESSAGE = 300

Failure = Retry | Blocked | Rejected | Unclear | Misconfigured
"""What a failed request is, whatever was asked: a place, a status or a cancel."""

WireError = TransportError | ShopStatusError | UnreadableResponseError | CommerceConfigError
"""Everything :func:`send` and the readers below raise; :func:`classify` takes each."""
WIRE_ERRORS = (TransportError, ShopStatusError, UnreadableResponseError, CommerceConfigError)


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


def tls_setting(verify_tls: bool, ca_file: str | None, section: str) -> bool | ssl.SSLContext:
    """httpx's ``verify`` for a shop section (``section`` names it in messages)."""
    if not verify_tls:
        log.warning("%s.verify_tls is false: the shop's certificate is NOT checked", section)
        return False
    if ca_file:
        # The same function `check` loads the file with, so that it never passes there
        # and fails here.
        try:
            return shop_tls_context(ca_file)
        except TlsFileError as exc:
            raise CommerceConfigError(f"cannot load {section}.ca_file: {exc}") from exc
    return True


def make_client(
    settings: ShopLink, setting: str, transport: httpx.BaseTransport | None
) -> httpx.Client:
    """The one HTTP client of a shop section: its timeouts and TLS, our User-Agent,
    no redirects followed (``setting`` names the section in messages)."""
    timeout, connect = settings.timeout, settings.connect_timeout
    return httpx.Client(
        timeout=httpx.Timeout(connect=connect, read=timeout, write=timeout, pool=timeout),
        verify=tls_setting(settings.verify_tls, settings.ca_file, setting),
        transport=transport,
        headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
        # A redirect on an order POST is a configuration problem, never followed.
        follow_redirects=False,
        # Proxy and CA settings come from the config file only, not the environment.
        trust_env=False,
    )


def send(
    client: httpx.Client,
    method: str,
    url: str,
    path: str,
    *,
    headers: dict[str, str],
    body: bytes | None,
    wall_clock: Callable[[], float],
) -> httpx.Response:
    """One request; a success is returned, everything else raised as a WireError.
    ``path`` is what messages name (never the host: it may carry a token)."""
    request = client.build_request(method, url, content=body, headers=headers)
    try:
        # Streamed, so that a status line followed by a cut-off body is told apart
        # from no answer at all: the shop answered, we just could not read it.
        response = client.send(request, stream=True)
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
    raise _status_error(response, wall_clock)


def _status_error(response: httpx.Response, wall_clock: Callable[[], float]) -> ShopStatusError:
    status = response.status_code
    code, message = _error_body(response)
    if status in (401, 403):
        return NotAuthorizedError(status, message, code)
    if status in _RETRYABLE or status >= 500:
        retry_after = parse_retry_after(
            response.headers.get("Retry-After"),
            now=wall_clock(),
            server_date=response.headers.get("Date"),
        )
        return ShopBusyError(status, message, code, retry_after)
    if response.is_redirect or status < 400:
        target = response.headers.get("Location", "?")
        return ShopRedirectError(status, f"HTTP {status} redirect to {target}", code)
    return RequestRefusedError(status, message, code)


def classify(exc: WireError, *, url_setting: str = "commerce.base_url") -> Failure:
    """A failure as the retry policy's vocabulary; ``url_setting`` is the key a
    redirect says to fix."""
    if isinstance(exc, ShopRedirectError):
        # Never followed and never retried as if the shop were busy: the URL is wrong.
        return Misconfigured(f"the shop answered {exc.message} — check {url_setting}")
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


def probe_outcome(call: Callable[[], object]) -> Probe:
    """Run a probe request (``call`` raises WireErrors as :func:`send` does) and say
    what it found: any HTTP answer is reachable — a 5xx too, the shop is there; 401 or
    403 is reachable but refused; no answer is unreachable.

    >>> probe_outcome(lambda: None)
    Probe(reachable=True, reason='', refused=False)
    """
    try:
        call()
    except NotAuthorizedError as exc:
        return Probe(True, str(exc), refused=True)
    except CommerceConfigError as exc:
        # No token to send (a token file gone): nothing was asked.
        return Probe(None, str(exc))
    except TransportError as exc:
        return Probe(False, str(exc))
    except (ShopStatusError, UnreadableResponseError) as exc:
        return Probe(True, str(exc))
    return Probe(True)


def snippet(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _MAX_MESSAGE else flat[:_MAX_MESSAGE] + "…"


def json_object(response: httpx.Response) -> dict[str, object]:
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


def price_from(document: dict[str, object]) -> Price | None:
    """The price a shop put in its answer (``currency``, ``total_cents`` and perhaps
    ``unit_price_cents``), or None: a price is shown when given, never required.

    >>> price_from({"currency": "EUR", "total_cents": 2798, "unit_price_cents": 1399})
    Price(currency='EUR', total_minor=2798, unit_minor=1399)
    >>> price_from({"total_cents": "lots"}) is None
    True
    """
    currency, total, unit = (
        document.get("currency"),
        document.get("total_cents"),
        document.get("unit_price_cents"),
    )
    if not isinstance(currency, str) or not 1 <= len(currency) <= 8 or not _whole(total):
        return None
    assert isinstance(total, int)
    return Price(currency, total, unit if _whole(unit) and isinstance(unit, int) else None)


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


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
            snippet(message) if isinstance(message, str) else response.reason_phrase,
        )
    text = response.text if response.content else ""
    return None, snippet(text) if text and "<" not in text[:1] else response.reason_phrase
