"""``encode`` never lies: what it gives parses back to the meaning it was given.

Generated meanings (any action, any word, any id, any reading, extra keys) go
through every family's ``encode``. Each one either is refused with
:class:`EncodeError` or every message it yields parses back to exactly that
meaning. The families' own words and finite readings are never refused.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices import (
    DeviceAction,
    DeviceReading,
    EncodeError,
    Parsed,
    Profile,
    ProfileOptions,
    get_profile,
    profile_names,
)

# One configured topic per family, as a gateway config would name it.
TOPICS = {
    "reorder-button": "home/reorder/laundry",
    "zigbee2mqtt": "zigbee2mqtt/laundry",
    "tasmota": "stat/pantry/RESULT",
    "shelly": "shellies/shellybutton1-A1B2C3/input_event/0",
    "esphome": "kitchen-node/sensor/flour/state",
    "json": "home/kitchen/scale",
}

_OPTIONS = st.one_of(
    st.just(ProfileOptions()),
    st.builds(ProfileOptions, button_index=st.integers(1, 4)),
    st.just(ProfileOptions(action_path="action")),
    st.just(ProfileOptions(action_path="data.0.word", event_id_path="msg_id")),
    st.just(ProfileOptions(value_path="weight.grams", event_id_path="msg_id")),
    st.just(ProfileOptions(value_path="sensors.1.value", action_path="sensors.0.action")),
)
_WORDS = st.one_of(
    st.sampled_from(
        [
            *("press", "hold", "single", "long", "SINGLE", "HOLD", "S", "L", "SS"),
            *("single_push", "long_push", "double", "ON", "OFF", "click", "on", ""),
            *(" single", "{x}", "nan"),
        ]
    ),
    st.text(max_size=70),
)
_IDS = st.one_of(
    st.none(), st.sampled_from(["cnt-7", "b1-42", "981", "cnt-x"]), st.text(max_size=130)
)
_ACTIONS = st.builds(
    DeviceAction, action=st.sampled_from(["press", "hold", "other"]), raw=_WORDS, event_id=_IDS
)
_READINGS = st.builds(DeviceReading, value=st.floats(), event_id=_IDS)
_MEANINGS: st.SearchStrategy[Parsed | None] = st.one_of(st.none(), _ACTIONS, _READINGS)
_EXTRA = st.dictionaries(
    st.sampled_from(["battery", "linkquality", "seq", "action", "event", "method", "Button1"]),
    st.one_of(st.integers(-5, 300), st.text(max_size=5), st.none()),
    max_size=3,
)


def _says(profile: Profile, meaning: Parsed | None, options: ProfileOptions) -> None:
    """Encode; each message must parse back to the meaning."""
    expected = [] if meaning is None else [meaning]
    for message in profile.encode(meaning, options, {}):
        got = profile.parse(message.topic(TOPICS[profile.name]), message.payload, options)
        assert got == expected, (message, got)


def test_every_family_has_a_topic_here() -> None:
    assert set(TOPICS) == set(profile_names())


def _plausible(profile: Profile) -> st.SearchStrategy[Parsed | None]:
    """Meanings in the family's own words and id shapes, so that many are accepted."""
    ids = st.one_of(st.none(), st.sampled_from(["b1-42", "cnt-7", "981"]), st.text(max_size=8))
    readings = st.builds(DeviceReading, value=st.floats(allow_nan=False), event_id=ids)
    if profile.words is None:
        return readings
    actions = st.builds(profile.action, st.sampled_from(["press", "hold"]), ids)
    return st.one_of(actions, readings)


@pytest.mark.parametrize("name", profile_names())
@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_encode_refuses_or_round_trips(name: str, data: st.DataObject) -> None:
    profile = get_profile(name)
    meaning = data.draw(st.one_of(_MEANINGS, _plausible(profile)), "meaning")
    options = data.draw(_OPTIONS, "options")
    extra = data.draw(st.one_of(st.just({}), _EXTRA), "extra")
    try:
        messages = profile.encode(meaning, options, extra)
    except EncodeError:
        return
    assert messages
    expected = [] if meaning is None else [meaning]
    for message in messages:
        assert message.subtopic in ("", *profile.subtopics)
        got = profile.parse(message.topic(TOPICS[name]), message.payload, options)
        assert got == expected, (message, got)


@pytest.mark.parametrize("name", [n for n in profile_names() if get_profile(n).words])
@pytest.mark.parametrize("action", ["press", "hold"])
def test_the_family_words_are_never_refused(name: str, action: str) -> None:
    profile = get_profile(name)
    event_id = {"reorder-button": "b1-1", "shelly": "cnt-1"}.get(name)
    options = ProfileOptions(action_path="action") if name == "json" else ProfileOptions()
    _says(profile, profile.action("press" if action == "press" else "hold", event_id), options)


@settings(max_examples=300, deadline=None)
@given(value=st.floats(allow_nan=False, allow_infinity=False))
def test_finite_readings_are_never_refused_and_come_back_exactly(value: float) -> None:
    _says(get_profile("esphome"), DeviceReading(value), ProfileOptions())
    _says(get_profile("json"), DeviceReading(value), ProfileOptions(value_path="a.2.b"))
    scale = ProfileOptions(value_path="weight.grams", event_id_path="msg_id")
    _says(get_profile("json"), DeviceReading(value, "s-1"), scale)


# Short names keep the table below one case a line.
A, R, Opt = DeviceAction, DeviceReading, ProfileOptions


@pytest.mark.parametrize(
    ("name", "meaning", "options", "extra", "reason"),
    [
        ("reorder-button", R(3.0), Opt(), {}, "only press and hold"),
        ("reorder-button", A("press", "press"), Opt(), {}, "carry an id"),
        ("reorder-button", A("press", "press", "x"), Opt(), {"seq": -1}, "'seq' must be"),
        ("reorder-button", A("press", "single", "x"), Opt(), {}, "not 'single'"),
        ("zigbee2mqtt", A("press", "double"), Opt(), {}, "means 'other'"),
        ("zigbee2mqtt", A("press", " single"), Opt(), {}, "would not read back"),
        ("zigbee2mqtt", None, Opt(), {"action": "single"}, "change what"),
        ("tasmota", A("press", "SINGLE", "7"), Opt(), {}, "no event id"),
        ("tasmota", None, Opt(button_index=2), {"Button2": 1}, "change what"),
        ("shelly", A("press", "S"), Opt(), {}, "Gen1 word"),
        ("shelly", A("press", "S", "abc"), Opt(), {}, "cnt-<event_cnt>"),
        ("shelly", A("press", "S", "cnt-1"), Opt(), {"method": "x"}, "change what"),
        ("shelly", R(1.0), Opt(), {}, "not readings"),
        ("esphome", None, Opt(), {}, "no empty message"),
        ("esphome", R(float("nan")), Opt(), {}, "finite"),
        ("esphome", R(1.0), Opt(), {"battery": 3}, "no room"),
        ("json", A("press", "click"), Opt(value_path="v", action_path="a"), {}, "needs a number"),
        ("json", R(1.0), Opt(action_path="a"), {}, "no value_path"),
        ("json", R(1.0, "i"), Opt(value_path="v"), {}, "no event_id_path"),
        ("json", R(1.0), Opt(value_path="v", event_id_path="i"), {}, "sends an event id"),
        ("json", R(1.0), Opt(value_path="a", action_path="a.b"), {}, "already placed"),
        ("json", R(1.0), Opt(value_path="v"), {"v": 2}, "change what"),
        ("json", R(1.0), Opt(value_path="v.5000"), {}, "too large"),
        ("json", R(1.0), Opt(value_path="v..w"), {}, "bad path"),
        ("json", R(1.0), Opt(value_path="v"), {"x": object()}, "as JSON"),
    ],
)
def test_what_a_family_cannot_say_is_refused_with_the_reason(
    name: str,
    meaning: Parsed | None,
    options: ProfileOptions,
    extra: dict[str, object],
    reason: str,
) -> None:
    with pytest.raises(EncodeError, match=re.escape(reason)):
        get_profile(name).encode(meaning, options, extra)


def test_a_sensor_family_has_no_press_word() -> None:
    sensor = Profile(
        name="scale-only",
        description="a sensor",
        kind="sensor",
        has_event_ids=False,
        parse=get_profile("json").parse,
        encode=get_profile("json").encode,
        examples=(),
    )
    with pytest.raises(EncodeError, match="scale-only devices send no press"):
        sensor.action("press")
