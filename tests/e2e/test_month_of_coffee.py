"""A month of coffee, closed loop: the simulator's kitchen scale against the gateway
(a real ``gateway run`` process) and the reference shop, on one scaled timeline.

The jar drains, the gateway orders when it has settled below 250 g, the shop
delivers two sim days later, the simulator sees the delivery and refills the jar,
the gateway re-arms. Every other day or so somebody lifts the jar off the scale
for a few seconds: that must never order.

Time scale 86,400 (a sim day per real second) fits the month into ~30 s. At that
scale the demo's ``settle: 60s`` is 0.7 ms of real time — less than one SQLite
commit — so a lift (back on the scale ~15 sim seconds later) would outlast it
through nothing but processing latency, which a real kitchen never sees. The
gateway here settles for 8 sim hours (~0.3 s real), keeping the margin between a
lift and the settle as wide, in real time, as it is at home.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from gateway.clock import ORIGIN_ENV
from tests.e2e.conftest import gateway_and_shop_at
from tests.support.broker import Broker
from tests.support.gateway import GatewayProcess
from tests.support.publisher import wait_until
from tests.support.shop import ShopProcess

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "firmware_sim" / "scenarios" / "month-of-coffee.yaml"
SCALE = 86_400.0
SKU = "LAVAZZA-1KG"
SCALE_TOPIC = "sensors/coffee-scale/state"
LIFT_MAX_G = 5.0  # the simulator's lifted jar reads 0-5 g

GATEWAY_CONFIG: dict[str, Any] = {
    # Status polls every 2 sim hours (83 ms real) rather than the default 10 minutes,
    # which at this scale would poll the shop 140 times a second per open order.
    "commerce": {"poll_interval": "2h"},
    "products": {"coffee": {"sku": SKU, "quantity": 2}},
    "buttons": [],
    "sensors": [
        {
            "name": "coffee-scale",
            "mqtt": SCALE_TOPIC,
            "profile": "json",
            "value": "weight_g",
            "unit": "g",
            "product": "coffee",
            "reorder_below": 250,
            "rearm_above": 800,
            "settle": "8h",
            # A reading comes every 10 sim minutes (7 ms real); a day (1.2 s real)
            # keeps a scheduling hiccup from reporting a silent scale.
            "stale_after": "1d",
        }
    ],
}


def console_script(name: str) -> list[str]:
    """The installed entry point next to this interpreter, else ``python -m``."""
    script = Path(sys.executable).parent / name
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", {"reorder-sim": "firmware_sim.sim"}[name]]


@dataclass
class Episode:
    """One dip below the threshold, from ``sensor_low`` to how it ended."""

    low_at: int  # epoch second of the sensor_low decision (the events' resolution)
    value: float
    end: str | None = None  # "recovered" or "ordered"
    event_id: str | None = None


def epoch(stamp: str) -> int:
    """Whole seconds of an RFC 3339 UTC time (the events carry milliseconds)."""
    return int(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp())


def replay(events: list[dict[str, Any]]) -> tuple[list[Episode], int]:
    """Walk the scale's decisions through the depletion cycle the gateway promises:
    armed -low-> settling -recovered-> armed | settling -ordered-> ordered -rearmed-> armed.
    Any other step fails the test. Returns the episodes and the number of re-arms."""
    phase = "armed"
    episodes: list[Episode] = []
    rearms = 0
    steps = {
        ("armed", "sensor_low"): "settling",
        ("settling", "sensor_recovered"): "armed",
        ("settling", "ordered"): "ordered",
        ("ordered", "sensor_rearmed"): "armed",
    }
    for e in events:
        outcome = e["outcome"]
        if e.get("device") != "coffee-scale" or outcome in ("order_status", "sensor_stale"):
            continue
        following = steps.get((phase, outcome))
        assert following is not None, f"{outcome} while {phase}: {e}"
        if outcome == "sensor_low":
            episodes.append(Episode(epoch(e["at"]), float(e["value"])))
        elif outcome == "sensor_recovered":
            episodes[-1].end = "recovered"
        elif outcome == "ordered":
            episodes[-1].end = "ordered"
            episodes[-1].event_id = str(e["event_id"])
        else:
            rearms += 1
        phase = following
    return episodes, rearms


def low_second(event_id: str) -> int:
    """``low-1796896927.402`` -> 1796896927: the moment its episode began."""
    assert event_id.startswith("low-"), event_id
    return int(float(event_id[len("low-") :]))


@pytest.fixture
def month_gateway(tmp_path: Path, broker: Broker) -> Iterator[tuple[GatewayProcess, ShopProcess]]:
    with gateway_and_shop_at(
        tmp_path, broker, GATEWAY_CONFIG, SCALE, ship_after="1d", deliver_after="1d"
    ) as pair:
        yield pair


@pytest.fixture(autouse=True)
def shared_timeline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Shop, gateway and simulator read scaled time from one origin."""
    monkeypatch.setenv(ORIGIN_ENV, f"{time.time():.6f}")


def run_month(broker: Broker, shop: ShopProcess) -> dict[str, int]:
    argv = [
        *console_script("reorder-sim"),
        "--broker",
        broker.url,
        "--scenario",
        str(SCENARIO),
        "--time-scale",
        f"{SCALE:g}",
        "--shop-url",
        shop.url,
        "--quiet",
    ]
    env = {**os.environ, "REORDER_SHOP_TOKEN": shop.token}
    # subprocess.run kills the simulator if it overruns.
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=90, check=False)
    assert done.returncode == 0, done.stderr
    summary: dict[str, int] = json.loads(done.stdout.strip().splitlines()[-1])
    return summary


def test_a_month_of_coffee_orders_once_per_depletion_and_never_on_a_lift(
    broker: Broker, month_gateway: tuple[GatewayProcess, ShopProcess]
) -> None:
    gateway, shop = month_gateway
    sim = run_month(broker, shop)
    assert sim["shop_errors"] == 0, sim
    assert sim["lifts"] > 0, sim

    def shop_event_ids() -> list[str]:
        return [str(o["source"]["event_id"]) for o in shop.orders(SKU)]

    def ordered_ids() -> set[str]:
        return {
            str(e["event_id"])
            for e in gateway.events.items
            if e["outcome"] == "ordered" and e.get("device") == "coffee-scale"
        }

    # The last decisions may still be on their way to the shop or to us.
    wait_until(lambda: set(shop_event_ids()) == ordered_ids(), 20, "shop and events agree")
    episodes, rearms = replay(gateway.events.items)
    at_shop = shop_event_ids()
    ordered = [ep for ep in episodes if ep.end == "ordered"]

    # Lifting the jar never orders: each lift's dip ended back above the threshold
    # (replay() refuses an order after a recovery without a new dip), and every order
    # is named after the dip it ended, not an earlier one that recovered.
    lifts = [ep for ep in episodes if ep.value <= LIFT_MAX_G]
    assert lifts, f"no lift was seen on the events topic: {episodes}"
    assert all(ep.end == "recovered" for ep in lifts if ep.end is not None), lifts
    assert any(ep.end == "recovered" for ep in episodes)
    for ep in ordered:
        assert ep.event_id is not None and low_second(ep.event_id) == ep.low_at, ep

    # Each depletion ordered once: one shop order per ordered episode, none twice.
    assert len(at_shop) == len(set(at_shop)), f"an episode ordered twice: {at_shop}"
    assert sorted(at_shop) == sorted(ep.event_id for ep in ordered if ep.event_id)
    # 1000 g at 60 g a day crosses 250 g about every two weeks (refilled in between).
    assert len(ordered) == 2, episodes

    # Refills re-arm: every delivery the simulator poured into the jar re-armed it.
    assert sim["refills"] >= 1, sim
    assert rearms == sim["refills"], (rearms, sim)

    assert "Traceback" not in gateway.log_text(), gateway.tail()
