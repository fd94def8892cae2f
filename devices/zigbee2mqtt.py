"""``zigbee2mqtt``: Zigbee buttons bridged by Zigbee2MQTT.

Z2M publishes a device's whole state as one JSON object on
``zigbee2mqtt/<friendly name>``; a button press shows up as its ``action``
key. The same topic also carries battery and link-quality updates without an
action (or with ``"action": ""`` to reset it): those are not errors, they
parse to nothing. Older set-ups also publish the bare word on the
``<friendly name>/action`` sub-topic, which is why it is subscribed as well.

Which words order depends on the model: the ``model`` option names one of
:mod:`devices.z2m_models` (``E1743``, ``324131092621``, ``TS0044`` ...) and
``button`` picks one of its buttons (its first by default); ``actions`` gives
the words outright. Without either, today's generic words apply (``single``
orders, ``hold``/``long`` cancel). Zigbee2MQTT 1.x's legacy ``click`` key is
read when a message has no ``action``. Any other word is ignored, by name.

Z2M messages carry no event id, and some models publish every action twice,
so the gateway deduplicates these by its time window.

>>> hue = ProfileOptions(model="324131092621")
>>> parse("zigbee2mqtt/hall", b'{"action": "on_press"}', hue)
[DeviceAction(action='other', raw='on_press', event_id=None)]
>>> parse("zigbee2mqtt/hall", b'{"action": "on_press_release"}', hue)
[DeviceAction(action='press', raw='on_press_release', event_id=None)]
>>> parse("zigbee2mqtt/hall", b'{"click": "long"}', ProfileOptions())
[DeviceAction(action='hold', raw='long', event_id=None)]

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
from devices.actions import GENERIC_Z2M, LEGACY_CLICK, ActionMap
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
from devices.vitals import read_zigbee2mqtt
from devices.z2m_models import get_model

ACTION_SUBTOPIC = "action"


# The generic words, for a device whose model is not configured; any other word
# (double, triple, release, brightness_*, arrow_* ...) is "other".
ACTIONS: dict[str, CanonicalAction] = {
    word: GENERIC_Z2M.canonical(word) for word in (*GENERIC_Z2M.press, *GENERIC_Z2M.cancel)
}


def action_map(options: ProfileOptions) -> ActionMap:
    """The words this device's button uses: explicit ``actions``, its model's, or generic.

    Raises KeyError naming the valid models or buttons (the config check uses it too).
    """
    if options.actions is not None:
        return options.actions
    if options.model is None:
        if options.button is not None:
            raise KeyError("button: needs model: to know which words that button sends")
        return GENERIC_Z2M
    return get_model(options.model).button(options.button).actions


def _words(options: ProfileOptions) -> ActionMap:
    try:
        return action_map(options)
    except KeyError as exc:
        raise ParseError(str(exc.args[0])[:150]) from None


def _action(word: str, words: ActionMap) -> list[Parsed]:
    return [DeviceAction(action=words.canonical(word), raw=word)]


def parse(topic: str, payload: bytes, options: ProfileOptions) -> list[Parsed]:
    """The ``action`` of a state message (else its legacy ``click``), or the bare
    word on ``…/action``."""
    words = _words(options)
    if topic.endswith("/" + ACTION_SUBTOPIC) and not payload.lstrip().startswith(b"{"):
        word = decode_text(payload).strip()
        return _action(as_word(word, "action"), words) if word else []
    data = decode_object(payload)
    action = data.get("action")
    if action is None or action == "":
        # Z2M 1.x with ``legacy: true`` sent "click"; when "action" is present too
        # it is the same press, so "click" is read only without it.
        click = data.get("click") if "action" not in data else None
        if click is None or click == "":
            return []  # a battery/linkquality update, or Z2M clearing the action
        word = as_word(click, "'click'")
        # The legacy converters had their own words (long, long_release), whatever the model.
        return _action(word, words if options.actions is not None else LEGACY_CLICK)
    return _action(as_word(action, "'action'"), words)


def encode(
    meaning: Parsed | None, options: ProfileOptions, extra: Mapping[str, object]
) -> tuple[Message, ...]:
    """The state object with its ``action`` (and ``extra``: battery, linkquality),
    then the bare word on the legacy ``…/action`` sub-topic, as Z2M sends both.

    ``None`` is a plain state report: ``extra`` without an action.
    """
    if meaning is None:
        return (Message("", encode_object({}, extra, reserved=("action", "click"))),)
    if not isinstance(meaning, DeviceAction):
        raise EncodeError("zigbee2mqtt buttons send actions, not readings")
    refuse_event_id("zigbee2mqtt", meaning.event_id)
    word = sendable_word("zigbee2mqtt", meaning.raw)
    if word != word.strip() or word.startswith("{"):
        # The sub-topic carries the bare word, which the parser strips and sniffs.
        raise EncodeError(f"zigbee2mqtt action {word!r} would not read back the same")
    require_word("zigbee2mqtt", word, meaning.action, _encode_words(options).canonical(word))
    return (
        Message("", encode_object({"action": word}, extra)),
        Message(ACTION_SUBTOPIC, word.encode()),
    )


def _encode_words(options: ProfileOptions) -> ActionMap:
    try:
        return action_map(options)
    except KeyError as exc:
        raise EncodeError(str(exc.args[0])[:150]) from None


PROFILE = Profile(
    name="zigbee2mqtt",
    description="Zigbee buttons via Zigbee2MQTT: the 'action' of zigbee2mqtt/<name>.",
    kind="button",
    has_event_ids=False,
    parse=parse,
    encode=encode,
    vitals=read_zigbee2mqtt,
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
