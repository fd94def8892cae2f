"""The Home Assistant bridge's publishing rules, without a broker: what it sends, in
which order, and what it leaves out (each rule found against a real Home Assistant,
tests/integration/test_homeassistant_real.py)."""

from __future__ import annotations

import json
from pathlib import Path

from gateway.config.models import Config
from gateway.core.decide import OpenOrder, State
from gateway.core.events import OrderState
from gateway.outputs.homeassistant import ANNOUNCED_FILE, HomeAssistantBridge, discovery_configs

BASE = {
    "gateway": {"id": "kitchen"},
    "commerce": {"base_url": "http://127.0.0.1/api"},
    "homeassistant": {"discovery": True},
    "products": {"tea": {"sku": "T"}, "coffee": {"sku": "C", "confirm": True, "quantity": 2}},
    "buttons": [{"name": "hall", "product": "tea"}, {"name": "pantry", "product": "coffee"}],
}


def _bridge(tmp_path: Path, config: dict[str, object]) -> tuple[HomeAssistantBridge, list]:  # type: ignore[type-arg]
    sent: list[tuple[str, bytes]] = []
    bridge = HomeAssistantBridge(
        Config.model_validate(config), tmp_path, lambda t, p: sent.append((t, p))
    )
    return bridge, sent


def test_nothing_is_told_of_the_gateway_while_the_broker_is_away(tmp_path: Path) -> None:
    bridge, sent = _bridge(tmp_path, BASE)
    bridge.on_gateway(broker=False, shop=None, queue=0)
    assert sent == []  # paho would hold it and deliver a stale "OFF" after the reconnect
    bridge.on_gateway(broker=True, shop=True, queue=0)
    bridge.on_gateway(broker=False, shop=True, queue=0)
    bridge.on_gateway(broker=True, shop=True, queue=0)
    bodies = [json.loads(p) for _, p in sent]
    # Sent again after the gap, although unchanged: the broker may have lost it.
    assert bodies == [{"broker": "ON", "shop": "ON", "queue": 0}] * 2


def test_the_order_sensor_names_the_shops_order_id_once_there_is_one(tmp_path: Path) -> None:
    bridge, sent = _bridge(tmp_path, BASE)
    queued = OpenOrder("rg1_0123456789abcdef", "tea", "hall", OrderState.QUEUED, 10.0)
    bridge.on_state(State(open_orders=(queued,)))
    accepted = OpenOrder(
        queued.key, "tea", "hall", OrderState.ACCEPTED, 10.0, shop_order_id="ord_000042"
    )
    bridge.on_state(State(open_orders=(accepted,)))
    tea = [json.loads(p) for t, p in sent if t == "reorder/kitchen/state/product/tea"]
    assert [(b["state"], b["order"]) for b in tea] == [("queued", None), ("accepted", "ord_000042")]
    assert tea[-1]["key"] == "rg1_01234567"


def test_buttons_name_the_paid_order_and_consent_products_get_a_confirm(tmp_path: Path) -> None:
    configs = discovery_configs(Config.model_validate(BASE))
    names = {c["name"]: c for c in configs.values()}
    assert (
        names["pantry: paid order of 2 × coffee"]["command_topic"] == "reorder/kitchen/pantry/press"
    )
    confirm = names["coffee: confirm the paid order of 2 × coffee"]
    assert confirm["command_topic"] == "reorder/kitchen/product/coffee/confirm"
    assert not any(str(n).startswith("tea: confirm") for n in names)


def test_a_removed_devices_state_is_cleared_after_its_entities(tmp_path: Path) -> None:
    bridge, sent = _bridge(tmp_path, BASE)
    bridge.announce()
    state = "reorder/kitchen/state/button/pantry"
    smaller = {**BASE, "buttons": [{"name": "hall", "product": "tea"}]}
    bridge.reconfigure(Config.model_validate(smaller))
    sent.clear()
    removed = bridge.announce()
    assert state in removed
    emptied = [t for t, p in sent if not p]
    assert emptied and state not in emptied  # the configs only, for now
    # Until it is cleared, the file keeps it: a stop now clears it at the next start.
    assert state in json.loads((tmp_path / ANNOUNCED_FILE).read_text())["topics"]
    assert bridge.states_to_clear()
    assert bridge.clear_states() == [state]
    assert sent[-1] == (state, b"")
    assert state not in json.loads((tmp_path / ANNOUNCED_FILE).read_text())["topics"]
    assert not bridge.states_to_clear()


def test_a_device_back_before_its_state_is_cleared_keeps_it(tmp_path: Path) -> None:
    bridge, _ = _bridge(tmp_path, BASE)
    bridge.announce()
    bridge.reconfigure(Config.model_validate({**BASE, "buttons": [BASE["buttons"][0]]}))  # type: ignore[index]
    bridge.announce()
    bridge.reconfigure(Config.model_validate(BASE))
    assert bridge.clear_states() == []
