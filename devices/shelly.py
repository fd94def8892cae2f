"""``shelly``: Shelly relays and buttons, Gen1 and Gen2/Plus.

Gen1 publishes on ``shellies/<id>/input_event/<n>`` (the topic selects the
input)::

    {"event": "S", "event_cnt": 12}

``event_cnt`` counts events per input, so it becomes the event id ``cnt-12``;
``""`` is the idle state that Gen1 reports after boot and parses to nothing.

Gen2/Plus publish JSON-RPC notifications on ``<id>/events/rpc``; input
``button_index - 1`` is picked out of ``params.events``. They carry no event
id, which is why the profile declares ``has_event_ids=False`` (the gateway
falls back to its dedupe window)::

    {"method": "NotifyEvent", "params": {"events": [{"component": "input:0",
     "event": "single_push"}]}}

>>> parse("shellies/sh1/input_event/0", b'{"event": "S", "event_cnt": 12}', ProfileOptions())
[DeviceAction(action='press', raw='S', event_id='cnt-12')]
"""

from __future__ import annotations

from devices._payload import as_word, decode_object, require, short
from devices.base import (
    CanonicalAction,
    DeviceAction,
    Example,
    Parsed,
    ParseError,
    Profile,
    ProfileOptions,
)

# A notification with more events than this is not from a Shelly; capping it
# keeps one message from turning into a flood of presses.
MAX_EVENTS = 16

# Anything not listed maps to "other": SS, SSS, LS, SL (Gen1); double_push,
# triple_push, btn_down, btn_up (Gen2). btn_down must never be a press: every
# single_push is preceded by one.
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
        raise ParseError(f"'params' must be an object, got {type(params).__name__}")
    events = require(params, "events")
    if not isinstance(events, list):
        raise ParseError(f"'params.events' must be a list, got {type(events).__name__}")
    if len(events) > MAX_EVENTS:
        raise ParseError(f"'params.events' has {len(events)} entries, more than {MAX_EVENTS}")
    wanted = f"input:{options.button_index - 1}"
    parsed: list[Parsed] = []
    for event in events:
        if not isinstance(event, dict):
            raise ParseError(f"'params.events' entries must be objects, got {short(event)}")
        if require(event, "component") != wanted:
            continue  # another input, a switch, sys, ...
        word = as_word(require(event, "event"), "'event'")
        parsed.append(DeviceAction(action=_GEN2.get(word, "other"), raw=word))
    return parsed


def parse(topic: str, payload: bytes, options: ProfileOptions) -> list[Parsed]:
    """Gen1 ``input_event`` or Gen2 ``NotifyEvent``, told apart by their keys."""
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
            topic="shellyplusi4-a8032ab1/events/rpc",
            payload=b'{"method": "NotifyStatus", "params": {"input:0": {"state": true}}}',
            expected=(),
            note="status changes are not button events",
        ),
    ),
)
