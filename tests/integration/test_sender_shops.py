"""Two real reference shops behind one sender (issue #12): each shop has its own gate.

Shop "a" sits behind a TCP proxy that cuts its line; shop "b" is always there. What
happens at "a" — a hanging line, a refused connection, a refused token — must never
hold up the orders for "b", and once "a" is back its orders are placed exactly once.
"""

from __future__ import annotations

import queue
import secrets
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from firmware_sim.shop.server import ShopServer
from gateway.clock import ScaledClock
from gateway.commerce.http import HttpCommerce
from gateway.config.models import CommerceSection
from gateway.core.events import OrderState, OrderUpdate, PlaceOrder
from gateway.core.keys import order_key
from gateway.engine.sender import Sender
from gateway.outbox.store import Store
from tests.integration.test_sender_shop import wait_for
from tests.support.proxy import TcpProxy

GATEWAY = "test-gateway"


@dataclass
class TwoShops:
    a: ShopServer
    b: ShopServer
    line: TcpProxy  # the gateway's way to shop "a"
    store: Store
    sender: Sender
    clock: ScaledClock

    def order(self, shop: str, event_id: str) -> str:
        key = order_key(self.store.secret(), GATEWAY, "laundry", event_id)
        intent = PlaceOrder(
            key=key,
            product="detergent",
            sku="TIDE-PODS-42",
            quantity=1,
            device="laundry",
            trigger="press",
            event_id=event_id,
            created_at=self.clock.now(),
            gateway=GATEWAY,
            shop=shop,
        )
        if self.store.commit([intent]).wake_sender:
            self.sender.wake()
        return key

    def state(self, key: str) -> OrderState | None:
        row = self.store.get(key)
        return None if row is None else row.state

    def attempts(self, key: str) -> int:
        row = self.store.get(key)
        assert row is not None
        return row.attempts


def counted(shop: ShopServer) -> Counter[str]:
    return Counter(order["source"]["event_id"] for order in shop.orders())


@pytest.fixture
def two_shops(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[TwoShops]:
    mode, a_token = request.param
    a = ShopServer(tmp_path / "a.db", token=secrets.token_urlsafe(8)).start()
    b = ShopServer(tmp_path / "b.db", token=secrets.token_urlsafe(8)).start()
    line = TcpProxy(("127.0.0.1", a.port)).start()
    line.set_mode(mode)
    settings = {
        # A hanging line would hold a request for 10 minutes: far longer than any
        # wait below, so the other shop can only be served by a gate of its own.
        "a": CommerceSection(
            base_url=f"http://127.0.0.1:{line.port}/api/v1",
            token=a.token if a_token is None else a_token,
            timeout="10m",
            connect_timeout="10m",
        ),
        "b": CommerceSection(base_url=b.url, token=b.token, timeout="5s"),
    }
    backends = {name: HttpCommerce(s, setting=f"shops.{name}") for name, s in settings.items()}
    clock = ScaledClock(5.0)  # the 5 s probe interval in one real second
    updates: queue.Queue[OrderUpdate] = queue.Queue()
    sender = Sender(tmp_path / "gw", backends, clock, settings, updates.put)
    store = Store.open(tmp_path / "gw")
    sender.start()
    yield TwoShops(a, b, line, store, sender, clock)
    line.set_mode("refuse")  # a hanging request ends, so the sender stops at once
    sender.stop()
    store.close()
    line.stop()
    a.stop()
    b.stop()


@pytest.mark.parametrize("two_shops", [("blackhole", None)], indirect=True)
def test_a_hanging_shop_holds_up_only_its_own_orders(two_shops: TwoShops) -> None:
    gw = two_shops
    wait_for("shop b probed", lambda: gw.sender.reachability()["b"] is True)
    a_keys = [gw.order("a", f"a{n}") for n in range(3)]
    b_keys = [gw.order("b", f"b{n}") for n in range(3)]
    for key in b_keys:
        wait_for(f"{key[:12]} accepted", lambda k=key: gw.state(k) is OrderState.ACCEPTED)  # type: ignore[misc]
    # Shop a's probe is still hanging: none of its orders went on the wire meanwhile.
    assert gw.sender.reachability() == {"a": None, "b": True}
    assert gw.sender.shop_reachable is None
    assert [gw.attempts(k) for k in a_keys] == [0, 0, 0]
    assert counted(gw.b) == Counter(["b0", "b1", "b2"])

    gw.line.set_mode("refuse")  # the hanging line is cut (a reset) ...
    gw.line.set_mode("pass")  # ... and the shop is there again for the next probe
    for key in a_keys:
        wait_for(f"{key[:12]} accepted", lambda k=key: gw.state(k) is OrderState.ACCEPTED)  # type: ignore[misc]
    assert counted(gw.a) == Counter(["a0", "a1", "a2"])
    assert counted(gw.b) == Counter(["b0", "b1", "b2"])
    assert gw.sender.reachability() == {"a": True, "b": True}
    assert gw.sender.shop_reachable is True


@pytest.mark.parametrize("two_shops", [("refuse", None)], indirect=True)
def test_a_shop_down_at_start_is_known_unreachable_and_placed_once_when_back(
    two_shops: TwoShops,
) -> None:
    gw = two_shops
    # Known from the start-up probe, before any order.
    wait_for("a known down", lambda: gw.sender.reachability() == {"a": False, "b": True})
    assert gw.sender.shop_reachable is False
    a_keys = [gw.order("a", f"a{n}") for n in range(2)]
    b_keys = [gw.order("b", f"b{n}") for n in range(2)]
    for key in b_keys:
        wait_for(f"{key[:12]} accepted", lambda k=key: gw.state(k) is OrderState.ACCEPTED)  # type: ignore[misc]
    assert all(gw.state(k) is OrderState.QUEUED for k in a_keys)
    assert counted(gw.a) == Counter()

    gw.line.set_mode("pass")
    for key in a_keys:
        wait_for(f"{key[:12]} accepted", lambda k=key: gw.state(k) is OrderState.ACCEPTED)  # type: ignore[misc]
    assert counted(gw.a) == Counter(["a0", "a1"])
    assert counted(gw.b) == Counter(["b0", "b1"])
    assert gw.sender.shop_reachable is True


@pytest.mark.parametrize("two_shops", [("pass", "wrong-token")], indirect=True)
def test_a_refused_token_blocks_only_its_own_shop(two_shops: TwoShops) -> None:
    gw = two_shops
    # The probe carries the token: refused is known before any order.
    wait_for("a refuses", lambda: gw.sender.refused() == {"a": True, "b": False})
    assert gw.sender.reachability() == {"a": True, "b": True}
    a_key = gw.order("a", "a0")
    wait_for("a0 blocked", lambda: gw.state(a_key) is OrderState.BLOCKED)
    b_key = gw.order("b", "b0")
    wait_for("b0 accepted", lambda: gw.state(b_key) is OrderState.ACCEPTED)
    # b's acceptance proves b's credentials, not a's: a's order stays blocked.
    assert gw.state(a_key) is OrderState.BLOCKED
    assert counted(gw.a) == Counter()
    assert counted(gw.b) == Counter(["b0"])
