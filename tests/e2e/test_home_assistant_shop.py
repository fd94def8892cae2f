"""Issue 12: the gateway as a process putting presses on a real Home Assistant's
shopping list (2024.3.3, tests/support/homeassistant.py) through the kill -9 loop,
lost answers and an outage — counted on the list: exactly one marked item per press.
"""

from __future__ import annotations

import json
import random
import time

import pytest
import yaml

from gateway.ops.status import read_status
from tests.e2e.conftest import MakeGateway, MakeShop, outbox_depth, outbox_states
from tests.e2e.test_kill_loop import press_under_kills
from tests.support.answer_dropper import AnswerDropper
from tests.support.broker import Broker
from tests.support.gateway import GatewayProcess, press_payload
from tests.support.homeassistant import HomeAssistant
from tests.support.proxy import TcpProxy
from tests.support.publisher import Publisher, wait_until

pytestmark = pytest.mark.e2e


def use_home_assistant(gw: GatewayProcess, ha: HomeAssistant, url: str | None = None) -> None:
    """The harness's commerce: section replaced by the shopping list under shops:."""
    token = gw.workdir / "ha-token"
    token.write_text(ha.token)
    token.chmod(0o600)
    config = dict(gw.config)
    del config["commerce"]
    config["shops"] = {
        "family": {
            "adapter": "home_assistant",
            "url": url or ha.url,
            "token_file": str(token),
            "timeout": "5s",
            "connect_timeout": "1s",
        }
    }
    config["products"]["detergent"].update(shop="family")
    gw.config = config
    gw.config_path.write_text(yaml.safe_dump(config, sort_keys=False))


def gateway_items(ha: HomeAssistant) -> list[str]:
    return [str(i["name"]) for i in ha.shopping_list() if " · rg:" in str(i["name"])]


def test_home_assistant_kill_loop_every_press_one_item(
    broker: Broker, make_shop: MakeShop, make_gateway: MakeGateway, home_assistant: HomeAssistant
) -> None:
    home_assistant.clear_shopping_list()
    rng = random.Random("home-assistant-kill-loop")
    gw = make_gateway(shop=make_shop())
    use_home_assistant(gw, home_assistant)
    gw.start().wait_ready()
    ids = [f"ha-press-{i:03d}" for i in range(20)]
    # One in ten pressed twice: a button re-sending a press it got no PUBACK for.
    log = press_under_kills(gw, broker, ids, rng, client_id="ha-kill-button", max_gap=0.25)
    assert log.kills >= 2, log

    def done() -> bool:
        return len(gateway_items(home_assistant)) >= len(ids) and outbox_depth(gw) == 0

    try:
        wait_until(done, 90.0, "every press on the list and the outbox drained")
    except AssertionError:
        raise AssertionError(
            f"{len(gateway_items(home_assistant))} items for {len(ids)} presses; outbox "
            f"{outbox_states(gw)}; gateway log tail:\n{gw.tail()}"
        ) from None
    time.sleep(1.0)  # a late duplicate would show up now
    names = gateway_items(home_assistant)
    # One key per press, so one marker per press: as many items as presses, none twice.
    assert len(names) == len(ids), names
    assert len(set(names)) == len(ids), names
    assert all(name.startswith("detergent · rg:rg1_") for name in names), names
    assert "Traceback" not in gw.log_text(), gw.tail()
    print(f"home assistant kill loop: {len(ids)} presses, {log.kills} SIGKILLs, {gw.starts} starts")


def test_every_first_answer_lost_still_one_item_per_press(
    broker: Broker, make_shop: MakeShop, make_gateway: MakeGateway, home_assistant: HomeAssistant
) -> None:
    """Each press's first add is done by Home Assistant but its answer never reaches
    the gateway: only the marker lookup keeps the retry from adding a second item."""
    home_assistant.clear_shopping_list()
    seen: set[str] = set()

    def first_add_of_each(method: str, path: str, body: bytes) -> bool:
        if (method, path) != ("POST", "/api/shopping_list/item"):
            return False
        name = str(json.loads(body)["name"])
        first = name not in seen
        seen.add(name)
        return first

    proxy = AnswerDropper(home_assistant.url, first_add_of_each).start()
    try:
        gw = make_gateway(shop=make_shop())
        use_home_assistant(gw, home_assistant, url=proxy.url)
        gw.start().wait_ready()
        ids = [f"ha-lost-{i}" for i in range(4)]
        with Publisher(broker.url, client_id="ha-lost-button", persistent=True) as button:
            for seq, event_id in enumerate(ids):
                button.publish(gw.button_topic, press_payload(event_id, seq), qos=1)
        try:
            wait_until(
                lambda: len(gateway_items(home_assistant)) >= len(ids) and outbox_depth(gw) == 0,
                30.0,
                "every press on the list and the outbox drained",
            )
        except AssertionError:
            raise AssertionError(
                f"{len(gateway_items(home_assistant))} items for {len(ids)} presses, "
                f"{proxy.dropped} answers dropped; outbox {outbox_states(gw)}; "
                f"gateway log tail:\n{gw.tail()}"
            ) from None
        time.sleep(0.5)
    finally:
        proxy.stop()
    names = gateway_items(home_assistant)
    assert proxy.dropped == len(ids), proxy.dropped
    assert len(names) == len(set(names)) == len(ids), names
    assert "Traceback" not in gw.log_text(), gw.tail()


def family_reachable(gw: GatewayProcess) -> object:
    """What the running gateway's status file says of the shopping list's reachability."""
    status = read_status(gw.state_dir) or {}
    return status.get("shop", {}).get("shops", {}).get("family", {}).get("reachable", "no file")


def test_presses_while_home_assistant_is_unreachable_are_added_once_when_it_is_back(
    broker: Broker, make_shop: MakeShop, make_gateway: MakeGateway, home_assistant: HomeAssistant
) -> None:
    """The line to Home Assistant is cut (the shared instance keeps running): presses
    wait in the outbox, none reaches the list; back again, one item per press."""
    home_assistant.clear_shopping_list()
    port = int(home_assistant.url.rsplit(":", 1)[1])
    with TcpProxy(("127.0.0.1", port)) as line:
        gw = make_gateway(shop=make_shop())
        use_home_assistant(gw, home_assistant, url=f"http://127.0.0.1:{line.port}")
        gw.start().wait_ready()
        # The start-up probe (GET /api/) tells before any press.
        wait_until(lambda: family_reachable(gw) is True, 15.0, "the list known reachable")
        line.set_mode("refuse")
        ids = [f"ha-outage-{i}" for i in range(4)]
        with Publisher(broker.url, client_id="ha-outage-button", persistent=True) as button:
            for seq, event_id in enumerate(ids):
                button.publish(gw.button_topic, press_payload(event_id, seq), qos=1)
        wait_until(lambda: outbox_depth(gw) == len(ids), 15.0, "every press in the outbox")
        wait_until(lambda: family_reachable(gw) is False, 15.0, "the outage in the status")
        assert gateway_items(home_assistant) == []
        assert outbox_states(gw) == {"queued": len(ids)}, outbox_states(gw)

        line.set_mode("pass")
        try:
            wait_until(
                lambda: len(gateway_items(home_assistant)) >= len(ids) and outbox_depth(gw) == 0,
                30.0,
                "every press on the list and the outbox drained",
            )
        except AssertionError:
            raise AssertionError(
                f"{len(gateway_items(home_assistant))} items for {len(ids)} presses; outbox "
                f"{outbox_states(gw)}; gateway log tail:\n{gw.tail()}"
            ) from None
        time.sleep(0.5)  # a late duplicate would show up now
        names = gateway_items(home_assistant)
        assert len(names) == len(set(names)) == len(ids), names
        wait_until(lambda: family_reachable(gw) is True, 15.0, "reachable again in the status")
    assert "the shop is unreachable" in gw.log_text(), gw.tail()
    assert "Traceback" not in gw.log_text(), gw.tail()
