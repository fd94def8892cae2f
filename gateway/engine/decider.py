"""The core thread: events in, decisions committed, then acknowledged.

Everything that can trigger an order reaches this one thread through a
queue: raw MQTT messages (parsed here, not on paho's thread), GPIO presses, the
sender's status updates, ticks. For each batch it runs :func:`gateway.core.decide.decide`,
commits every durable action in ONE SQLite transaction, and only then acknowledges
(MQTT PUBACK, LED, the events topic, the log line). Commit before acknowledge,
always: a crash before the commit means the broker redelivers; a crash after it
means the outbox already holds the order.

Batching (group commit) is what keeps a flood of sensor readings cheap: one fsync
covers up to :data:`MAX_BATCH` events.

>>> Core.MAX_BATCH
256
"""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass, field, replace
from typing import Protocol

from gateway.clock import Clock
from gateway.core.decide import (
    DAY,
    OpenOrder,
    PlacedOrder,
    State,
    decide,
    event_dedupe_key,
    next_due,
)
from gateway.core.events import (
    Action,
    ButtonEvent,
    CancelOrder,
    Episode,
    Event,
    Feedback,
    InvalidInput,
    OrderState,
    OrderUpdate,
    Outcome,
    PlaceOrder,
    ReleaseHeld,
    RememberAction,
    RememberBoot,
    RememberEvent,
    Report,
    SaveEpisode,
    SaveLearned,
    SensorReading,
    Tick,
)
from gateway.core.rules import Rules
from gateway.inputs.messages import InboundMessage
from gateway.inputs.routing import DeviceVitals, Ignored, Routed, Router, SimGpio
from gateway.outbox.store import OutboxError, Store
from gateway.outputs.reports import RateLimitedLog

log = logging.getLogger(__name__)

_DURABLE = (
    PlaceOrder,
    ReleaseHeld,
    CancelOrder,
    RememberEvent,
    RememberAction,
    RememberBoot,
    SaveEpisode,
    SaveLearned,
)
_RESYNC_EVERY = 30.0  # real seconds: pick up `queue retry/drop` done from the CLI
_PRUNE_EVERY = 3600.0  # clock seconds (divided by the time scale in real time)
_COMMIT_BACKOFF_MAX = 30.0


@dataclass(frozen=True)
class Reconfigure:
    """Swap rules and routes (SIGHUP reload): items before it in the queue are decided
    with the old rules, items after it with the new."""

    rules: Rules
    router: Router


@dataclass(frozen=True)
class Requeue:
    """Put a rejected or blocked order back in the queue (the web page's Retry), as
    ``reorder-gateway queue retry`` does — but on the core thread, which alone writes
    the outbox inside the gateway. ``via`` names where it came from, for the log."""

    key: str
    via: str


class _Wake:
    """Put in the queue by :meth:`Core.stop`: ends the wait at once."""


_WAKE = _Wake()

Item = InboundMessage | Event | Reconfigure | Requeue


@dataclass(frozen=True)
class Decided:
    """What one committed batch tells the world, handed to :class:`Outputs` after the
    commit (never before: commit before acknowledge)."""

    acks: tuple[InboundMessage, ...] = ()
    reports: tuple[Report, ...] = ()
    feedback: tuple[Feedback, ...] = ()
    readings: tuple[SensorReading, ...] = ()
    sim_gpio: tuple[SimGpio, ...] = ()
    vitals: tuple[DeviceVitals, ...] = ()
    state: State = field(default_factory=State)
    wake_sender: bool = False


class Outputs(Protocol):
    """Where the decider's results go: the one seam between deciding and telling."""

    def deliver(self, decided: Decided) -> None:
        """On the decider thread, after the batch is committed: acknowledge the MQTT
        messages, show LEDs, publish and log reports, publish readings and state, wake
        the sender. Must not block and must not raise."""
        ...


@dataclass
class CoreCounters:
    commit_failures: int = 0
    queue_full: int = 0
    by_outcome: dict[str, int] = field(default_factory=dict)


def load_state(store: Store, now: float) -> State:
    """Rebuild the core's cache from the outbox (start, and periodic resync)."""
    open_orders = tuple(
        OpenOrder(
            r.key,
            r.product,
            r.device,
            r.state,
            r.created_at,
            r.cancel_requested,
            r.hold_until,
            r.shop_order_id,
        )
        for r in store.open_orders()
    )
    placed = tuple(
        PlacedOrder(r.key, r.product, r.quantity, r.created_at)
        for r in store.orders_since(now - DAY)
        if r.state.was_bought
    )
    learned = store.learned()
    return State(
        open_orders=open_orders,
        placed=placed,
        episodes={name: _heard_at_start(e, now) for name, e in store.episodes().items()},
        recent=store.recent_actions(),
        boots=store.device_boots(),
        usage=learned.usage,
        leads=learned.leads,
        intervals=learned.intervals,
    )


def _heard_at_start(episode: Episode, now: float) -> Episode:
    """A sensor's last reading is saved only when its phase changes (saving each one
    would cost a write per reading), so after a restart the saved time can be long
    past for a sensor that kept reporting. Its silence is counted from the start."""
    if episode.last_seen is None or episode.stale_reported:
        return episode
    return replace(episode, last_seen=max(episode.last_seen, now))


class Core:
    """The single thread that decides. Feed it with :meth:`submit` (never blocks).

    >>> Core.MAX_BATCH
    256
    """

    MAX_BATCH = 256

    def __init__(
        self,
        store: Store,
        rules: Rules,
        router: Router,
        clock: Clock,
        outputs: Outputs,
        *,
        queue_size: int = 2000,
        retention: tuple[float, float] = (30 * DAY, 90 * DAY),
    ) -> None:
        self._store = store
        self._rules = rules
        self._router = router
        self._clock = clock
        self._outputs = outputs
        self._retention = retention
        self._inbox: queue.Queue[Item | _Wake] = queue.Queue()
        self._soft_limit = queue_size
        self._full_log = RateLimitedLog(log)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.counters = CoreCounters()
        self.state = load_state(store, clock.now())
        self._last_resync = self._clock.monotonic()
        self._last_prune = 0.0
        # Monotonic time at which the batch in hand was taken; None while waiting.
        self._busy_since: float | None = None

    @property
    def heartbeat(self) -> float:
        """Monotonic time the loop last showed it is not stuck: now while it waits for
        work, the start of the batch in hand while it decides. The systemd watchdog is
        fed only while this stays fresh, so a hung commit gets the service restarted
        — without the loop turning on a timer to prove it is alive."""
        busy = self._busy_since
        return self._clock.monotonic() if busy is None else busy

    # ------------------------------------------------------------------ feeding

    def submit(self, item: Item) -> None:
        """Hand an item over; never blocks.

        QoS 0 messages are dropped (counted, logged) once the queue holds
        ``queue_size`` items: a flood of them must not delay presses. Everything
        else is always taken — QoS 1 messages are bounded by the broker's in-flight
        window, and one dropped without its PUBACK would hold a slot of that window
        until the next reconnect, stalling all MQTT input.
        """
        if (
            isinstance(item, InboundMessage)
            and item.qos == 0
            and self._inbox.qsize() >= self._soft_limit
        ):
            self.counters.queue_full += 1
            self._full_log.warning("core queue full: dropped a QoS 0 message on %s", item.topic)
            return
        self._inbox.put_nowait(item)

    @property
    def backlog(self) -> int:
        return self._inbox.qsize()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="core", daemon=True)
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float = 3.0) -> None:
        """Stop taking input; finishes the batch in hand (it is committed or not at all)."""
        self._stop.set()
        self._inbox.put_nowait(_WAKE)
        if self._thread is not None:
            self._thread.join(timeout)

    # ------------------------------------------------------------------ loop

    def _run(self) -> None:
        backoff = 0.5
        pending: list[Item] = []
        while not self._stop.is_set():
            try:
                # Every turn, not only when idle: a steady stream of messages (a press
                # every 0.5 s) would otherwise starve pruning and the CLI resync forever.
                self._housekeeping()
                if not pending:
                    pending = self._next_batch()
                    if not pending:
                        continue
                self._busy_since = self._clock.monotonic()
                self.process(pending)
                pending = []
                backoff = 0.5
            except OutboxError as exc:
                # Disk full, I/O error, locked database: nothing was acknowledged and
                # the state was rolled back. Keep the batch and try again.
                self.counters.commit_failures += 1
                log.error(
                    "could not commit %d events (%s); retrying in %.1fs", len(pending), exc, backoff
                )
                self._stop.wait(backoff)
                backoff = min(backoff * 2, _COMMIT_BACKOFF_MAX)
            except Exception:
                # A bug must not stop the gateway from taking presses, nor let one bad
                # item take its whole batch down: decide them one at a time.
                log.exception(
                    "internal error while deciding %d items; retrying singly", len(pending)
                )
                self._process_singly(pending)
                pending = []
            finally:
                self._busy_since = None
        self._drain()

    def _next_batch(self) -> list[Item]:
        first = self._next_item()
        if first is None:
            return []
        return [first, *self._take(self.MAX_BATCH - 1)]

    def _take(self, most: int) -> list[Item]:
        """Up to ``most`` items already queued, without waiting."""
        taken: list[Item] = []
        while len(taken) < most:
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                break
            if not isinstance(item, _Wake):
                taken.append(item)
        return taken

    def _process_singly(self, items: list[Item]) -> None:
        for item in items:
            try:
                self.process([item])
            except OutboxError as exc:
                # The database failed on its own: back in the queue, the normal path
                # retries it with backoff.
                log.error("could not commit %s (%s); queued again", type(item).__name__, exc)
                self._inbox.put_nowait(item)
            except Exception:
                log.exception("internal error while deciding %s; dropped", type(item).__name__)
                if isinstance(item, InboundMessage):
                    # Poison: acknowledged, so the broker stops redelivering it and the
                    # in-flight window stays open for everything else.
                    bad = InvalidInput("?", item.topic, "internal error while deciding")
                    report = Report(
                        Outcome.INVALID, bad.device, self._clock.now(), detail=bad.reason
                    )
                    self._deliver(Decided(acks=(item,), reports=(report,), state=self.state))

    def _drain(self) -> None:
        """On stop: decide what is already queued (GPIO presses would otherwise be
        lost; MQTT messages not acknowledged come again after the restart)."""
        deadline = self._clock.monotonic() + 1.0
        while self._clock.monotonic() < deadline:
            batch = self._take(self.MAX_BATCH)
            if not batch:
                return
            try:
                self.process(batch)
            except Exception:
                log.exception("could not decide %d queued items while stopping", len(batch))
                return

    def _next_item(self) -> Item | None:
        """The next item, or a Tick when a rule's time is due; None when housekeeping
        is due (or on stop). Waits exactly that long: no polling."""
        now = self._clock.now()
        due = self._next_due(now)
        timeout = self._until_housekeeping()
        if due is not None:
            timeout = min(timeout, max(0.0, (due - now) / self._clock.scale))
        try:
            item = self._inbox.get(timeout=timeout)
        except queue.Empty:
            if due is not None and self._clock.now() >= due:
                return Tick()
            return None
        return None if isinstance(item, _Wake) else item

    def _until_housekeeping(self) -> float:
        mono = self._clock.monotonic()
        resync = self._last_resync + _RESYNC_EVERY - mono
        prune = self._last_prune + _PRUNE_EVERY / self._clock.scale - mono
        return max(0.0, min(resync, prune))

    def _next_due(self, now: float) -> float | None:
        return next_due(self.state, now, self._rules)

    def _housekeeping(self) -> None:
        mono = self._clock.monotonic()
        try:
            if mono - self._last_resync >= _RESYNC_EVERY:
                self._last_resync = mono
                fresh = load_state(self._store, self._clock.now())
                self.state = replace(self.state, open_orders=fresh.open_orders, placed=fresh.placed)
            # An hour of clock time: retention is in clock time too, so a scaled run
            # (demo, soak) keeps its database as small as a real gateway does.
            if mono - self._last_prune >= _PRUNE_EVERY / self._clock.scale:
                self._last_prune = mono
                removed = self._store.prune(self._clock.now(), *self._retention)
                if removed:
                    log.info("pruned %d old event ids and finished orders", removed)
        except OutboxError as exc:
            log.warning("housekeeping skipped: %s", exc)

    # ------------------------------------------------------------------ one batch

    def process(self, items: list[Item]) -> None:
        """Decide, commit, then acknowledge one batch (also used directly by tests)."""
        now = self._clock.now()
        before = self.state
        state = before
        durable: list[Action] = []
        acks: list[InboundMessage] = []
        reports: list[Report] = []
        feedback: list[Feedback] = []
        readings: list[SensorReading] = []
        sim_gpio: list[SimGpio] = []
        vitals: list[DeviceVitals] = []
        pending_seen: set[str] = set()
        cancels: dict[str, CancelOrder] = {}
        requeued = False
        requeues = [asked for asked in items if isinstance(asked, Requeue)]
        if requeues:
            # Written before the batch is decided: a failure here retries the whole
            # batch, and nothing of it has been committed or told yet.
            reports.extend(self._requeue(asked, now) for asked in requeues)
            requeued = any(r.outcome is Outcome.REQUEUED for r in reports)
            if requeued:
                fresh = load_state(self._store, now)
                state = replace(state, open_orders=fresh.open_orders, placed=fresh.placed)

        def run(event: Event) -> None:
            nonlocal state
            seen = False
            if isinstance(event, ButtonEvent | SensorReading):
                key = event_dedupe_key(state, event)
                seen = key is not None and (key in pending_seen or self._store.is_seen(key))
            state, actions = decide(state, event, now, self._rules, seen=seen)
            for action in actions:
                if isinstance(action, _DURABLE):
                    durable.append(action)
                    if isinstance(action, RememberEvent):
                        pending_seen.add(action.dedupe_key)
                    if isinstance(action, CancelOrder):
                        cancels[action.key] = action
                elif isinstance(action, Report):
                    reports.append(action)
                elif isinstance(action, Feedback):
                    feedback.append(action)
            if isinstance(event, SensorReading):
                readings.append(event)

        for item in items:
            if isinstance(item, Reconfigure):
                self._rules, self._router = item.rules, item.router
                continue
            if isinstance(item, Requeue):
                continue
            if isinstance(item, InboundMessage):
                for routed in self._route(item, now):
                    if isinstance(routed, SimGpio):
                        sim_gpio.append(routed)
                    elif isinstance(routed, DeviceVitals):
                        vitals.append(routed)
                    elif isinstance(routed, Ignored):
                        reports.append(
                            Report(
                                Outcome.IGNORED,
                                routed.device,
                                now,
                                detail=routed.detail,
                                routine=routed.routine,
                            )
                        )
                    else:
                        run(routed)
                acks.append(item)
            else:
                run(item)

        try:
            result = self._store.commit(durable, now=now) if durable else None
        except BaseException:
            self.state = before
            raise
        if result is not None and result.local_cancels:
            # Cancelled before they left, in this very commit: the core tells the
            # household now (reports and LEDs only; nothing more to write).
            for key in result.local_cancels:
                c = cancels[key]
                update = OrderUpdate(
                    c.key,
                    c.product,
                    c.device,
                    OrderState.CANCELLED,
                    reason="cancelled before it was sent",
                )
                state, told = decide(state, update, now, self._rules)
                reports.extend(a for a in told if isinstance(a, Report))
                feedback.extend(a for a in told if isinstance(a, Feedback))
        self.state = state
        self._deliver(
            Decided(
                acks=tuple(acks),
                reports=tuple(reports),
                feedback=tuple(feedback),
                readings=tuple(readings),
                sim_gpio=tuple(sim_gpio),
                vitals=tuple(vitals),
                state=state,
                wake_sender=requeued or (result is not None and result.wake_sender),
            )
        )

    def _requeue(self, item: Requeue, now: float) -> Report:
        row = self._store.get(item.key)
        if row is None or not self._store.requeue(item.key, now):
            why = f"it is {row.state}" if row is not None else "it is no longer in the outbox"
            detail = f"nothing to retry via {item.via}: {why} (only rejected or blocked orders)"
            device = row.device if row is not None else "?"
            product = row.product if row is not None else None
            return Report(Outcome.IGNORED, device, now, product, order_key=item.key, detail=detail)
        return Report(
            Outcome.REQUEUED,
            row.device,
            now,
            row.product,
            order_key=item.key,
            state=OrderState.QUEUED,
            detail=f"queued again via {item.via} (was {row.state}: {row.last_error or '?'})",
        )

    def _deliver(self, decided: Decided) -> None:
        for report in decided.reports:
            self.counters.by_outcome[report.outcome] = (
                self.counters.by_outcome.get(report.outcome, 0) + 1
            )
        try:
            self._outputs.deliver(decided)
        except Exception:
            log.exception("an output failed (the decision itself is committed)")

    def _route(self, item: InboundMessage, now: float) -> list[Routed]:
        try:
            return self._router.events(
                item.topic, item.payload, mid=item.mid, retain=item.retain, dup=item.dup, now=now
            )
        except Exception:
            # A parser bug must cost this one message, not its whole batch: a skipped
            # batch is never acknowledged, so the broker would hold back everything
            # after it and send the same poison again after each reconnect.
            log.exception("could not route a message on %s; reported as invalid", item.topic)
            return [InvalidInput("?", item.topic, "the gateway failed to read this message")]
