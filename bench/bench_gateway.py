"""Measure the real gateway (``python -m gateway run``, a subprocess) end to end, each
figure next to a baseline taken in the same run. Prints figures only.

    .venv/bin/python bench/bench_gateway.py [--presses 200] [--readings 10000] [--idle 60]

Set-up: a private mosquitto, the reference shop as a process, and a byte-pumping
proxy in front of the shop that stamps when each POST leaves the gateway and when
the shop's answer comes back (see :class:`bench.common.StampingProxy`).

1. start -> ready: process start until retained ``online`` is heard.
   Baseline: the interpreter importing the gateway's modules and exiting.
2. idle: CPU (utime+stime) over ``--idle`` seconds and RSS, next to a sleeping
   interpreter with the same imports and to mosquitto.
3. press -> request leaving the gateway -> shop's answer, one press at a time.
   Baselines: one MQTT hop (publish -> a subscriber hears it) and a bare httpx
   keep-alive POST through the same proxy. Then press -> POST at presses 20, 50 and
   100 ms apart, in rounds of ten alternating with the bare paho -> httpx relay
   (``bench/bare_relay.py``) on the same default-configured broker.
4. sensor readings/s: N readings (with message ids, so each is deduplicated and
   committed) between two non-JSON markers wait at the broker in the gateway's
   session; time from the report of one marker to the report of the other. Baseline: a bare
   paho subscriber parsing JSON, drained the same way. Peak RSS afterwards.
5. outage: 1,000 presses while the shop is down, then it comes back: time to the
   first and to the last order at the shop. Baseline: 1,000 bare keep-alive POSTs.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import subprocess
import sys
import time
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402

from bench.common import (  # noqa: E402
    Heard,
    Sleeper,
    StampedListener,
    StampingProxy,
    cpu_seconds,
    memory_mb,
    pct,
)
from tests.support.broker import Broker  # noqa: E402
from tests.support.gateway import BUTTON_TOPIC, GatewayProcess  # noqa: E402
from tests.support.publisher import Publisher  # noqa: E402
from tests.support.shop import ShopProcess, order_body  # noqa: E402

SENSOR_TOPIC = "bench/scale"
BARE_TOPIC = "bench/bare-scale"
Figures = dict[str, Any]


def _config() -> dict[str, Any]:
    return {
        "gateway": {"id": "bench"},
        "sensors": [
            {
                "name": "bench-scale",
                "mqtt": SENSOR_TOPIC,
                "profile": "json",
                "value": "weight_g",
                "event_id": "msg_id",
                "product": "detergent",
                "reorder_below": 100,
                "rearm_above": 200,
                # Never settles during the run: readings are deduplicated and stored,
                # no order is placed.
                "settle": "1h",
                "stale_after": "2h",
            }
        ],
    }


def _ms(values: list[float]) -> tuple[float, float]:
    return statistics.median(values) * 1000, pct(values, 0.99) * 1000


def _outcome(name: str) -> Any:
    def match(heard: Heard) -> bool:
        try:
            return bool(json.loads(heard.payload).get("outcome") == name)
        except ValueError:
            return False

    return match


class Rig:
    """Broker, shop process, stamping proxy, gateway process and two MQTT clients."""

    def __init__(self, workdir: Path, stack: ExitStack) -> None:
        self.workdir = workdir
        # mosquitto's defaults (set_tcp_nodelay off), as a household broker runs.
        self.broker = Broker(workdir / "broker").start()
        stack.callback(self.broker.kill)
        self.shop = ShopProcess(workdir / "shop").start()
        stack.callback(self.shop.kill)
        self.proxy = StampingProxy(self.shop.port)
        stack.callback(self.proxy.close)
        self.gateway = GatewayProcess(
            workdir / "gw",
            _config(),
            broker_url=self.broker.url,
            shop_url=self.proxy.url(),
            shop_token=self.shop.token,
        )
        stack.callback(self.gateway.close)
        prefix = f"reorder/{self.gateway.gateway_id}"
        self.status_topic, self.events_topic = f"{prefix}/status", f"{prefix}/events"
        self.listener = StampedListener(
            self.broker.url, [self.status_topic, self.events_topic, "bench/echo"]
        )
        stack.callback(self.listener.close)
        self.publisher = Publisher(self.broker.url)
        stack.callback(self.publisher.close)
        self.gateway.watcher.subscribed.wait(5)  # so start() does not wait on it later

    def start_gateway(self) -> float:
        """Start the gateway; seconds until ``online`` was heard."""
        started = time.perf_counter()
        self.gateway.start()
        heard = self.listener.wait_for(
            lambda h: h.topic == self.status_topic and h.payload == b"online", after=started
        )
        return heard.at - started


def start_to_ready(rig: Rig, runs: int) -> Figures:
    samples = []
    for i in range(runs):
        samples.append(rig.start_gateway())
        if i < runs - 1:
            rig.gateway.terminate()
    imports = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", Sleeper.IMPORTS], cwd=REPO, check=True, env=_env())
        imports.append(time.perf_counter() - started)
    return {
        "ready_median_s": statistics.median(samples),
        "ready_max_s": max(samples),
        "imports_median_s": statistics.median(imports),
        "runs": runs,
    }


def _env() -> dict[str, str]:
    import os

    return {**os.environ, "PYTHONPATH": str(REPO)}


def idle(rig: Rig, seconds: float) -> Figures:
    time.sleep(2.0)  # let the start settle (first resync, LED threads, ...)
    pid = rig.gateway.pid
    broker_pid = rig.broker.proc.pid if rig.broker.proc else 0
    with Sleeper() as sleeper:
        before = {p: cpu_seconds(p) for p in (pid, sleeper.pid, broker_pid)}
        started = time.monotonic()
        time.sleep(seconds)
        elapsed = time.monotonic() - started
        after = {p: cpu_seconds(p) for p in (pid, sleeper.pid, broker_pid)}
        sleeper_rss = memory_mb(sleeper.pid)[0]
    share = {p: (after[p] - before[p]) / elapsed * 100 for p in before}
    return {
        "seconds": elapsed,
        "cpu_pct": share[pid],
        "sleeper_cpu_pct": share[sleeper.pid],
        "broker_cpu_pct": share[broker_pid],
        "rss_mb": memory_mb(pid)[0],
        "sleeper_rss_mb": sleeper_rss,
    }


def press_latency(rig: Rig, presses: int, gap: float, warmup: int = 10) -> Figures:
    """One press at a time, ``gap`` seconds after the previous answer.

    (The gap used to matter: see "Nagle at the broker" in bench/README.md.)
    """
    to_request, to_answer, shop_time = [], [], []
    run = uuid.uuid4().hex[:8]
    for i in range(warmup + presses):
        known = len([s for s in rig.proxy.stamps if s.kind == "response"])
        payload = json.dumps({"event": "press", "id": f"{run}-{i}", "seq": i}).encode()
        started = time.perf_counter()
        rig.publisher.publish(BUTTON_TOPIC, payload, wait=False)
        request = rig.proxy.wait_count("request", known + 1)[-1]
        answer = rig.proxy.wait_count("response", known + 1)[-1]
        if i >= warmup:
            to_request.append(request.at - started)
            to_answer.append(answer.at - started)
            shop_time.append(answer.at - request.at)
        time.sleep(gap)
    hop = []
    for i in range(presses):
        started = time.perf_counter()
        rig.publisher.publish("bench/echo", str(i).encode(), wait=False)
        echo = str(i).encode()
        heard = rig.listener.wait_for(
            lambda h: h.topic == "bench/echo" and h.payload == echo,  # noqa: B023
            after=started,
        )
        hop.append(heard.at - started)
    bare = []
    with httpx.Client(headers={"Authorization": f"Bearer {rig.shop.token}"}) as client:
        for i in range(warmup + presses):
            started = time.perf_counter()
            response = client.post(
                rig.proxy.url() + "/orders",
                json=order_body(f"bare-{run}-{i}"),
                headers={"Idempotency-Key": f"bare-{run}-{i}"},
            )
            response.raise_for_status()
            if i >= warmup:
                bare.append(time.perf_counter() - started)
    figures: Figures = {"presses": presses, "gap_s": gap}
    for name, values in (
        ("request", to_request),
        ("accepted", to_answer),
        ("shop", shop_time),
        ("mqtt_hop", hop),
        ("bare_post", bare),
    ):
        figures[f"{name}_p50_ms"], figures[f"{name}_p99_ms"] = _ms(values)
    figures["peak_rss_mb"] = memory_mb(rig.gateway.pid)[1]
    return figures


RELAY_TOPIC = "bench/relay"


class BareRelay:
    """``bench/bare_relay.py`` as a process, POSTing through the rig's stamping proxy."""

    def __init__(self, rig: Rig) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                str(REPO / "bench" / "bare_relay.py"),
                rig.broker.url,
                RELAY_TOPIC,
                rig.proxy.url(),
                rig.shop.token,
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=_env(),
        )
        assert self.proc.stdout is not None
        if self.proc.stdout.readline().strip() != b"ready":
            raise RuntimeError("the bare relay did not start")

    def __enter__(self) -> BareRelay:
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()


def _press_to_request(rig: Rig, topic: str, presses: int, gap: float, warmup: int) -> list[float]:
    """Seconds from publishing each press (QoS 1) to its POST's first bytes at the proxy."""
    samples = []
    run = uuid.uuid4().hex[:8]
    for i in range(warmup + presses):
        known = len([s for s in rig.proxy.stamps if s.kind == "response"])
        payload = json.dumps({"event": "press", "id": f"{run}-{i}", "seq": i}).encode()
        started = time.perf_counter()
        rig.publisher.publish(topic, payload, wait=False)
        request = rig.proxy.wait_count("request", known + 1)[-1]
        rig.proxy.wait_count("response", known + 1)
        if i >= warmup:
            samples.append(request.at - started)
        time.sleep(gap)
    return samples


def latency_against_relay(rig: Rig, presses: int, gap: float, warmup: int = 10) -> Figures:
    """Press -> POST for the gateway and for the bare relay, same broker, same gap.

    The two alternate in rounds of ten presses, so that whatever else the machine
    does meanwhile falls on both alike.
    """
    gateway: list[float] = []
    relay: list[float] = []
    with BareRelay(rig):
        _press_to_request(rig, BUTTON_TOPIC, 0, gap, warmup)
        _press_to_request(rig, RELAY_TOPIC, 0, gap, warmup)
        for _ in range(max(1, presses // 10)):
            gateway += _press_to_request(rig, BUTTON_TOPIC, 10, gap, 0)
            relay += _press_to_request(rig, RELAY_TOPIC, 10, gap, 0)
    figures: Figures = {"presses": len(gateway), "gap_s": gap}
    figures["gateway_p50_ms"], figures["gateway_p99_ms"] = _ms(gateway)
    figures["relay_p50_ms"], figures["relay_p99_ms"] = _ms(relay)
    figures["ratio_p99"] = figures["gateway_p99_ms"] / figures["relay_p99_ms"]
    return figures


def _publish_readings(rig: Rig, count: int, topic: str = SENSOR_TOPIC) -> None:
    """A non-JSON start marker, ``count`` readings, a non-JSON end marker. The
    markers are reported as invalid, which is what the gateway's clock is read from."""
    run = uuid.uuid4().hex[:8]
    rig.publisher.publish(topic, b"start: not JSON", wait=False)
    for i in range(count):
        payload = json.dumps({"weight_g": 50, "msg_id": f"{run}-{i}"}).encode()
        rig.publisher.publish(topic, payload, wait=False)
    last = rig.publisher.publish(topic, b"end: not JSON", wait=True)
    assert last.is_published()


def sensor_throughput(rig: Rig, readings: int) -> Figures:
    rig.gateway.terminate()  # its session stays at the broker and collects the readings
    _publish_readings(rig, readings)
    started = time.perf_counter()
    rig.gateway.start()
    first, last = rig.listener.wait_all(_outcome("invalid"), after=started, count=2, timeout=120)
    gateway_rate = (readings + 1) / (last.at - first.at)
    rss, peak = memory_mb(rig.gateway.pid)
    bare_cmd = [sys.executable, str(REPO / "bench" / "bare_subscriber.py"), rig.broker.url]
    # Its own topic: the running gateway must not get a second flood meanwhile.
    subprocess.run([*bare_cmd, BARE_TOPIC, "prepare"], check=True, env=_env())
    _publish_readings(rig, readings, BARE_TOPIC)
    out = subprocess.run(
        [*bare_cmd, BARE_TOPIC, "drain"], check=True, capture_output=True, text=True, env=_env()
    )
    bare = json.loads(out.stdout)
    bare_rate = bare["messages"] / bare["seconds"]
    return {
        "readings": readings,
        "gateway_per_s": gateway_rate,
        "bare_per_s": bare_rate,
        "ratio_pct": gateway_rate / bare_rate * 100,
        "rss_mb": rss,
        "peak_rss_mb": peak,
    }


def _count(db: Path) -> int:
    """Rows in the ``orders`` table of the shop's or the gateway's database (read-only)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        return int(conn.execute("SELECT count(*) FROM orders").fetchone()[0])
    finally:
        conn.close()


def outage(rig: Rig, orders: int) -> Figures:
    rig.shop.stop()
    run = uuid.uuid4().hex[:8]
    outbox = rig.gateway.state_dir / "gateway.db"
    already = _count(outbox)
    started = time.perf_counter()
    for i in range(orders):
        payload = json.dumps({"event": "press", "id": f"out-{run}-{i}", "seq": i}).encode()
        rig.publisher.publish(BUTTON_TOPIC, payload, wait=False)
    # Counted in the outbox, not on the events topic: a burst of 1,000 decisions
    # overflows paho's queue of 1,000 publishes and some reports are dropped (counted
    # and logged by the gateway), while every order is committed.
    ordered = 0
    deadline = time.monotonic() + 120
    while ordered < orders and time.monotonic() < deadline:
        ordered = _count(outbox) - already
        time.sleep(0.02)
    queued_in = time.perf_counter() - started
    time.sleep(2.0)  # the sender is probing the dead shop by now
    before = _count(rig.shop.db)
    rig.shop.start()
    back = time.perf_counter()
    first = None
    done = before
    while done < before + orders and time.perf_counter() - back < 120:
        done = _count(rig.shop.db)
        if first is None and done > before:
            first = time.perf_counter() - back
        time.sleep(0.02)
    total = time.perf_counter() - back
    bare_started = time.perf_counter()
    with httpx.Client(headers={"Authorization": f"Bearer {rig.shop.token}"}) as client:
        for i in range(orders):
            key = f"bare-out-{run}-{i}"
            client.post(
                rig.shop.url + "/orders", json=order_body(key), headers={"Idempotency-Key": key}
            ).raise_for_status()
    bare_total = time.perf_counter() - bare_started
    return {
        "orders": orders,
        "committed": ordered,
        "queued_in_s": queued_in,
        "first_s": first or 0.0,
        "all_s": total,
        "accepted": done - before,
        "bare_s": bare_total,
    }


def run_all(workdir: Path, *, presses: int, readings: int, idle_seconds: float) -> Figures:
    with ExitStack() as stack:
        rig = Rig(workdir, stack)
        figures: Figures = {}
        figures["start"] = start_to_ready(rig, runs=5)
        print(f"start: {figures['start']}", flush=True)
        figures["idle"] = idle(rig, idle_seconds)
        print(f"idle: {figures['idle']}", flush=True)
        figures["press"] = press_latency(rig, presses, gap=0.1)
        print(f"press: {figures['press']}", flush=True)
        figures["relay"] = [latency_against_relay(rig, presses, gap) for gap in (0.02, 0.05, 0.1)]
        for relay in figures["relay"]:
            print(f"against the bare relay: {relay}", flush=True)
        figures["sensor"] = sensor_throughput(rig, readings)
        print(f"sensor: {figures['sensor']}", flush=True)
        figures["outage"] = outage(rig, 1000)
        print(f"outage: {figures['outage']}", flush=True)
        return figures


def main() -> int:
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presses", type=int, default=200)
    parser.add_argument("--readings", type=int, default=10_000)
    parser.add_argument("--idle", type=float, default=60.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run_all(Path(tmp), presses=args.presses, readings=args.readings, idle_seconds=args.idle)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
