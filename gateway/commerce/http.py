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

import logging
from collections.abc import Callable

import httpx

from gateway.clock import RealClock
from gateway.commerce.base import (
    Accepted,
    Cancelled,
    CancelResult,
    Guarantee,
    PlaceResult,
    Probe,
    Status,
    StatusResult,
    TooLate,
    build_body,
)
from gateway.commerce.credentials import Credential
from gateway.commerce.wire import (
    MAX_RETRY_AFTER,
    USER_AGENT,
    WIRE_ERRORS,
    Failure,
    WireError,
    classify,
    json_object,
    make_client,
    parse_retry_after,
    price_from,
    probe_outcome,
    send,
)
from gateway.config.models import CommerceSection
from gateway.core.events import OrderState, PlaceOrder
from gateway.errors import CommerceConfigError, ShopBusyError, UnreadableResponseError

__all__ = ["MAX_RETRY_AFTER", "PROBE_SKU", "USER_AGENT", "HttpCommerce", "parse_retry_after"]

PROBE_SKU = "reorder-gateway-probe"
"""The SKU the probe lists orders of: no shop sells it, so the answer is small."""

log = logging.getLogger(__name__)

_SHOP_STATES = {
    "accepted": OrderState.ACCEPTED,
    "shipped": OrderState.SHIPPED,
    "delivered": OrderState.DELIVERED,
    "cancelled": OrderState.CANCELLED,
}


class HttpCommerce:
    """The Reorder API client: the shop's own ``Idempotency-Key`` makes a retry safe.

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
        setting: str = "commerce",
    ) -> None:
        url = httpx.URL(settings.base_url)
        if url.scheme not in ("http", "https") or not url.host:
            raise CommerceConfigError(
                f"commerce.base_url must be an http(s) URL such as "
                f"https://shop.example/api/v1, not {settings.base_url!r}"
            )
        self.base_url = settings.base_url.rstrip("/")
        self._token = Credential(
            settings.token, settings.token_file, setting=setting, key="token", required=False
        )
        self._wall_clock = wall_clock or RealClock().now
        self._setting = setting
        self._client = make_client(settings, setting, transport)

    def __enter__(self) -> HttpCommerce:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    guarantee = Guarantee.NATIVE_KEYS

    def close(self) -> None:
        self._client.close()

    # ------------------------------------------------------------------ the API

    def place_order(self, intent: PlaceOrder) -> PlaceResult:
        try:
            response = self._send("POST", "/orders", key=intent.key, body=build_body(intent))
            document = json_object(response)
            return Accepted(
                shop_order_id=_order_id(document),
                replayed=response.headers.get("Idempotent-Replayed", "").lower() == "true",
                price=price_from(document),
            )
        except WIRE_ERRORS as e:
            return self._classify(e)

    def get_order(self, shop_order_id: str) -> StatusResult:
        try:
            response = self._send("GET", f"/orders/{_path_id(shop_order_id)}")
            document = json_object(response)
            status = document.get("status")
            if not isinstance(status, str) or status not in _SHOP_STATES:
                raise UnreadableResponseError(f"unknown order status {status!r}")
            return Status(shop_order_id=shop_order_id, state=_SHOP_STATES[status])
        except WIRE_ERRORS as e:
            return self._classify(e)

    def cancel_order(self, shop_order_id: str) -> CancelResult:
        try:
            response = self._send("POST", f"/orders/{_path_id(shop_order_id)}/cancel", body=b"{}")
            status = json_object(response).get("status")
            if status != "cancelled":
                raise UnreadableResponseError(f"cancel answered with status {status!r}")
            return Cancelled()
        except ShopBusyError as exc:
            if exc.status == 409:
                return TooLate(exc.message)
            return self._classify(exc)
        except WIRE_ERRORS as e:
            return self._classify(e)

    def probe(self) -> Probe:
        """The order list filtered on a SKU no product has (``GET /orders?sku=``): a
        read the API already has, with our token, that changes nothing and answers
        an empty list."""
        return probe_outcome(lambda: self._send("GET", f"/orders?sku={PROBE_SKU}"))

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
        return send(
            self._client,
            method,
            self.base_url + path,
            path,
            headers=headers,
            body=body,
            wall_clock=self._wall_clock,
        )

    def _classify(self, exc: WireError) -> Failure:
        return classify(exc, url_setting=f"{self._setting}.base_url")


def _path_id(shop_order_id: str) -> str:
    # The id comes from the shop; it must not be able to change the path we call.
    if not shop_order_id or any(ch in shop_order_id for ch in "/?#%\\") or ".." in shop_order_id:
        raise UnreadableResponseError(f"unusable shop order id {shop_order_id!r}")
    return shop_order_id


def _order_id(document: dict[str, object]) -> str:
    order_id = document.get("id")
    if not isinstance(order_id, str) or not order_id.strip():
        raise UnreadableResponseError("the shop accepted but sent no order id")
    return order_id
