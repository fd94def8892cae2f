"""Metrics, health and ``reorder-gateway status`` against the gateway as a subprocess.

The metrics URL is read from the status file (the port is ephemeral); the numbers
are checked against what the test sent through a real mosquitto to a real shop.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from firmware_sim.shop.server import ShopServer
from gateway.ops.status import STATUS_FILE
from tests.support.broker import Broker
from tests.support.gateway import REPO, GatewayProcess, press_payload
from tests.support.publisher import Publisher, wait_until
from tests.support.shop import shop_fixture  # noqa: F401  (registers "shop")

CONFIG = {
    "metrics": {"enabled": True, "host": "127.0.0.1", "port": 0},
    "sensors": [
        {
            "name": "scale",
            "mqtt": "sensors/scale",
            "profile": "json",
            "value": "weight_g",
            "unit": "g",
            "product": "detergent",
            "reorder_below": 250,
            "rearm_above": 800,
        }
    ],
}

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture
def gateway(tmp_path: Path, broker: Broker, shop: ShopServer) -> Iterator[GatewayProcess]:
    gw = GatewayProcess(
        tmp_path / "gw", CONFIG, broker_url=broker.url, shop_url=shop.url, shop_token=shop.token
    )
    try:
        yield gw
    finally:
        gw.close()


def metrics_url(gw: GatewayProcess) -> str:
    def has_url() -> bool:
        try:
            return bool(json.loads((gw.state_dir / STATUS_FILE).read_text()).get("metrics"))
        except (OSError, ValueError):
            return False

    wait_until(has_url, what="the status file names the metrics endpoint")
    return str(json.loads((gw.state_dir / STATUS_FILE).read_text())["metrics"])


def scrape(url: str) -> Samples:
    response = httpx.get(f"{url}/metrics", timeout=5)
    assert response.status_code == 200
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def status(gw: GatewayProcess, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", "status", "--config", str(gw.config_path), *extra],
        cwd=gw.workdir,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        check=False,
        text=True,
        timeout=30,
    )


def test_metrics_health_and_status(
    gateway: GatewayProcess, broker: Broker, shop: ShopServer
) -> None:
    gateway.start()
    gateway.wait_ready()
    url = metrics_url(gateway)
    assert url.startswith("http://127.0.0.1:")
    assert f"metrics: serving {url}/metrics" in gateway.current_log()

    with Publisher(broker.url) as device:
        device.publish(gateway.button_topic, press_payload("m1", 1))
        device.publish(gateway.button_topic, press_payload("m1", 1))  # a re-send: duplicate
        device.publish(gateway.button_topic, b"{not json")
        device.publish("sensors/scale", b'{"weight_g": 900}')
        device.publish("sensors/scale", b"x" * 9000)  # above mqtt.max_payload (8192)

    def settled() -> bool:
        s = scrape(url)
        return (
            value(s, "reorder_orders", state="accepted") == 1.0
            and value(s, "reorder_invalid_payloads_total", reason="oversized") == 1.0
            and value(s, "reorder_events_total", device="scale", kind="reading") == 1.0
            and value(s, "reorder_decisions_total", outcome="duplicate") == 1.0
        )

    wait_until(settled, 20, "metrics to show the order, the duplicate and the drops")
    s = scrape(url)
    assert value(s, "reorder_events_total", device="e2e-button", kind="press") == 1.0
    assert value(s, "reorder_events_total", device="e2e-button", kind="duplicate") == 1.0
    assert value(s, "reorder_events_total", device="e2e-button", kind="invalid") == 1.0
    assert value(s, "reorder_decisions_total", outcome="ordered") == 1.0
    assert value(s, "reorder_duplicates_dropped_total") == 1.0
    assert value(s, "reorder_invalid_payloads_total", reason="unparsable") == 1.0
    assert value(s, "reorder_queue_depth") == 0.0
    assert value(s, "reorder_oldest_queued_age_seconds") == 0.0
    assert value(s, "reorder_mqtt_connected") == 1.0
    assert value(s, "reorder_shop_reachable", shop="default") == 1.0
    assert value(s, "reorder_send_seconds_count", outcome="accepted") == 1.0
    assert len(shop.orders()) == 1

    assert httpx.get(f"{url}/healthz", timeout=5).status_code == 200
    ready = httpx.get(f"{url}/readyz", timeout=5)
    assert (ready.status_code, ready.json()["status"]) == (200, "ok")

    wait_until(lambda: "e2e-button: ordered" in status(gateway).stdout, what="status events")
    live = status(gateway)
    assert live.returncode == 0, live.stderr
    assert "running" in live.stdout and "connected" in live.stdout
    assert "reachable" in live.stdout
    as_json = json.loads(status(gateway, "--json").stdout)
    assert as_json["open_orders"][0]["state"] == "accepted"
    assert as_json["mqtt"]["connected"] is True

    # Without a broker the gateway is alive but not ready, and says why.
    broker.stop()
    wait_until(lambda: httpx.get(f"{url}/readyz", timeout=5).status_code == 503, what="503")
    not_ready = httpx.get(f"{url}/readyz", timeout=5).json()
    assert not_ready["reasons"] == ["MQTT is not connected and subscribed"]
    assert httpx.get(f"{url}/healthz", timeout=5).status_code == 200
    assert value(scrape(url), "reorder_mqtt_connected") == 0.0

    code, _ = gateway.terminate()
    assert code == 0
    offline = status(gateway)
    assert offline.returncode == 3
    assert "NOT running" in offline.stdout and "stopped cleanly" in offline.stdout
    assert "detergent" in offline.stdout and "accepted" in offline.stdout
    assert stat_mode(gateway.state_dir / STATUS_FILE) == 0o600


def stat_mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_status_without_any_state(tmp_path: Path, broker: Broker, shop: ShopServer) -> None:
    gw = GatewayProcess(
        tmp_path / "never", CONFIG, broker_url=broker.url, shop_url=shop.url, shop_token=shop.token
    )
    try:
        result = status(gw)
    finally:
        gw.close()
    assert result.returncode == 1
    assert "NOT running" in result.stdout and "never run" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


@pytest.mark.parametrize("content", [b"", b'{"gateway": "e2e", "pid": 4'], ids=["empty", "torn"])
def test_an_empty_or_torn_status_file_is_survived_and_rewritten(
    gateway: GatewayProcess, content: bytes
) -> None:
    """What a power cut could leave before the status file was written durably."""
    gateway.start()
    gateway.wait_ready()
    gateway.kill()
    status_file = gateway.state_dir / STATUS_FILE
    status_file.write_bytes(content)

    offline = status(gateway)
    assert offline.returncode == 3, offline.stdout + offline.stderr
    assert "NOT running" in offline.stdout
    assert "Traceback" not in offline.stdout + offline.stderr

    gateway.start()
    gateway.wait_ready()

    def rewritten() -> bool:
        try:
            document = json.loads(status_file.read_text())
        except ValueError:
            return False
        return bool(document.get("running")) and document.get("pid") == gateway.pid

    wait_until(rewritten, what="a whole status file from the new start")
    assert status(gateway).returncode == 0
    assert stat_mode(status_file) == 0o600
