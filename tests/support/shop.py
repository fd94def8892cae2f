"""The reference shop for tests: in-process (fast) or as a process (kill, restart).

    from tests.support.shop import shop_fixture  # noqa: F401  (registers "shop")

    def test_x(shop: ShopServer) -> None:
        with shop_client(shop.url, shop.token) as client:
            client.post("/orders", json=order_body("e1"), headers={"Idempotency-Key": "k1"})
        assert len(shop.orders()) == 1

``ShopProcess`` runs ``python -m firmware_sim.shop --port 0`` and reads the URL
from its first stdout line; a restart keeps the port, so a gateway configured
with ``.url`` reaches the new process.
"""

from __future__ import annotations

import os
import secrets
import selectors
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from firmware_sim.shop.server import ShopServer

REPO = Path(__file__).resolve().parents[2]


def order_body(
    event_id: str,
    sku: str = "TIDE-PODS-42",
    quantity: int = 1,
    device: str = "laundry",
    trigger: str = "press",
    gateway: str = "test-gateway",
    created_at: str = "2026-01-02T03:04:05Z",
) -> dict[str, Any]:
    """A valid ``POST /orders`` body."""
    return {
        "sku": sku,
        "quantity": quantity,
        "source": {"gateway": gateway, "device": device, "trigger": trigger, "event_id": event_id},
        "created_at": created_at,
    }


def shop_client(url: str, token: str, timeout: float = 10.0) -> httpx.Client:
    """An httpx client for the shop's API (paths relative to ``/api/v1``)."""
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=timeout)


class ShopProcess:
    """The shop as a subprocess, for kill/restart and CLI tests."""

    def __init__(
        self,
        workdir: Path,
        *,
        token: str | None = None,
        time_scale: float | None = None,
        ship_after: str | None = None,
        deliver_after: str | None = None,
        faults: Mapping[str, object] | None = None,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.db = self.workdir / "shop.db"
        self.log = self.workdir / "shop.log"
        self.token = token or secrets.token_urlsafe(16)
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.args: list[str] = ["--db", str(self.db)]
        if time_scale is not None:
            self.args += ["--time-scale", str(time_scale)]
        if ship_after is not None:
            self.args += ["--ship-after", ship_after]
        if deliver_after is not None:
            self.args += ["--deliver-after", deliver_after]
        for name, value in (faults or {}).items():
            self.args += [f"--{name.replace('_', '-')}", str(value)]
        self.args += list(extra_args)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v1"

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> ShopProcess:
        # The token goes by environment, not argv, where ps would show it.
        env = {**os.environ, "SHOP_TOKEN": self.token}
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "firmware_sim.shop", "--port", str(self.port), *self.args],
                stdout=subprocess.PIPE,
                stderr=log,
                cwd=REPO,
                env=env,
            )
        line = self._first_line(timeout)
        prefix = "listening on "
        if not line.startswith(prefix):
            self.kill()
            raise RuntimeError(f"shop did not start: {line!r}; log:\n{self.log.read_text()}")
        self.port = int(line[len(prefix) :].split(":")[2].split("/")[0])
        return self

    def _first_line(self, timeout: float) -> str:
        assert self.proc is not None and self.proc.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self.proc.stdout, selectors.EVENT_READ)
            if not selector.select(timeout):
                self.kill()
                raise TimeoutError(
                    f"shop printed nothing in {timeout}s; log:\n{self.log.read_text()}"
                )
        return self.proc.stdout.readline().decode().strip()

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM and wait; returns the exit code (0 when it shut down cleanly)."""
        code = None
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            code = self.proc.returncode
            self._close()
        return code

    def kill(self) -> None:
        """SIGKILL: no chance to flush or close anything."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
            self._close()

    def _close(self) -> None:
        assert self.proc is not None
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def client(self, timeout: float = 10.0) -> httpx.Client:
        return shop_client(self.url, self.token, timeout)

    def _admin(self, method: str, path: str, **kwargs: Any) -> Any:
        response = httpx.request(
            method,
            f"{self.root}{path}",
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=10.0,
            **kwargs,
        )
        response.raise_for_status()
        return response.json()

    def orders(self, sku: str | None = None) -> list[dict[str, Any]]:
        params = {"sku": sku} if sku else None
        return list(self._admin("GET", "/api/v1/orders", params=params)["orders"])

    def stats(self) -> dict[str, Any]:
        return dict(self._admin("GET", "/_admin/stats"))

    def set_faults(self, **knobs: object) -> dict[str, Any]:
        return dict(self._admin("POST", "/_admin/faults", json=knobs))


# Fixtures are registered under the names "shop" and "shop_process". Import
# ``shop_fixture`` / ``shop_process_fixture`` in a test module whose tests take
# a ``shop`` argument, so ruff does not see the argument redefine an import.


@pytest.fixture(name="shop")
def shop_fixture(tmp_path: Path) -> Iterator[ShopServer]:
    """An in-process shop on a free loopback port, with its own database."""
    server = ShopServer(tmp_path / "shop" / "shop.db", token=secrets.token_urlsafe(16)).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(name="shop_process")
def shop_process_fixture(tmp_path: Path) -> Iterator[ShopProcess]:
    """The shop as a subprocess (``python -m firmware_sim.shop``)."""
    process = ShopProcess(tmp_path / "shop-process").start()
    try:
        yield process
    finally:
        process.kill()


shop = shop_fixture
shop_process = shop_process_fixture
