"""``tasmota``: ESP8266/ESP32 buttons running Tasmota.

With ``SetOption73 1`` Tasmota stops toggling its relay and reports button
actions on ``stat/<topic>/RESULT`` (or ``tele/…``)::

    {"Button1": {"Action": "SINGLE"}}

The ``button_index`` option picks ``Button<N>``. Messages about other buttons
and other RESULT keys (``POWER``, ``Dimmer`` …) parse to nothing. Multi-press
words (``DOUBLE`` … ``PENTA``) and ``CLEAR`` (the release after a hold) are
ignored by name.

Tasmota before 9.0 published ``{"ACTION": "SINGLE"}`` on ``stat/<topic>/BUTTON<N>``
(configure that topic); the topic names the button.

>>> parse("stat/pantry/BUTTON1", b'{"ACTION":"SINGLE"}', ProfileOptions())
[DeviceAction(action='press', raw='SINGLE', event_id=None)]

>>> parse("stat/pantry/RESULT", b'{"Button1": {"Action": "HOLD"}}', ProfileOptions())
[DeviceAction(action='hold', raw='HOLD', event_id=None)]
>>> parse("stat/pantry/RESULT", b'{"Button2": {"Action": "SINGLE"}}', ProfileOptions())
[]
>>> encode(PROFILE.action("hold"), ProfileOptions(button_index=2), {})
(Message(subtopic='', payload=b'{"Button2":{"Action":"HOLD"}}'),)
"""

from __future__ import annotations

from collections.abc import Mapping

from devices._payload import (
    as_word,
    decode_object,
    encode_object,
    refuse_event_id,
    require_word,
    sendable_word,
)
from devices.base import (
    ActionWords,
    CanonicalAction,
    DeviceAction,
    EncodeError,
    Example,
    Message,
    Parsed,
    ParseError,
    Profile,
    ProfileOptions,
)

# Tasmota always sends upper case; matching exactly keeps look-alikes (e.g.
# "ſingle", whose upper() is "SINGLE") from ever ordering. Every other word
# (DOUBLE, TRIPLE, QUAD, PENTA, CLEAR, INC_DEC ...) is "other".
ACTIONS: dict[str, CanonicalAction] = {"SINGLE": "press", "HOLD": "hold"}

# What a RESULT says when it is about the relay, not a button.
_RELAY_REPORT = {"POWER": "ON"}


def parse(topic: str, payload: bytes, options: ProfileOptions) -> list[Parsed]:
    """The action of ``Button<button_index>``; nothing for any other key."""
    data = decode_object(payload)
    if "ACTION" in data and topic.rsplit("/", 1)[-1].startswith("BUTTON"):
        # Before 9.0: one button per topic, the action under "ACTION".
        word = as_word(data["ACTION"], "'ACTION'")
        return [DeviceAction(action=ACTIONS.get(word, "other"), raw=word)]
    key = f"Button{options.button_index}"
    button = data.get(key)
    if button is None:
        return []
    if not isinstance(button, dict):
        raise ParseError(f"{key!r} must be an object, got {type(button).__name__}")
    if "Action" not in button:
        raise ParseError(f"missing '{key}.Action'")
    word = as_word(button["Action"], f"'{key}.Action'")
    return [DeviceAction(action=ACTIONS.get(word, "other"), raw=word)]


def encode(
    meaning: Parsed | None, options: ProfileOptions, extra: Mapping[str, object]
) -> tuple[Message, ...]:
    """``{"Button<N>": {"Action": word}}``; ``None`` is a relay report (``POWER``)."""
    key = f"Button{options.button_index}"
    if meaning is None:
        return (Message("", encode_object(_RELAY_REPORT, extra, reserved=(key, "ACTION"))),)
    if not isinstance(meaning, DeviceAction):
        raise EncodeError("tasmota buttons send actions, not readings")
    refuse_event_id("tasmota", meaning.event_id)
    word = sendable_word("tasmota", meaning.raw)
    require_word("tasmota", word, meaning.action, ACTIONS.get(word, "other"))
    return (Message("", encode_object({key: {"Action": word}}, extra)),)


PROFILE = Profile(
    name="tasmota",
    description="Tasmota buttons with SetOption73: Button<N>.Action on stat/<topic>/RESULT.",
    kind="button",
    has_event_ids=False,
    parse=parse,
    encode=encode,
    words=ActionWords(press="SINGLE", hold="HOLD"),
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
        Example(
            topic="stat/pantry/BUTTON1",
            payload=b'{"ACTION":"HOLD"}',
            expected=(DeviceAction("hold", "HOLD"),),
            note="Tasmota before 9.0",
        ),
        Example(
            topic="stat/pantry/RESULT",
            payload=b'{"Button1":{"Action":"CLEAR"}}',
            expected=(DeviceAction("other", "CLEAR"),),
            note="released after a hold",
        ),
    ),
)
