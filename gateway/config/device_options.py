"""Checks of a device's options in the YAML: which words order (a Zigbee2MQTT model,
one of its buttons, or an explicit action map) and what unit a sensor decides in.

Each raises ``ValueError`` with what is wrong and how to fix it; pydantic places the
message at the option's line.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationInfo

from gateway.config.suggest import suggest


def check_model_name(name: str | None) -> str | None:
    """A Zigbee2MQTT model must be one of the known definitions (devices.z2m_models)."""
    if name is None:
        return None
    from devices.z2m_models import model_names

    valid = model_names()
    if name not in valid:
        listed = f"known models: {', '.join(valid)}"
        hint = suggest(name, valid, listing="", otherwise=listed)
        raise ValueError(
            f"unknown Zigbee2MQTT model '{name}' — {hint} (or give the words yourself "
            "with actions: {press: [...], cancel: [...]})"
        )
    return name


def check_button_of_model(button: str | None, model: object) -> str | None:
    """A ``button:`` the model has (its buttons are named in devices.z2m_models)."""
    if button is None or not isinstance(model, str):
        return button
    from devices.z2m_models import get_model

    try:
        buttons = [b.name for b in get_model(model).buttons]
    except KeyError:
        return button  # the model itself is reported
    if button not in buttons:
        listed = ", ".join(buttons)
        hint = suggest(button, buttons, listing="", otherwise=f"its buttons are: {listed}")
        raise ValueError(f"{model} has no button '{button}' — {hint} (buttons: {listed})")
    return button


def check_action_map(value: object) -> dict[str, list[str]] | None:
    """``actions: {press: [...], cancel: [...], release: [...], ignore: [...]}``;
    a single word stands for a list of one. Every problem of the map is refused."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ValueError(
            "expected a mapping such as {press: [single], cancel: [hold]} — "
            "list the device's own words under press, cancel, release, ignore"
        )
    from devices import ActionMap, ActionMapError

    try:
        words = ActionMap.from_config(value)
    except ActionMapError as exc:
        raise ValueError(str(exc)) from None
    return {role: list(words.words(role)) for role in ("press", "cancel", "release", "ignore")}


def check_threshold(value: object, info: ValidationInfo) -> object:
    """``250``, ``250 g``, ``0.25 kg``, ``8 oz`` -> a number in the sensor's unit.

    The sensor's unit is its ``unit:``, or the one its profile reports (a Tasmota
    HX711 says kg); a threshold in another unit of the same kind is converted.
    """
    from devices.units import RAW_COUNTS, UnitError, parse_quantity

    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return value  # pydantic's "expected a number"
    try:
        quantity = parse_quantity(value)
    except UnitError as exc:
        raise ValueError(str(exc)) from None
    unit = sensor_unit(info.data)
    if unit == RAW_COUNTS:
        return quantity.value  # the check asks for scale: and offset: (relations)
    if quantity.unit is None:
        if unit is not None and info.data.get("unit") is None:
            shown = f"{quantity.value:g}"
            raise ValueError(
                f"has no unit, and this sensor reports {unit} — write it with its unit, "
                f"e.g. '{shown} g' or '{shown} {unit}'"
            )
        return quantity.value
    if unit is None:
        raise ValueError(
            f"is in {quantity.unit}, but the sensor has no unit — add unit: {quantity.unit} "
            "(the unit its numbers are in)"
        )
    try:
        return quantity.to(unit)
    except UnitError as exc:
        raise ValueError(f"{exc} — write it in {unit}, or fix the sensor's unit:") from None


def sensor_unit(data: Mapping[str, Any]) -> str | None:
    """The unit a sensor decides in: its ``unit:``, else the one its profile reports.

    Raw ``counts`` turned into a quantity by ``scale:`` are in ``unit:`` (or none).
    """
    declared = data.get("unit")
    if isinstance(declared, str):
        from devices.units import normalise

        return normalise(declared)
    if data.get("scale") is not None:
        return None
    from devices import PROFILES

    profile = PROFILES.get(str(data.get("profile", "json")))
    if profile is None:
        return None
    path = data.get("value")
    return profile.reading_unit(path if isinstance(path, str) else None)
