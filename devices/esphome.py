"""``esphome``: ESPHome devices using the MQTT component.

Three entity types are understood, told apart by the payload (the state topics
are ``<prefix>/<type>/<name>/state``):

- ``binary_sensor``: ``ON`` is a press, ``OFF`` the release (``other``);
- ``event``: ``{"event_type": "single"}`` mapped like the ``json`` profile
  (press/single/click/on -> press, hold/long -> hold, else other), or by the
  ``actions`` option when the device's event types are its own words;
- ``sensor``: a number such as ``523.4`` -> a reading (e.g. a kitchen scale).

ESPHome retains binary-sensor states by default; the gateway never treats a
retained message as a press, so a reconnect cannot reorder.

>>> parse("scale/sensor/flour/state", b"523.4", ProfileOptions())
[DeviceReading(value=523.4, event_id=None, unit=None)]
>>> encode(DeviceAction("press", "ON"), ProfileOptions(), {})
(Message(subtopic='', payload=b'ON'),)
"""

from __future__ import annotations

from collections.abc import Mapping

from devices._payload import (
    as_number,
    as_word,
    canonical,
    decode_object,
    decode_text,
    encode_json,
    number_text,
    refuse_event_id,
    refuse_extra,
    require,
    require_word,
    sendable_word,
)
from devices.actions import ActionMap
from devices.base import (
    ActionWords,
    CanonicalAction,
    DeviceAction,
    DeviceReading,
    EncodeError,
    Example,
    Message,
    Parsed,
    ParseError,
    Profile,
    ProfileOptions,
)


def parse(topic: str, payload: bytes, options: ProfileOptions) -> list[Parsed]:
    """ON/OFF, an event object, or a numeric sensor state."""
    text = decode_text(payload).strip()
    if text == "ON":
        return [DeviceAction(action="press", raw="ON")]
    if text == "OFF":
        return [DeviceAction(action="other", raw="OFF")]
    if text.startswith("{"):
        data = decode_object(payload)
        word = as_word(require(data, "event_type"), "'event_type'")
        return [DeviceAction(action=_event_action(word, options), raw=word)]
    if text.lower() == "nan":
        # ESPHome publishes "nan" while a sensor has no valid reading.
        raise ParseError("sensor has no valid reading (nan)")
    try:
        return [DeviceReading(value=as_number(text, "sensor state"))]
    except ParseError as exc:
        raise ParseError(f"expected ON, OFF, a number or an event object: {exc}") from exc


def _event_action(word: str, options: ProfileOptions) -> CanonicalAction:
    return canonical(word) if options.actions is None else options.actions.canonical(word)


# The two binary_sensor states and what they mean.
_STATES: dict[str, CanonicalAction] = {"ON": "press", "OFF": "other"}


def encode(
    meaning: Parsed | None, options: ProfileOptions, extra: Mapping[str, object]
) -> tuple[Message, ...]:
    """``ON``/``OFF`` for those words, an event object for other words, a number
    for a reading. ESPHome states carry no event id and no other keys."""
    refuse_extra("esphome", extra)
    if meaning is None:
        raise EncodeError("every esphome state means something: there is no empty message")
    refuse_event_id("esphome", meaning.event_id)
    if isinstance(meaning, DeviceReading):
        return (Message("", number_text(meaning.value).encode()),)
    word = sendable_word("esphome", meaning.raw)
    if word in _STATES:
        require_word("esphome", word, meaning.action, _STATES[word])
        return (Message("", word.encode()),)
    require_word("esphome", word, meaning.action, _event_action(word, options))
    return (Message("", encode_json({"event_type": word})),)


PROFILE = Profile(
    name="esphome",
    description="ESPHome MQTT: binary_sensor ON/OFF, event entities, numeric sensors.",
    kind="both",
    has_event_ids=False,
    parse=parse,
    encode=encode,
    words=ActionWords(press="single", hold="long"),
    examples=(
        Example(
            topic="kitchen-node/binary_sensor/coffee_button/state",
            payload=b"ON",
            expected=(DeviceAction("press", "ON"),),
        ),
        Example(
            topic="kitchen-node/binary_sensor/coffee_button/state",
            payload=b"OFF",
            expected=(DeviceAction("other", "OFF"),),
            note="the release after a press",
        ),
        Example(
            topic="kitchen-node/event/coffee_button/state",
            payload=b'{"event_type": "single"}',
            expected=(DeviceAction("press", "single"),),
        ),
        Example(
            topic="kitchen-node/event/coffee_button/state",
            payload=b'{"event_type": "long"}',
            expected=(DeviceAction("hold", "long"),),
        ),
        Example(
            topic="kitchen-node/event/coffee_button/state",
            payload=b'{"event_type": "kurz"}',
            options=ProfileOptions(actions=ActionMap(press=("kurz",), cancel=("lang",))),
            expected=(DeviceAction("press", "kurz"),),
            note="event types the device's YAML chose, mapped by actions:",
        ),
        Example(
            topic="kitchen-scale/sensor/flour_weight/state",
            payload=b"523.4",
            expected=(DeviceReading(523.4),),
        ),
    ),
)
