"""The ``adapter: home_assistant`` shop section as ``check`` and ``run`` read it: the
token file read and never shown, and its mistakes reported at their YAML line."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from gateway.commerce import HomeAssistantCommerce, make_backends
from gateway.config.load import ConfigError, check_command, load_config, secret_value, summarize
from gateway.config.models import HomeAssistantShopSection

HA_TOKEN = "ha-tok-5b1e93c0a7"


def _write(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


def _config(shop_lines: str) -> str:
    return (
        "gateway:\n  id: home\n"
        "shops:\n  family:\n    adapter: home_assistant\n"
        f"{shop_lines}"
        "products:\n  coffee:\n    sku: LAVAZZA-1KG\n"
    )


def _messages(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        load_config(path, env={})
    return [m[len(f"{path}:") :] for m in raised.value.messages]


def test_a_token_file_fills_the_token_and_check_never_shows_it(tmp_path: Path) -> None:
    _write(tmp_path / "ha-token", HA_TOKEN + "\n")
    lines = f"    url: http://127.0.0.1:8123\n    token_file: {tmp_path / 'ha-token'}\n"
    path = _write(tmp_path / "gw.yaml", _config(lines))
    loaded = load_config(path, env={})
    shop = loaded.config.shops["family"]
    assert isinstance(shop, HomeAssistantShopSection)
    assert secret_value(shop.token) == HA_TOKEN
    assert shop.entity == "todo.shopping_list"
    out, err = io.StringIO(), io.StringIO()
    assert check_command(str(path), out, err, env={}) == 0, err.getvalue()
    shown = out.getvalue() + err.getvalue()
    assert "home_assistant shop at 127.0.0.1:8123 (http), token set" in shown
    assert "key by lookup" in shown
    for text in (shown, repr(loaded.config), summarize(loaded.config)):
        assert HA_TOKEN not in text
    backends = make_backends(loaded.config)
    try:
        assert isinstance(backends["family"], HomeAssistantCommerce)
    finally:
        for backend in backends.values():
            backend.close()


def test_a_missing_token_file_is_reported_at_its_line(tmp_path: Path) -> None:
    lines = "    url: http://127.0.0.1:8123\n    token_file: /nonexistent/ha-token\n"
    path = _write(tmp_path / "gw.yaml", _config(lines))
    [message] = _messages(path)
    assert message.startswith("7:17: shops.family.token_file: /nonexistent/ha-token does not")


def test_a_shared_token_file_is_warned_about(tmp_path: Path) -> None:
    _write(tmp_path / "ha-token", HA_TOKEN, mode=0o644)
    lines = f"    url: http://127.0.0.1:8123\n    token_file: {tmp_path / 'ha-token'}\n"
    loaded = load_config(_write(tmp_path / "gw.yaml", _config(lines)), env={})
    assert any("chmod 600" in warning for warning in loaded.warnings), loaded.warnings


def test_a_wrong_entity_is_reported_at_its_line(tmp_path: Path) -> None:
    lines = "    url: http://127.0.0.1:8123\n    token: t\n    entity: shopping_list\n"
    [message] = _messages(_write(tmp_path / "gw.yaml", _config(lines)))
    assert message.startswith("8:13: shops.family.entity:"), message


def test_plain_http_to_another_host_is_refused_at_its_line(tmp_path: Path) -> None:
    lines = "    url: http://homeassistant.lan:8123\n    token: t\n"
    [message] = _messages(_write(tmp_path / "gw.yaml", _config(lines)))
    assert message.startswith("6:10: shops.family.url:"), message
    assert "unencrypted" in message


def test_an_unknown_adapter_lists_home_assistant(tmp_path: Path) -> None:
    text = _config("    url: http://127.0.0.1:8123\n").replace("home_assistant", "homeassistant")
    [message] = _messages(_write(tmp_path / "gw.yaml", text))
    assert "home_assistant" in message, message


def test_no_token_at_all_is_reported_at_the_shop(tmp_path: Path) -> None:
    [message] = _messages(_write(tmp_path / "gw.yaml", _config("    url: http://127.0.0.1:8123\n")))
    assert message.startswith("5:5: shops.family: no token — create a long-lived access token")
