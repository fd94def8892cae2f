"""The demo's story: the household's actions and the gateway's decisions, in words.

:class:`Story` reads two streams — ``reorder-sim``'s stdout and the JSON the gateway
publishes on ``reorder/<id>/events`` — and prints one line per thing a person
would care about, stamped with household (sim) time, e.g.::

    06:30  household laundry press
    06:31  gateway   laundry button (GPIO 17) pressed → order for detergent
    06:31  gateway   order ord_1 (detergent, from laundry) accepted
    06:51  gateway   laundry button (GPIO 17) pressed while an order is open → already ordered

It also counts what happened, for the summary that ends the demo.
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import IO, Any

from firmware_sim.scenario import Scenario
from gateway.clock import Clock
from gateway.config.models import Config

_SIM_LINE = re.compile(r"^\[sim (\d{4}-\d\d-\d\d \d\d:\d\d)\] (.*)$")
# Routine chatter the story leaves to sim.log: plain readings, battery reports, usage.
_ROUTINE = re.compile(r"^\S+ (-?\d+ (g|%)|status battery=\S+|used [\d.]+ %)$")

ShopLookup = Callable[[str, str], str | None]


class Story:
    """Turns the household's actions and the gateway's decisions into lines a person
    can follow, stamped with household (sim) time, and counts what happened.

    >>> import io
    >>> story = Story(None, None, 600.0, io.StringIO())
    >>> story.decision({"outcome": "duplicate", "device": "pantry"})
    >>> story.outcomes["duplicate"]
    1
    """

    def __init__(
        self,
        config: Config | None,
        scenario: Scenario | None,
        scale: float,
        out: IO[str],
        lookup: ShopLookup | None = None,
    ) -> None:
        self.config = config
        self.scale = scale
        self.out = out
        self.lookup = lookup
        self._lock = threading.Lock()
        self.outcomes: Counter[str] = Counter()
        self.rules: Counter[str] = Counter()
        self.events = 0
        # sim time = offset + monotonic() * scale; calibrated from the sim's own stamps.
        self._start = scenario.start if scenario is not None else 0.0
        self._offset: float | None = None
        self._clock: Clock | None = None
        self._orders: dict[str, tuple[str, str]] = {}  # short key -> (device, event_id)

    # ------------------------------------------------------------------ clock

    def household_starts(self, clock: Clock | None = None) -> None:
        """The sim was just spawned. With ``clock`` (the demo's shared timeline) the
        story tells that clock's time; without, the sim's own clock starts once Python
        is up (~0.5 s) and its stamps calibrate the story's."""
        if clock is not None:
            self._clock = clock
            return
        self._offset = self._start - (time.monotonic() + 0.5) * self.scale

    def _calibrate(self, stamp: float) -> None:
        # A line is read after it was printed, so stamp - now*scale never overshoots:
        # the largest such value is the best estimate of the sim's offset.
        candidate = stamp - time.monotonic() * self.scale
        if self._offset is None or candidate > self._offset:
            self._offset = candidate

    def _now(self) -> str:
        if self._clock is not None:
            return datetime.fromtimestamp(self._clock.now(), tz=UTC).strftime("%H:%M")
        if self._offset is None:
            return "     "
        sim = self._offset + time.monotonic() * self.scale
        return datetime.fromtimestamp(sim, tz=UTC).strftime("%H:%M")

    def print(self, line: str) -> None:
        with self._lock:
            print(line, file=self.out, flush=True)

    def _tell(self, who: str, text: str) -> None:
        self.print(f"{self._now()}  {who:<9} {text}")

    # ------------------------------------------------------------------ inputs

    def household(self, line: str) -> None:
        """One line of ``reorder-sim`` output."""
        match = _SIM_LINE.match(line)
        if match is None:
            self._tell("household", line)
            return
        stamp = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M").replace(tzinfo=UTC)
        with self._lock:
            self._calibrate(stamp.timestamp())
        text = match.group(2)
        if not _ROUTINE.match(text):
            self._tell("household", text)

    def decision(self, event: dict[str, Any]) -> None:
        """One JSON message from the gateway's events topic."""
        outcome = str(event.get("outcome", "?"))
        with self._lock:
            self.events += 1
            self.outcomes[outcome] += 1
            if outcome == "absorbed":
                self.rules[str(event.get("rule", "?"))] += 1
            if outcome in ("ordered", "held") and event.get("order"):
                self._orders[str(event["order"])] = (
                    str(event.get("device")),
                    str(event.get("event_id")),
                )
        text = self._render(outcome, event)
        if text is not None:
            self._tell("gateway", text)

    def device_of(self, event_id: str) -> str | None:
        """The device whose press or reading made the order of ``event_id``, as the
        gateway reported it (for shops that keep only the event id, like Vendure).

        >>> import io
        >>> story = Story(None, None, 1.0, io.StringIO())
        >>> story.decision({"outcome": "ordered", "device": "pantry", "event_id": "e1",
        ...                 "order": "k1"})
        >>> story.device_of("e1"), story.device_of("e2")
        ('pantry', None)
        """
        with self._lock:
            for device, event in self._orders.values():
                if event == event_id:
                    return device
        return None

    # ------------------------------------------------------------------ wording

    def _what(self, device: str) -> str:
        if self.config is not None:
            for button in self.config.buttons:
                if button.name == device:
                    how = f"GPIO {button.gpio}" if button.gpio is not None else button.profile
                    return f"{device} button ({how})"
        return device

    def _sensor_words(self, device: str) -> tuple[str, str]:
        """(threshold with unit, settle) for a sensor, for the story's sentences."""
        if self.config is not None:
            for sensor in self.config.sensors:
                if sensor.name == device:
                    unit = sensor.unit or ""
                    unit = unit if unit in ("", "%") else f" {unit}"
                    return f"{sensor.reorder_below:g}{unit}", f"{sensor.settle:g} s"
        return "its threshold", "a while"

    def _reading(self, device: str, value: object) -> str:
        """A sensor value with the sensor's unit, e.g. '243 g' or '12%'."""
        if not isinstance(value, int | float):
            return "?"
        unit = ""
        if self.config is not None:
            for sensor in self.config.sensors:
                if sensor.name == device and sensor.unit:
                    unit = sensor.unit if sensor.unit == "%" else f" {sensor.unit}"
        return f"{value:.0f}{unit}"

    def _is_sensor(self, device: str) -> bool:
        return self.config is not None and any(s.name == device for s in self.config.sensors)

    def _order_name(self, short_key: str) -> str:
        device_event = self._orders.get(short_key)
        if device_event is not None and self.lookup is not None:
            shop_id = self.lookup(*device_event)
            if shop_id is not None:
                return shop_id
        return short_key

    def _render(self, outcome: str, e: dict[str, Any]) -> str | None:
        device = str(e.get("device", "?"))
        product = e.get("product") or "?"
        value = e.get("value")
        shown = self._reading(device, value)
        if outcome in ("ordered", "held"):
            held = " (held for the confirm window)" if outcome == "held" else ""
            if self._is_sensor(device):
                below, settle = self._sensor_words(device)
                return f"{device} below {below} for {settle} → reorder {product}{held}"
            return f"{self._what(device)} pressed → order for {product}{held}"
        if outcome == "absorbed":
            rule = e.get("rule", "?")
            if rule == "one_open_order":
                return f"{self._what(device)} pressed while an order is open → already ordered"
            return f"{self._what(device)}: no order for {product}, absorbed by {rule}"
        if outcome == "duplicate":
            why = e.get("detail") or f"event {e.get('event_id')} seen before"
            return f"{device}: the same press again ({why}) → counted once"
        if outcome == "sensor_low":
            below, settle = self._sensor_words(device)
            return f"{device} reads {shown}, below {below}: ordering if it stays there {settle}"
        if outcome == "sensor_recovered":
            return f"{device} back to {shown} before it settled (lifted off?) → no order"
        if outcome == "sensor_rearmed":
            return f"{device} refilled to {shown} → re-armed for the next reorder"
        if outcome == "order_status":
            name = self._order_name(str(e.get("order", "?")))
            return f"order {name} ({product}, from {device}) {e.get('state', '?')}"
        detail = e.get("detail")
        return f"{device}: {outcome}" + (f" — {detail}" if detail else "")

    # ------------------------------------------------------------------ summary

    def _kind(self, device: str) -> str:
        if self.config is not None:
            for button in self.config.buttons:
                if button.name == device:
                    return "gpio" if button.gpio is not None else "mqtt"
        return "sensor" if self._is_sensor(device) else "unknown"

    def summary(self, orders: list[dict[str, Any]], sim: dict[str, Any]) -> dict[str, Any]:
        """Print the human summary; return the facts for the JSON line."""
        devices: Counter[str] = Counter()
        statuses: Counter[str] = Counter()
        event_ids: Counter[tuple[str, str]] = Counter()
        for order in orders:
            source = order.get("source") or {}
            device = str(source.get("device", "?"))
            devices[device] += 1
            statuses[str(order.get("status", "?"))] += 1
            event_ids[(device, str(source.get("event_id")))] += 1
        kinds: Counter[str] = Counter()
        for device, n in devices.items():
            kinds[self._kind(device)] += n
        facts: dict[str, Any] = {
            "events": self.events,
            "outcomes": dict(self.outcomes),
            "orders": len(orders),
            "orders_by_source": {k: kinds.get(k, 0) for k in ("gpio", "mqtt", "sensor")},
            "orders_by_device": dict(devices),
            "orders_by_status": dict(statuses),
            "duplicates_prevented": self.outcomes["duplicate"],
            "absorbed": dict(self.rules),
            "recovered_without_order": self.outcomes["sensor_recovered"],
            "repeated_event_ids": sum(1 for n in event_ids.values() if n > 1),
            "sim": sim,
        }

        def listing(counter: Counter[str]) -> str:
            return ", ".join(f"{k} {n}" for k, n in counter.most_common()) or "none"

        labels = (("gpio", "GPIO buttons"), ("mqtt", "MQTT buttons"), ("sensor", "sensors"))
        by_kind = ", ".join(f"{label} {kinds[k]}" for k, label in labels)
        self.print("")
        self.print("Summary")
        self.print(
            f"  reports on the events topic: {self.events} — decisions, order updates and "
            f"sensor notices ({listing(self.outcomes)})"
        )
        self.print(f"  orders at the shop: {len(orders)} — from {by_kind}")
        self.print(f"    by device: {listing(devices)}; by status: {listing(statuses)}")
        self.print(f"  duplicates prevented: {self.outcomes['duplicate']}")
        self.print(
            f"  orders absorbed by rules: {sum(self.rules.values())} ({listing(self.rules)})"
        )
        self.print(f"  sensor dips that ordered nothing: {self.outcomes['sensor_recovered']}")
        self.print(f"  the same event ordered twice at the shop: {facts['repeated_event_ids']}")
        if sim:
            counts = ", ".join(
                f"{label} {sim.get(key, 0)}"
                for key, label in (
                    ("presses", "presses"),
                    ("duplicates", "re-sends"),
                    ("double_publishes", "double publishes"),
                    ("lifts", "lifts"),
                    ("refills", "refills"),
                )
            )
            self.print(f"  the household (simulator): {counts}")
        return facts
