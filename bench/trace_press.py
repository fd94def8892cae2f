"""Where the time of one press goes: the gateway as a process, with stamps inside it.

    .venv/bin/python bench/trace_press.py [--presses 40] [--gap 0.05] [--show 3]

The gateway is started with ``bench/press_trace`` first on its PYTHONPATH, whose
``sitecustomize`` stamps perf_counter at paho's on_message, the core's batch, the
SQLite commit, the PUBACK, each publish, the sender's wake and dispatch, place_order
and httpx's socket writes. The bench stamps the press before publishing it and the
POST's first bytes at the stamping proxy (bench/common.py). Prints the last few
presses step by step, then the median of each step over all presses. The wrappers
cost ~10 µs each, so the absolute figures are a little higher than untraced.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.bench_gateway import Rig  # noqa: E402
from tests.support.gateway import BUTTON_TOPIC  # noqa: E402

Stamp = tuple[float, str, str]


def trace(workdir: Path, presses: int, gap: float) -> tuple[list[tuple[float, float]], list[Stamp]]:
    out = workdir / "trace.txt"
    with ExitStack() as stack:
        rig = Rig(workdir, stack)
        rig.gateway.extra_env = {
            "PYTHONPATH": f"{REPO / 'bench' / 'press_trace'}:{REPO}",
            "RG_TRACE": str(out),
        }
        rig.start_gateway()
        time.sleep(1.0)
        run = uuid.uuid4().hex[:8]
        presses_at: list[tuple[float, float]] = []
        for i in range(presses):
            known = len([s for s in rig.proxy.stamps if s.kind == "response"])
            payload = json.dumps({"event": "press", "id": f"{run}-{i}", "seq": i}).encode()
            started = time.perf_counter()
            rig.publisher.publish(BUTTON_TOPIC, payload, wait=False)
            request = rig.proxy.wait_count("request", known + 1)[-1]
            rig.proxy.wait_count("response", known + 1)
            presses_at.append((started, request.at))
            time.sleep(gap)
        rig.gateway.terminate()  # a clean exit writes the stamps
    stamps = []
    for line in out.read_text(encoding="utf-8").splitlines():
        at, thread, label = line.split()
        stamps.append((float(at), thread, label))
    return presses_at, stamps


FIRSTS = ("on_message>", "commit>", "commit<", "ack>", "wake>", "dispatch>", "http_write>")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presses", type=int, default=40)
    parser.add_argument("--gap", type=float, default=0.05)
    parser.add_argument("--show", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rg-trace-") as tmp:
        presses_at, stamps = trace(Path(tmp), args.presses, args.gap)
    steps: dict[str, list[float]] = {name: [] for name in (*FIRSTS, "POST at proxy")}
    for n, (started, posted) in enumerate(presses_at):
        mine = [s for s in stamps if started <= s[0] <= posted + 0.0005]
        if n >= len(presses_at) - args.show:
            print(f"press {n}: POST at the proxy after {(posted - started) * 1000:.2f} ms")
            for at, thread, label in mine:
                print(f"  {(at - started) * 1000:7.2f} ms  {thread:8s} {label}")
        for name in FIRSTS:
            first = next((at for at, _, label in mine if label == name), None)
            if first is not None:
                steps[name].append((first - started) * 1000)
        steps["POST at proxy"].append((posted - started) * 1000)
    print(f"\nmedian over {len(presses_at)} presses, ms after the press was published:")
    for name, values in steps.items():
        if values:
            print(f"  {name:14s} {statistics.median(values):6.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
