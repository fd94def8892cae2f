"""systemd integration: the sd_notify protocol, and installing the service.

``sd_notify`` is one datagram of ``KEY=value`` lines to the unix socket named by
``$NOTIFY_SOCKET`` (an abstract socket when the name starts with ``@``). A few
lines of socket code, so no libsystemd binding is needed on the Pi.

>>> notifier = Notifier(env={})
>>> notifier.enabled, notifier.watchdog_interval
(False, None)
>>> notifier.ready()
False

:func:`install_service` writes the unit, a sysusers.d entry for the dedicated
user, and a config skeleton under ``--root`` (``/`` on a Pi, a temp dir in tests);
running it twice changes nothing, and it never overwrites an edited config.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from gateway.errors import InstallError

log = logging.getLogger(__name__)

SERVICE = "reorder-gateway"
UNIT_PATH = Path("etc/systemd/system/reorder-gateway.service")
SYSUSERS_PATH = Path("etc/sysusers.d/reorder-gateway.conf")
CONFIG_DIR = Path("etc/reorder-gateway")
CONFIG_PATH = CONFIG_DIR / "gateway.yaml"
CREDENTIALS_DIR = CONFIG_DIR / "credentials"
_EXEC_PLACEHOLDER = "@REORDER_GATEWAY@"


class Notifier:
    """Speaks the sd_notify protocol; every call is a no-op outside systemd.

    >>> Notifier(env={"NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "30000000"}).watchdog_interval
    30.0
    """

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        raw = env.get("NOTIFY_SOCKET", "")
        # An abstract socket is written '@name' and addressed with a leading NUL.
        self._address = "\0" + raw[1:] if raw.startswith("@") else raw
        self._watchdog: float | None = None
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        # WATCHDOG_PID names the process the watchdog is meant for; a child that
        # inherited the environment must not feed it.
        if usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            self._watchdog = int(usec) / 1_000_000

    @property
    def enabled(self) -> bool:
        return bool(self._address)

    @property
    def watchdog_interval(self) -> float | None:
        """Seconds within which systemd expects ``WATCHDOG=1``, or None without a watchdog."""
        return self._watchdog

    def send(self, *lines: str) -> bool:
        """Send one notification; False (and a debug line) when it cannot be delivered."""
        if not self._address:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.connect(self._address)
                sock.sendall("\n".join(lines).encode())
        except OSError as exc:
            log.debug("sd_notify to %r failed: %s", self._address, exc)
            return False
        return True

    def ready(self, status: str | None = None) -> bool:
        return self.send("READY=1", *(() if status is None else (f"STATUS={status}",)))

    def status(self, text: str) -> bool:
        return self.send(f"STATUS={text}")

    def watchdog(self) -> bool:
        return self.send("WATCHDOG=1")

    def stopping(self) -> bool:
        return self.send("STOPPING=1", "STATUS=stopping")


# --------------------------------------------------------------------------- install


@dataclass
class InstallReport:
    """What an install or uninstall did, path by path (relative to the root)."""

    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # an existing config is never overwritten
    removed: list[str] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)


def _data(name: str) -> str:
    return resources.files("gateway").joinpath("data", name).read_text(encoding="utf-8")


def default_executable() -> Path:
    """The ``reorder-gateway`` script beside the running Python (the venv's bin/)."""
    beside = Path(sys.executable).parent / "reorder-gateway"
    if beside.exists():
        return beside
    found = shutil.which("reorder-gateway")
    if found is None:
        raise InstallError(
            "cannot find the reorder-gateway executable; pass --exec /opt/reorder-gateway/"
            "bin/reorder-gateway"
        )
    return Path(found)


def render_unit(executable: Path) -> str:
    """The unit file with ``ExecStart`` pointing at ``executable``.

    >>> unit = render_unit(Path("/opt/rg/bin/reorder-gateway"))
    >>> "ExecStart=/opt/rg/bin/reorder-gateway run" in unit
    True
    """
    if not executable.is_absolute():
        raise InstallError(f"{executable}: systemd needs an absolute path for ExecStart")
    if any(c.isspace() for c in str(executable)):
        raise InstallError(f"{executable}: a path with spaces would need quoting in ExecStart")
    return _data("reorder-gateway.service").replace(_EXEC_PLACEHOLDER, str(executable))


def _write(root: Path, rel: Path, text: str, mode: int, report: InstallReport) -> None:
    path = root / rel
    if path.exists() and path.read_text(encoding="utf-8") == text:
        report.unchanged.append(f"/{rel}")
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    os.chmod(tmp, mode)
    tmp.replace(path)
    report.written.append(f"/{rel}")


def _run(argv: list[str], report: InstallReport) -> None:
    report.commands.append(" ".join(argv))
    if shutil.which(argv[0]) is None:
        raise InstallError(f"{argv[0]} is not installed; is this a systemd system?")
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise InstallError(f"{' '.join(argv)} failed: {done.stderr.strip() or done.returncode}")


def install_service(
    root: Path, executable: Path | None = None, *, system_commands: bool | None = None
) -> InstallReport:
    """Install unit, sysusers entry, config skeleton and credential directory.

    ``system_commands`` (default: only when ``root`` is ``/``) also creates the
    user with ``systemd-sysusers`` and runs ``systemctl daemon-reload``.
    """
    root = root.resolve()
    report = InstallReport()
    unit = render_unit(executable or default_executable())
    _write(root, UNIT_PATH, unit, 0o644, report)
    _write(root, SYSUSERS_PATH, _data("sysusers.conf"), 0o644, report)
    config_dir = root / CONFIG_DIR
    config_dir.mkdir(mode=0o755, parents=True, exist_ok=True)
    credentials = root / CREDENTIALS_DIR
    credentials.mkdir(mode=0o700, parents=True, exist_ok=True)
    credentials.chmod(0o700)  # only root reads the token; systemd hands it to the service
    config = root / CONFIG_PATH
    if config.exists():
        report.kept.append(f"/{CONFIG_PATH}")
    else:
        # World-readable like any /etc config: it holds no secret (the token is a credential).
        _write(root, CONFIG_PATH, _data("gateway.yaml"), 0o644, report)
    if system_commands if system_commands is not None else root == Path("/"):
        _run(["systemd-sysusers", str(root / SYSUSERS_PATH)], report)
        _run(["systemctl", "daemon-reload"], report)
    return report


def uninstall_service(root: Path, *, system_commands: bool | None = None) -> InstallReport:
    """Stop and remove the unit and sysusers entry; config, token and state stay."""
    root = root.resolve()
    report = InstallReport()
    run_commands = system_commands if system_commands is not None else root == Path("/")
    if run_commands and (root / UNIT_PATH).exists():
        _run(["systemctl", "disable", "--now", f"{SERVICE}.service"], report)
    for rel in (UNIT_PATH, SYSUSERS_PATH):
        path = root / rel
        if path.exists():
            path.unlink()
            report.removed.append(f"/{rel}")
    for rel in (CONFIG_PATH, CREDENTIALS_DIR):
        if (root / rel).exists():
            report.kept.append(f"/{rel}")
    if run_commands:
        _run(["systemctl", "daemon-reload"], report)
    return report
