"""One short press and one long press of every device family, as its firmware
publishes them, through a real mosquitto into a running gateway and on to the
reference shop: each short press orders exactly once, each long press cancels that
order exactly once. And a Shelly Gen1 button that loses power: its counter starts
again at 1, and that press orders once more.

The message sequences are the devices' own:

* Zigbee2MQTT: the words each model publishes for a short and for a long press,
  and Zigbee2MQTT 1.x's ``click`` (``single``; ``long``, ``long_release``),
  from the model definitions (devices/z2m_models.py, read from zigbee-herdsman-
  converters; a Hue dimmer's long press is ``on_press``, ``on_hold`` repeated,
  ``on_hold_release``), on ``zigbee2mqtt/<name>`` with battery and link quality;
* Tasmota 9+ ``{"Button1":{"Action":"SINGLE"}}`` on ``stat/<topic>/RESULT`` and
  Tasmota before 9.0 ``{"ACTION":"SINGLE"}`` on ``stat/<topic>/BUTTON1``
  (tasmota/tasmota_support/support_button.ino);
* Shelly Gen1 ``{"event": "S", "event_cnt": N}`` on ``shellies/<id>/input_event/0``
  and ``true`` on ``shellies/<id>/online`` when it connects (Shelly Gen1 MQTT API);
  Gen2 ``NotifyEvent`` notifications: ``btn_down``, ``btn_up``, ``single_push`` for a
  short press, ``btn_down``, ``long_push``, ``btn_up`` for a long one (Shelly Gen2
  API, Input component events), and the same from a virtual button ``button:200``;
* ESPHome event entities ``{"event_type": "single"}`` and binary sensors ``ON`` /
  ``OFF`` (esphome/components/mqtt), the latter timed by the gateway;
* our own button firmware, ``{"event": "press" | "hold", "id", "seq"}``.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from devices.z2m_models import get_model
from firmware_sim.shop.server import ShopServer
from tests.support.broker import Broker
from tests.support.gateway import GatewayProcess
from tests.support.publisher import Publisher, wait_until

DEADLINE = 30.0  # seconds; only reached when something is broken
HOLD_TIME = 1.0  # the gateway-timed ESPHome binary sensor's hold_time
LINK = {"battery": 87, "linkquality": 120}

Publish = Callable[[Publisher], None]


@dataclass(frozen=True)
class Family:
    name: str  # the button's name, and its product's
    button: dict[str, Any]  # the config entry, without name and product
    short: Publish
    long: Publish


def _send(topic: str, *payloads: bytes) -> Publish:
    def publish(pub: Publisher) -> None:
        for payload in payloads:
            pub.publish(topic, payload)

    return publish


def _z2m(model: str, button: str | None = None) -> tuple[dict[str, Any], Publish, Publish]:
    words = get_model(model).button(button)
    topic = f"zigbee2mqtt/{model.lower().replace('/', '-')}"

    def said(sequence: tuple[str, ...]) -> Publish:
        return _send(topic, *(json.dumps({"action": w, **LINK}).encode() for w in sequence))

    config = {"mqtt": topic, "profile": "zigbee2mqtt", "model": model}
    if button is not None:
        config["button"] = button
    return config, said(words.short_press), said(words.long_press)


def _shelly2(word: str, component: str = "input:0") -> bytes:
    number = int(component.rpartition(":")[2])
    event = {"component": component, "id": number, "event": word, "ts": 1718000000.12}
    return json.dumps(
        {
            "src": "shellyplusi4-a8032ab1",
            "dst": "shellyplusi4-a8032ab1/events",
            "method": "NotifyEvent",
            "params": {"ts": 1718000000.12, "events": [event]},
        }
    ).encode()


def _timed(topic: str, held: float) -> Publish:
    def publish(pub: Publisher) -> None:
        pub.publish(topic, b"ON")
        time.sleep(held)
        pub.publish(topic, b"OFF")

    return publish


GEN1 = "shellies/shellybutton1-A1B2C3"
GEN1_REBOOTED = "shellies/shellybutton1-D4E5F6"
ESPHOME_BINARY = "kitchen-node/binary_sensor/coffee_button/state"

FAMILIES = (
    Family("ikea-e1743", *_z2m("E1743")),
    Family("hue-dimmer", *_z2m("324131092621")),
    Family("tuya-ts0044", *_z2m("TS0044", "2")),
    Family(
        "z2m-1x-click",
        {"mqtt": "zigbee2mqtt/wxkg01lm", "profile": "zigbee2mqtt"},
        _send("zigbee2mqtt/wxkg01lm", json.dumps({"click": "single", **LINK}).encode()),
        _send(
            "zigbee2mqtt/wxkg01lm",
            *(json.dumps({"click": w, **LINK}).encode() for w in ("long", "long_release")),
        ),
    ),
    Family(
        "tasmota",
        {"mqtt": "stat/desk/RESULT", "profile": "tasmota"},
        _send("stat/desk/RESULT", b'{"Button1":{"Action":"SINGLE"}}'),
        _send("stat/desk/RESULT", b'{"Button1":{"Action":"HOLD"}}'),
    ),
    Family(
        "tasmota-8",
        {"mqtt": "stat/old-desk/BUTTON1", "profile": "tasmota"},
        _send("stat/old-desk/BUTTON1", b'{"ACTION":"SINGLE"}'),
        _send("stat/old-desk/BUTTON1", b'{"ACTION":"HOLD"}'),
    ),
    Family(
        "shelly-gen1",
        {"mqtt": f"{GEN1}/input_event/0", "profile": "shelly"},
        _send(f"{GEN1}/input_event/0", b'{"event": "S", "event_cnt": 7}'),
        _send(f"{GEN1}/input_event/0", b'{"event": "L", "event_cnt": 8}'),
    ),
    Family(
        "shelly-gen2",
        {"mqtt": "shellyplusi4-a8032ab1/events/rpc", "profile": "shelly"},
        _send(
            "shellyplusi4-a8032ab1/events/rpc",
            *(_shelly2(w) for w in ("btn_down", "btn_up", "single_push")),
        ),
        _send(
            "shellyplusi4-a8032ab1/events/rpc",
            *(_shelly2(w) for w in ("btn_down", "long_push", "btn_up")),
        ),
    ),
    Family(
        "shelly-virtual",
        {"mqtt": "shellyplus1-a8032ab1/events/rpc", "profile": "shelly", "component": "button:200"},
        _send("shellyplus1-a8032ab1/events/rpc", _shelly2("single_push", "button:200")),
        _send("shellyplus1-a8032ab1/events/rpc", _shelly2("long_push", "button:200")),
    ),
    Family(
        "esphome-event",
        {"mqtt": "kitchen-node/event/coffee_button/state", "profile": "esphome"},
        _send("kitchen-node/event/coffee_button/state", b'{"event_type": "single"}'),
        _send("kitchen-node/event/coffee_button/state", b'{"event_type": "long"}'),
    ),
    Family(
        "esphome-timed",
        {
            "mqtt": ESPHOME_BINARY,
            "profile": "esphome",
            "gateway_timed": True,
            "hold_time": f"{HOLD_TIME:g}s",
        },
        _timed(ESPHOME_BINARY, 0.1),
        _timed(ESPHOME_BINARY, HOLD_TIME + 0.5),
    ),
    Family(
        "reorder-button",
        {"mqtt": "home/reorder/hall", "profile": "reorder-button"},
        _send("home/reorder/hall", b'{"event": "press", "id": "hall-1", "seq": 1}'),
        _send("home/reorder/hall", b'{"event": "hold", "id": "hall-2", "seq": 2}'),
    ),
)


def _config() -> dict[str, Any]:
    products: dict[str, Any] = {f.name: {"sku": f"SKU-{f.name.upper()}"} for f in FAMILIES}
    products["rebooted"] = {"sku": "SKU-REBOOTED", "one_open_order": False}
    buttons = [{"name": f.name, "product": f.name, **f.button} for f in FAMILIES]
    buttons.append(
        {
            "name": "rebooted",
            "product": "rebooted",
            "mqtt": f"{GEN1_REBOOTED}/input_event/0",
            "profile": "shelly",
        }
    )
    return {"products": products, "buttons": buttons, "limits": {"max_orders_per_day": 100}}


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[ShopServer]:
    """The reference shop, selling one product per family (and the rebooted button's)."""
    skus = [f"SKU-{f.name.upper()}" for f in FAMILIES] + ["SKU-REBOOTED"]
    catalog = tmp_path / "catalog.yaml"
    products = {sku: {"name": sku.lower(), "price_cents": 100} for sku in skus}
    catalog.write_text(yaml.safe_dump({"products": products}))
    server = ShopServer(
        tmp_path / "shop.db", token=secrets.token_urlsafe(16), catalog=catalog
    ).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def gateway(tmp_path: Path, broker: Broker, shop: ShopServer) -> Iterator[GatewayProcess]:
    gw = GatewayProcess(
        tmp_path / "gw", _config(), broker_url=broker.url, shop_url=shop.url, shop_token=shop.token
    )
    try:
        gw.start().wait_ready()
        yield gw
    finally:
        gw.close()


def _statuses(shop: ShopServer, product: str) -> list[str]:
    return [str(o["status"]) for o in shop.orders(f"SKU-{product.upper()}")]


def _told(gw: GatewayProcess, device: str) -> list[str]:
    return [
        str(e["outcome"])
        for e in gw.events.items
        if e.get("device") == device and not e.get("routine") and e["outcome"] != "order_status"
    ]


def test_each_family_orders_on_a_short_press_and_cancels_on_a_long_one(
    gateway: GatewayProcess, broker: Broker, shop: ShopServer
) -> None:
    with Publisher(broker.url) as device:
        for family in FAMILIES:
            family.short(device)
            wait_until(
                lambda f=family: _statuses(shop, f.name) == ["accepted"],  # type: ignore[misc]
                DEADLINE,
                f"{family.name}: one order at the shop",
            )
            family.long(device)
            wait_until(
                lambda f=family: _statuses(shop, f.name) == ["cancelled"],  # type: ignore[misc]
                DEADLINE,
                f"{family.name}: that order cancelled at the shop",
            )
    for family in FAMILIES:
        told = _told(gateway, family.name)
        assert told.count("ordered") == 1, (family.name, told)
        assert told.count("cancel_requested") == 1, (family.name, told)
        assert _statuses(shop, family.name) == ["cancelled"]


def test_a_shelly_gen1_button_that_lost_power_orders_again_from_count_one(
    gateway: GatewayProcess, broker: Broker, shop: ShopServer
) -> None:
    topic = f"{GEN1_REBOOTED}/input_event/0"
    first = b'{"event": "S", "event_cnt": 1}'
    with Publisher(broker.url) as device:
        # Booted: online (retained, as Gen1 publishes it), the idle report, a press.
        device.publish(f"{GEN1_REBOOTED}/online", b"true", retain=True)
        device.publish(topic, b'{"event": "", "event_cnt": 0}')
        device.publish(topic, first)
        wait_until(lambda: len(_statuses(shop, "rebooted")) == 1, DEADLINE, "the first order")
        # The power cut: the broker sends the will, then the device is back.
        device.publish(f"{GEN1_REBOOTED}/online", b"false", retain=True)
        device.publish(f"{GEN1_REBOOTED}/online", b"true", retain=True)
        device.publish(topic, b'{"event": "", "event_cnt": 0}')
        device.publish(topic, first)  # count 1 again: a new press
        device.publish(topic, first)  # the same message again: not a new press
        gateway.events.wait_for(lambda _: _told(gateway, "rebooted").count("duplicate") >= 1)
        wait_until(lambda: len(_statuses(shop, "rebooted")) == 2, DEADLINE, "the second order")
        device.clear_retained(f"{GEN1_REBOOTED}/online")
    assert _told(gateway, "rebooted") == ["ordered", "ordered", "duplicate"]
    # Its first boot seen is number 0 (ids as they are); the restart starts boot 1.
    assert sorted(o["source"]["event_id"] for o in shop.orders("SKU-REBOOTED")) == [
        "b1-cnt-1",
        "cnt-1",
    ]
