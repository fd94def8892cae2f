"""``tasmota``: ESP8266/ESP32 buttons running Tasmota.

With ``SetOption73 1`` Tasmota stops toggling its relay and reports button
actions on ``stat/<topic>/RESULT`` (or ``tele/…``)::

    {"Button1": {"Action": "SINGLE"}}

The ``button_index`` option picks ``Button<N>``. Messages about other buttons
and other RESULT keys (``POWER``, ``Dimmer`` …) parse to nothing. Multi-press
words (``DOUBLE`` … ``PENTA``) and ``CLEAR`` (the release after a hold) are
ignored by name.

As a sensor, Tasmota reports on ``tele/<topic>/SENSOR`` every TelePeriod; the
``value`` option is the dotted path of the number (``HX711.Weight`` by default).
An HX711 load cell reports its ``Weight`` in kilograms and ``WeightRaw`` in raw
ADC counts (which need a scale and an offset in the config). A failed sensor
in the same message prints a bare ``nan``: it spoils only its own value.

>>> parse("tele/scale/SENSOR", b'{"HX711": {"Weight": 0.412}, "DS18B20": {"Temperature": nan}}',
...       ProfileOptions(value_path="HX711.Weight"))
[DeviceReading(value=0.412, event_id=None, unit='kg')]

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
    as_number,
    as_word,
    decode_object,
    decode_object_tolerant,
    encode_object,
    json_type,
    lookup,
    number_text,
    place,
    refuse_event_id,
    require_word,
    sendable_word,
)
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

# Tasmota always sends upper case; matching exactly keeps look-alikes (e.g.
# "ſingle", whose upper() is "SINGLE") from ever ordering. Every other word
# (DOUBLE, TRIPLE, QUAD, PENTA, CLEAR, INC_DEC ...) is "other".
ACTIONS: dict[str, CanonicalAction] = {"SINGLE": "press", "HOLD": "hold"}

# What a RESULT says when it is about the relay, not a button.
_RELAY_REPORT = {"POWER": "ON"}


DEFAULT_VALUE_PATH = "HX711.Weight"
# What Tasmota's sensor drivers report, by the last key of the path.
_UNITS_BY_KEY = {"Weight": "kg", "WeightRaw": "counts", "AbsRaw": "counts"}


def reading_unit(value_path: str | None) -> str | None:
    """The unit Tasmota reports at ``value_path`` (HX711 weights are kilograms).

    >>> reading_unit("HX711.Weight"), reading_unit("HX711.WeightRaw"), reading_unit("ANALOG.A0")
    ('kg', 'counts', None)
    """
    path = value_path or DEFAULT_VALUE_PATH
    if not path.startswith("HX711."):
        return None
    return _UNITS_BY_KEY.get(path.rsplit(".", 1)[-1])


def _reading(payload: bytes, options: ProfileOptions) -> list[Parsed]:
    path = options.value_path or DEFAULT_VALUE_PATH
    # Tasmota's SENSOR carries every sensor of the device; a failed one prints
    # ``nan``, which must not make this sensor's valid number unreadable.
    data = decode_object_tolerant(payload)
    value = as_number(lookup(data, path), repr(path))
    return [DeviceReading(value=value, unit=reading_unit(path))]


def parse(topic: str, payload: bytes, options: ProfileOptions) -> list[Parsed]:
    """The action of ``Button<button_index>``; nothing for any other key. With a
    value path (a sensor), the number at that path of a SENSOR message."""
    if options.value_path is not None:
        return _reading(payload, options)
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
        raise ParseError(f"{key!r} must be an object, got {json_type(button)}")
    if "Action" not in button:
        raise ParseError(f"missing '{key}.Action'")
    word = as_word(button["Action"], f"'{key}.Action'")
    return [DeviceAction(action=ACTIONS.get(word, "other"), raw=word)]


def encode(
    meaning: Parsed | None, options: ProfileOptions, extra: Mapping[str, object]
) -> tuple[Message, ...]:
    """``{"Button<N>": {"Action": word}}``; ``None`` is a relay report (``POWER``)."""
    key = f"Button{options.button_index}"
    if options.value_path is not None and not isinstance(meaning, DeviceReading):
        raise EncodeError("a tasmota sensor (with a value path) sends readings only")
    if meaning is None:
        return (Message("", encode_object(_RELAY_REPORT, extra, reserved=(key, "ACTION"))),)
    if isinstance(meaning, DeviceReading):
        return (_encode_reading(meaning, options, extra),)
    if not isinstance(meaning, DeviceAction):
        raise EncodeError("tasmota buttons send actions, not readings")
    refuse_event_id("tasmota", meaning.event_id)
    word = sendable_word("tasmota", meaning.raw)
    require_word("tasmota", word, meaning.action, ACTIONS.get(word, "other"))
    return (Message("", encode_object({key: {"Action": word}}, extra)),)


def _encode_reading(
    meaning: DeviceReading, options: ProfileOptions, extra: Mapping[str, object]
) -> Message:
    if options.value_path is None:
        raise EncodeError("a tasmota sensor needs its value path, e.g. HX711.Weight")
    refuse_event_id("tasmota SENSOR", meaning.event_id)
    if meaning.unit != reading_unit(options.value_path):
        raise EncodeError(
            f"tasmota reports {options.value_path} in {reading_unit(options.value_path)}"
        )
    number_text(meaning.value)  # refuses a non-finite value
    data: dict[str, object] = {"Time": "2024-05-01T08:00:00"}
    place(data, options.value_path, meaning.value)
    return Message("", encode_object(data, extra, reserved=(options.value_path.split(".")[0],)))


PROFILE = Profile(
    name="tasmota",
    description="Tasmota buttons with SetOption73: Button<N>.Action on stat/<topic>/RESULT.",
    kind="both",
    has_event_ids=False,
    parse=parse,
    encode=encode,
    words=ActionWords(press="SINGLE", hold="HOLD"),
    default_value_path=DEFAULT_VALUE_PATH,
    reading_unit=reading_unit,
    examples=(
        Example(
            topic="tele/pantry-scale/SENSOR",
            payload=b'{"Time":"2024-05-01T08:00:00","HX711":{"Weight":0.412,"WeightRaw":98123},'
            b'"DS18B20":{"Id":"01","Temperature":nan},"TempUnit":"C"}',
            options=ProfileOptions(value_path="HX711.Weight"),
            expected=(DeviceReading(0.412, unit="kg"),),
            note="HX711 in kg; a failed probe's nan spoils only its own value",
        ),
        Example(
            topic="tele/pantry-scale/SENSOR",
            payload=b'{"Time":"2024-05-01T08:00:00","HX711":{"Weight":0.412,"WeightRaw":98123}}',
            options=ProfileOptions(value_path="HX711.WeightRaw"),
            expected=(DeviceReading(98123.0, unit="counts"),),
            note="raw ADC counts: the config gives scale and offset",
        ),
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
