"""Soak (opt-in, ``-m slow`` / RG_LONG=1): 30 minutes of a busy household at x1440.

The simulator's kitchen scale runs a month of coffee (a sim day per real minute)
with the shop refilling the jar on delivery, while a reorder-button presses twice
a second (one press in ten re-sent). The gateway is one process for the whole run;
every 15 s the test samples its RSS, its open file descriptors, its metrics page
and the row counts of its state database. Retention is set to two clock hours
(5 s real), so dedupe ids and delivered orders must be pruned as fast as they come.

Pass: RSS grows < 5 MB after warm-up, no fd growth, the database stays bounded,
and every distinct press is exactly one order. ``RG_SOAK_SECONDS`` shortens the
run for a quick look at the figures.
"""

from __future__ import annotations

import os
import random
import re
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.clock import ORIGIN_ENV
from tests.e2e.conftest import MakeGateway, assert_exactly_once
from tests.support.broker import Broker
from tests.support.gateway import GatewayProcess, press_payload
from tests.support.publisher import Publisher
from tests.support.shop import ShopProcess

SOAK_SECONDS = float(os.environ.get("RG_SOAK_SECONDS", "1800"))
SCALE = 1440.0
SAMPLE_EVERY = 15.0
PRESSES_PER_SECOND = 2.0
ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "firmware_sim" / "scenarios" / "month-of-coffee.yaml"

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(SOAK_SECONDS + 600)]

SOAK_CONFIG: dict[str, Any] = {
    "limits": {"dedupe_retention": "2h", "history_retention": "2h"},
    # Polled every clock hour (2.5 s real) until delivered three clock hours after.
    "commerce": {"poll_interval": "1h"},
    "metrics": {"enabled": True, "port": 0},
    "products": {
        "detergent": {"sku": "TIDE-PODS-42", "one_open_order": False},
        "coffee": {"sku": "LAVAZZA-1KG", "quantity": 2},
    },
    "sensors": [
        {
            "name": "coffee-scale",
            "mqtt": "sensors/coffee-scale/state",
            "profile": "json",
            "value": "weight_g",
            "unit": "g",
            "product": "coffee",
            "reorder_below": 250,
            "rearm_above": 800,
            # 10 s real: far longer than a lift, as 60 s is at home.
            "settle": "4h",
            "stale_after": "1d",
        }
    ],
}


@dataclass(frozen=True)
class Sample:
    at: float
    rss_kb: int
    fds: int
    orders_rows: int
    seen_rows: int
    db_bytes: int


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


def sample(gw: GatewayProcess) -> Sample:
    db = gw.state_dir / "gateway.db"
    # Read-only: the test must not write to the database it measures.
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        orders = conn.execute("SELECT count(*) FROM orders").fetchone()[0]
        seen = conn.execute("SELECT count(*) FROM seen_events").fetchone()[0]
    finally:
        conn.close()
    size = sum(p.stat().st_size for p in gw.state_dir.glob("gateway.db*"))
    return Sample(
        time.monotonic(),
        rss_kb(gw.pid),
        len(os.listdir(f"/proc/{gw.pid}/fd")),
        int(orders),
        int(seen),
        size,
    )


def press_forever(broker: Broker, gw: GatewayProcess, stop: threading.Event) -> list[str]:
    """Presses at a steady rate until ``stop``; returns the distinct event ids sent."""
    rng = random.Random("soak")
    sent: list[str] = []
    with Publisher(broker.url, client_id="soak-button", persistent=True) as button:
        seq = 0
        while not stop.wait(1.0 / PRESSES_PER_SECOND):
            event_id = f"soak-{seq:06d}"
            button.publish(gw.button_topic, press_payload(event_id, seq), qos=1)
            if rng.random() < 0.1:
                button.publish(gw.button_topic, press_payload(event_id, seq), qos=1)
            sent.append(event_id)
            seq += 1
    return sent


def test_soak(
    broker: Broker, make_gateway: MakeGateway, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ORIGIN_ENV, f"{time.time():.6f}")
    shop = ShopProcess(
        tmp_path / "soak-shop", time_scale=SCALE, ship_after="1h", deliver_after="3h"
    )
    sim: subprocess.Popen[bytes] | None = None
    try:
        shop.start()
        gw = make_gateway(SOAK_CONFIG, shop=shop, time_scale=SCALE)
        gw.start().wait_ready()
        pid = gw.pid
        metrics_url = re.search(r"metrics: serving (\S+/metrics)", gw.current_log())
        assert metrics_url, gw.tail()
        argv = [sys.executable, "-m", "firmware_sim.sim", "--broker", broker.url]
        argv += ["--scenario", str(SCENARIO), "--time-scale", f"{SCALE:g}"]
        argv += ["--seconds", f"{SOAK_SECONDS:g}", "--shop-url", shop.url, "--quiet"]
        with (tmp_path / "sim.log").open("wb") as sim_log:
            sim = subprocess.Popen(
                argv,
                env={**os.environ, "REORDER_SHOP_TOKEN": shop.token},
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=sim_log,
            )

        stop = threading.Event()
        sent: list[str] = []
        presser = threading.Thread(
            target=lambda: sent.extend(press_forever(broker, gw, stop)), daemon=True
        )
        presser.start()
        samples: list[Sample] = []
        started = time.monotonic()
        try:
            while time.monotonic() - started < SOAK_SECONDS:
                time.sleep(SAMPLE_EVERY)
                assert gw.running and gw.pid == pid, gw.tail()
                assert presser.is_alive(), "the button thread died"
                # Scraped like Prometheus would: the metrics server must not leak either.
                assert httpx.get(metrics_url.group(1), timeout=10).status_code == 200
                samples.append(sample(gw))
        finally:
            stop.set()
            presser.join(timeout=30)

        stats = assert_exactly_once(shop, gw, sent, timeout=120, sku="TIDE-PODS-42")
        report(samples, len(sent), stats)
        warm = max(1, len(samples) // 10)  # the first tenth: caches, pools, WAL fill up
        baseline, tail = samples[warm - 1], samples[-max(1, len(samples) // 4) :]
        assert samples[-1].rss_kb - baseline.rss_kb < 5 * 1024, "RSS grew by 5 MB or more"
        assert max(s.fds for s in tail) <= max(s.fds for s in samples[:warm]) + 2, "fds grew"
        # Bounded: rows stay near what two clock hours of presses leave, never the total.
        rows = [s.orders_rows + s.seen_rows for s in samples]
        assert max(rows[len(rows) // 2 :]) <= 2 * max(rows[: len(rows) // 2]) + 50
        assert samples[-1].orders_rows < len(sent) / 4, "finished orders were not pruned"
        assert samples[-1].seen_rows < len(sent) / 4, "old event ids were not pruned"
    finally:
        if sim is not None:
            sim.kill()
            sim.wait()
        shop.kill()


def report(samples: list[Sample], presses: int, stats: dict[str, Any]) -> None:
    first, last = samples[0], samples[-1]
    print(
        f"soak {SOAK_SECONDS:.0f}s: {presses} presses, {stats['orders']} shop orders; "
        f"RSS {first.rss_kb / 1024:.1f} -> {last.rss_kb / 1024:.1f} MB "
        f"(max {max(s.rss_kb for s in samples) / 1024:.1f}); "
        f"fds {first.fds} -> {last.fds} (max {max(s.fds for s in samples)}); "
        f"rows orders {last.orders_rows} seen {last.seen_rows} "
        f"(max {max(s.orders_rows + s.seen_rows for s in samples)}); "
        f"db+wal {last.db_bytes / 1024:.0f} KiB (max {max(s.db_bytes for s in samples) / 1024:.0f})"
    )
