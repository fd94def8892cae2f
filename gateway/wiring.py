"""Plain composition: :func:`build` makes every part of a gateway from its config,
:func:`start` and :func:`stop` run them in order, :func:`reconfigure` applies a reload.

::

    paho thread ──InboundMessage──┐
    gpiozero threads ─ButtonEvent─┼──> core thread ──commit──> SQLite ──> sender thread ──> shop
    sender ────────OrderUpdate────┘        │ (after commit)
                                           └──> GatewayOutputs: PUBACK · LED · events topic ·
                                                decisions log · Home Assistant · phones ·
                                                wake the sender

Every field of :class:`Parts` is a real object: a part that is switched off is a
small stand-in (no GPIO buttons: a :class:`GpioButtons` with no pins; metrics
disabled: a :class:`~gateway.ops.metrics.NoMetricsServer`; no ``notify:`` URLs: a
:class:`~gateway.outputs.notify.NoNotifications`), never ``None``.

The translation of the configuration into the core's rules happens here, in
:func:`core_rules`, and nowhere else.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from gpiozero import Factory
from gpiozero.pins.mock import MockFactory

from gateway.clock import Clock
from gateway.commerce import make_backends
from gateway.config.models import Config, ForecastConfig
from gateway.config.secrets import secret_value
from gateway.config.summary import inventory
from gateway.core.forecast import ForecastRules
from gateway.core.rules import ProductRules, Rules, SensorRules
from gateway.engine.decider import Core, Decided, Item, Reconfigure
from gateway.engine.sender import Sender
from gateway.errors import DriveRefusedError
from gateway.inputs.gpio import GpioButtons, make_pin_factory
from gateway.inputs.messages import InboundMessage
from gateway.inputs.mqtt import MqttLink
from gateway.inputs.routing import Router
from gateway.ops.metrics import Metrics, MetricsEndpoint
from gateway.ops.observability import Activity, Observability
from gateway.ops.systemd import Notifier
from gateway.outbox.store import Store
from gateway.outbox.views import StateReader
from gateway.outputs.homeassistant import CLEAR_STATES_AFTER, HomeAssistantBridge
from gateway.outputs.notify import Notifier as PhoneNotifier
from gateway.outputs.notify import make_notifications, product_facts
from gateway.outputs.reports import DecisionTeller
from gateway.outputs.topics import GatewayTopics
from gateway.web.journal import DecisionJournal
from gateway.web.live import LiveFeed
from gateway.web.server import NoWebServer, WebPage, WebServer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BuildOptions:
    clock: Clock
    demo: bool = False  # allows the simulator to drive mock GPIO pins


@dataclass
class Requests:
    """What other threads ask of the main thread. Each flag is raised together with
    ``wake``, the one event the main loop sleeps on (signal handlers may raise them:
    setting an event is safe there)."""

    wake: threading.Event = field(default_factory=threading.Event)
    stop: threading.Event = field(default_factory=threading.Event)
    reload: threading.Event = field(default_factory=threading.Event)
    announce: threading.Event = field(default_factory=threading.Event)
    # Set once MQTT is connected and subscribed for the first time (tests wait on it).
    connected: threading.Event = field(default_factory=threading.Event)

    def ask(self, flag: threading.Event) -> None:
        flag.set()
        self.wake.set()

    @staticmethod
    def take(flag: threading.Event) -> bool:
        """True (once) if ``flag`` was raised since the last take."""
        if not flag.is_set():
            return False
        flag.clear()
        return True


# Real seconds the link keeps the Home Assistant sweep's subscriptions: the broker
# sends the retained messages right after the SUBACK, so this is ample.
SWEEP_SECONDS = 5.0


@dataclass
class Sweep:
    """When the Home Assistant sweep (rebuilding an unreadable ``homeassistant.json``
    from the broker's retained topics) ends: monotonic seconds, ``None`` if none runs."""

    ends_at: float | None = None
    # When removed devices' state topics are cleared (after their discovery configs).
    clear_states_at: float | None = None


@dataclass
class Parts:
    """One gateway's parts, all built and none started."""

    config: Config
    clock: Clock
    sim_gpio: bool
    store: Store
    reader: StateReader
    router: Router
    rules: Rules
    link: MqttLink
    gpio: GpioButtons
    sender: Sender
    bridge: HomeAssistantBridge
    outputs: GatewayOutputs
    core: Core
    metrics: Metrics
    observability: Observability
    metrics_server: MetricsEndpoint
    notifier: Notifier
    phones: PhoneNotifier
    requests: Requests
    web: WebServer | NoWebServer = field(default_factory=NoWebServer)
    sweep: Sweep = field(default_factory=Sweep)


def core_rules(config: Config, secret: bytes) -> Rules:
    """The core's rules: plain data, so that the core never sees the config models.

    >>> from gateway.config.models import Config, ForecastConfig
    >>> cfg = Config.model_validate({
    ...     "gateway": {"id": "gw"}, "commerce": {"base_url": "http://127.0.0.1/api"},
    ...     "products": {"tea": {"sku": "TEA", "cooldown": "1h"}}})
    >>> core_rules(cfg, b"s" * 32).products["tea"].cooldown
    3600.0
    """
    return Rules(
        gateway_id=config.gateway.id,
        secret=secret,
        products={
            name: ProductRules(
                sku=p.sku,
                quantity=p.quantity,
                one_open_order=p.one_open_order,
                max_per_day=p.max_per_day,
                cooldown=p.cooldown,
                confirm_window=p.confirm_window,
                shop=config.shop_of(name),
                lead_time=p.lead_time,
                order_when_due=p.order_when_due,
                confirm=p.confirm,
                confirm_expires=p.confirm_expires,
            )
            for name, p in config.products.items()
        },
        button_products={b.name: b.product for b in config.buttons},
        sensors={
            s.name: SensorRules(
                name=s.name,
                product=s.product,
                reorder_below=s.reorder_below,
                rearm_above=s.rearm_above,
                settle=s.settle,
                stale_after=s.stale_after,
                forecast=_forecast_rules(s.forecast),
                unit=s.unit,
            )
            for s in config.sensors
        },
        max_orders_per_day=config.limits.max_orders_per_day,
        dedupe_window=config.limits.dedupe_window,
    )


def _forecast_rules(fc: ForecastConfig | None) -> ForecastRules | None:
    if fc is None:
        return None
    return ForecastRules(
        service_level=fc.service_level,
        empty_at=fc.empty_at,
        lift_window=fc.lift_window,
        refill_jump=fc.refill_jump,
        min_days=fc.min_days,
        utc_offset=fc.utc_offset,
    )


def build(config: Config, options: BuildOptions) -> Parts:
    """Make every part; nothing runs yet. Whatever was opened is closed again if a
    later part fails (a pin already taken, a TLS file that does not load)."""
    with contextlib.ExitStack() as undo:
        state_dir = Path(config.gateway.state_dir)
        clock = options.clock
        store = Store.open(state_dir)
        undo.callback(store.close)
        reader = StateReader(state_dir)
        undo.callback(reader.close)
        factory = _pin_factory(config)
        if factory is not None:
            undo.callback(factory.close)
        sim_gpio = options.demo and isinstance(factory, MockFactory)
        if options.demo and not sim_gpio:
            log.warning("--demo given but GPIO is not on the mock pin factory: sim/gpio stays off")
        router = Router.from_config(config, sim_gpio=sim_gpio)
        rules = core_rules(config, store.secret())
        requests = Requests()

        # The inputs and the sender feed the core, and the core's outputs need them:
        # they are built first and hand over through this. Nothing calls it before
        # start(), which starts the core before any of them.
        core: Core

        def to_core(item: Item) -> None:
            core.submit(item)

        def on_connection(up: bool) -> None:
            # paho's thread: only flags; the main thread announces.
            if up:
                requests.connected.set()
                requests.ask(requests.announce)

        def from_broker(message: InboundMessage) -> None:
            # The Home Assistant sweep's topics are the bridge's, never a device's.
            if bridge.sweeps(message.topic):
                bridge.on_swept(message.topic, message.payload, retained=message.retain)
                link.ack(message.mid, message.qos, message.delivery)
                return
            to_core(message)

        link = MqttLink(
            config.mqtt,
            config.gateway.id,
            subscriptions=router.topics,
            on_message=from_broker,
            on_connection=on_connection,
            password=secret_value(config.mqtt.password),
        )
        gpio = GpioButtons(config.buttons, to_core, pin_factory=factory, clock=clock)
        undo.callback(gpio.close)
        metrics = Metrics()
        phones = make_notifications(config.notify, config.products)
        metrics.registry.register(phones.collector())
        backends = make_backends(config)
        sender = Sender(
            state_dir,
            backends,
            clock,
            config.all_shops,
            to_core,
            on_send=metrics.observe_send,
        )

        def publish_retained(topic: str, payload: bytes) -> None:
            link.publish(topic, payload, qos=1, retain=True)

        bridge = HomeAssistantBridge(config, state_dir, publish_retained)
        bridge.seed_last_orders(reader.last_orders())
        activity = Activity(s.name for s in config.sensors)
        topics = GatewayTopics(config.mqtt.topic_prefix, config.gateway.id)

        def publish_event(topic: str, payload: bytes) -> None:
            link.publish(topic, payload, qos=1)

        # Only with the page on: without a reader, changes would be broadcast to nobody.
        live = LiveFeed(journal=DecisionJournal(state_dir)) if config.web is not None else None
        if live is not None:
            metrics.registry.register(live.collector())
        outputs = GatewayOutputs(
            live=live,
            link=link,
            gpio=gpio,
            sender=sender,
            bridge=bridge,
            teller=DecisionTeller(publish_event, topics.events),
            activity=activity,
            phones=phones,
            clock=clock,
        )
        core = Core(
            store,
            rules,
            router,
            clock,
            outputs,
            retention=(config.limits.dedupe_retention, config.limits.history_retention),
        )
        notifier = Notifier()
        observability = Observability(
            config,
            clock,
            activity=activity,
            metrics=metrics,
            reader=reader,
            core=core,
            link=link,
            sender=sender,
            bridge=bridge,
            notifier=notifier,
        )
        web: WebServer | NoWebServer = NoWebServer()
        if config.web is not None and live is not None:
            web = WebServer(WebPage(config, reader, to_core, clock, live), config)
            undo.callback(web.stop)
        parts = Parts(
            web=web,
            config=config,
            clock=clock,
            sim_gpio=sim_gpio,
            store=store,
            reader=reader,
            router=router,
            rules=rules,
            link=link,
            gpio=gpio,
            sender=sender,
            bridge=bridge,
            outputs=outputs,
            core=core,
            metrics=metrics,
            observability=observability,
            metrics_server=observability.server,
            notifier=notifier,
            phones=phones,
            requests=requests,
        )
        undo.pop_all()
        return parts


def start(parts: Parts) -> None:
    """Metrics first (health answers from the start), then the link: the core's first
    state is published through it (paho queues QoS 1 until connected) and messages
    wait in the core's queue. Then the core, then the sender."""
    parts.observability.start_server()
    parts.link.start()
    parts.bridge.on_state(parts.core.state)
    parts.phones.start()
    parts.core.start()
    parts.sender.start()
    parts.web.start()
    if parts.web.url is not None:
        log.info("web page: serving %s/", parts.web.url)
    cfg = parts.config
    log.info(
        "gateway %s started: %s; state in %s",
        cfg.gateway.id,
        inventory(cfg),
        cfg.gateway.state_dir,
    )


def stop(parts: Parts, budget: float) -> None:
    """Stop input first, then decisions, then sending; close the database last.

    ``budget`` is the real seconds the whole stop may take: the sender gets what is
    left of it for the request in flight (one cut short stays 'sending' and is
    re-sent with the same key on the next start).
    """
    deadline = parts.clock.monotonic() + budget
    parts.observability.stopping()
    log.info("stopping")
    parts.link.stop(timeout=1.0)
    parts.gpio.close()
    parts.web.stop()
    parts.observability.stop_server()
    parts.core.stop(timeout=2.0)
    parts.sender.stop(timeout=max(0.2, deadline - parts.clock.monotonic() - 0.3))
    # Whatever notification is still on its way is given up: the orders are committed.
    parts.phones.close(timeout=0.2)
    parts.observability.write_status(running=False)
    parts.reader.close()
    if parts.core.alive:
        # Closing the connection under a commit would only turn it into an error; the
        # process exits next and SQLite rolls the transaction back.
        log.warning("the core is still committing; leaving its database to the exit")
    else:
        parts.store.close()
    log.info("stopped")


def reconfigure(parts: Parts, config: Config) -> None:
    """Apply a reloaded config to running parts: rules, routes, Home Assistant, and
    the GPIO pins last (raises :class:`~gateway.inputs.gpio.PinClaimError` when one
    cannot be claimed; everything else is applied by then). The caller keeps what
    needs a restart (gateway, mqtt, commerce)."""
    router = Router.from_config(config, sim_gpio=parts.sim_gpio)
    rules = core_rules(config, parts.store.secret())
    parts.core.submit(Reconfigure(rules, router))
    parts.link.set_subscriptions([*router.topics, *parts.bridge.sweep_filters()])
    parts.outputs.activity.reconfigure(s.name for s in config.sensors)
    parts.bridge.reconfigure(config)
    parts.phones.reconfigure(product_facts(config.products))
    parts.bridge.on_state(parts.core.state)
    parts.web.reconfigure(config)
    parts.config, parts.router, parts.rules = config, router, rules
    parts.requests.ask(parts.requests.announce)
    parts.gpio.reconfigure(config.buttons)


def announce(parts: Parts) -> None:
    """Home Assistant discovery and every known state, after each (re)connect and reload."""
    try:
        parts.bridge.announce()
        # The gateway's state as it is now (connected), before the others are sent
        # again: nothing older may reach Home Assistant after a (re)connect.
        parts.observability.write_status(running=True)
        parts.bridge.republish()
    except Exception:
        log.exception("Home Assistant: announcing failed; trying after the next connect")
        return
    sweep = parts.bridge.sweep_filters()
    if sweep:
        parts.link.set_subscriptions([*parts.router.topics, *sweep])
        if parts.sweep.ends_at is None:
            parts.sweep.ends_at = parts.clock.monotonic() + SWEEP_SECONDS


def run_sweep(parts: Parts) -> float:
    """Home Assistant's timed work: end the sweep and clear removed devices' state
    topics when due; returns the real seconds until the next (``inf``: nothing waits)."""
    return min(_end_sweep(parts), _clear_states(parts))


def _clear_states(parts: Parts) -> float:
    """Clear the state topics of removed devices :data:`CLEAR_STATES_AFTER` seconds
    after their discovery configs were (so Home Assistant has dropped the entities)."""
    if not parts.bridge.states_to_clear():
        parts.sweep.clear_states_at = None
        return math.inf
    now = parts.clock.monotonic()
    due = parts.sweep.clear_states_at
    if due is None:
        due = parts.sweep.clear_states_at = now + CLEAR_STATES_AFTER
    if now < due:
        return due - now
    if not parts.link.connected:
        # paho would queue them behind the reconnect's configs: the same burst again.
        parts.sweep.clear_states_at = now + CLEAR_STATES_AFTER
        return CLEAR_STATES_AFTER
    parts.sweep.clear_states_at = None
    try:
        cleared = parts.bridge.clear_states()
    except Exception:
        log.exception("Home Assistant: clearing removed devices' states failed")
        return math.inf
    if cleared:
        log.info("Home Assistant: cleared the retained state of %d removed devices", len(cleared))
    return math.inf


def _end_sweep(parts: Parts) -> float:
    """End the Home Assistant sweep when it is due. A sweep that comes due while the
    broker is away waits for a connected stretch: it only ends once the broker could
    answer it."""
    ends_at = parts.sweep.ends_at
    if ends_at is None:
        return math.inf
    now = parts.clock.monotonic()
    if now < ends_at:
        return ends_at - now
    if not parts.link.connected:
        parts.sweep.ends_at = now + SWEEP_SECONDS
        return SWEEP_SECONDS
    parts.sweep.ends_at = None
    parts.link.set_subscriptions(parts.router.topics)
    try:
        parts.bridge.finish_sweep()
    except Exception:
        log.exception("Home Assistant: finishing the rebuild failed; it runs again next start")
    return math.inf


def _pin_factory(config: Config) -> Factory | None:
    if not any(b.gpio is not None or b.led is not None for b in config.buttons):
        return None
    return make_pin_factory(config.gateway.pin_factory)


class GatewayOutputs:
    """Carries each committed batch out: the one :class:`~gateway.engine.decider.Outputs`.

    In order: wake the sender, acknowledge the MQTT messages, show the LEDs, tell each
    decision (counted, Home Assistant, the decisions log and the events topic, the
    phones), note the readings, drive the demo's mock pins, publish the new state.
    Each step is guarded on its own: one failing output never stops the others,
    and the decision itself is committed already.
    """

    def __init__(
        self,
        *,
        link: MqttLink,
        gpio: GpioButtons,
        sender: Sender,
        bridge: HomeAssistantBridge,
        teller: DecisionTeller,
        activity: Activity,
        phones: PhoneNotifier,
        clock: Clock,
        live: LiveFeed | None = None,
    ) -> None:
        self._link = link
        self._gpio = gpio
        self._sender = sender
        self._bridge = bridge
        self._teller = teller
        self.activity = activity
        self._phones = phones
        self._clock = clock
        self._live = live

    def deliver(self, decided: Decided) -> None:
        # The sender first: the orders are committed already, so waking it now
        # weakens nothing, and its claim (a SQLite write on its own connection, which
        # releases the GIL) then overlaps the PUBACK and the QoS 1 publishes below
        # instead of waiting behind them (traced in bench/README.md: ~0.5 ms a press).
        if decided.wake_sender:
            with _guarded("waking the sender"):
                self._sender.wake()
        for message in decided.acks:
            with _guarded("acknowledging an MQTT message"):
                self._link.ack(message.mid, message.qos, message.delivery)
        for feedback in decided.feedback:
            with _guarded("showing an LED pattern"):
                self._gpio.show(feedback.device, feedback.pattern)
        for report in decided.reports:
            with _guarded("counting a decision"):
                self.activity.on_report(report)
            if report.routine:
                with _guarded("logging and publishing a decision"):
                    self._teller.tell(report)
                continue
            with _guarded("telling Home Assistant a decision"):
                self._bridge.on_report(report)
            with _guarded("logging and publishing a decision"):
                self._teller.tell(report)
            with _guarded("queueing a phone notification"):
                self._phones.on_report(report)
            if self._live is not None:
                with _guarded("telling the web page a decision"):
                    self._live.note_report(report)
        for reading in decided.readings:
            with _guarded("noting a sensor reading"):
                self.activity.on_reading(reading.device)
                self._bridge.on_reading(reading.device, reading.value, self._clock.now())
                if self._live is not None:
                    self._live.note_reading(reading.device, self._clock.now())
        if self._live is not None:
            for told in decided.vitals:
                with _guarded("telling the web page a battery or link"):
                    self._live.note_vitals(told.device, told.vitals, self._clock.now())
        for request in decided.sim_gpio:
            with _guarded("driving a mock GPIO pin"):
                try:
                    self._gpio.drive(request.pin, request.action)
                except DriveRefusedError as exc:
                    log.warning("sim/gpio: %s", exc)
        with _guarded("publishing the state"):
            self._bridge.on_state(decided.state)


@contextlib.contextmanager
def _guarded(what: str) -> Iterator[None]:
    try:
        yield
    except Exception:
        log.exception("%s failed (the decision itself is committed)", what)
