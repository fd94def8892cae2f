"""Broken configs: each mistake is reported with its exact words at its exact line:col.

Every case is a small YAML file; the expectation is the complete list of
``LINE:COL: key.path: message`` lines (the file name prefix is stripped), so a
new spurious error fails a case as surely as a missing one.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gateway.config.load import ConfigError, load_config

# Lines 1-8 of most cases. Kept tiny so that the line numbers below are easy to check.
BASE = """\
gateway:
  id: home
commerce:
  base_url: https://shop.example/api/v1
  token: t0ken
products:
  coffee:
    sku: LAVAZZA-1KG
"""

PROFILES = "esphome, json, reorder-button, shelly, tasmota, zigbee2mqtt"
SENSOR = """\
sensors:
  - name: scale
    mqtt: kitchen/scale
    value: grams
    product: coffee
"""  # lines 9-13

CASES: list[tuple[str, str, list[str]]] = [
    (
        "unknown key with a close match",
        BASE + SENSOR + "    reorder_belwo: 250\n    rearm_above: 800\n",
        [
            "10:5: sensors[0].reorder_below: is required — add reorder_below: 250",
            "14:5: sensors[0].reorder_belwo: unknown key 'reorder_belwo'"
            " — did you mean 'reorder_below'?",
        ],
    ),
    (
        "unknown key without a close match lists the valid ones",
        BASE + "limits:\n  colour: red\n",
        [
            "10:3: limits.colour: unknown key 'colour' — valid keys here: dedupe_retention,"
            " dedupe_window, history_retention, max_orders_per_day",
        ],
    ),
    (
        "unknown top-level section",
        BASE + "mqqt:\n  url: mqtt://broker\n",
        ["9:1: mqqt: unknown key 'mqqt' — did you mean 'mqtt'?"],
    ),
    (
        "unknown profile",
        BASE + "buttons:\n  - name: b\n    mqtt: z/b\n    profile: zigbee\n    product: coffee\n",
        [
            "12:14: buttons[0].profile: unknown profile 'zigbee' — did you mean 'zigbee2mqtt'?"
            f" (valid profiles: {PROFILES})",
        ],
    ),
    (
        "unknown adapter",
        BASE.replace("  token: t0ken\n", "  token: t0ken\n  adapter: soap\n"),
        ["6:12: commerce.adapter: unknown adapter 'soap' — valid adapters: http"],
    ),
    (
        "duration without a unit",
        BASE + SENSOR + "    reorder_below: 250\n    rearm_above: 800\n    settle: 60\n",
        ["16:13: sensors[0].settle: has no time unit — did you mean '60s'?"],
    ),
    (
        "duration with an unknown unit",
        BASE + "    cooldown: 2 weeks\n",
        [
            "9:15: products.coffee.cooldown: '2 weeks' is not a duration — write a number with"
            " a unit: ms, s, m, h or d (e.g. 60s)",
        ],
    ),
    (
        "button naming a product that does not exist",
        BASE + "buttons:\n  - name: b\n    gpio: 17\n    product: cofee\n",
        [
            "12:14: buttons[0].product: unknown product 'cofee' — did you mean 'coffee'?"
            " (products: coffee)",
        ],
    ),
    (
        "sensor naming a product that does not exist, nothing close",
        BASE
        + SENSOR.replace("product: coffee", "product: flour")
        + "    reorder_below: 1\n    rearm_above: 2\n",
        [
            "13:14: sensors[0].product: unknown product 'flour' — define it under products:,"
            " or use one of: coffee",
        ],
    ),
    (
        "the same GPIO pin twice points at the second use",
        BASE + "buttons:\n  - name: a\n    gpio: 17\n    product: coffee\n"
        "  - name: b\n    gpio: 17\n    product: coffee\n",
        [
            "14:11: buttons[1].gpio: GPIO 17 is already used by button 'a' on line 11"
            " — give each button and LED its own pin",
        ],
    ),
    (
        "an LED on a button's pin",
        BASE + "buttons:\n  - name: a\n    gpio: 17\n    product: coffee\n"
        "  - name: b\n    gpio: 22\n    led: 17\n    product: coffee\n",
        [
            "15:10: buttons[1].led: GPIO 17 is already used by button 'a' on line 11"
            " — give each button and LED its own pin",
        ],
    ),
    (
        "two LEDs on one pin",
        BASE + "buttons:\n  - name: a\n    gpio: 17\n    led: 27\n    product: coffee\n"
        "  - name: b\n    gpio: 22\n    led: 27\n    product: coffee\n",
        [
            "16:10: buttons[1].led: GPIO 27 is already used by the LED of button 'a' on line 12"
            " — give each button and LED its own pin",
        ],
    ),
    (
        "a button with both gpio and mqtt",
        BASE + "buttons:\n  - name: a\n    gpio: 17\n    mqtt: z/a\n    profile: zigbee2mqtt\n"
        "    product: coffee\n",
        [
            "12:5: buttons[0]: has both gpio: and mqtt: — a button is either wired to a pin or"
            " a wireless device; keep one of them",
        ],
    ),
    (
        "a button with neither gpio nor mqtt",
        BASE + "buttons:\n  - name: a\n    product: coffee\n",
        [
            "10:5: buttons[0]: has neither gpio: nor mqtt: — add gpio: PIN for a wired button,"
            " or mqtt: TOPIC with profile: for a wireless one",
        ],
    ),
    (
        "mqtt without a profile",
        BASE + "buttons:\n  - name: a\n    mqtt: z/a\n    product: coffee\n",
        [f"11:5: buttons[0].profile: is required with mqtt: — add profile: one of {PROFILES}"],
    ),
    (
        "a json sensor without the value path its profile needs",
        BASE
        + SENSOR.replace("    value: grams\n", "    profile: json\n")
        + "    reorder_below: 1\n    rearm_above: 2\n",
        [
            "12:14: sensors[0].value: is required by profile 'json' — add the dotted path to"
            " the number, e.g. value: weight_g",
        ],
    ),
    (
        "a sensor with a button-only profile",
        BASE
        + SENSOR.replace("    value: grams\n", "    profile: shelly\n")
        + "    reorder_below: 1\n    rearm_above: 2\n",
        [
            "12:14: sensors[0].profile: profile 'shelly' is for buttons — a sensor can use:"
            " esphome, json, tasmota",
        ],
    ),
    (
        "rearm_above not above reorder_below",
        BASE + SENSOR + "    reorder_below: 250\n    rearm_above: 250\n",
        [
            "15:18: sensors[0].rearm_above: must be above reorder_below (250) — the sensor"
            " re-arms only once refilled past it, e.g. rearm_above: 500",
        ],
    ),
    (
        "a missing required key points at its section",
        "gateway:\n  id: home\ncommerce:\n  token: t\nproducts:\n  coffee:\n    sku: X\n",
        ["3:1: commerce.base_url: is required — add base_url: https://shop.example/api/v1"],
    ),
    (
        "a missing section points at the top of the file",
        "commerce:\n  base_url: https://shop.example/\nproducts:\n  coffee:\n    sku: X\n",
        ["1:1: gateway: is required — add a 'gateway:' section with 'id: kitchen'"],
    ),
    (
        "a word where a number belongs",
        BASE + "    quantity: two\n",
        [
            "9:15: products.coffee.quantity: expected a whole number, got 'two'"
            " — write e.g. quantity: 2",
        ],
    ),
    (
        "a number out of range",
        BASE + "buttons:\n  - name: a\n    gpio: 60\n    product: coffee\n",
        ["11:11: buttons[0].gpio: must be at most 53, got 60"],
    ),
    (
        "not true or false",
        BASE + "    one_open_order: maybe\n",
        [
            "9:21: products.coffee.one_open_order: expected true or false, got 'maybe'"
            " — write one_open_order: true or one_open_order: false",
        ],
    ),
    (
        "a mapping where a list belongs",
        BASE + "buttons:\n  name: a\n",
        ["10:3: buttons: expected a list of entries starting with '- ', got a mapping"],
    ),
    (
        "no products at all",
        BASE.split("products:", maxsplit=1)[0] + "products: {}\n",
        [
            "6:11: products: needs at least one entry — add a 'products:' section,"
            " e.g. 'coffee: {sku: LAVAZZA-1KG}'",
        ],
    ),
    (
        "a secret of the wrong type is not echoed",
        BASE.replace("token: t0ken", "token: 48151623"),
        ["5:10: commerce.token: expected text — put the secret in quotes"],
    ),
    (
        "a name used by a button and a sensor",
        BASE
        + "buttons:\n  - name: scale\n    gpio: 5\n    product: coffee\n"
        + SENSOR
        + "    reorder_below: 1\n    rearm_above: 2\n",
        [
            "14:11: sensors[0].name: 'scale' is already the name of the button on line 10"
            " — names appear in MQTT topics and state keys, so each must be unique",
        ],
    ),
    (
        "a duplicate key in one mapping",
        BASE + "    quantity: 1\n    quantity: 3\n",
        [
            "10:5: products.coffee.quantity: duplicate key 'quantity' (first written on line 9)"
            " — remove one of them; YAML would silently keep only the last",
        ],
    ),
    (
        "a broker URL with the wrong scheme",
        BASE + "mqtt:\n  url: http://broker.lan\n",
        [
            "10:8: mqtt.url: 'http://broker.lan' is not a broker URL — write mqtt://HOST:1883,"
            " or mqtts://HOST:8883 for TLS",
        ],
    ),
    (
        "a broker URL without a host",
        BASE + "mqtt:\n  url: 'mqtt://:1883'\n",
        ["10:8: mqtt.url: 'mqtt://:1883' names no host — write mqtt://HOST:PORT"],
    ),
    (
        "a broker URL with a password in it, not echoed",
        BASE + "mqtt:\n  url: mqtt://gw:hunter2@broker.lan\n",
        [
            "10:8: mqtt.url: the URL carries credentials — put them in mqtt.username and"
            " mqtt.password_file",
        ],
    ),
    (
        "plain http to a shop that is not on loopback",
        BASE.replace("https://shop.example", "http://shop.example"),
        [
            "4:13: commerce.base_url: plain http:// to 'shop.example' would send the token"
            " unencrypted — use https:// (http:// is only allowed for loopback hosts"
            " 127.0.0.0/8, ::1, localhost)",
        ],
    ),
    (
        "a gateway id that cannot be a topic level",
        BASE.replace("id: home", "id: my home"),
        [
            "2:7: gateway.id: 'my home' is not a valid name — use up to 64 letters, digits,"
            " '-' or '_', starting with a letter or digit (names appear in MQTT topics)",
        ],
    ),
    (
        "a product name that cannot be a topic level points at the key",
        BASE + "  flat white:\n    sku: FW\n",
        [
            "9:3: products.flat white: 'flat white' is not a valid name — use up to 64 letters,"
            " digits, '-' or '_', starting with a letter or digit (names appear in MQTT topics)",
        ],
    ),
    (
        "a tab in the indentation",
        BASE + "\tquantity: 2\n",
        [
            "9:1: YAML syntax error: while scanning for the next token, found character '\\t'"
            " that cannot start any token — indent with spaces, not tabs",
        ],
    ),
    (
        "a value starting with @",
        BASE.replace("id: home", "id: @home"),
        [
            "2:7: YAML syntax error: while scanning for the next token, found character '@'"
            " that cannot start any token — quote a value that starts with @ or ` (YAML"
            " reserves them): write 'value'",
        ],
    ),
    (
        "a key without its colon is pointed at, not the line after it",
        BASE.replace("  coffee:\n", "  coffee\n"),
        [
            "7:3: YAML syntax error: 'coffee' has no ':' after it, so line 8 runs on from it"
            " — write 'key: value' (e.g. 'coffee:') with a space after the colon",
        ],
    ),
    (
        "a field without its colon before the next field",
        BASE + "    quantity 2\n    cooldown: 1h\n",
        [
            "9:5: YAML syntax error: 'quantity 2' has no ':' after it, so line 10 runs on from"
            " it — write 'key: value' (e.g. 'quantity:') with a space after the colon",
        ],
    ),
    (
        "a key indented deeper than the one above",
        BASE + "      quantity: 2\n",
        [
            "9:7: YAML syntax error: this line is indented deeper than 'sku:' on line 8, so it"
            " runs on from that value — line it up with 'sku:' (or put a value containing"
            " ': ' in quotes)",
        ],
    ),
    (
        "a product's fields indented one level too little",
        BASE.replace("    sku: LAVAZZA-1KG\n", "  sku: LAVAZZA-1KG\n  quantity: 2\n"),
        [
            "8:3: products.sku: looks like a field of a product, not a product — indent under"
            " 'coffee'? (a product's fields go one level deeper than its name)",
            "9:3: products.quantity: looks like a field of a product, not a product — indent"
            " under 'coffee'? (a product's fields go one level deeper than its name)",
        ],
    ),
    (
        "one product field indented too little after a complete product",
        BASE + "  cooldown: 1h\n",
        [
            "9:3: products.cooldown: looks like a field of a product, not a product — indent"
            " under 'coffee'? (a product's fields go one level deeper than its name)",
        ],
    ),
    (
        "an unquoted colon in a value",
        BASE + "    sku: a: b\n",
        [
            "9:11: YAML syntax error: mapping values are not allowed here — put values"
            " containing ': ' in quotes, or fix the indentation",
        ],
    ),
    (
        "an empty file",
        "# nothing yet\n",
        ["1:1: the file is empty — start from config/gateway.example.yaml"],
    ),
    (
        "a file that is a list",
        "- gateway\n- commerce\n",
        [
            "1:1: the top level must be sections such as 'gateway:', 'commerce:' and"
            " 'products:', not a list — start from config/gateway.example.yaml",
        ],
    ),
    (
        "an unset environment variable",
        BASE.replace("token: t0ken", "token: ${SHOP_TOKEN}"),
        [
            "5:10: commerce.token: environment variable SHOP_TOKEN is not set"
            " — export it or use ${SHOP_TOKEN:-default}",
        ],
    ),
    (
        "an unset variable is reported once, not again as a bad URL",
        BASE.replace("https://shop.example/api/v1", "${SHOP_URL}"),
        [
            "4:13: commerce.base_url: environment variable SHOP_URL is not set"
            " — export it or use ${SHOP_URL:-default}",
        ],
    ),
    (
        "an unclosed variable reference",
        BASE + "    quantity: ${QTY\n",
        [
            "9:15: products.coffee.quantity: '${' starts a variable reference that is not"
            " closed — write ${NAME} or ${NAME:-default}, or $${ for a literal '${'",
        ],
    ),
    (
        "a GPIO button with a profile",
        BASE + "buttons:\n  - name: a\n    gpio: 4\n    profile: tasmota\n    product: coffee\n",
        [
            "12:5: buttons[0].profile: only applies to MQTT buttons — remove it, or replace"
            " gpio: with mqtt:",
        ],
    ),
    (
        "an MQTT wildcard in a device topic",
        BASE + "buttons:\n  - name: a\n    mqtt: zigbee2mqtt/+\n    profile: zigbee2mqtt\n"
        "    product: coffee\n",
        [
            "11:11: buttons[0].mqtt: 'zigbee2mqtt/+' contains an MQTT wildcard — name one"
            " device's topic; configure one entry per device",
        ],
    ),
    (
        "token and token_file together",
        BASE.replace("  token: t0ken\n", "  token: t0ken\n  token_file: /nonexistent/t\n"),
        ["6:3: commerce.token_file: both token and token_file are set — keep only token_file"],
    ),
    (
        "a token_file that does not exist",
        BASE.replace("  token: t0ken\n", "  token_file: /nonexistent/t\n"),
        ["5:15: commerce.token_file: /nonexistent/t does not exist — create it or fix the path"],
    ),
]


def _load_messages(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "gw.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as raised:
        load_config(path, env={})
    prefix = f"{path}:"
    assert all(m.startswith(prefix) for m in raised.value.messages), raised.value.messages
    return [m[len(prefix) :] for m in raised.value.messages]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_broken_config_is_reported_at_its_line(
    tmp_path: Path, text: str, expected: list[str]
) -> None:
    assert _load_messages(tmp_path, text) == expected


def test_the_table_covers_enough_mistakes() -> None:
    assert len(CASES) >= 20
    assert len({name for name, _, _ in CASES}) == len(CASES)


def test_base_of_the_table_is_itself_valid(tmp_path: Path) -> None:
    # Otherwise every case would carry the base's own errors along.
    path = tmp_path / "gw.yaml"
    path.write_text(BASE)
    path.chmod(0o600)
    assert load_config(path, env={}).config.products["coffee"].sku == "LAVAZZA-1KG"


def test_all_mistakes_are_reported_at_once_in_file_order(tmp_path: Path) -> None:
    text = (
        BASE.replace("id: home", "id: my home")
        + "    quantity: 0\nbuttons:\n  - name: a\n    gpio: 17\n    product: tea\n"
        + "    colour: red\n"
    )
    messages = _load_messages(tmp_path, text)
    assert [m.split(": ", 2)[:2] for m in messages] == [
        ["2:7", "gateway.id"],
        ["9:15", "products.coffee.quantity"],
        ["13:14", "buttons[0].product"],
        ["14:5", "buttons[0].colour"],
    ]


def test_missing_file_says_it_cannot_be_read(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    with pytest.raises(ConfigError) as raised:
        load_config(path, env={})
    assert raised.value.messages == [f"{path}: cannot read: No such file or directory"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file")
def test_unreadable_file_says_it_cannot_be_read(tmp_path: Path) -> None:
    path = tmp_path / "gw.yaml"
    path.write_text(BASE)
    path.chmod(0o000)
    with pytest.raises(ConfigError) as raised:
        load_config(path, env={})
    assert raised.value.messages == [f"{path}: cannot read: Permission denied"]


def test_a_directory_is_not_a_config(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config(tmp_path, env={})
    assert raised.value.messages == [f"{tmp_path}: cannot read: Is a directory"]


def test_binary_file_is_not_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "gw.yaml"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ConfigError) as raised:
        load_config(path, env={})
    assert raised.value.messages == [f"{path}: cannot read: not UTF-8 text — save it as UTF-8"]
