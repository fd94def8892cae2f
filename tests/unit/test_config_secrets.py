"""Secrets: from the environment or a file, never shown, and a warning for shared files."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr

from gateway.config.load import ConfigError, check_command, load_config, secret_value, summarize
from gateway.config.secrets import SubstitutionError, substitute

ROOT = Path(__file__).resolve().parents[2]
ENV_TOKEN = "env-tok-9f2c41d7e6"
FILE_TOKEN = "file-tok-77ab03c5d1"
FILE_PASSWORD = "file-pw-0e4d9a2b18"


def _write(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


def _config(token_line: str, extra: str = "") -> str:
    return (
        "gateway:\n  id: home\n"
        "commerce:\n  base_url: https://shop.example/api/v1\n"
        f"  {token_line}\n"
        "products:\n  coffee:\n    sku: LAVAZZA-1KG\n" + extra
    )


def _check(path: Path, env: dict[str, str]) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    code = check_command(str(path), out, err, env=env)
    return code, out.getvalue() + err.getvalue()


def test_token_from_the_environment_is_used_and_never_shown(tmp_path: Path) -> None:
    path = _write(tmp_path / "gw.yaml", _config("token: ${SHOP_TOKEN}"))
    env = {"SHOP_TOKEN": ENV_TOKEN}
    config = load_config(path, env=env).config
    assert secret_value(config.commerce.token) == ENV_TOKEN
    code, shown = _check(path, env)
    assert code == 0
    assert "token set" in shown
    for text in (shown, repr(config), str(config), summarize(config), repr(config.commerce)):
        assert ENV_TOKEN not in text


def test_token_and_password_files_fill_the_secrets_and_are_never_shown(tmp_path: Path) -> None:
    _write(tmp_path / "token", FILE_TOKEN + "\n")
    _write(tmp_path / "mqtt-pw", FILE_PASSWORD + "\n")
    extra = f"mqtt:\n  username: gw\n  password_file: {tmp_path / 'mqtt-pw'}\n"
    path = _write(tmp_path / "gw.yaml", _config(f"token_file: {tmp_path / 'token'}", extra))
    loaded = load_config(path, env={})
    assert secret_value(loaded.config.commerce.token) == FILE_TOKEN
    assert secret_value(loaded.config.mqtt.password) == FILE_PASSWORD
    assert loaded.warnings == []
    code, shown = _check(path, {})
    assert code == 0
    for text in (shown, repr(loaded.config), summarize(loaded.config)):
        assert FILE_TOKEN not in text
        assert FILE_PASSWORD not in text


def test_secrets_stay_out_of_error_messages(tmp_path: Path) -> None:
    _write(tmp_path / "token", FILE_TOKEN)
    broken = _config(f"token_file: {tmp_path / 'token'}", "  tea: {}\n")  # tea has no sku
    broken = broken.replace("gateway:\n", "gateway:\n  note: ${SHOP_TOKEN}\n")
    path = _write(tmp_path / "gw.yaml", broken)
    with pytest.raises(ConfigError) as raised:
        load_config(path, env={"SHOP_TOKEN": ENV_TOKEN})
    text = "\n".join(raised.value.messages)
    assert "products.tea.sku: is required" in text
    assert FILE_TOKEN not in text
    code, shown = _check(path, {"SHOP_TOKEN": ENV_TOKEN})
    assert code == 2
    assert FILE_TOKEN not in shown


@pytest.mark.parametrize(
    "value", ["12345678", "[tok-a8c1, tok-b2d4]", "{k: tok-c3e5}", "true"], ids=str
)
def test_a_secret_of_the_wrong_type_is_not_echoed(tmp_path: Path, value: str) -> None:
    path = _write(tmp_path / "gw.yaml", _config(f"token: {value}"))
    with pytest.raises(ConfigError) as raised:
        load_config(path, env={})
    (message,) = raised.value.messages
    assert message.startswith(f"{path}:5:10: commerce.token: ")
    for fragment in ("12345678", "tok-", "true"):
        assert fragment not in message.split("commerce.token: ", 1)[1]


def test_credentials_directory_is_where_relative_secret_files_are(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    credentials = tmp_path / "credentials"
    credentials.mkdir(mode=0o700)
    _write(credentials / "shop-token", FILE_TOKEN + "\n")
    # A file of the same name in the working directory must not be picked up.
    work = tmp_path / "work"
    work.mkdir()
    _write(work / "shop-token", "wrong-token")
    monkeypatch.chdir(work)
    path = _write(tmp_path / "gw.yaml", _config("token_file: shop-token"))
    loaded = load_config(path, env={"CREDENTIALS_DIRECTORY": str(credentials)})
    assert secret_value(loaded.config.commerce.token) == FILE_TOKEN
    without = load_config(path, env={})
    assert secret_value(without.config.commerce.token) == "wrong-token"


def test_a_missing_credential_names_where_it_was_looked_for(tmp_path: Path) -> None:
    path = _write(tmp_path / "gw.yaml", _config("token_file: shop-token"))
    with pytest.raises(ConfigError) as raised:
        load_config(path, env={"CREDENTIALS_DIRECTORY": "/run/credentials/rg"})
    assert raised.value.messages == [
        f"{path}:5:15: commerce.token_file: /run/credentials/rg/shop-token does not exist"
        " — create it or fix the path"
    ]


def test_outside_systemd_credentials_beside_the_config_are_found_from_any_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = tmp_path / "cfg"
    (cfg / "credentials").mkdir(parents=True, mode=0o700)
    _write(cfg / "credentials" / "shop-token", FILE_TOKEN + "\n")
    path = _write(cfg / "gateway.yaml", _config("token_file: shop-token"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    loaded = load_config(Path("..") / "cfg" / "gateway.yaml", env={})
    assert secret_value(loaded.config.commerce.token) == FILE_TOKEN
    assert Path(loaded.config.commerce.token_file or "").samefile(cfg / "credentials/shop-token")
    code, said = _check(path, env={})
    assert code == 0, said


def test_a_missing_secret_file_names_every_path_tried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "cfg").mkdir()
    path = _write(tmp_path / "cfg" / "gateway.yaml", _config("token_file: shop-token"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as raised:
        load_config("cfg/gateway.yaml", env={})
    assert raised.value.messages == [
        f"cfg/gateway.yaml:5:15: commerce.token_file: 'shop-token' was not found: tried "
        f"{tmp_path / 'shop-token'} and {path.parent / 'credentials' / 'shop-token'}"
        " — create it in one of them, or give its absolute path"
    ]


def test_every_command_looks_for_secret_files_the_same_way(tmp_path: Path) -> None:
    """run, check, status and queue: the token in credentials/ beside the config is
    found from another directory, and a missing one is reported with its paths."""
    cfg = tmp_path / "cfg"
    (cfg / "credentials").mkdir(parents=True, mode=0o700)
    state = tmp_path / "state"
    extra = f"  state_dir: {state}\n"
    text = _config("token_file: shop-token").replace("  id: home\n", "  id: home\n" + extra)
    _write(cfg / "gateway.yaml", text)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "CREDENTIALS_DIRECTORY"}
    env["PYTHONPATH"] = str(ROOT)

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "gateway", *args, "-c", "../cfg/gateway.yaml"],
            cwd=elsewhere,
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )

    beside = cfg.resolve() / "credentials" / "shop-token"
    for command in (["check"], ["status"], ["queue"], ["run"]):
        done = cli(*command)
        assert done.returncode == 2, (command, done.stdout, done.stderr)
        assert f"tried {elsewhere.resolve() / 'shop-token'} and {beside}" in done.stderr, (
            command,
            done.stderr,
        )
    _write(beside, FILE_TOKEN + "\n")
    assert cli("check").returncode == 0
    assert "no outbox" in cli("queue").stdout  # the config loaded: the outbox is looked at
    assert "NOT running" in cli("status").stdout


@pytest.mark.parametrize(
    ("content", "expected"),
    [("tok\n", "tok"), ("tok\r\n", "tok"), ("tok\n\n", "tok\n"), ("tok", "tok")],
    ids=["lf", "crlf", "only-one-newline", "none"],
)
def test_secret_files_lose_exactly_one_trailing_newline(
    tmp_path: Path, content: str, expected: str
) -> None:
    _write(tmp_path / "token", content)
    path = _write(tmp_path / "gw.yaml", _config(f"token_file: {tmp_path / 'token'}"))
    assert secret_value(load_config(path, env={}).config.commerce.token) == expected


def test_an_empty_secret_file_is_an_error(tmp_path: Path) -> None:
    _write(tmp_path / "token", "\n")
    path = _write(tmp_path / "gw.yaml", _config(f"token_file: {tmp_path / 'token'}"))
    with pytest.raises(ConfigError) as raised:
        load_config(path, env={})
    assert raised.value.messages == [
        f"{path}:5:15: commerce.token_file: {tmp_path / 'token'} is empty"
        " — write the secret into it"
    ]


def test_a_literal_token_in_a_shared_config_is_warned_about(tmp_path: Path) -> None:
    path = _write(tmp_path / "gw.yaml", _config("token: literal-tok"), mode=0o644)
    loaded = load_config(path, env={})
    assert loaded.warnings == [
        f"{path}:5:10: warning: commerce.token: this file holds a secret and is readable by"
        f" group/others (mode 0644) — run 'chmod 600 {path}', or move the secret to a file"
        " or the environment"
    ]
    assert "literal-tok" not in loaded.warnings[0]
    code, shown = _check(path, {})
    assert code == 0
    assert "warning: commerce.token" in shown


def test_a_private_config_or_an_environment_token_gives_no_warning(tmp_path: Path) -> None:
    private = _write(tmp_path / "private.yaml", _config("token: literal-tok"), mode=0o600)
    assert load_config(private, env={}).warnings == []
    from_env = _write(tmp_path / "env.yaml", _config("token: ${SHOP_TOKEN}"), mode=0o644)
    assert load_config(from_env, env={"SHOP_TOKEN": ENV_TOKEN}).warnings == []


def test_a_default_written_in_the_file_counts_as_a_literal_secret(tmp_path: Path) -> None:
    path = _write(tmp_path / "gw.yaml", _config("token: ${SHOP_TOKEN:-fallback}"), mode=0o640)
    assert len(load_config(path, env={}).warnings) == 1
    assert load_config(path, env={"SHOP_TOKEN": ENV_TOKEN}).warnings == []


def test_a_shared_token_file_is_warned_about(tmp_path: Path) -> None:
    token = _write(tmp_path / "token", FILE_TOKEN, mode=0o604)
    path = _write(tmp_path / "gw.yaml", _config(f"token_file: {token}"), mode=0o644)
    assert load_config(path, env={}).warnings == [
        f"{path}:5:15: warning: commerce.token_file: {token} is readable by group/others"
        f" (mode 0604) — run 'chmod 600 {token}'"
    ]


def test_substitution_follows_the_shell() -> None:
    env = {"SET": "value", "EMPTY": ""}
    assert substitute("${SET}", env).text == "value"
    assert substitute("${SET:-other}", env).text == "value"
    assert substitute("${EMPTY:-other}", env).text == "other"
    assert substitute("${EMPTY}", env).text == ""
    assert substitute("${UNSET:-}", env).text == ""
    assert substitute("a-${SET}-b", env).text == "a-value-b"
    assert substitute("$${SET}", env).text == "${SET}"
    assert substitute("${SET}", env).literal is False
    assert substitute("x${SET}", env).literal is True
    with pytest.raises(SubstitutionError, match="not closed"):
        substitute("${SET", env)
    with pytest.raises(SubstitutionError, match="UNSET is not set"):
        substitute("${UNSET}", env)


def test_secret_value_opens_only_what_it_is_given() -> None:
    assert secret_value(None) is None
    assert secret_value(SecretStr("abc")) == "abc"
    assert "abc" not in repr(SecretStr("abc"))
