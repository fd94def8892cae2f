"""Wiring: threads, signals, shutdown, reload.

::

    paho thread ──InboundMessage──┐
    gpiozero threads ─ButtonEvent─┼──> core thread ──commit──> SQLite ──> sender thread ──> shop
    sender ────────OrderUpdate────┘        │ (after commit)
                                           └──> PUBACK · LED · events topic · log

``run`` blocks until SIGTERM or SIGINT, then stops taking input, lets the core
finish the batch in hand, gives the sender what is left of a 4 s budget to finish
its request (an abandoned one is re-sent with the same key on the next start),
closes the database, and returns — within the 5 s the service promises.

Around that the main thread runs the appliance duties every half second: SIGHUP
reloads, Home Assistant announcements after each (re)connect, the systemd
watchdog (fed only while the core thread's heartbeat is fresh, so a hung core
gets the service restarted), the status file and the gateway's state topic.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import FrameType

from gpiozero import Factory
from gpiozero.pins.mock import MockFactory

from gateway.clock import Clock, rfc3339
from gateway.commerce import make_backend
from gateway.config.load import ConfigError, LoadedConfig, load_config
from gateway.config.models import Config
from gateway.config.secrets import secret_value
from gateway.core.decide import State
from gateway.core.events import Feedback, OrderUpdate, Outcome, Report
from gateway.engine.decider import Core, Decided, Reconfigure
from gateway.engine.sender import Sender
from gateway.inputs.gpio import GpioButtons, make_pin_factory
from gateway.inputs.mqtt import InboundMessage, MqttLink
from gateway.inputs.routing import Router, SimGpio
from gateway.ops.metrics import Health, Metrics, ObservabilityServer, Snapshot
from gateway.ops.status import WRITE_EVERY, write_status
from gateway.ops.systemd import Notifier
from gateway.outbox.store import Store
from gateway.outbox.views import OutboxSnapshot, StateReader
from gateway.outputs.homeassistant import HomeAssistantBridge
from gateway.outputs.reports import NoisyReportLimiter, describe, report_payload
from gateway.wiring import rules_from_config

log = logging.getLogger(__name__)
decisions = logging.getLogger("gateway.decisions")

SHUTDOWN_BUDGET = 4.0  # seconds; systemd's TimeoutStopSec is larger
TICK = 0.5  # seconds between the main thread's turns
# The core loop turns at least once a second; this much silence means it hangs.
HEARTBEAT_STALE = 10.0
LAST_EVENTS = 10

# Which inputs a decision stands for (the events-in metric). Sensor readings are
# counted where they arrive (Decided.readings), so only their failures come from here.
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


@dataclass(frozen=True)
class RunOptions:
    config_path: Path
    clock: Clock
    demo: bool = False  # allows the simulator to drive mock GPIO pins


class Gateway:
    """One running gateway. ``run()`` blocks until stopped.

    >>> Gateway.__name__
    'Gateway'
    """

    def __init__(self, loaded: LoadedConfig, options: RunOptions) -> None:
        self.loaded = loaded
        self.config: Config = loaded.config
        self.options = options
        self.clock = options.clock
        self._stop = threading.Event()
        self._reload = threading.Event()
        self.store: Store | None = None
        self.core: Core | None = None
        self.sender: Sender | None = None
        self.link: MqttLink | None = None
        self.gpio: GpioButtons | None = None
        self._factory: Factory | None = None
        self.ready = threading.Event()
        self._limiter = NoisyReportLimiter()
        self.notifier = Notifier()
        self.metrics = Metrics(self.snapshot)
        self.server: ObservabilityServer | None = None
        self.reader: StateReader | None = None
        self.bridge: HomeAssistantBridge | None = None
        self._announce = threading.Event()
        self._stopping = False
        self._events_in: dict[tuple[str, str], int] = {}
        self._last_events: deque[dict[str, object]] = deque(maxlen=LAST_EVENTS)
        self._started_at = time.time()
        self._last_status = 0.0
        self._last_watchdog = 0.0
        self._systemd_status = ""

    # ------------------------------------------------------------------ life cycle

    def start(self) -> None:
        cfg = self.config
        state_dir = Path(cfg.gateway.state_dir)
        self.store = Store.open(state_dir)
        secret = self.store.secret()
        self.reader = StateReader(state_dir)
        self._factory = self._pin_factory(cfg)
        sim_gpio = self.options.demo and isinstance(self._factory, MockFactory)
        if self.options.demo and not sim_gpio:
            log.warning("--demo given but GPIO is not on the mock pin factory: sim/gpio stays off")
        router = Router.from_config(cfg, sim_gpio=sim_gpio)
        rules = rules_from_config(cfg, secret)
        gateway_id = cfg.gateway.id
        outputs = _DaemonOutputs(self)
        self.core = Core(
            self.store,
            rules,
            router,
            self.clock,
            outputs,
            retention=(cfg.limits.dedupe_retention, cfg.limits.history_retention),
        )
        self.sender = Sender(
            state_dir,
            make_backend(cfg.commerce),
            self.clock,
            cfg.commerce,
            self._on_update,
            on_send=self.metrics.observe_send,
        )
        self.gpio = GpioButtons(
            cfg.buttons, self.core.submit, pin_factory=self._factory, clock=self.clock
        )
        self.link = MqttLink(
            cfg.mqtt,
            gateway_id,
            subscriptions=router.topics,
            on_message=self.core.submit,
            on_connection=self._on_connection,
            password=secret_value(cfg.mqtt.password),
        )
        self.bridge = HomeAssistantBridge(cfg, state_dir, self._publish_retained)
        self.bridge.seed_last_orders(self.reader.last_orders())
        if cfg.metrics.enabled:
            self.server = ObservabilityServer(
                cfg.metrics.host,
                cfg.metrics.port,
                self.metrics,
                Health(live=self._live_problems, ready=self._ready_problems),
            ).start()
            log.info("metrics: serving %s/metrics, /healthz and /readyz", self.server.url)
        # The link first: the core's first state is published through it (paho
        # queues QoS 1 until connected), and messages wait in the core's queue.
        self.link.start()
        self.bridge.on_state(self.core.state)
        self.core.start()
        self.sender.start()
        log.info(
            "gateway %s started: %d buttons, %d sensors, %d products; state in %s",
            gateway_id,
            len(cfg.buttons),
            len(cfg.sensors),
            len(cfg.products),
            state_dir,
        )

    def run(self) -> int:
        self._install_signals()
        try:
            self.start()
            self.notifier.ready(self._status_line())
            self._tick()
            while not self._stop.is_set():
                self._stop.wait(TICK)
                if self._reload.is_set():
                    self._reload.clear()
                    self.reload()
                self._tick()
        finally:
            self.shutdown()
        return 0

    def _tick(self) -> None:
        """One turn of the main thread's duties; each is guarded on its own."""
        if self._announce.is_set() and self.bridge is not None:
            self._announce.clear()
            try:
                self.bridge.announce()
                self.bridge.republish()
            except Exception:
                log.exception("Home Assistant: announcing failed; trying after the next connect")
        self._feed_watchdog()
        mono = time.monotonic()
        if mono - self._last_status >= WRITE_EVERY:
            self._last_status = mono
            self._write_status(running=True)

    def stop(self) -> None:
        self._stop.set()

    def shutdown(self) -> None:
        """Stop input first, then decisions, then sending; close the database last."""
        deadline = time.monotonic() + SHUTDOWN_BUDGET
        self._stopping = True
        self.notifier.stopping()
        log.info("stopping")
        if self.link is not None:
            self.link.stop(timeout=1.0)
        if self.gpio is not None:
            self.gpio.close()
        if self.server is not None:
            self.server.stop()
        if self.core is not None:
            self.core.stop(timeout=2.0)
        if self.sender is not None:
            # Whatever is left of the budget; a request cut short stays 'sending'
            # and is re-sent with the same key on the next start.
            self.sender.stop(timeout=max(0.2, deadline - time.monotonic() - 0.3))
        if self.reader is not None:
            self._write_status(running=False)
            self.reader.close()
        if self.store is not None:
            if self.core is not None and self.core.alive:
                # Closing the connection under a commit would only turn it into an
                # error; the process exits next and SQLite rolls the transaction back.
                log.warning("the core is still committing; leaving its database to the exit")
            else:
                self.store.close()
        log.info("stopped")

    def reload(self) -> None:
        """SIGHUP: a valid new config replaces rules, routes and GPIO; an invalid one
        is logged and the running config stays."""
        try:
            fresh = load_config(self.options.config_path)
        except ConfigError as exc:
            log.error("reload refused, keeping the running config:\n%s", "\n".join(exc.messages))
            return
        new, old = fresh.config, self.config
        if new.gateway != old.gateway or new.mqtt != old.mqtt or new.commerce != old.commerce:
            log.warning("gateway, mqtt and commerce changes take effect after a restart")
        assert self.core is not None and self.store is not None and self.link is not None
        merged = new.model_copy(
            update={"gateway": old.gateway, "mqtt": old.mqtt, "commerce": old.commerce}
        )
        sim_gpio = self.options.demo and isinstance(self._factory, MockFactory)
        router = Router.from_config(merged, sim_gpio=sim_gpio)
        rules = rules_from_config(merged, self.store.secret())
        if self.gpio is not None:
            self.gpio.close()
        self.gpio = GpioButtons(
            merged.buttons, self.core.submit, pin_factory=self._factory, clock=self.clock
        )
        self.core.submit(Reconfigure(rules, router))
        self.link.set_subscriptions(router.topics)
        self.config = merged
        if self.bridge is not None:
            self.bridge.reconfigure(merged)
            self.bridge.on_state(self.core.state)
            self._announce.set()
        for warning in fresh.warnings:
            log.warning("%s", warning)
        log.info("configuration reloaded from %s", self.options.config_path)

    # ------------------------------------------------------------------ callbacks

    def _install_signals(self) -> None:
        def on_stop(signum: int, _frame: FrameType | None) -> None:
            self._stop.set()

        def on_hup(signum: int, _frame: FrameType | None) -> None:
            self._reload.set()

        signal.signal(signal.SIGTERM, on_stop)
        signal.signal(signal.SIGINT, on_stop)
        signal.signal(signal.SIGHUP, on_hup)

    @staticmethod
    def _pin_factory(cfg: Config) -> Factory | None:
        if not any(b.gpio is not None or b.led is not None for b in cfg.buttons):
            return None
        return make_pin_factory(cfg.gateway.pin_factory)

    def _on_connection(self, up: bool) -> None:
        # paho's thread: only flags; the main thread announces on its next turn.
        if up:
            self.ready.set()
            self._announce.set()

    def _on_update(self, update: OrderUpdate) -> None:
        if self.core is not None:
            self.core.submit(update)

    def _wake_sender(self) -> None:
        if self.sender is not None:
            self.sender.wake()

    def _ack(self, message: InboundMessage) -> None:
        if self.link is not None:
            self.link.ack(message.mid, message.qos, message.delivery)

    def _on_feedback(self, feedback: Feedback) -> None:
        if self.gpio is not None:
            self.gpio.show(feedback.device, feedback.pattern)

    def _on_sim_gpio(self, request: SimGpio) -> None:
        if self.gpio is not None:
            self.gpio.drive(request.pin, request.action)

    def _publish_retained(self, topic: str, payload: bytes) -> None:
        if self.link is not None:
            self.link.publish(topic, payload, qos=1, retain=True)

    def _on_reading(self, device: str, value: float) -> None:
        key = (device, "reading")
        self._events_in[key] = self._events_in.get(key, 0) + 1
        if self.bridge is not None:
            self.bridge.on_reading(device, value, self.clock.now())

    def _on_state(self, state: State) -> None:
        if self.bridge is not None:
            self.bridge.on_state(state)

    def _count_event(self, report: Report) -> None:
        kind = _EVENT_KIND.get(report.outcome)
        if kind is None:
            return
        if kind not in ("invalid", "ignored") and any(
            s.name == report.device for s in self.config.sensors
        ):
            return  # counted as a reading where it arrived
        key = (report.device, kind)
        self._events_in[key] = self._events_in.get(key, 0) + 1

    def _on_report(self, report: Report) -> None:
        self._count_event(report)
        self._last_events.append({"at": rfc3339(report.at), "text": describe(report)})
        if self.bridge is not None:
            self.bridge.on_report(report)
        told = self._limiter.admit(report)
        if told is None:
            return  # a flood of bad payloads: counted above, held back here
        report = told
        decisions.info(
            "%s",
            describe(report),
            extra={
                "event_id": report.event_id,
                "device": report.device,
                "product": report.product,
                "outcome": report.outcome.value,
                "rule": report.rule.value if report.rule else None,
            },
        )
        if self.link is not None:
            topic = f"{self.config.mqtt.topic_prefix}/{self.config.gateway.id}/events"
            self.link.publish(topic, report_payload(report), qos=1)

    # ------------------------------------------------------------------ health, status, metrics

    def _feed_watchdog(self) -> None:
        interval = self.notifier.watchdog_interval
        if interval is None or self.core is None:
            return
        mono = time.monotonic()
        if mono - self._last_watchdog < min(interval / 3, 5.0):
            return
        if self._live_problems():
            # No ping: if the core does not recover, systemd restarts the service.
            silent = mono - self.core.heartbeat
            log.error("core loop silent for %.0fs; not feeding the watchdog", silent)
            return
        self._last_watchdog = mono
        self.notifier.watchdog()

    def _live_problems(self) -> list[str]:
        if self.core is None:
            return ["not started"]
        silent = time.monotonic() - self.core.heartbeat
        if silent > HEARTBEAT_STALE:
            return [f"the core loop has not turned for {silent:.0f}s"]
        return []

    def _ready_problems(self) -> list[str]:
        problems = list(self._live_problems())
        if self._stopping:
            problems.append("stopping")
        if self.link is None or not self.link.connected:
            problems.append("MQTT is not connected and subscribed")
        if self.reader is None or not self.reader.is_open():
            problems.append("the state database does not answer")
        return problems

    def _outbox(self) -> OutboxSnapshot | None:
        if self.reader is None:
            return None
        try:
            return self.reader.snapshot(self.clock.now())
        except Exception as exc:  # any failure: reported here, never raised into a scrape
            log.warning("cannot read the outbox for metrics/status: %s", exc)
            return None

    def snapshot(self) -> Snapshot:
        """The numbers the metrics endpoint shows (called on the scrape's thread)."""
        outbox = self._outbox()
        core = self.core.counters if self.core is not None else None
        link = self.link.counters if self.link is not None else None
        return Snapshot(
            gateway=self.config.gateway.id,
            events_in=self._events_in.copy(),
            decisions={str(k): v for k, v in core.by_outcome.copy().items()} if core else {},
            oversized=link.oversized if link else 0,
            unmatched=link.unmatched if link else 0,
            core_queue_full=core.queue_full if core else 0,
            commit_failures=core.commit_failures if core else 0,
            orders_by_state=dict(outbox.by_state) if outbox else {},
            queue_depth=outbox.queue_depth if outbox else None,
            oldest_queued_age=outbox.oldest_queued_age if outbox else None,
            mqtt_connected=self.link.connected if self.link is not None else False,
            mqtt_reconnects=link.reconnects if link else 0,
            mqtt_dropped_publishes=link.dropped_publishes if link else 0,
            shop_reachable=self.sender.shop_reachable if self.sender is not None else None,
        )

    def _status_line(self) -> str:
        connected = self.link is not None and self.link.connected
        reachable = self.sender.shop_reachable if self.sender is not None else None
        shop = {None: "not asked yet", True: "reachable", False: "UNREACHABLE"}[reachable]
        return f"broker {'connected' if connected else 'NOT connected'}; shop {shop}"

    def _write_status(self, *, running: bool) -> None:
        outbox = self._outbox()
        connected = self.link is not None and self.link.connected
        reachable = self.sender.shop_reachable if self.sender is not None else None
        queue = outbox.queue_depth if outbox else None
        if self.bridge is not None and running:
            self.bridge.on_gateway(broker=connected, shop=reachable, queue=queue)
        line = self._status_line() + (f"; queue {queue}" if queue is not None else "")
        if running and line != self._systemd_status:
            self._systemd_status = line
            self.notifier.status(line)
        cfg = self.config
        document = {
            "gateway": cfg.gateway.id,
            "pid": os.getpid(),
            "running": running,
            "started_at": self._started_at,
            "updated_at": time.time(),
            "mqtt": {"url": cfg.mqtt.url, "connected": connected},
            "shop": {
                "url": cfg.commerce.base_url,
                "reachable": reachable,
                "last_send_seconds": self.sender.last_send_latency if self.sender else None,
            },
            "metrics": self.server.url if self.server is not None and running else None,
            "queue": {
                "depth": queue,
                "oldest_age_seconds": outbox.oldest_queued_age if outbox else None,
            },
            "orders": dict(outbox.by_state) if outbox else {},
            "open_orders": list(outbox.open_orders) if outbox else [],
            "last_events": list(self._last_events),
        }
        try:
            write_status(Path(cfg.gateway.state_dir), document)
        except OSError as exc:
            log.warning("cannot write the status file: %s", exc)


class _DaemonOutputs:
    """Carries a committed batch out through the gateway's adapters, each guarded."""

    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway

    def deliver(self, decided: Decided) -> None:
        gw = self._gateway
        calls: list[Callable[[], None]] = []
        calls += [partial(gw._ack, m) for m in decided.acks]
        calls += [partial(gw._on_feedback, f) for f in decided.feedback]
        calls += [partial(gw._on_report, r) for r in decided.reports]
        calls += [partial(gw._on_reading, r.device, r.value) for r in decided.readings]
        calls += [partial(gw._on_sim_gpio, g) for g in decided.sim_gpio]
        if decided.wake_sender:
            calls.append(gw._wake_sender)
        calls.append(partial(gw._on_state, decided.state))
        for call in calls:
            try:
                call()
            except Exception:
                log.exception("an output failed (the decision itself is committed)")


def run_gateway(config_path: Path, clock: Clock, *, demo: bool = False) -> int:
    """Load, validate and run. Returns the process exit code."""
    loaded = load_config(config_path)
    for warning in loaded.warnings:
        log.warning("%s", warning)
    return Gateway(loaded, RunOptions(config_path, clock, demo)).run()
