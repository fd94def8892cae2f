"""The quirks of each device family, and clear ParseErrors for bad input."""

from __future__ import annotations

import pytest

from devices import DeviceAction, DeviceReading, ParseError, ProfileOptions, _payload, get_profile

NO_OPTIONS = ProfileOptions()


def parse(profile: str, topic: str, payload: bytes, **options: object) -> list[object]:
    return list(get_profile(profile).parse(topic, payload, ProfileOptions(**options)))  # type: ignore[arg-type]


def reason(profile: str, topic: str, payload: bytes, **options: object) -> str:
    with pytest.raises(ParseError) as info:
        parse(profile, topic, payload, **options)
    return str(info.value)


# ------------------------------------------------------------------ reorder-button


def test_reorder_button_event_id_is_the_firmware_id() -> None:
    got = parse("reorder-button", "t", b'{"event": "press", "id": "x-1", "seq": 0}')
    assert got == [DeviceAction("press", "press", "x-1")]


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b"", "not JSON: Expecting value at char 0"),
        (b"\xff\xfe", "not UTF-8: invalid start byte at byte 0"),
        (b'{"event": "press", "seq": 1}', "missing 'id'"),
        (b'{"event": "press", "id": "", "seq": 1}', "'id' must be 1..128 printable characters"),
        (b'{"event": "press", "id": 7, "seq": 1}', "'id' must be a string, got a number"),
        (b'{"event": "press", "id": "a\\nb", "seq": 1}', "printable"),
        (b'{"event": "press", "id": "a", "seq": -1}', "'seq' must be an integer >= 0"),
        (b'{"event": "press", "id": "a", "seq": true}', "'seq' must be an integer >= 0"),
        (b'{"event": "press", "id": "a", "seq": 1.5}', "'seq' must be an integer >= 0"),
        (b'{"event": "press", "id": "a"}', "missing 'seq'"),
        (b'{"event": "double", "id": "a", "seq": 1}', "'event' must be 'press' or 'hold'"),
        (b'["press"]', "expected a JSON object, got a list"),
    ],
)
def test_reorder_button_rejects_with_a_short_reason(payload: bytes, expected: str) -> None:
    assert expected in reason("reorder-button", "t", payload)


def test_reorder_button_id_length_limit() -> None:
    ok = b'{"event": "press", "id": "%s", "seq": 1}' % (b"a" * 128)
    assert parse("reorder-button", "t", ok)[0] == DeviceAction("press", "press", "a" * 128)
    too_long = b'{"event": "press", "id": "%s", "seq": 1}' % (b"a" * 129)
    assert "1..128" in reason("reorder-button", "t", too_long)


# ------------------------------------------------------------------ zigbee2mqtt


@pytest.mark.parametrize(
    "payload",
    [b'{"battery": 90, "linkquality": 51}', b'{"action": ""}', b'{"action": null}', b"{}"],
)
def test_z2m_state_updates_without_an_action_are_not_errors(payload: bytes) -> None:
    assert parse("zigbee2mqtt", "zigbee2mqtt/hall", payload) == []


@pytest.mark.parametrize(
    ("payload", "action"),
    [(b"single", "press"), (b"hold", "hold"), (b"long", "hold"), (b"release", "other")],
)
def test_z2m_action_subtopic_carries_plain_text(payload: bytes, action: str) -> None:
    got = parse("zigbee2mqtt", "zigbee2mqtt/hall/action", payload)
    assert got == [DeviceAction(action, payload.decode())]  # type: ignore[arg-type]


def test_z2m_action_subtopic_empty_payload_is_nothing() -> None:
    assert parse("zigbee2mqtt", "zigbee2mqtt/hall/action", b"") == []


def test_z2m_device_named_action_still_gets_json() -> None:
    got = parse("zigbee2mqtt", "zigbee2mqtt/action", b'{"action": "single"}')
    assert got == [DeviceAction("press", "single")]


def test_z2m_only_single_is_a_press() -> None:
    for word in ("double", "triple", "on", "toggle", "brightness_move_up", "single_left"):
        payload = b'{"action": "%s"}' % word.encode()
        assert parse("zigbee2mqtt", "zigbee2mqtt/hall", payload) == [DeviceAction("other", word)]


def test_z2m_wrong_action_type_is_an_error() -> None:
    assert "'action' must be a string, got a number" in reason(
        "zigbee2mqtt", "zigbee2mqtt/hall", b'{"action": 1}'
    )


# ------------------------------------------------------------------ tasmota


def test_tasmota_other_button_and_other_keys_are_ignored() -> None:
    topic = "stat/pantry/RESULT"
    assert parse("tasmota", topic, b'{"Button2": {"Action": "SINGLE"}}') == []
    assert parse("tasmota", topic, b'{"POWER": "ON"}') == []
    got = parse("tasmota", topic, b'{"Button3": {"Action": "TRIPLE"}}', button_index=3)
    assert got == [DeviceAction("other", "TRIPLE")]


def test_tasmota_wrong_shapes_are_errors() -> None:
    topic = "stat/pantry/RESULT"
    assert "'Button1' must be an object" in reason("tasmota", topic, b'{"Button1": "SINGLE"}')
    assert "missing 'Button1.Action'" in reason("tasmota", topic, b'{"Button1": {}}')
    assert "must be a string" in reason("tasmota", topic, b'{"Button1": {"Action": 1}}')


# ------------------------------------------------------------------ shelly


def test_shelly_gen1_idle_event_is_nothing() -> None:
    topic = "shellies/sb/input_event/0"
    assert parse("shelly", topic, b'{"event": "", "event_cnt": 0}') == []


@pytest.mark.parametrize(("word", "action"), [("S", "press"), ("L", "hold"), ("SL", "other")])
def test_shelly_gen1_counter_becomes_the_event_id(word: str, action: str) -> None:
    payload = b'{"event": "%s", "event_cnt": 7}' % word.encode()
    got = parse("shelly", "shellies/sb/input_event/1", payload)
    assert got == [DeviceAction(action, word, "cnt-7")]  # type: ignore[arg-type]


def test_shelly_gen1_without_a_counter_is_an_error() -> None:
    assert "missing 'event_cnt'" in reason("shelly", "shellies/sb/input_event/0", b'{"event": "S"}')


def test_shelly_gen2_picks_the_configured_input_and_ignores_the_rest() -> None:
    payload = (
        b'{"method": "NotifyEvent", "params": {"events": ['
        b'{"component": "input:0", "event": "btn_down"},'
        b'{"component": "input:1", "event": "single_push"},'
        b'{"component": "input:0", "event": "single_push"},'
        b'{"component": "sys", "event": "scheduled_restart"}]}}'
    )
    first = parse("shelly", "plus/events/rpc", payload)
    assert first == [DeviceAction("other", "btn_down"), DeviceAction("press", "single_push")]
    second = parse("shelly", "plus/events/rpc", payload, button_index=2)
    assert second == [DeviceAction("press", "single_push")]


def test_shelly_gen2_caps_the_number_of_events() -> None:
    one = b'{"component": "input:0", "event": "single_push"}'
    payload = b'{"method": "NotifyEvent", "params": {"events": [%s]}}' % b",".join([one] * 17)
    assert "more than 16" in reason("shelly", "plus/events/rpc", payload)


def test_shelly_unknown_shape_is_an_error() -> None:
    assert "neither a Gen1" in reason("shelly", "shellies/sb/input_event/0", b'{"x": 1}')


# ------------------------------------------------------------------ esphome


def test_esphome_kinds_of_state() -> None:
    topic = "node/x/y/state"
    assert parse("esphome", topic, b"ON") == [DeviceAction("press", "ON")]
    assert parse("esphome", topic, b" 12 \n") == [DeviceReading(12.0)]
    assert parse("esphome", topic, b'{"event_type": "double"}') == [DeviceAction("other", "double")]


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b"nan", "no valid reading"),
        (b"on", "expected ON, OFF, a number or an event object"),
        (b"1e999", "not finite"),
        (b'{"state": "ON"}', "missing 'event_type'"),
    ],
)
def test_esphome_bad_states(payload: bytes, expected: str) -> None:
    assert expected in reason("esphome", "node/x/y/state", payload)


# ------------------------------------------------------------------ json


def test_json_needs_a_path() -> None:
    assert reason("json", "t", b"{}") == "json profile needs a value or action path"


def test_json_list_indices_and_numeric_strings() -> None:
    payload = b'{"a": {"b": [{"c": " 12.5 "}, {"c": 3}]}, "id": 44}'
    got = parse("json", "t", payload, value_path="a.b.1.c", event_id_path="id")
    assert got == [DeviceReading(3.0, "44")]
    assert parse("json", "t", payload, value_path="a.b.0.c") == [DeviceReading(12.5)]
    assert parse("json", "t", b"[5, 6]", value_path="1") == [DeviceReading(6.0)]


def test_json_object_keys_that_look_like_indices() -> None:
    assert parse("json", "t", b'{"0": {"v": 1}}', value_path="0.v") == [DeviceReading(1.0)]


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b'{"v": true}', "'v' must be a number, got a boolean"),
        (b'{"v": "NaN"}', "'v' is not a number"),
        (b'{"v": "inf"}', "'v' is not a number"),
        (b'{"v": "1_000"}', "'v' is not a number"),
        (b'{"v": NaN}', "not JSON we accept: NaN is not allowed"),
        (b'{"v": 1e400}', "'v' is not finite"),
        (b'{"v": [1]}', "'v' must be a number, got a list"),
        (b'{"w": 1}', "missing 'v'"),
        (b'{"v": %s}' % (b"9" * 400), "'v' is too large"),
        (b'{"v": %s}' % (b"9" * 5000), "not JSON we accept"),
    ],
)
def test_json_value_rejections(payload: bytes, expected: str) -> None:
    assert expected in reason("json", "t", payload, value_path="v")


def test_json_list_index_out_of_range() -> None:
    assert "list has 2 items" in reason("json", "t", b'{"a": [1, 2]}', value_path="a.2")


def test_json_bad_path_is_reported() -> None:
    assert "bad path 'a..b'" in reason("json", "t", b"{}", value_path="a..b")


def test_json_action_words() -> None:
    for word, action in [("ON", "press"), ("click", "press"), ("Long", "hold"), ("x", "other")]:
        got = parse("json", "t", b'{"a": "%s"}' % word.encode(), action_path="a")
        assert got == [DeviceAction(action, word)]  # type: ignore[arg-type]


def test_json_event_id_must_be_usable() -> None:
    assert "'id' must be a string, got a number" in reason(
        "json", "t", b'{"a": "press", "id": 1.5}', action_path="a", event_id_path="id"
    )


# ------------------------------------------------------------------ big and deep input


@pytest.mark.parametrize("name", ["reorder-button", "zigbee2mqtt", "tasmota", "shelly", "esphome"])
def test_deep_nesting_and_huge_payloads_are_parse_errors(name: str) -> None:
    deep = b'{"a":' * 10_000 + b"1" + b"}" * 10_000
    assert "nested deeper than 32 levels" in reason(name, "x", deep)
    assert "payload too large" in reason(name, "x", b" " * (_payload.MAX_PAYLOAD_BYTES + 1))


def test_error_messages_do_not_echo_long_input() -> None:
    message = reason("reorder-button", "t", b'{"event": "%s"}' % (b"p" * 10_000))
    assert len(message) < 120


def test_json_nested_deeper_than_devices_do_is_refused_on_every_thread() -> None:
    # Left to Python's recursion limit, a 900-deep payload parsed on a thread with a
    # shallow stack (the gateway's core thread) and not in a deeper one, so a
    # virtual press topic ordered from what the fuzz oracle called unreadable.
    import threading

    from devices._payload import MAX_JSON_DEPTH, decode_json

    deep = b'{"a":' * 900 + b"1" + b"}" * 900
    outcomes: list[str] = []

    def attempt() -> None:
        try:
            decode_json(deep)
            outcomes.append("parsed")
        except ParseError as exc:
            outcomes.append(str(exc))

    attempt()
    thread = threading.Thread(target=attempt)
    thread.start()
    thread.join()
    assert outcomes == [f"not JSON we accept: nested deeper than {MAX_JSON_DEPTH} levels"] * 2
    edge = b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH
    assert decode_json(edge) is not None
    assert decode_json(b'{"s": "' + b"[" * 100 + b'"}') == {"s": "[" * 100}  # inside a string
