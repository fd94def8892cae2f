"""systemd: install-service into a temp root (verified by systemd-analyze), and the
sd_notify conversation of the gateway as a subprocess with a real notify socket."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from firmware_sim.shop.server import ShopServer
from gateway.errors import InstallError
from gateway.ops.systemd import SERVICE_DOCS, Notifier, install_service, uninstall_service
from tests.support.broker import Broker
from tests.support.gateway import REPO, GatewayProcess
from tests.support.publisher import Collector
from tests.support.shop import shop_fixture  # noqa: F401  (registers "shop")

EXECUTABLE = Path(sys.executable).parent / "reorder-gateway"
UNIT = "etc/systemd/system/reorder-gateway.service"


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
        capture_output=True,
        check=False,
        text=True,
        timeout=60,
    )


def test_install_is_idempotent_keeps_config_and_uninstalls(tmp_path: Path) -> None:
    root = tmp_path / "root"
    first = cli("install-service", "--root", str(root), "--exec", str(EXECUTABLE))
    assert first.returncode == 0, first.stderr
    unit = (root / UNIT).read_text()
    assert f"ExecStart={EXECUTABLE} run --config /etc/reorder-gateway/gateway.yaml" in unit
    for line in (
        "Type=notify",
        "WatchdogSec=30s",
        "Restart=on-failure",
        "User=reorder-gateway",
        "SupplementaryGroups=gpio",
        "StateDirectory=reorder-gateway",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
        "LoadCredential=shop-token:/etc/reorder-gateway/credentials/shop-token",
    ):
        assert line in unit.splitlines(), line
    assert "m reorder-gateway gpio" in (root / "etc/sysusers.d/reorder-gateway.conf").read_text()
    credentials = root / "etc/reorder-gateway/credentials"
    assert credentials.stat().st_mode & 0o777 == 0o700
    config = root / "etc/reorder-gateway/gateway.yaml"
    assert "token_file: shop-token" in config.read_text()

    again = cli("install-service", "--root", str(root), "--exec", str(EXECUTABLE))
    assert again.returncode == 0
    assert "wrote" not in again.stdout and "unchanged" in again.stdout

    config.write_text(config.read_text().replace("id: kitchen", "id: pantry"))
    third = cli("install-service", "--root", str(root), "--exec", str(EXECUTABLE))
    assert "kept (yours)  /etc/reorder-gateway/gateway.yaml" in third.stdout
    assert "id: pantry" in config.read_text()

    gone = cli("uninstall-service", "--root", str(root))
    assert gone.returncode == 0, gone.stderr
    assert not (root / UNIT).exists()
    assert config.exists()


def test_installed_config_skeleton_passes_check(tmp_path: Path) -> None:
    root = tmp_path / "root"
    assert cli("install-service", "--root", str(root), "--exec", str(EXECUTABLE)).returncode == 0
    credentials = tmp_path / "credentials"
    credentials.mkdir(mode=0o700)
    (credentials / "shop-token").write_text(secrets.token_urlsafe(16) + "\n")
    checked = cli(
        "check",
        "--config",
        str(root / "etc/reorder-gateway/gateway.yaml"),
        env={"CREDENTIALS_DIRECTORY": str(credentials)},
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr

    # Outside systemd, status finds the token in credentials/ beside the config.
    shutil.copy(credentials / "shop-token", root / "etc/reorder-gateway/credentials/shop-token")
    status = cli("status", "--config", str(root / "etc/reorder-gateway/gateway.yaml"))
    assert status.returncode in (1, 3), status.stdout + status.stderr  # not 2: config fine
    assert "NOT running" in status.stdout


def test_documentation_names_the_page_installed_with_the_package(tmp_path: Path) -> None:
    root = tmp_path / "root"
    assert cli("install-service", "--root", str(root), "--exec", str(EXECUTABLE)).returncode == 0
    (line,) = [x for x in (root / UNIT).read_text().splitlines() if x.startswith("Documentation=")]
    page = Path(urlsplit(line.removeprefix("Documentation=")).path)
    assert line.startswith("Documentation=file:///") and page.is_file(), line
    assert page == SERVICE_DOCS and "ProtectHome=yes" in page.read_text()


@pytest.mark.parametrize(
    "executable",
    [
        "/home/pi/.local/bin/reorder-gateway",
        "/root/venv/bin/reorder-gateway",
        "/run/user/1000/reorder-gateway",
    ],
)
def test_an_executable_the_service_cannot_see_is_refused(tmp_path: Path, executable: str) -> None:
    root = tmp_path / "root"
    done = cli("install-service", "--root", str(root), "--exec", executable)
    assert done.returncode == 1
    assert "the unit sets ProtectHome=yes" in done.stderr, done.stderr
    assert "--exec /opt/reorder-gateway/bin/reorder-gateway" in done.stderr
    assert "Traceback" not in done.stderr
    assert not root.exists()


def test_a_script_whose_python_lives_under_home_is_refused(tmp_path: Path) -> None:
    script = tmp_path / "reorder-gateway"
    script.write_text("#!/home/pi/venv/bin/python\nimport gateway\n")
    with pytest.raises(InstallError, match=r"its #! line runs /home/pi/venv/bin/python\) is under"):
        install_service(tmp_path / "root", script)


def test_install_on_a_host_systemd_does_not_run_writes_nothing(tmp_path: Path) -> None:
    root = tmp_path / "root"
    with pytest.raises(InstallError) as raised:
        install_service(
            root, EXECUTABLE, system_commands=True, systemd_runtime=tmp_path / "no-systemd"
        )
    assert "systemd is not running this host" in str(raised.value)
    assert "nothing was written" in str(raised.value) and "--root DIR" in str(raised.value)
    assert not root.exists()


@pytest.fixture
def failing_systemd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A host where systemd seems to run, but its commands fail (as in a broken image)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("systemd-sysusers", "systemctl"):
        tool = bin_dir / name
        tool.write_text(f"#!/bin/sh\necho '{name}: Failed to connect to bus' >&2\nexit 1\n")
        tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    runtime = tmp_path / "run-systemd-system"
    runtime.mkdir()
    return runtime


def test_a_command_that_fails_after_writing_names_every_file_written(
    tmp_path: Path, failing_systemd: Path
) -> None:
    root = tmp_path / "root"
    with pytest.raises(InstallError) as raised:
        install_service(root, EXECUTABLE, system_commands=True, systemd_runtime=failing_systemd)
    said = str(raised.value)
    assert "systemd-sysusers" in said and "Failed to connect to bus" in said
    for written in (
        UNIT,
        "etc/sysusers.d/reorder-gateway.conf",
        "etc/reorder-gateway/gateway.yaml",
    ):
        assert (root / written).exists()
        assert f"/{written}" in said, said
    assert "uninstall-service" in said


def test_uninstall_removes_the_files_where_systemctl_fails(
    tmp_path: Path, failing_systemd: Path
) -> None:
    root = tmp_path / "root"
    install_service(root, EXECUTABLE)
    report = uninstall_service(root, system_commands=True, systemd_runtime=failing_systemd)
    assert not (root / UNIT).exists()
    assert not (root / "etc/sysusers.d/reorder-gateway.conf").exists()
    assert (root / "etc/reorder-gateway/gateway.yaml").exists()  # the config stays
    assert len(report.problems) == 2 and "systemctl disable --now" in report.problems[0]
    assert "Failed to connect to bus" in report.problems[0]


def test_uninstall_where_systemd_does_not_run_skips_systemctl(tmp_path: Path) -> None:
    root = tmp_path / "root"
    install_service(root, EXECUTABLE)
    report = uninstall_service(root, system_commands=True, systemd_runtime=tmp_path / "no-systemd")
    assert not (root / UNIT).exists()
    assert report.problems == [] and report.commands == []
    assert [line.split(" (")[0] for line in report.skipped] == [
        "systemctl disable --now reorder-gateway.service",
        "systemctl daemon-reload",
    ]
    assert "systemd is not running this host" in report.skipped[0]


@pytest.mark.skipif(
    shutil.which("systemd-analyze") is None,
    reason="systemd-analyze is not installed (Debian package 'systemd'); the unit is not verified",
)
def test_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    root = tmp_path / "root"
    assert cli("install-service", "--root", str(root), "--exec", str(EXECUTABLE)).returncode == 0
    verified = subprocess.run(
        ["systemd-analyze", "verify", str(root / UNIT)],
        capture_output=True,
        check=False,
        text=True,
        timeout=60,
    )
    assert verified.returncode == 0, verified.stderr
    # Unknown keys and unparsable values are only warnings to systemd; not to us.
    assert "reorder-gateway.service" not in verified.stderr, verified.stderr


def test_notifier_without_systemd_does_nothing() -> None:
    quiet = Notifier(env={})
    assert not quiet.enabled and not quiet.ready() and not quiet.watchdog()
    other = Notifier(env={"NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"})
    assert other.watchdog_interval is None  # the watchdog is another process's


@pytest.fixture
def notify_socket() -> Iterator[tuple[str, Collector[str]]]:
    """An abstract AF_UNIX datagram socket standing in for systemd's."""
    name = f"@reorder-gateway-test-{os.getpid()}-{secrets.token_hex(4)}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name[1:])
    sock.settimeout(0.2)
    received: Collector[str] = Collector()
    stop = threading.Event()

    def listen() -> None:
        while not stop.is_set():
            try:
                data = sock.recv(4096)
            except TimeoutError:
                continue
            for line in data.decode().splitlines():
                received.append(line)

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    try:
        yield name, received
    finally:
        stop.set()
        thread.join(2)
        sock.close()


def test_ready_status_watchdog_and_stopping(
    tmp_path: Path, broker: Broker, shop: ShopServer, notify_socket: tuple[str, Collector[str]]
) -> None:
    name, received = notify_socket
    gw = GatewayProcess(
        tmp_path / "gw",
        broker_url=broker.url,
        shop_url=shop.url,
        shop_token=shop.token,
        # 1.5 s: the gateway pings every 0.5 s while its core loop turns.
        extra_env={"NOTIFY_SOCKET": name, "WATCHDOG_USEC": "1500000"},
    )
    try:
        gw.start()
        gw.wait_ready()
        received.wait_for(lambda lines: "READY=1" in lines)
        received.wait_for(lambda lines: lines.count("WATCHDOG=1") >= 3)
        received.wait_for(
            lambda lines: any(
                line.startswith("STATUS=broker connected") and "queue 0" in line for line in lines
            )
        )
        lines = received.items
        assert lines.index("READY=1") < lines.index("WATCHDOG=1")
        code, _ = gw.terminate()
        assert code == 0
        assert "STOPPING=1" in received.items
    finally:
        gw.close()
