"""Home Assistant discovery from the gateway as a subprocess, read off a real mosquitto.

Checked against the config: one entity set per button, product and sensor, plus the
gateway's own; unique_ids unique; availability on the gateway's status topic;
a removed button's discovery topics emptied after a restart and after SIGHUP, and
also when ``homeassistant.json`` came back empty or torn from a power cut.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from firmware_sim.shop.server import ShopServer
from gateway.config.models import Config
from gateway.outputs.homeassistant import discovery_configs
from tests.support.broker import Broker
from tests.support.gateway import GatewayProcess
from tests.support.publisher import Publisher, Received, wait_until
from tests.support.shop import shop_fixture  # noqa: F401  (registers "shop")

HA = {
    "homeassistant": {"discovery": True, "prefix": "ha-test"},
    "products": {
        "detergent": {"sku": "TIDE-PODS-42", "one_open_order": False},
        "coffee": {"sku": "LAVAZZA-1KG"},
    },
    "buttons": [
        {
            "name": "e2e-button",
            "mqtt": "home/b1",
            "profile": "reorder-button",
            "product": "detergent",
        },
        {
            "name": "pantry",
            "mqtt": "zigbee2mqtt/pantry",
            "profile": "zigbee2mqtt",
            "product": "coffee",
        },
    ],
    "sensors": [
        {
            "name": "scale",
            "mqtt": "sensors/scale",
            "profile": "json",
            "value": "weight_g",
            "unit": "g",
            "product": "coffee",
            "reorder_below": 250,
            "rearm_above": 800,
            "settle": "1s",
        }
    ],
}


@pytest.fixture
def gateway(tmp_path: Path, broker: Broker, shop: ShopServer) -> Iterator[GatewayProcess]:
    gw = GatewayProcess(
        tmp_path / "gw", HA, broker_url=broker.url, shop_url=shop.url, shop_token=shop.token
    )
    try:
        yield gw
    finally:
        gw.close()


def _configs(msgs: list[Received]) -> dict[str, dict[str, Any]]:
    """The latest non-empty discovery payload per topic."""
    latest: dict[str, bytes] = {}
    for m in msgs:
        latest[m.topic] = m.payload
    return {t: json.loads(p) for t, p in latest.items() if p}


def _expected(gw: GatewayProcess) -> set[str]:
    return set(discovery_configs(Config.model_validate(gw.config)))


def test_discovery_matches_config_and_removal_clears(
    gateway: GatewayProcess, broker: Broker
) -> None:
    gateway.start()
    gateway.wait_ready()
    expected = _expected(gateway)
    with Publisher(broker.url) as ha:
        ha.subscribe("ha-test/#")
        ha.wait_for(lambda ms: {m.topic for m in ms} >= expected)
    # A client that subscribes later (Home Assistant after its restart) gets them
    # all from the broker's retained store.
    with Publisher(broker.url) as ha:
        ha.subscribe("ha-test/#")
        ha.wait_for(lambda ms: {m.topic for m in ms} >= expected)
        assert all(m.retain for m in ha.messages("ha-test/#"))
        configs = _configs(ha.messages("ha-test/#"))
        assert set(configs) == expected

    gid = gateway.gateway_id
    by_component: dict[str, list[dict[str, Any]]] = {}
    for topic, payload in configs.items():
        prefix, component, node, _object_id, leaf = topic.split("/")
        assert (prefix, node, leaf) == ("ha-test", gid, "config")
        by_component.setdefault(component, []).append(payload)
        assert payload["availability_topic"] == f"reorder/{gid}/status"
        assert payload["payload_available"] == "online"
        assert payload["payload_not_available"] == "offline"
        assert payload["device"]["identifiers"] == [f"reorder-gateway-{gid}"]
    unique_ids = [p["unique_id"] for p in configs.values()]
    assert len(unique_ids) == len(set(unique_ids))

    buttons = {p["command_topic"] for p in by_component["button"]}
    assert buttons == {f"reorder/{gid}/e2e-button/press", f"reorder/{gid}/pantry/press"}
    sensors = {p["name"] for p in by_component["sensor"]}
    assert {"e2e-button last decision", "pantry last decision"} <= sensors
    assert {"detergent order", "coffee order", "scale reading", "queue depth"} <= sensors
    reading = next(p for p in by_component["sensor"] if p["name"] == "scale reading")
    assert reading["unit_of_measurement"] == "g"
    binary = {p["name"]: p for p in by_component["binary_sensor"]}
    assert set(binary) == {"scale running low", "broker connection", "shop connection"}
    assert binary["broker connection"]["device_class"] == "connectivity"

    # A press through Home Assistant's button: its command topic is the virtual press.
    with Publisher(broker.url) as ha:
        ha.subscribe(f"reorder/{gid}/state/#")
        ha.publish(f"reorder/{gid}/e2e-button/press", b"{}")
        decision = ha.wait_for_message(f"reorder/{gid}/state/button/e2e-button")
        assert json.loads(decision.payload)["outcome"] == "ordered"
        ha.wait_for(
            lambda ms: any(
                m.topic == f"reorder/{gid}/state/product/detergent"
                and json.loads(m.payload)["state"] in ("queued", "accepted")
                and json.loads(m.payload)["last_order"]
                for m in ms
            )
        )
        # The pantry's decision makes its retained state topic, cleared below.
        ha.subscribe(f"reorder/{gid}/events")
        ha.publish(f"reorder/{gid}/pantry/press", b"{}")
        ha.wait_for_message(f"reorder/{gid}/state/button/pantry")
        # A battery report from the remote is a decision on the events topic, marked
        # routine, and leaves the household's "last decision" at the press.
        ha.publish("zigbee2mqtt/pantry", b'{"battery": 80, "linkquality": 90}')
        ha.wait_for(
            lambda ms: any(
                m.topic == f"reorder/{gid}/events" and json.loads(m.payload).get("routine")
                for m in ms
            )
        )
        last = ha.messages(f"reorder/{gid}/state/button/pantry")
        assert [json.loads(m.payload)["outcome"] for m in last] == ["ordered"]

    # Restart without the pantry button: its two entities are emptied (retained), and
    # its state topic after them, once Home Assistant has dropped the entities.
    code, _ = gateway.terminate()
    assert code == 0
    gateway.config["buttons"] = [b for b in gateway.config["buttons"] if b["name"] != "pantry"]
    gateway.config_path.write_text(json.dumps(gateway.config))
    removed = expected - _expected(gateway)
    assert len(removed) == 2
    pantry_state = f"reorder/{gid}/state/button/pantry"
    with Publisher(broker.url) as watcher:
        watcher.subscribe("ha-test/#")
        watcher.subscribe(pantry_state)
        watcher.wait_for_message(pantry_state)  # retained, from the press above
        watcher.received.clear()
        gateway.start()
        gateway.wait_ready()
        wait_until(lambda: "Home Assistant: announced" in gateway.current_log(), what="announced")
        # Its two entities and its state topic.
        assert "Home Assistant: cleared 3 topics of removed devices" in gateway.current_log()
        watcher.wait_for(lambda ms: any(m.topic == pantry_state and not m.payload for m in ms))
        emptied = [m.topic for m in watcher.messages() if not m.payload]
        assert set(emptied) == removed | {pantry_state}
        assert emptied[-1] == pantry_state, emptied
    wait_until(
        lambda: "cleared the retained state of 1 removed devices" in gateway.current_log(),
        what="the log line of the state clear",
    )
    announced = json.loads((gateway.state_dir / "homeassistant.json").read_text())["topics"]
    assert pantry_state not in announced
    with Publisher(broker.url) as ha:
        ha.subscribe("ha-test/#")
        ha.wait_for(lambda ms: {m.topic for m in ms} >= _expected(gateway))
        retained = {m.topic for m in ha.messages("ha-test/#")}
        # An empty retained message deletes the retained one: nothing is left to receive.
        assert not retained & removed
        assert set(_configs(ha.messages("ha-test/#"))) == _expected(gateway)
        ha.subscribe(f"reorder/{gid}/state/button/#")
        ha.wait_for_message(f"reorder/{gid}/state/button/e2e-button")
        assert not ha.messages(f"reorder/{gid}/state/button/pantry")


def test_sighup_reload_removes_and_adds_entities(gateway: GatewayProcess, broker: Broker) -> None:
    gateway.start()
    gateway.wait_ready()
    before = _expected(gateway)
    with Publisher(broker.url) as ha:
        ha.subscribe("ha-test/#")
        ha.wait_for(lambda ms: {m.topic for m in ms} >= before)
        ha.received.clear()
        gateway.config["sensors"] = []
        gateway.config_path.write_text(json.dumps(gateway.config))
        assert gateway.proc is not None
        gateway.proc.send_signal(signal.SIGHUP)
        gone = before - _expected(gateway)
        assert len(gone) == 2
        ha.wait_for(lambda ms: {m.topic for m in ms if not m.payload} >= gone)


@pytest.mark.parametrize(
    "content",
    [b"", b'{"topics": ["ha-test/button/e2e/button_pantry_pr'],
    ids=["empty", "torn"],
)
def test_unreadable_announced_file_is_rebuilt_from_the_broker(
    gateway: GatewayProcess, broker: Broker, content: bytes
) -> None:
    """After a power cut homeassistant.json may be empty or cut short: the retained
    topics of devices removed meanwhile are found at the broker and cleared all the
    same, and the file is written anew."""
    gateway.start()
    gateway.wait_ready()
    before = _expected(gateway)
    gid = gateway.gateway_id
    with Publisher(broker.url) as ha:
        ha.subscribe("ha-test/#")
        ha.wait_for(lambda ms: {m.topic for m in ms} >= before)
        # The pantry's decision makes its retained state topic.
        ha.subscribe(f"reorder/{gid}/state/button/pantry")
        ha.publish(f"reorder/{gid}/pantry/press", b"{}")
        ha.wait_for_message(f"reorder/{gid}/state/button/pantry")
    code, _ = gateway.terminate()
    assert code == 0
    announced = gateway.state_dir / "homeassistant.json"
    announced.write_bytes(content)
    gateway.config["buttons"] = [b for b in gateway.config["buttons"] if b["name"] != "pantry"]
    gateway.config_path.write_text(json.dumps(gateway.config))
    after = _expected(gateway)
    removed = before - after
    assert len(removed) == 2

    gateway.start()
    gateway.wait_ready()
    wait_until(
        lambda: "Home Assistant: rebuilt" in gateway.current_log(), timeout=20, what="rebuilt"
    )
    log = gateway.current_log()
    assert log.count("homeassistant.json is unreadable") == 1, log
    assert "cleared 3 retained topics of removed devices found at the broker" in log, log
    rebuilt = json.loads(announced.read_text())["topics"]
    assert after <= set(rebuilt)
    assert not removed & set(rebuilt)
    wait_until(
        lambda: "cleared the retained state of 1 removed" in gateway.current_log(),
        what="the removed button's state cleared after its entities",
    )
    with Publisher(broker.url) as ha:
        ha.subscribe("ha-test/#")
        ha.subscribe(f"reorder/{gid}/state/#")
        ha.wait_for(lambda ms: {m.topic for m in ms} >= after)
        # The broker sends a subscription's retained messages before it forwards
        # anything published after the SUBACK: once this probe is in, all are.
        ha.subscribe("probe/rebuilt")
        ha.publish("probe/rebuilt", b"done")
        ha.wait_for_message("probe/rebuilt")
        assert set(_configs(ha.messages("ha-test/#"))) == after
        assert not ha.messages(f"reorder/{gid}/state/button/pantry")
