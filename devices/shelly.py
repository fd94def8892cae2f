"""``shelly``: Shelly relays and buttons, Gen1 and Gen2/Plus.

Gen1 publishes on ``shellies/<id>/input_event/<n>`` (the topic selects the
input)::

    {"event": "S", "event_cnt": 12}

``event_cnt`` counts events per input since the device's boot, so it becomes
the event id ``cnt-12``, and the gateway names it by the device's boot (see
``RESTART``: the live ``online`` ``true`` a Gen1 device publishes when it
connects); ``""`` is the idle state that Gen1 reports after boot and parses to
nothing.

Gen2/Plus publish JSON-RPC notifications on ``<id>/events/rpc``; input
``button_index - 1`` is picked out of ``params.events``. They carry no event
id, which is why the profile declares ``has_event_ids=False`` (the gateway
falls back to its dedupe window)::

    {"method": "NotifyEvent", "params": {"events": [{"component": "input:0",
     "event": "single_push"}]}}

The ``component`` option picks another component than an input: a virtual
button (``button:200``) or a Shelly BLU button seen through a Shelly gateway
(the component its events name). Their events use the same words.

Gen1 relays also report ``shellies/<id>/longpush/<n>`` as a bare ``1`` (long
push, a cancel) or ``0`` (short push: ignored here, as the same push comes as
an ``input_event`` with its counter).

>>> parse("shellies/sh1/input_event/0", b'{"event": "S", "event_cnt": 12}', ProfileOptions())
[DeviceAction(action='press', raw='S', event_id='cnt-12')]
>>> parse("shellies/sh1/longpush/0", b"1", ProfileOptions())
[DeviceAction(action='hold', raw='1', event_id=None)]

Encoding picks the generation by the event id: ``cnt-<N>`` is a Gen1
``input_event`` with ``event_cnt`` N, no id is a Gen2 notification:

>>> encode(PROFILE.action("press", "cnt-13"), ProfileOptions(), {})
(Message(subtopic='', payload=b'{"event":"S","event_cnt":13}'),)
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from devices._payload import (
    as_word,
    decode_object,
    encode_object,
    json_type,
    refuse_extra,
    require,
    require_word,
    sendable_word,
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
    RestartSignal,
)
from devices.vitals import read_shelly

# A notification with more events than this is not from a Shelly; capping it
# keeps one message from turning into a flood of presses.
MAX_EVENTS = 16

# Anything not listed maps to "other": SS, SSS, LS, SL (Gen1); double_push,
# triple_push, long_double_push, btn_down, btn_up (Gen2). btn_down must never be
# a press: every single_push is preceded by one.
_GEN1: dict[str, CanonicalAction] = {"S": "press", "L": "hold"}
_GEN2: dict[str, CanonicalAction] = {"single_push": "press", "long_push": "hold"}


def _gen1(data: dict[str, object]) -> list[Parsed]:
    event = data["event"]
    if event == "":
        return []  # idle: no event since boot
    word = as_word(event, "'event'")
    count = require(data, "event_cnt")
    if not isinstance(count, int) or isinstance(count, bool) or not 0 <= count < 10**12:
        raise ParseError(f"'event_cnt' must be an integer >= 0, got {short(count)}")
    return [DeviceAction(action=_GEN1.get(word, "other"), raw=word, event_id=f"cnt-{count}")]


def _gen2(data: dict[str, object], options: ProfileOptions) -> list[Parsed]:
    if data["method"] != "NotifyEvent":
        return []  # NotifyStatus / NotifyFullStatus: state, not button events
    params = require(data, "params")
    if not isinstance(params, dict):
        raise ParseError(f"'params' must be an object, got {json_type(params)}")
    events = require(params, "events")
    if not isinstance(events, list):
        raise ParseError(f"'params.events' must be a list, got {json_type(events)}")
    if len(events) > MAX_EVENTS:
        raise ParseError(f"'params.events' has {len(events)} entries, more than {MAX_EVENTS}")
    wanted = _component(options)
    parsed: list[Parsed] = []
    for event in events:
        if not isinstance(event, dict):
            raise ParseError(f"'params.events' entries must be objects, got {short(event)}")
        if require(event, "component") != wanted:
            continue  # another input, a switch, sys, ...
        word = as_word(require(event, "event"), "'event'")
        parsed.append(DeviceAction(action=_GEN2.get(word, "other"), raw=word))
    return parsed


def _component(options: ProfileOptions) -> str:
    return options.component or f"input:{options.button_index - 1}"


# Gen1 longpush/<n>: "1" a long push, "0" a short one.
_LONGPUSH: dict[str, CanonicalAction] = {"1": "hold", "0": "other"}

_COUNTER_ID = re.compile(r"cnt-(\d{1,12})", re.ASCII)
_GEN1_INPUT = re.compile(r"shellies/([^/#+]+)/input_event/\d+")


def restart_topic(topic: str) -> str | None:
    """Where the Gen1 device of an ``input_event`` topic says it is online.

    >>> restart_topic("shellies/shellybutton1-A1B2C3/input_event/0")
    'shellies/shellybutton1-A1B2C3/online'
    >>> restart_topic("shellyplusi4-a8032ab1/events/rpc") is None  # Gen2: no counter
    True
    """
    match = _GEN1_INPUT.fullmatch(topic)
    return None if match is None else f"shellies/{match.group(1)}/online"


def event_count(payload: bytes) -> int | None:
    """The ``event_cnt`` of a Gen1 ``input_event`` (the idle report's ``0`` too).

    >>> event_count(b'{"event": "", "event_cnt": 0}'), event_count(b"1")
    (0, None)
    """
    try:
        data = decode_object(payload)
    except ParseError:
        return None
    count = data.get("event_cnt")
    if not isinstance(count, int) or isinstance(count, bool) or not 0 <= count < 10**12:
        return None
    return count


# A Gen1 device publishes ``true`` (retained) on ``shellies/<id>/online`` each time it
# connects, after a boot, a wake from sleep or a lost connection, and its broker the
# will ``false``; after a boot its input_event reports ``event_cnt`` 0, then counts up.
RESTART = RestartSignal(topic=restart_topic, payload=b"true", count=event_count)
# Gen1 reports this after boot, before any button event.
_GEN1_IDLE = {"event": "", "event_cnt": 0}


def _encode_gen1(
    word: str, action: CanonicalAction, event_id: str, extra: Mapping[str, object]
) -> Message:
    match = _COUNTER_ID.fullmatch(event_id)
    if match is None:
        raise EncodeError(f"shelly Gen1 event ids are 'cnt-<event_cnt>', got {short(event_id)}")
    require_word("shelly Gen1", word, action, _GEN1.get(word, "other"))
    fields = {"event": word, "event_cnt": int(match.group(1))}
    return Message("", encode_object(fields, extra, reserved=("method",)))


def _encode_gen2(word: str, options: ProfileOptions, extra: Mapping[str, object]) -> Message:
    component = _component(options)
    index = component.rpartition(":")[2]
    event: dict[str, object] = {"component": component, "event": word}
    if index.isdecimal() and index.isascii():
        event["id"] = int(index)
    fields = {"method": "NotifyEvent", "params": {"events": [event]}}
    return Message("", encode_object(fields, extra))


def encode(
    meaning: Parsed | None, options: ProfileOptions, extra: Mapping[str, object]
) -> tuple[Message, ...]:
    """Gen1 ``{"event", "event_cnt"}`` for ids ``cnt-<N>``, Gen2 ``NotifyEvent`` without.

    ``None`` is the Gen1 idle report after boot.
    """
    if meaning is None:
        return (Message("", encode_object(_GEN1_IDLE, extra, reserved=("method",))),)
    if not isinstance(meaning, DeviceAction):
        raise EncodeError("shelly inputs send button events, not readings")
    word = sendable_word("shelly", meaning.raw)
    if meaning.event_id is not None:
        return (_encode_gen1(word, meaning.action, meaning.event_id, extra),)
    if word in _LONGPUSH:
        require_word("shelly Gen1 longpush", word, meaning.action, _LONGPUSH[word])
        refuse_extra("shelly Gen1 longpush", extra)
        return (Message("", word.encode()),)
    if word in _GEN1:
        raise EncodeError(
            f"shelly: {word!r} is a Gen1 word and Gen1 events carry an id 'cnt-<N>'; "
            "Gen2 says single_push / long_push"
        )
    require_word("shelly Gen2", word, meaning.action, _GEN2.get(word, "other"))
    return (_encode_gen2(word, options, extra),)


def parse(topic: str, payload: bytes, options: ProfileOptions) -> list[Parsed]:
    """Gen1 ``input_event`` or Gen2 ``NotifyEvent``, told apart by their keys;
    a bare ``0``/``1`` is a Gen1 ``longpush``."""
    bare = payload.strip()
    if bare in (b"0", b"1"):
        word = bare.decode()
        return [DeviceAction(action=_LONGPUSH[word], raw=word)]
    data = decode_object(payload)
    if "method" in data:
        return _gen2(data, options)
    if "event" in data:
        return _gen1(data)
    raise ParseError("neither a Gen1 input_event ('event') nor a Gen2 notification ('method')")


_GEN2_PRESS = (
    b'{"src": "shellyplusi4-a8032ab1", "dst": "shellyplusi4-a8032ab1/events",'
    b' "method": "NotifyEvent", "params": {"ts": 1718000000.12, "events":'
    b' [{"component": "input:0", "id": 0, "event": "single_push", "ts": 1718000000.12}]}}'
)

PROFILE = Profile(
    name="shelly",
    description="Shelly Gen1 input_event and Gen2/Plus NotifyEvent button events.",
    kind="button",
    has_event_ids=False,
    parse=parse,
    encode=encode,
    vitals=read_shelly,
    restart=RESTART,
    words=ActionWords(press="S", hold="L"),
    examples=(
        Example(
            topic="shellies/shellybutton1-A1B2C3/input_event/0",
            payload=b'{"event": "S", "event_cnt": 12}',
            expected=(DeviceAction("press", "S", "cnt-12"),),
        ),
        Example(
            topic="shellies/shellybutton1-A1B2C3/input_event/0",
            payload=b'{"event": "L", "event_cnt": 13}',
            expected=(DeviceAction("hold", "L", "cnt-13"),),
        ),
        Example(
            topic="shellies/shellybutton1-A1B2C3/input_event/0",
            payload=b'{"event": "SS", "event_cnt": 14}',
            expected=(DeviceAction("other", "SS", "cnt-14"),),
        ),
        Example(
            topic="shellies/shellybutton1-A1B2C3/input_event/0",
            payload=b'{"event": "", "event_cnt": 0}',
            expected=(),
            note="Gen1 idle state after boot",
        ),
        Example(
            topic="shellyplusi4-a8032ab1/events/rpc",
            payload=_GEN2_PRESS,
            expected=(DeviceAction("press", "single_push"),),
        ),
        Example(
            topic="shellyplusi4-a8032ab1/events/rpc",
            payload=b'{"method": "NotifyEvent", "params": {"events":'
            b' [{"component": "input:1", "id": 1, "event": "long_push"}]}}',
            options=ProfileOptions(button_index=2),
            expected=(DeviceAction("hold", "long_push"),),
        ),
        Example(
            topic="shellyplus1-a8032ab1/events/rpc",
            payload=b'{"method": "NotifyEvent", "params": {"events":'
            b' [{"component": "button:200", "id": 200, "event": "single_push"}]}}',
            options=ProfileOptions(component="button:200"),
            expected=(DeviceAction("press", "single_push"),),
            note="a virtual button component",
        ),
        Example(
            topic="shellies/shelly1-A1B2C3/longpush/0",
            payload=b"1",
            expected=(DeviceAction("hold", "1"),),
            note="Gen1 long push",
        ),
        Example(
            topic="shellyplusi4-a8032ab1/events/rpc",
            payload=b'{"method": "NotifyStatus", "params": {"input:0": {"state": true}}}',
            expected=(),
            note="status changes are not button events",
        ),
    ),
)
