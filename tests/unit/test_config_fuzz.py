"""Generated configuration files against the loader: nothing but ConfigError escapes.

Three kinds of input, about 2,100 files in all:

1. random text, including YAML's own punctuation (anchors, aliases, merge keys,
   tags, flow collections, ``${VAR}`` references) and bytes that are not UTF-8;
2. random structures: a complete, valid configuration with one to three of its
   values replaced by random YAML values, keys removed or junk keys added;
3. the same structures written with the installer's usual mistakes in layout
   (tabs, broken indentation, a stray colon).

For every file, :func:`load_config` either returns a config or raises
:class:`ConfigError` whose lines all start with the file's name, and no line
ever shows the shop token or the MQTT password.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from gateway.config.load import ConfigError, LoadedConfig, load_config

SHOP_TOKEN = "tok-7d2f9a1c44e8b0"
MQTT_PASSWORD = "pw-b81c0e59d3a7"
ENV = {"SHOP_TOKEN": SHOP_TOKEN, "STATE": "/var/lib/rg-fuzz"}

# Every section and most options, so a mutation can land anywhere.
VALID: dict[str, Any] = {
    "gateway": {"id": "kitchen", "state_dir": "${STATE:-/var/lib/rg}", "pin_factory": "mock"},
    "mqtt": {
        "url": "mqtts://broker.lan:8883",
        "username": "gw-user",
        "password": MQTT_PASSWORD,
        "keepalive": "30s",
        "session_expiry": "7d",
        "max_payload": 8192,
        "topic_prefix": "reorder",
    },
    "commerce": {
        "base_url": "https://shop.example/api/v1",
        "token": "${SHOP_TOKEN}",
        "timeout": "10s",
        "connect_timeout": "5s",
        "expire_after": "7d",
        "poll_interval": "10m",
        "verify_tls": True,
    },
    "limits": {"max_orders_per_day": 10, "dedupe_window": "2s", "dedupe_retention": "30d"},
    "metrics": {"enabled": True, "host": "127.0.0.1", "port": 9464},
    "homeassistant": {"discovery": True, "prefix": "homeassistant"},
    "products": {
        "detergent": {"sku": "TIDE-PODS-42", "one_open_order": True, "cooldown": "1h"},
        "coffee": {"sku": "LAVAZZA-1KG", "quantity": 2, "max_per_day": 3},
    },
    "buttons": [
        {"name": "laundry", "product": "detergent", "gpio": 17, "led": 27, "hold_time": "2s"},
        {"name": "pantry", "product": "coffee", "mqtt": "z2m/pantry", "profile": "zigbee2mqtt"},
        {
            "name": "hall",
            "product": "detergent",
            "mqtt": "home/hall",
            "profile": "json",
            "action": "action",
            "event_id": "msg_id",
        },
        {"name": "garage", "product": "detergent", "mqtt": "stat/g/RESULT", "profile": "tasmota"},
    ],
    "sensors": [
        {
            "name": "coffee-scale",
            "product": "coffee",
            "mqtt": "sensors/scale",
            "value": "weight_g",
            "reorder_below": 250,
            "rearm_above": 800,
            "settle": "60s",
        }
    ],
}

FUZZ = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # One directory for all examples: hypothesis runs a test body many times per fixture.
    return tmp_path_factory.mktemp("config-fuzz")


def load(workdir: Path, content: bytes) -> LoadedConfig | None:
    """Load ``content``; return the config, or None after checking the ConfigError."""
    path = workdir / "gateway.yaml"
    path.write_bytes(content)
    path.chmod(0o600)
    try:
        return load_config(path, env=ENV)
    except ConfigError as exc:
        assert exc.messages, "a ConfigError must say what is wrong"
        for line in exc.messages:
            assert line.startswith(str(path)), line
            assert SHOP_TOKEN not in line and MQTT_PASSWORD not in line, line
        return None


def test_the_unmutated_structure_loads(workdir: Path) -> None:
    # Guards the properties below: mutations start from a config that is valid.
    loaded = load(workdir, yaml.safe_dump(VALID).encode())
    assert loaded is not None
    assert loaded.config.commerce.token is not None
    assert loaded.config.commerce.token.get_secret_value() == SHOP_TOKEN


# ------------------------------------------------------------------ random text

_YAML_PIECES = st.sampled_from(
    [
        "gateway:", "products:", "buttons:", "sensors:", "commerce:", "mqtt:", "  id: kitchen",
        "  - name: b", "    gpio: 17", "sku: X", ": ", ":", "- ", "-", "  ", "\t", "\n", "#",
        "&a ", "*a", "<<: *a", "!!str ", "!!python/object:os.system ", "!!binary ", "!tag ",
        "{", "}", "[", "]", ",", "? ", "|", ">", "'", '"', "${", "${X}", "${SHOP_TOKEN}",
        "${X:-", "}", "~", "null", "yes", "1e999", "0x1F", ".nan", "%YAML 1.1\n", "---\n",
        "...\n", "\x00", "\ufeff", "é", "\u2028",
    ]
)  # fmt: skip

_text = st.one_of(
    st.text(max_size=300),
    st.lists(_YAML_PIECES | st.text(max_size=8), max_size=60).map("".join),
)


@settings(FUZZ, max_examples=700)
@given(text=_text)
def test_random_text_raises_only_config_error(workdir: Path, text: str) -> None:
    load(workdir, text.encode("utf-8", "surrogatepass"))


@settings(FUZZ, max_examples=200)
@given(raw=st.binary(max_size=300))
def test_random_bytes_raise_only_config_error(workdir: Path, raw: bytes) -> None:
    load(workdir, raw)


# ------------------------------------------------------------------ random structures

_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
    st.text(max_size=20),
    st.sampled_from(["60s", "-1s", "0ms", "1e3s", "1.5.2s", "mqtt://", "http://[::1", "json"]),
)
_value = st.recursive(
    _scalar,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=5,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, child in node.items():
            out += _paths(child, (*prefix, key))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            out += _paths(child, (*prefix, index))
    return out


ALL_PATHS = _paths(VALID)


def _mutate(document: dict[str, Any], path: tuple[Any, ...], how: str, value: Any) -> None:
    parent: Any = document
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    if how == "replace":
        parent[last] = value
    elif how == "delete":
        del parent[last]
    elif how == "add-key" and isinstance(parent, dict):
        parent[str(value)[:12] or "x"] = value
    elif how == "duplicate-entry" and isinstance(parent, list):
        parent.append(copy.deepcopy(parent[last]))


_mutation = st.tuples(
    st.sampled_from(ALL_PATHS),
    st.sampled_from(["replace", "replace", "replace", "delete", "add-key", "duplicate-entry"]),
    _value,
)


@st.composite
def _structures(draw: st.DrawFn) -> dict[str, Any]:
    document = copy.deepcopy(VALID)
    for path, how, value in draw(st.lists(_mutation, min_size=1, max_size=3)):
        try:
            _mutate(document, path, how, value)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed or replaced this path's parent
    return document


@settings(FUZZ, max_examples=700)
@given(document=_structures())
def test_random_structures_raise_only_config_error(workdir: Path, document: dict[str, Any]) -> None:
    loaded = load(workdir, yaml.safe_dump(document, allow_unicode=True).encode())
    event("loaded" if loaded is not None else "refused")
    if loaded is not None:
        # Whatever got through is a usable config: products exist, names are unique.
        config = loaded.config
        assert config.products
        names = [b.name for b in config.buttons] + [s.name for s in config.sensors]
        assert len(names) == len(set(names))
        for b in config.buttons:
            assert b.product in config.products


_LAYOUT_MISTAKES = st.sampled_from(
    [
        lambda t: t.replace("  ", "\t", 1),
        lambda t: t.replace("\n  ", "\n   ", 1),
        lambda t: t.replace(": ", " ", 1),
        lambda t: t.replace(":", "::", 1),
        lambda t: t.replace("- ", "-", 1),
        lambda t: t[: len(t) // 2],
        lambda t: t + "\n  stray: [1, 2",
        lambda t: "\ufeff" + t,
    ]
)


@settings(FUZZ, max_examples=300)
@given(document=_structures(), mistake=_LAYOUT_MISTAKES)
def test_layout_mistakes_raise_only_config_error(
    workdir: Path, document: dict[str, Any], mistake: Any
) -> None:
    text = yaml.safe_dump(document, allow_unicode=True)
    load(workdir, mistake(text).encode("utf-8", "surrogatepass"))
