"""The web page's gatekeeping without a browser: password file, sessions, CSRF, login
limit; the ``web:`` section; the core events its buttons become."""

from __future__ import annotations

import io
import os
import stat
import sys
from pathlib import Path

import pytest

from gateway.config.load import ConfigError, load_config
from gateway.core.decide import State, decide
from gateway.core.events import (
    ButtonEvent,
    CancelByKey,
    CancelOrder,
    Outcome,
    PlaceOrder,
    Report,
)
from gateway.core.rules import ProductRules, Rules
from gateway.ops.cli import main
from gateway.web.auth import (
    LoginLimiter,
    PasswordFileError,
    Sessions,
    password_matches,
    read_password_file,
    write_password_file,
)

BASE = """\
gateway:
  id: home
  state_dir: {state}
commerce:
  base_url: https://shop.example/api/v1
  token: t0ken
products:
  coffee:
    sku: LAVAZZA-1KG
"""


def test_the_password_file_holds_a_private_argon2_hash_never_the_password(
    tmp_path: Path,
) -> None:
    path = tmp_path / "web-password"
    write_password_file(path, "correct horse")
    stored = read_password_file(path)
    assert stored.startswith("$argon2id$") and "correct horse" not in path.read_text()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert password_matches(stored, "correct horse")
    assert not password_matches(stored, "correct hors")


def test_a_short_password_is_refused_and_a_missing_file_says_how_to_set_one(
    tmp_path: Path,
) -> None:
    with pytest.raises(ValueError, match="at least 8"):
        write_password_file(tmp_path / "p", "short")
    with pytest.raises(PasswordFileError, match="reorder-gateway web-password"):
        read_password_file(tmp_path / "p")
    (tmp_path / "p").write_text("hunter2\n")
    with pytest.raises(PasswordFileError, match="no argon2 hash"):
        read_password_file(tmp_path / "p")


def test_a_session_ends_at_its_lifetime_and_at_logout() -> None:
    sessions = Sessions(lifetime=100.0)
    a, b = sessions.open(now=0.0), sessions.open(now=0.0)
    assert a.token != b.token and a.csrf != b.csrf
    assert sessions.get(a.token, now=99.0) is a
    assert sessions.get(a.token, now=100.0) is None
    sessions.close(b.token)
    assert sessions.get(b.token, now=1.0) is None
    assert sessions.get("", now=1.0) is None and sessions.get("forged", now=1.0) is None


def test_the_csrf_token_must_be_the_sessions_own() -> None:
    sessions = Sessions(lifetime=100.0)
    a, b = sessions.open(now=0.0), sessions.open(now=0.0)
    assert a.csrf_ok(a.csrf)
    assert not a.csrf_ok(None) and not a.csrf_ok("") and not a.csrf_ok(b.csrf)


def test_the_oldest_session_goes_when_too_many_are_open() -> None:
    sessions = Sessions(lifetime=1000.0)
    first = sessions.open(now=0.0)
    for i in range(Sessions.MAX_OPEN):
        sessions.open(now=1.0 + i)
    assert sessions.get(first.token, now=100.0) is None


def test_five_failures_a_minute_lock_out_that_client_only_until_the_minute_ends() -> None:
    limiter = LoginLimiter(failures=5, window=60.0)
    for t in range(5):
        assert limiter.retry_after("10.0.0.5", now=float(t)) is None
        limiter.failed("10.0.0.5", now=float(t))
    assert limiter.retry_after("10.0.0.5", now=10.0) == 50
    assert limiter.retry_after("10.0.0.6", now=10.0) is None
    assert limiter.retry_after("10.0.0.5", now=60.5) is None  # the first failure aged out
    limiter.failed("10.0.0.6", now=0.0)
    limiter.succeeded("10.0.0.6")
    assert limiter.retry_after("10.0.0.6", now=1.0) is None


def _config(tmp_path: Path, web: str) -> Path:
    path = tmp_path / "gateway.yaml"
    path.write_text(BASE.format(state=tmp_path / "state") + web)
    path.chmod(0o600)
    return path


def test_the_web_section_is_off_by_default_and_on_with_loopback_defaults(
    tmp_path: Path,
) -> None:
    assert load_config(_config(tmp_path, ""), env={}).config.web is None
    web = load_config(_config(tmp_path, "web:\n"), env={}).config.web
    assert web is not None and (web.bind, web.port, web.https) == ("127.0.0.1", 8080, False)
    assert web.password_path(str(tmp_path / "state")) == str(tmp_path / "state/web-password")


@pytest.mark.parametrize(
    ("web", "expected"),
    [
        (
            "web:\n  bind: gateway.local\n",
            [
                "11:9: web.bind: 'gateway.local' is not an IP address — write 127.0.0.1 (this "
                "machine only), 0.0.0.0 (every network) or one of the Pi's addresses"
            ],
        ),
        ("web:\n  port: 99999\n", ["11:9: web.port: must be at most 65535, got 99999"]),
        (
            "web:\n  session_lifetime: 10s\n",
            ["11:21: web.session_lifetime: must be between 1m and 90d — 7d is usual"],
        ),
        (
            "web:\n  certificate: /nonexistent/cert.pem\n",
            [
                "11:3: web: HTTPS needs both certificate and private_key — add "
                "web.private_key, or remove the other for plain HTTP",
                "11:16: web.certificate: /nonexistent/cert.pem does not exist — fix the path "
                "or remove the key",
            ],
        ),
    ],
)
def test_a_bad_web_setting_is_reported_at_its_line(
    tmp_path: Path, web: str, expected: list[str]
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(_config(tmp_path, web), env={})
    assert [m.split("gateway.yaml:", 1)[-1] for m in caught.value.messages] == expected


def test_web_password_from_stdin_stores_a_hash_the_page_accepts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _config(tmp_path, "web:\n")
    (tmp_path / "state").mkdir()
    monkeypatch.setattr(sys, "stdin", io.StringIO("correct horse\n"))
    assert main(["web-password", "--config", str(path), "--stdin"]) == 0
    stored = read_password_file(tmp_path / "state" / "web-password")
    assert password_matches(stored, "correct horse")
    assert "correct horse" not in capsys.readouterr().out


def test_web_password_without_a_web_section_says_how_to_switch_it_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["web-password", "--config", str(_config(tmp_path, "")), "--stdin"]) == 2
    assert "has no 'web:' section" in capsys.readouterr().err


RULES = Rules(
    gateway_id="gw",
    secret=b"s" * 32,
    products={"coffee": ProductRules(sku="COF")},
    button_products={"pantry": "coffee"},
)


def test_a_web_cancel_cancels_that_order_once_and_says_via_web() -> None:
    state, actions = decide(State(), ButtonEvent("pantry", "press", "e1", "mqtt"), 0.0, RULES)
    [intent] = [a for a in actions if isinstance(a, PlaceOrder)]
    state, actions = decide(state, CancelByKey(intent.key, via="web"), 5.0, RULES)
    assert CancelOrder(intent.key, "coffee", "pantry") in actions
    [report] = [a for a in actions if isinstance(a, Report)]
    assert report.outcome is Outcome.CANCEL_REQUESTED and report.detail == "cancel asked via web"
    _, again = decide(state, CancelByKey(intent.key, via="web"), 6.0, RULES)
    assert not any(isinstance(a, CancelOrder) for a in again)
    [told] = [a for a in again if isinstance(a, Report)]
    assert told.outcome is Outcome.NOTHING_TO_CANCEL and "via web" in (told.detail or "")
