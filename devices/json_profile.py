"""``json``: any device that publishes JSON, configured with dotted paths.

Options (from the device's config entry):

- ``action_path``: dotted path to an action word. press/single/click/on ->
  press, hold/long -> hold, any other word -> other; ``null`` or ``""`` is
  "no action" and parses to nothing.
- ``value_path``: dotted path to a number -> a reading. JSON numbers and strings
  holding a number are accepted; NaN, infinities and booleans are not.
- ``event_id_path``: optional dotted path to an event id (string or integer).

Paths walk objects by key and lists by index: ``data.readings.0.grams``.

>>> parse("scale/kitchen", b'{"w": [{"g": "523.4"}]}', ProfileOptions(value_path="w.0.g"))
[DeviceReading(value=523.4, event_id=None, unit=None)]
>>> encode(DeviceReading(523.4), ProfileOptions(value_path="w.0.g"), {"battery": 88})
(Message(subtopic='', payload=b'{"w":[{"g":523.4}],"battery":88}'),)
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from devices._payload import (
    as_event_id,
    as_number,
    as_word,
    canonical,
    decode_json,
    encode_object,
    lookup,
    place,
    require_word,
    sendable_event_id,
    sendable_word,
)
from devices.base import (
    ActionWords,
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
    """An action and/or a reading, found by the configured paths."""
    if options.action_path is None and options.value_path is None:
        raise ParseError("json profile needs a value or action path")
    data = decode_json(payload)
    event_id = None
    if options.event_id_path is not None:
        path = options.event_id_path
        event_id = as_event_id(lookup(data, path), repr(path))
    parsed: list[Parsed] = []
    if options.action_path is not None:
        raw = lookup(data, options.action_path)
        if raw is not None and raw != "":
            word = as_word(raw, repr(options.action_path))
            parsed.append(DeviceAction(action=canonical(word), raw=word, event_id=event_id))
    if options.value_path is not None:
        value = as_number(lookup(data, options.value_path), repr(options.value_path))
        parsed.append(DeviceReading(value=value, event_id=event_id))
    return parsed


def encode(
    meaning: Parsed | None, options: ProfileOptions, extra: Mapping[str, object]
) -> tuple[Message, ...]:
    """One object with the meaning at the configured paths, then ``extra``.

    A reading from a device that also has an ``action_path`` carries a ``null``
    action; ``None`` is a message with a ``null`` action (a button only). An
    action from a device with a ``value_path`` cannot be said: every one of its
    messages must hold a number.
    """
    if options.action_path is None and options.value_path is None:
        raise EncodeError("json profile needs a value or action path")
    data: dict[str, object] = {}
    if isinstance(meaning, DeviceAction):
        if options.action_path is None:
            raise EncodeError("this json device has no action_path: it sends no actions")
        if options.value_path is not None:
            raise EncodeError("this json device has a value_path: each message needs a number")
        word = sendable_word("json", meaning.raw)
        require_word("json", word, meaning.action, canonical(word))
        place(data, options.action_path, word)
    elif isinstance(meaning, DeviceReading):
        if options.value_path is None:
            raise EncodeError("this json device has no value_path: it sends no readings")
        if not math.isfinite(meaning.value):
            raise EncodeError(f"a reading must be finite, got {meaning.value!r}")
        place(data, options.value_path, meaning.value)
        if options.action_path is not None:
            place(data, options.action_path, None)
    else:
        if options.action_path is None or options.value_path is not None:
            raise EncodeError("only a json button without a value_path sends empty messages")
        place(data, options.action_path, None)
    event_id = None if meaning is None else meaning.event_id
    if options.event_id_path is not None:
        if event_id is None:
            raise EncodeError(f"this json device sends an event id at {options.event_id_path!r}")
        place(data, options.event_id_path, sendable_event_id("json", event_id))
    elif event_id is not None:
        raise EncodeError("this json device has no event_id_path: its messages carry no id")
    # Every configured path was placed above, so an extra key that the parser
    # would read clashes with a key of ``data``.
    return (Message("", encode_object(data, extra)),)


_BUTTON = ProfileOptions(action_path="action")
_SCALE = ProfileOptions(value_path="weight.grams", event_id_path="msg_id")

PROFILE = Profile(
    name="json",
    description="Generic JSON devices: an action word or a number at a dotted path.",
    kind="both",
    has_event_ids=False,
    parse=parse,
    encode=encode,
    words=ActionWords(press="press", hold="hold"),
    examples=(
        Example(
            topic="home/hallway/button",
            payload=b'{"action": "click", "battery": 88}',
            options=_BUTTON,
            expected=(DeviceAction("press", "click"),),
        ),
        Example(
            topic="home/hallway/button",
            payload=b'{"action": "long"}',
            options=_BUTTON,
            expected=(DeviceAction("hold", "long"),),
        ),
        Example(
            topic="home/hallway/button",
            payload=b'{"action": null, "battery": 87}',
            options=_BUTTON,
            expected=(),
            note="no action in this message",
        ),
        Example(
            topic="home/kitchen/scale",
            payload=b'{"msg_id": 981, "weight": {"grams": 523.4}}',
            options=_SCALE,
            expected=(DeviceReading(523.4, "981"),),
        ),
        Example(
            topic="home/kitchen/scale",
            payload=b'{"msg_id": "s-982", "weight": {"grams": "498.0"}}',
            options=_SCALE,
            expected=(DeviceReading(498.0, "s-982"),),
            note="numbers sent as strings are accepted",
        ),
        Example(
            topic="home/pantry/shelf",
            payload=b'{"sensors": [{"kind": "load", "value": 1200},'
            b' {"kind": "temp", "value": 21}]}',
            options=ProfileOptions(value_path="sensors.0.value"),
            expected=(DeviceReading(1200.0),),
            note="list indices in the path",
        ),
    ),
)
