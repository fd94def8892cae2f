"""Discovery read back from a real Home Assistant 2024.3.3 (tests/support/homeassistant.py):
the entities it made from the gateway's discovery configs, their states through its
REST API, and its log for the warnings a schema mismatch causes.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from firmware_sim.shop.server import ShopServer
from tests.support.broker import Broker
from tests.support.gateway import GatewayProcess
from tests.support.homeassistant import HomeAssistant
from tests.support.publisher import Publisher, wait_until
from tests.support.shop import shop_fixture  # noqa: F401  (registers "shop")


def _config(gid: str) -> dict[str, Any]:
    return {
        "gateway": {"id": gid},
        "homeassistant": {"discovery": True, "prefix": "homeassistant"},
        "products": {
            "detergent": {"sku": "TIDE-PODS-42"},
            # Consent first: held until Home Assistant's Confirm button says yes.
            "coffee": {"sku": "LAVAZZA-1KG", "confirm": True},
        },
        "buttons": [
            {"name": "laundry", "mqtt": f"home/{gid}/b1", "profile": "reorder-button",
             "product": "detergent"},
            {"name": "pantry", "mqtt": f"home/{gid}/b2", "profile": "reorder-button",
             "product": "coffee"},
            {"name": "spare", "mqtt": f"home/{gid}/b3", "profile": "reorder-button",
             "product": "detergent"},
        ],
    }  # fmt: skip


@pytest.fixture
def gateway(tmp_path: Path, ha_broker: Broker, shop: ShopServer) -> Iterator[GatewayProcess]:
    # Its own id, so its entities never meet another test's in the session's HA.
    gid = f"ha{uuid.uuid4().hex[:8]}"
    gw = GatewayProcess(
        tmp_path / "gw", _config(gid), broker_url=ha_broker.url, shop_url=shop.url,
        shop_token=shop.token,
    )  # fmt: skip
    try:
        yield gw
    finally:
        gw.close()


def _entity(ha: HomeAssistant, domain: str, friendly_suffix: str, gid: str) -> str:
    for state in ha.get("/api/states"):
        name = str(state["attributes"].get("friendly_name", ""))
        entity_id = str(state["entity_id"])
        if (
            entity_id.startswith(f"{domain}.")
            and gid in entity_id
            and name.endswith(friendly_suffix)
        ):
            return entity_id
    raise AssertionError(f"no {domain} entity named '… {friendly_suffix}' for {gid}")


def _complaints(ha: HomeAssistant, mark: int, gid: str) -> list[str]:
    """What the MQTT integration or the template engine complained about since ``mark``."""
    return [
        line
        for line in ha.log_since(mark).splitlines()
        if (" WARNING " in line or " ERROR " in line)
        and ("components.mqtt" in line or "helpers.template" in line or gid in line)
    ]


def _found(ha: HomeAssistant, domain: str, suffix: str, gid: str) -> str:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        entity = _try(ha, domain, suffix, gid)
        if entity:
            return entity
        time.sleep(0.2)
    return _entity(ha, domain, suffix, gid)  # raises, naming what is missing


def _press(ha: HomeAssistant, entity_id: str) -> None:
    """Press a button entity the way the household does: in Home Assistant, which
    publishes the entity's payload on its command topic."""
    ha.post("/api/services/button/press", {"entity_id": entity_id})


def test_entities_appear_with_states_and_no_schema_warnings(
    home_assistant: HomeAssistant, gateway: GatewayProcess, ha_broker: Broker, shop: ShopServer
) -> None:
    ha, gid = home_assistant, gateway.gateway_id
    mark = ha.log_mark()
    with Publisher(ha_broker.url) as wire:
        # Everything the gateway tells Home Assistant about itself, from the start.
        wire.subscribe(f"reorder/{gid}/state/gateway")
        gateway.start()
        gateway.wait_ready()
        order = _found(ha, "sensor", "detergent order", gid)
        broker_link = _found(ha, "binary_sensor", "broker connection", gid)
        ha.wait_state(order, lambda s: s["state"] == "none")
        ha.wait_state(broker_link, lambda s: s["state"] == "on")
        # The shop was probed at the start: known before anything was ordered.
        shop_link = _found(ha, "binary_sensor", "shop connection", gid)
        ha.wait_state(shop_link, lambda s: s["state"] == "on")
        assert shop.orders() == []
        # Never "off" while connected, not even for the first announce.
        told = [json.loads(m.payload) for m in wire.messages() if m.payload]
        assert told and all(t["broker"] == "ON" for t in told), told

    # A press in Home Assistant orders; its "last decision" stays "ordered" once the
    # shop's answers come in (they are the order sensor's), which names the shop's id.
    decision = _found(ha, "sensor", "laundry last decision", gid)
    _press(ha, _found(ha, "button", "laundry: paid order of 1 × detergent", gid))
    ha.wait_state(decision, lambda s: s["state"] == "ordered")
    accepted = ha.wait_state(order, lambda s: s["state"] == "accepted")
    (placed,) = shop.orders("TIDE-PODS-42")
    assert accepted["attributes"]["order"] == placed["id"]
    assert ha.state(decision)["state"] == "ordered"  # type: ignore[index]

    # Consent: the pantry's press holds the coffee; Confirm in Home Assistant sends it.
    coffee = _found(ha, "sensor", "coffee order", gid)
    _press(ha, _found(ha, "button", "pantry: paid order of 1 × coffee", gid))
    ha.wait_state(_found(ha, "sensor", "pantry last decision", gid), lambda s: s["state"] == "held")
    assert shop.orders("LAVAZZA-1KG") == []
    _press(ha, _found(ha, "button", "coffee: confirm the paid order of 1 × coffee", gid))
    ha.wait_state(coffee, lambda s: s["state"] == "accepted")
    assert len(shop.orders("LAVAZZA-1KG")) == 1
    assert "confirmed via home_assistant" in gateway.current_log()

    # Removing a button: its entities go, and Home Assistant reads no empty state.
    spare = _found(ha, "sensor", "spare last decision", gid)
    _press(ha, _found(ha, "button", "spare: paid order of 1 × detergent", gid))
    ha.wait_state(spare, lambda s: s["state"] in ("ordered", "absorbed"))
    code, _ = gateway.terminate()
    assert code == 0
    gateway.config["buttons"] = [b for b in gateway.config["buttons"] if b["name"] != "spare"]
    gateway.config_path.write_text(json.dumps(gateway.config))
    gateway.start()
    gateway.wait_ready()
    wait_until(
        lambda: "cleared the retained state of 1 removed devices" in gateway.current_log(),
        what="the removed button's state cleared",
    )
    wait_until(lambda: ha.state(spare) is None, what="Home Assistant dropped the entity")
    assert _complaints(ha, mark, gid) == []


def _try(ha: HomeAssistant, domain: str, suffix: str, gid: str) -> str:
    try:
        return _entity(ha, domain, suffix, gid)
    except AssertionError:
        return ""
