"""The sender against the real reference shop on loopback, one fault at a time.

Every scenario ends the same way: each intent is exactly one order at the shop,
counted by ``source.event_id``.
"""

from __future__ import annotations

import queue
import secrets
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from firmware_sim.shop.server import ShopServer
from gateway.clock import Clock, ScaledClock
from gateway.commerce.base import build_body
from gateway.commerce.http import HttpCommerce
from gateway.config.models import CommerceSection
from gateway.core.events import CancelOrder, OrderState, OrderUpdate, PlaceOrder
from gateway.core.keys import order_key
from gateway.engine.sender import Sender
from gateway.outbox.store import Store

GATEWAY = "test-gateway"
SKU = "TIDE-PODS-42"


def wait_for(what: str, predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


@dataclass
class Gateway:
    """A core-side Store plus a running Sender, as the daemon wires them."""

    state_dir: Path
    clock: Clock
    settings: CommerceSection
    store: Store
    sender: Sender
    backend: HttpCommerce
    updates: queue.Queue[OrderUpdate] = field(default_factory=queue.Queue)
    sends: list[tuple[float, str]] = field(default_factory=list)
    seen: list[OrderUpdate] = field(default_factory=list)

    def order(self, event_id: str, *, sku: str = SKU, created_at: float | None = None) -> str:
        key = order_key(self.store.secret(), GATEWAY, "laundry", event_id)
        intent = PlaceOrder(
            key=key,
            product="detergent",
            sku=sku,
            quantity=1,
            device="laundry",
            trigger="press",
            event_id=event_id,
            created_at=self.clock.now() if created_at is None else created_at,
            gateway=GATEWAY,
        )
        if self.store.commit([intent]).wake_sender:
            self.sender.wake()
        return key

    def drain(self) -> list[OrderUpdate]:
        while True:
            try:
                self.seen.append(self.updates.get_nowait())
            except queue.Empty:
                return self.seen

    def state(self, key: str) -> OrderState | None:
        row = self.store.get(key)
        return None if row is None else row.state

    def wait_state(self, key: str, *states: OrderState, timeout: float = 20.0) -> None:
        wait_for(f"{key[:12]} in {states}", lambda: self.state(key) in states, timeout)


@pytest.fixture
def make_gateway(tmp_path: Path) -> Iterator[Callable[..., Gateway]]:
    made: list[Gateway] = []

    def make(
        url: str,
        token: str | None = None,
        *,
        scale: float = 1.0,
        concurrency: int = 4,
        **knobs: Any,
    ) -> Gateway:
        settings = CommerceSection(
            base_url=url,
            token=token,
            **{"timeout": "2s", "connect_timeout": "1s", **knobs},
        )
        clock = ScaledClock(scale)
        state_dir = tmp_path / f"gateway{len(made)}"
        backend = HttpCommerce(settings)
        updates: queue.Queue[OrderUpdate] = queue.Queue()
        sends: list[tuple[float, str]] = []
        sender = Sender(
            state_dir,
            backend,
            clock,
            settings,
            updates.put,
            on_send=lambda _latency, outcome: sends.append((clock.now(), outcome)),
            concurrency=concurrency,
        )
        gw = Gateway(state_dir, clock, settings, Store.open(state_dir), sender, backend)
        gw.updates, gw.sends = updates, sends
        made.append(gw)
        sender.start()
        return gw

    yield make
    for gw in made:
        gw.sender.stop()
        gw.backend.close()
        gw.store.close()


@pytest.fixture
def shop_server(tmp_path: Path) -> Iterator[ShopServer]:
    server = ShopServer(tmp_path / "shop.db", token=secrets.token_urlsafe(16)).start()
    yield server
    server.stop()


def assert_exactly_once(shop: ShopServer, event_ids: list[str]) -> None:
    counts = Counter(order["source"]["event_id"] for order in shop.orders())
    assert counts == Counter(event_ids), counts


def test_orders_are_accepted_and_followed_to_delivery(tmp_path: Path, make_gateway: Any) -> None:
    clock = ScaledClock(1200.0)
    shop = ShopServer(
        tmp_path / "s.db", token="tok", clock=clock, ship_after="5m", deliver_after="15m"
    ).start()
    try:
        # One request at a time: then the answers, too, come in commit order. (With
        # requests overlapping, claims keep that order but answers may cross.)
        gw = make_gateway(shop.url, "tok", scale=1200.0, poll_interval="2m", concurrency=1)
        keys = [gw.order(f"e{n}") for n in range(3)]
        for key in keys:
            gw.wait_state(key, OrderState.DELIVERED)
        assert_exactly_once(shop, ["e0", "e1", "e2"])
        states = [u.state for u in gw.drain() if u.key == keys[0]]
        assert states == [OrderState.ACCEPTED, OrderState.SHIPPED, OrderState.DELIVERED]
        assert gw.sender.shop_reachable is True
        # Drained in commit order.
        accepted = [u.key for u in gw.seen if u.state is OrderState.ACCEPTED]
        assert accepted == keys
    finally:
        shop.stop()


def test_shop_down_then_up_first_order_within_probe_interval(
    tmp_path: Path, make_gateway: Any
) -> None:
    first = ShopServer(tmp_path / "s.db", token="tok").start()
    port = first.port
    url = first.url
    first.stop()
    gw = make_gateway(url, "tok", scale=4.0)
    keys = [gw.order(f"e{n}") for n in range(3)]
    wait_for("unreachable report", lambda: any(u.unreachable for u in gw.drain()))
    assert gw.sender.shop_reachable is False
    assert all(gw.state(k) is OrderState.QUEUED for k in keys)
    probes = len(gw.sends)
    gw.clock.sleep(11.0)  # 11 clock-seconds of outage: at most 3 probes at 5 s intervals
    assert len(gw.sends) - probes <= 3

    shop = ShopServer(tmp_path / "s.db", token="tok", port=port).start()
    try:
        back_at = gw.clock.now()
        for key in keys:
            gw.wait_state(key, OrderState.ACCEPTED)
        first_accept = next(t for t, outcome in gw.sends if outcome == "accepted")
        # 5 s probe interval plus the request itself (0.5 s real, scaled by 4).
        assert first_accept - back_at <= 5.0 + 2.0
        assert_exactly_once(shop, ["e0", "e1", "e2"])
        assert gw.sender.shop_reachable is True
    finally:
        shop.stop()


def test_server_errors_are_retried_with_backoff(shop_server: ShopServer, make_gateway: Any) -> None:
    shop_server.set_faults(error_rate=0.5, seed=7)
    gw = make_gateway(shop_server.url, shop_server.token, scale=200.0)
    events = [f"e{n}" for n in range(8)]
    keys = [gw.order(e) for e in events]
    for key in keys:
        gw.wait_state(key, OrderState.ACCEPTED)
    assert shop_server.stats()["faults"].get("error", 0) > 0
    assert "retry" in {outcome for _, outcome in gw.sends}
    assert_exactly_once(shop_server, events)


def test_rate_limit_waits_for_retry_after(shop_server: ShopServer, make_gateway: Any) -> None:
    shop_server.set_faults(rate_limit_rate=1.0, retry_after=30)
    gw = make_gateway(shop_server.url, shop_server.token, scale=100.0)
    key = gw.order("e1")
    wait_for("a 429", lambda: len(gw.sends) >= 1)
    shop_server.set_faults(rate_limit_rate=0.0)
    gw.wait_state(key, OrderState.ACCEPTED)
    (first_at, first), (second_at, second) = gw.sends[:2]
    assert (first, second) == ("retry", "accepted")
    gap = second_at - first_at
    assert 30.0 <= gap < 60.0, gap
    assert gw.store.get(key).attempts == 2  # type: ignore[union-attr]
    assert_exactly_once(shop_server, ["e1"])


def test_response_lost_after_commit_is_replayed_not_duplicated(
    shop_server: ShopServer, make_gateway: Any
) -> None:
    shop_server.set_faults(drop_after_commit_rate=0.5, seed=3)
    gw = make_gateway(shop_server.url, shop_server.token, scale=50.0)
    events = [f"e{n}" for n in range(6)]
    keys = [gw.order(e) for e in events]
    for key in keys:
        gw.wait_state(key, OrderState.ACCEPTED, timeout=30)
    stats = shop_server.stats()
    assert stats["faults"].get("drop_after_commit", 0) > 0
    assert stats["replays"] > 0
    assert_exactly_once(shop_server, events)


def test_shop_slower_than_timeout(shop_server: ShopServer, make_gateway: Any) -> None:
    shop_server.set_faults(slow_rate=1.0, slow_seconds=1.5)
    gw = make_gateway(shop_server.url, shop_server.token, scale=20.0, timeout="300ms")
    key = gw.order("e1")
    # A timeout is a lost answer, not an outage: the order asks again, the others go on.
    wait_for("a timeout", lambda: any(outcome == "answer_lost" for _, outcome in gw.sends))
    assert gw.sender.shop_reachable is not False
    shop_server.set_faults(slow_rate=0.0)
    gw.wait_state(key, OrderState.ACCEPTED)
    assert_exactly_once(shop_server, ["e1"])
    assert shop_server.stats()["post_attempts"] >= 2


def test_wrong_token_blocks_then_resumes_when_fixed(
    tmp_path: Path, shop_server: ShopServer, make_gateway: Any
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("wrong-token\n")
    gw = make_gateway(shop_server.url, token_file=str(token_file), scale=300.0)
    key = gw.order("e1")
    gw.wait_state(key, OrderState.BLOCKED)
    row = gw.store.get(key)
    assert row is not None and "403" in (row.last_error or "")
    assert any(u.state is OrderState.BLOCKED for u in gw.drain())
    token_file.write_text(shop_server.token + "\n")
    gw.wait_state(key, OrderState.ACCEPTED)
    assert_exactly_once(shop_server, ["e1"])


@pytest.mark.parametrize("kind", ["html", "truncated", "no_id"])
def test_unreadable_success_is_asked_again_with_the_same_key(
    kind: str, shop_server: ShopServer, make_gateway: Any
) -> None:
    shop_server.set_faults(garbage_rate=1.0, garbage_kind=kind)
    gw = make_gateway(shop_server.url, shop_server.token, scale=50.0)
    key = gw.order("e1")
    wait_for("an unclear answer", lambda: len(gw.sends) >= 1)
    assert gw.sends[0][1] == "unclear"
    shop_server.set_faults(garbage_rate=0.0)
    gw.wait_state(key, OrderState.ACCEPTED)
    assert shop_server.stats()["replays"] >= 1
    assert_exactly_once(shop_server, ["e1"])


def test_unknown_sku_and_expired_orders_are_dead_letters(
    shop_server: ShopServer, make_gateway: Any
) -> None:
    gw = make_gateway(shop_server.url, shop_server.token, expire_after="1h")
    unknown = gw.order("e1", sku="NO-SUCH-SKU")
    stale = gw.order("e2", created_at=gw.clock.now() - 7200)
    gw.wait_state(unknown, OrderState.REJECTED)
    gw.wait_state(stale, OrderState.REJECTED)
    assert "does not sell" in (gw.store.get(unknown).last_error or "")  # type: ignore[union-attr]
    assert gw.store.get(stale).last_error == "expired"  # type: ignore[union-attr]
    assert shop_server.stats()["post_attempts"] == 1  # the expired one was never sent
    assert shop_server.orders() == []


def test_cancel_reaches_the_shop(tmp_path: Path, make_gateway: Any) -> None:
    shop = ShopServer(tmp_path / "s.db", token="tok", ship_after="1d").start()
    try:
        gw = make_gateway(shop.url, "tok", poll_interval="1h")
        key = gw.order("e1")
        gw.wait_state(key, OrderState.ACCEPTED)
        cancel = CancelOrder(key=key, product="detergent", device="laundry")
        assert gw.store.commit([cancel]).remote_cancels == (key,)
        gw.sender.wake()
        gw.wait_state(key, OrderState.CANCELLED)
        assert [o["status"] for o in shop.orders()] == ["cancelled"]
        assert [u.state for u in gw.drain() if u.key == key][-1] is OrderState.CANCELLED
    finally:
        shop.stop()


def test_cancel_too_late_keeps_the_order(tmp_path: Path, make_gateway: Any) -> None:
    shop = ShopServer(tmp_path / "s.db", token="tok", ship_after="200ms").start()
    try:
        gw = make_gateway(shop.url, "tok", poll_interval="1h")
        key = gw.order("e1")
        gw.wait_state(key, OrderState.ACCEPTED)
        wait_for("shipping", lambda: shop.orders()[0]["status"] == "shipped")
        gw.store.commit([CancelOrder(key=key, product="detergent", device="laundry")])
        gw.sender.wake()
        wait_for(
            "too-late report",
            lambda: any(u.key == key and "too late" in (u.reason or "") for u in gw.drain()),
        )
        row = gw.store.get(key)
        assert row is not None and not row.cancel_requested
        assert row.state is OrderState.ACCEPTED
        assert [o["status"] for o in shop.orders()] == ["shipped"]
    finally:
        shop.stop()


def test_crash_after_the_shop_committed_resends_same_key_and_gets_the_same_order(
    tmp_path: Path, shop_server: ShopServer
) -> None:
    state = tmp_path / "gw"
    store = Store.open(state)
    clock = ScaledClock(1.0)
    key = order_key(store.secret(), GATEWAY, "laundry", "e1")
    intent = PlaceOrder(
        key, "detergent", SKU, 1, "laundry", "press", "e1", clock.now(), gateway=GATEWAY
    )
    store.commit([intent])
    row = store.claim_next(clock.now())
    assert row is not None
    # The request reached the shop, then the gateway lost power before recording it.
    first = httpx.post(
        shop_server.url + "/orders",
        content=build_body(row.intent),
        headers={
            "Authorization": f"Bearer {shop_server.token}",
            "Idempotency-Key": key,
            "Content-Type": "application/json",
        },
    )
    assert first.status_code == 201
    settings = CommerceSection(base_url=shop_server.url, token=shop_server.token)
    backend = HttpCommerce(settings)
    sender = Sender(state, backend, clock, settings, lambda u: None)
    sender.start()
    try:
        wait_for("acceptance", lambda: store.get(key).state is OrderState.ACCEPTED)  # type: ignore[union-attr]
    finally:
        sender.stop()
        backend.close()
    assert store.get(key).shop_order_id == first.json()["id"]  # type: ignore[union-attr]
    assert shop_server.stats()["replays"] == 1
    assert_exactly_once(shop_server, ["e1"])
    store.close()
