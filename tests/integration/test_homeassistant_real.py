"""Discovery read back from a real Home Assistant 2024.3.3 (tests/support/homeassistant.py):
the entities it made from the gateway's discovery configs, their states through its
REST API, and its log for the warnings a schema mismatch causes.
"""

from __future__ import annotations

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
from tests.support.publisher import Publisher
from tests.support.shop import shop_fixture  # noqa: F401  (registers "shop")


def _config(gid: str) -> dict[str, Any]:
    return {
        "gateway": {"id": gid},
        "homeassistant": {"discovery": True, "prefix": "homeassistant"},
        "products": {"detergent": {"sku": "TIDE-PODS-42"}},
        "buttons": [
            {"name": "laundry", "mqtt": f"home/{gid}/b1", "profile": "reorder-button",
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


def test_entities_appear_with_states_and_no_schema_warnings(
    home_assistant: HomeAssistant, gateway: GatewayProcess, ha_broker: Broker
) -> None:
    ha, gid = home_assistant, gateway.gateway_id
    mark = ha.log_mark()
    gateway.start()
    gateway.wait_ready()

    def found(domain: str, suffix: str) -> str:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            entity = _try(ha, domain, suffix, gid)
            if entity:
                return entity
            time.sleep(0.2)
        return _entity(ha, domain, suffix, gid)  # raises, naming what is missing

    order = found("sensor", "detergent order")
    broker_link = found("binary_sensor", "broker connection")
    ha.wait_state(order, lambda s: s["state"] == "none")
    ha.wait_state(broker_link, lambda s: s["state"] == "on")

    with Publisher(ha_broker.url) as client:
        client.publish(f"reorder/{gid}/laundry/press", b"{}")
    ha.wait_state(order, lambda s: s["state"] in ("queued", "accepted"))

    # Nothing the MQTT integration or the template engine complained about while it
    # read this gateway's discovery configs and states.
    complaints = [
        line
        for line in ha.log_since(mark).splitlines()
        if (" WARNING " in line or " ERROR " in line)
        and ("components.mqtt" in line or "helpers.template" in line or gid in line)
    ]
    assert complaints == []


def _try(ha: HomeAssistant, domain: str, suffix: str, gid: str) -> str:
    try:
        return _entity(ha, domain, suffix, gid)
    except AssertionError:
        return ""
