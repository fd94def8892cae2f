"""``tasmota``: ESP8266/ESP32 buttons running Tasmota.

With ``SetOption73 1`` Tasmota stops toggling its relay and reports button
actions on ``stat/<topic>/RESULT`` (or ``tele/…``)::

    {"Button1": {"Action": "SINGLE"}}

The ``button_index`` option picks ``Button<N>``. Messages about other buttons
and other RESULT keys (``POWER``, ``Dimmer`` …) parse to nothing.

>>> parse("stat/pantry/RESULT", b'{"Button1": {"Action": "HOLD"}}', ProfileOptions())
[DeviceAction(action='hold', raw='HOLD', event_id=None)]
>>> parse("stat/pantry/RESULT", b'{"Button2": {"Action": "SINGLE"}}', ProfileOptions())
[]
"""

from __future__ import annotations

from devices._payload import as_word, decode_object
from devices.base import (
    CanonicalAction,
    DeviceAction,
    Example,
    Parsed,
    ParseError,
    Profile,
    ProfileOptions,
)


def _canonical(word: str) -> CanonicalAction:
    # Tasmota always sends upper case; matching exactly keeps look-alikes
    # (e.g. "ſingle", whose upper() is "SINGLE") from ever ordering.
    if word == "SINGLE":
        return "press"
    if word == "HOLD":
        return "hold"
    return "other"  # DOUBLE, TRIPLE, QUAD, PENTA, CLEAR, INC_DEC ...


def parse(topic: str, payload: bytes, options: ProfileOptions) -> list[Parsed]:
    """The action of ``Button<button_index>``; nothing for any other key."""
    data = decode_object(payload)
    key = f"Button{options.button_index}"
    button = data.get(key)
    if button is None:
        return []
    if not isinstance(button, dict):
        raise ParseError(f"{key!r} must be an object, got {type(button).__name__}")
    if "Action" not in button:
        raise ParseError(f"missing '{key}.Action'")
    word = as_word(button["Action"], f"'{key}.Action'")
    return [DeviceAction(action=_canonical(word), raw=word)]


PROFILE = Profile(
    name="tasmota",
    description="Tasmota buttons with SetOption73: Button<N>.Action on stat/<topic>/RESULT.",
    kind="button",
    has_event_ids=False,
    parse=parse,
    examples=(
        Example(
            topic="stat/pantry/RESULT",
            payload=b'{"Button1": {"Action": "SINGLE"}}',
            expected=(DeviceAction("press", "SINGLE"),),
        ),
        Example(
            topic="stat/pantry/RESULT",
            payload=b'{"Button1": {"Action": "HOLD"}}',
            expected=(DeviceAction("hold", "HOLD"),),
        ),
        Example(
            topic="stat/pantry/RESULT",
            payload=b'{"Button1": {"Action": "DOUBLE"}}',
            expected=(DeviceAction("other", "DOUBLE"),),
        ),
        Example(
            topic="tele/pantry/RESULT",
            payload=b'{"Button2": {"Action": "SINGLE"}}',
            options=ProfileOptions(button_index=2),
            expected=(DeviceAction("press", "SINGLE"),),
            note="second button of a multi-button device",
        ),
        Example(
            topic="stat/pantry/RESULT",
            payload=b'{"Button2": {"Action": "SINGLE"}}',
            expected=(),
            note="another button of the same device",
        ),
        Example(
            topic="stat/pantry/RESULT",
            payload=b'{"POWER": "ON"}',
            expected=(),
        ),
    ),
)
