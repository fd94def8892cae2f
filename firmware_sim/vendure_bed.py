"""The Vendure test bed (firmware_sim/vendure): start it, ask its Admin API what it has.

One piece of code for the demo (``./scripts/demo --vendure``) and the tests
(``tests/support/vendure.py``)::

    bed = VendureBed(Path("/tmp/vendure")).start()
    print(bed.admin_url)          # http://127.0.0.1:<port>/admin-api
    bed.paid_orders()             # [] before the gateway ordered anything
    bed.stop()

The npm packages come from ``scripts/_setup.sh`` ``rg_setup_vendure``
(``RG_VENDURE_MODULES``, else the well-known cache path). A seeded template database
is made once per machine beside them and copied for each start in a fresh directory:
a start is then a few seconds, not a seeding.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
BED = REPO / "firmware_sim" / "vendure"
VERSION = "3.7.3"  # scripts/_setup.sh RG_VENDURE_VERSION
# A local test bed on loopback: its superadmin is baked into the seeded template.
ADMIN_USER, ADMIN_PASSWORD, CHANNEL = "superadmin", "superadmin-test-bed", "household"
START_TIMEOUT = 60.0  # real seconds; a loaded Raspberry Pi needs most of it


class VendureBedError(Exception):
    """The test bed is not installed, or did not start; the message says what to do."""


def vendure_modules() -> Path:
    """Where the npm packages are; raises VendureBedError with the fix when missing."""
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    found = Path(
        os.environ.get("RG_VENDURE_MODULES")
        or cache / "reorder-gateway" / f"vendure-{VERSION}" / "node_modules"
    )
    if not (found / "@vendure" / "core").is_dir():
        raise VendureBedError(
            f"Vendure is not installed at {found} — run ./scripts/demo --vendure or "
            "./scripts/test (both install it: scripts/_setup.sh rg_setup_vendure)"
        )
    return found


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class VendureBed:
    """``node firmware_sim/vendure/index.js`` on a free port; stop/start keep the port.

    >>> VendureBed.__name__
    'VendureBed'
    """

    def __init__(self, workdir: Path, log: Path | None = None) -> None:
        self.modules = vendure_modules()
        self.workdir = workdir
        self.log = log or workdir / "vendure.log"
        self.db = workdir / "vendure.sqlite"
        self.port = _free_port()
        self.admin_url = f"http://127.0.0.1:{self.port}/admin-api"
        self.channel = CHANNEL
        self.admin_user = ADMIN_USER
        self.admin_password = ADMIN_PASSWORD
        self._process: subprocess.Popen[bytes] | None = None
        self.pid: int | None = None  # the last start's, kept after stop for reports
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
            try:
                subprocess.run(
                    ["node", str(BED / "index.js"), "--db", str(partial), "--seed-only"],
                    env=self._env(),
                    cwd=template.parent,
                    check=True,
                    capture_output=True,
                    timeout=120,
                )
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
                out = getattr(exc, "stderr", b"") or b""
                raise VendureBedError(
                    f"seeding the Vendure catalog failed: {out.decode(errors='replace')[-1500:]}"
                ) from None
            partial.replace(template)
        return template

    def start(self) -> VendureBed:
        """Starts the server and returns once its Shop API answers (or raises)."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        if not self.db.exists():
            shutil.copyfile(self._template(), self.db)
            self.db.chmod(0o600)
        with self.log.open("ab") as log:
            self._process = subprocess.Popen(
                ["node", str(BED / "index.js"), "--db", str(self.db), "--port", str(self.port)],
                env=self._env(),
                cwd=self.workdir,  # Vendure keeps its .vendure/ folder in the cwd
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C reaches the one who started it
            )
        self.pid = self._process.pid
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise VendureBedError(f"Vendure exited: {self.log_tail()}")
            if self.ready():
                return self
            time.sleep(0.1)
        self.stop()
        raise VendureBedError(f"Vendure not ready after {START_TIMEOUT:g}s: {self.log_tail()}")

    def ready(self) -> bool:
        """The Shop API answers without a login once the server is up."""
        try:
            answer = httpx.post(
                self.admin_url.replace("/admin-api", "/shop-api"),
                json={"query": "{ activeChannel { code } }"},
                headers={"vendure-token": CHANNEL},
                timeout=2,
            )
        except httpx.HTTPError:
            return False
        return answer.status_code == 200

    def exit_code(self) -> int | None:
        return None if self._process is None else self._process.poll()

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(timeout=10)
        self._process = None

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""

    def admin(self, query: str, variables: dict[str, Any] | None = None, login: bool = True) -> Any:
        """One Admin API call as the superadmin (the bed's own view of the shop)."""
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
            raise VendureBedError(json.dumps(document["errors"])[:500])
        return document["data"]

    def orders(self) -> list[dict[str, Any]]:
        """Every order in the shop with its key, state, total and lines."""
        data = self.admin(
            "{ orders(options: {take: 1000}) { items { id code state totalWithTax "
            "customFields { gatewayKey } lines { quantity } } } }"
        )
        return list(data["orders"]["items"])

    def paid_orders(self) -> list[dict[str, Any]]:
        """Orders with a payment: code, state, SKUs and the press (event id) that paid them."""
        data = self.admin(
            "{ orders(options: {take: 1000}) { items { code state customFields { gatewayKey } "
            "lines { quantity productVariant { sku } } payments { metadata } } } }"
        )
        paid: list[dict[str, Any]] = []
        for order in data["orders"]["items"]:
            for payment in order["payments"] or []:
                event = (payment["metadata"] or {}).get("event_id")
                if event is not None:
                    paid.append(
                        {
                            "code": order["code"],
                            "state": order["state"],
                            "key": order["customFields"]["gatewayKey"],
                            "skus": [line["productVariant"]["sku"] for line in order["lines"]],
                            "event_id": str(event),
                        }
                    )
        return paid

    def orders_by_event(self) -> dict[str, int]:
        """Paid orders per press: the event id the gateway put in the payment's metadata."""
        counts: dict[str, int] = {}
        for order in self.paid_orders():
            counts[order["event_id"]] = counts.get(order["event_id"], 0) + 1
        return counts

    def orders_by_key(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for order in self.orders():
            key = order["customFields"]["gatewayKey"]
            if key is not None:
                counts[key] = counts.get(key, 0) + 1
        return counts
