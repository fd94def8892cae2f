"""The sender and the webhook backend against a real receiver on loopback that
verifies every signature and acts once per key; two shops behind one sender.

Every scenario counts at the receiver: one order acted on per intent; deliveries
beyond that only ever repeat a key already acted on (at-least-once with a key).
"""

from __future__ import annotations

import queue
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from firmware_sim.shop.server import ShopServer
from gateway.clock import ScaledClock
from gateway.commerce import make_backend
from gateway.config.models import CommerceSection, WebhookSection
from gateway.core.events import OrderState, OrderUpdate, PlaceOrder, Price
from gateway.core.keys import order_key
from gateway.engine.sender import Sender
from gateway.outbox.store import Store
from gateway.outbox.views import OrderViews, read_outbox
from tests.integration.test_sender_shop import wait_for
from tests.support.webhook import WebhookReceiver

SECRET = secrets.token_hex(32)


def webhook_settings(receiver: WebhookReceiver, **more: str) -> WebhookSection:
    return WebhookSection.model_validate(
        {
            "adapter": "webhook",
            "url": receiver.url,
            "secret": SECRET,
            "timeout": "1s",
            "connect_timeout": "1s",
        }
        | more
    )


class Harness:
    """A core-side Store and a running Sender with one backend per shop."""

    def __init__(self, state_dir: Path, shops: dict[str, CommerceSection | WebhookSection]):
        self.state_dir = state_dir
        self.clock = ScaledClock(600.0)
        self.store = Store.open(state_dir)
        self.updates: queue.Queue[OrderUpdate] = queue.Queue()
        self.seen: list[OrderUpdate] = []
        self.sender = Sender(
            state_dir,
            {name: make_backend(s, name) for name, s in shops.items()},
            self.clock,
            shops,
            self.updates.put,
        )
        self.sender.start()

    def order(self, event_id: str, shop: str, sku: str = "TIDE-PODS-42") -> str:
        key = order_key(b"s" * 32, "gw", "laundry", event_id)
        intent = PlaceOrder(
            key=key,
            product="detergent",
            sku=sku,
            quantity=2,
            device="laundry",
            trigger="press",
            event_id=event_id,
            created_at=self.clock.now(),
            gateway="gw",
            shop=shop,
        )
        if self.store.commit([intent]).wake_sender:
            self.sender.wake()
        return key

    def state(self, key: str) -> OrderState | None:
        row = self.store.get(key)
        return None if row is None else row.state

    def wait_state(self, key: str, *states: OrderState, timeout: float = 20.0) -> None:
        wait_for(f"{key[:12]} in {states}", lambda: self.state(key) in states, timeout)

    def drain(self) -> list[OrderUpdate]:
        while not self.updates.empty():
            self.seen.append(self.updates.get_nowait())
        return self.seen

    def close(self) -> None:
        self.sender.stop()
        self.store.close()


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver(SECRET) as running:
        yield running


@pytest.fixture
def harnesses() -> Iterator[list[Harness]]:
    made: list[Harness] = []
    yield made
    for harness in made:
        harness.close()


def assert_once_each(receiver: WebhookReceiver, event_ids: list[str]) -> None:
    assert receiver.events() == dict.fromkeys(event_ids, 1)
    acted = set(receiver.orders())
    for delivery in receiver.deliveries():
        # A delivery beyond the first is only ever a key already acted on.
        assert delivery.key in acted
    assert receiver.refused() == []


def test_an_order_is_delivered_signed_with_its_price_then_handed_over(
    tmp_path: Path, receiver: WebhookReceiver, harnesses: list[Harness]
) -> None:
    gw = Harness(tmp_path, {"family": webhook_settings(receiver, delivered_after="10m")})
    harnesses.append(gw)
    key = gw.order("e1", "family")
    gw.wait_state(key, OrderState.ACCEPTED, OrderState.DELIVERED)
    row = gw.store.get(key)
    assert row is not None and row.shop_order_id == "wh_1"
    assert row.price == Price("EUR", 998, 499)
    views = OrderViews.open(tmp_path)
    try:
        if row.state is OrderState.ACCEPTED:
            (shown,) = read_outbox(views, gw.clock.now()).open_orders
            assert shown["total"] == "9.98 EUR" and shown["shop"] == "family"
    finally:
        views.close()
    # 10 minutes at 600x: a second. Then the order is handed over, which frees the
    # product's one open order.
    gw.wait_state(key, OrderState.DELIVERED)
    states = [(u.state, u.price) for u in gw.drain() if u.key == key]
    assert states == [
        (OrderState.ACCEPTED, Price("EUR", 998, 499)),
        (OrderState.DELIVERED, Price("EUR", 998, 499)),
    ]
    assert_once_each(receiver, ["e1"])
    assert [d.repeat for d in receiver.deliveries()] == [False]


def test_lost_answers_deliver_again_with_the_same_key_and_order_once(
    tmp_path: Path, receiver: WebhookReceiver, harnesses: list[Harness]
) -> None:
    receiver.lose_answers(2)
    gw = Harness(tmp_path, {"family": webhook_settings(receiver)})
    harnesses.append(gw)
    keys = [gw.order(f"e{n}", "family") for n in range(3)]
    for key in keys:
        gw.wait_state(key, OrderState.ACCEPTED, OrderState.DELIVERED)
    assert_once_each(receiver, ["e0", "e1", "e2"])
    repeats = [d for d in receiver.deliveries() if d.repeat]
    assert len(repeats) >= 2  # the two lost answers were asked again, same key


def test_a_receiver_outage_queues_orders_and_each_arrives_once(
    tmp_path: Path, receiver: WebhookReceiver, harnesses: list[Harness]
) -> None:
    receiver.down()
    gw = Harness(tmp_path, {"family": webhook_settings(receiver)})
    harnesses.append(gw)
    keys = [gw.order(f"e{n}", "family") for n in range(4)]
    wait_for("the outage noticed", lambda: gw.sender.shop_reachable is False)
    assert all(gw.state(k) in (OrderState.QUEUED, OrderState.SENDING) for k in keys)
    receiver.up()
    for key in keys:
        gw.wait_state(key, OrderState.ACCEPTED, OrderState.DELIVERED, timeout=30.0)
    assert_once_each(receiver, [f"e{n}" for n in range(4)])


def test_a_wrong_secret_is_refused_by_the_receiver_and_blocks(
    tmp_path: Path, receiver: WebhookReceiver, harnesses: list[Harness]
) -> None:
    settings = webhook_settings(receiver)
    wrong = settings.model_copy(update={"secret": type(settings.secret)("x" * 40)})
    gw = Harness(tmp_path, {"family": wrong})
    harnesses.append(gw)
    key = gw.order("e1", "family")
    gw.wait_state(key, OrderState.BLOCKED)
    assert receiver.orders() == {}
    assert receiver.refused() and set(receiver.refused()) == {"bad signature"}


def test_two_shops_each_get_their_products_orders(
    tmp_path: Path, receiver: WebhookReceiver, harnesses: list[Harness]
) -> None:
    shop = ShopServer(tmp_path / "shop.db", token="tok").start()
    try:
        roaster = CommerceSection(base_url=shop.url, token="tok", timeout="2s")
        gw = Harness(tmp_path / "gw", {"roaster": roaster, "family": webhook_settings(receiver)})
        harnesses.append(gw)
        coffee = [gw.order(f"coffee-{n}", "roaster", sku="LAVAZZA-1KG") for n in range(3)]
        soap = [gw.order(f"soap-{n}", "family") for n in range(3)]
        for key in coffee + soap:
            gw.wait_state(key, OrderState.ACCEPTED, OrderState.SHIPPED, OrderState.DELIVERED)
        at_shop = sorted(o["source"]["event_id"] for o in shop.orders())
        assert at_shop == [f"coffee-{n}" for n in range(3)]
        assert_once_each(receiver, [f"soap-{n}" for n in range(3)])
        # The reference shop's price (catalog cents x quantity) is kept per order.
        row = gw.store.get(coffee[0])
        assert row is not None and row.price == Price("EUR", 2 * 1849, 1849)
    finally:
        shop.stop()


def test_an_order_for_a_shop_no_longer_configured_waits_blocked(
    tmp_path: Path, receiver: WebhookReceiver, harnesses: list[Harness]
) -> None:
    gw = Harness(tmp_path, {"family": webhook_settings(receiver)})
    harnesses.append(gw)
    key = gw.order("e1", "gone")
    gw.wait_state(key, OrderState.BLOCKED)
    row = gw.store.get(key)
    assert row is not None and row.last_error is not None
    assert "no shop named 'gone' is configured" in row.last_error
    assert receiver.deliveries() == []
