"""How fast the gateway drains its outbox into a shop that misbehaves. Prints figures.

    .venv/bin/python bench/bench_drain.py [--presses 150] [--seed 7]

Real processes in real time (no scaled clock): a private mosquitto, the reference
shop with fault knobs, ``python -m gateway run``. ``--presses`` distinct presses are
published at once; the figure is the time from the first press until every press is
exactly one order at the shop and the outbox is empty ("settled").

The fault mix is the one a flaky shop shows: 15 % answered 503, 15 % dropped after
the shop committed the order (the answer is lost), 5 % slower than the gateway's
timeout, 10 % 429 with Retry-After 1 s. Baseline in the same run: the same number of
bare keep-alive POSTs against the same shop with no faults.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402

from gateway.outbox.views import OrderViews  # noqa: E402
from tests.support.broker import Broker  # noqa: E402
from tests.support.gateway import GatewayProcess, orders_by_event, press_payload  # noqa: E402
from tests.support.publisher import Publisher  # noqa: E402
from tests.support.shop import ShopProcess, order_body  # noqa: E402

FAULTS = {
    "error_rate": 0.15,
    "drop_after_commit_rate": 0.15,
    "slow_rate": 0.05,
    "slow_seconds": 12.0,
    "rate_limit_rate": 0.10,
    "retry_after": 1,
}
TIMEOUT = "10s"  # commerce.timeout as a household has it (the default); slow answers take 12 s


def _depth(gw: GatewayProcess) -> int:
    views = OrderViews.open(gw.state_dir, create=False)
    try:
        return views.queue_depth()
    finally:
        views.close()


def settle(workdir: Path, presses: int, seed: int) -> dict[str, float | int | dict[str, int]]:
    with ExitStack() as stack:
        broker = Broker(workdir / "broker").start()
        stack.callback(broker.kill)
        shop = ShopProcess(workdir / "shop", faults={**FAULTS, "seed": seed}).start()
        stack.callback(shop.kill)
        gw = GatewayProcess(
            workdir / "gw",
            {"commerce": {"timeout": TIMEOUT}},
            broker_url=broker.url,
            shop_url=shop.url,
            shop_token=shop.token,
        )
        stack.callback(gw.close)
        gw.start().wait_ready()
        ids = [f"drain-{i:04d}" for i in range(presses)]
        started = time.perf_counter()
        with Publisher(broker.url, client_id="bench-button", persistent=True) as button:
            for seq, event_id in enumerate(ids):
                button.publish(gw.button_topic, press_payload(event_id, seq), qos=1)
        deadline = started + 600
        settled = None
        while time.perf_counter() < deadline:
            counts = orders_by_event(shop.orders())
            if len(counts) >= presses and _depth(gw) == 0:
                settled = time.perf_counter() - started
                break
            time.sleep(0.1)
        counts = orders_by_event(shop.orders())
        stats = shop.stats()
        shop.set_faults(
            error_rate=0.0, drop_after_commit_rate=0.0, slow_rate=0.0, rate_limit_rate=0.0
        )
        bare_started = time.perf_counter()
        with httpx.Client(headers={"Authorization": f"Bearer {shop.token}"}) as client:
            for i in range(presses):
                key = f"bare-{i}"
                client.post(
                    shop.url + "/orders", json=order_body(key), headers={"Idempotency-Key": key}
                ).raise_for_status()
        bare = time.perf_counter() - bare_started
        return {
            "presses": presses,
            "settled_s": -1.0 if settled is None else settled,
            "orders": len(counts),
            "duplicates": sum(1 for n in counts.values() if n > 1),
            "post_attempts": int(stats["post_attempts"]),
            "replays": int(stats["replays"]),
            "faults": dict(stats["faults"]),
            "bare_s": bare,
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presses", type=int, default=150)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rg-drain-") as tmp:
        figures = settle(Path(tmp), args.presses, args.seed)
    print(json.dumps(figures, indent=2))
    settled = figures["settled_s"]
    verdict = "met" if isinstance(settled, float) and 0 <= settled <= 60 else "NOT met"
    print(
        f"{args.presses} presses under the fault mix settled in {settled:.1f} s "
        f"(goal <= 60 s: {verdict}); bare keep-alive POSTs without faults: "
        f"{figures['bare_s']:.2f} s; {figures['duplicates']} duplicate orders"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
