"""``zigbee2mqtt``: Zigbee buttons bridged by Zigbee2MQTT.

Z2M publishes a device's whole state as one JSON object on
``zigbee2mqtt/<friendly name>``; a button press shows up as its ``action``
key. The same topic also carries battery and link-quality updates without an
action (or with ``"action": ""`` to reset it): those are not errors, they
parse to nothing. Older set-ups also publish the bare word on the
``<friendly name>/action`` sub-topic, which is why it is subscribed as well.

Z2M messages carry no event id, and some models publish every action twice,
so the gateway deduplicates these by its time window.

>>> parse("zigbee2mqtt/laundry", b'{"action": "single", "battery": 97}', ProfileOptions())
[DeviceAction(action='press', raw='single', event_id=None)]
>>> [m.subtopic for m in encode(PROFILE.action("press"), ProfileOptions(), {"battery": 97})]
['', 'action']
>>> parse("zigbee2mqtt/laundry", b'{"battery": 96, "linkquality": 120}', ProfileOptions())
[]
"""

from __future__ import annotations

from collections.abc import Mapping

from devices._payload import (
    as_word,
    decode_object,
    decode_text,
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
    Profile,
    ProfileOptions,
)

ACTION_SUBTOPIC = "action"


# Words of the common Aqara/IKEA/Tuya buttons; any other word (double, triple,
# release, brightness_*, arrow_* ...) is "other".
ACTIONS: dict[str, CanonicalAction] = {"single": "press", "hold": "hold", "long": "hold"}


def _action(word: str) -> list[Parsed]:
    return [DeviceAction(action=ACTIONS.get(word, "other"), raw=word)]


def parse(topic: str, payload: bytes, options: ProfileOptions) -> list[Parsed]:
    """The ``action`` of a state message, or the bare word on ``…/action``."""
    if topic.endswith("/" + ACTION_SUBTOPIC) and not payload.lstrip().startswith(b"{"):
        word = decode_text(payload).strip()
        return _action(as_word(word, "action")) if word else []
    data = decode_object(payload)
    action = data.get("action")
    if action is None or action == "":
        return []  # a battery/linkquality update, or Z2M clearing the action
    return _action(as_word(action, "'action'"))


def encode(
    meaning: Parsed | None, options: ProfileOptions, extra: Mapping[str, object]
) -> tuple[Message, ...]:
    """The state object with its ``action`` (and ``extra``: battery, linkquality),
    then the bare word on the legacy ``…/action`` sub-topic, as Z2M sends both.

    ``None`` is a plain state report: ``extra`` without an action.
    """
    if meaning is None:
        return (Message("", encode_object({}, extra, reserved=("action",))),)
    if not isinstance(meaning, DeviceAction):
        raise EncodeError("zigbee2mqtt buttons send actions, not readings")
    refuse_event_id("zigbee2mqtt", meaning.event_id)
    word = sendable_word("zigbee2mqtt", meaning.raw)
    if word != word.strip() or word.startswith("{"):
        # The sub-topic carries the bare word, which the parser strips and sniffs.
        raise EncodeError(f"zigbee2mqtt action {word!r} would not read back the same")
    require_word("zigbee2mqtt", word, meaning.action, ACTIONS.get(word, "other"))
    return (
        Message("", encode_object({"action": word}, extra)),
        Message(ACTION_SUBTOPIC, word.encode()),
    )


PROFILE = Profile(
    name="zigbee2mqtt",
    description="Zigbee buttons via Zigbee2MQTT: the 'action' of zigbee2mqtt/<name>.",
    kind="button",
    has_event_ids=False,
    parse=parse,
    encode=encode,
    words=ActionWords(press="single", hold="hold"),
    subtopics=(ACTION_SUBTOPIC,),
    examples=(
        Example(
            topic="zigbee2mqtt/laundry",
            payload=b'{"action": "single", "battery": 97, "linkquality": 132}',
            expected=(DeviceAction("press", "single"),),
        ),
        Example(
            topic="zigbee2mqtt/laundry",
            payload=b'{"action": "hold", "battery": 97}',
            expected=(DeviceAction("hold", "hold"),),
        ),
        Example(
            topic="zigbee2mqtt/laundry",
            payload=b'{"action": "double"}',
            expected=(DeviceAction("other", "double"),),
        ),
        Example(
            topic="zigbee2mqtt/laundry",
            payload=b'{"battery": 96, "linkquality": 120, "voltage": 3000}',
            expected=(),
            note="state update without an action: nothing happened",
        ),
        Example(
            topic="zigbee2mqtt/laundry",
            payload=b'{"action": "", "battery": 96}',
            expected=(),
            note="Z2M clears the action after publishing it",
        ),
        Example(
            topic="zigbee2mqtt/laundry/action",
            payload=b"single",
            expected=(DeviceAction("press", "single"),),
            note="legacy plain-text action sub-topic",
        ),
    ),
)
