"""A product with a ``confirm_window``: held, then sent — or cancelled inside it.

The core decides when the window is over (a due-time wake-up, then ReleaseHeld);
these run the real gateway against the real shop, including a kill -9 inside the
window: the held order is released after the restart, exactly once.
"""

from __future__ import annotations

import json
import time

import pytest

from tests.e2e.conftest import MakeGateway, MakeShop, assert_exactly_once
from tests.support.gateway import GatewayProcess, press_payload
from tests.support.publisher import Publisher, wait_until
from tests.support.shop import ShopProcess

pytestmark = pytest.mark.e2e

WINDOW = 2.0
HELD = {
    "products": {
        "detergent": {"sku": "TIDE-PODS-42", "one_open_order": False, "confirm_window": "2s"}
    }
}


def outcome_of(gw: GatewayProcess, event_id: str) -> str | None:
    for event in gw.events.items:
        if event.get("event_id") == event_id and event.get("outcome") != "order_status":
            return str(event.get("outcome"))
    return None


def held_gateway(
    make_shop: MakeShop, make_gateway: MakeGateway
) -> tuple[ShopProcess, GatewayProcess]:
    shop = make_shop()
    gw = make_gateway(HELD, shop=shop).start()
    gw.wait_ready()
    return shop, gw


def test_a_held_order_is_sent_when_its_window_ends(
    broker: object, make_shop: MakeShop, make_gateway: MakeGateway
) -> None:
    shop, gw = held_gateway(make_shop, make_gateway)
    with Publisher(gw.broker_url) as button:
        pressed = time.monotonic()
        button.publish(gw.button_topic, press_payload("h1", 1))
    wait_until(lambda: outcome_of(gw, "h1") == "held", 10.0, "the press is held")
    assert shop.orders() == [], "nothing reaches the shop inside the window"
    assert_exactly_once(shop, gw, ["h1"], timeout=15.0)
    assert time.monotonic() - pressed >= WINDOW


def test_a_long_press_inside_the_window_cancels_without_the_shop(
    broker: object, make_shop: MakeShop, make_gateway: MakeGateway
) -> None:
    shop, gw = held_gateway(make_shop, make_gateway)
    with Publisher(gw.broker_url) as button:
        button.publish(gw.button_topic, press_payload("h2", 1))
        wait_until(lambda: outcome_of(gw, "h2") == "held", 10.0, "the press is held")
        hold = json.dumps({"event": "hold", "id": "h2-cancel", "seq": 2}).encode()
        button.publish(gw.button_topic, hold)
    gw.events.wait_for(
        lambda events: any(e.get("state") == "cancelled" for e in events), timeout=10.0
    )
    time.sleep(WINDOW + 1.0)  # past the window: a release now would be a bug
    assert shop.orders() == []
    assert shop.stats()["post_attempts"] == 0


def test_a_held_order_survives_a_kill_inside_its_window(
    broker: object, make_shop: MakeShop, make_gateway: MakeGateway
) -> None:
    shop, gw = held_gateway(make_shop, make_gateway)
    with Publisher(gw.broker_url) as button:
        button.publish(gw.button_topic, press_payload("h3", 1))
    wait_until(lambda: outcome_of(gw, "h3") == "held", 10.0, "the press is held")
    gw.kill()
    gw.restart().wait_ready()
    assert_exactly_once(shop, gw, ["h3"], timeout=15.0)
