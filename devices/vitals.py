"""Battery and link, where a device's own messages carry them.

Pure, like the parsers: ``read(topic, payload)`` of a family gives a
:class:`Vitals` or None. It never raises and never decides anything: a battery
value that is missing, out of range or not a number is simply not shown (the
message itself is judged by the profile's ``parse`` as before).

- **zigbee2mqtt**: the state object's ``battery`` (percent), ``voltage`` (mV) and
  ``linkquality`` (LQI, 0..255), as the exposes of zigbee-herdsman-converters
  define them (``src/lib/exposes.ts``: ``battery()`` in %, ``voltage()`` in mV,
  ``linkquality()`` 0..255).
- **shelly** Gen2+: a ``NotifyStatus``/``NotifyFullStatus`` on ``<id>/events/rpc``
  with ``devicepower:0.battery.percent`` / ``.V`` and ``wifi.rssi`` (dBm), as the
  DevicePower and WiFi components of the Shelly Gen2 API describe their status.

>>> read_zigbee2mqtt("zigbee2mqtt/hall", b'{"battery": 87, "linkquality": 120}')
Vitals(battery=87.0, voltage=None, link=120.0, link_unit='LQI')
>>> read_zigbee2mqtt("zigbee2mqtt/hall", b'{"action": "single"}') is None
True
>>> Vitals(battery=87.0, link=-61.0, link_unit="dBm").describe()
'battery 87 % · link -61 dBm'
"""

from __future__ import annotations

import math

from devices._payload import decode_object
from devices.base import LinkUnit, ParseError, Vitals

__all__ = ["Vitals", "read_shelly", "read_zigbee2mqtt"]


def _number(value: object, low: float, high: float) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:  # an integer of hundreds of digits
        return None
    return number if math.isfinite(number) and low <= number <= high else None


def _object(payload: bytes) -> dict[str, object] | None:
    try:
        return decode_object(payload)
    except ParseError:
        return None


def _vitals(
    battery: float | None, voltage: float | None, link: float | None, unit: LinkUnit
) -> Vitals | None:
    if battery is None and voltage is None and link is None:
        return None
    return Vitals(battery, voltage, link, unit if link is not None else None)


def read_zigbee2mqtt(topic: str, payload: bytes) -> Vitals | None:
    """``battery`` (%), ``voltage`` (mV) and ``linkquality`` of a Z2M state object."""
    data = _object(payload)
    if data is None:
        return None
    millivolts = _number(data.get("voltage"), 0, 100_000)
    return _vitals(
        _number(data.get("battery"), 0, 100),
        None if millivolts is None else millivolts / 1000,
        _number(data.get("linkquality"), 0, 255),
        "LQI",
    )


def read_shelly(topic: str, payload: bytes) -> Vitals | None:
    """``devicepower:0`` and ``wifi`` of a Gen2+ status notification."""
    data = _object(payload)
    if data is None or data.get("method") not in ("NotifyStatus", "NotifyFullStatus"):
        return None
    params = data.get("params")
    if not isinstance(params, dict):
        return None
    power = params.get("devicepower:0")
    battery = power.get("battery") if isinstance(power, dict) else None
    wifi = params.get("wifi")
    return _vitals(
        _number(battery.get("percent"), 0, 100) if isinstance(battery, dict) else None,
        _number(battery.get("V"), 0, 100) if isinstance(battery, dict) else None,
        _number(wifi.get("rssi"), -150, 0) if isinstance(wifi, dict) else None,
        "dBm",
    )
