"""The device-profile interface. Pure: no I/O, no clock, no paho.

A profile turns one MQTT message ``(topic, payload)`` of its device family into
zero or more :data:`Parsed` items, or raises :class:`ParseError` with a short
reason (the gateway counts it, logs it rate-limited and drops the message).

It also goes the other way: ``encode(meaning, options, extra)`` gives the
:class:`Message` items a real device of the family publishes for a meaning (a
press, a hold, a reading, or ``None`` for a message that carries no event), so
the simulator speaks exactly what the parser reads. ``parse`` of every encoded
message gives back ``[meaning]`` (``[]`` for ``None``); the registry test holds
every family to that.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

CanonicalAction = Literal["press", "hold", "other"]
"""``press`` = reorder, ``hold`` = cancel, ``other`` = recognised but not mapped (ignored)."""


ButtonAction = Literal["press", "hold"]


class ParseError(ValueError):
    """The payload is not what this device family sends."""


class EncodeError(ValueError):
    """This device family cannot say that (e.g. an event id on a family without ids)."""


@dataclass(frozen=True)
class DeviceAction:
    action: CanonicalAction
    raw: str  # the device's own word, e.g. "single", "SS", "hold"
    event_id: str | None = None


@dataclass(frozen=True)
class DeviceReading:
    value: float
    event_id: str | None = None
    # What the number measures when the family says it (Tasmota HX711: "kg");
    # None: the sensor's configured unit (see devices.units).
    unit: str | None = None


Parsed = DeviceAction | DeviceReading

LinkUnit = Literal["LQI", "dBm"]


@dataclass(frozen=True)
class Vitals:
    """What a device said of its battery and its radio link (each may be unknown)."""

    battery: float | None = None  # percent, 0..100
    voltage: float | None = None  # volts
    link: float | None = None
    link_unit: LinkUnit | None = None

    def describe(self) -> str:
        """One line for the Devices page, e.g. ``battery 87 % (2.9 V) · link LQI 120``."""
        parts: list[str] = []
        if self.battery is not None:
            battery = f"battery {self.battery:g} %"
            if self.voltage is not None:
                battery += f" ({self.voltage:g} V)"
            parts.append(battery)
        elif self.voltage is not None:
            parts.append(f"battery {self.voltage:g} V")
        if self.link is not None:
            parts.append(
                f"link LQI {self.link:g}" if self.link_unit == "LQI" else f"link {self.link:g} dBm"
            )
        return " · ".join(parts)


# (topic, payload) -> what the message says of the battery and link, or None;
# never raises (see devices.vitals).
VitalsReader = Callable[[str, bytes], Vitals | None]


@dataclass(frozen=True)
class Message:
    """One MQTT message a device publishes, relative to its configured topic.

    >>> Message("action", b"single").topic("zigbee2mqtt/laundry")
    'zigbee2mqtt/laundry/action'
    >>> Message("", b"ON").topic("node/binary_sensor/coffee/state")
    'node/binary_sensor/coffee/state'
    """

    subtopic: str  # "" = the configured topic itself, else one of the profile's subtopics
    payload: bytes

    def topic(self, base: str) -> str:
        return f"{base}/{self.subtopic}" if self.subtopic else base


Role = Literal["press", "cancel", "release", "ignore"]
ROLES: tuple[Role, ...] = ("press", "cancel", "release", "ignore")

_CANONICAL: dict[Role, CanonicalAction] = {
    "press": "press",
    "cancel": "hold",
    "release": "other",
    "ignore": "other",
}


class ActionMapError(ValueError):
    """An action map that cannot work: a word in two roles, no press, a bad word."""


@dataclass(frozen=True)
class ActionMap:
    """The words of one button, by what they mean to the gateway.

    The first press (and cancel) word is the one a simulated device sends.

    >>> ActionMap(press=("single",), cancel=("single",))
    Traceback (most recent call last):
    ...
    devices.base.ActionMapError: 'single' is both a press and a cancel word
    """

    press: tuple[str, ...]
    cancel: tuple[str, ...] = ()
    release: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        problems = self.problems()
        if problems:
            raise ActionMapError(problems[0])

    def words(self, role: Role) -> tuple[str, ...]:
        return {
            "press": self.press,
            "cancel": self.cancel,
            "release": self.release,
            "ignore": self.ignore,
        }[role]

    def problems(self) -> list[str]:
        """Everything wrong with this map, each with how to fix it."""
        out: list[str] = []
        if not self.press:
            out.append("has no press word — list at least one under press:")
        seen: dict[str, Role] = {}
        for role in ROLES:
            for word in self.words(role):
                if not isinstance(word, str) or not 1 <= len(word) <= 64 or not word.isprintable():
                    out.append(f"{word!r} is not a device word (1..64 printable characters)")
                elif word in seen:
                    out.append(f"{word!r} is both a {seen[word]} and a {role} word")
                else:
                    seen[word] = role
        return out

    def role(self, word: str) -> Role | None:
        """What ``word`` is to this button; None for a word it does not list."""
        for role in ROLES:
            if word in self.words(role):
                return role
        return None

    def canonical(self, word: str) -> CanonicalAction:
        """``press``, ``hold`` (cancel) or ``other`` (release, ignored, unknown)."""
        role = self.role(word)
        return "other" if role is None else _CANONICAL[role]

    @classmethod
    def from_config(cls, data: Mapping[str, object]) -> ActionMap:
        """The YAML shape ``{press: [...], cancel: [...], release: [...], ignore: [...]}``.

        A single word may stand for a list of one. Unknown keys are refused.
        """
        unknown = sorted(set(data) - set(ROLES))
        if unknown:
            raise ActionMapError(
                f"unknown key {unknown[0]!r} — an action map has press, cancel, release, ignore"
            )
        lists: dict[str, tuple[str, ...]] = {}
        for role in ROLES:
            raw = data.get(role, ())
            items = (raw,) if isinstance(raw, str) else raw
            if not isinstance(items, list | tuple) or not all(isinstance(w, str) for w in items):
                raise ActionMapError(f"{role}: must be a word or a list of words")
            lists[role] = tuple(items)
        return cls(
            press=lists["press"],
            cancel=lists["cancel"],
            release=lists["release"],
            ignore=lists["ignore"],
        )


@dataclass(frozen=True)
class ProfileOptions:
    """Per-device options from the config (only some profiles use each)."""

    action_path: str | None = None  # json: dotted path to an action word
    value_path: str | None = None  # json: dotted path to a number
    event_id_path: str | None = None  # json: dotted path to an event id
    button_index: int = 1  # tasmota Button<N>, shelly input <N-1>
    model: str | None = None  # zigbee2mqtt: a model of devices.z2m_models (its words)
    button: str | None = None  # zigbee2mqtt: one button of that model (left, 2, up ...)
    actions: ActionMap | None = None  # zigbee2mqtt, esphome events: explicit words
    component: str | None = None  # shelly Gen2+: e.g. "button:200" (virtual), a BLU component


@dataclass(frozen=True)
class Example:
    """A documented payload and what it must parse to (checked by the registry test)."""

    topic: str
    payload: bytes
    expected: tuple[Parsed, ...]
    options: ProfileOptions = field(default_factory=ProfileOptions)
    note: str = ""


@dataclass(frozen=True)
class ActionWords:
    """The words a family's devices send for a press and a hold (``SINGLE``/``HOLD``)."""

    press: str
    hold: str


def _unit_not_said(value_path: str | None) -> str | None:
    return None


@dataclass(frozen=True)
class RestartSignal:
    """How a family whose event ids count since boot tells a restart.

    ``topic`` gives, for a configured button topic, the device's own topic where it
    says it connected (None: that topic carries no counter); a live (not retained)
    ``payload`` there says so. ``count`` reads the counter in any message of the
    button's topic (None: none in it), also in messages that carry no press: a count
    lower than the last one after a connect means the device booted.
    """

    topic: Callable[[str], str | None]
    payload: bytes
    count: Callable[[bytes], int | None]


Parser = Callable[[str, bytes, ProfileOptions], list[Parsed]]
# (meaning, options, extra) -> messages. ``extra`` holds the other keys a device
# sends beside the event (battery, link quality, a sequence number); families
# whose payload is not a JSON object refuse it.
Encoder = Callable[[Parsed | None, ProfileOptions, Mapping[str, object]], tuple[Message, ...]]


@dataclass(frozen=True)
class Profile:
    """A device family: how to read its messages and how to write them.

    >>> from devices import get_profile
    >>> tasmota = get_profile("tasmota")
    >>> press = tasmota.action("press")
    >>> press
    DeviceAction(action='press', raw='SINGLE', event_id=None)
    >>> [message] = tasmota.encode(press, ProfileOptions(), {})
    >>> message.payload
    b'{"Button1":{"Action":"SINGLE"}}'
    >>> tasmota.parse("stat/desk/RESULT", message.payload, ProfileOptions()) == [press]
    True
    """

    name: str
    description: str
    kind: Literal["button", "sensor", "both"]
    has_event_ids: bool  # False: duplicates are judged by the dedupe window
    parse: Parser
    encode: Encoder
    examples: tuple[Example, ...]
    # The device's own words for a press and a hold, for ``action()``; None for sensors.
    words: ActionWords | None = None
    # Extra topics to subscribe for a configured base topic (e.g. "<t>/action").
    subtopics: tuple[str, ...] = ()
    # Options this profile requires, for the config check (e.g. ("value_path",)).
    required_options: tuple[str, ...] = ()
    # Battery and link where the family's messages carry them (devices.vitals).
    vitals: VitalsReader | None = None
    # Sensors: where the number is when the config names no value path, and the
    # unit the family reports it in for a path (None: the family does not say).
    default_value_path: str | None = None
    reading_unit: Callable[[str | None], str | None] = _unit_not_said
    # Buttons whose event ids are counters since boot (Shelly Gen1's event_cnt).
    restart: RestartSignal | None = None

    def action(self, action: ButtonAction, event_id: str | None = None) -> DeviceAction:
        """A press or hold in this family's own word, ready for ``encode``."""
        if self.words is None:
            raise EncodeError(f"{self.name} devices send no {action}: they are sensors")
        word = self.words.press if action == "press" else self.words.hold
        return DeviceAction(action=action, raw=word, event_id=event_id)
