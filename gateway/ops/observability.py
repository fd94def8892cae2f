"""What the gateway tells about itself: counts, health, the status file, systemd.

Two pieces, because they are needed at different moments of the wiring:

* :class:`Activity` counts what came in (``reorder_events_total``) and keeps the last
  few decisions for ``reorder-gateway status``. The outputs feed it after each
  committed batch, so it exists before the core does.
* :class:`Observability` reads the running parts: the :class:`~gateway.ops.metrics.Snapshot`
  of each scrape, liveness and readiness, the status document, the systemd status
  line and watchdog, and the gateway's own Home Assistant state. The main thread
  calls :meth:`Observability.run_due` and sleeps until the time it returns.

>>> from gateway.core.events import Outcome, Report
>>> activity = Activity(sensors=["scale"])
>>> activity.on_report(Report(Outcome.ORDERED, "laundry", 0.0, "detergent", "e1"))
>>> activity.on_reading("scale")
>>> activity.on_report(Report(Outcome.IGNORED, "laundry", 1.0, detail="battery", routine=True))
>>> sorted(activity.events_in().items())
[(('laundry', 'ignored'), 1), (('laundry', 'press'), 1), (('scale', 'reading'), 1)]
>>> [e["text"] for e in activity.last_events()]  # battery chatter is counted, not listed
['laundry: ordered (detergent) event e1']
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
from collections import deque
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlsplit

from gateway.clock import Clock, RealClock, rfc3339
from gateway.config.models import Config
from gateway.core.events import Outcome, Report
from gateway.engine.decider import Core
from gateway.engine.sender import Sender
from gateway.inputs.mqtt import MqttLink
from gateway.ops.metrics import (
    Health,
    Metrics,
    MetricsEndpoint,
    NoMetricsServer,
    ObservabilityServer,
    Snapshot,
)
from gateway.ops.status import WRITE_EVERY, Liveness, ShopLiveness, status_document
from gateway.ops.status import write_status as write_status_file
from gateway.ops.systemd import Notifier
from gateway.outbox.views import OutboxSnapshot, StateReader
from gateway.outputs.homeassistant import HomeAssistantBridge
from gateway.outputs.reports import describe

log = logging.getLogger(__name__)

LAST_EVENTS = 10
# The core loop turns at least once a second; this much silence means it hangs.
HEARTBEAT_STALE = 10.0
_WATCHDOG_EVERY_MAX = 5.0  # seconds between pings, at most (a third of systemd's interval)

# Which inputs a decision stands for (the events-in metric). Sensor readings are
# counted where they arrive (on_reading), so only their failures come from here.
_EVENT_KIND = {
    Outcome.ORDERED: "press",
    Outcome.HELD: "press",
    Outcome.ABSORBED: "press",
    Outcome.CANCEL_REQUESTED: "hold",
    Outcome.NOTHING_TO_CANCEL: "hold",
    Outcome.DUPLICATE: "duplicate",
    Outcome.INVALID: "invalid",
    Outcome.IGNORED: "ignored",
}


_KNOCK_EVERY = 0.02  # seconds between wake-up connections while the metrics server stops
# A server bound to every address is reached on loopback.
_WILDCARD = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}  # noqa: S104


def _knock(url: str) -> None:
    """Open and close a connection to ``url``'s host and port; any failure is fine (the
    server may be gone already)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    with (
        contextlib.suppress(OSError, ValueError),
        socket.create_connection((_WILDCARD.get(host, host), parts.port or 0), timeout=0.1),
    ):
        pass


class Activity:
    """Inputs counted by device and kind, and the last decisions in words.

    Written on the decider thread, read by scrapes and the main thread.

    >>> Activity(sensors=[]).last_events()
    []
    """

    def __init__(self, sensors: Iterable[str]) -> None:
        self._lock = threading.Lock()
        self._sensors = frozenset(sensors)
        self._events_in: dict[tuple[str, str], int] = {}
        self._last: deque[dict[str, object]] = deque(maxlen=LAST_EVENTS)

    def reconfigure(self, sensors: Iterable[str]) -> None:
        with self._lock:
            self._sensors = frozenset(sensors)

    def on_report(self, report: Report) -> None:
        kind = _EVENT_KIND.get(report.outcome)
        with self._lock:
            if not report.routine:
                # Battery and availability reports would push the decisions off it.
                self._last.append({"at": rfc3339(report.at), "text": describe(report)})
            if kind is None:
                return
            if kind not in ("invalid", "ignored") and report.device in self._sensors:
                return  # counted as a reading where it arrived
            self._add((report.device, kind))

    def on_reading(self, device: str) -> None:
        with self._lock:
            self._add((device, "reading"))

    def events_in(self) -> dict[tuple[str, str], int]:
        with self._lock:
            return dict(self._events_in)

    def last_events(self) -> list[dict[str, object]]:
        with self._lock:
            return list(self._last)

    def _add(self, key: tuple[str, str]) -> None:
        self._events_in[key] = self._events_in.get(key, 0) + 1


class Observability:
    """The running gateway seen from outside: metrics, health, status, systemd.

    Owns the metrics server (a :class:`~gateway.ops.metrics.NoMetricsServer` when
    ``metrics.enabled`` is false). The status file is dated in real time whatever
    the gateway's time scale: ``reorder-gateway status`` runs in another process and
    judges its freshness by the machine's clock. Beside that it records the
    gateway's own clock (``clock.now``, ``clock.scale``), the one its orders are
    dated by, so that ``queue`` and ``status`` tell ages on it.
    """

    def __init__(
        self,
        config: Config,
        clock: Clock,
        *,
        activity: Activity,
        metrics: Metrics,
        reader: StateReader,
        core: Core,
        link: MqttLink,
        sender: Sender,
        bridge: HomeAssistantBridge,
        notifier: Notifier,
        wall: Clock | None = None,
    ) -> None:
        self._config = config
        self._clock = clock
        self._wall = wall or RealClock()
        self._activity = activity
        self._reader = reader
        self._core = core
        self._link = link
        self._sender = sender
        self._bridge = bridge
        self.notifier = notifier
        self._started_at = self._wall.now()
        self._stopping = False
        self._systemd_line = ""
        self._status_due = 0.0  # monotonic: write the first status at once
        self._watchdog_due = 0.0
        metrics.collect_from(self.snapshot)
        self.server: MetricsEndpoint = NoMetricsServer()
        self._serving: str | None = None  # the server's URL while it runs
        if config.metrics.enabled:
            health = Health(live=self.live_problems, ready=self.ready_problems)
            self.server = ObservabilityServer(
                config.metrics.host, config.metrics.port, metrics, health
            )

    def start_server(self) -> None:
        if isinstance(self.server, ObservabilityServer):
            self.server.start()
            self._serving = self.server.url
            log.info("metrics: serving %s/metrics, /healthz and /readyz", self.server.url)

    def stop_server(self) -> None:
        """Stop the metrics server within milliseconds, not half a second.

        Its accept loop looks at the stop request only between polls (every 0.5 s,
        so that it costs nothing while idle) or when a connection comes in: while the
        stop waits, a connection is made to it every few milliseconds.
        """
        server, url = self.server, self._serving
        self._serving = None
        if url is None:  # disabled, or never started
            server.stop()
            return
        stopper = threading.Thread(target=server.stop, name="metrics-stop", daemon=True)
        stopper.start()
        while stopper.is_alive():
            _knock(url)
            stopper.join(_KNOCK_EVERY)

    # ------------------------------------------------------------------ health

    def live_problems(self) -> list[str]:
        silent = self._clock.monotonic() - self._core.heartbeat
        if silent > HEARTBEAT_STALE:
            return [f"the core loop has not turned for {silent:.0f}s"]
        return []

    def ready_problems(self) -> list[str]:
        problems = self.live_problems()
        if self._stopping:
            problems.append("stopping")
        if not self._link.connected:
            problems.append("MQTT is not connected and subscribed")
        if not self._reader.is_open():
            problems.append("the state database does not answer")
        return problems

    # ------------------------------------------------------------------ metrics

    def snapshot(self) -> Snapshot:
        """The numbers the metrics endpoint shows (called on the scrape's thread)."""
        outbox = self._outbox()
        core = self._core.counters
        link = self._link.counters
        return Snapshot(
            gateway=self._config.gateway.id,
            events_in=self._activity.events_in(),
            decisions={str(k): v for k, v in core.by_outcome.copy().items()},
            oversized=link.oversized,
            unmatched=link.unmatched,
            core_queue_full=core.queue_full,
            commit_failures=core.commit_failures,
            orders_by_state=dict(outbox.by_state) if outbox else {},
            queue_depth=outbox.queue_depth if outbox else None,
            oldest_queued_age=outbox.oldest_queued_age if outbox else None,
            mqtt_connected=self._link.connected,
            mqtt_reconnects=link.reconnects,
            mqtt_dropped_publishes=link.dropped_publishes,
            shop_reachable=self._sender.shop_reachable,
            shops_reachable=self._sender.reachability(),
        )

    def _outbox(self) -> OutboxSnapshot | None:
        try:
            return self._reader.snapshot(self._clock.now())
        except Exception as exc:  # any failure: reported here, never raised into a scrape
            log.warning("cannot read the outbox for metrics/status: %s", exc)
            return None

    # ------------------------------------------------------------------ the main thread's duties

    def status_line(self) -> str:
        """One line for systemd: broker and shop, as a person would ask."""
        connected = "connected" if self._link.connected else "NOT connected"
        shop = {None: "not asked yet", True: "reachable", False: "UNREACHABLE"}
        return f"broker {connected}; shop {shop[self._sender.shop_reachable]}"

    def run_due(self) -> float:
        """Write the status and feed the watchdog when they are due; returns the
        seconds until the next one is."""
        now = self._clock.monotonic()
        if now >= self._status_due:
            self._status_due = now + WRITE_EVERY
            self.write_status(running=True)
        interval = self.notifier.watchdog_interval
        due = self._status_due
        if interval is not None:
            if now >= self._watchdog_due:
                self._watchdog_due = now + min(interval / 3, _WATCHDOG_EVERY_MAX)
                self._feed_watchdog()
            due = min(due, self._watchdog_due)
        return max(0.0, due - self._clock.monotonic())

    def stopping(self) -> None:
        """Not ready any more: readiness says so, and systemd hears it."""
        self._stopping = True
        self.notifier.stopping()

    def _feed_watchdog(self) -> None:
        if self.live_problems():
            # No ping: if the core does not recover, systemd restarts the service.
            silent = self._clock.monotonic() - self._core.heartbeat
            log.error("core loop silent for %.0fs; not feeding the watchdog", silent)
            return
        self.notifier.watchdog()

    def _shops(self) -> dict[str, ShopLiveness]:
        reachable, refused = self._sender.reachability(), self._sender.refused()
        return {
            name: ShopLiveness(shop.location, reachable.get(name), refused.get(name, False))
            for name, shop in self._config.all_shops.items()
        }

    def write_status(self, *, running: bool) -> None:
        """The status file (and, while running, systemd's status line and the gateway's
        Home Assistant state). Never raises for a file that cannot be written."""
        outbox = self._outbox()
        connected = self._link.connected
        reachable = self._sender.shop_reachable
        queue = outbox.queue_depth if outbox else None
        if running:
            self._bridge.on_gateway(broker=connected, shop=reachable, queue=queue)
            line = self.status_line() + (f"; queue {queue}" if queue is not None else "")
            if line != self._systemd_line:
                self._systemd_line = line
                self.notifier.status(line)
        cfg = self._config
        live = Liveness(
            pid=os.getpid(),
            running=running,
            started_at=self._started_at,
            updated_at=self._wall.now(),
            mqtt_url=cfg.mqtt.url,
            mqtt_connected=connected,
            shop_url=", ".join(shop.location for shop in cfg.all_shops.values()),
            shop_reachable=reachable,
            last_send_seconds=self._sender.last_send_latency,
            metrics_url=self.server.url if running else None,
            last_events=self._activity.last_events(),
            clock_now=self._clock.now(),
            clock_scale=self._clock.scale,
            mqtt_problem=None if connected else self._link.problem,
            shops=self._shops(),
        )
        document = status_document(cfg.gateway.id, outbox, live)
        try:
            write_status_file(Path(cfg.gateway.state_dir), document)
        except OSError as exc:
            log.warning("cannot write the status file: %s", exc)
