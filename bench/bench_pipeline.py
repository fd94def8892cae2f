"""Measure the outbox -> sender -> shop pipeline on this machine. Prints figures only.

    .venv/bin/python bench/bench_pipeline.py [--orders 200] [--outage-orders 1000]

1. Raw SQLite commits/s (WAL, synchronous=FULL), the floor under everything else.
2. Intent committed -> order accepted, one at a time, against the real reference
   shop on loopback: p50 / p99.
3. An outage: N orders queued while the shop is down, then it comes back: time to
   the first order and until all are accepted (probe interval 5 s, real clock).
"""

from __future__ import annotations

import argparse
import queue
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from firmware_sim.shop.server import ShopServer  # noqa: E402
from gateway.clock import RealClock  # noqa: E402
from gateway.commerce.http import HttpCommerce  # noqa: E402
from gateway.config.models import CommerceSection  # noqa: E402
from gateway.core.events import OrderState, OrderUpdate, PlaceOrder  # noqa: E402
from gateway.core.keys import order_key  # noqa: E402
from gateway.engine.sender import Sender  # noqa: E402
from gateway.outbox.store import Store  # noqa: E402

GATEWAY = "bench"


def raw_sqlite(workdir: Path, n: int = 500) -> float:
    conn = sqlite3.connect(workdir / "raw.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)")
    started = time.perf_counter()
    for i in range(n):
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO t (id, v) VALUES (?, ?)", (i, b"x" * 200))
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return n / elapsed


def intent(store: Store, event_id: str) -> PlaceOrder:
    return PlaceOrder(
        key=order_key(store.secret(), GATEWAY, "laundry", event_id),
        product="detergent",
        sku="TIDE-PODS-42",
        quantity=1,
        device="laundry",
        trigger="press",
        event_id=event_id,
        created_at=time.time(),
        gateway=GATEWAY,
    )


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def latency(workdir: Path, n: int) -> list[float]:
    shop = ShopServer(workdir / "shop1.db", token="tok").start()
    settings = CommerceSection.model_validate({"base_url": shop.url, "token": "tok"})
    backend = HttpCommerce(settings)
    updates: queue.Queue[OrderUpdate] = queue.Queue()
    sender = Sender(workdir / "gw1", backend, RealClock(), settings, updates.put)
    store = Store.open(workdir / "gw1")
    sender.start()
    samples = []
    try:
        for i in range(n):
            started = time.perf_counter()
            store.commit([intent(store, f"lat-{i}")])
            sender.wake()
            while updates.get(timeout=30).state is not OrderState.ACCEPTED:
                pass
            samples.append(time.perf_counter() - started)
    finally:
        sender.stop()
        backend.close()
        store.close()
        shop.stop()
    return samples


def outage(workdir: Path, n: int) -> tuple[float, float, float]:
    shop = ShopServer(workdir / "shop2.db", token="tok").start()
    port, url = shop.port, shop.url
    shop.stop()
    settings = CommerceSection.model_validate(
        {"base_url": url, "token": "tok", "connect_timeout": "1s"}
    )
    backend = HttpCommerce(settings)
    updates: queue.Queue[OrderUpdate] = queue.Queue()
    sender = Sender(workdir / "gw2", backend, RealClock(), settings, updates.put)
    store = Store.open(workdir / "gw2")
    sender.start()
    started = time.perf_counter()
    for i in range(n):
        store.commit([intent(store, f"out-{i}")])
        sender.wake()
    queued_in = time.perf_counter() - started
    time.sleep(2.0)  # the sender is probing by now
    shop = ShopServer(workdir / "shop2.db", token="tok", port=port).start()
    back = time.perf_counter()
    first = None
    accepted = 0
    try:
        while accepted < n:
            update = updates.get(timeout=120)
            if update.state is OrderState.ACCEPTED:
                accepted += 1
                first = first if first is not None else time.perf_counter() - back
        total = time.perf_counter() - back
        assert len(shop.orders()) == n, "every queued order is exactly one shop order"
    finally:
        sender.stop()
        backend.close()
        store.close()
        shop.stop()
    return queued_in, first or 0.0, total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=200)
    parser.add_argument("--outage-orders", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        print(f"raw SQLite commits/s (WAL, synchronous=FULL): {raw_sqlite(workdir):.0f}")
        samples = latency(workdir, args.orders)
        print(
            f"intent committed -> accepted, {len(samples)} orders one at a time: "
            f"p50 {statistics.median(samples) * 1000:.1f} ms, "
            f"p99 {pct(samples, 0.99) * 1000:.1f} ms"
        )
        queued_in, first, total = outage(workdir, args.outage_orders)
        print(
            f"outage: {args.outage_orders} orders committed in {queued_in:.2f} s; after the shop "
            f"returned: first order {first:.2f} s, all accepted {total:.2f} s "
            f"({args.outage_orders / max(total - first, 1e-9):.0f} orders/s once flowing)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
