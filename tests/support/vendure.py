"""A real Vendure server (firmware_sim/vendure) for the vendure backend's tests.

    def test_x(vendure: VendureServer) -> None:
        backend = VendureCommerce(vendure.section())
        ...
        assert vendure.orders_by_key()["rg1_x"] == 1

The npm packages come from ``scripts/_setup.sh`` ``rg_setup_vendure``
(``RG_VENDURE_MODULES``, else the well-known cache path). A seeded template database
is made once per machine beside them and copied for each session: a start is then a
few seconds, not a seeding.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.config.models import VendureSection
from tests.support.ports import free_port

REPO = Path(__file__).resolve().parents[2]
BED = REPO / "firmware_sim" / "vendure"
VERSION = "3.7.3"
ADMIN_USER, ADMIN_PASSWORD, CHANNEL = "superadmin", "superadmin-test-bed", "household"


def vendure_modules() -> Path:
    """Where the npm packages are; fails (not skips) the test when they are missing."""
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    found = Path(
        os.environ.get("RG_VENDURE_MODULES")
        or cache / "reorder-gateway" / f"vendure-{VERSION}" / "node_modules"
    )
    if not (found / "@vendure" / "core").is_dir():
        pytest.fail(f"Vendure is not installed at {found} — run ./scripts/test (rg_setup_vendure)")
    return found


class VendureServer:
    """``node firmware_sim/vendure/index.js`` on a free port; stop/start keep the port."""

    def __init__(self, workdir: Path) -> None:
        self.modules = vendure_modules()
        self.workdir = workdir
        self.db = workdir / "vendure.sqlite"
        self.port = free_port()
        self.admin_url = f"http://127.0.0.1:{self.port}/admin-api"
        self._process: subprocess.Popen[bytes] | None = None
        self._token: str | None = None

    def _env(self) -> dict[str, str]:
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "NODE_PATH": str(self.modules),
            "VENDURE_ADMIN_USER": ADMIN_USER,
            "VENDURE_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "VENDURE_CHANNEL_TOKEN": CHANNEL,
            # A test bed reports nothing anywhere (and this network is closed).
            "VENDURE_DISABLE_TELEMETRY": "true",
        }

    def _template(self) -> Path:
        digest = hashlib.sha256()
        for name in ("index.js", "products.csv", "package-lock.json"):
            digest.update((BED / name).read_bytes())
        template = self.modules.parent / f"template-{digest.hexdigest()[:12]}.sqlite"
        if not template.exists():
            partial = template.with_suffix(f".{os.getpid()}.part")
            subprocess.run(
                ["node", str(BED / "index.js"), "--db", str(partial), "--seed-only"],
                env=self._env(),
                cwd=template.parent,
                check=True,
                capture_output=True,
                timeout=120,
            )
            partial.replace(template)
        return template

    def start(self) -> VendureServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        if not self.db.exists():
            shutil.copyfile(self._template(), self.db)
        with (self.workdir / "vendure.log").open("ab") as log:
            self._process = subprocess.Popen(
                ["node", str(BED / "index.js"), "--db", str(self.db), "--port", str(self.port)],
                env=self._env(),
                cwd=self.workdir,  # Vendure keeps its .vendure/ folder in the cwd
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"Vendure exited: {self.log_tail()}")
            try:
                # The Shop API answers without a login once the server is up.
                shop_api = self.admin_url.replace("/admin-api", "/shop-api")
                answer = httpx.post(
                    shop_api,
                    json={"query": "{ activeChannel { code } }"},
                    headers={"vendure-token": CHANNEL},
                    timeout=2,
                )
                if answer.status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise TimeoutError(f"Vendure not ready after 60s: {self.log_tail()}")

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(timeout=10)
        self._process = None

    def log_tail(self) -> str:
        path = self.workdir / "vendure.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def section(self, **overrides: Any) -> VendureSection:
        values: dict[str, Any] = {
            "adapter": "vendure",
            "admin_api_url": self.admin_url,
            "channel_token": CHANNEL,
            "admin_user": ADMIN_USER,
            "admin_password": ADMIN_PASSWORD,
            "customer_email": "household@example.org",
            "timeout": "10s",
        }
        values.update(overrides)
        return VendureSection.model_validate(values)

    def admin(self, query: str, variables: dict[str, Any] | None = None, login: bool = True) -> Any:
        """One Admin API call as the superadmin (the test's own view of the shop)."""
        headers = {"vendure-token": CHANNEL}
        if login and self._token is None:
            answer = httpx.post(
                self.admin_url,
                json={
                    "query": "mutation($u:String!,$p:String!){login(username:$u,password:$p)"
                    "{__typename}}",
                    "variables": {"u": ADMIN_USER, "p": ADMIN_PASSWORD},
                },
                headers=headers,
                timeout=10,
            )
            self._token = answer.headers["vendure-auth-token"]
        if login:
            headers["Authorization"] = f"Bearer {self._token}"
        answer = httpx.post(
            self.admin_url,
            json={"query": query, "variables": variables or {}},
            headers=headers,
            timeout=10,
        )
        document = answer.json()
        if document.get("errors"):
            raise RuntimeError(json.dumps(document["errors"])[:500])
        return document["data"]

    def orders(self) -> list[dict[str, Any]]:
        """Every order in the shop with its key, state and total."""
        data = self.admin(
            "{ orders(options: {take: 1000}) { items { id code state totalWithTax "
            "customFields { gatewayKey } lines { quantity } } } }"
        )
        return list(data["orders"]["items"])

    def orders_by_event(self) -> dict[str, int]:
        """Paid orders per press: the event id the gateway put in the payment's metadata."""
        data = self.admin("{ orders(options: {take: 1000}) { items { payments { metadata } } } }")
        counts: dict[str, int] = {}
        for order in data["orders"]["items"]:
            for payment in order["payments"] or []:
                event = (payment["metadata"] or {}).get("event_id")
                if event is not None:
                    counts[event] = counts.get(event, 0) + 1
        return counts

    def orders_by_key(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for order in self.orders():
            key = order["customFields"]["gatewayKey"]
            if key is not None:
                counts[key] = counts.get(key, 0) + 1
        return counts


@pytest.fixture(scope="session")
def vendure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VendureServer]:
    server = VendureServer(tmp_path_factory.mktemp("vendure")).start()
    try:
        yield server
    finally:
        server.stop()
