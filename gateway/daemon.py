"""Wiring: threads, signals, shutdown, reload.

::

    paho thread ──InboundMessage──┐
    gpiozero threads ─ButtonEvent─┼──> core thread ──commit──> SQLite ──> sender thread ──> shop
    sender ────────OrderUpdate────┘        │ (after commit)
                                           └──> PUBACK · LED · events topic · log

``run`` blocks until SIGTERM or SIGINT, then stops taking input, lets the core
finish the batch in hand, gives the sender a moment to finish its request (an
abandoned one is re-sent with the same key on the next start), closes the
database, and returns — well within systemd's 5 s.
"""

from __future__ import annotations

import logging
import signal
import threading
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from gpiozero import Factory
from gpiozero.pins.mock import MockFactory

from gateway.clock import Clock
from gateway.commerce import build_body, make_backend
from gateway.config import Config
from gateway.configload import ConfigError, LoadedConfig, load_config
from gateway.core import Core, Reconfigure, Sinks
from gateway.decide import Rules
from gateway.events import Feedback, OrderUpdate, PlaceOrder, Report
from gateway.gpio import GpioButtons, make_pin_factory
from gateway.mqtt import MqttLink
from gateway.outbox import Store
from gateway.outputs import describe, report_payload
from gateway.routing import Router, SimGpio
from gateway.secrets import secret_value
from gateway.sender import Sender

log = logging.getLogger(__name__)
decisions = logging.getLogger("gateway.decisions")

SHUTDOWN_BUDGET = 4.0  # seconds; systemd's TimeoutStopSec is larger


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

    # ------------------------------------------------------------------ life cycle

    def start(self) -> None:
        cfg = self.config
        state_dir = Path(cfg.gateway.state_dir)
        self.store = Store.open(state_dir)
        secret = self.store.secret()
        self._factory = self._pin_factory(cfg)
        sim_gpio = self.options.demo and isinstance(self._factory, MockFactory)
        if self.options.demo and not sim_gpio:
            log.warning("--demo given but GPIO is not on the mock pin factory: sim/gpio stays off")
        router = Router.from_config(cfg, sim_gpio=sim_gpio)
        rules = Rules.from_config(cfg, secret)
        gateway_id = cfg.gateway.id

        def body_for(intent: PlaceOrder) -> bytes:
            return build_body(intent, gateway_id)

        sinks = Sinks(
            report=self._on_report,
            feedback=self._on_feedback,
            ack=self._ack,
            wake_sender=self._wake_sender,
            sim_gpio=self._on_sim_gpio if sim_gpio else None,
        )
        self.core = Core(
            self.store,
            rules,
            router,
            self.clock,
            body_for,
            sinks,
            retention=(cfg.limits.dedupe_retention, cfg.limits.history_retention),
        )
        self.sender = Sender(
            state_dir, make_backend(cfg.commerce), self.clock, cfg.commerce, self._on_update
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
        self.core.start()
        self.sender.start()
        self.link.start()
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
        self.start()
        try:
            while not self._stop.is_set():
                self._stop.wait(0.5)
                if self._reload.is_set():
                    self._reload.clear()
                    self.reload()
        finally:
            self.shutdown()
        return 0

    def stop(self) -> None:
        self._stop.set()

    def shutdown(self) -> None:
        """Stop input first, then decisions, then sending; close the database last."""
        log.info("stopping")
        if self.link is not None:
            self.link.stop(timeout=1.0)
        if self.gpio is not None:
            self.gpio.close()
        if self.core is not None:
            self.core.stop(timeout=1.0)
        if self.sender is not None:
            self.sender.stop(timeout=SHUTDOWN_BUDGET - 2.0)
        if self.store is not None:
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
        rules = Rules.from_config(merged, self.store.secret())
        if self.gpio is not None:
            self.gpio.close()
        self.gpio = GpioButtons(
            merged.buttons, self.core.submit, pin_factory=self._factory, clock=self.clock
        )
        self.core.submit(Reconfigure(rules, router))
        self.link.set_subscriptions(router.topics)
        self.config = merged
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
        if up:
            self.ready.set()

    def _on_update(self, update: OrderUpdate) -> None:
        if self.core is not None:
            self.core.submit(update)

    def _wake_sender(self) -> None:
        if self.sender is not None:
            self.sender.wake()

    def _ack(self, mid: int, qos: int) -> None:
        if self.link is not None:
            self.link.ack(mid, qos)

    def _on_feedback(self, feedback: Feedback) -> None:
        if self.gpio is not None:
            self.gpio.show(feedback.device, feedback.pattern)

    def _on_sim_gpio(self, request: SimGpio) -> None:
        if self.gpio is not None:
            self.gpio.drive(request.pin, request.action)

    def _on_report(self, report: Report) -> None:
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


def run_gateway(config_path: Path, clock: Clock, *, demo: bool = False) -> int:
    """Load, validate and run. Returns the process exit code."""
    loaded = load_config(config_path)
    for warning in loaded.warnings:
        log.warning("%s", warning)
    return Gateway(loaded, RunOptions(config_path, clock, demo)).run()
