"""``reorder-gateway listen`` as an installer runs it, against a real mosquitto.

It connects with the config's broker settings (here TLS with the config's CA and a
user with a password from a credential file), shows each message with the
decision the gateway would take, suggests YAML for an unconfigured device, and
orders nothing: no outbox appears and it publishes nothing.

Payloads: IKEA E1743 and E1524/E1810 words from zigbee-herdsman-converters
(src/devices/ikea.ts), Shelly Gen1 ``online`` and ``input_event`` from the Shelly
Gen1 MQTT API — the shapes of tests/fixtures/devices/corpus.json.
"""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

from tests.support.broker import Broker, TestCA
from tests.support.gateway import REPO
from tests.support.ports import free_port
from tests.support.publisher import Publisher
from tests.unit.test_listen import BASE, BUTTONS, SHELLY


def _config(tmp_path: Path, url: str, ca: Path | None, password_file: Path | None) -> Path:
    mqtt: dict[str, object] = {"url": url}
    if ca is not None:
        mqtt |= {"ca_file": str(ca), "username": "installer"}
    if password_file is not None:
        mqtt["password_file"] = str(password_file)
    config = {
        **BASE,
        "gateway": {"id": "kitchen", "state_dir": str(tmp_path / "state")},
        "mqtt": mqtt,
        "buttons": BUTTONS,
    }
    path = tmp_path / "gateway.yaml"
    path.write_text(json.dumps(config))
    path.chmod(0o600)
    return path


def _lines(stream: IO[str]) -> queue.Queue[str]:
    out: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in stream:
            out.put(line.rstrip("\n"))

    threading.Thread(target=pump, daemon=True).start()
    return out


def _listen(config: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "gateway", "listen", "--config", str(config), *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture
def tls_broker(tmp_path: Path) -> Iterator[tuple[Broker, Path]]:
    ca = TestCA(tmp_path / "ca")
    broker = Broker(
        tmp_path / "broker", tls=ca.issue("srv", "IP:127.0.0.1"), users={"installer": "s3cret"}
    ).start()
    try:
        yield broker, ca.cert
    finally:
        broker.kill()


def test_listen_shows_each_message_and_what_the_gateway_would_decide(
    tmp_path: Path, tls_broker: tuple[Broker, Path]
) -> None:
    broker, ca = tls_broker
    secret = tmp_path / "mqtt-password"
    secret.write_text("s3cret\n")
    secret.chmod(0o600)
    config = _config(tmp_path, broker.url, ca, secret)
    with Publisher(broker.url, ca_file=ca, auth=("installer", "s3cret")) as admin:
        admin.subscribe("#")
        # A remote's last state, retained by the broker before listen starts.
        admin.publish("zigbee2mqtt/pantry", b'{"action": "on"}', retain=True)
        with _listen(config, "zigbee2mqtt/#", "shellies/#", "--count", "5") as proc:
            assert proc.stdout is not None and proc.stderr is not None
            lines = _lines(proc.stdout)
            first = lines.get(timeout=20)
            assert "press your button now" in first and "Nothing is ordered" in first, first
            admin.publish("zigbee2mqtt/pantry", b'{"action": "on", "battery": 87}')
            admin.publish("zigbee2mqtt/kitchen_remote", b'{"action": "arrow_left_click"}')
            admin.publish(f"{SHELLY}/online", b"true")
            admin.publish(f"{SHELLY}/input_event/0", b'{"event": "S", "event_cnt": 1}')
            assert proc.wait(timeout=20) == 0, proc.stderr.read()
            text = "\n".join(iter_all(lines))
        mine = [m.topic for m in admin.messages()]
    assert "zigbee2mqtt/pantry (retained)" in text
    assert "pantry (zigbee2mqtt): ignored — the broker's retained copy, never a press" in text
    assert "pantry (zigbee2mqtt): battery 87 %" in text
    assert "pantry (zigbee2mqtt): press — would order coffee" in text
    assert (
        "not configured: profile zigbee2mqtt reads a press; to use it, add under buttons:" in text
    )
    assert "mqtt: zigbee2mqtt/kitchen_remote" in text and "model: E1524/E1810" in text
    assert "hall: the device connected" in text
    assert "hall (shelly): press — would order coffee" in text
    assert "s3cret" not in text
    # Placed no order, published nothing: no outbox, only the test's own messages.
    assert not (tmp_path / "state").exists()
    assert sorted(mine) == sorted(
        [
            "zigbee2mqtt/pantry",
            "zigbee2mqtt/pantry",
            "zigbee2mqtt/kitchen_remote",
            f"{SHELLY}/online",
            f"{SHELLY}/input_event/0",
        ]
    )


def iter_all(lines: queue.Queue[str]) -> Iterator[str]:
    while True:
        try:
            yield lines.get(timeout=2)
        except queue.Empty:
            return


def test_listen_without_a_broker_says_why_in_one_line(tmp_path: Path) -> None:
    config = _config(tmp_path, f"mqtt://127.0.0.1:{free_port()}", None, None)
    with _listen(config) as proc:
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert err.startswith("reorder-gateway listen: ") and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1, err
