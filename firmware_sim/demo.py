"""The one-command demo: broker, shop, gateway and simulated household, told as a story.

``./scripts/demo`` sets up the machine and then runs this module::

    python -m firmware_sim.demo [--seconds 60] [--time-scale 600] [--state-dir demo-state]
                                [--vendure]

It starts a private mosquitto on a free loopback port (its own config file), the
reference shop, ``reorder-gateway run --demo`` on ``config/demo.yaml`` and
``reorder-sim`` with ``firmware_sim/scenarios/demo.yaml``, all on one scaled
timeline (``RG_TIME_ORIGIN``). With ``--vendure`` a local Vendure
(firmware_sim/vendure, seeded catalog) takes the reference shop's place: the gateway
runs on a copy of the config whose ``shops:`` section points at it, and the summary
counts the orders Vendure has paid. Every run gets a fresh directory under
``demo-state/`` for the logs and the state, so the story on stdout stays clean.

The story comes from the gateway's decisions on ``reorder/demo/events`` and the
household's actions printed by the simulator; the shop is asked for the orders it
really has. The last line of output is a JSON summary for machines.

Exit codes: 0 done (``--seconds`` elapsed, or Ctrl-C), 1 a component failed (the
reason and the tail of its log are printed), 2 bad options.

>>> DemoOptions().time_scale is None
True
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import IO, Any

import httpx
import paho.mqtt.client as mqtt
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from devices import ProfileOptions, get_profile
from firmware_sim.cliargs import positive_number
from firmware_sim.demo_story import Story
from firmware_sim.scenario import ScenarioError, load_scenario
from firmware_sim.vendure_bed import ADMIN_PASSWORD as VENDURE_PASSWORD
from firmware_sim.vendure_bed import ADMIN_USER as VENDURE_USER
from firmware_sim.vendure_bed import CHANNEL as VENDURE_CHANNEL
from firmware_sim.vendure_bed import VERSION as VENDURE_VERSION
from firmware_sim.vendure_bed import VendureBed, VendureBedError
from gateway.clock import ORIGIN_ENV, Clock, make_clock
from gateway.config.load import ConfigError, load_config

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = REPO / "config" / "demo.yaml"
DEFAULT_SCENARIO = REPO / "firmware_sim" / "scenarios" / "demo.yaml"
START_TIMEOUT = 20.0  # real seconds for any one component to come up
DRAIN = 1.5  # real seconds after the household stops, for the last decisions to land
SIM_GRACE = 15.0  # real seconds the sim may run past the demo's --seconds
LOG_TAIL = 20


class StartInterruptedError(Exception):
    """Ctrl-C or SIGTERM while the components were starting: stop, and exit 0."""


class DemoError(Exception):
    """A component did not start or died; ``log`` is the file to show the tail of."""

    def __init__(self, reason: str, log: Path | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.log = log


@dataclass(frozen=True)
class DemoOptions:
    """What to run, and for how long (``seconds=None``: until Ctrl-C)."""

    seconds: float | None = None
    time_scale: float | None = None
    config: Path = DEFAULT_CONFIG
    scenario: Path = DEFAULT_SCENARIO
    state_dir: Path = Path("demo-state")
    vendure: bool = False  # a local Vendure instead of the reference shop
    # Ship and deliver within ~3 sim hours, so the morning's orders arrive, the
    # jar is refilled and the afternoon's presses order again.
    ship_after: str = "1h"
    deliver_after: str = "2h"


class Child:
    """One component as a subprocess, in its own session so that a Ctrl-C reaches only
    the demo, which then stops the components in order.

    >>> Child("shop", ["true"], Path("/tmp/shop.log")).pid is None
    True
    """

    def __init__(
        self, name: str, argv: list[str], log: Path, env: dict[str, str] | None = None
    ) -> None:
        self.name = name
        self.argv = argv
        self.log = log
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    def start(self, stdout: int | IO[bytes] | None = None) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log if stdout is None else stdout,
                stderr=log,
                cwd=REPO,
                env=self.env,
                start_new_session=True,
            )

    def exit_code(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def stop(self, timeout: float = 6.0) -> None:
        """SIGTERM, wait, then SIGKILL: every component exits on SIGTERM within seconds."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def tail(path: Path, lines: int = LOG_TAIL) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:]) or "(the log is empty)"


def timeline_origin(start: float, scale: float, now: float | None = None) -> float:
    """The ``RG_TIME_ORIGIN`` that makes every scaled clock read ``start`` at ``now``.

    A scaled clock reads ``origin + (real - origin) * scale`` (see
    :func:`gateway.clock.make_clock`); solved for the origin. At scale 1 the
    components run on the machine's clock and the origin is not used.

    >>> origin = timeline_origin(1_000.0, 600.0, now=5_000.0)
    >>> round(origin + (5_000.0 - origin) * 600.0, 6)
    1000.0
    """
    real = time.time() if now is None else now
    if scale == 1.0:
        return real
    return (real * scale - start) / (scale - 1.0)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def mosquitto_binary() -> str:
    found = shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else None
    )
    if found is None:
        raise DemoError(
            "mosquitto is not installed: run ./scripts/demo (it installs it), or "
            "sudo apt-get install -y mosquitto"
        )
    return found


def new_run_dir(root: Path) -> Path:
    """A fresh private directory per run: the gateway's key secret lives under it."""
    root.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    for n in range(100):
        run_dir = root / (f"run-{stamp}" if n == 0 else f"run-{stamp}-{n}")
        try:
            run_dir.mkdir(mode=0o700)
        except FileExistsError:
            continue
        return run_dir
    raise DemoError(f"cannot create a run directory under {root}")


class Demo:
    """Starts everything, tells the story, stops everything.

    >>> # Demo(DemoOptions(seconds=60)).run()  -> 0, after printing the summary
    """

    def __init__(self, options: DemoOptions, out: IO[str] | None = None) -> None:
        self.options = options
        self.out = out or sys.stdout
        self.stop_event = threading.Event()
        self.children: list[Child] = []
        self.run_dir = Path()
        self.token = secrets.token_urlsafe(16)  # never printed, passed by environment only
        self.mqtt_url = ""
        self.shop_url = ""
        self.online = threading.Event()
        self.listener: mqtt.Client | None = None
        self.story: Story | None = None
        self.sim: Child | None = None
        self.sim_summary: dict[str, Any] = {}
        self._sim_reader: threading.Thread | None = None
        self._shop_ids: dict[tuple[str, str], str] = {}
        self.vendure: VendureBed | None = None
        self.gateway_config = options.config  # with --vendure: the run's copy
        self.timeline: Clock = make_clock(None)  # the shared clock, once components start

    # ------------------------------------------------------------------ running

    def run(self) -> int:
        """Blocks until ``seconds`` passed or Ctrl-C/SIGTERM; returns the exit code."""
        self._install_signals()
        started = time.monotonic()
        failure: DemoError | None = None
        orders: list[dict[str, Any]] = []
        os.umask(0o077)  # logs, databases and the broker's config: for our eyes only
        try:
            self._prepare()
            self._start_all()
            self._watch(started)
            orders = self._finish_household()
        except DemoError as exc:
            failure = exc
        except StartInterruptedError:
            self.say("stopped before the household started")
        finally:
            self._stop_all()
        return self._report(failure, orders, time.monotonic() - started)

    def _install_signals(self) -> None:
        def on_stop(_signum: int, _frame: FrameType | None) -> None:
            self.stop_event.set()

        signal.signal(signal.SIGINT, on_stop)
        signal.signal(signal.SIGTERM, on_stop)

    def _prepare(self) -> None:
        opts = self.options
        try:
            scenario = load_scenario(opts.scenario)
        except ScenarioError as exc:
            raise DemoError("the scenario is invalid:\n" + "\n".join(exc.problems)) from None
        try:
            config = load_config(opts.config).config
        except ConfigError as exc:
            raise DemoError("the gateway config is invalid:\n" + "\n".join(exc.messages)) from None
        self.scenario = scenario
        self.config = config
        self.scale = opts.time_scale or scenario.time_scale
        self.run_dir = new_run_dir(opts.state_dir).resolve()
        if opts.vendure:
            config = self._vendure_config()
        self.story = Story(config, scenario, self.scale, self.out, lookup=self._lookup)
        shop_log = "vendure.log" if opts.vendure else "shop.log"
        self.say(f"reorder-gateway demo: {scenario.description}")
        self.say(
            f"  logs and state: {self.run_dir}/ (mosquitto.log {shop_log} gateway.log sim.log)"
        )
        if self.scale != 1.0:
            begins = datetime.fromtimestamp(scenario.start, UTC).strftime("%Y-%m-%d %H:%M")
            self.say(
                f"  clock       simulated, x{self.scale:g} from {begins} UTC: the story, the "
                "logs ('sim' times), the status file and 'queue' all tell it"
            )

    def _vendure_config(self) -> Any:
        """The demo config with its ``commerce:`` replaced by one Vendure shop under
        ``shops:``, written with the admin password (a private file) into the run's dir."""
        # credentials/ beside the config is where the loader looks for secret files.
        credentials = self.run_dir / "credentials"
        credentials.mkdir(mode=0o700, exist_ok=True)
        password = credentials / "vendure-password"
        password.write_text(VENDURE_PASSWORD + "\n")
        password.chmod(0o600)
        document = yaml.safe_load(self.options.config.read_text(encoding="utf-8"))
        document.pop("commerce", None)
        document["shops"] = {
            "vendure": {
                "adapter": "vendure",
                # The port is the bed's, known once it runs; the gateway reads it then.
                "admin_api_url": "${RG_VENDURE_URL:-http://127.0.0.1:3000/admin-api}",
                "channel_token": VENDURE_CHANNEL,
                "admin_user": VENDURE_USER,
                "admin_password_file": password.name,  # found in credentials/
                "customer_email": "household@example.org",
            }
        }
        for product in (document.get("products") or {}).values():
            product["shop"] = "vendure"
        path = self.run_dir / "gateway-vendure.yaml"
        header = (
            f"# {self.options.config.name} for ./scripts/demo --vendure: its commerce: "
            "section replaced by the local Vendure.\n"
        )
        path.write_text(header + yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
        path.chmod(0o600)
        self.gateway_config = path
        try:
            return load_config(path).config
        except ConfigError as exc:
            raise DemoError("the Vendure config is invalid:\n" + "\n".join(exc.messages)) from None

    def say(self, line: str) -> None:
        if self.story is not None:
            self.story.print(line)
        else:
            print(line, file=self.out, flush=True)

    def _env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(extra)
        return env

    def _start_all(self) -> None:
        # One timeline for all: every component's clock reads the scenario's start now.
        origin = timeline_origin(self.scenario.start, self.scale)
        os.environ[ORIGIN_ENV] = f"{origin:.6f}"
        self.timeline = make_clock(self.scale, origin)
        self._start_broker()
        if self.options.vendure:
            self._start_vendure()
        else:
            self._start_shop()
        self._start_listener()
        self._start_gateway()
        self._start_sim()

    def _spawn(self, name: str, argv: list[str], **env: str) -> Child:
        child = Child(name, argv, self.run_dir / f"{name}.log", self._env(**env))
        self.children.append(child)
        child.start()
        return child

    def _start_broker(self) -> None:
        binary = mosquitto_binary()
        conf = self.run_dir / "mosquitto.conf"
        for _attempt in range(3):
            port = free_port()
            lines = [
                f"listener {port} 127.0.0.1",
                "allow_anonymous true",
                "persistence false",
                "log_dest stderr",
                # Its stamps would be the machine's time; the demo's timeline is simulated.
                "log_timestamp false",
                "log_type error",
                "log_type warning",
                "log_type notice",
            ]
            if os.geteuid() == 0:
                # As root mosquitto would switch to the 'mosquitto' user; there is no need.
                lines.insert(1, f"user {getpass.getuser()}")
            conf.write_text("\n".join(lines) + "\n")
            conf.chmod(0o600)
            child = self._spawn("mosquitto", [binary, "-c", str(conf)])
            if self._wait_port(child, port):
                self.mqtt_url = f"mqtt://127.0.0.1:{port}"
                self.say(f"  mosquitto   {self.mqtt_url} (private, config {conf.name})")
                return
            # Another program took the port between our probe and mosquitto's bind.
            child.stop()
            self.children.remove(child)
        raise DemoError("mosquitto did not start", self.run_dir / "mosquitto.log")

    def _starting(self, child: Child, deadline: float) -> bool:
        """True while ``child`` may still come up; raises StartInterruptedError on Ctrl-C."""
        if self.stop_event.is_set():
            raise StartInterruptedError
        return time.monotonic() < deadline and child.exit_code() is None

    def _wait_port(self, child: Child, port: int) -> bool:
        deadline = time.monotonic() + START_TIMEOUT
        while self._starting(child, deadline):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    return True
            except OSError:
                time.sleep(0.05)
        return False

    def _start_shop(self) -> None:
        argv = [
            sys.executable,
            "-m",
            "firmware_sim.shop",
            "--port",
            "0",
            "--db",
            str(self.run_dir / "shop.db"),
            "--time-scale",
            f"{self.scale:g}",
            "--ship-after",
            self.options.ship_after,
            "--deliver-after",
            self.options.deliver_after,
        ]
        child = self._spawn("shop", argv, SHOP_TOKEN=self.token)
        pattern = re.compile(r"listening on (http://\S+)")
        deadline = time.monotonic() + START_TIMEOUT
        while self._starting(child, deadline):
            found = pattern.search(child.log.read_text(encoding="utf-8", errors="replace"))
            if found:
                self.shop_url = found.group(1)
                self.say(
                    f"  shop        {self.shop_url} (ships after {self.options.ship_after}, "
                    f"delivers {self.options.deliver_after} later)"
                )
                return
            time.sleep(0.05)
        raise DemoError("the reference shop did not start", child.log)

    def _start_vendure(self) -> None:
        if self.stop_event.is_set():
            raise StartInterruptedError
        try:
            bed = VendureBed(self.run_dir / "vendure", log=self.run_dir / "vendure.log")
        except VendureBedError as exc:
            raise DemoError(str(exc)) from None
        self.vendure = bed
        try:
            bed.start()
        except VendureBedError as exc:
            raise DemoError(f"Vendure did not start: {exc}", bed.log) from None
        self.say(
            f"  shop        Vendure {VENDURE_VERSION} at {bed.admin_url} (seeded catalog; "
            "orders are placed and paid, never shipped)"
        )

    def _topic(self, leaf: str) -> str:
        return f"{self.config.mqtt.topic_prefix}/{self.config.gateway.id}/{leaf}"

    def _start_listener(self) -> None:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"demo-story-{os.getpid()}")
        client.on_connect = self._on_connect
        client.on_message = self._on_message
        port = int(self.mqtt_url.rsplit(":", 1)[1])
        try:
            client.connect("127.0.0.1", port, keepalive=30)
        except OSError as exc:
            raise DemoError(f"cannot connect to {self.mqtt_url}: {exc}") from None
        client.loop_start()
        self.listener = client

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if not reason.is_failure:
            client.subscribe([(self._topic("events"), 1), (self._topic("status"), 1)])

    def _on_message(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        if message.topic == self._topic("status"):
            if message.payload == b"online":
                self.online.set()
            return
        assert self.story is not None
        try:
            event = json.loads(message.payload)
        except ValueError:
            self.story.print(f"(not JSON on {message.topic}: {message.payload[:80]!r})")
            return
        if isinstance(event, dict):
            self.story.decision(event)

    def _start_gateway(self) -> None:
        argv = [
            sys.executable,
            "-m",
            "gateway",
            "run",
            "--config",
            str(self.gateway_config),
            "--demo",
            "--time-scale",
            f"{self.scale:g}",
        ]
        shop_env = {"RG_SHOP_URL": self.shop_url, "RG_SHOP_TOKEN": self.token}
        if self.vendure is not None:
            shop_env = {"RG_VENDURE_URL": self.vendure.admin_url}
        child = self._spawn(
            "gateway",
            argv,
            RG_MQTT_URL=self.mqtt_url,
            RG_STATE_DIR=str(self.run_dir / "gateway"),
            **shop_env,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while not self.online.wait(0.1):
            if not self._starting(child, deadline):
                code = child.exit_code()
                if code is not None:
                    raise DemoError(f"the gateway exited with code {code}", child.log)
                raise DemoError("the gateway did not come online", child.log)
        self.say(f"  gateway     online on {self._topic('status')}, config {self.gateway_config}")

    def _start_sim(self) -> None:
        argv = [
            sys.executable,
            "-m",
            "firmware_sim.sim",
            "--broker",
            self.mqtt_url,
            "--scenario",
            str(self.options.scenario),
            "--time-scale",
            f"{self.scale:g}",
            "--gateway-id",
            self.config.gateway.id,
        ]
        if self.vendure is None:
            # The household sees deliveries (and refills) from the reference shop only.
            argv += ["--shop-url", self.shop_url]
        if self.options.seconds is not None:
            argv += ["--seconds", f"{self.options.seconds:g}"]
        if self.scale != 1.0:
            argv.append("--shared-clock")
        child = Child(
            "sim", argv, self.run_dir / "sim.log", self._env(REORDER_SHOP_TOKEN=self.token)
        )
        self.children.append(child)
        child.start(stdout=subprocess.PIPE)
        self.sim = child
        assert self.story is not None
        self.story.household_starts(self.timeline if self.scale != 1.0 else None)
        span = self.scenario.duration / 3600
        self.say(
            f"  simulator   {self.options.scenario.name}: {span:g} sim hours at x{self.scale:g}"
        )
        self.say("")
        self._sim_reader = threading.Thread(target=self._read_sim, name="sim-reader", daemon=True)
        self._sim_reader.start()

    def _read_sim(self) -> None:
        assert self.sim is not None and self.sim.proc is not None and self.story is not None
        stdout = self.sim.proc.stdout
        assert stdout is not None
        with self.sim.log.open("a", encoding="utf-8") as log:
            for raw in stdout:
                line = raw.decode("utf-8", errors="replace").rstrip("\n")
                log.write(line + "\n")
                log.flush()
                if line.startswith("{"):
                    with suppress(ValueError):
                        self.sim_summary = json.loads(line)
                    continue
                self.story.household(line)

    def _watch(self, started: float) -> None:
        """Until the deadline or a signal; fail fast when a component dies."""
        deadline = None if self.options.seconds is None else started + self.options.seconds
        told_quiet = False
        while not self.stop_event.wait(0.2):
            for child in self.children:
                code = child.exit_code()
                if code is None or (child is self.sim and code == 0):
                    continue
                how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
                raise DemoError(f"{child.name} {how}", child.log)
            if self.vendure is not None and self.vendure.exit_code() is not None:
                raise DemoError(
                    f"Vendure exited with code {self.vendure.exit_code()}", self.vendure.log
                )
            household_done = self.sim is not None and self.sim.exit_code() == 0
            if household_done and deadline is None and not told_quiet:
                told_quiet = True
                self._tell_quiet()
            if deadline is not None and time.monotonic() >= deadline:
                sim_running = self.sim is not None and self.sim.exit_code() is None
                # The sim stops itself after --seconds (it started a little after us);
                # let it print its summary, unless it overstays.
                if sim_running and time.monotonic() < deadline + SIM_GRACE:
                    continue
                return

    def _tell_quiet(self) -> None:
        port = self.mqtt_url.rsplit(":", 1)[1]
        z2m = get_profile("zigbee2mqtt")
        press = z2m.encode(z2m.action("press"), ProfileOptions(), {})[0].payload.decode()
        self.say("")
        self.say("The scenario is over; everything keeps running. Press a button yourself:")
        self.say(f"    mosquitto_pub -p {port} -q 1 -t zigbee2mqtt/pantry_button -m '{press}'")
        self.say("Ctrl-C stops the demo.")

    def _finish_household(self) -> list[dict[str, Any]]:
        """Stop the household, let the last decisions land, then ask the shop what it has."""
        if self.sim is not None and self.sim.exit_code() is None:
            self.sim.stop()
        if self._sim_reader is not None:
            self._sim_reader.join(5.0)
        self.stop_event.wait(DRAIN)
        return self._shop_orders()

    def _shop_orders(self) -> list[dict[str, Any]]:
        try:
            return self._fetch_orders()
        except (httpx.HTTPError, VendureBedError, ValueError, KeyError, TypeError) as exc:
            reason = f"cannot list the shop's orders: {type(exc).__name__}: {exc}"
            log = self.run_dir / ("vendure.log" if self.vendure is not None else "shop.log")
            raise DemoError(reason, log) from None

    def _fetch_orders(self) -> list[dict[str, Any]]:
        if self.vendure is not None:
            return self._vendure_orders(self.vendure)
        response = httpx.get(
            f"{self.shop_url}/orders",
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=5.0,
        )
        response.raise_for_status()
        return list(response.json()["orders"])

    def _vendure_orders(self, bed: VendureBed) -> list[dict[str, Any]]:
        """Vendure's paid orders in the reference shop's shape, for the story: Vendure
        keeps the press's event id on the payment, the device comes from the gateway's
        report of that press."""
        assert self.story is not None
        orders: list[dict[str, Any]] = []
        for paid in bed.paid_orders():
            device = self.story.device_of(paid["event_id"]) or "?"
            orders.append(
                {
                    "id": paid["code"],
                    "status": paid["state"],
                    "skus": paid["skus"],
                    "source": {"device": device, "event_id": paid["event_id"]},
                }
            )
        return orders

    def _lookup(self, device: str, event_id: str) -> str | None:
        """The shop's id (ord_N) for the order a device's event made, for the story."""
        key = (device, event_id)
        if key not in self._shop_ids:
            try:
                orders = self._fetch_orders()
            except (httpx.HTTPError, ValueError, KeyError, TypeError):
                return None  # the story then names the order by its key
            for order in orders:
                source = order.get("source") or {}
                found = (str(source.get("device")), str(source.get("event_id")))
                self._shop_ids[found] = str(order.get("id"))
        return self._shop_ids.get(key)

    def _stop_all(self) -> None:
        if self.listener is not None:
            self.listener.disconnect()
            self.listener.loop_stop()
        # The household first, the broker last: nobody loses their peer mid-sentence.
        for child in reversed(self.children):
            child.stop()
        if self.vendure is not None:
            self.vendure.stop()

    def _report(self, failure: DemoError | None, orders: list[dict[str, Any]], took: float) -> int:
        pids = {c.name: c.pid for c in self.children}
        if self.vendure is not None:
            pids["vendure"] = self.vendure.pid
        summary: dict[str, Any] = {"ok": failure is None, "seconds": round(took, 1)}
        summary["shop"] = "vendure" if self.options.vendure else "reference"
        if failure is not None:
            self.say("")
            self.say(f"demo failed: {failure.reason}")
            if failure.log is not None:
                self.say(f"--- last lines of {failure.log} ---")
                self.say(tail(failure.log))
            summary["reason"] = failure.reason
        if self.story is not None and failure is None:
            summary.update(self.story.summary(orders, self.sim_summary))
            if self.vendure is not None:
                self.say(
                    f"  (orders as Vendure has them: the paid orders in its Admin API, "
                    f"{self.vendure.admin_url})"
                )
            # The gateway's outbox outlives the run: show how to look into it.
            state = self.run_dir / "gateway"
            self.say(
                f"  look into this run's queue: RG_STATE_DIR={state} "
                f".venv/bin/reorder-gateway queue --config {self._shown_config()}"
            )
        summary["state_dir"] = str(self.run_dir)
        summary["pids"] = pids
        print(json.dumps(summary, sort_keys=True), file=self.out, flush=True)
        return 0 if failure is None else 1

    def _shown_config(self) -> str:
        with suppress(ValueError):
            return str(self.gateway_config.relative_to(Path.cwd()))
        return str(self.gateway_config)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="scripts/demo",
        description="Broker, reference shop, gateway and a simulated household, as a story.",
    )
    p.add_argument("--seconds", type=positive_number, help="stop after this many real seconds")
    p.add_argument("--time-scale", type=positive_number, help="sim seconds per real second")
    p.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="gateway config YAML")
    p.add_argument("--scenario", type=Path, default=DEFAULT_SCENARIO, help="scenario YAML")
    p.add_argument(
        "--state-dir", type=Path, default=Path("demo-state"), help="where each run's dir goes"
    )
    p.add_argument(
        "--vendure",
        action="store_true",
        help="order from a local Vendure (firmware_sim/vendure) instead of the reference shop",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    options = DemoOptions(
        seconds=args.seconds,
        time_scale=args.time_scale,
        config=args.config.resolve(),
        scenario=args.scenario.resolve(),
        state_dir=args.state_dir,
        vendure=args.vendure,
    )
    return Demo(options).run()


if __name__ == "__main__":
    raise SystemExit(main())
