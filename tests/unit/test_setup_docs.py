"""What the set-up installs and the docs tell an installer to type agree with the code.

The demo and the README suggest mosquitto_pub / mosquitto_sub, which Debian ships in
``mosquitto-clients`` apart from the broker; and every ``mosquitto_pub`` line in the
docs for the virtual ``…/press`` and ``…/cancel`` topics is a payload the gateway
accepts as the press (or cancel) it says it is.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from gateway.config.models import Config
from gateway.core.events import ButtonEvent
from gateway.inputs.routing import Router

ROOT = Path(__file__).resolve().parents[2]
DOCS_WITH_PUBLISH = ("README.md", "docs/virtual-topics.md")


def _function(script: str, name: str) -> str:
    match = re.search(rf"^{name}\(\) \{{\n(.*?)^\}}", script, re.S | re.M)
    assert match, f"{name} is not defined"
    return match.group(1)


def test_the_demo_installs_the_client_tools_it_suggests() -> None:
    assert "mosquitto_pub" in (ROOT / "firmware_sim/demo.py").read_text()
    demo = (ROOT / "scripts/demo").read_text()
    assert re.search(r"^rg_setup_mosquitto_clients$", demo, re.M)
    body = _function((ROOT / "scripts/_setup.sh").read_text(), "rg_setup_mosquitto_clients")
    assert "apt-get install -y -qq mosquitto-clients" in body
    assert "sudo apt-get update && sudo apt-get install -y mosquitto-clients" in body


@pytest.mark.parametrize("doc", ["README.md", "docs/operations.md"])
def test_pi_step_1_installs_the_client_tools_the_troubleshooting_uses(doc: str) -> None:
    text = (ROOT / doc).read_text()
    assert "mosquitto_sub" in (ROOT / "README.md").read_text()
    installs = [line for line in text.splitlines() if "apt-get install -y python3-venv" in line]
    assert installs and all("mosquitto-clients" in line.split() for line in installs), installs


def _examples() -> list[tuple[str, str, list[str]]]:
    found = []
    for doc in DOCS_WITH_PUBLISH:
        for line in (ROOT / doc).read_text().splitlines():
            start = line.find("mosquitto_pub")
            if start < 0 or ("/press" not in line and "/cancel" not in line):
                continue
            command = line[start:].split("`")[0]
            found.append((doc, command, shlex.split(command)))
    return found


def test_the_docs_show_press_and_cancel_examples() -> None:
    commands = [command for _, command, _ in _examples()]
    assert any("/press" in c and "-m" in c for c in commands)
    assert any("/press" in c and "-n" in c for c in commands)
    assert any("/cancel" in c for c in commands)


@pytest.mark.parametrize(("doc", "command", "argv"), _examples(), ids=lambda v: str(v)[:60])
def test_every_documented_publish_is_the_press_it_says(
    doc: str, command: str, argv: list[str]
) -> None:
    config = Config.model_validate(
        {
            "gateway": {"id": "kitchen"},
            "commerce": {"base_url": "http://127.0.0.1/api"},
            "products": {"detergent": {"sku": "TIDE"}},
            "buttons": [{"name": "laundry", "product": "detergent", "gpio": 17}],
        }
    )
    topic = argv[argv.index("-t") + 1]
    payload = argv[argv.index("-m") + 1].encode() if "-m" in argv else b""
    assert "-r" not in argv, f"{doc}: a retained message is never a press"
    assert "-m" in argv or "-n" in argv, f"{doc}: {command} sends no payload"
    (event,) = Router.from_config(config).events(
        topic, payload, mid=1, retain=False, dup=False, now=0.0
    )
    assert isinstance(event, ButtonEvent), (doc, command, event)
    assert event.action == ("hold" if topic.endswith("/cancel") else "press")
    assert event.synthetic_id == (b'"id"' not in payload), (doc, command)
