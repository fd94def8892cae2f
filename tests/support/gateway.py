"""The gateway as a real subprocess, for end-to-end tests: start, kill -9, restart.

    with GatewayProcess(tmp_path / "gw", {"limits": {"max_orders_per_day": 1000}},
                        broker_url=broker.url, shop_url=shop.url,
                        shop_token=shop.token) as gw:
        gw.wait_ready()
        pub.publish(gw.button_topic, b'{"event": "press", "id": "p1", "seq": 1}')
        gw.events.wait_for(lambda evs: any(e.get("event_id") == "p1" for e in evs))
        gw.kill()                     # SIGKILL: no flush, no goodbye
        gw.restart(); gw.wait_ready()
        code, seconds = gw.terminate()

The YAML is ``default_config()`` with ``config`` merged over it (dicts merge,
everything else replaces) and is written 0600 into ``workdir``; the shop token
goes into a 0600 secret file, never into argv. stderr of every start is
appended to ``workdir/gateway.log`` after a ``=== start N ===`` line.

``events`` collects the JSON the gateway publishes on ``<prefix>/<id>/events``
through a client of its own that keeps a persistent session, so it survives
gateway restarts and broker restarts alike.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

from tests.support.publisher import Collector, Publisher, Received

REPO = Path(__file__).resolve().parents[2]
BUTTON_TOPIC = "home/reorder/e2e-button"
# The MQTT link logs this (debug) for each SUBACK, just before it announces
# ``online``: from here on nothing published to the gateway's topics is missed.
READY_MARKER = "MQTT: subscribed "


def default_config(
    workdir: Path, broker_url: str, shop_url: str, token_file: Path
) -> dict[str, Any]:
    """One reorder-button on ``BUTTON_TOPIC`` ordering one product.

    The Dash rule and the daily caps are off, so that every distinct press must
    become exactly one order — which is what the fault tests count.
    """
    return {
        "gateway": {"id": "e2e", "state_dir": str(workdir / "state")},
        "mqtt": {"url": broker_url, "keepalive": "5s"},
        "commerce": {
            "base_url": shop_url,
            "token_file": str(token_file),
            "timeout": "5s",
            "connect_timeout": "2s",
        },
        "limits": {"max_orders_per_day": 1_000_000},
        "metrics": {"enabled": False, "port": 0},
        "homeassistant": {"discovery": False},
        "products": {"detergent": {"sku": "TIDE-PODS-42", "one_open_order": False}},
        "buttons": [
            {
                "name": "e2e-button",
                "mqtt": BUTTON_TOPIC,
                "profile": "reorder-button",
                "product": "detergent",
            }
        ],
    }


def merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``over`` merged into a copy of ``base``: nested dicts merge, other values replace."""
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _private_write(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(path, 0o600)


class EventWatcher:
    """Collects decisions (JSON) and status payloads the gateway publishes.

    A :class:`Publisher` with a persistent session that watches both topics (it
    subscribes again on every connect); it connects in the background, so it
    may be created before the broker exists.
    """

    def __init__(self, broker_url: str, gateway_id: str, prefix: str = "reorder") -> None:
        self.events_topic = f"{prefix}/{gateway_id}/events"
        self.status_topic = f"{prefix}/{gateway_id}/status"
        self.events: Collector[dict[str, Any]] = Collector()
        self.status: Collector[bytes] = Collector()
        self.client = Publisher(
            broker_url,
            f"e2e-watcher-{gateway_id}-{os.getpid()}-{id(self)}",
            persistent=True,
            wait=False,
            watch=(self.events_topic, self.status_topic),
            on_message=self._on_message,
            keepalive=10,
            max_reconnect_delay=1,
        )
        self.subscribed = self.client.watching

    def close(self) -> None:
        self.client.close()

    def _on_message(self, message: Received) -> None:
        if message.topic == self.status_topic:
            self.status.append(message.payload)
            return
        try:
            document = json.loads(message.payload)
        except ValueError:
            document = {"unparsable": message.payload.decode("utf-8", "replace")}
        self.events.append(document)


class GatewayProcess:
    """``python -m gateway run`` in its own working directory; see the module docstring."""

    def __init__(
        self,
        workdir: Path,
        config: Mapping[str, Any] | None = None,
        *,
        broker_url: str,
        shop_url: str,
        shop_token: str,
        time_scale: float | None = None,
        demo: bool = False,
        extra_env: Mapping[str, str] | None = None,
    ) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.broker_url = broker_url
        self.time_scale = time_scale
        self.demo = demo
        self.extra_env = dict(extra_env or {})
        self.token_file = self.workdir / "shop-token"
        _private_write(self.token_file, shop_token)
        self.config = merge(
            default_config(self.workdir, broker_url, shop_url, self.token_file), config or {}
        )
        self.config_path = self.workdir / "gateway.yaml"
        _private_write(self.config_path, yaml.safe_dump(self.config, sort_keys=False))
        self.log_path = self.workdir / "gateway.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self._log_offset = 0
        self._watcher: EventWatcher | None = None

    # ------------------------------------------------------------------ facts

    @property
    def gateway_id(self) -> str:
        return str(self.config["gateway"]["id"])

    @property
    def prefix(self) -> str:
        return str(self.config.get("mqtt", {}).get("topic_prefix", "reorder"))

    @property
    def state_dir(self) -> Path:
        return Path(self.config["gateway"]["state_dir"])

    @property
    def button_topic(self) -> str:
        """The MQTT topic of the first configured button."""
        return str(self.config["buttons"][0]["mqtt"])

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise RuntimeError("the gateway is not running")
        return self.proc.pid

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def watcher(self) -> EventWatcher:
        if self._watcher is None:
            self._watcher = EventWatcher(self.broker_url, self.gateway_id, self.prefix)
        return self._watcher

    @property
    def events(self) -> Collector[dict[str, Any]]:
        """Every decision published on the events topic, across restarts."""
        return self.watcher.events

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def current_log(self) -> str:
        """The log of the latest start only."""
        with self.log_path.open("rb") as handle:
            handle.seek(self._log_offset)
            return handle.read().decode(errors="replace")

    # ------------------------------------------------------------------ life cycle

    def start(self, watcher_timeout: float = 5.0) -> GatewayProcess:
        """Start the process; first give the watcher a moment to subscribe, so the
        decisions of this start are all collected (skipped if no broker is up)."""
        if self.running:
            raise RuntimeError("the gateway is already running")
        self.watcher.subscribed.wait(watcher_timeout if self.starts == 0 else 0)
        self.starts += 1
        with self.log_path.open("ab") as log:
            log.write(f"=== start {self.starts} ===\n".encode())
            log.flush()
            self._log_offset = log.tell()
            args = [sys.executable, "-m", "gateway", "run", "--config", str(self.config_path)]
            args += ["--log-level", "debug"]
            if self.time_scale is not None:
                args += ["--time-scale", str(self.time_scale)]
            if self.demo:
                args.append("--demo")
            env = {**os.environ, "PYTHONPATH": str(REPO), **self.extra_env}
            self.proc = subprocess.Popen(
                args,
                cwd=self.workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        return self

    def wait_ready(self, timeout: float = 20.0) -> None:
        """Until this start is connected and subscribed and ``online`` is on the status
        topic. Fails early, with the log, if the process exits."""
        deadline = time.monotonic() + timeout
        while READY_MARKER not in self.current_log():
            self._check_alive()
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"gateway not subscribed within {timeout}s; log:\n{self.tail()}"
                )
            time.sleep(0.02)
        remaining = max(0.5, deadline - time.monotonic())
        with Publisher(self.broker_url, timeout=remaining) as probe:
            probe.subscribe(f"{self.prefix}/{self.gateway_id}/status")
            probe.wait_for_message(
                f"{self.prefix}/{self.gateway_id}/status", b"online", timeout=remaining
            )

    def _check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"gateway exited with {self.proc.returncode}; log:\n{self.tail()}")

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def kill(self) -> None:
        """SIGKILL and reap: like pulling the plug on the process (not the disk)."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
            self.proc = None

    def terminate(self, timeout: float = 15.0) -> tuple[int, float]:
        """SIGTERM; returns (exit code, seconds until it exited). SIGKILL after ``timeout``."""
        if self.proc is None:
            raise RuntimeError("the gateway is not running")
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(
                f"gateway ignored SIGTERM for {timeout}s; log:\n{self.tail()}"
            ) from None
        finally:
            elapsed = time.monotonic() - started
            self.proc = None
        return code, elapsed

    def restart(self) -> GatewayProcess:
        """Kill (if running) and start again on the same state directory."""
        self.kill()
        return self.start()

    def close(self) -> None:
        """Kill the process and stop the watcher; safe to call twice."""
        self.kill()
        if self._watcher is not None:
            self._watcher.close()
            self._watcher = None

    def __enter__(self) -> GatewayProcess:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def press_payload(event_id: str, seq: int) -> bytes:
    """A ``reorder-button`` press, as our button firmware sends it."""
    return json.dumps({"event": "press", "id": event_id, "seq": seq}).encode()


def orders_by_event(orders: list[dict[str, Any]]) -> dict[str, int]:
    """How many shop orders carry each ``source.event_id``."""
    counts: dict[str, int] = {}
    for order in orders:
        event_id = str(order["source"]["event_id"])
        counts[event_id] = counts.get(event_id, 0) + 1
    return counts
