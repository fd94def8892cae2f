"""From MQTT messages to events: which configured device a topic belongs to,
which profile parses it, and how its id (or lack of one) is named.

Pure: no paho, no clock. The core thread calls :meth:`Router.events` for each
message the MQTT link hands over.

>>> from gateway.config.models import Config
>>> cfg = Config.model_validate({
...     "gateway": {"id": "gw"}, "commerce": {"base_url": "http://127.0.0.1/api"},
...     "products": {"tea": {"sku": "TEA"}},
...     "buttons": [{"name": "b", "product": "tea", "mqtt": "z/b", "profile": "zigbee2mqtt"}]})
>>> router = Router.from_config(cfg)
>>> router.events("z/b", b'{"action": "single"}', mid=7, retain=False, dup=False)[0].action
'press'
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from devices import DeviceAction, DeviceReading, ParseError, Profile, ProfileOptions, get_profile
from devices._payload import as_event_id, decode_object
from devices.base import Vitals
from gateway.config.models import Config
from gateway.core.events import ButtonEvent, ConfirmProduct, Event, InvalidInput, SensorReading
from gateway.outputs.topics import GatewayTopics

# Who said yes on a confirm topic, in the decisions log: Home Assistant's Confirm
# button publishes there (anything else on the broker that may publish could, too).
CONFIRM_VIA = "home_assistant"


@dataclass(frozen=True)
class Route:
    device: str
    kind: str  # "button" | "sensor" | "virtual" | "confirm" | "sim-gpio"
    profile: Profile | None = None
    options: ProfileOptions = field(default_factory=ProfileOptions)
    action: str | None = None  # virtual: "press" | "hold"; confirm: the product
    pin: int | None = None  # sim-gpio


@dataclass(frozen=True)
class SimGpio:
    """A demo request to drive a mock GPIO pin (never produced on real pins)."""

    pin: int
    action: str


@dataclass(frozen=True)
class Ignored:
    """A message that is recognised but means nothing to decide (e.g. a release)."""

    device: str
    detail: str


@dataclass(frozen=True)
class DeviceVitals:
    """What a device's message said of its battery and link (for the Devices page)."""

    device: str
    vitals: Vitals


Routed = Event | SimGpio | Ignored | DeviceVitals


class Router:
    """Topic -> device routes for buttons, sensors and the virtual command topics."""

    def __init__(self, routes: dict[str, Route]) -> None:
        self._routes = routes

    @classmethod
    def from_config(cls, config: Config, *, sim_gpio: bool = False) -> Router:
        own = GatewayTopics(config.mqtt.topic_prefix, config.gateway.id)
        routes: dict[str, Route] = {}
        for b in config.buttons:
            routes[own.press(b.name)] = Route(b.name, "virtual", action="press")
            routes[own.cancel(b.name)] = Route(b.name, "virtual", action="hold")
            if b.mqtt and b.profile:
                profile = get_profile(b.profile)
                options = ProfileOptions(
                    action_path=b.action, event_id_path=b.event_id, button_index=b.button_index
                )
                route = Route(b.name, "button", profile, options)
                routes[b.mqtt] = route
                for sub in profile.subtopics:
                    routes[f"{b.mqtt}/{sub}"] = route
            if sim_gpio and b.gpio is not None:
                routes[own.sim_gpio(b.gpio)] = Route(b.name, "sim-gpio", pin=b.gpio)
        for name, product in config.products.items():
            if product.confirm:
                routes[own.confirm(name)] = Route(name, "confirm", action=name)
        for s in config.sensors:
            profile = get_profile(s.profile)
            options = ProfileOptions(value_path=s.value, event_id_path=s.event_id)
            routes[s.mqtt] = Route(s.name, "sensor", profile, options)
            for sub in profile.subtopics:
                routes[f"{s.mqtt}/{sub}"] = Route(s.name, "sensor", profile, options)
        return cls(routes)

    @property
    def topics(self) -> list[str]:
        return sorted(self._routes)

    def events(
        self, topic: str, payload: bytes, *, mid: int, retain: bool, dup: bool
    ) -> list[Routed]:
        route = self._routes.get(topic)
        if route is None:
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
        for item in parsed:
            if route.kind == "sensor":
                if not isinstance(item, DeviceReading):
                    out.append(Ignored(route.device, "a sensor sent an action, not a reading"))
                    continue
                out.append(
                    SensorReading(route.device, item.value, item.event_id, retain, redelivered=dup)
                )
                continue
            if not isinstance(item, DeviceAction):
                out.append(Ignored(route.device, "a button sent a reading, not an action"))
            elif item.action == "other":
                out.append(Ignored(route.device, f"action {item.raw!r} is not mapped to an order"))
            else:
                event_id, synthetic = item.event_id, False
                if event_id is None:
                    event_id, synthetic = _synthetic_id(topic, payload, mid), True
                out.append(
                    ButtonEvent(
                        route.device,
                        item.action,
                        event_id,
                        "mqtt",
                        retained=retain,
                        redelivered=dup,
                        synthetic_id=synthetic,
                    )
                )
        return out

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


def _synthetic_id(topic: str, payload: bytes, mid: int) -> str:
    # The broker resends an unacknowledged message with the same packet id and
    # payload: this name lets the core recognise such a redelivery.
    digest = hashlib.sha256(topic.encode() + b"\x00" + payload).hexdigest()[:16]
    return f"m{mid}-{digest}"
