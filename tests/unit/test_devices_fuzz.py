"""Generated payloads against every device profile.

Two properties, for random bytes, random JSON, unicode, huge numbers and
objects shaped like each family's messages but with wrong or junk values:

1. ``parse`` raises nothing but :class:`ParseError`, and what it returns is
   well-formed (canonical actions, finite readings, short printable ids);
2. a ``press`` only comes out of a payload that *is* a valid press of that
   family, judged by an oracle written here independently of the parsers.

About 10,000 inputs in total (6 profiles x 1,700).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import TypeVar

import pytest
from hypothesis import HealthCheck, Phase, find, given, settings
from hypothesis import strategies as st

from devices import (
    DeviceAction,
    DeviceReading,
    ParseError,
    ProfileOptions,
    get_profile,
    profile_names,
)

Case = tuple[str, bytes, ProfileOptions]
T = TypeVar("T")
EXAMPLES_PER_PROFILE = 1700

# ------------------------------------------------------------------ generic junk

_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=0, max_value=420).map(lambda n: -(10**n) if n % 2 else 10**n - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
_json = st.recursive(
    _leaf,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=6,
)


def _dump(value: object) -> bytes:
    # json.dumps writes NaN/Infinity for such floats: the parsers must refuse them.
    return json.dumps(value).encode()


_junk_payloads = st.one_of(
    st.binary(max_size=200),
    st.text(max_size=100).map(lambda text: text.encode("utf-8", "surrogatepass")),
    _json.map(_dump),
    st.floats().map(lambda f: _dump({"v": f, "a": f})),
    st.integers(min_value=300, max_value=6000).map(lambda n: b'{"v": %s}' % (b"9" * n)),
    st.integers(min_value=1, max_value=3000).map(lambda n: b"[" * n + b"]" * n),
)


def _weighted(*choices: tuple[int, st.SearchStrategy[T]]) -> st.SearchStrategy[T]:
    """Pick a strategy by weight (``one_of`` weighs branches equally, even repeated ones)."""
    pool = [strategy for weight, strategy in choices for _ in range(weight)]
    return st.sampled_from(pool).flatmap(lambda strategy: strategy)


def _field(
    valid: st.SearchStrategy[object], near: st.SearchStrategy[object]
) -> st.SearchStrategy[object]:
    """A field's value: mostly valid (so messages get deep), else a near miss or junk."""
    return _weighted((3, valid), (1, near), (1, _json))


def _words(*family: str) -> st.SearchStrategy[object]:
    near = [variant for w in family for variant in (w.upper(), w.capitalize(), w + " ")]
    return _field(st.sampled_from(family), st.sampled_from([*near, "", "ſingle"]))


def _dicts(fields: dict[str, st.SearchStrategy[object]]) -> st.SearchStrategy[dict[str, object]]:
    """Objects with ``fields``, sometimes one of them left out, plus junk keys."""
    keys: list[str | None] = [*[None] * 6, *fields]
    return st.tuples(
        st.fixed_dictionaries(fields),
        st.sampled_from(keys),
        st.dictionaries(st.text(max_size=6), _leaf, max_size=2),
    ).map(lambda t: {k: v for k, v in {**t[2], **t[0]}.items() if k != t[1]})


def _cases(
    topics: list[str], shaped: st.SearchStrategy[bytes], options: list[ProfileOptions]
) -> st.SearchStrategy[Case]:
    return st.tuples(
        st.sampled_from(topics) | st.text(max_size=30),
        _weighted((1, _junk_payloads), (3, shaped)),  # shaped ones reach deepest
        st.sampled_from(options),
    )


_ids = _field(
    st.from_regex(r"[A-Za-z0-9._:-]{1,24}", fullmatch=True),
    st.text(max_size=130) | st.sampled_from(["", "a" * 128, "a" * 129, "x\n", 7, -1, True]),
)
_counts = _field(
    st.integers(min_value=0, max_value=10**6),
    st.sampled_from([-1, 10**12, 10**13, True, 1.5, "12", None]),
)
_index_options = [ProfileOptions(button_index=i) for i in (1, 2, 3)]

_button = _dicts({"event": _words("press", "hold"), "id": _ids, "seq": _counts})
_z2m_words = ("single", "double", "hold", "long", "release", "on_press", "on_press_release")
_z2m = _dicts({"action": _words(*_z2m_words, "2_single", "1_single")}) | _dicts(
    {"click": _words("single", "long", "long_release")}
)
_tasmota = st.dictionaries(
    st.sampled_from(["Button1", "Button2", "Button3", "POWER", "button1"]),
    _field(_dicts({"Action": _words("SINGLE", "DOUBLE", "HOLD", "CLEAR")}), st.just("SINGLE")),
    max_size=3,
)
_shelly_event = _dicts(
    {
        "component": _field(
            st.sampled_from(["input:0", "input:1", "input:2"]), st.sampled_from(["switch:0", "sys"])
        ),
        "event": _words("single_push", "long_push", "double_push", "btn_down"),
    }
)
_shelly = st.one_of(
    _dicts({"event": _words("S", "L", "SS", "LS", ""), "event_cnt": _counts}),
    _dicts(
        {
            "method": _words("NotifyEvent", "NotifyStatus"),
            "params": _field(
                _dicts({"events": _field(st.lists(_shelly_event, max_size=4), st.just([{}] * 17))}),
                st.just([]),
            ),
        }
    ),
)
_esphome = st.one_of(
    st.sampled_from(["ON", "OFF", "on", " ON\n", "nan", "-0", "1e309", "12.5", "0x10"]).map(
        str.encode
    ),
    st.floats().map(lambda f: repr(f).encode()),
    _dicts({"event_type": _words("single", "long", "click", "double", "on")}).map(_dump),
)
_json_shape = _dicts(
    {
        "a": _words("press", "single", "click", "on", "hold", "long")
        | _dicts({"b": st.lists(_words("press", "click", "hold"), max_size=3)}),
        "v": _field(
            st.floats(allow_nan=False) | st.lists(_dicts({"w": _json | st.text(max_size=8)})),
            st.sampled_from(["12.5", " 3 ", "1e999", "nan", True, None]),
        ),
        "id": _ids,
    }
)
# Hypothesis favours the first entry of sampled_from; the always-failing one goes last.
_json_options = [
    ProfileOptions(action_path="a"),
    ProfileOptions(action_path="a.b.0", event_id_path="id"),
    ProfileOptions(value_path="v"),
    ProfileOptions(value_path="v.1.w", event_id_path="id"),
    ProfileOptions(action_path="a", value_path="v"),
    ProfileOptions(),
]

CASES: dict[str, st.SearchStrategy[Case]] = {
    "reorder-button": _cases(["home/reorder/b1"], _button.map(_dump), [ProfileOptions()]),
    "zigbee2mqtt": _cases(
        ["zigbee2mqtt/hall", "zigbee2mqtt/hall/action"],
        _z2m.map(_dump)
        | _words("single", "hold", "on_press_release").map(lambda w: str(w).encode()),
        [
            ProfileOptions(),
            ProfileOptions(model="324131092621"),
            ProfileOptions(model="TS0044", button="2"),
        ],
    ),
    "tasmota": _cases(["stat/pantry/RESULT"], _tasmota.map(_dump), _index_options),
    "shelly": _cases(
        ["shellies/sb/input_event/0", "plus/events/rpc"], _shelly.map(_dump), _index_options
    ),
    "esphome": _cases(
        ["node/binary_sensor/b/state", "node/sensor/s/state"], _esphome, [ProfileOptions()]
    ),
    "json": _cases(["home/x"], _json_shape.map(_dump), _json_options),
}

# ------------------------------------------------------------------ the oracle

_MISSING = object()
_PRESS_WORDS = {"press", "single", "click", "on"}


# Devices never nest their JSON deeper than this; the gateway refuses deeper payloads.
MAX_DEPTH = 32


def depth(value: object) -> int:
    """How many objects and lists deep ``value`` goes (walked without recursion)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, level + 1) for child in children)
    return deepest


def _loads(payload: bytes) -> object:
    try:
        loaded = json.loads(payload.decode("utf-8"))
    except (ValueError, RecursionError):
        return _MISSING
    return _MISSING if depth(loaded) > MAX_DEPTH else loaded


def _nonneg_int(value: object, below: int) -> bool:
    return type(value) is int and 0 <= value < below


def _generic_press(word: object) -> bool:
    return isinstance(word, str) and word.isascii() and word.lower() in _PRESS_WORDS


def _walk(data: object, path: str) -> object:
    for part in path.split("."):
        if isinstance(data, dict):
            data = data.get(part, _MISSING)
        elif isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        else:
            return _MISSING
    return data


def _button_press(topic: str, payload: bytes, options: ProfileOptions) -> bool:
    data = _loads(payload)
    if not isinstance(data, dict) or data.get("event") != "press":
        return False
    ident = data.get("id")
    ok_id = isinstance(ident, str) and 1 <= len(ident) <= 128 and ident.isprintable()
    return ok_id and _nonneg_int(data.get("seq"), 10**5000)


# The press words of the model options fuzzed below, written out by hand.
_Z2M_PRESS_WORDS = {
    (None, None): {"single"},
    ("324131092621", None): {"on_press_release"},
    ("TS0044", "2"): {"2_single"},
}


def _z2m_press(topic: str, payload: bytes, options: ProfileOptions) -> bool:
    words = _Z2M_PRESS_WORDS[(options.model, options.button)]
    if topic.endswith("/action") and not payload.lstrip().startswith(b"{"):
        return payload.strip().decode("utf-8", "replace") in words
    data = _loads(payload)
    if not isinstance(data, dict):
        return False
    if "action" not in data or data["action"] is None or data["action"] == "":
        # Zigbee2MQTT 1.x legacy "click", only read without an "action" key.
        return "action" not in data and data.get("click") == "single"
    return isinstance(data["action"], str) and data["action"] in words


def _tasmota_press(topic: str, payload: bytes, options: ProfileOptions) -> bool:
    data = _loads(payload)
    if isinstance(data, dict) and "ACTION" in data and topic.rsplit("/", 1)[-1][:6] == "BUTTON":
        return data["ACTION"] == "SINGLE"  # before Tasmota 9.0
    return _walk(data, f"Button{options.button_index}.Action") == "SINGLE"


def _shelly_press(topic: str, payload: bytes, options: ProfileOptions) -> bool:
    data = _loads(payload)
    if not isinstance(data, dict):
        return False
    if "method" not in data:
        return data.get("event") == "S" and _nonneg_int(data.get("event_cnt"), 10**12)
    events = _walk(data, "params.events")
    component = options.component or f"input:{options.button_index - 1}"
    wanted = {"component": component, "event": "single_push"}
    return (
        data["method"] == "NotifyEvent"
        and isinstance(events, list)
        and any(isinstance(e, dict) and wanted.items() <= e.items() for e in events)
    )


def _esphome_press(topic: str, payload: bytes, options: ProfileOptions) -> bool:
    if payload.strip() == b"ON":
        return True
    data = _loads(payload)
    if not isinstance(data, dict):
        return False
    word = data.get("event_type")
    if options.actions is not None:
        return word in options.actions.press
    return _generic_press(word)


def _json_press(topic: str, payload: bytes, options: ProfileOptions) -> bool:
    if options.action_path is None:
        return False
    return _generic_press(_walk(_loads(payload), options.action_path))


IS_VALID_PRESS: dict[str, Callable[[str, bytes, ProfileOptions], bool]] = {
    "reorder-button": _button_press,
    "zigbee2mqtt": _z2m_press,
    "tasmota": _tasmota_press,
    "shelly": _shelly_press,
    "esphome": _esphome_press,
    "json": _json_press,
}

# ------------------------------------------------------------------ the tests


def test_every_profile_is_fuzzed() -> None:
    assert set(CASES) == set(profile_names()) == set(IS_VALID_PRESS)


@pytest.mark.parametrize("name", profile_names())
def test_oracle_agrees_with_the_documented_examples(name: str) -> None:
    for example in get_profile(name).examples:
        documented = any(
            isinstance(item, DeviceAction) and item.action == "press" for item in example.expected
        )
        assert IS_VALID_PRESS[name](example.topic, example.payload, example.options) == documented


def _presses(name: str, case: Case) -> bool:
    try:
        parsed = get_profile(name).parse(*case)
    except ParseError:
        return False
    return any(isinstance(item, DeviceAction) and item.action == "press" for item in parsed)


@pytest.mark.parametrize("name", profile_names())
def test_shaped_payloads_do_reach_presses(name: str) -> None:
    # Guards the property below against strategies that never get past the first check.
    found = find(
        CASES[name],
        lambda case: _presses(name, case),
        settings=settings(
            max_examples=400,  # presses are >5% of these cases: a miss means a broken strategy
            database=None,
            phases=[Phase.generate],  # any press will do: no need to shrink it
            suppress_health_check=list(HealthCheck),
        ),
    )
    assert IS_VALID_PRESS[name](*found)


@pytest.mark.parametrize("name", profile_names())
@settings(
    max_examples=EXAMPLES_PER_PROFILE,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_parse_only_raises_parse_error_and_presses_only_when_valid(
    name: str, data: st.DataObject
) -> None:
    topic, payload, options = data.draw(CASES[name], label="case")
    try:
        parsed = get_profile(name).parse(topic, payload, options)
    except ParseError as exc:
        assert str(exc) and len(str(exc)) < 200
        return
    assert isinstance(parsed, list)
    for item in parsed:
        if isinstance(item, DeviceAction):
            assert item.action in ("press", "hold", "other")
            assert 1 <= len(item.raw) <= 64 and item.raw.isprintable()
            if item.action == "press":
                assert IS_VALID_PRESS[name](topic, payload, options), (topic, payload, options)
        else:
            assert isinstance(item, DeviceReading)
            assert math.isfinite(item.value)
        if item.event_id is not None:
            assert 1 <= len(item.event_id) <= 128 and item.event_id.isprintable()
