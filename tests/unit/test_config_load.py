"""Loading a good config: positions, values, defaults, substitution, summary, ``check``."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from pydantic import ValidationError

from gateway.config.load import (
    LoadedConfig,
    check_command,
    format_duration,
    format_path,
    load_config,
    summarize,
)
from gateway.config.models import Config, check_shop_url, is_loopback_host
from gateway.config.positions import YamlSyntaxError, parse_yaml
from gateway.config.summary import inventory

GOOD = """\
gateway:
  id: kitchen
  state_dir: ${STATE:-/var/lib/rg}
mqtt:
  url: mqtts://broker.lan:8883
  username: gw-user-7c1
commerce:
  base_url: https://shop.example/api/v1
  token: ${SHOP_TOKEN}
products:
  coffee: &product
    sku: LAVAZZA-1KG
    quantity: 2
    one_open_order: false
    cooldown: 1h
  detergent:
    <<: *product
    sku: TIDE-PODS-42
    one_open_order: true
    max_per_day: 3
buttons:
  - name: laundry
    gpio: 17
    led: 27
    product: detergent
  - name: pantry
    mqtt: zigbee2mqtt/pantry_button
    profile: zigbee2mqtt
    product: coffee
sensors:
  - name: coffee-scale
    mqtt: kitchen/scale
    value: weight.grams
    unit: g
    product: coffee
    reorder_below: 250
    rearm_above: 800.5
    settle: 90s
"""


def _good(tmp_path: Path, text: str = GOOD) -> Path:
    path = tmp_path / "gw.yaml"
    path.write_text(text)
    path.chmod(0o600)
    return path


def _load(tmp_path: Path, **env: str) -> LoadedConfig:
    return load_config(_good(tmp_path), env={"SHOP_TOKEN": "t", **env})


def test_positions_of_keys_and_values_are_one_based() -> None:
    doc = parse_yaml(GOOD)
    assert doc.key_at(("gateway", "id")) == (2, 3)
    assert doc.value_at(("gateway", "id")) == (2, 7)
    assert doc.key_at(("buttons", 1)) == (26, 5)
    assert doc.value_at(("buttons", 1, "profile")) == (28, 14)
    # A path that was never written falls back to its nearest written ancestor.
    assert doc.value_at(("buttons", 1, "led")) == (26, 5)
    assert doc.key_at(()) == (1, 1)


def test_merge_keys_fill_in_and_written_keys_win() -> None:
    doc = parse_yaml("base: &b\n  a: 1\n  b: 2\nuse:\n  <<: *b\n  b: 3\n")
    assert doc.data["use"] == {"a": 1, "b": 3}
    assert doc.key_at(("use", "b")) == (6, 3)
    assert doc.problems == []


def test_duplicate_keys_are_problems_not_silently_dropped() -> None:
    doc = parse_yaml("a: 1\nb: 2\na: 3\n")
    assert doc.data == {"a": 3, "b": 2}
    assert [(p.line, p.col, p.path) for p in doc.problems] == [(3, 1, ("a",))]


def test_an_alias_cycle_is_a_problem_not_a_recursion() -> None:
    doc = parse_yaml("a: &a\n  b: *a\n")
    assert doc.data == {"a": {"b": None}}
    assert [p.path for p in doc.problems] == [("a", "b")]


def test_an_alias_bomb_is_refused() -> None:
    levels = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for index in range(1, 7):
        prev, name = chr(96 + index), chr(97 + index)
        levels.append(f"{name}: &{name} [{', '.join(['*' + prev] * 10)}]")
    with pytest.raises(YamlSyntaxError, match="more than 100000 values"):
        parse_yaml("\n".join(levels) + "\n")


def test_tags_are_refused_with_a_hint() -> None:
    with pytest.raises(YamlSyntaxError, match="!secret or !include are not supported"):
        parse_yaml("token: !secret shop_token\n")


def test_syntax_errors_carry_a_position() -> None:
    with pytest.raises(YamlSyntaxError) as raised:
        parse_yaml("a:\n  - [1, 2\n")
    assert (raised.value.problem.line, raised.value.problem.col) == (3, 1)
    assert "YAML syntax error" in raised.value.problem.text


def test_values_defaults_and_durations(tmp_path: Path) -> None:
    config = _load(tmp_path).config
    assert config.gateway.state_dir == "/var/lib/rg"
    coffee, detergent = config.products["coffee"], config.products["detergent"]
    assert (coffee.quantity, coffee.one_open_order, coffee.cooldown) == (2, False, 3600.0)
    # detergent inherits quantity and cooldown from coffee through "<<: *product".
    assert (detergent.quantity, detergent.max_per_day, detergent.cooldown) == (2, 3, 3600.0)
    assert detergent.one_open_order is True
    laundry, pantry = config.buttons
    assert (laundry.gpio, laundry.led, laundry.bounce_time, laundry.mqtt) == (17, 27, 0.05, None)
    assert (pantry.mqtt, pantry.profile, pantry.gpio) == (
        "zigbee2mqtt/pantry_button",
        "zigbee2mqtt",
        None,
    )
    (scale,) = config.sensors
    assert (scale.profile, scale.reorder_below, scale.rearm_above, scale.settle) == (
        "json",
        250.0,
        800.5,
        90.0,
    )
    assert config.limits.max_orders_per_day == 10
    assert config.mqtt.keepalive == 30.0


def test_environment_overrides_a_default(tmp_path: Path) -> None:
    assert _load(tmp_path, STATE="/srv/rg").config.gateway.state_dir == "/srv/rg"


def test_the_config_is_frozen(tmp_path: Path) -> None:
    config = _load(tmp_path).config
    with pytest.raises(ValidationError):
        config.gateway.id = "other"  # type: ignore[misc]


def test_loaded_config_knows_its_file_and_has_no_warnings(tmp_path: Path) -> None:
    loaded = _load(tmp_path)
    assert loaded.path == tmp_path / "gw.yaml"
    assert loaded.warnings == []
    assert isinstance(loaded.config, Config)


def test_summary_names_what_the_gateway_will_do_without_credentials(tmp_path: Path) -> None:
    text = summarize(_load(tmp_path).config)
    assert text.splitlines()[:3] == [
        "gateway kitchen: state in /var/lib/rg, GPIO pin factory from GPIOZERO_PIN_FACTORY"
        " or gpiozero's default",
        "mqtt: broker broker.lan:8883 (TLS, with login), topics under reorder/kitchen/",
        "commerce: http shop at shop.example (https), token set",
    ]
    assert "  coffee: LAVAZZA-1KG x2, cooldown 1h" in text
    assert (
        "  detergent: TIDE-PODS-42 x2, one open order at a time, at most 3 a day, cooldown 1h"
        in text
    )
    assert "  laundry: GPIO 17, LED on GPIO 27 -> detergent" in text
    assert "  pantry: MQTT zigbee2mqtt/pantry_button (zigbee2mqtt) -> coffee" in text
    assert (
        "  coffee-scale: MQTT kitchen/scale (json, value weight.grams) -> coffee:"
        " order below 250 g, re-arm above 800.5 g, settle 90s"
    ) in text
    assert "gw-user-7c1" not in text


def test_check_prints_the_summary_and_succeeds(tmp_path: Path) -> None:
    path = _good(tmp_path)
    out, err = io.StringIO(), io.StringIO()
    assert check_command(str(path), out, err, env={"SHOP_TOKEN": "t"}) == 0
    assert out.getvalue().startswith("gateway kitchen:")
    assert out.getvalue().endswith(f"{path}: configuration is valid\n")
    assert err.getvalue() == ""


def test_check_prints_every_error_and_fails_with_2(tmp_path: Path) -> None:
    path = _good(
        tmp_path, GOOD.replace("gpio: 17", "gpio: 27").replace("    value: weight.grams\n", "")
    )
    out, err = io.StringIO(), io.StringIO()
    assert check_command(str(path), out, err, env={"SHOP_TOKEN": "t"}) == 2
    assert out.getvalue() == ""
    lines = err.getvalue().splitlines()
    assert lines[0].startswith(f"{path}:24:10: buttons[0].led: GPIO 27 is already used")
    assert lines[1].startswith(f"{path}:31:5: sensors[0].value: is required by profile 'json'")
    assert lines[2] == f"{path}: 2 problems found"


def test_check_reports_an_unreadable_path_without_a_traceback(tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    assert check_command(str(tmp_path / "nope.yaml"), out, err, env={}) == 2
    assert (
        err.getvalue().splitlines()[0]
        == f"{tmp_path / 'nope.yaml'}: cannot read: No such file or directory"
    )


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://shop.example/api", True),
        ("http://127.0.0.1:8080/api/v1", True),
        ("http://127.8.9.1/api", True),
        ("http://[::1]:8080/", True),
        ("http://localhost:8080/", True),
        ("http://10.0.0.2/api", False),
        ("http://localhost.example/", False),
        ("ftp://shop.example/", False),
    ],
)
def test_plain_http_only_to_loopback(url: str, ok: bool) -> None:
    if ok:
        assert check_shop_url(url) == url
    else:
        with pytest.raises(ValueError, match="https://"):
            check_shop_url(url)


def test_loopback_hosts() -> None:
    assert is_loopback_host("LOCALHOST")
    assert not is_loopback_host("128.0.0.1")


def test_formatting_helpers() -> None:
    assert format_path(("buttons", 1, "gpio")) == "buttons[1].gpio"
    assert format_path(("products", "coffee", "quantity")) == "products.coffee.quantity"
    assert [format_duration(s) for s in (0.05, 2.0, 90.0, 600.0, 7200.0, 604800.0, 1.5)] == [
        "50ms",
        "2s",
        "90s",
        "10m",
        "2h",
        "7d",
        "1.5s",
    ]


def test_counts_are_spoken_with_the_right_plural(tmp_path: Path) -> None:
    config = _load(tmp_path).config
    assert (len(config.buttons), len(config.sensors), len(config.products)) == (2, 1, 2)
    assert inventory(config) == "2 buttons, 1 sensor, 2 products"
    one = config.model_copy(update={"buttons": config.buttons[:1], "sensors": []})
    assert inventory(one) == "1 button, 0 sensors, 2 products"
