"""Issue 4 in a running gateway: secrets never reach the logs, even at debug
level, and SIGHUP reloads a valid config but keeps the old one when the new one
is broken."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.e2e.conftest import MakeGateway, MakeShop
from tests.support.broker import Broker
from tests.support.gateway import REPO, press_payload
from tests.support.publisher import Publisher, wait_until

pytestmark = pytest.mark.e2e

MQTT_PASSWORD = "mqtt-pw-Zq81xV"  # mosquitto here allows anyone; the gateway still sends it


def test_secrets_never_appear_in_run_or_check_output(
    broker: Broker, make_shop: MakeShop, make_gateway: MakeGateway
) -> None:
    shop = make_shop()
    env = {"E2E_SHOP_TOKEN": shop.token, "E2E_MQTT_PASSWORD": MQTT_PASSWORD}
    gw = make_gateway(
        {
            "commerce": {"token": "${E2E_SHOP_TOKEN}", "token_file": None},
            "mqtt": {"username": "gateway", "password": "${E2E_MQTT_PASSWORD}"},
        },
        shop=shop,
        extra_env=env,
    )
    gw.start().wait_ready()
    with Publisher(broker.url) as button:
        button.publish(gw.button_topic, press_payload("secret-1", 1), qos=1)
    # The order reaching the shop proves the token was used for real.
    wait_until(lambda: len(shop.orders()) == 1, 20, "the order at the shop")
    code, _ = gw.terminate()
    assert code == 0

    check = subprocess.run(
        [sys.executable, "-m", "gateway", "check", "--config", str(gw.config_path)],
        env={**os.environ, "PYTHONPATH": str(REPO), **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert check.returncode == 0, check.stderr
    log = gw.log_text()
    assert "DEBUG" in log, "the gateway did not log at debug level"
    for secret in (shop.token, MQTT_PASSWORD):
        assert secret not in log
        assert secret not in check.stdout + check.stderr


def test_sighup_reloads_a_valid_config_and_keeps_the_old_one_when_broken(
    broker: Broker, make_shop: MakeShop, make_gateway: MakeGateway
) -> None:
    shop = make_shop()
    gw = make_gateway(shop=shop)
    gw.start().wait_ready()
    config = yaml.safe_load(gw.config_path.read_text())

    # A second button arrives with the new config.
    config["buttons"].append(
        {"name": "pantry", "mqtt": "home/pantry", "profile": "zigbee2mqtt", "product": "detergent"}
    )
    _write(gw.config_path, config)
    os.kill(gw.pid, signal.SIGHUP)
    wait_until(lambda: "configuration reloaded" in gw.current_log(), 15, "the reload")
    with Publisher(broker.url) as pub:
        # The new topic is subscribed right after the reload is logged.
        wait_until(lambda: "home/pantry" in gw.current_log(), 15, "the new subscription")
        pub.publish("home/pantry", b'{"action": "single"}', qos=1)
        gw.events.wait_for(
            lambda evs: any(e.get("device") == "pantry" and e["outcome"] == "ordered" for e in evs),
            15,
        )

        # A broken config: logged with its line, the running one stays.
        gw.config_path.write_text(
            gw.config_path.read_text().replace("one_open_order:", "one_open_ordr:")
        )
        os.kill(gw.pid, signal.SIGHUP)
        wait_until(lambda: "reload refused" in gw.current_log(), 15, "the refusal")
        assert (
            "gateway.yaml:" in gw.current_log()
            and "did you mean 'one_open_order'" in gw.current_log()
        )
        pub.publish(gw.button_topic, press_payload("after-broken-reload", 7), qos=1)
        gw.events.wait_for(
            lambda evs: any(
                e.get("event_id") == "after-broken-reload" and e["outcome"] == "ordered"
                for e in evs
            ),
            15,
        )
    assert gw.running
    code, _ = gw.terminate()
    assert code == 0


def _write(path: Path, config: dict[str, object]) -> None:
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)
