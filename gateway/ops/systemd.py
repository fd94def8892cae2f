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
running it twice changes nothing, and it never overwrites an edited config. On
``/`` it first checks that systemd runs this host, so that it never leaves files
behind for a service that cannot start; :func:`uninstall_service` removes its
files even where ``systemctl`` cannot be run.
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
_DOCS_PLACEHOLDER = "@DOCUMENTATION@"
# The page the unit's Documentation= names, installed with the package.
SERVICE_DOCS = Path(__file__).resolve().parent.parent / "data" / "service.md"
# sd_booted(): this directory exists exactly when systemd is PID 1.
SYSTEMD_RUNTIME_DIR = Path("/run/systemd/system")
# What the unit's ProtectHome=yes makes invisible to the service.
HIDDEN_FROM_SERVICE = (Path("/home"), Path("/root"), Path("/run/user"))


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
    skipped: list[str] = field(default_factory=list)  # commands not run, with why
    problems: list[str] = field(default_factory=list)  # commands that failed (uninstall)


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


def _hidden_part(path: Path) -> Path | None:
    """The directory hidden by ``ProtectHome=yes`` that ``path`` lies in, if any."""
    return next((d for d in HIDDEN_FROM_SERVICE if path.is_relative_to(d)), None)


def _interpreter(executable: Path) -> Path | None:
    """The interpreter a script's ``#!`` line names (a venv's bin/python), if any."""
    try:
        with executable.open("rb") as script:
            first = script.readline(4096)
    except OSError:
        return None
    if not first.startswith(b"#!"):
        return None
    words = first[2:].decode("utf-8", "replace").split()
    return Path(words[0]) if words else None


def check_executable(executable: Path) -> None:
    """Refuse an ``ExecStart`` the service could not start.

    >>> check_executable(Path("/home/pi/.local/bin/reorder-gateway"))
    Traceback (most recent call last):
    ...
    gateway.errors.InstallError: /home/pi/.local/bin/reorder-gateway is under /home, ...
    """
    if not executable.is_absolute():
        raise InstallError(f"{executable}: systemd needs an absolute path for ExecStart")
    if any(c.isspace() for c in str(executable)):
        raise InstallError(f"{executable}: a path with spaces would need quoting in ExecStart")
    candidates = [("", executable)]
    if executable.exists():
        candidates.append((" (it links to {})", executable.resolve()))
    interpreter = _interpreter(executable)
    if interpreter is not None:
        candidates.append((" (its #! line runs {})", interpreter))
    for how, path in candidates:
        hidden = _hidden_part(path)
        if hidden is not None:
            raise InstallError(
                f"{executable}{how.format(path)} is under {hidden}, which the service cannot "
                "see (the unit sets ProtectHome=yes) — install the gateway outside it: "
                "sudo python3 -m venv /opt/reorder-gateway, sudo /opt/reorder-gateway/bin/pip "
                "install ., then pass --exec /opt/reorder-gateway/bin/reorder-gateway "
                "(docs/operations.md)"
            )


def render_unit(executable: Path, documentation: Path = SERVICE_DOCS) -> str:
    """The unit file with ``ExecStart`` pointing at ``executable``, and ``Documentation=``
    at the page installed with the package.

    >>> unit = render_unit(Path("/opt/rg/bin/reorder-gateway"), Path("/opt/rg/service.md"))
    >>> "ExecStart=/opt/rg/bin/reorder-gateway run" in unit
    True
    >>> "Documentation=file:///opt/rg/service.md" in unit.splitlines()
    True
    """
    check_executable(executable)
    return (
        _data("reorder-gateway.service")
        .replace(_EXEC_PLACEHOLDER, str(executable))
        .replace(_DOCS_PLACEHOLDER, documentation.as_uri())
    )


def systemd_missing(runtime_dir: Path = SYSTEMD_RUNTIME_DIR) -> str | None:
    """Why the systemd commands cannot run on this host, or None when they can."""
    if not runtime_dir.is_dir():
        try:
            init = Path("/proc/1/comm").read_text(encoding="utf-8").strip()
        except OSError:
            init = "unknown"
        return f"systemd is not running this host ({runtime_dir} is missing; PID 1 is {init!r})"
    for command in ("systemd-sysusers", "systemctl"):
        if shutil.which(command) is None:
            return f"{command} is not installed"
    return None


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
    root: Path,
    executable: Path | None = None,
    *,
    system_commands: bool | None = None,
    systemd_runtime: Path = SYSTEMD_RUNTIME_DIR,
) -> InstallReport:
    """Install unit, sysusers entry, config skeleton and credential directory.

    ``system_commands`` (default: only when ``root`` is ``/``) also creates the
    user with ``systemd-sysusers`` and runs ``systemctl daemon-reload``; then a host
    that systemd does not run is refused before anything is written, and a command
    that fails anyway names every file written before it.
    """
    root = root.resolve()
    report = InstallReport()
    unit = render_unit(executable or default_executable())
    run_commands = system_commands if system_commands is not None else root == Path("/")
    if run_commands:
        missing = systemd_missing(systemd_runtime)
        if missing is not None:
            raise InstallError(
                f"{missing} — nothing was written; on a systemd host run this again, or pass "
                "--root DIR to write the files below DIR only (an image, a container)"
            )
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
    if run_commands:
        try:
            _run(["systemd-sysusers", str(root / SYSUSERS_PATH)], report)
            _run(["systemctl", "daemon-reload"], report)
        except InstallError as exc:
            written = ", ".join(report.written) or "nothing"
            raise InstallError(
                f"{exc}; written before it: {written} — fix the cause and run install-service "
                "again, or remove them with uninstall-service"
            ) from exc
    return report


def uninstall_service(
    root: Path,
    *,
    system_commands: bool | None = None,
    systemd_runtime: Path = SYSTEMD_RUNTIME_DIR,
) -> InstallReport:
    """Stop and remove the unit and sysusers entry; config, token and state stay.

    The files go whatever ``systemctl`` does: where systemd does not run the host
    its commands are skipped (nothing runs under it), and a command that fails is
    recorded in ``problems`` after the files are removed.
    """
    root = root.resolve()
    report = InstallReport()
    wanted = system_commands if system_commands is not None else root == Path("/")
    missing = systemd_missing(systemd_runtime) if wanted else None
    run_commands = wanted and missing is None

    def systemctl(*argv: str) -> None:
        command = ["systemctl", *argv]
        if not run_commands:
            if wanted:
                report.skipped.append(f"{' '.join(command)} ({missing})")
            return
        try:
            _run(command, report)
        except InstallError as exc:
            report.problems.append(str(exc))

    if (root / UNIT_PATH).exists():
        systemctl("disable", "--now", f"{SERVICE}.service")
    for rel in (UNIT_PATH, SYSUSERS_PATH):
        path = root / rel
        if path.exists():
            path.unlink()
            report.removed.append(f"/{rel}")
    for rel in (CONFIG_PATH, CREDENTIALS_DIR):
        if (root / rel).exists():
            report.kept.append(f"/{rel}")
    systemctl("daemon-reload")
    return report
