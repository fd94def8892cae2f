"""The forecast trigger in the daemon: a real ``gateway run`` learns a scale's use,
is killed halfway and restarted on the same state directory, and still orders before
the jar runs low — with trigger ``forecast`` at the shop, once.

Time scale 86,400 (a sim day per real second). The scale loses 100 g a day from
1,500 g; the sensor needs six days of learned use before the forecast may order, so
a gateway that forgot what it learned at the restart (on day 8) could not order
before day 15 — by then the threshold (100 g, day 14) would have ordered instead.
Learned state kept, the forecast orders around day 11 (about 350 g left, for a
2-day lead time plus its safety margin).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.clock import ORIGIN_ENV
from tests.e2e.conftest import gateway_and_shop_at
from tests.support.broker import Broker
from tests.support.gateway import GatewayProcess
from tests.support.publisher import Publisher, wait_until
from tests.support.shop import ShopProcess

pytestmark = pytest.mark.e2e

SCALE = 86_400.0
SKU = "LAVAZZA-1KG"
TOPIC = "sensors/coffee-scale/state"
START_G, PER_DAY_G = 1500.0, 100.0
EVERY = 0.02  # real seconds between readings: about half an hour of sim time

CONFIG: dict[str, Any] = {
    "commerce": {"poll_interval": "2h"},
    "products": {"coffee": {"sku": SKU, "lead_time": "2d"}},
    "buttons": [],
    "sensors": [
        {
            "name": "coffee-scale",
            "mqtt": TOPIC,
            "profile": "json",
            "value": "weight_g",
            "unit": "g",
            "product": "coffee",
            "reorder_below": 100,
            "rearm_above": 400,
            "settle": "8h",
            "stale_after": "2d",
            "forecast": {"service_level": "99%", "lift_window": "2h", "min_days": 6},
        }
    ],
}


@pytest.fixture(autouse=True)
def shared_timeline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ORIGIN_ENV, f"{time.time():.6f}")


@pytest.fixture
def gateway_and_shop(
    tmp_path: Path, broker: Broker
) -> Iterator[tuple[GatewayProcess, ShopProcess]]:
    with gateway_and_shop_at(tmp_path, broker, CONFIG, SCALE) as pair:
        yield pair


def _feed_until(scale: Publisher, began: float, day: float) -> None:
    """Readings of the draining jar until sim ``day`` (measured from ``began``)."""
    while True:
        days = (time.monotonic() - began) * SCALE / 86_400.0
        if days >= day:
            return
        grams = max(0.0, START_G - PER_DAY_G * days)
        scale.publish(TOPIC, json.dumps({"weight_g": round(grams, 1)}))
        time.sleep(EVERY)


def test_the_forecast_orders_in_the_daemon_and_survives_a_restart(
    broker: Broker, gateway_and_shop: tuple[GatewayProcess, ShopProcess]
) -> None:
    gateway, shop = gateway_and_shop
    with Publisher(broker.url) as scale:
        began = time.monotonic()
        _feed_until(scale, began, 8.0)
        told = [e for e in gateway.events.items if e["outcome"] == "forecast"]
        assert told, "no projected empty date before the restart"
        assert shop.orders(SKU) == []
        gateway.restart()  # SIGKILL: what was learned must already be on disk
        gateway.wait_ready()
        _feed_until(scale, began, 13.5)
    wait_until(lambda: len(shop.orders(SKU)) >= 1, timeout=10, what="an order at the shop")
    orders = shop.orders(SKU)
    assert [o["source"]["trigger"] for o in orders] == ["forecast"]
    ordered = [
        e
        for e in gateway.events.items
        if e["outcome"] == "ordered" and e.get("device") == "coffee-scale"
    ]
    assert len(ordered) == 1
    detail = str(ordered[0]["detail"])
    assert "g/day, delivery usually 2.0 days → ordering now" in detail, detail
    left = float(detail.split(": ")[1].split(" g", maxsplit=1)[0])
    assert left > 200, detail  # well before the threshold: learned before the restart
