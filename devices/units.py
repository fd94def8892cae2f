"""Units of readings: what a number from a scale or level sensor measures.

A reading's unit comes from its device family when the family says it (a
Tasmota HX711 reports kilograms) or from the sensor's configured ``unit:``.
Thresholds may be written with a unit (``250 g``, ``0.25 kg``, ``8 oz``) and are
converted, once, into the unit the sensor decides in; readings are converted
at the edge, so the core compares plain numbers of one unit per sensor.

Units of one dimension convert into each other; units this module does not
know (``%``, ``ppm``, ``cups``) are kept as names and only equal to themselves.
``counts`` are raw ADC numbers: they become a quantity only through a declared
scale and offset.

>>> convert(250, "g", "kg")
0.25
>>> round(parse_quantity("8 oz").to("g"), 1)
226.8
>>> parse_quantity("250")
Quantity(value=250.0, unit=None)
>>> convert(1, "kg", "ml")
Traceback (most recent call last):
...
devices.units.UnitError: cannot convert kg (a mass) to ml (a volume)
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

RAW_COUNTS = "counts"

# unit -> (dimension, size in the dimension's base unit)
_UNITS: dict[str, tuple[str, float]] = {
    "mg": ("mass", 0.001),
    "g": ("mass", 1.0),
    "kg": ("mass", 1000.0),
    "oz": ("mass", 28.349523125),
    "lb": ("mass", 453.59237),
    "ml": ("volume", 1.0),
    "cl": ("volume", 10.0),
    "dl": ("volume", 100.0),
    "l": ("volume", 1000.0),
    "mm": ("length", 1.0),
    "cm": ("length", 10.0),
    "m": ("length", 1000.0),
    "%": ("share", 1.0),
}
_ALIASES = {"L": "l", "lbs": "lb", "gram": "g", "grams": "g", "kilogram": "kg", "kilograms": "kg"}

_QUANTITY = re.compile(r"^\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+))\s*([^\s\d.+-][^\s]*)?\s*$", re.ASCII)


class UnitError(ValueError):
    """A unit that is not known, or two units that do not convert into each other."""


@dataclass(frozen=True)
class Quantity:
    """A number with an optional unit, as an installer writes a threshold."""

    value: float
    unit: str | None

    def to(self, unit: str) -> float:
        """This quantity in ``unit``; a bare number is taken to be in ``unit`` already."""
        return self.value if self.unit is None else convert(self.value, self.unit, unit)


def normalise(unit: str) -> str:
    """The spelling this module uses for ``unit`` (``L`` -> ``l``, ``grams`` -> ``g``)."""
    return _ALIASES.get(unit.strip(), unit.strip())


def is_known(unit: str) -> bool:
    return normalise(unit) in _UNITS


def dimension(unit: str) -> str | None:
    """``mass``, ``volume``, ``length``, ``share``; None for a unit this module does not know."""
    known = _UNITS.get(normalise(unit))
    return None if known is None else known[0]


def convertible(source: str, target: str) -> bool:
    source, target = normalise(source), normalise(target)
    if source == target:
        return True
    a, b = _UNITS.get(source), _UNITS.get(target)
    return a is not None and b is not None and a[0] == b[0]


def convert(value: float, source: str, target: str) -> float:
    """``value`` in ``source`` units, expressed in ``target`` units."""
    source, target = normalise(source), normalise(target)
    if source == target:
        return float(value)
    a, b = _UNITS.get(source), _UNITS.get(target)
    if a is None or b is None or a[0] != b[0]:
        raise UnitError(f"cannot convert {source} ({_kind(a)}) to {target} ({_kind(b)})")
    return float(value) * a[1] / b[1]


def _kind(known: tuple[str, float] | None) -> str:
    if known is None:
        return "a unit without conversions"
    return {"mass": "a mass", "volume": "a volume", "length": "a length", "share": "a share"}[
        known[0]
    ]


def parse_quantity(text: object) -> Quantity:
    """``"250 g"``, ``"0.25kg"``, ``250`` -> a :class:`Quantity`; UnitError otherwise."""
    if isinstance(text, bool):
        raise UnitError("expected a number, optionally with a unit (e.g. 250 g)")
    if isinstance(text, int | float):
        if not math.isfinite(text):
            raise UnitError("must be a finite number")
        return Quantity(float(text), None)
    if not isinstance(text, str):
        raise UnitError("expected a number, optionally with a unit (e.g. 250 g)")
    match = _QUANTITY.match(text)
    if not match:
        raise UnitError(
            f"'{text[:40]}' is not a number with a unit — write e.g. 250 g, 0.25 kg or 8 oz"
        )
    unit = match.group(2)
    return Quantity(float(match.group(1)), None if unit is None else normalise(unit))


def known_units() -> list[str]:
    return sorted(_UNITS)
