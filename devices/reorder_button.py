"""``reorder-button``: our own button firmware.

It publishes one JSON object per event on its own topic and gives every event a
unique id, so the gateway deduplicates exactly (MQTT redeliveries, restarts)
instead of by time window::

    {"event": "press", "id": "b1-000042", "seq": 42}

>>> encode(PROFILE.action("hold", "b1-7"), ProfileOptions(), {"seq": 7})
(Message(subtopic='', payload=b'{"event":"hold","id":"b1-7","seq":7}'),)
>>> parse("home/reorder/laundry", b'{"event": "hold", "id": "b1-7", "seq": 7}', ProfileOptions())
[DeviceAction(action='hold', raw='hold', event_id='b1-7')]
"""

from __future__ import annotations

from collections.abc import Mapping

from devices._payload import (
    as_event_id,
    decode_object,
    encode_object,
    json_type,
    require,
    sendable_event_id,
    short,
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

_EVENTS = ("press", "hold")


def parse(topic: str, payload: bytes, options: ProfileOptions) -> list[Parsed]:
    """One press or hold per message; anything else is a ParseError."""
    data = decode_object(payload)
    event = require(data, "event")
    if event not in _EVENTS:
        raise ParseError(f"'event' must be 'press' or 'hold', got {short(event)}")
    action: CanonicalAction = "press" if event == "press" else "hold"
    raw_id = require(data, "id")
    if not isinstance(raw_id, str):
        raise ParseError(f"'id' must be a string, got {json_type(raw_id)}")
    event_id = as_event_id(raw_id, "'id'")
    seq = require(data, "seq")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
        raise ParseError(f"'seq' must be an integer >= 0, got {short(seq)}")
    return [DeviceAction(action=action, raw=action, event_id=event_id)]


def encode(
    meaning: Parsed | None, options: ProfileOptions, extra: Mapping[str, object]
) -> tuple[Message, ...]:
    """``{"event", "id", "seq"}``; ``seq`` comes from ``extra`` (0 if not given).

    Every message of this firmware is an event with its own id: there is no
    message that means nothing, and no reading.
    """
    if not isinstance(meaning, DeviceAction) or meaning.action == "other":
        raise EncodeError("reorder-button firmware sends only press and hold events")
    if meaning.raw != meaning.action:
        raise EncodeError(f"reorder-button says {meaning.action!r}, not {short(meaning.raw)}")
    if meaning.event_id is None:
        raise EncodeError("reorder-button events always carry an id")
    seq = extra.get("seq", 0)
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
        raise EncodeError(f"'seq' must be an integer >= 0, got {short(seq)}")
    rest = {key: value for key, value in extra.items() if key != "seq"}
    event_id = sendable_event_id("reorder-button", meaning.event_id)
    fields = {"event": meaning.action, "id": event_id, "seq": seq}
    return (Message("", encode_object(fields, rest)),)


PROFILE = Profile(
    name="reorder-button",
    description="Our own button firmware: JSON press/hold events with unique ids.",
    kind="button",
    has_event_ids=True,
    parse=parse,
    encode=encode,
    words=ActionWords(press="press", hold="hold"),
    examples=(
        Example(
            topic="home/reorder/laundry",
            payload=b'{"event": "press", "id": "b1-000042", "seq": 42}',
            expected=(DeviceAction("press", "press", "b1-000042"),),
        ),
        Example(
            topic="home/reorder/laundry",
            payload=b'{"event": "hold", "id": "b1-000043", "seq": 43}',
            expected=(DeviceAction("hold", "hold", "b1-000043"),),
            note="a long press cancels the open order",
        ),
    ),
)
