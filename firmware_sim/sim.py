"""``reorder-sim``: run a scenario's virtual devices against an MQTT broker.

    reorder-sim --broker mqtt://127.0.0.1:1883 --scenario firmware_sim/scenarios/demo.yaml \\
        --time-scale 600 --shop-url http://127.0.0.1:8080/api/v1 --shop-token T

Time comes from the clock seam (:func:`gateway.clock.make_clock`), so at
``--time-scale 600`` ten sim minutes pass per real second. Every action is one
line on stdout; the last line is always a JSON summary of counts.

>>> from pathlib import Path
>>> from firmware_sim.scenario import load_scenario
>>> runner = SimRunner(load_scenario(Path("firmware_sim/scenarios/demo.yaml")), quiet=True)
>>> sorted(runner.counts)[:2]
['double_publishes', 'duplicates']
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import json
import os
import random
import secrets
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

import httpx
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from firmware_sim.cliargs import positive_number
from firmware_sim.scenario import Scenario, ScenarioError, load_scenario
from firmware_sim.virtual_devices import VirtualDevice, build_device, garbage, moment
from gateway.clock import Clock, make_clock

COUNTERS = (
    "presses",
    "duplicates",
    "double_publishes",
    "readings",
    "lifts",
    "malformed",
    "flood",
    "reconnects",
    "refills",
    "shop_errors",
    "published",
)


class LinkError(Exception):
    """The broker cannot be reached, or refused the connection."""


class MqttLink:
    """The sim's one MQTT connection (paho 2.x, QoS 1, PUBACKs reported per message).

    >>> # link = MqttLink("mqtt://127.0.0.1:1883", client_id="reorder-sim-1"); link.connect()
    >>> # link.publish("zigbee2mqtt/pantry_button", b'{"action":"single"}')
    """

    def __init__(self, url: str, client_id: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ValueError(
                f"--broker must look like mqtt://host:1883 or mqtts://host:8883, not {url!r}"
            )
        self.host = parts.hostname
        self.port = parts.port or (8883 if parts.scheme == "mqtts" else 1883)
        # Shown in messages; never includes the password.
        self.where = f"{parts.scheme}://{self.host}:{self.port}"
        self._url = parts
        self._client_id = client_id
        self.client = self._new_client()
        self.generation = 0  # successful connections so far
        self._connected = threading.Event()
        self._refused: str | None = None
        self._cond = threading.Condition()
        self._pending: dict[int, Callable[[], None] | None] = {}
        self._early: set[int] = set()

    def _new_client(self) -> mqtt.Client:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self._client_id,
            protocol=mqtt.MQTTv311,
            clean_session=True,
        )
        if self._url.scheme == "mqtts":
            client.tls_set()  # system CAs, certificate and host name verified
        if self._url.username:
            client.username_pw_set(self._url.username, self._url.password)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        return client

    def _on_connect(self, _c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            self._refused = str(reason)
            return
        self.generation += 1
        self._connected.set()

    def _on_disconnect(self, _c: Any, _u: Any, _f: Any, _reason: Any, _p: Any) -> None:
        self._connected.clear()

    def _on_publish(self, _c: Any, _u: Any, mid: int, _reason: Any, _p: Any) -> None:
        # Runs on paho's thread while paho holds its own lock: never call paho from here.
        with self._cond:
            if mid in self._pending:
                callback = self._pending.pop(mid)
                self._cond.notify_all()
            else:
                self._early.add(mid)  # PUBACK beat publish() to registering the mid
                callback = None
        if callback is not None:
            callback()

    def connect(self) -> None:
        try:
            self.client.connect(self.host, self.port, keepalive=30)
        except OSError as exc:
            raise LinkError(f"cannot connect to {self.where}: {exc.strerror or exc}") from None
        self.client.loop_start()
        self._await_connack()

    def _await_connack(self) -> None:
        deadline = time.monotonic() + 10.0
        while not self._connected.wait(0.05):
            if self._refused or time.monotonic() > deadline:
                self.client.loop_stop()
                reason = self._refused or "no answer within 10 s"
                raise LinkError(f"{self.where} refused the connection: {reason}")

    def publish(
        self, topic: str, payload: bytes, *, on_ack: Callable[[], None] | None = None
    ) -> None:
        info = self.client.publish(topic, payload, qos=1)
        with self._cond:
            if info.mid in self._early:
                self._early.discard(info.mid)
                acked_already = True
            else:
                self._pending[info.mid] = on_ack
                acked_already = False
        if acked_already and on_ack is not None:
            on_ack()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until the broker has acknowledged everything; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._pending, timeout)

    def reconnect(self) -> None:
        """Close the connection cleanly and open a new one, as a device after a Wi-Fi drop."""
        self.flush(5.0)
        self.close()
        self._connected.clear()
        # A fresh paho client: loop_start() on a used one leaks its wake-up socket pair.
        self.client = self._new_client()
        with self._cond:
            # Whatever was never acknowledged stays with its device, which re-sends it.
            self._pending.clear()
            self._early.clear()
        self.connect()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class ShopWatcher:
    """Polls the shop for delivered orders per sku; each new delivery is reported once.

    >>> # watcher = ShopWatcher("http://127.0.0.1:8080/api/v1", token, ["LAVAZZA-1KG"])
    >>> # watcher.poll(host, now) -> [("LAVAZZA-1KG", "ord_12")]
    """

    def __init__(self, url: str, token: str | None, skus: list[str]) -> None:
        if urlsplit(url).scheme not in ("http", "https"):
            raise ValueError(f"--shop-url must be an http:// or https:// URL, not {url!r}")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        # TLS verification stays on (httpx default).
        self._http = httpx.Client(base_url=url.rstrip("/") + "/", headers=headers, timeout=5.0)
        self.url = url
        self.skus = skus
        self._seen: set[str] = set()

    def baseline(self, host: SimRunner, when: float) -> None:
        """Remember orders delivered before the run started: they refill nothing."""
        self._seen.update(order_id for _, order_id in self.poll(host, when))

    def poll(self, host: SimRunner, when: float) -> list[tuple[str, str]]:
        fresh = []
        for sku in self.skus:
            for order in self._delivered(host, when, sku):
                order_id = str(order.get("id"))
                if order_id not in self._seen:
                    self._seen.add(order_id)
                    fresh.append((sku, order_id))
        return fresh

    def _delivered(self, host: SimRunner, when: float, sku: str) -> list[dict[str, Any]]:
        try:
            response = self._http.get("orders", params={"sku": sku})
        except httpx.HTTPError as exc:
            host.count("shop_errors")
            host.say(when, f"shop: cannot reach {self.url}: {type(exc).__name__}")
            return []
        if response.status_code != 200:
            host.count("shop_errors")
            hint = " — check --shop-token" if response.status_code in (401, 403) else ""
            host.say(when, f"shop: GET orders?sku={sku} answered {response.status_code}{hint}")
            return []
        try:
            orders = response.json()["orders"]
            return [
                o for o in orders if o.get("status") == "delivered" and o.get("sku", sku) == sku
            ]
        except (ValueError, KeyError, TypeError, AttributeError):
            host.count("shop_errors")
            host.say(when, 'shop: the orders answer is not {"orders": [...]} JSON')
            return []

    def close(self) -> None:
        self._http.close()


class SimRunner:
    """Runs one scenario: a sim-time event queue in front of one MQTT connection.

    >>> # runner = SimRunner(scenario, broker="mqtt://127.0.0.1:1883", seconds=60)
    >>> # runner.run()  -> {"presses": 4, ...}
    """

    def __init__(
        self,
        scenario: Scenario,
        *,
        broker: str = "mqtt://127.0.0.1:1883",
        time_scale: float | None = None,
        seconds: float | None = None,
        seed: int | None = None,
        shop_url: str | None = None,
        shop_token: str | None = None,
        gateway_id: str | None = None,
        run_id: str | None = None,
        quiet: bool = False,
        out: TextIO | None = None,
        shared_clock: bool = False,
    ) -> None:
        self.scenario = scenario
        # The scenario's moments are on the shared clock (RG_TIME_ORIGIN), which the
        # demo sets to read the scenario's start as it begins: the household then
        # lives on the same timeline as the gateway and the shop. Otherwise the
        # scenario starts whenever the sim does.
        self.shared_clock = shared_clock
        self.broker = broker
        self.time_scale = time_scale or scenario.time_scale
        self.seconds = seconds
        self.seed = scenario.seed if seed is None else seed
        self.gateway_id = gateway_id or scenario.gateway_id
        self.run_id = run_id or secrets.token_hex(3)
        self.quiet = quiet
        self.out = out or sys.stdout
        self.counts: dict[str, int] = dict.fromkeys(COUNTERS, 0)
        self.stop_event = threading.Event()
        self._queue: list[tuple[float, int, Callable[[float], None]]] = []
        self._order = itertools.count()
        self._lock = threading.Lock()
        self._clock: Clock | None = None
        self._link: MqttLink | None = None
        self._chaos_rng = random.Random(f"{self.seed}:chaos")
        self.devices: list[VirtualDevice] = [
            build_device(
                spec, self.gateway_id, random.Random(f"{self.seed}:{spec.name}"), self.run_id
            )
            for spec in scenario.devices
        ]
        url = shop_url or scenario.shop.url
        self.shop: ShopWatcher | None = None
        if url:
            skus = sorted({d.sku for d in self.devices if d.sku})
            self.shop = ShopWatcher(url, shop_token, skus)

    # ------------------------------------------------------------------ Host

    def at(self, when: float, action: Callable[[float], None]) -> None:
        heapq.heappush(self._queue, (when, next(self._order), action))

    def publish(
        self, topic: str, payload: bytes, *, on_ack: Callable[[], None] | None = None
    ) -> None:
        assert self._link is not None
        self._link.publish(topic, payload, on_ack=on_ack)
        self.count("published")
        if self._chaos_rng.random() < self.scenario.chaos.malformed_rate:
            kind, junk = garbage(self._chaos_rng, payload)
            self._link.publish(topic, junk)
            self.count("malformed")
            self.count("published")
            self._print(f"[sim {self._stamp(self._current)}] chaos: {kind} to {topic}")

    def say(self, when: float, text: str) -> None:
        self._print(f"[sim {self._stamp(when)}] {text}")

    def count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self.counts[key] = self.counts.get(key, 0) + n

    def pause(self, seconds: float) -> None:
        if self._clock is not None:
            self._clock.sleep(seconds)

    def request_reconnect(self, when: float) -> None:
        self.at(when, self._reconnect)

    # ------------------------------------------------------------------ running

    _current = 0.0

    def run(self) -> dict[str, int]:
        """Run until the scenario's duration (or ``seconds`` real seconds) has passed."""
        clock = make_clock(self.time_scale)
        self._clock = clock
        start = self.scenario.start
        if self.seconds is not None:
            end = start + self.seconds * self.time_scale
        else:
            end = start + self.scenario.duration
        self._link = MqttLink(self.broker, client_id=f"reorder-sim-{self.run_id}")
        self._link.connect()
        try:
            for device in self.devices:
                device.start(self, start, end)
            self._schedule_chaos(start, end)
            if self.shop is not None:
                self.shop.baseline(self, start)
                self.at(start + self.scenario.shop.poll, self._poll_shop)
            self._loop(clock, start, end)
            self._link.flush()
        finally:
            self._link.close()
            if self.shop is not None:
                self.shop.close()
        summary = dict(self.counts)
        print(json.dumps(summary, sort_keys=True), file=self.out, flush=True)
        return summary

    def _loop(self, clock: Clock, start: float, end: float) -> None:
        # On the shared clock, what fell due while the sim was starting is played at once.
        origin = start if self.shared_clock else clock.now()
        while not self.stop_event.is_set():
            if self._queue and self._queue[0][0] < end:
                when, _, action = heapq.heappop(self._queue)
            else:
                when, action = end, None
            delay = when - (start + clock.now() - origin)
            if delay > 0 and clock.wait(self.stop_event, delay):
                return
            if action is None:
                return
            self._current = when
            action(when)

    def _schedule_chaos(self, start: float, end: float) -> None:
        by_name = {d.name: d for d in self.devices}
        for flood in self.scenario.chaos.flood:
            device = by_name[flood.device]
            self.at(moment(flood, start), partial(self._flood, flood.rate, flood.seconds, device))
        for storm in self.scenario.chaos.reconnect_storm:
            for _ in range(storm.count):
                self.at(moment(storm, start), self._reconnect)

    def _flood(self, rate: float, seconds: float, device: VirtualDevice, when: float) -> None:
        total = int(rate * seconds)
        self.say(when, f"chaos: flooding {device.topic} with {total} messages ({rate:g}/s)")
        # A flood measures the gateway's throughput, so it runs in real time.
        began = time.monotonic()
        assert self._link is not None
        for index in range(total):
            if self.stop_event.is_set():
                return
            self._link.publish(device.topic, device.flood_payload())
            self.count("flood")
            self.count("published")
            due = began + (index + 1) / rate - time.monotonic()
            if due > 0:
                self.stop_event.wait(due)

    def _reconnect(self, when: float) -> None:
        assert self._link is not None
        self._link.reconnect()
        self.count("reconnects")
        self.say(when, "reconnected to the broker")
        for device in self.devices:
            device.on_reconnect(self, when)

    def _poll_shop(self, when: float) -> None:
        assert self.shop is not None
        for sku, order_id in self.shop.poll(self, when):
            for device in self.devices:
                if device.sku == sku:
                    device.refill(self, when, order_id)
        self.at(when + self.scenario.shop.poll, self._poll_shop)

    # ------------------------------------------------------------------ output

    def _stamp(self, when: float) -> str:
        return datetime.fromtimestamp(when, tz=UTC).strftime("%Y-%m-%d %H:%M")

    def _print(self, line: str) -> None:
        if not self.quiet:
            print(line, file=self.out, flush=True)


# ---------------------------------------------------------------------- CLI


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="reorder-sim",
        description="Run simulated buttons and sensors from a scenario against an MQTT broker.",
    )
    p.add_argument("--broker", default="mqtt://127.0.0.1:1883", help="mqtt:// or mqtts:// URL")
    p.add_argument("--scenario", required=True, type=Path, help="scenario YAML file")
    p.add_argument("--time-scale", type=positive_number, help="sim seconds per real second")
    p.add_argument("--seconds", type=positive_number, help="stop after this many real seconds")
    p.add_argument("--seed", type=int, help="random seed (default: the scenario's)")
    p.add_argument("--shop-url", help="Reorder API base URL, to refill sensors on delivery")
    p.add_argument("--shop-token", help="bearer token for the shop (default: $REORDER_SHOP_TOKEN)")
    p.add_argument("--gateway-id", help="gateway id for gpio topics (default: the scenario's)")
    p.add_argument("--quiet", action="store_true", help="print only the final JSON summary")
    p.add_argument(
        "--shared-clock",
        action="store_true",
        help="the scenario's start is on the shared clock ($RG_TIME_ORIGIN), as the demo sets it",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        scenario = load_scenario(args.scenario)
        runner = SimRunner(
            scenario,
            broker=args.broker,
            time_scale=args.time_scale,
            seconds=args.seconds,
            seed=args.seed,
            shop_url=args.shop_url,
            shop_token=args.shop_token or os.environ.get("REORDER_SHOP_TOKEN"),
            gateway_id=args.gateway_id,
            quiet=args.quiet,
            shared_clock=args.shared_clock,
        )
    except ScenarioError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"reorder-sim: {exc}", file=sys.stderr)
        return 2

    def stop(_signum: int, _frame: Any) -> None:
        runner.stop_event.set()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        runner.run()
    except LinkError as exc:
        print(f"reorder-sim: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
