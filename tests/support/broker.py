"""A private mosquitto for tests: own port, own config, own persistence file,
so a test can stop, kill and restart it without touching anything else.

    broker = Broker(tmp_path)
    broker.start()
    ... broker.url -> "mqtt://127.0.0.1:PORT"
    broker.restart()      # persistence on: sessions and queued QoS 1 messages survive
    broker.stop()
"""

from __future__ import annotations

import getpass
import signal
import subprocess
from pathlib import Path

from firmware_sim.demo import mosquitto_binary
from tests.support.ports import free_port, wait_for_port

__all__ = ["Broker", "mosquitto_binary"]


class Broker:
    def __init__(self, workdir: Path, port: int | None = None, persistence: bool = True) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.persistence = persistence
        self.proc: subprocess.Popen[bytes] | None = None
        self.conf = self.workdir / "mosquitto.conf"
        self.log = self.workdir / "mosquitto.log"

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def _write_conf(self) -> None:
        lines = [
            f"listener {self.port} 127.0.0.1",
            # Started as root, mosquitto would switch to the 'mosquitto' user and then
            # fail to write its persistence file into our private temp directory.
            f"user {getpass.getuser()}",
            "allow_anonymous true",
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
        self.conf.write_text("\n".join(lines) + "\n")

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
