"""The shipped YAML files load, cover every device family, and document every option."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from devices import profile_names
from gateway.config.load import load_config, secret_value
from gateway.config.models import (
    ButtonConfig,
    CommerceSection,
    Config,
    GatewaySection,
    HomeAssistantSection,
    LimitsSection,
    MetricsSection,
    MqttSection,
    NotifySection,
    ProductConfig,
    SensorConfig,
    WebhookSection,
    WebSection,
)

ROOT = Path(__file__).resolve().parents[2]
CONFIG_FILES = sorted((ROOT / "config").rglob("*.yaml"))

SECTIONS: dict[str, type[BaseModel]] = {
    "gateway": GatewaySection,
    "mqtt": MqttSection,
    "commerce": CommerceSection,
    "limits": LimitsSection,
    "metrics": MetricsSection,
    "homeassistant": HomeAssistantSection,
    "notify": NotifySection,
    "products": ProductConfig,
    "buttons": ButtonConfig,
    "sensors": SensorConfig,
}
# Sections the example shows commented out, as the alternative to one above.
ALTERNATIVE_SECTIONS: dict[str, type[BaseModel]] = {"shops": WebhookSection, "web": WebSection}


@pytest.fixture
def credentials(tmp_path: Path) -> dict[str, str]:
    """What the shipped files expect from the environment (systemd credentials included)."""
    for name in ("shop-token", "mqtt-password"):
        (tmp_path / name).write_text("secret-from-a-file\n")
        (tmp_path / name).chmod(0o600)
    return {"SHOP_TOKEN": "secret-from-env", "CREDENTIALS_DIRECTORY": str(tmp_path)}


def test_the_shipped_files_are_all_found() -> None:
    names = {path.relative_to(ROOT / "config").as_posix() for path in CONFIG_FILES}
    assert {"gateway.example.yaml", "demo.yaml"} <= names
    assert len([n for n in names if n.startswith("examples/")]) >= 7


@pytest.mark.parametrize("path", CONFIG_FILES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_shipped_file_loads_without_errors(path: Path, credentials: dict[str, str]) -> None:
    loaded = load_config(path, env=credentials)
    assert loaded.config.products
    assert loaded.config.buttons or loaded.config.sensors
    token = secret_value(loaded.config.commerce.token)
    assert token in ("secret-from-env", "secret-from-a-file", "demo-token")


def test_every_device_profile_has_an_example(credentials: dict[str, str]) -> None:
    used = set()
    for path in (ROOT / "config" / "examples").glob("*.yaml"):
        config = load_config(path, env=credentials).config
        used |= {b.profile for b in config.buttons} | {s.profile for s in config.sensors}
    assert set(profile_names()) <= used
    gpio = load_config(ROOT / "config/examples/gpio.yaml", env=credentials).config
    assert all(b.gpio is not None for b in gpio.buttons)


def test_the_demo_is_what_the_demo_script_expects() -> None:
    config = load_config(ROOT / "config/demo.yaml", env={}).config
    assert (config.gateway.id, config.gateway.state_dir) == ("demo", "./demo-state")
    assert config.gateway.pin_factory == "mock"
    assert config.mqtt.url == "mqtt://127.0.0.1:1883"
    assert config.commerce.base_url == "http://127.0.0.1:8080/api/v1"
    assert secret_value(config.commerce.token) == "demo-token"
    assert config.metrics.port == 0
    detergent, coffee = config.products["detergent"], config.products["coffee"]
    assert (detergent.sku, detergent.one_open_order) == ("TIDE-PODS-42", True)
    assert (coffee.sku, coffee.quantity) == ("LAVAZZA-1KG", 2)
    buttons = {b.name: (b.gpio, b.led, b.mqtt, b.profile, b.product) for b in config.buttons}
    assert buttons == {
        "laundry": (17, 27, None, None, "detergent"),
        "pantry": (None, None, "zigbee2mqtt/pantry_button", "zigbee2mqtt", "coffee"),
        "hallway": (None, None, "reorder/demo-devices/hallway", "reorder-button", "detergent"),
    }
    sensors = {
        s.name: (s.mqtt, s.profile, s.value, s.product, s.reorder_below, s.rearm_above, s.settle)
        for s in config.sensors
    }
    assert sensors == {
        "coffee-scale": ("sensors/coffee-scale/state", "json", "weight_g", "coffee", 250, 800, 60),
        "detergent-tank": (
            "sensors/detergent-tank/state",
            "json",
            "level_pct",
            "detergent",
            15,
            60,
            60,
        ),
    }


def test_the_demo_follows_its_environment() -> None:
    env = {
        "RG_MQTT_URL": "mqtt://127.0.0.1:18830",
        "RG_SHOP_URL": "http://127.0.0.1:18080/api/v1",
        "RG_SHOP_TOKEN": "other-token",
    }
    config = load_config(ROOT / "config/demo.yaml", env=env).config
    assert config.mqtt.url == env["RG_MQTT_URL"]
    assert config.commerce.base_url == env["RG_SHOP_URL"]
    assert secret_value(config.commerce.token) == "other-token"


def _fields(model: type[BaseModel]) -> list[str]:
    return sorted(model.model_fields)


@pytest.mark.parametrize("section", sorted(SECTIONS))
def test_the_example_documents_every_option(section: str) -> None:
    text = (ROOT / "config/gateway.example.yaml").read_text()
    assert re.search(rf"^{section}:", text, re.MULTILINE)
    missing = [
        key
        for key in _fields(SECTIONS[section])
        if not re.search(rf"^\s*(#\s*)?(- )?{key}:", text, re.MULTILINE)
    ]
    assert missing == []


def test_the_example_names_every_section_of_the_model() -> None:
    assert sorted([*SECTIONS, *ALTERNATIVE_SECTIONS]) == _fields(Config)


@pytest.mark.parametrize("section", sorted(ALTERNATIVE_SECTIONS))
def test_the_example_documents_every_option_of_the_alternatives(section: str) -> None:
    text = (ROOT / "config/gateway.example.yaml").read_text()
    assert re.search(rf"^# {section}:", text, re.MULTILINE)
    missing = [
        key
        for key in _fields(ALTERNATIVE_SECTIONS[section])
        if not re.search(rf"^#\s*{key}:", text, re.MULTILINE)
    ]
    assert missing == []


@pytest.mark.parametrize("section", sorted(SECTIONS))
def test_the_documentation_describes_every_option(section: str) -> None:
    text = (ROOT / "docs/configuration.md").read_text()
    assert f"`{section}`" in text
    missing = [key for key in _fields(SECTIONS[section]) if f"`{key}`" not in text]
    assert missing == []


def test_shipped_files_hold_no_real_secrets() -> None:
    for path in CONFIG_FILES:
        for line in path.read_text().splitlines():
            match = re.match(r"\s*(token|password):\s*(\S+)", line)
            if match:
                assert match.group(2).startswith("${"), f"{path}: {line}"
