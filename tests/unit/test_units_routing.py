"""Units, device options and gateway-timed binary sensors, from the installer's YAML
through the router to the events the core decides on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from devices.units import UnitError, convert, parse_quantity
from gateway.config.load import ConfigError, load_config
from gateway.config.models import Config
from gateway.core.events import ButtonEvent, InvalidInput, SensorReading
from gateway.inputs.routing import Ignored, Router

BASE: dict[str, Any] = {
    "gateway": {"id": "gw"},
    "commerce": {"base_url": "http://127.0.0.1:1/api"},
    "products": {"flour": {"sku": "FLOUR"}},
}


def config(**sections: Any) -> Config:
    return Config.model_validate({**BASE, **sections})


def route(
    router: Router,
    topic: str,
    payload: bytes,
    mid: int = 1,
    *,
    retain: bool = False,
    now: float = 0.0,
) -> list[Any]:
    return router.events(topic, payload, mid=mid, retain=retain, dup=False, now=now)


def test_quantities_convert_within_a_kind_only() -> None:
    assert parse_quantity("0.25 kg").to("g") == 250.0
    assert parse_quantity("250g") == parse_quantity("250 grams")
    assert round(convert(8, "oz", "g"), 2) == 226.8
    with pytest.raises(UnitError, match="cannot convert g"):
        convert(1, "g", "ml")
    with pytest.raises(UnitError, match="not a number with a unit"):
        parse_quantity("lots")


def test_thresholds_with_units_are_held_in_the_sensor_unit() -> None:
    sensor = {"name": "s", "product": "flour", "mqtt": "t/s", "value": "w", "unit": "g"}
    cfg = config(sensors=[{**sensor, "reorder_below": "0.25 kg", "rearm_above": "1 lb"}])
    assert cfg.sensors[0].reorder_below == 250.0
    assert round(cfg.sensors[0].rearm_above, 1) == 453.6


def _errors(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "gw.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return [m.split(":", 1)[1] for m in info.value.messages]


HEAD = """\
gateway:
  id: home
commerce:
  base_url: https://shop.example/api/v1
  token: t0ken
products:
  flour:
    sku: FLOUR
"""


def test_check_refuses_units_that_do_not_convert_at_their_line(tmp_path: Path) -> None:
    text = HEAD + (
        "sensors:\n  - name: s\n    product: flour\n    mqtt: t/s\n    value: w\n"
        "    unit: g\n    reorder_below: 2 l\n    rearm_above: 800\n"
    )
    [message] = _errors(tmp_path, text)
    assert message.startswith("15:20: sensors[0].reorder_below: cannot convert l (a volume)")


def test_a_tasmota_scale_in_kg_needs_thresholds_with_units(tmp_path: Path) -> None:
    text = HEAD + (
        "sensors:\n  - name: s\n    product: flour\n    mqtt: tele/s/SENSOR\n"
        "    profile: tasmota\n    reorder_below: 250\n    rearm_above: 0.8 kg\n"
    )
    [message] = _errors(tmp_path, text)
    assert "reorder_below: has no unit, and this sensor reports kg" in message


def test_raw_counts_need_a_scale(tmp_path: Path) -> None:
    text = HEAD + (
        "sensors:\n  - name: s\n    product: flour\n    mqtt: tele/s/SENSOR\n"
        "    profile: tasmota\n    value: HX711.WeightRaw\n    reorder_below: 1\n"
        "    rearm_above: 2\n"
    )
    [message] = _errors(tmp_path, text)
    assert "sensors[0].scale: is required: this value is raw ADC counts" in message


def test_check_names_unknown_models_buttons_and_bad_maps(tmp_path: Path) -> None:
    text = HEAD + (
        "buttons:\n"
        "  - {name: a, product: flour, mqtt: z/a, profile: zigbee2mqtt, model: E1734}\n"
        "  - {name: b, product: flour, mqtt: z/b, profile: zigbee2mqtt, model: TS0044,"
        " button: '5'}\n"
        "  - {name: c, product: flour, mqtt: z/c, profile: zigbee2mqtt,"
        " actions: {press: [x], cancel: [x]}}\n"
        "  - {name: d, product: flour, mqtt: s/d, profile: tasmota, model: E1743}\n"
    )
    messages = _errors(tmp_path, text)
    assert len(messages) == 4, messages
    assert "unknown Zigbee2MQTT model 'E1734' — did you mean 'E1743'?" in messages[0]
    assert messages[0].startswith("10:")
    assert "TS0044 has no button '5'" in messages[1] and messages[1].startswith("11:")
    assert "'x' is both a press and a cancel word" in messages[2]
    assert "only applies to profile zigbee2mqtt, not 'tasmota'" in messages[3]


def test_model_and_button_reach_the_profile() -> None:
    cfg = config(
        buttons=[
            {"name": "hall", "product": "flour", "mqtt": "z/hall", "profile": "zigbee2mqtt"}
            | {"model": "TS0044", "button": "2"}
        ]
    )
    router = Router.from_config(cfg)
    [press] = route(router, "z/hall", b'{"action": "2_single"}')
    [other] = route(router, "z/hall", b'{"action": "1_single"}')
    assert isinstance(press, ButtonEvent) and press.action == "press"
    assert isinstance(other, Ignored) and "1_single" in other.detail


def test_an_explicit_action_map_reaches_the_profile() -> None:
    button = {"name": "e", "product": "flour", "mqtt": "n/event/e/state", "profile": "esphome"}
    cfg = config(buttons=[{**button, "actions": {"press": "kurz", "cancel": ["lang"]}}])
    router = Router.from_config(cfg)
    [press] = route(router, "n/event/e/state", b'{"event_type": "kurz"}')
    [cancel] = route(router, "n/event/e/state", b'{"event_type": "lang"}')
    assert (press.action, cancel.action) == ("press", "hold")


def test_a_shelly_component_reaches_the_profile() -> None:
    button = {"name": "v", "product": "flour", "mqtt": "sp/events/rpc", "profile": "shelly"}
    router = Router.from_config(config(buttons=[{**button, "component": "button:200"}]))
    payload = (
        b'{"method": "NotifyEvent", "params": {"events": '
        b'[{"component": "button:200", "id": 200, "event": "single_push"}]}}'
    )
    [press] = route(router, "sp/events/rpc", payload)
    assert isinstance(press, ButtonEvent) and press.action == "press"


def test_tasmota_kg_readings_become_grams_and_nan_elsewhere_is_tolerated() -> None:
    sensor = {"name": "s", "product": "flour", "mqtt": "tele/s/SENSOR", "profile": "tasmota"}
    cfg = config(sensors=[{**sensor, "unit": "g", "reorder_below": 250, "rearm_above": 800}])
    router = Router.from_config(cfg)
    payload = b'{"HX711": {"Weight": 0.412}, "DS18B20": {"Temperature": nan}}'
    [reading] = route(router, "tele/s/SENSOR", payload)
    assert isinstance(reading, SensorReading) and reading.value == pytest.approx(412.0)
    [bad] = route(router, "tele/s/SENSOR", b'{"HX711": {"Weight": nan}}')
    assert isinstance(bad, InvalidInput) and "not finite" in bad.reason


def test_raw_counts_go_through_scale_and_offset() -> None:
    sensor = {"name": "s", "product": "flour", "mqtt": "tele/s/SENSOR", "profile": "tasmota"}
    sensor |= {"value": "HX711.WeightRaw", "scale": 0.01, "offset": -20, "unit": "g"}
    cfg = config(sensors=[{**sensor, "reorder_below": "250 g", "rearm_above": "0.8 kg"}])
    [reading] = route(Router.from_config(cfg), "tele/s/SENSOR", b'{"HX711":{"WeightRaw":98123}}')
    assert reading.value == pytest.approx(961.23)


def test_gateway_timed_binary_sensor_short_is_press_long_is_cancel() -> None:
    topic = "n/binary_sensor/b/state"
    button = {"name": "b", "product": "flour", "mqtt": topic, "profile": "esphome"}
    cfg = config(buttons=[{**button, "gateway_timed": True, "hold_time": "2s"}])
    router = Router.from_config(cfg)
    [down] = route(router, topic, b"ON", mid=1, now=1000.0)
    assert isinstance(down, Ignored) and "decided when it is let go" in down.detail
    [short] = route(router, topic, b"OFF", mid=2, now=1000.3)
    assert isinstance(short, ButtonEvent) and short.action == "press"
    route(router, topic, b"ON", mid=3, now=1001.0)
    [long] = route(router, topic, b"OFF", mid=4, now=1003.5)
    assert isinstance(long, ButtonEvent) and long.action == "hold"
    [stray] = route(router, topic, b"OFF", mid=5, now=1004.0)
    assert isinstance(stray, Ignored)
    [retained] = route(router, topic, b"ON", mid=6, retain=True, now=1005.0)
    assert isinstance(retained, Ignored) and "retained" in retained.detail
