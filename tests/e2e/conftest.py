"""End-to-end fixtures: the shop and the gateway as real processes, cleaned up always.

``make_shop(**faults)`` starts ``python -m firmware_sim.shop``; ``make_gateway(config,
shop_url=..., ...)`` a :class:`~tests.support.gateway.GatewayProcess` against the
test's broker. Both are killed at teardown, whatever the test did with them.
The ``outcome`` helpers here are what every scenario asserts: one order per
distinct event id at the shop, and every POST carried an Idempotency-Key.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from gateway.outbox.store import Store
from tests.support.broker import Broker
from tests.support.gateway import GatewayProcess, orders_by_event
from tests.support.proxy import TcpProxy
from tests.support.publisher import wait_until
from tests.support.shop import ShopProcess

MakeShop = Callable[..., ShopProcess]
MakeGateway = Callable[..., GatewayProcess]


@pytest.fixture
def make_shop(tmp_path: Path) -> Iterator[MakeShop]:
    started: list[ShopProcess] = []

    def make(**faults: object) -> ShopProcess:
        shop = ShopProcess(tmp_path / f"shop{len(started)}", faults=faults or None)
        started.append(shop)
        return shop.start()

    try:
        yield make
    finally:
        for shop in started:
            shop.kill()


@pytest.fixture
def make_gateway(tmp_path: Path, broker: Broker) -> Iterator[MakeGateway]:
    started: list[GatewayProcess] = []

    def make(
        config: dict[str, Any] | None = None,
        *,
        shop: ShopProcess,
        shop_url: str | None = None,
        broker_url: str | None = None,
        **kwargs: Any,
    ) -> GatewayProcess:
        gw = GatewayProcess(
            tmp_path / f"gateway{len(started)}",
            config,
            broker_url=broker_url or broker.url,
            shop_url=shop_url or shop.url,
            shop_token=shop.token,
            **kwargs,
        )
        started.append(gw)
        return gw

    try:
        yield make
    finally:
        for gw in started:
            gw.close()


@pytest.fixture
def proxy_to() -> Iterator[Callable[[ShopProcess], TcpProxy]]:
    proxies: list[TcpProxy] = []

    def make(shop: ShopProcess) -> TcpProxy:
        proxy = TcpProxy(("127.0.0.1", shop.port)).start()
        proxies.append(proxy)
        return proxy

    try:
        yield make
    finally:
        for proxy in proxies:
            proxy.stop()


def outbox_depth(gw: GatewayProcess) -> int:
    """Orders the gateway has not yet got to the shop (read beside the running process)."""
    store = Store.open(gw.state_dir, create=False)
    try:
        return store.queue_depth()
    finally:
        store.close()


def outbox_states(gw: GatewayProcess) -> dict[str, int]:
    store = Store.open(gw.state_dir, create=False)
    try:
        return {state.value: n for state, n in store.count_by_state().items()}
    finally:
        store.close()


def assert_exactly_once(
    shop: ShopProcess,
    gw: GatewayProcess,
    event_ids: list[str],
    timeout: float = 60.0,
    sku: str | None = None,
) -> dict[str, Any]:
    """Wait until the outbox is drained and the shop holds every event, then check that
    each distinct event became exactly one order and every POST carried a key.
    ``sku`` limits the count to one product's orders (others may come from sensors)."""
    expected = set(event_ids)

    def done() -> bool:
        return set(orders_by_event(shop.orders(sku))) >= expected and outbox_depth(gw) == 0

    try:
        wait_until(done, timeout, "every event ordered and the outbox drained")
    except AssertionError:
        missing = sorted(expected - set(orders_by_event(shop.orders(sku))))
        raise AssertionError(
            f"{len(missing)} events never became orders (first: {missing[:5]}); "
            f"outbox {outbox_states(gw)}; gateway log tail:\n{gw.tail()}"
        ) from None
    counts = orders_by_event(shop.orders(sku))
    duplicated = {e: n for e, n in counts.items() if n > 1}
    strangers = set(counts) - expected
    assert not duplicated, f"duplicate orders: {duplicated}"
    assert not strangers, f"orders for events never sent: {sorted(strangers)[:5]}"
    assert len(counts) == len(expected)
    stats = shop.stats()
    assert stats["posts_without_key"] == 0, stats
    assert "Traceback" not in gw.log_text(), gw.tail()
    return stats


@contextmanager
def gateway_and_shop_at(
    workdir: Path, broker: Broker, config: dict[str, Any], scale: float, **shop: Any
) -> Iterator[tuple[GatewayProcess, ShopProcess]]:
    """A shop and a ready gateway sharing one scaled clock; both gone afterwards."""
    shop_process = ShopProcess(workdir / "shop", time_scale=scale, **shop)
    gateway: GatewayProcess | None = None
    try:
        shop_process.start()
        gateway = GatewayProcess(
            workdir / "gateway",
            config,
            broker_url=broker.url,
            shop_url=shop_process.url,
            shop_token=shop_process.token,
            time_scale=scale,
        )
        gateway.start()
        gateway.wait_ready()
        yield gateway, shop_process
    finally:
        if gateway is not None:
            gateway.close()
        shop_process.kill()
