"""Issue 12: the gateway as a process ordering through the signed webhook, and from two
shops in one config — counted where a household would see the orders.

The receiver is the one of :mod:`tests.support.webhook`: it verifies every
signature and acts once per ``Idempotency-Key``. The webhook is at-least-once with a
key: extra deliveries are allowed, but only ever with a key already acted on.
"""

from __future__ import annotations

import json
import random
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.e2e.conftest import MakeGateway, MakeShop, outbox_depth, outbox_states
from tests.e2e.test_kill_loop import press_under_kills
from tests.support.broker import Broker
from tests.support.gateway import REPO, GatewayProcess, orders_by_event, press_payload
from tests.support.publisher import Publisher, wait_until
from tests.support.webhook import WebhookReceiver

pytestmark = pytest.mark.e2e

SECRET = secrets.token_hex(32)
COFFEE_TOPIC = "home/reorder/e2e-coffee"


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver(SECRET) as running:
        yield running


def use_shops(gw: GatewayProcess, shops: dict[str, Any], products: dict[str, str]) -> None:
    """Replace the harness's single commerce: section with ``shops:``; ``products``
    names each product's shop."""
    secret_file = gw.workdir / "webhook-secret"
    secret_file.write_text(SECRET)
    secret_file.chmod(0o600)
    for shop in shops.values():
        if shop.get("adapter") == "webhook":
            shop.setdefault("secret_file", str(secret_file))
    config = dict(gw.config)
    del config["commerce"]
    config["shops"] = shops
    for product, shop_name in products.items():
        config["products"][product]["shop"] = shop_name
    gw.config = config
    gw.config_path.write_text(yaml.safe_dump(config, sort_keys=False))


def webhook_shop(receiver: WebhookReceiver) -> dict[str, Any]:
    return {"adapter": "webhook", "url": receiver.url, "timeout": "2s", "connect_timeout": "1s"}


def assert_once_at_receiver(
    receiver: WebhookReceiver, gw: GatewayProcess, event_ids: list[str], timeout: float
) -> None:
    expected = set(event_ids)

    def done() -> bool:
        return set(receiver.events()) >= expected and outbox_depth(gw) == 0

    try:
        wait_until(done, timeout, "every press delivered and the outbox drained")
    except AssertionError:
        missing = sorted(expected - set(receiver.events()))
        raise AssertionError(
            f"{len(missing)} presses never arrived (first: {missing[:5]}); "
            f"outbox {outbox_states(gw)}; gateway log tail:\n{gw.tail()}"
        ) from None
    counts = receiver.events()
    assert counts == dict.fromkeys(expected, 1), {e: n for e, n in counts.items() if n != 1}
    acted = set(receiver.orders())
    assert all(d.key in acted for d in receiver.deliveries())
    assert receiver.refused() == []
    assert "Traceback" not in gw.log_text(), gw.tail()


def test_webhook_kill_loop_every_press_one_order(
    broker: Broker, make_shop: MakeShop, make_gateway: MakeGateway, receiver: WebhookReceiver
) -> None:
    rng = random.Random("webhook-kill-loop")
    receiver.lose_answers(5)  # some deliveries are acted on and never answered
    gw = make_gateway(shop=make_shop())
    use_shops(gw, {"family": webhook_shop(receiver)}, {"detergent": "family"})
    gw.start().wait_ready()
    ids = [f"press-{i:04d}" for i in range(120)]
    # One in ten pressed twice: a button re-sending a press it got no PUBACK for.
    log = press_under_kills(gw, broker, ids, rng, client_id="webhook-kill-button", max_gap=0.1)
    assert log.kills >= 3, log
    assert_once_at_receiver(receiver, gw, ids, timeout=90.0)
    repeats = sum(d.repeat for d in receiver.deliveries())
    print(
        f"webhook kill loop: {len(ids)} presses, {log.kills} SIGKILLs, "
        f"{len(receiver.deliveries())} deliveries ({repeats} repeats, same key), "
        f"{receiver.incomplete()} requests cut short by a kill"
    )
    assert repeats >= 5  # the lost answers were asked again, and acted on once


def test_webhook_outage_every_press_arrives_once(
    broker: Broker, make_shop: MakeShop, make_gateway: MakeGateway, receiver: WebhookReceiver
) -> None:
    gw = make_gateway(shop=make_shop())
    use_shops(gw, {"family": webhook_shop(receiver)}, {"detergent": "family"})
    gw.start().wait_ready()
    receiver.down()
    ids = [f"out-{i}" for i in range(10)]
    with Publisher(broker.url, client_id="webhook-outage-button", persistent=True) as button:
        for seq, event_id in enumerate(ids):
            button.publish(gw.button_topic, press_payload(event_id, seq), qos=1)
    wait_until(
        lambda: sum(1 for e in gw.events.items if e.get("outcome") == "ordered") == len(ids),
        20.0,
        "every press decided",
    )
    time.sleep(1.0)
    assert receiver.deliveries() == []
    assert outbox_depth(gw) == len(ids)
    receiver.up()
    assert_once_at_receiver(receiver, gw, ids, timeout=60.0)


def test_two_shops_in_one_config_each_get_their_products_orders(
    broker: Broker, make_shop: MakeShop, make_gateway: MakeGateway, receiver: WebhookReceiver
) -> None:
    shop = make_shop()
    gw = make_gateway(
        {
            "products": {"coffee": {"sku": "LAVAZZA-1KG", "one_open_order": False}},
            "buttons": [
                {
                    "name": "e2e-button",
                    "mqtt": "home/reorder/e2e-button",
                    "profile": "reorder-button",
                    "product": "detergent",
                },
                {
                    "name": "coffee-button",
                    "mqtt": COFFEE_TOPIC,
                    "profile": "reorder-button",
                    "product": "coffee",
                },
            ],
        },
        shop=shop,
    )
    roaster = {"base_url": shop.url, "token_file": str(gw.token_file), "timeout": "5s"}
    use_shops(
        gw,
        {"roaster": roaster, "family": webhook_shop(receiver)},
        {"coffee": "roaster", "detergent": "family"},
    )
    check = subprocess.run(
        [sys.executable, "-m", "gateway", "check", "--config", str(gw.config_path)],
        cwd=gw.workdir,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert "guarantee: native idempotency keys" in check.stdout
    assert "guarantee: at-least-once with a key" in check.stdout

    gw.start().wait_ready()
    coffee = [f"coffee-{i}" for i in range(4)]
    soap = [f"soap-{i}" for i in range(4)]
    with Publisher(broker.url, client_id="two-shops-buttons", persistent=True) as buttons:
        for seq, (c, s) in enumerate(zip(coffee, soap, strict=True)):
            buttons.publish(COFFEE_TOPIC, press_payload(c, seq), qos=1)
            buttons.publish(gw.button_topic, press_payload(s, seq), qos=1)
    assert_once_at_receiver(receiver, gw, soap, timeout=60.0)
    wait_until(lambda: set(orders_by_event(shop.orders())) >= set(coffee), 60.0, "coffee")
    assert orders_by_event(shop.orders()) == dict.fromkeys(coffee, 1)

    # What each order cost is shown: the events topic, and status.
    def priced() -> list[dict[str, Any]]:
        return [e for e in gw.events.items if e.get("state") == "accepted" and e.get("price")]

    wait_until(lambda: len(priced()) == len(coffee) + len(soap), 20.0, "priced accepts")
    prices = {e["product"]: e["price"] for e in priced()}
    assert prices["coffee"] == {"currency": "EUR", "total_cents": 1849, "unit_price_cents": 1849}
    assert prices["detergent"] == {"currency": "EUR", "total_cents": 499, "unit_price_cents": 499}

    # The webhook's orders stay accepted (open) for delivered_after (1h): status lists
    # each with what it cost.
    def detergent_totals() -> list[object]:
        done = subprocess.run(
            [sys.executable, "-m", "gateway", "status", "--config", str(gw.config_path), "--json"],
            cwd=gw.workdir,
            env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        open_orders = json.loads(done.stdout)["open_orders"]
        return [o.get("total") for o in open_orders if o["product"] == "detergent"]

    wait_until(lambda: detergent_totals() == ["4.99 EUR"] * len(soap), 30.0, "totals in status")
