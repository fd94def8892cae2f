"""Errors raised inside the commerce adapters.

Adapters map lower-level exceptions (httpx, ssl, OSError) to these at the boundary
with ``raise ... from exc``, then classify them into results (see
:mod:`gateway.commerce.base`) — the sender never sees an httpx exception.

Exception tree::

    CommerceError
    ├── CommerceConfigError         base_url, token file or CA file cannot be used
    ├── TransportError              no HTTP answer at all; the shop counts as unreachable
    │   ├── ShopUnreachableError    connection refused, DNS, TLS handshake, connect timeout
    │   ├── ShopTimeoutError        connected, but no (complete) answer in time
    │   └── ConnectionDroppedError  the connection broke mid-exchange (answer lost)
    ├── ShopStatusError             the shop answered with an error status
    │   ├── ShopBusyError           408, 409, 429, 5xx: try again later (retry_after)
    │   ├── NotAuthorizedError      401, 403: credentials are wrong; try again slowly
    │   ├── ShopRedirectError       3xx: base_url points at the wrong place (never followed)
    │   └── RequestRefusedError     400, 404, 422 and other 4xx: never going to work
    └── UnreadableResponseError     a success status whose body we cannot use

>>> issubclass(ShopTimeoutError, TransportError)
True
"""

from __future__ import annotations


class CommerceError(Exception):
    """Something went wrong talking to the shop (base class)."""


class CommerceConfigError(CommerceError):
    """The commerce settings cannot be used (missing token file, bad CA file...)."""


class TransportError(CommerceError):
    """No HTTP answer arrived."""


class ShopUnreachableError(TransportError):
    """The connection could not be made."""


class ShopTimeoutError(TransportError):
    """The shop did not answer within the configured timeout."""


class ConnectionDroppedError(TransportError):
    """The connection broke before the whole answer arrived."""


class ShopStatusError(CommerceError):
    """The shop answered with an error status.

    ``message`` is the shop's own ``error.message`` when it sent one.
    """

    def __init__(
        self, status: int, message: str, code: str | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message
        self.code = code
        self.retry_after = retry_after


class ShopBusyError(ShopStatusError):
    """A temporary refusal: overloaded, rate limited, or the same key still in progress."""


class NotAuthorizedError(ShopStatusError):
    """The token was refused."""


class ShopRedirectError(ShopStatusError):
    """The shop redirected us: a configuration problem, never followed or retried fast."""


class RequestRefusedError(ShopStatusError):
    """The request itself is wrong (unknown SKU, invalid body, key reused)."""


class UnreadableResponseError(CommerceError):
    """A success status with a body we cannot read (HTML, truncated, no order id)."""
