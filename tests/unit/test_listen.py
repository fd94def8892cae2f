"""``reorder-gateway listen``'s reading of messages: the configured devices' decisions,
and for unconfigured topics a guess whose YAML, once added, does what it says.

The guesses are checked against the payload corpus (tests/fixtures/devices/
corpus.json, each entry naming its upstream source): every real press and cancel
on a topic nobody configured is read as its own family, and the suggested lines,
put into a config, make the gateway decide that same press or cancel.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.config.models import Config
from gateway.core.events import ButtonEvent, SensorReading
from gateway.inputs.routing import Router
from gateway.ops.cli import main
from gateway.ops.listen import Interpreter
from gateway.ops.suggest import guess, suggest
from tests.unit.test_devices_corpus import ENTRIES, IDS

BASE: dict[str, Any] = {
    "gateway": {"id": "kitchen"},
    "commerce": {"base_url": "http://127.0.0.1:1/api/v1"},
    "products": {"coffee": {"sku": "COFFEE"}},
}
SHELLY = "shellies/shellybutton1-A1B2C3"
# An IKEA E1743 through Zigbee2MQTT and a Shelly Button1 (Gen1); also the buttons
# of the live test (tests/integration/test_listen.py).
BUTTONS: list[dict[str, Any]] = [
    {
        "name": "pantry",
        "product": "coffee",
        "mqtt": "zigbee2mqtt/pantry",
        "profile": "zigbee2mqtt",
        "model": "E1743",
    },
    {"name": "hall", "product": "coffee", "mqtt": f"{SHELLY}/input_event/0", "profile": "shelly"},
]
CONFIG = Config.model_validate(
    {
        **BASE,
        "buttons": BUTTONS,
        "sensors": [
            {
                "name": "jar",
                "product": "coffee",
                "mqtt": "tele/jar/SENSOR",
                "profile": "tasmota",
                "unit": "g",
                "reorder_below": "250 g",
                "rearm_above": "0.8 kg",
            }
        ],
    }
)


def said(topic: str, payload: bytes, retain: bool = False) -> list[str]:
    return Interpreter(CONFIG).explain(topic, payload, retain=retain, now=0.0)


def test_configured_devices_say_what_the_gateway_would_decide() -> None:
    # IKEA E1743 words (zigbee-herdsman-converters src/devices/ikea.ts, as in the corpus).
    assert said("zigbee2mqtt/pantry", b'{"action": "on"}') == [
        "pantry (zigbee2mqtt): press — would order coffee"
    ]
    assert said("zigbee2mqtt/pantry", b'{"action": "brightness_move_up"}') == [
        "pantry (zigbee2mqtt): cancel — would cancel the newest open order of coffee"
    ]
    assert said("zigbee2mqtt/pantry", b'{"action": "brightness_stop", "battery": 80}') == [
        "pantry (zigbee2mqtt): battery 80 %",
        "pantry (zigbee2mqtt): ignored — action 'brightness_stop' is not mapped to an order",
    ]
    assert said("zigbee2mqtt/pantry", b'{"action": "on"}', retain=True) == [
        "pantry (zigbee2mqtt): ignored — the broker's retained copy, never a press"
    ]
    # Tasmota's HX711 reports kilograms; the jar decides in grams. Another sensor's
    # nan in the same SENSOR message does not spoil the weight.
    jar = b'{"HX711": {"Weight": 0.412}, "DS18B20": {"Temperature": nan}}'
    assert said("tele/jar/SENSOR", jar) == ["jar (tasmota): reading 412 g — orders below 250 g"]
    assert said("tele/jar/SENSOR", b'{"HX711": {"Weight": 0.2}}') == [
        "jar (tasmota): reading 200 g — below 250 g: low, orders if it stays"
    ]
    [invalid] = said("tele/jar/SENSOR", b"<html>")
    assert invalid.startswith("jar (tasmota): invalid — tasmota: not JSON")
    assert said(f"{SHELLY}/online", b"true") == [
        "hall: the device connected (after a restart if its count goes back)"
    ]
    assert said("reorder/kitchen/pantry/press", b"{}") == [
        "pantry (virtual): press — would order coffee"
    ]


def test_a_message_no_profile_reads_asks_for_a_press() -> None:
    [line] = said("random/topic", b"hello")
    assert "press your button now" in line
    # A Shelly's own "0" on its longpush topic is no scale reading for ESPHome.
    assert guess("shellies/shelly1-A1/longpush/0", b"0") == []


BUTTON_ENTRIES = [
    (entry, id_)
    for entry, id_ in zip(ENTRIES, IDS, strict=True)
    if entry["meaning"] in ("press", "hold") and "actions" not in entry["options"]
]


@pytest.mark.parametrize(
    "entry", [e for e, _ in BUTTON_ENTRIES], ids=[i for _, i in BUTTON_ENTRIES]
)
def test_the_suggested_yaml_makes_an_unconfigured_press_do_what_it_says(
    entry: dict[str, Any],
) -> None:
    topic, payload = entry["topic"], entry["payload"].encode()
    role = "press" if entry["meaning"] == "press" else "cancel"
    [best, *_] = guess(topic, payload)
    assert (best.profile.name, best.meaning) == (entry["profile"], role)
    lines = suggest(topic, payload, Config.model_validate(BASE))
    assert lines[0].endswith("add under buttons:")
    block = "\n".join(line[4:] for line in lines[1:] if line.startswith("    "))
    [button] = yaml.safe_load(block)
    config = Config.model_validate({**BASE, "buttons": [button]})
    [event] = Router.from_config(config).events(
        topic, payload, mid=1, retain=False, dup=False, now=0.0
    )[-1:]
    assert isinstance(event, ButtonEvent)
    assert event.action == ("press" if role == "press" else "hold")


def _suggested(topic: str, payload: bytes) -> tuple[str, dict[str, Any]]:
    lines = suggest(topic, payload, Config.model_validate(BASE))
    block = "\n".join(line[4:] for line in lines[1:] if line.startswith("    "))
    [entry] = yaml.safe_load(block)
    return lines[0], entry


def test_an_esphome_event_of_its_own_type_is_suggested_with_an_action_map() -> None:
    # ESPHome event entities publish {"event_type": ...} with the types the user chose
    # (esphome/components/mqtt/mqtt_event.cpp; the corpus's event entity entries).
    topic, payload = "kitchen-node/event/coffee_button/state", b'{"event_type": "short_click"}'
    head, button = _suggested(topic, payload)
    assert head.endswith("add under buttons:") and button["actions"] == {"press": ["short_click"]}
    config = Config.model_validate({**BASE, "buttons": [button]})
    [event] = Router.from_config(config).events(
        topic, payload, mid=1, retain=False, dup=False, now=0
    )
    assert isinstance(event, ButtonEvent) and event.action == "press"


def test_an_unconfigured_scale_is_suggested_as_a_sensor_that_reads_in_grams() -> None:
    topic, payload = "tele/jar/SENSOR", b'{"HX711": {"Weight": 0.412}}'
    head, sensor = _suggested(topic, payload)
    assert head.startswith("not configured: profile tasmota reads a reading 0.412 kg")
    assert head.endswith("add under sensors:")
    config = Config.model_validate({**BASE, "sensors": [sensor]})
    [reading] = Router.from_config(config).events(
        topic, payload, mid=1, retain=False, dup=False, now=0.0
    )
    assert isinstance(reading, SensorReading) and reading.value == 412.0


def test_a_configured_remote_without_its_model_is_told_which_models_say_its_word() -> None:
    config = Config.model_validate(
        {**BASE, "buttons": [{**BUTTONS[0], "model": None}]}  # the pantry, generic words
    )
    lines = Interpreter(config).explain(
        "zigbee2mqtt/pantry", b'{"action": "on"}', retain=False, now=0.0
    )
    assert lines == [
        "pantry (zigbee2mqtt): ignored — action 'on' is not mapped to an order",
        "  'on' is a press of: E1743, E2001/E2002/E2313, E1812, 8718699693985 — set model:"
        " (docs/devices.md)",
    ]


def test_suggested_names_never_clash_and_the_product_line_pastes_as_it_is() -> None:
    den = {"name": "den", "product": "tea", "mqtt": "zigbee2mqtt/den", "profile": "zigbee2mqtt"}
    raw = {**BASE, "products": {"coffee": {"sku": "C"}, "tea": {"sku": "T"}}, "buttons": [den]}
    two = Config.model_validate(raw)
    listening = Interpreter(two)
    blocks = []
    for topic, payload in (
        ("stat/den/RESULT", b'{"Button1":{"Action":"SINGLE"}}'),
        ("tele/den/SENSOR", b'{"HX711": {"Weight": 0.41}}'),
        ("stat/den/RESULT", b'{"Button1":{"Action":"HOLD"}}'),
    ):
        lines = listening.explain(topic, payload, retain=False, now=0.0)
        block = "\n".join(line[4:] for line in lines[1:] if line.startswith("    "))
        [entry] = yaml.safe_load(block)
        blocks.append(entry)
    assert [b["name"] for b in blocks] == ["den-2", "den-3", "den-2"]
    assert blocks[0]["product"] == "coffee"  # "coffee  # or: tea" reads back as coffee
    config = Config.model_validate({**raw, "buttons": [den, blocks[0]]})
    assert [b.name for b in config.buttons] == ["den", "den-2"]


def test_listen_counts_whole_messages_and_needs_something_to_listen_to(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(json.dumps({**BASE, "mqtt": {"url": "mqtt://127.0.0.1:1"}}))
    path.chmod(0o600)
    with pytest.raises(SystemExit) as refused:
        main(["listen", "--config", str(path), "--count", "0"])
    assert refused.value.code == 2 and "give 1 or more" in capsys.readouterr().err
    # No device configured and no filter given: it says what to do, and stops.
    assert main(["listen", "--config", str(path)]) == 1
    assert "reorder-gateway listen '#'" in capsys.readouterr().err
