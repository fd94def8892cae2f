"""What the benchmarks share: /proc readings, percentiles, a timestamping proxy and an
MQTT client that stamps every message it receives.

Figures only; nothing here judges them (``bench/run.py`` compares them with goals).

>>> pct([1.0, 2.0, 3.0], 0.5)
2.0
"""

from __future__ import annotations

import contextlib
import os
import platform
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

REPO = Path(__file__).resolve().parents[1]
CLK_TCK = os.sysconf("SC_CLK_TCK")


def pct(values: list[float], q: float) -> float:
    """The ``q`` quantile by nearest rank (no interpolation: a p99 is a real sample)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` (all its threads) from /proc/<pid>/stat."""
    text = Path(f"/proc/{pid}/stat").read_text()
    # The command name may contain spaces and parentheses: split after the last ')'.
    fields = text[text.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def memory_mb(pid: int) -> tuple[float, float]:
    """(current RSS, peak RSS) of ``pid`` in MB, from /proc/<pid>/status."""
    found: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            found[name] = int(value.split()[0]) / 1024
    return found["VmRSS"], found["VmHWM"]


def machine() -> dict[str, str]:
    """Where the figures were taken: they mean little without it."""
    model = "?"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith(("model name", "Model")):
                model = line.partition(":")[2].strip()
                break
    mem_kb = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kb = int(line.split()[1])
    commit = subprocess.run(
        ["git", "-C", str(REPO), "describe", "--always", "--dirty"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "host": platform.node(),
        "cpu": f"{model} x {os.cpu_count()}",
        "memory": f"{mem_kb / 1024 / 1024:.1f} GB",
        "kernel": platform.release(),
        "python": platform.python_version(),
        "commit": commit or "?",
    }


class Sleeper:
    """A Python process that imports what the gateway imports, then sleeps: the
    floor for memory (interpreter + libraries) and for idle CPU.

    >>> with Sleeper() as s:
    ...     memory_mb(s.pid)[0] > 0
    True
    """

    IMPORTS = "import gateway.daemon, gateway.ops.cli"

    def __init__(self) -> None:
        script = f"{self.IMPORTS}; print(1, flush=True); import time; time.sleep(3600)"
        self.proc = subprocess.Popen(
            [sys.executable, "-c", script],
            cwd=REPO,
            stdout=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        assert self.proc.stdout is not None
        self.proc.stdout.readline()  # imports done

    @property
    def pid(self) -> int:
        return self.proc.pid

    def __enter__(self) -> Sleeper:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


# ---------------------------------------------------------------------- HTTP stamps


@dataclass(frozen=True)
class Stamp:
    kind: str  # "request" (first bytes of a POST from the client) or "response"
    at: float  # time.perf_counter()


class StampingProxy:
    """A TCP pass-through in front of the shop that notes when each POST's first
    bytes leave the gateway and when the shop's answer comes back.

    A byte pump, not an HTTP proxy: it adds one loopback hop (~0.1 ms) and parses
    nothing but the first bytes of each chunk.
    """

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.stamps: list[Stamp] = []
        self._cond = threading.Condition()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._closing = False
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, name="proxy-accept", daemon=True).start()

    def url(self, path: str = "/api/v1") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def wait_count(self, kind: str, count: int, timeout: float = 30.0) -> list[Stamp]:
        """Block until ``count`` stamps of ``kind`` exist; return them in order."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [s for s in self.stamps if s.kind == kind]
                if len(found) >= count:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"{len(found)} of {count} {kind} stamps after {timeout}s")
                self._cond.wait(remaining)

    def close(self) -> None:
        self._closing = True
        self._listener.close()
        for sock in list(self._sockets):
            _shut(sock)

    def _accept(self) -> None:
        while not self._closing:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=2)
            except OSError:
                _shut(client)  # the shop is down: the gateway sees a dropped connection
                continue
            upstream.settimeout(None)
            for sock in (client, upstream):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self._sockets.append(sock)
            threading.Thread(
                target=self._pump, args=(client, upstream, b"POST ", "request"), daemon=True
            ).start()
            threading.Thread(
                target=self._pump, args=(upstream, client, b"HTTP/", "response"), daemon=True
            ).start()

    def _pump(self, src: socket.socket, dst: socket.socket, mark: bytes, kind: str) -> None:
        try:
            while True:
                chunk = src.recv(65536)
                if not chunk:
                    break
                if chunk.startswith(mark):
                    at = time.perf_counter()
                    with self._cond:
                        self.stamps.append(Stamp(kind, at))
                        self._cond.notify_all()
                dst.sendall(chunk)
        except OSError:
            pass
        finally:
            _shut(dst)
            _shut(src)


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


# ---------------------------------------------------------------------- MQTT stamps


@dataclass(frozen=True)
class Heard:
    topic: str
    payload: bytes
    at: float  # time.perf_counter() when paho handed it over


class StampedListener:
    """A paho client (clean session) that stamps each message on its filters.

    >>> StampedListener.__name__
    'StampedListener'
    """

    def __init__(self, broker_url: str, filters: list[str]) -> None:
        parts = urlsplit(broker_url)
        self.heard: list[Heard] = []
        self._cond = threading.Condition()
        self._subscribed = threading.Event()
        self._filters = filters
        self.client = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *_a: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(parts.hostname or "127.0.0.1", parts.port or 1883, keepalive=30)
        self.client.loop_start()
        if not self._subscribed.wait(10):
            raise TimeoutError("the listener got no SUBACK")

    def _on_connect(self, client: paho.Client, *_args: Any) -> None:
        client.subscribe([(f, 1) for f in self._filters])

    def _on_message(self, _client: paho.Client, _userdata: Any, msg: paho.MQTTMessage) -> None:
        at = time.perf_counter()
        with self._cond:
            self.heard.append(Heard(msg.topic, bytes(msg.payload), at))
            self._cond.notify_all()

    def wait_for(
        self, match: Callable[[Heard], bool], after: float, timeout: float = 30.0
    ) -> Heard:
        """The first message heard at or after ``after`` for which ``match`` holds."""
        return self.wait_all(match, after, 1, timeout)[0]

    def wait_all(
        self, match: Callable[[Heard], bool], after: float, count: int, timeout: float = 30.0
    ) -> list[Heard]:
        """The first ``count`` messages heard at or after ``after`` that ``match``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [item for item in self.heard if item.at >= after and match(item)]
                if len(found) >= count:
                    return found[:count]
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"nothing matching after {timeout}s")
                self._cond.wait(remaining)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
