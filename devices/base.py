"""The device-profile interface. Pure: no I/O, no clock, no paho.

A profile turns one MQTT message ``(topic, payload)`` of its device family into
zero or more :data:`Parsed` items, or raises :class:`ParseError` with a short
reason (the gateway counts it, logs it rate-limited and drops the message).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

CanonicalAction = Literal["press", "hold", "other"]
"""``press`` = reorder, ``hold`` = cancel, ``other`` = recognised but not mapped (ignored)."""


class ParseError(ValueError):
    """The payload is not what this device family sends."""


@dataclass(frozen=True)
class DeviceAction:
    action: CanonicalAction
    raw: str  # the device's own word, e.g. "single", "SS", "hold"
    event_id: str | None = None


@dataclass(frozen=True)
class DeviceReading:
    value: float
    event_id: str | None = None


Parsed = DeviceAction | DeviceReading


@dataclass(frozen=True)
class ProfileOptions:
    """Per-device options from the config (only some profiles use each)."""

    action_path: str | None = None  # json: dotted path to an action word
    value_path: str | None = None  # json: dotted path to a number
    event_id_path: str | None = None  # json: dotted path to an event id
    button_index: int = 1  # tasmota Button<N>, shelly input <N-1>


@dataclass(frozen=True)
class Example:
    """A documented payload and what it must parse to (checked by the registry test)."""

    topic: str
    payload: bytes
    expected: tuple[Parsed, ...]
    options: ProfileOptions = field(default_factory=ProfileOptions)
    note: str = ""


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    kind: Literal["button", "sensor", "both"]
    has_event_ids: bool  # False: duplicates are judged by the dedupe window
    parse: Callable[[str, bytes, ProfileOptions], list[Parsed]]
    examples: tuple[Example, ...]
    # Extra topics to subscribe for a configured base topic (e.g. "<t>/action").
    subtopics: tuple[str, ...] = ()
    # Options this profile requires, for the config check (e.g. ("value_path",)).
    required_options: tuple[str, ...] = ()
