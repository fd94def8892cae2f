"""The sender: drains the outbox into the shop, one order at a time, in order.

Its own thread, its own :class:`~gateway.outbox.store.Store`. It only performs I/O:
it claims the next due order, calls the backend, hands the classified answer to the
pure retry policy (:mod:`gateway.core.retry`), applies the change the policy
returns, and tells the core. The retry *schedule* lives in the database
(``next_attempt_at``), so a restart keeps it.

Each order goes to the backend of its shop (``row.shop``, from the config's
``shops:``); one backend alone is the shop "default". Accepted orders are polled every
``poll_interval`` of their shop until delivered or cancelled; a requested cancel is
sent as soon as the order is at the shop.

Every shop has its own :class:`~gateway.core.retry.Gate`: an outage, a Retry-After
or a refused token at one shop never holds up the orders of another. The workers are
shared; a shop not known to answer (after a start, or an outage) gets one request on
the wire — a probe — until it does. At start each backend is probed
(:meth:`~gateway.commerce.base.CommerceBackend.probe`, no order involved), so
reachability is known within seconds, and an unreachable shop with nothing to send
is probed again every ``probe_interval``.

>>> import tempfile
>>> from gateway.clock import RealClock
>>> from gateway.commerce import HttpCommerce
>>> from gateway.config.models import CommerceSection
>>> settings = CommerceSection(base_url="http://127.0.0.1:1/api/v1", token="t")
>>> sender = Sender(tempfile.mkdtemp(), HttpCommerce(settings), RealClock(), settings, print)
>>> sender.start(); sender.wake(); sender.stop()
"""

from __future__ import annotations

import logging
import queue
import random
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from gateway.clock import Clock
from gateway.commerce.base import (
    Accepted,
    CancelResult,
    CommerceBackend,
    Guarantee,
    Misconfigured,
    PlaceResult,
    Probe,
    StatusResult,
)
from gateway.core.events import DEFAULT_SHOP, OrderState, OrderUpdate, PlaceOrder
from gateway.core.keys import short_key
from gateway.core.retry import (
    Gate,
    OrderView,
    RetryPolicy,
    Step,
    after_cancel,
    after_probe,
    after_status,
    expired,
    is_news,
    next_step,
    no_shop_id,
)
from gateway.outbox.store import OrderRow, OutboxError, Store

log = logging.getLogger(__name__)


class ShopTiming(Protocol):
    """The two settings of a shop section the retry policy needs."""

    @property
    def poll_interval(self) -> float: ...

    @property
    def expire_after(self) -> float: ...


_REPORTED_MAX = 10_000
# Requests on the wire at once, all shops together. Each order keeps its key and its
# place (claims follow the outbox's order); overlapping them keeps one slow answer from
# holding up the rest. With more than one shop, one shop may hold all but one of them:
# a shop whose answers hang (timeouts) leaves a slot for the others.
CONCURRENCY = 4
# Real seconds between look-ups when nothing is scheduled: picks up rows changed by
# another process (``reorder-gateway queue retry``) at a cost of ~0 CPU.
IDLE_RECHECK = 30.0
# Real seconds, doubling: how long to back off when the database itself fails.
_DB_BACKOFF_START = 1.0
_DB_BACKOFF_CAP = 60.0


class Sender:
    """Drains the outbox in its own thread.

    ``on_update`` is called from the sender thread for every state an order reaches
    (``sending`` is internal and not reported); keep it non-blocking (put it on a
    queue). ``on_send(seconds, outcome)`` receives each place-order round trip.

    ``backend`` and ``settings`` are one shop's (the shop "default"), or mappings from
    shop name to each shop's backend and settings.
    """

    def __init__(
        self,
        state_dir: str | Path,
        backend: CommerceBackend | Mapping[str, CommerceBackend],
        clock: Clock,
        settings: ShopTiming | Mapping[str, ShopTiming],
        on_update: Callable[[OrderUpdate], None],
        *,
        on_send: Callable[[float, str], None] | None = None,
        jitter: Callable[[], float] = random.random,
        concurrency: int = CONCURRENCY,
    ) -> None:
        self._state_dir = Path(state_dir)
        self._backends = dict(backend) if isinstance(backend, Mapping) else {DEFAULT_SHOP: backend}
        shops = dict(settings) if isinstance(settings, Mapping) else {DEFAULT_SHOP: settings}
        if set(shops) != set(self._backends):
            raise ValueError("the sender needs one backend and one settings section per shop")
        self._policies = {
            name: RetryPolicy(poll_interval=s.poll_interval, expire_after=s.expire_after)
            for name, s in shops.items()
        }
        self._clock = clock
        self._on_update = on_update
        self._on_send = on_send
        self._jitter = jitter
        self._concurrency = max(1, concurrency)
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._workers: list[threading.Thread] = []
        self._work: queue.Queue[_Job | None] = queue.Queue()
        # Guards the store (one connection, used by the dispatcher and the workers),
        # the gates, the keys and probes in flight and what was reported.
        self._lock = threading.Lock()
        self._inflight: dict[str, str] = {}  # key on the wire -> its shop
        self._probing: set[str] = set()  # shops with a probe on the wire
        self._probed: set[str] = set()  # shops whose unknown reachability was probed
        self._store: Store | None = None
        self._price_lock = threading.Lock()
        self._price_store: Store | None = None
        self._gates = {name: Gate() for name in self._backends}
        # Orders for shops the config no longer names: kept apart, never reported.
        self._stray_gates: dict[str, Gate] = {}
        self._last_latency: float | None = None
        self._reported: dict[str, tuple[OrderState, bool]] = {}

    # ------------------------------------------------------------------ control

    @property
    def shop_reachable(self) -> bool | None:
        """All shops together: False if any is unreachable, else None if any is not
        known yet (before its probe; always for a webhook until its first order),
        else True."""
        return aggregate(self.reachability().values())

    def reachability(self) -> dict[str, bool | None]:
        """Per configured shop: True once it answered, False while no answer comes
        back, None while not known."""
        with self._lock:
            return {name: gate.reachable for name, gate in self._gates.items()}

    def refused(self) -> dict[str, bool]:
        """Per configured shop: whether its latest word on our credentials was a refusal."""
        with self._lock:
            return {name: gate.refused for name, gate in self._gates.items()}

    @property
    def last_send_latency(self) -> float | None:
        """Real seconds the last place-order round trip took."""
        return self._last_latency

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("the sender is already started")
        self._thread = threading.Thread(target=self._run, name="sender", daemon=True)
        self._workers = [
            threading.Thread(target=self._worker, name=f"sender-{n}", daemon=True)
            for n in range(self._concurrency)
        ]
        for worker in self._workers:
            worker.start()
        self._thread.start()

    def wake(self) -> None:
        """New work was committed: look at the outbox now."""
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop after the requests in flight (a row cut short stays ``sending`` and is
        re-sent with the same key on the next start)."""
        deadline = self._clock.monotonic() + timeout
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        for _ in self._workers:
            self._work.put(None)
        for worker in self._workers:
            worker.join(max(0.0, deadline - self._clock.monotonic()))
        if any(w.is_alive() for w in self._workers) or (self._thread and self._thread.is_alive()):
            log.warning("sender did not stop within %.1fs (a request is in flight)", timeout)
            return
        # The backend's connections end with the threads that used them (a gateway run
        # in-process, as tests and the demo do, would otherwise leak a socket).
        for backend in self._backends.values():
            try:
                backend.close()
            except Exception as exc:
                log.debug("closing the commerce backend failed: %s", exc)

    # ------------------------------------------------------------------ dispatching

    def _run(self) -> None:
        db_backoff = _DB_BACKOFF_START
        while not self._stopping.is_set():
            self._wake.clear()
            timeout: float | None
            try:
                if self._store is None:
                    # Not durable: only the core's intent commit must survive a power
                    # cut. Everything the sender writes (sending, accepted, retry
                    # times, statuses) is recoverable: a row that rolls back to
                    # queued/sending is sent again with the same Idempotency-Key and
                    # the shop replays the same order id, a lost status is polled
                    # again. Per order this leaves one fsync (the intent) instead of
                    # three (intent, claim, accepted): fsyncs are what bound the
                    # press latency and the drain rate on an SD card.
                    opened = Store.open(self._state_dir, durable=False)
                    with self._lock:
                        self._store = opened
                if self._dispatch(self._store):
                    continue
                # Every slot busy: a finishing request wakes us. Otherwise: the next due time.
                timeout = None if self._full() else self._sleep_for(self._store)
                db_backoff = _DB_BACKOFF_START
            except OutboxError as exc:
                # Disk full, database locked for too long, permissions changed: the
                # rows are still safe on disk; reopen (once nothing is in flight) and
                # try again later.
                log.error("sender: outbox unavailable (%s); retrying in %.0fs", exc, db_backoff)
                if not self._busy():
                    with self._lock:
                        _close_quietly(self._store)
                        self._store = None
                timeout = db_backoff * self._clock.scale
                db_backoff = min(db_backoff * 2, _DB_BACKOFF_CAP)
            except Exception:
                log.exception("sender: unexpected error; retrying in %.0fs", db_backoff)
                timeout = db_backoff * self._clock.scale
                db_backoff = min(db_backoff * 2, _DB_BACKOFF_CAP)
            if self._stopping.is_set():
                break
            self._clock.wait(self._wake, timeout)
        if not self._busy():
            with self._lock:
                _close_quietly(self._store)
                self._store = None
            with self._price_lock:
                _close_quietly(self._price_store)
                self._price_store = None

    def _gate(self, shop: str) -> Gate:
        """The gate of ``shop`` (the lock is held)."""
        gate = self._gates.get(shop)
        return gate if gate is not None else self._stray_gates.setdefault(shop, Gate())

    def _set_gate(self, shop: str, gate: Gate) -> None:
        if shop in self._gates:
            self._gates[shop] = gate
        else:
            self._stray_gates[shop] = gate

    def _on_wire(self, shop: str) -> int:
        """Requests on the wire for ``shop`` (the lock is held)."""
        return sum(1 for s in self._inflight.values() if s == shop) + (shop in self._probing)

    def _limit(self, shop: str) -> int:
        """Requests allowed on the wire for ``shop`` (the lock is held): one — a probe —
        until it answers, after a start or an outage; then all the slots, less one
        kept for the other shops when there are others."""
        if self._gate(shop).reachable is not True:
            return 1
        shared = len(self._backends) > 1 and self._concurrency > 1
        return self._concurrency - 1 if shared else self._concurrency

    def _total(self) -> int:
        return len(self._inflight) + len(self._probing)

    def _full(self) -> bool:
        with self._lock:
            return self._total() >= self._concurrency

    def _busy(self) -> bool:
        with self._lock:
            return bool(self._inflight or self._probing)

    def _held(self, now: float) -> set[str]:
        """Shops no request may go to now (the lock is held): closed, or at their limit."""
        gates = {**self._stray_gates, **self._gates}
        return {
            shop
            for shop, gate in gates.items()
            if not gate.is_open(now) or self._on_wire(shop) >= self._limit(shop)
        }

    def _dispatch(self, store: Store) -> bool:
        """Hand what is due now to free workers; True if there may be more to hand."""
        did = False
        # A shop not known yet is probed before any order goes to it.
        for shop in self._backends:
            if self._hand_probe(shop, unknown=True):
                did = True
        with self._lock:
            now = self._clock.now()
            held = self._held(now)
            followups = [
                r
                for r in store.due_followups(now)
                if r.key not in self._inflight and r.shop not in held
            ]
        for row in followups:
            if self._hand(_Job(row, follow_up=True)):
                did = True
        while not self._stopping.is_set():
            with self._lock:
                if self._total() >= self._concurrency:
                    return False
                now = self._clock.now()
                # Claimed in the outbox's order: requests overlap, but each order
                # keeps its place (and its key), and no key is ever on the wire twice.
                claimed = store.claim_next(now, exclude=self._inflight, skip_shops=self._held(now))
                if claimed is None:
                    break
                self._inflight[claimed.key] = claimed.shop
            self._work.put(_Job(claimed, follow_up=False))
            did = True
        # An unreachable shop with nothing due is probed all the same, so that it
        # shows as reachable again as soon as it is.
        for shop in self._backends:
            if self._hand_probe(shop, unknown=False):
                did = True
        return did and not self._stopping.is_set()

    def _hand_probe(self, shop: str, *, unknown: bool) -> bool:
        """Probe ``shop`` if it is not known yet and was not probed since (``unknown``),
        or if it is unreachable and its gate open again."""
        with self._lock:
            gate = self._gates[shop]
            wanted = (
                gate.reachable is None and shop not in self._probed
                if unknown
                else gate.reachable is False
            )
            if (
                self._stopping.is_set()
                or not wanted
                or not gate.is_open(self._clock.now())
                or self._on_wire(shop) > 0
                or self._total() >= self._concurrency
            ):
                return False
            self._probing.add(shop)
        self._work.put(_Job(None, follow_up=False, probe=shop))
        return True

    def _hand(self, job: _Job) -> bool:
        assert job.row is not None
        shop = job.row.shop
        with self._lock:
            if (
                self._stopping.is_set()
                or self._total() >= self._concurrency
                or self._on_wire(shop) >= self._limit(shop)
                or not self._gate(shop).is_open(self._clock.now())
            ):
                return False
            self._inflight[job.row.key] = shop
        self._work.put(job)
        return True

    def _sleep_for(self, store: Store) -> float:
        now = self._clock.now()
        with self._lock:
            dues: list[float] = []
            for shop, due in store.next_wakeups().items():
                if self._on_wire(shop) >= self._limit(shop):
                    continue  # its answer wakes us
                closed = self._gate(shop).closed_until
                dues.append(due if closed is None else max(due, closed))
            for shop, gate in self._gates.items():
                # The next idle probe of an unreachable shop.
                idle = gate.reachable is False and self._on_wire(shop) == 0
                if idle and gate.closed_until is not None:
                    dues.append(gate.closed_until)
        cap = IDLE_RECHECK * self._clock.scale
        if not dues:
            return cap
        # A floor of 10 ms real time: never spin, even if a row is due but unclaimable.
        return min(max(min(dues) - now, 0.01 * self._clock.scale), cap)

    # ------------------------------------------------------------------ one order

    def _worker(self) -> None:
        while True:
            job = self._work.get()
            if job is None:
                return
            what = job.row.key[:12] if job.row is not None else f"probe of {job.probe}"
            try:
                if job.probe is not None:
                    self._probe(job.probe)
                elif job.follow_up:
                    assert job.row is not None
                    self._follow_up(job.row)
                else:
                    assert job.row is not None
                    self._send(job.row)
            except OutboxError as exc:
                # The answer could not be written: the row is still 'sending' (or due)
                # and is taken again, with the same key, once the outbox works.
                log.error("sender: could not record the answer for %s (%s)", what, exc)
            except Exception:
                log.exception("sender: unexpected error with %s", what)
            finally:
                with self._lock:
                    if job.row is not None:
                        self._inflight.pop(job.row.key, None)
                    if job.probe is not None:
                        self._probing.discard(job.probe)
                self._wake.set()

    def _probe(self, shop: str) -> None:
        """Ask the shop whether it answers, with no order involved."""
        try:
            found = self._backends[shop].probe()
        except Exception as exc:  # a probe must never take the sender down
            log.warning("probing shop %s failed: %s", shop, exc)
            found = Probe(None, str(exc))
        with self._lock:
            self._probed.add(shop)
            step = after_probe(self._gates[shop], found, self._clock.now(), self._policies[shop])
            self._gates[shop] = step.gate
        for line in step.logs:
            log.log(line.level, "%s", self._named(shop, line.text))

    def _named(self, shop: str, text: str) -> str:
        """A log line of one shop's, named when there is more than one."""
        return text if len(self._backends) == 1 else f"shop {shop}: {text}"

    def _shop(self, row: OrderRow) -> tuple[CommerceBackend, RetryPolicy]:
        backend = self._backends.get(row.shop)
        if backend is None:
            # The config no longer names the shop this order was committed for: it is
            # blocked (a rejection would lose it) until the shop is configured again.
            return _Unconfigured(row.shop), next(iter(self._policies.values()))
        return backend, self._policies[row.shop]

    def _send(self, row: OrderRow) -> None:
        order = _view(row)
        backend, policy = self._shop(row)
        with self._lock:
            step = expired(order, self._clock.now(), self._gate(row.shop), policy)
            released = 0 if step is None else self._apply(step, row.shop)
        latency = 0.0
        if step is None:
            started = self._clock.monotonic()
            result = backend.place_order(row.intent)
            latency = self._clock.monotonic() - started
            self._last_latency = latency
            if isinstance(result, Accepted) and result.price is not None:
                self._record_price(row.key, result)
            with self._lock:
                # Judged against the gate as it is now: another worker's answer may
                # have changed it while this request was on the wire.
                step = next_step(
                    order, result, self._clock.now(), self._gate(row.shop), policy, self._jitter()
                )
                released = self._apply(step, row.shop)
        if isinstance(result, Accepted) and result.price is not None and step.update is not None:
            step = replace(step, update=replace(step.update, price=result.price))
        self._tell(step, released, row.shop)
        if self._on_send is not None and step.outcome is not None and step.outcome != "expired":
            self._on_send(latency, step.outcome)

    def _follow_up(self, row: OrderRow) -> None:
        order = _view(row)
        backend, policy = self._shop(row)
        if row.shop_order_id is None:  # cannot happen through Accept; never spin on it
            with self._lock:
                step = no_shop_id(order, self._clock.now(), self._gate(row.shop), policy)
                released = self._apply(step, row.shop)
        elif row.cancel_requested:
            cancelled = backend.cancel_order(row.shop_order_id)
            with self._lock:
                gate = self._gate(row.shop)
                step = after_cancel(order, cancelled, self._clock.now(), gate, policy)
                released = self._apply(step, row.shop)
        else:
            status = backend.get_order(row.shop_order_id)
            with self._lock:
                gate = self._gate(row.shop)
                step = after_status(order, status, self._clock.now(), gate, policy)
                released = self._apply(step, row.shop)
        if row.price is not None and step.update is not None:
            step = replace(step, update=replace(step.update, price=row.price))
        self._tell(step, released, row.shop)

    def _record_price(self, key: str, accepted: Accepted) -> None:
        """Keep what the shop said the order costs, for status and later reports.

        On a connection of its own: the write must not lengthen the hold on the
        shared one, where the other workers wait to record and report their answers.
        Losing it (a crash right now) loses only what is shown: a replay brings it back.
        """
        assert accepted.price is not None
        with self._price_lock:
            if self._price_store is None:
                self._price_store = Store.open(self._state_dir, durable=False)
            self._price_store.record_price(key, accepted.price)

    def _apply(self, step: Step, shop: str) -> int:
        """Write the step of an order of ``shop`` (the lock is held). Returns how many
        of that shop's blocked orders it freed."""
        if self._store is None:
            raise OutboxError("the outbox is not open")
        now = self._clock.now()
        self._store.apply(step.change, now)
        self._set_gate(shop, step.gate)
        return self._store.release_blocked(now, shop) if step.release_blocked else 0

    def _tell(self, step: Step, released: int, shop: str) -> None:
        for line in step.logs:
            log.log(line.level, "%s", self._named(shop, line.text))
        if released:
            log.warning(
                "%s",
                self._named(
                    shop,
                    f"the shop accepts our credentials again; retrying {released} blocked "
                    "orders now",
                ),
            )
        if step.update is not None:
            self._report(step.update, force=step.force)

    # ------------------------------------------------------------------ reporting

    def _report(self, update: OrderUpdate, *, force: bool = False) -> None:
        with self._lock:
            if not force and not is_news(self._reported.get(update.key), update):
                return
            if update.state.is_final:
                self._reported.pop(update.key, None)
            else:
                if len(self._reported) >= _REPORTED_MAX:
                    # Orders finished elsewhere (local cancels, `queue drop`) never reach
                    # a final report here; forgetting costs one repeated, harmless update.
                    self._reported.clear()
                self._reported[update.key] = (update.state, update.unreachable)
        try:
            self._on_update(update)
        except Exception:
            log.exception("sender: the order-update callback failed for %s", short_key(update.key))


class _Unconfigured:
    """The backend of a shop the config no longer names: every call is Misconfigured."""

    guarantee = Guarantee.NATIVE_KEYS  # never talks to anyone: promises nothing more

    def __init__(self, shop: str) -> None:
        self._reason = (
            f"no shop named {shop!r} is configured — add it under shops: again, or drop the "
            "order with 'reorder-gateway queue drop'"
        )

    def place_order(self, intent: PlaceOrder) -> PlaceResult:
        return Misconfigured(self._reason)

    def get_order(self, shop_order_id: str) -> StatusResult:
        return Misconfigured(self._reason)

    def cancel_order(self, shop_order_id: str) -> CancelResult:
        return Misconfigured(self._reason)

    def probe(self) -> Probe:
        return Probe(None, self._reason)

    def close(self) -> None:
        pass


def aggregate(reachable: Iterable[bool | None]) -> bool | None:
    """All shops as one: False if any is unreachable, None if any is unknown, else True.

    >>> aggregate([True, None]), aggregate([None, False]), aggregate([True, True])
    (None, False, True)
    """
    found = set(reachable)
    if False in found:
        return False
    return None if None in found or not found else True


@dataclass(frozen=True)
class _Job:
    row: OrderRow | None
    follow_up: bool  # a status poll or a cancel; otherwise placing the order
    probe: str | None = None  # a probe of this shop, no order involved


def _view(row: OrderRow) -> OrderView:
    return OrderView(
        key=row.key,
        product=row.product,
        device=row.device,
        state=row.state,
        attempts=row.attempts,
        created_at=row.created_at,
        shop_order_id=row.shop_order_id,
        cancel_requested=row.cancel_requested,
    )


def _close_quietly(store: Store | None) -> None:
    if store is not None:
        try:
            store.close()
        except OutboxError as exc:
            log.debug("closing the outbox failed: %s", exc)
