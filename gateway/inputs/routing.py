"""From MQTT messages to events: which configured device a topic belongs to,
which profile parses it, and how its id (or lack of one) is named.

No paho. The core thread calls :meth:`Router.events` for each message the MQTT
link hands over; the router converts at this edge what the core should not
know about: a reading's unit into the sensor's, raw counts through the
configured scale, and the ON..OFF of a gateway-timed binary sensor into a press or
a cancel (timed by the ``now`` the core thread passes in, so the router reads
no clock). Every message on a configured topic
that carries an event ends as an event, an :class:`Ignored` that names the
word, or an :class:`~gateway.core.events.InvalidInput` that says why.

>>> from gateway.config.models import Config
>>> cfg = Config.model_validate({
...     "gateway": {"id": "gw"}, "commerce": {"base_url": "http://127.0.0.1/api"},
...     "products": {"tea": {"sku": "TEA"}},
...     "buttons": [{"name": "b", "product": "tea", "mqtt": "z/b", "profile": "zigbee2mqtt"}]})
>>> router = Router.from_config(cfg)
>>> router.events("z/b", b'{"action": "single"}', mid=7, retain=False, dup=False, now=0.0)[0].action
'press'
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field

from devices import (
    ActionMap,
    DeviceAction,
    DeviceReading,
    ParseError,
    Profile,
    ProfileOptions,
    get_profile,
)
from devices._payload import as_event_id, decode_object, short
from devices.base import Vitals
from devices.units import UnitError, convert
from gateway.config.device_options import sensor_unit
from gateway.config.models import ButtonConfig, Config, SensorConfig
from gateway.core.events import (
    ButtonEvent,
    ConfirmProduct,
    CounterSeen,
    DeviceConnected,
    Event,
    InvalidInput,
    SensorReading,
)
from gateway.inputs.held import HeldTimer
from gateway.outputs.topics import GatewayTopics

# Who said yes on a confirm topic, in the decisions log: Home Assistant's Confirm
# button publishes there (anything else on the broker that may publish could, too).
CONFIRM_VIA = "home_assistant"


@dataclass(frozen=True)
class ReadingScale:
    """How a sensor's numbers become the numbers its thresholds are in.

    >>> ReadingScale(unit="g").apply(0.412, "kg")
    412.0
    >>> ReadingScale(unit="g", scale=0.01, offset=-20.0).apply(98123.0, "counts")
    961.23
    """

    unit: str | None = None  # the unit the sensor decides in
    scale: float | None = None  # raw counts -> unit
    offset: float = 0.0

    def apply(self, value: float, source: str | None) -> float:
        if self.scale is not None:
            return round(value * self.scale + self.offset, 9)
        if source is not None and self.unit is not None:
            value = convert(value, source, self.unit)
        return value + self.offset


@dataclass(frozen=True)
class Route:
    device: str
    kind: str  # "button" | "sensor" | "virtual" | "confirm" | "sim-gpio"
    profile: Profile | None = None
    options: ProfileOptions = field(default_factory=ProfileOptions)
    action: str | None = None  # virtual: "press" | "hold"; confirm: the product
    pin: int | None = None  # sim-gpio
    reading: ReadingScale = field(default_factory=ReadingScale)  # sensors
    timer: HeldTimer | None = None  # a binary sensor the gateway times
    counts_since_boot: bool = False  # its ids are counters since the device's boot


@dataclass
class ConnectTopic:
    """Where a device whose ids count since boot says it connected: the payload that
    says so, and the buttons on it (the inputs of one Shelly)."""

    payload: bytes
    devices: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class SimGpio:
    """A demo request to drive a mock GPIO pin (never produced on real pins)."""

    pin: int
    action: str


@dataclass(frozen=True)
class Ignored:
    """A message that is recognised but means nothing to decide (e.g. a release).

    ``routine``: the message carried no event at all (a state, availability or
    battery report) — logged and counted, but no device's last decision.
    """

    device: str
    detail: str
    routine: bool = False


@dataclass(frozen=True)
class DeviceVitals:
    """What a device's message said of its battery and link (for the Devices page)."""

    device: str
    vitals: Vitals


Routed = Event | SimGpio | Ignored | DeviceVitals


class Router:
    """Topic -> device routes for buttons, sensors and the virtual command topics."""

    def __init__(self, routes: dict[str, Route], connects: dict[str, ConnectTopic]) -> None:
        self._routes = routes
        self._connects = connects

    @classmethod
    def from_config(cls, config: Config, *, sim_gpio: bool = False) -> Router:
        own = GatewayTopics(config.mqtt.topic_prefix, config.gateway.id)
        routes: dict[str, Route] = {}
        connects: dict[str, ConnectTopic] = {}
        for b in config.buttons:
            routes[own.press(b.name)] = Route(b.name, "virtual", action="press")
            routes[own.cancel(b.name)] = Route(b.name, "virtual", action="hold")
            if b.mqtt and b.profile:
                profile = get_profile(b.profile)
                timer = HeldTimer(b.hold_time) if b.gateway_timed else None
                restart = profile.restart
                connect = restart.topic(b.mqtt) if restart is not None else None
                route = Route(
                    b.name,
                    "button",
                    profile,
                    button_options(b),
                    timer=timer,
                    counts_since_boot=connect is not None,
                )
                routes[b.mqtt] = route
                if restart is not None and connect is not None:
                    on_device = connects.setdefault(connect, ConnectTopic(restart.payload))
                    on_device.devices.append(b.name)
                for sub in profile.subtopics:
                    routes[f"{b.mqtt}/{sub}"] = route
            if sim_gpio and b.gpio is not None:
                routes[own.sim_gpio(b.gpio)] = Route(b.name, "sim-gpio", pin=b.gpio)
        for name, product in config.products.items():
            if product.confirm:
                routes[own.confirm(name)] = Route(name, "confirm", action=name)
        for s in config.sensors:
            profile = get_profile(s.profile)
            route = Route(s.name, "sensor", profile, sensor_options(s), reading=reading_scale(s))
            routes[s.mqtt] = route
            for sub in profile.subtopics:
                routes[f"{s.mqtt}/{sub}"] = route
        return cls(routes, connects)

    def knows(self, topic: str) -> bool:
        """True when a configured device (or its connect topic) is on ``topic``."""
        return topic in self._routes or topic in self._connects

    def route(self, topic: str) -> Route | None:
        """The configured route of ``topic`` (None: no configured device there)."""
        return self._routes.get(topic)

    @property
    def topics(self) -> list[str]:
        return sorted({*self._routes, *self._connects})

    def events(
        self, topic: str, payload: bytes, *, mid: int, retain: bool, dup: bool, now: float
    ) -> list[Routed]:
        """What one message means; ``now`` is the core thread's time of its batch
        (it times gateway-timed buttons)."""
        route = self._routes.get(topic)
        if route is None:
            connect = self._connects.get(topic)
            if connect is not None:
                return self._connected(connect, topic, payload, retain)
            return [InvalidInput("?", topic, "no configured device on this topic")]
        if route.kind == "virtual":
            return [self._virtual(route, topic, payload, mid, retain, dup)]
        if route.kind == "sim-gpio":
            return [self._sim_gpio(route, topic, payload)]
        if route.kind == "confirm":
            if retain:
                # A retained yes would confirm every later order after each reconnect.
                return [Ignored(CONFIRM_VIA, f"retained confirm for {route.device}: not a yes")]
            return [ConfirmProduct(route.device, via=CONFIRM_VIA)]
        assert route.profile is not None
        out: list[Routed] = []
        vitals = route.profile.vitals(topic, payload) if route.profile.vitals else None
        if vitals is not None:
            # Told whatever the message means otherwise: a battery report with no
            # press in it is still news of the device.
            out.append(DeviceVitals(route.device, vitals))
        try:
            parsed = route.profile.parse(topic, payload, route.options)
        except ParseError as exc:
            return [*out, InvalidInput(route.device, topic, f"{route.profile.name}: {exc}")]
        restart = route.profile.restart
        if route.counts_since_boot and restart is not None and not retain:
            # Before the press it came with: a count that went back starts the boot
            # the press is named by.
            count = restart.count(payload)
            if count is not None:
                out.append(CounterSeen(route.device, count))
        if not parsed:
            # A state, availability or battery report: still a decision, never a
            # silent drop (reports of these are rate-limited per device).
            what = "reading" if route.kind == "sensor" else "button event"
            detail = f"{route.profile.name}: no {what} in this message"
            out.append(Ignored(route.device, detail, routine=True))
        for item in parsed:
            if route.kind == "sensor":
                out.append(self._reading(route, topic, item, retain, dup))
                continue
            out.append(self._button(route, topic, payload, item, mid, retain, dup, now))
        return out

    @staticmethod
    def _connected(connect: ConnectTopic, topic: str, payload: bytes, retain: bool) -> list[Routed]:
        if not retain and payload.strip() == connect.payload:
            return [DeviceConnected(device) for device in connect.devices]
        # The broker's retained copy (on each resubscribe), or the will's "false".
        said = short(payload.decode("utf-8", errors="replace"))
        why = "retained: not a new connect" if retain else f"{said}: not a connect"
        return [Ignored(device, f"{topic} {why}", routine=True) for device in connect.devices]

    def _button(
        self,
        route: Route,
        topic: str,
        payload: bytes,
        parsed: DeviceAction | DeviceReading,
        mid: int,
        retain: bool,
        dup: bool,
        now: float,
    ) -> Routed:
        if not isinstance(parsed, DeviceAction):
            return Ignored(route.device, "a button sent a reading, not an action")
        item = parsed
        if route.timer is not None:
            timed = self._timed(route, parsed, retain, now)
            if isinstance(timed, Ignored):
                return timed
            item = timed
        if item.action == "other":
            return Ignored(route.device, f"action {item.raw!r} is not mapped to an order")
        event_id = item.event_id
        if event_id is None:
            event_id = _synthetic_id(topic, payload, mid)
        return ButtonEvent(
            route.device,
            item.action,
            event_id,
            "mqtt",
            retained=retain,
            redelivered=dup,
            synthetic_id=item.event_id is None,
            counts_since_boot=route.counts_since_boot and item.event_id is not None,
        )

    def _reading(
        self, route: Route, topic: str, item: DeviceAction | DeviceReading, retain: bool, dup: bool
    ) -> Routed:
        if not isinstance(item, DeviceReading):
            return Ignored(route.device, f"a sensor sent the action {item.raw!r}, not a reading")
        try:
            value = route.reading.apply(item.value, item.unit)
        except UnitError as exc:
            return InvalidInput(route.device, topic, f"the reading's unit: {exc}")
        if not math.isfinite(value):
            return InvalidInput(route.device, topic, f"the reading {item.value!r} is out of range")
        return SensorReading(route.device, value, item.event_id, retain, redelivered=dup)

    def _timed(
        self, route: Route, item: DeviceAction, retain: bool, now: float
    ) -> DeviceAction | Ignored:
        """ON starts the timer, OFF says what the press was (gateway-timed buttons)."""
        assert route.timer is not None
        if retain:
            # A retained state is the broker's memory, not a finger: it must not
            # start (or end) a press.
            return Ignored(route.device, f"retained state {item.raw!r}, not a press")
        if item.action == "press":
            route.timer.down(route.device, now)
            return Ignored(route.device, f"{item.raw!r}: button down — decided when it is let go")
        meaning = route.timer.up(route.device, now)
        if meaning is None:
            return Ignored(route.device, f"{item.raw!r}: let go without a press seen first")
        return DeviceAction(meaning, item.raw, item.event_id)

    def _virtual(
        self, route: Route, topic: str, payload: bytes, mid: int, retain: bool, dup: bool
    ) -> Routed:
        event_id: str | None = None
        if payload.strip():
            # The same strict rules as device payloads: JSON without NaN, a size and
            # depth limit, and a printable id (a newline in one could forge a log line).
            try:
                raw = decode_object(payload).get("id")
                event_id = None if raw is None else as_event_id(raw, "'id'")
            except ParseError as exc:
                return InvalidInput(
                    route.device, topic, f'expected {{"id": "..."}} or empty: {exc}'
                )
        synthetic = event_id is None
        if event_id is None:
            event_id = _synthetic_id(topic, payload, mid)
        return ButtonEvent(
            route.device,
            "hold" if route.action == "hold" else "press",
            event_id,
            "virtual",
            retained=retain,
            redelivered=dup,
            synthetic_id=synthetic,
        )

    def _sim_gpio(self, route: Route, topic: str, payload: bytes) -> Routed:
        assert route.pin is not None
        try:
            body = json.loads(payload) if payload.strip() else {"action": "press"}
        except (UnicodeDecodeError, ValueError, RecursionError):
            return InvalidInput(route.device, topic, 'expected {"action": "press" | "hold"}')
        action = body.get("action") if isinstance(body, dict) else None
        if action not in ("press", "hold"):
            return InvalidInput(route.device, topic, 'expected {"action": "press" | "hold"}')
        return SimGpio(route.pin, str(action))


def button_options(b: ButtonConfig) -> ProfileOptions:
    """The profile options of a configured button."""
    return ProfileOptions(
        action_path=b.action,
        event_id_path=b.event_id,
        button_index=b.button_index,
        model=b.model,
        button=b.button,
        actions=None if b.actions is None else ActionMap.from_config(b.actions),
        component=b.component,
    )


def sensor_options(s: SensorConfig) -> ProfileOptions:
    """The profile options of a configured sensor (its profile's default path)."""
    profile = get_profile(s.profile)
    return ProfileOptions(
        value_path=s.value or profile.default_value_path, event_id_path=s.event_id
    )


def reading_scale(s: SensorConfig) -> ReadingScale:
    """How the sensor's numbers become the ones its thresholds are written in."""
    return ReadingScale(unit=sensor_unit(s.model_dump()), scale=s.scale, offset=s.offset)


def _synthetic_id(topic: str, payload: bytes, mid: int) -> str:
    # The broker resends an unacknowledged message with the same packet id and
    # payload: this name lets the core recognise such a redelivery.
    digest = hashlib.sha256(topic.encode() + b"\x00" + payload).hexdigest()[:16]
    return f"m{mid}-{digest}"
