"""A real Home Assistant (2024.3.3) for tests: own config dir, own port, onboarded,
with a long-lived token, the shopping list and the MQTT integration pointed at a
broker the test gives.

    ha = HomeAssistant(tmp_path / "ha", broker_port=1883).start()
    ha.get("/api/states/sensor.x")       # JSON, authorised with the token
    ha.log_text()                        # home-assistant.log, for warnings
    ha.stop()

It is installed by ``rg_setup_homeassistant`` (scripts/_setup.sh) into its own venv,
found through ``RG_HA_HASS`` or the cache path that function uses. Start-up takes
several seconds, so one instance serves a whole test session (tests/conftest.py).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from tests.support.ports import free_port

__all__ = ["HA_VERSION", "HomeAssistant", "hass_binary"]

HA_VERSION = "2024.3.3"
_ONBOARD = Path(__file__).with_name("ha_onboard.py")

# No default_config: it pulls in integrations that want the internet (cloud,
# updates, analytics uploads). Only what the tests use, plus what onboarding and
# the config-flow REST API need.
_CONFIGURATION = """\
homeassistant:
  name: Test home
  latitude: 52.52
  longitude: 13.40
  elevation: 34
  unit_system: metric
  time_zone: UTC
  currency: EUR
  country: DE
http:
  server_host: 127.0.0.1
  server_port: {port}
api:
config:
onboarding:
websocket_api:
logger:
  default: warning
"""


def hass_binary() -> Path | None:
    """The ``hass`` of the venv rg_setup_homeassistant made, or None."""
    named = os.environ.get("RG_HA_HASS")
    if named:
        return Path(named) if Path(named).is_file() else None
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    found = cache / "reorder-gateway" / f"homeassistant-{HA_VERSION}" / "bin" / "hass"
    return found if found.is_file() else None


class HomeAssistant:
    """One Home Assistant process; see the module docstring."""

    def __init__(self, directory: Path, *, broker_port: int) -> None:
        hass = hass_binary()
        if hass is None:
            raise RuntimeError(
                f"Home Assistant {HA_VERSION} is not installed: run ./scripts/test (its "
                "rg_setup_homeassistant installs it) or set RG_HA_HASS to its hass binary"
            )
        self.hass = hass
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.broker_port = broker_port
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = ""
        self._proc: subprocess.Popen[bytes] | None = None
        self.startup_seconds = 0.0

    # ------------------------------------------------------------------ life cycle

    def start(self, timeout: float = 90.0) -> HomeAssistant:
        started = time.monotonic()
        (self.dir / "configuration.yaml").write_text(_CONFIGURATION.format(port=self.port))
        self._output = open(self.dir / "stdout.log", "ab")  # noqa: SIM115 - closed in stop
        self._proc = subprocess.Popen(
            # --skip-pip: every requirement is installed by the set-up; a missing one
            # must fail here, not send Home Assistant to PyPI in the middle of a test.
            [str(self.hass), "-c", str(self.dir), "--skip-pip"],
            stdout=self._output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            self._wait_http(started + timeout)
            self.token = self._onboard()
            self._setup_mqtt()
            self._setup_shopping_list()
            self._wait_entity("todo.shopping_list", started + timeout)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - started
        return self

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self._output.close()

    def _alive(self) -> None:
        if self._proc is None or self._proc.poll() is not None:
            raise RuntimeError(f"Home Assistant exited; see {self.dir / 'stdout.log'}:\n"
                               + self.log_text()[-3000:])  # fmt: skip

    def _wait_http(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            self._alive()
            try:
                if httpx.get(f"{self.url}/api/onboarding", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"Home Assistant did not answer on {self.url}")

    def _onboard(self) -> str:
        python = self.hass.with_name("python")
        done = subprocess.run(
            [str(python), str(_ONBOARD), self.url],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"onboarding failed: {done.stderr[-2000:]}")
        return done.stdout.strip()

    def _setup_mqtt(self) -> None:
        """The MQTT integration through the config-flow REST API, as the UI does it."""
        step: dict[str, Any] = {}
        for _ in range(3):  # its connection test has a 5 s limit: a busy machine may miss it
            flow = self.post("/api/config/config_entries/flow", {"handler": "mqtt"})
            step = self.post(
                f"/api/config/config_entries/flow/{flow['flow_id']}",
                {"broker": "127.0.0.1", "port": self.broker_port},
            )
            if step.get("type") == "create_entry":
                return
        raise RuntimeError(f"MQTT config flow did not finish: {step}")

    def _setup_shopping_list(self) -> None:
        # Its YAML import in 2024.3 stops at a form; the UI's flow creates the entry.
        flow = self.post("/api/config/config_entries/flow", {"handler": "shopping_list"})
        step = self.post(f"/api/config/config_entries/flow/{flow['flow_id']}", {})
        if step.get("type") != "create_entry":
            raise RuntimeError(f"shopping list config flow did not finish: {step}")

    def _wait_entity(self, entity_id: str, deadline: float) -> None:
        while time.monotonic() < deadline:
            self._alive()
            if self.state(entity_id) is not None:
                return
            time.sleep(0.2)
        raise TimeoutError(f"{entity_id} did not appear")

    # ------------------------------------------------------------------ REST

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def get(self, path: str) -> Any:
        response = httpx.get(f"{self.url}{path}", headers=self.headers, timeout=10.0)
        response.raise_for_status()
        return response.json()

    def post(self, path: str, body: dict[str, Any]) -> Any:
        response = httpx.post(f"{self.url}{path}", headers=self.headers, json=body, timeout=10.0)
        response.raise_for_status()
        return response.json()

    def state(self, entity_id: str) -> dict[str, Any] | None:
        response = httpx.get(
            f"{self.url}/api/states/{entity_id}", headers=self.headers, timeout=10.0
        )
        if response.status_code == 404:
            return None
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def wait_state(self, entity_id: str, predicate: Any, timeout: float = 15.0) -> dict[str, Any]:
        """The entity's state once ``predicate(state_dict)`` holds."""
        deadline = time.monotonic() + timeout
        last: dict[str, Any] | None = None
        while time.monotonic() < deadline:
            last = self.state(entity_id)
            if last is not None and predicate(last):
                return last
            time.sleep(0.1)
        raise AssertionError(f"{entity_id} never matched; last state: {last}")

    def shopping_list(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.get("/api/shopping_list")
        return items

    def clear_shopping_list(self) -> None:
        """Remove every item (there is no REST call for that in 2024.3: the to-do
        entity's service removes them by uid)."""
        uids = [item["id"] for item in self.shopping_list()]
        if uids:
            self.post("/api/services/todo/remove_item",
                      {"entity_id": "todo.shopping_list", "item": uids})  # fmt: skip

    def log_text(self) -> str:
        path = self.dir / "home-assistant.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def log_mark(self) -> int:
        """Where the log ends now; :meth:`log_since` reads what came after."""
        path = self.dir / "home-assistant.log"
        return path.stat().st_size if path.exists() else 0

    def log_since(self, mark: int) -> str:
        path = self.dir / "home-assistant.log"
        if not path.exists():
            return ""
        with path.open("rb") as handle:
            handle.seek(mark)
            return handle.read().decode(errors="replace")


if __name__ == "__main__":  # a manual look: python -m tests.support.homeassistant
    from tests.support.broker import Broker

    root = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/ha-manual")
    broker = Broker(root / "broker").start()
    try:
        ha = HomeAssistant(root / "ha", broker_port=broker.port).start()
        print(f"ready in {ha.startup_seconds:.1f}s at {ha.url}; token {ha.token[:12]}…")
        ha.stop()
    finally:
        broker.kill()
