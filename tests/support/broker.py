"""A private mosquitto for tests: own port, own config, own persistence file,
so a test can stop, kill and restart it without touching anything else.

    broker = Broker(tmp_path)
    broker.start()
    ... broker.url -> "mqtt://127.0.0.1:PORT"
    broker.restart()      # persistence on: sessions and queued QoS 1 messages survive
    broker.stop()

A TLS listener with a certificate from a CA the test makes, and users with passwords:

    ca = TestCA(tmp_path / "ca")
    broker = Broker(tmp_path / "b", tls=ca.issue("srv", "IP:127.0.0.1"),
                    users={"gw": "secret"}).start()
    ... broker.url -> "mqtts://127.0.0.1:PORT"; ca.cert is the file for mqtt.ca_file
"""

from __future__ import annotations

import getpass
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from firmware_sim.demo import mosquitto_binary
from tests.support.ports import free_port, wait_for_port

__all__ = ["Broker", "ServerCert", "TestCA", "mosquitto_binary"]

_EC_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@dataclass(frozen=True)
class ServerCert:
    """A broker's certificate and key, and the CA file that trusts it."""

    ca: Path
    cert: Path
    key: Path


class TestCA:
    """A private certificate authority made with the ``openssl`` command, valid for
    two days; :meth:`issue` signs server certificates for the names given."""

    __test__ = False  # a helper, not a test class

    def __init__(self, directory: Path, name: str = "test ca") -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.cert = self.dir / "ca.pem"
        self._key = self.dir / "ca.key"
        _openssl("req", "-x509", *_EC_KEY, "-keyout", self._key.name, "-out", self.cert.name,
                 "-days", "2", "-subj", f"/CN={name}", cwd=self.dir)  # fmt: skip

    def issue(self, stem: str, subject_alt_names: str) -> ServerCert:
        """A certificate for ``subject_alt_names`` (e.g. ``"IP:127.0.0.1"`` or
        ``"DNS:broker.example"``) signed by this CA."""
        (self.dir / f"{stem}.cnf").write_text(f"subjectAltName={subject_alt_names}\n")
        _openssl("req", "-new", *_EC_KEY, "-keyout", f"{stem}.key", "-out", f"{stem}.csr",
                 "-subj", f"/CN={stem}", cwd=self.dir)  # fmt: skip
        _openssl("x509", "-req", "-in", f"{stem}.csr", "-CA", self.cert.name, "-CAkey",
                 self._key.name, "-CAcreateserial", "-out", f"{stem}.pem", "-days", "2",
                 "-extfile", f"{stem}.cnf", cwd=self.dir)  # fmt: skip
        return ServerCert(self.cert, self.dir / f"{stem}.pem", self.dir / f"{stem}.key")


class Broker:
    def __init__(
        self,
        workdir: Path,
        port: int | None = None,
        persistence: bool = True,
        *,
        tls: ServerCert | None = None,
        users: dict[str, str] | None = None,
    ) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.persistence = persistence
        self.tls = tls
        # With users, only they may connect (allow_anonymous false).
        self.users = users
        self.proc: subprocess.Popen[bytes] | None = None
        self.conf = self.workdir / "mosquitto.conf"
        self.log = self.workdir / "mosquitto.log"

    @property
    def url(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://127.0.0.1:{self.port}"

    def _write_conf(self) -> None:
        lines = [
            f"listener {self.port} 127.0.0.1",
            # Started as root, mosquitto would switch to the 'mosquitto' user and then
            # fail to write its persistence file into our private temp directory.
            f"user {getpass.getuser()}",
            f"persistence {'true' if self.persistence else 'false'}",
            f"persistence_location {self.workdir}/",
            "persistence_file mosquitto.db",
            "autosave_interval 1",
            "max_queued_messages 100000",
            "max_inflight_messages 100",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
        ]
        if self.tls:
            lines += [
                f"cafile {self.tls.ca}",
                f"certfile {self.tls.cert}",
                f"keyfile {self.tls.key}",
            ]
        if self.users is None:
            lines.append("allow_anonymous true")
        else:
            lines += ["allow_anonymous false", f"password_file {self._password_file()}"]
        self.conf.write_text("\n".join(lines) + "\n")

    def _password_file(self) -> Path:
        path = self.workdir / "passwords"
        path.unlink(missing_ok=True)
        tool = shutil.which("mosquitto_passwd") or "mosquitto_passwd"
        for user, password in (self.users or {}).items():
            create = [] if path.exists() else ["-c"]
            subprocess.run(
                [tool, *create, "-b", str(path), user, password], check=True, capture_output=True
            )
        if not path.exists():
            path.write_text("")
        return path

    def start(self) -> Broker:
        self._write_conf()
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [mosquitto_binary(), "-c", str(self.conf)], stdout=log, stderr=log
            )
        wait_for_port(self.port)
        return self

    def stop(self) -> None:
        """Graceful stop (SIGTERM): mosquitto writes its persistence file."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()
