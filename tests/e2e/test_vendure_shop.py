"""Issue 12: the gateway as a process ordering from a real Vendure, through the kill -9
loop and an outage of the shop — counted in Vendure: exactly one paid order per press.

Orders are counted by the event id the gateway writes into each payment's metadata,
and by ``gatewayKey`` (unique in Vendure, so a second order for one key cannot exist;
an unpaid keyed order left over would show as a draft).
"""

from __future__ import annotations

import random

import pytest
import yaml

from tests.e2e.conftest import MakeGateway, MakeShop, outbox_depth, outbox_states
from tests.e2e.test_kill_loop import press_under_kills
from tests.support.broker import Broker
from tests.support.gateway import GatewayProcess, press_payload
from tests.support.publisher import Publisher, wait_until
from tests.support.vendure import ADMIN_PASSWORD, VendureServer

pytestmark = pytest.mark.e2e


def use_vendure(gw: GatewayProcess, vendure: VendureServer) -> None:
    """The harness's commerce: section replaced by one Vendure shop under shops:."""
    password = gw.workdir / "vendure-password"
    password.write_text(ADMIN_PASSWORD)
    password.chmod(0o600)
    shop = {
        "adapter": "vendure",
        "admin_api_url": vendure.admin_url,
        "channel_token": "household",
        "admin_user": "superadmin",
        "admin_password_file": str(password),
        "customer_email": "household@example.org",
        "timeout": "5s",
        "connect_timeout": "1s",
    }
    config = dict(gw.config)
    del config["commerce"]
    config["shops"] = {"vendure": shop}
    config["products"]["detergent"].update(sku="ARIEL-3L", shop="vendure")
    gw.config = config
    gw.config_path.write_text(yaml.safe_dump(config, sort_keys=False))


def assert_once_in_vendure(
    vendure: VendureServer, gw: GatewayProcess, ids: list[str], timeout: float
) -> None:
    expected = set(ids)

    def done() -> bool:
        return set(vendure.orders_by_event()) >= expected and outbox_depth(gw) == 0

    try:
        wait_until(done, timeout, "every press paid in Vendure and the outbox drained")
    except AssertionError:
        missing = sorted(expected - set(vendure.orders_by_event()))
        raise AssertionError(
            f"{len(missing)} presses not ordered (first: {missing[:5]}); "
            f"outbox {outbox_states(gw)}; gateway log tail:\n{gw.tail()}"
        ) from None
    counts = {e: n for e, n in vendure.orders_by_event().items() if e in expected}
    assert counts == dict.fromkeys(expected, 1), {e: n for e, n in counts.items() if n != 1}
    assert "Traceback" not in gw.log_text(), gw.tail()


def test_vendure_kill_loop_every_press_one_order(
    broker: Broker, make_shop: MakeShop, make_gateway: MakeGateway, vendure: VendureServer
) -> None:
    rng = random.Random("vendure-kill-loop")
    gw = make_gateway(shop=make_shop())
    use_vendure(gw, vendure)
    gw.start().wait_ready()
    ids = [f"vendure-press-{i:03d}" for i in range(40)]
    # One in ten pressed twice: a button re-sending a press it got no PUBACK for.
    log = press_under_kills(gw, broker, ids, rng, client_id="vendure-kill-button", max_gap=0.25)
    assert log.kills >= 3, log
    assert_once_in_vendure(vendure, gw, ids, timeout=120.0)
    print(f"vendure kill loop: {len(ids)} presses, {log.kills} SIGKILLs, {gw.starts} starts")


def test_vendure_outage_every_press_ordered_once(
    broker: Broker, make_shop: MakeShop, make_gateway: MakeGateway, vendure: VendureServer
) -> None:
    gw = make_gateway(shop=make_shop())
    use_vendure(gw, vendure)
    gw.start().wait_ready()
    ids = [f"vendure-outage-{i}" for i in range(6)]
    vendure.stop()
    try:
        with Publisher(broker.url, client_id="vendure-outage-button", persistent=True) as button:
            for seq, event_id in enumerate(ids):
                button.publish(gw.button_topic, press_payload(event_id, seq), qos=1)
        wait_until(
            lambda: sum(1 for e in gw.events.items if e.get("outcome") == "ordered") == len(ids),
            20.0,
            "every press decided",
        )
        assert outbox_depth(gw) == len(ids)
    finally:
        vendure.start()
    assert_once_in_vendure(vendure, gw, ids, timeout=90.0)
