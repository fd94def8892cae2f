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
from collections.abc import Callable, Mapping
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
# Requests on the wire at once. Each order keeps its key and its place (claims follow
# the outbox's order); overlapping them keeps one slow answer from holding up the rest.
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
        # the gate, the keys in flight and what was reported.
        self._lock = threading.Lock()
        self._inflight: set[str] = set()
        self._store: Store | None = None
        self._price_lock = threading.Lock()
        self._price_store: Store | None = None
        self._gate = Gate()
        self._last_latency: float | None = None
        self._reported: dict[str, tuple[OrderState, bool]] = {}

    # ------------------------------------------------------------------ control

    @property
    def shop_reachable(self) -> bool | None:
        """None until the first request; False while no HTTP answer comes back."""
        return self._gate.reachable

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

    def _limit(self) -> int:
        """Requests allowed on the wire now (the lock is held): all the slots once the
        shop answers; one — a probe — until then, after a start or an outage."""
        return self._concurrency if self._gate.reachable is True else 1

    def _full(self) -> bool:
        with self._lock:
            return len(self._inflight) >= self._limit()

    def _busy(self) -> bool:
        with self._lock:
            return bool(self._inflight)

    def _dispatch(self, store: Store) -> bool:
        """Hand what is due now to free workers; True if there may be more to hand."""
        did = False
        with self._lock:
            if not self._gate.is_open(self._clock.now()):
                return False
            followups = [
                r for r in store.due_followups(self._clock.now()) if r.key not in self._inflight
            ]
        for row in followups:
            if not self._hand(_Job(row, follow_up=True)):
                return False
            did = True
        while not self._stopping.is_set():
            with self._lock:
                if not self._gate.is_open(self._clock.now()):
                    return False
                if len(self._inflight) >= self._limit():
                    return False
                # Claimed in the outbox's order: requests overlap, but each order
                # keeps its place (and its key), and no key is ever on the wire twice.
                claimed = store.claim_next(self._clock.now(), exclude=self._inflight)
                if claimed is None:
                    return did
                self._inflight.add(claimed.key)
            self._work.put(_Job(claimed, follow_up=False))
            did = True
        return False

    def _hand(self, job: _Job) -> bool:
        with self._lock:
            if len(self._inflight) >= self._limit() or self._stopping.is_set():
                return False
            self._inflight.add(job.row.key)
        self._work.put(job)
        return True

    def _sleep_for(self, store: Store) -> float:
        now = self._clock.now()
        with self._lock:
            due = store.next_wakeup()
            if due is not None and self._gate.closed_until is not None:
                due = max(due, self._gate.closed_until)
        cap = IDLE_RECHECK * self._clock.scale
        if due is None:
            return cap
        # A floor of 10 ms real time: never spin, even if a row is due but unclaimable.
        return min(max(due - now, 0.01 * self._clock.scale), cap)

    # ------------------------------------------------------------------ one order

    def _worker(self) -> None:
        while True:
            job = self._work.get()
            if job is None:
                return
            try:
                if job.follow_up:
                    self._follow_up(job.row)
                else:
                    self._send(job.row)
            except OutboxError as exc:
                # The answer could not be written: the row is still 'sending' (or due)
                # and is taken again, with the same key, once the outbox works.
                log.error("sender: could not record the answer for %s (%s)", job.row.key[:12], exc)
            except Exception:
                log.exception("sender: unexpected error with order %s", job.row.key[:12])
            finally:
                with self._lock:
                    self._inflight.discard(job.row.key)
                self._wake.set()

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
            step = expired(order, self._clock.now(), self._gate, policy)
            released = 0 if step is None else self._apply(step)
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
                    order, result, self._clock.now(), self._gate, policy, self._jitter()
                )
                released = self._apply(step)
        if isinstance(result, Accepted) and result.price is not None and step.update is not None:
            step = replace(step, update=replace(step.update, price=result.price))
        self._tell(step, released)
        if self._on_send is not None and step.outcome is not None and step.outcome != "expired":
            self._on_send(latency, step.outcome)

    def _follow_up(self, row: OrderRow) -> None:
        order = _view(row)
        backend, policy = self._shop(row)
        if row.shop_order_id is None:  # cannot happen through Accept; never spin on it
            with self._lock:
                step = no_shop_id(order, self._clock.now(), self._gate, policy)
                released = self._apply(step)
        elif row.cancel_requested:
            cancelled = backend.cancel_order(row.shop_order_id)
            with self._lock:
                step = after_cancel(order, cancelled, self._clock.now(), self._gate, policy)
                released = self._apply(step)
        else:
            status = backend.get_order(row.shop_order_id)
            with self._lock:
                step = after_status(order, status, self._clock.now(), self._gate, policy)
                released = self._apply(step)
        if row.price is not None and step.update is not None:
            step = replace(step, update=replace(step.update, price=row.price))
        self._tell(step, released)

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

    def _apply(self, step: Step) -> int:
        """Write the step (the lock is held). Returns how many blocked orders it freed."""
        if self._store is None:
            raise OutboxError("the outbox is not open")
        now = self._clock.now()
        self._store.apply(step.change, now)
        self._gate = step.gate
        return self._store.release_blocked(now) if step.release_blocked else 0

    def _tell(self, step: Step, released: int) -> None:
        for line in step.logs:
            log.log(line.level, "%s", line.text)
        if released:
            log.warning(
                "the shop accepts our credentials again; retrying %d blocked orders now", released
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

    def close(self) -> None:
        pass


@dataclass(frozen=True)
class _Job:
    row: OrderRow
    follow_up: bool  # a status poll or a cancel; otherwise placing the order


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
