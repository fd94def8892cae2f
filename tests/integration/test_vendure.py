"""The vendure backend against a real Vendure (tests/support/vendure.py): every step,
the lookup that resumes a half-way order, a lost answer, refusals and cancels.

A crash is simulated on the wire: the backend's k-th request either never reaches
Vendure (the gateway died before sending it) or reaches it and its answer is lost (the
gateway died while waiting). A fresh backend then retries with the same key, as the
outbox does after a restart; Vendure must hold exactly one order for it, paid.
"""

from __future__ import annotations

import itertools

import httpx
import pytest

from gateway.commerce.base import Accepted, Blocked, Cancelled, Rejected, Retry, Status, TooLate
from gateway.commerce.vendure import VendureCommerce
from gateway.core.events import OrderState, PlaceOrder
from tests.support.vendure import VendureServer

_KEYS = itertools.count()
STEPS = 15  # requests a place_order sends for a known customer (login, lookups included)


def intent(sku: str = "LAVAZZA-1KG", quantity: int = 2) -> PlaceOrder:
    n = next(_KEYS)
    return PlaceOrder(
        key=f"rg1_vendure_{n}",
        product="coffee",
        sku=sku,
        quantity=quantity,
        device="kitchen",
        trigger="press",
        event_id=f"ev-{n}",
        created_at=1767225600.0,
        gateway="test-gateway",
    )


class CrashAt(httpx.BaseTransport):
    """The real transport until request ``k``: that one is not sent ("before") or its
    answer is dropped after Vendure acted on it ("answer")."""

    def __init__(self, k: int, how: str) -> None:
        self.k, self.how, self.sent = k, how, 0
        self._real = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.sent += 1
        if self.sent == self.k:
            if self.how == "before":
                raise httpx.ConnectError("the gateway died before sending", request=request)
            response = self._real.handle_request(request)
            response.read()
            response.close()
            raise httpx.ReadTimeout("the gateway died waiting for the answer", request=request)
        return self._real.handle_request(request)

    def close(self) -> None:
        self._real.close()


def state_of(vendure: VendureServer, key: str) -> list[str]:
    return [o["state"] for o in vendure.orders() if o["customFields"]["gatewayKey"] == key]


def test_an_order_is_placed_paid_and_priced_in_minor_units(vendure: VendureServer) -> None:
    order = intent(quantity=2)
    with_backend = VendureCommerce(vendure.section())
    try:
        result = with_backend.place_order(order)
    finally:
        with_backend.close()
    assert isinstance(result, Accepted), result
    assert not result.replayed
    assert result.price is not None
    assert (result.price.currency, result.price.total_minor, result.price.unit_minor) == (
        "EUR",
        3698,
        1849,
    )
    assert state_of(vendure, order.key) == ["PaymentSettled"]


# Vendure's state after a crash before request k is that after a lost answer at k - 1:
# the lost answers cover every state, the first request is also not sent at all.
CRASHES = [(1, "before")] + [(k, "answer") for k in range(1, STEPS + 1)]


@pytest.mark.parametrize(("k", "how"), CRASHES)
def test_a_crash_at_any_step_is_resumed_into_one_order(
    vendure: VendureServer, k: int, how: str
) -> None:
    order = intent()
    crashing = VendureCommerce(vendure.section(), transport=CrashAt(k, how))
    try:
        first = crashing.place_order(order)
    finally:
        crashing.close()
    assert isinstance(first, Retry), first
    fresh = VendureCommerce(vendure.section())
    try:
        again = fresh.place_order(order)
        twice = fresh.place_order(order)
    finally:
        fresh.close()
    assert isinstance(again, Accepted), again
    assert isinstance(twice, Accepted) and twice.replayed
    assert twice.shop_order_id == again.shop_order_id
    assert state_of(vendure, order.key) == ["PaymentSettled"]
    assert again.price is not None and again.price.total_minor == 3698


def test_every_step_was_crashed_at(vendure: VendureServer) -> None:
    """STEPS counts the requests of a whole place_order (the customer exists by now, the
    first test made it): a crash at STEPS + 1 is none, so the crashes cover all."""
    transport = CrashAt(STEPS + 1, "before")
    backend = VendureCommerce(vendure.section(), transport=transport)
    try:
        assert isinstance(backend.place_order(intent()), Accepted)
    finally:
        backend.close()
    assert transport.sent == STEPS


def test_out_of_stock_is_rejected_and_leaves_no_paid_order(vendure: VendureServer) -> None:
    order = intent(sku="TEA-SOLDOUT", quantity=1)
    backend = VendureCommerce(vendure.section())
    try:
        result = backend.place_order(order)
    finally:
        backend.close()
    assert isinstance(result, Rejected) and "INSUFFICIENT_STOCK" in result.reason
    assert state_of(vendure, order.key) == ["Draft"]


def test_an_unknown_sku_is_rejected(vendure: VendureServer) -> None:
    backend = VendureCommerce(vendure.section())
    try:
        result = backend.place_order(intent(sku="NO-SUCH-SKU"))
    finally:
        backend.close()
    assert isinstance(result, Rejected) and "NO-SUCH-SKU" in result.reason


def test_wrong_credentials_are_blocked(vendure: VendureServer) -> None:
    order = intent()
    backend = VendureCommerce(vendure.section(admin_password="not-the-password"))
    try:
        result = backend.place_order(order)
        status = backend.get_order("NOPE")
    finally:
        backend.close()
    assert isinstance(result, Blocked), result
    assert isinstance(status, Blocked), status
    assert state_of(vendure, order.key) == []


def test_a_wrong_shipping_method_is_rejected_naming_the_setting(vendure: VendureServer) -> None:
    backend = VendureCommerce(vendure.section(shipping_method="by-drone"), setting="shops.v")
    try:
        result = backend.place_order(intent())
    finally:
        backend.close()
    assert isinstance(result, Rejected)
    assert "shops.v.shipping_method" in result.reason and "standard-shipping" in result.reason


def test_status_follows_the_shop_and_cancel_cancels(vendure: VendureServer) -> None:
    backend = VendureCommerce(vendure.section())
    try:
        placed = backend.place_order(intent())
        assert isinstance(placed, Accepted)
        assert backend.get_order(placed.shop_order_id) == Status(
            placed.shop_order_id, OrderState.ACCEPTED
        )
        assert isinstance(backend.cancel_order(placed.shop_order_id), Cancelled)
        assert backend.get_order(placed.shop_order_id) == Status(
            placed.shop_order_id, OrderState.CANCELLED
        )
        again = backend.cancel_order(placed.shop_order_id)
        assert isinstance(again, TooLate), again
        assert isinstance(backend.get_order("NO-SUCH-ORDER"), Rejected)
    finally:
        backend.close()


def test_an_outage_is_retried_then_ordered_once(vendure: VendureServer) -> None:
    order = intent()
    backend = VendureCommerce(vendure.section(connect_timeout="1s"))
    try:
        vendure.stop()
        try:
            down = backend.place_order(order)
        finally:
            vendure.start()
        assert isinstance(down, Retry) and down.unreachable, down
        assert isinstance(backend.place_order(order), Accepted)
    finally:
        backend.close()
    assert state_of(vendure, order.key) == ["PaymentSettled"]


def test_the_probe_asks_the_admin_api_without_logging_in(vendure: VendureServer) -> None:
    # Wrong credentials: the probe needs none, so it still finds Vendure there.
    backend = VendureCommerce(vendure.section(admin_password="not-the-password"))
    down = VendureCommerce(vendure.section(admin_api_url="http://127.0.0.1:9/admin-api"))
    try:
        found, gone = backend.probe(), down.probe()
    finally:
        backend.close()
        down.close()
    assert (found.reachable, found.refused) == (True, False), found
    assert gone.reachable is False, gone
