"""Consent before paying and phone notifications, with the real gateway, broker and shop.

The phones are a local HTTP endpoint receiving apprise's ``json://`` pushes; an
unreachable one is a closed loopback port.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.e2e.conftest import MakeGateway, MakeShop, assert_exactly_once
from tests.support.gateway import GatewayProcess, press_payload
from tests.support.publisher import Publisher, wait_until
from tests.support.receiver import PushReceiver, closed_port

pytestmark = pytest.mark.e2e


def consent(expires: str = "1h", **notify: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "products": {
            "detergent": {"sku": "TIDE-PODS-42", "confirm": True, "confirm_expires": expires}
        }
    }
    if notify:
        config["notify"] = notify
    return config


def outcome_of(gw: GatewayProcess, event_id: str) -> str | None:
    for event in gw.events.items:
        if event.get("event_id") == event_id and event.get("outcome") != "order_status":
            return str(event.get("outcome"))
    return None


def has_outcome(gw: GatewayProcess, outcome: str) -> bool:
    return any(e.get("outcome") == outcome for e in gw.events.items)


def test_a_held_order_goes_to_the_shop_only_after_a_second_press(
    broker: object, make_shop: MakeShop, make_gateway: MakeGateway
) -> None:
    shop = make_shop()
    with PushReceiver() as phone:
        gw = make_gateway(consent(urls=phone.apprise_url), shop=shop).start()
        gw.wait_ready()
        with Publisher(gw.broker_url) as button:
            button.publish(gw.button_topic, press_payload("c1", 1))
            wait_until(lambda: outcome_of(gw, "c1") == "held", 10.0, "the press is held")
            ask = phone.wait_for(lambda m: m["title"].startswith("Confirm:"))
            assert "paid order" in ask["body"] and "Price:" in ask["body"]
            time.sleep(1.0)
            assert shop.orders() == [], "nothing reaches the shop without a yes"
            button.publish(gw.button_topic, press_payload("c2", 2))
        wait_until(lambda: has_outcome(gw, "confirmed"), 10.0, "the second press confirms")
        assert_exactly_once(shop, gw, ["c1"], timeout=15.0)
        ordered = phone.wait_for(lambda m: m["title"].startswith("Ordered:"))
        assert "1 × detergent" in ordered["title"] and "paid order" in ordered["body"]


def test_an_unconfirmed_order_expires_and_nothing_is_ordered(
    broker: object, make_shop: MakeShop, make_gateway: MakeGateway
) -> None:
    shop = make_shop()
    gw = make_gateway(consent(expires="2s"), shop=shop).start()
    gw.wait_ready()
    with Publisher(gw.broker_url) as button:
        button.publish(gw.button_topic, press_payload("x1", 1))
    wait_until(lambda: outcome_of(gw, "x1") == "held", 10.0, "the press is held")
    wait_until(lambda: has_outcome(gw, "expired"), 15.0, "the held order expires")
    gw.events.wait_for(
        lambda events: any(e.get("state") == "cancelled" for e in events), timeout=10.0
    )
    time.sleep(1.0)
    assert shop.orders() == []
    assert shop.stats()["post_attempts"] == 0


def test_an_unreachable_notifier_loses_no_order(
    broker: object, make_shop: MakeShop, make_gateway: MakeGateway
) -> None:
    shop = make_shop()
    dead = f"json://127.0.0.1:{closed_port()}/notify"
    config = {"notify": {"urls": dead, "retries": 2, "retry_wait": "100ms"}}
    gw = make_gateway(config, shop=shop).start()
    gw.wait_ready()
    with Publisher(gw.broker_url) as button:
        for seq, event_id in enumerate(("n1", "n2", "n3"), start=1):
            button.publish(gw.button_topic, press_payload(event_id, seq))
    assert_exactly_once(shop, gw, ["n1", "n2", "n3"], timeout=30.0)
    wait_until(
        lambda: "did not take" in gw.current_log(), 15.0, "the failed notification is logged"
    )
    assert dead not in gw.log_text()
