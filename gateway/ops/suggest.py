"""Guesses for a topic no device is configured on, for ``reorder-gateway listen``:
which profile reads the message, and the YAML lines that would make it work.

Every profile that needs no paths from the installer is tried with its default
options and its other buttons (Tasmota ``Button<N>``, a Shelly input or
component); the family whose topics look like this one comes first; a
Zigbee2MQTT word that only a model knows brings that model and button
(:func:`devices.z2m_models.models_saying`). The YAML pastes as it is: values YAML
would misread are quoted, and the name comes from the topic.

>>> [g.profile.name for g in guess("stat/desk/RESULT", b'{"Button1":{"Action":"SINGLE"}}')]
['tasmota']
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import yaml

from devices import (
    PROFILES,
    DeviceAction,
    DeviceReading,
    Parsed,
    ParseError,
    Profile,
    ProfileOptions,
)
from devices.z2m_models import models_saying
from gateway.config.models import Config

# Profiles that need the installer's paths (json) read nothing on their own.
_GUESSED = tuple(p for p in PROFILES.values() if not p.required_options)


@dataclass(frozen=True)
class Guess:
    """How an unconfigured topic's message reads under one profile."""

    profile: Profile
    meaning: str  # "press", "cancel", "reading 412.5"
    kind: str  # "buttons" | "sensors"
    base_topic: str
    options: Mapping[str, object]
    note: str = ""


def suggest(
    topic: str, payload: bytes, config: Config, name_for: Callable[[str], str] | None = None
) -> list[str]:
    """For a topic no device is configured on: the profile that reads it, as YAML
    (``name_for`` picks the device's name from its topic)."""
    guesses = guess(topic, payload)
    if not guesses:
        return [
            "not configured: no profile reads a press, a cancel or a reading in this "
            "message (press your button now, or see docs/devices.md)"
        ]
    best, others = guesses[0], guesses[1:]
    lines = [
        f"not configured: profile {best.profile.name} reads a {best.meaning}; "
        f"to use it, add under {best.kind}:"
    ]
    name = (name_for or device_name)(best.base_topic)
    lines += ["    " + line for line in _yaml(best, config, name)]
    if best.note:
        lines.append(f"    # {best.note}")
    if others:
        also = ", ".join(f"{g.profile.name} ({g.meaning})" for g in others)
        lines.append(f"  also reads as: {also}")
    return lines


def guess(topic: str, payload: bytes) -> list[Guess]:
    """Every profile (but those that need paths) that reads an event in the message."""
    found: list[Guess] = []
    own_family = False  # a family whose topics look like this one read the message
    for profile in _GUESSED:
        for options in _option_variants(profile, payload):
            try:
                parsed = profile.parse(topic, payload, options)
            except ParseError:
                continue
            own_family = own_family or _shaped(profile, topic)
            made = _guess_of(profile, topic, parsed, options)
            if made is not None:
                found.append(made)
                break
    if own_family:
        # Its message, even with no event in it: a stray number is not a scale.
        found = [g for g in found if _shaped(g.profile, topic)]
    # The family whose topics look like this one first; then a press before a
    # cancel before a reading; then the registry's order.
    rank = {"press": 0, "cancel": 1}
    return sorted(found, key=lambda g: (not _shaped(g.profile, topic), rank.get(g.meaning, 2)))


def _guess_of(
    profile: Profile, topic: str, parsed: list[Parsed], options: ProfileOptions
) -> Guess | None:
    base = _base_topic(profile, topic)
    chosen = {
        k: v
        for k, v in (("button_index", options.button_index), ("component", options.component))
        if v not in (None, 1)
    }
    for item in parsed:
        if isinstance(item, DeviceReading) and profile.kind in ("sensor", "both"):
            unit = item.unit or profile.reading_unit(options.value_path)
            told = f"reading {item.value:g}" + (f" {unit}" if unit else "")
            return Guess(profile, told, "sensors", base, {})
        if not isinstance(item, DeviceAction) or profile.kind == "sensor":
            continue
        if item.action in ("press", "hold"):
            meaning = "press" if item.action == "press" else "cancel"
            return Guess(profile, meaning, "buttons", base, chosen)
        if profile.name == "zigbee2mqtt":
            models = models_saying(item.raw)
            if models:
                model, button, role = models[0]
                opts: dict[str, object] = {"model": model.model}
                if len(model.buttons) > 1:
                    opts["button"] = button.name
                return Guess(profile, role, "buttons", base, opts, model_note(item.raw))
        if profile.name == "esphome" and item.raw not in ("ON", "OFF"):
            # An event entity with its own event types: the installer names them.
            note = f"if {item.raw!r} is your short press; long presses go under cancel:"
            actions = {"press": item.raw}
            return Guess(profile, "press", "buttons", base, {"actions": actions}, note)
    return None


def _option_variants(profile: Profile, payload: bytes) -> Iterable[ProfileOptions]:
    """The defaults, the family's sensor path, then the other buttons of a multi-button
    family."""
    yield ProfileOptions()
    if profile.default_value_path is not None:
        yield ProfileOptions(value_path=profile.default_value_path)  # its scale's number
    if profile.name == "tasmota":
        for index in range(2, 9):
            yield ProfileOptions(button_index=index)
    if profile.name == "shelly":
        for component in _shelly_components(payload):
            kind, _, number = component.partition(":")
            if kind == "input" and number.isdecimal() and int(number) < 8:
                yield ProfileOptions(button_index=int(number) + 1)
            else:
                yield ProfileOptions(component=component)


def _shelly_components(payload: bytes) -> list[str]:
    try:
        data = json.loads(payload)
        events = data["params"]["events"]
        return [str(e["component"]) for e in events if isinstance(e, dict) and "component" in e]
    except (ValueError, TypeError, KeyError):
        return []


def model_note(word: str) -> str:
    """Which Zigbee2MQTT models say ``word``, as a line for the installer ("" if none).

    >>> model_note("2_hold")
    "'2_hold' is a cancel of: TS0042, TS0043, TS0044 — set model: (docs/devices.md)"
    """
    models = models_saying(word)
    if not models:
        return ""
    named = ", ".join(dict.fromkeys(m.model for m, _, _ in models[:4]))
    return f"{word!r} is a {models[0][2]} of: {named} — set model: (docs/devices.md)"


# Where each family publishes: a guess whose family's topics look like this one
# comes first (a bare "0" reads as a number to ESPHome, but arrives on a Shelly's).
_TOPIC_SHAPES = {
    "zigbee2mqtt": re.compile(r"zigbee2mqtt/.+"),
    "tasmota": re.compile(r"(stat|tele)/[^/]+/(RESULT|SENSOR|BUTTON\d)"),
    "shelly": re.compile(r"shellies/[^/]+/(input_event|longpush)/\d+|[^/]+/events/rpc"),
    "esphome": re.compile(r"[^/]+/(binary_sensor|event|sensor)/[^/]+/state"),
}


def _shaped(profile: Profile, topic: str) -> bool:
    shape = _TOPIC_SHAPES.get(profile.name)
    return shape is not None and shape.fullmatch(topic) is not None


def _base_topic(profile: Profile, topic: str) -> str:
    for sub in profile.subtopics:
        if topic.endswith("/" + sub):
            return topic[: -len(sub) - 1]
    return topic


# Topic levels that name a family's structure, not the device.
_STRUCTURE = frozenset(
    {"zigbee2mqtt", "stat", "tele", "RESULT", "SENSOR", "shellies", "input_event", "longpush"}
    | {"events", "rpc", "binary_sensor", "event", "sensor", "state"}
)


def device_name(topic: str) -> str:
    """A name for the YAML: the topic's last level that names the device.

    >>> device_name("shellies/shellybutton1-A1/input_event/0"), device_name("stat/desk/RESULT")
    ('shellybutton1-a1', 'desk')
    """
    levels = [x for x in topic.split("/") if x and x not in _STRUCTURE and not x.isdecimal()]
    return _safe_name(levels[-1] if levels else "device")


def _yaml(found: Guess, config: Config, name: str) -> list[str]:
    products = sorted(config.products)
    # Pastes as it is: the first product, the others named in a comment.
    product = _scalar(products[0]) if products else "coffee  # your product's name"
    if len(products) > 1:
        product += f"  # or: {', '.join(products[1:])}"
    lines = [
        f"- name: {_scalar(name)}",
        f"  product: {product}",
        f"  mqtt: {_scalar(found.base_topic)}",
        f"  profile: {found.profile.name}",
    ]
    for key, value in found.options.items():
        if isinstance(value, Mapping):
            lines.append(f"  {key}:")
            lines += [f"    {k}: [{_scalar(v)}]" for k, v in value.items()]
        else:
            lines.append(f"  {key}: {_scalar(value)}")
    if found.kind == "sensors":
        lines += [
            "  unit: g  # the unit to decide in; then your thresholds:",
            "  reorder_below: 250 g",
            "  rearm_above: 800 g",
        ]
    return lines


def _scalar(value: object) -> str:
    """``value`` as YAML reads it back unchanged: ``on`` and ``2`` as a button's name
    are quoted (YAML would read a boolean and a number).

    >>> _scalar("on"), _scalar("left"), _scalar(2)
    ('"on"', 'left', '2')
    """
    if not isinstance(value, str):
        return str(value)
    try:
        plain = yaml.safe_load(value) == value and "#" not in value
    except yaml.YAMLError:
        plain = False
    return value if plain else json.dumps(value)


def _safe_name(text: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "-_" else "-" for c in text.lower()).strip("-")
    return cleaned[:32] or "device"
