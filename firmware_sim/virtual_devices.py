"""Virtual device firmware: what each device family would publish, and when.

Each device is built from its scenario spec and a seeded :class:`random.Random`,
and talks to the world only through a :class:`Host` (the runner in
:mod:`firmware_sim.sim`): ``at`` to schedule, ``publish`` to send, ``say`` to
print. All times are *sim* epoch seconds, so a device behaves the same at any
time scale and the same seed gives the same messages.

*When* is decided here; *what bytes* is not: every payload comes from the
device family's ``encode()`` in :mod:`devices`, the inverse of the parser the
gateway runs, so the simulator cannot drift from what the gateway reads.

>>> import random
>>> from firmware_sim.scenario import GpioSpec
>>> button = build_device(GpioSpec(kind="gpio", name="laundry", pin=17), "demo", random.Random(1))
>>> button.topic
'reorder/demo/sim/gpio/17'
"""

from __future__ import annotations

import json
import math
import random
import threading
from collections.abc import Callable
from functools import partial
from typing import Any, Protocol

from devices import (
    DeviceAction,
    DeviceReading,
    Message,
    Parsed,
    Profile,
    ProfileOptions,
    get_profile,
)
from devices.zigbee2mqtt import ACTIONS as Z2M_ACTIONS
from firmware_sim.scenario import (
    At,
    DeviceSpec,
    GpioSpec,
    LevelSpec,
    ReorderButtonSpec,
    ScaleSpec,
    Schedule,
    ShellySpec,
    TasmotaSpec,
    Zigbee2MqttSpec,
    device_topic,
)

DAY = 86400.0

# Share of a day's coffee used in each hour: mornings heaviest, evenings next,
# a little during the day, none at night (22:00-06:00). Sums to 1.
HOUR_SHARE: tuple[float, ...] = tuple(
    0.45 / 4 if 6 <= h < 10 else 0.15 / 8 if 10 <= h < 18 else 0.40 / 4 if 18 <= h < 22 else 0.0
    for h in range(24)
)


class Host(Protocol):
    """What a device may ask of the runner."""

    def at(self, when: float, action: Callable[[float], None]) -> None:
        """Call ``action(when)`` at sim time ``when``."""

    def publish(
        self, topic: str, payload: bytes, *, on_ack: Callable[[], None] | None = None
    ) -> None:
        """Publish at QoS 1; ``on_ack`` runs (on paho's thread) when the PUBACK arrives."""

    def say(self, when: float, text: str) -> None:
        """Print one line stamped with sim time ``when``."""

    def count(self, key: str, n: int = 1) -> None:
        """Add to a summary counter."""

    def pause(self, seconds: float) -> None:
        """Wait ``seconds`` of sim time right now (for gaps shorter than a tick)."""

    def request_reconnect(self, when: float) -> None:
        """Drop and re-open the MQTT connection at ``when``; devices then get on_reconnect."""


def day_zero(start: float) -> float:
    """Midnight of the start day (sim calendars are UTC)."""
    return math.floor(start / DAY) * DAY


def moment(spec: At, start: float) -> float:
    return day_zero(start) + spec.day * DAY + spec.at


def expand(
    schedule: Schedule, start: float, end: float, rng: random.Random
) -> list[tuple[float, str]]:
    """Every (time, action) of a schedule inside [start, end), in time order."""
    out = [(moment(p, start), p.action) for p in schedule.presses]
    if schedule.every is not None:
        first = start if schedule.first_at is None else day_zero(start) + schedule.first_at
        t = first
        while t < end:
            jitter = rng.uniform(-schedule.jitter, schedule.jitter) if schedule.jitter else 0.0
            out.append((t + jitter, schedule.action))
            t += schedule.every
    return sorted((t, a) for t, a in out if start <= t < end)


def as_json(data: Any) -> bytes:
    """Compact JSON, for what is not a device family's message (GPIO requests, garbage)."""
    return json.dumps(data, separators=(",", ":")).encode()


class VirtualDevice:
    """One simulated device; subclasses say what they publish."""

    kind = "device"
    sku: str | None = None
    # The device family whose encode() writes this device's payloads.
    profile: Profile | None = None
    options = ProfileOptions()

    def __init__(self, name: str, topic: str, rng: random.Random) -> None:
        self.name = name
        self.topic = topic
        self.rng = rng
        self.last_payload = b"{}"

    def encode(self, meaning: Parsed | None, **extra: object) -> list[Message]:
        """What a real device of this family publishes for ``meaning``."""
        assert self.profile is not None, f"{type(self).__name__} has no device family"
        return list(self.profile.encode(meaning, self.options, extra))

    def encode_one(self, meaning: Parsed | None, **extra: object) -> bytes:
        """The payload of the family's one message on the device's own topic."""
        [message] = [m for m in self.encode(meaning, **extra) if not m.subtopic]
        return message.payload

    def start(self, host: Host, start: float, end: float) -> None:
        """Schedule everything the device will do in [start, end)."""

    def on_reconnect(self, host: Host, when: float) -> None:
        """The MQTT connection was re-opened."""

    def refill(self, host: Host, when: float, order_id: str) -> None:
        """An order for this device's sku was delivered."""

    def flood_payload(self) -> bytes:
        """One message of a flood: by default the device's last message again."""
        return self.last_payload

    def send(self, host: Host, payload: bytes, on_ack: Callable[[], None] | None = None) -> None:
        self.last_payload = payload
        host.publish(self.topic, payload, on_ack=on_ack)


class _Button(VirtualDevice):
    def __init__(self, name: str, topic: str, rng: random.Random, schedule: Schedule) -> None:
        super().__init__(name, topic, rng)
        self.schedule = schedule

    def start(self, host: Host, start: float, end: float) -> None:
        for when, action in expand(self.schedule, start, end, self.rng):
            host.at(when, partial(self._press_at, host, action))

    def _press_at(self, host: Host, action: str, when: float) -> None:
        self.press(host, when, action)

    def press(self, host: Host, when: float, action: str) -> None:
        host.count("presses")
        host.say(when, f"{self.name} {action}")
        self.send(host, self.payload(action))

    def meaning(self, action: str, event_id: str | None = None) -> DeviceAction:
        """A press or hold (the scenario's two button actions) in the family's words."""
        assert self.profile is not None, f"{type(self).__name__} has no device family"
        return self.profile.action("hold" if action == "hold" else "press", event_id)

    def payload(self, action: str) -> bytes:
        return self.encode_one(self.meaning(action))


class ReorderButton(_Button):
    """Our own firmware: ``{"event","id","seq"}`` at QoS 1, re-sent until acknowledged.

    With ``duplicate_rate`` > 0 the firmware now and then misses a PUBACK (as when
    Wi-Fi drops right after sending), reconnects after ``ack_timeout`` and sends
    the same press again — same id, same seq — as real firmware would.
    """

    kind = "reorder-button"
    profile = get_profile("reorder-button")

    def __init__(self, spec: ReorderButtonSpec, topic: str, rng: random.Random, run_id: str):
        super().__init__(spec.name, topic, rng, spec.schedule)
        self.spec = spec
        self.run_id = run_id
        self.seq = 0
        self._unacked: dict[int, bytes] = {}
        self._lock = threading.Lock()

    def press(self, host: Host, when: float, action: str) -> None:
        self.seq += 1
        seq = self.seq
        event_id = f"{self.name}-{self.run_id}-{seq}"
        payload = self.encode_one(self.meaning(action, event_id), seq=seq)
        ack_lost = self.rng.random() < self.spec.duplicate_rate
        host.count("presses")
        host.say(
            when, f"{self.name} {action} seq={seq}" + (" (ack will be lost)" if ack_lost else "")
        )
        with self._lock:
            self._unacked[seq] = payload
        self.send(host, payload, on_ack=None if ack_lost else lambda: self._acked(seq))
        if ack_lost:
            host.request_reconnect(when + self.spec.ack_timeout)

    def _acked(self, seq: int) -> None:
        with self._lock:
            self._unacked.pop(seq, None)

    def on_reconnect(self, host: Host, when: float) -> None:
        with self._lock:
            pending = sorted(self._unacked.items())
        for seq, payload in pending:
            host.count("duplicates")
            host.say(when, f"{self.name} re-sends unacknowledged seq={seq}")
            self.send(host, payload, on_ack=partial(self._acked, seq))

    @property
    def unacknowledged(self) -> int:
        with self._lock:
            return len(self._unacked)


class Zigbee2MqttButton(_Button):
    """``{"action": "single", ...}`` on ``zigbee2mqtt/<name>``; some models publish twice."""

    kind = "zigbee2mqtt"
    profile = get_profile("zigbee2mqtt")

    def __init__(self, spec: Zigbee2MqttSpec, topic: str, rng: random.Random) -> None:
        super().__init__(spec.name, topic, rng, spec.schedule)
        self.spec = spec
        self.battery = 97
        self.linkquality = 120

    def start(self, host: Host, start: float, end: float) -> None:
        super().start(host, start, end)
        if self.spec.status_every is not None:
            t = start + self.spec.status_every
            while t < end:
                host.at(t, lambda when: self.status(host, when))
                t += self.spec.status_every

    def _state(self) -> dict[str, Any]:
        self.linkquality = max(0, min(255, self.linkquality + self.rng.randint(-6, 6)))
        return {"battery": self.battery, "linkquality": self.linkquality}

    def status(self, host: Host, when: float) -> None:
        if self.rng.random() < 0.1:
            self.battery = max(0, self.battery - 1)
        self.send(host, self.encode_one(None, **self._state()))
        host.say(when, f"{self.name} status battery={self.battery}%")

    def press(self, host: Host, when: float, action: str) -> None:
        # The scenario may name any word; the message then means what that word
        # means to Zigbee2MQTT (a "double" press_word is an ignored "other").
        word = self.spec.press_word if action == "press" else self.spec.hold_word
        meaning = DeviceAction(action=Z2M_ACTIONS.get(word, "other"), raw=word)
        host.count("presses")
        host.say(when, f"{self.name} {action}")
        state, legacy = self.encode(meaning, **self._state())
        self.send(host, state.payload)
        if self.spec.action_subtopic:
            host.publish(legacy.topic(self.topic), legacy.payload)
        if self.spec.double_publish:
            host.pause(self.spec.double_gap)
            host.count("double_publishes")
            host.say(when, f"{self.name} {action} (published twice, as this model does)")
            self.send(host, self.last_payload)


class TasmotaButton(_Button):
    """``{"Button1": {"Action": "SINGLE"}}`` on ``stat/<name>/RESULT``."""

    kind = "tasmota"
    profile = get_profile("tasmota")

    def __init__(self, spec: TasmotaSpec, topic: str, rng: random.Random) -> None:
        super().__init__(spec.name, topic, rng, spec.schedule)
        self.button = spec.button
        self.options = ProfileOptions(button_index=spec.button)


class ShellyButton(_Button):
    """Gen1 ``shellies/<name>/input_event/0`` with ``{"event": "S", "event_cnt": N}``."""

    kind = "shelly"
    profile = get_profile("shelly")

    def __init__(self, spec: ShellySpec, topic: str, rng: random.Random) -> None:
        super().__init__(spec.name, topic, rng, spec.schedule)
        self.event_cnt = rng.randint(1, 500)

    def payload(self, action: str) -> bytes:
        # Gen1 counts events per input; the parser turns the count into the id.
        self.event_cnt += 1
        return self.encode_one(self.meaning(action, f"cnt-{self.event_cnt}"))


class GpioButton(_Button):
    """Asks a gateway running on the mock pin factory to drive its GPIO pin.

    Not a device family: the gateway's own ``sim/gpio`` request, which it turns
    into a pin change, so the payload is written here.
    """

    kind = "gpio"

    def __init__(self, spec: GpioSpec, topic: str, rng: random.Random) -> None:
        super().__init__(spec.name, topic, rng, spec.schedule)
        self.pin = spec.pin

    def payload(self, action: str) -> bytes:
        return as_json({"action": action})


class _Sensor(VirtualDevice):
    unit = ""
    profile = get_profile("json")

    def __init__(
        self, name: str, topic: str, rng: random.Random, value_key: str, interval: float
    ) -> None:
        super().__init__(name, topic, rng)
        self.value_key = value_key
        # A json-profile sensor, configured in the gateway with ``value: <value_key>``.
        self.options = ProfileOptions(value_path=value_key)
        self.interval = interval
        self.level = 0.0
        self._last_step: float | None = None

    def start(self, host: Host, start: float, end: float) -> None:
        t = start
        while t < end:
            host.at(t, lambda when: self.report(host, when))
            t += self.interval

    def advance(self, when: float) -> None:
        """Use up whatever was used since the last reading."""

    def noise(self) -> float:
        raise NotImplementedError

    def report(self, host: Host, when: float, note: str = "") -> None:
        self.advance(when)
        shown = max(0.0, self.level + self.rng.gauss(0.0, self.noise()))
        self.publish_value(host, when, shown, note)

    def publish_value(self, host: Host, when: float, value: float, note: str = "") -> None:
        host.count("readings")
        host.say(when, f"{self.name} {value:.0f} {self.unit}{note}")
        self.send(host, self.encode_one(DeviceReading(round(value, 1))))


class Scale(_Sensor):
    """A kitchen scale under a jar (json profile, ``{"weight_g": 612.3}``).

    Drains by time of day (:data:`HOUR_SHARE`) with gaussian noise, is lifted
    now and then (1-3 readings of 0-5 g, then the jar is back), and is refilled
    to ``full_g`` when the shop delivers an order for its sku.
    """

    kind = "scale"
    unit = "g"

    def __init__(self, spec: ScaleSpec, topic: str, rng: random.Random) -> None:
        super().__init__(spec.name, topic, rng, spec.value_key, spec.interval)
        self.spec = spec
        self.sku = spec.sku
        self.level = spec.full_g if spec.start_g is None else spec.start_g

    def start(self, host: Host, start: float, end: float) -> None:
        self._last_step = start
        super().start(host, start, end)
        lifts = [moment(lift, start) for lift in self.spec.lifts]
        if self.spec.lift_every is not None:
            t = start + self.rng.expovariate(1.0 / self.spec.lift_every)
            while t < end:
                if HOUR_SHARE[int((t % DAY) // 3600)] > 0:  # nobody lifts the jar at night
                    lifts.append(t)
                t += self.rng.expovariate(1.0 / self.spec.lift_every)
        for t in sorted(lifts):
            if start <= t < end:
                host.at(t, lambda when: self.lift(host, when))

    def advance(self, when: float) -> None:
        last = self._last_step if self._last_step is not None else when
        self._last_step = when
        used = 0.0
        t = last
        while t < when:  # split at hour boundaries: each hour has its own share
            step = min(when, (math.floor(t / 3600.0) + 1) * 3600.0) - t
            hour = int((t % DAY) // 3600)
            used += self.spec.use_per_day_g * HOUR_SHARE[hour] * step / 3600.0
            t += step
        if used > 0:
            used *= max(0.0, self.rng.gauss(1.0, self.spec.usage_noise))
        self.level = max(0.0, self.level - used)

    def noise(self) -> float:
        # An empty scale reads about zero, not minus the noise.
        return self.spec.noise_g if self.level > 0 else 0.3

    def lift(self, host: Host, when: float) -> None:
        host.count("lifts")
        t = when
        for _ in range(self.rng.randint(1, 3)):
            host.at(
                t, lambda w: self.publish_value(host, w, self.rng.uniform(0, 5), " (jar lifted)")
            )
            t += self.rng.uniform(1.0, 3.0)
        host.at(t + self.rng.uniform(2.0, 10.0), lambda w: self.report(host, w, " (jar back)"))

    def refill(self, host: Host, when: float, order_id: str) -> None:
        self.advance(when)
        self.level = self.spec.full_g
        host.count("refills")
        host.say(when, f"{self.name} refilled to {self.level:.0f} g (order {order_id} delivered)")
        self.report(host, when)


class LevelSensor(_Sensor):
    """A tank level in percent (json profile, ``{"level_pct": 42.0}``), lower after each use."""

    kind = "level"
    unit = "%"

    def __init__(self, spec: LevelSpec, topic: str, rng: random.Random) -> None:
        super().__init__(spec.name, topic, rng, spec.value_key, spec.interval)
        self.spec = spec
        self.sku = spec.sku
        self.level = spec.start_pct

    def start(self, host: Host, start: float, end: float) -> None:
        super().start(host, start, end)
        for when, _ in expand(self.spec.uses, start, end, self.rng):
            host.at(when, lambda t: self.use(host, t))

    def use(self, host: Host, when: float) -> None:
        used = self.spec.per_use_pct * max(0.0, self.rng.gauss(1.0, 0.1))
        self.level = max(0.0, self.level - used)
        host.say(when, f"{self.name} used {used:.1f} %")

    def noise(self) -> float:
        return self.spec.noise_pct if self.level > 0 else 0.0

    def refill(self, host: Host, when: float, order_id: str) -> None:
        self.level = self.spec.full_pct
        host.count("refills")
        host.say(when, f"{self.name} refilled to {self.level:.0f} % (order {order_id} delivered)")
        self.report(host, when)


def build_device(
    spec: DeviceSpec, gateway_id: str, rng: random.Random, run_id: str = "run"
) -> VirtualDevice:
    """The virtual device for one scenario entry. ``run_id`` keeps event ids unique per run."""
    topic = device_topic(spec, gateway_id)
    if isinstance(spec, ReorderButtonSpec):
        return ReorderButton(spec, topic, rng, run_id)
    if isinstance(spec, Zigbee2MqttSpec):
        return Zigbee2MqttButton(spec, topic, rng)
    if isinstance(spec, TasmotaSpec):
        return TasmotaButton(spec, topic, rng)
    if isinstance(spec, ShellySpec):
        return ShellyButton(spec, topic, rng)
    if isinstance(spec, GpioSpec):
        return GpioButton(spec, topic, rng)
    if isinstance(spec, ScaleSpec):
        return Scale(spec, topic, rng)
    return LevelSensor(spec, topic, rng)


# Keys any device family might read, given the wrong types on purpose.
_WRONG_TYPES = {
    "event": 5,
    "id": [],
    "seq": "seven",
    "action": {"nested": True},
    "weight_g": "heavy",
    "level_pct": None,
    "Button1": 3,
    "event_cnt": -1.5,
}


def garbage(rng: random.Random, last_payload: bytes) -> tuple[str, bytes]:
    """A malformed message for chaos tests: (what kind of garbage, the bytes)."""
    choice = rng.randrange(7)
    if choice == 0:
        return "not json", b"press!"
    if choice == 1:
        return "truncated json", last_payload[: max(1, len(last_payload) // 2)]
    if choice == 2:
        return "invalid utf-8", b'{"action": "\xc3\x28"}'
    if choice == 3:
        return "wrong types", as_json(_WRONG_TYPES)
    if choice == 4:
        return "huge payload", as_json({"padding": "x" * 65536})
    if choice == 5:
        return "empty payload", b""
    return "json array", b"[1, 2, 3]"
