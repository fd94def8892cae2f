"""The sender: drains the outbox into the shop, one order at a time, in order.

Its own thread, its own :class:`~gateway.outbox.store.Store`. The retry *schedule* lives in
the database (``next_attempt_at``), so a restart keeps it; the retry *policy* is
tenacity's full-jitter exponential backoff:

=========================== ====================================================
The shop...                 The sender...
=========================== ====================================================
cannot be reached           probes again every ``probe_interval`` (5 s); others wait
answers 5xx / 408 / 409     full-jitter backoff for that order, capped at 60 s
answers 429 + Retry-After   waits what the shop asked (capped at 15 minutes)
answers 401 / 403           marks it ``blocked``, logs ERROR, retries every 5 min
answers 400 / 404 / 422     marks it ``rejected`` (dead letter, shop's message)
answers 2xx we cannot read  retries later with the same key (the shop replays)
=========================== ====================================================

Accepted orders are polled every ``commerce.poll_interval`` until delivered or
cancelled; a requested cancel is sent as soon as the order is at the shop.

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
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import assert_never

from tenacity import RetryCallState, Retrying, stop_never, wait_random_exponential

from gateway.clock import Clock
from gateway.commerce.base import (
    Accepted,
    Blocked,
    Cancelled,
    CommerceBackend,
    Rejected,
    Retry,
    Status,
    TooLate,
    Unclear,
)
from gateway.config.models import CommerceSection
from gateway.core.events import OrderState, OrderUpdate
from gateway.outbox.store import OrderRow, OutboxError, Store

log = logging.getLogger(__name__)

PROBE_INTERVAL = 5.0
_REPORTED_MAX = 10_000
BACKOFF_CAP = 60.0
BLOCKED_INTERVAL = 300.0
# Real seconds between look-ups when nothing is scheduled: picks up rows changed by
# another process (``reorder-gateway queue retry``) at a cost of ~0 CPU.
IDLE_RECHECK = 30.0
# Real seconds, doubling: how long to back off when the database itself fails.
_DB_BACKOFF_START = 1.0
_DB_BACKOFF_CAP = 60.0


def backoff_seconds(attempt: int, cap: float = BACKOFF_CAP) -> float:
    """Full-jitter exponential backoff for the ``attempt``-th try (1-based).

    Computed by tenacity's ``wait_random_exponential``; the waiting itself is done by
    the sender against a durable schedule, never by tenacity.

    >>> 0.0 <= backoff_seconds(1) <= 1.0 and 0.0 <= backoff_seconds(30) <= 60.0
    True
    """
    policy = Retrying(wait=wait_random_exponential(multiplier=1, max=cap), stop=stop_never)
    state = RetryCallState(policy, None, (), {})
    state.attempt_number = max(1, attempt)
    return float(policy.wait(state))


class Sender:
    """Drains the outbox in its own thread.

    ``on_update`` is called from the sender thread for every state an order reaches
    (``sending`` is internal and not reported); keep it non-blocking (put it on a
    queue). ``on_send(seconds, outcome)`` receives each place-order round trip.
    """

    def __init__(
        self,
        state_dir: str | Path,
        backend: CommerceBackend,
        clock: Clock,
        settings: CommerceSection,
        on_update: Callable[[OrderUpdate], None],
        *,
        on_send: Callable[[float, str], None] | None = None,
    ) -> None:
        self._state_dir = Path(state_dir)
        self._backend = backend
        self._clock = clock
        self._settings = settings
        self._on_update = on_update
        self._on_send = on_send
        self._probe_interval = PROBE_INTERVAL
        self._blocked_interval = BLOCKED_INTERVAL
        self._backoff_cap = BACKOFF_CAP
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._reachable: bool | None = None
        # No request before this: set while the shop is unreachable or asked us to wait.
        self._probe_at: float | None = None
        self._last_latency: float | None = None
        self._reported: dict[str, tuple[OrderState, bool]] = {}
        self._maybe_blocked = True

    # ------------------------------------------------------------------ control

    @property
    def shop_reachable(self) -> bool | None:
        """None until the first request; False while no HTTP answer comes back."""
        return self._reachable

    @property
    def last_send_latency(self) -> float | None:
        """Real seconds the last place-order round trip took."""
        return self._last_latency

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("the sender is already started")
        self._thread = threading.Thread(target=self._run, name="sender", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """New work was committed: look at the outbox now."""
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop after the request in flight (its row stays ``sending`` if cut short
        and is re-sent with the same key on the next start)."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("sender did not stop within %.1fs (a request is in flight)", timeout)

    # ------------------------------------------------------------------ loop

    def _run(self) -> None:
        store: Store | None = None
        db_backoff = _DB_BACKOFF_START
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                if store is None:
                    # Not durable: only the core's intent commit must survive a power
                    # cut. Everything the sender writes (sending, accepted, retry
                    # times, statuses) is recoverable: a row that rolls back to
                    # queued/sending is sent again with the same Idempotency-Key and
                    # the shop replays the same order id, a lost status is polled
                    # again. Per order this leaves one fsync (the intent) instead of
                    # three (intent, claim, mark_accepted): fsyncs are what bound the
                    # press latency and the drain rate on an SD card.
                    store = Store.open(self._state_dir, durable=False)
                busy = self._step(store)
                db_backoff = _DB_BACKOFF_START
                if busy:
                    continue
                timeout = self._sleep_for(store)
            except (sqlite3.Error, OSError, OutboxError) as exc:
                # Disk full, database locked for too long, permissions changed: the
                # rows are still safe on disk; reopen and try again later.
                log.error("sender: outbox unavailable (%s); retrying in %.0fs", exc, db_backoff)
                _close_quietly(store)
                store = None
                timeout = db_backoff * self._clock.scale
                db_backoff = min(db_backoff * 2, _DB_BACKOFF_CAP)
            except Exception:
                log.exception("sender: unexpected error; retrying in %.0fs", db_backoff)
                timeout = db_backoff * self._clock.scale
                db_backoff = min(db_backoff * 2, _DB_BACKOFF_CAP)
            if self._stopping.is_set():
                break
            self._clock.wait(self._wake, timeout)
        _close_quietly(store)
        # The backend's connections end with the thread that used them (a gateway run
        # in-process, as tests and the demo do, would otherwise leak a socket).
        try:
            self._backend.close()
        except Exception as exc:
            log.debug("closing the commerce backend failed: %s", exc)

    def _gate_open(self, now: float) -> bool:
        return self._probe_at is None or now >= self._probe_at

    def _step(self, store: Store) -> bool:
        """Do what is due now; True if anything was done (look again at once)."""
        now = self._clock.now()
        if not self._gate_open(now):
            return False
        did = False
        for row in store.due_followups(now):
            if self._stopping.is_set() or not self._gate_open(self._clock.now()):
                return did
            self._follow_up(store, row)
            did = True
        if self._stopping.is_set() or not self._gate_open(self._clock.now()):
            return did
        claimed = store.claim_next(self._clock.now())
        if claimed is None:
            return did
        self._send(store, claimed)
        return True

    def _sleep_for(self, store: Store) -> float:
        now = self._clock.now()
        due = store.next_wakeup()
        if due is not None and self._probe_at is not None:
            due = max(due, self._probe_at)
        cap = IDLE_RECHECK * self._clock.scale
        if due is None:
            return cap
        # A floor of 10 ms real time: never spin, even if a row is due but unclaimable.
        return min(max(due - now, 0.01 * self._clock.scale), cap)

    # ------------------------------------------------------------------ placing

    def _send(self, store: Store, row: OrderRow) -> None:
        now = self._clock.now()
        if now - row.created_at > self._settings.expire_after:
            reason = "expired"
            if row.attempts > 1:  # this claim counted one; earlier ones went unanswered
                reason += (
                    f"; {row.attempts - 1} earlier request(s) went unanswered, so the shop may"
                    " have it — check the shop's order list"
                )
            store.mark_rejected(row.key, reason, now)
            log.warning("order %s for %s expired unsent", _short(row.key), row.product)
            self._report(row, OrderState.REJECTED, reason=reason)
            return
        started = time.monotonic()
        result = self._backend.place_order(row.key, row.body)
        self._last_latency = time.monotonic() - started
        now = self._clock.now()
        outcome: str
        match result:
            case Accepted(shop_order_id=shop_id, replayed=replayed):
                outcome = "accepted"
                self._mark_reachable()
                store.mark_accepted(
                    row.key, shop_id, now, next_poll_at=now + self._settings.poll_interval
                )
                # After a restart blocked rows may be waiting from before: check once.
                released = store.release_blocked(now) if self._maybe_blocked else 0
                self._maybe_blocked = False
                if released:
                    log.warning(
                        "the shop accepts our credentials again; retrying %d blocked orders now",
                        released,
                    )
                log.info(
                    "order %s for %s accepted as %s%s",
                    _short(row.key),
                    row.product,
                    shop_id,
                    " (replayed)" if replayed else "",
                )
                self._report(row, OrderState.ACCEPTED, shop_order_id=shop_id)
            case Retry(reason=reason, unreachable=True):
                outcome = "unreachable"
                self._mark_unreachable(now, reason)
                assert self._probe_at is not None
                store.mark_retry(row.key, self._probe_at, reason, now=now)
                self._report(row, OrderState.QUEUED, reason=reason, unreachable=True)
            case Retry(reason=reason, after=after):
                outcome = "retry"
                # A Retry-After speaks for this client, not for one order: no request
                # at all before it has passed, or every queued order would hit the 429.
                self._mark_reachable(hold_until=None if after is None else now + after)
                cap = self._backoff_cap
                wait = after if after is not None else backoff_seconds(row.attempts, cap)
                log.warning("order %s: %s; retrying in %.1fs", _short(row.key), reason, wait)
                store.mark_retry(row.key, now + wait, reason, now=now)
                self._report(row, OrderState.QUEUED, reason=reason)
            case Blocked(reason=reason):
                outcome = "blocked"
                self._maybe_blocked = True
                self._mark_reachable()
                log.error(
                    "the shop refuses our credentials (%s): order %s for %s is blocked; "
                    "fix commerce.token / token_file — retrying every %.0fs",
                    reason,
                    _short(row.key),
                    row.product,
                    self._blocked_interval,
                )
                store.mark_retry(
                    row.key, now + self._blocked_interval, reason, OrderState.BLOCKED, now=now
                )
                self._report(row, OrderState.BLOCKED, reason=reason)
            case Rejected(reason=reason):
                outcome = "rejected"
                self._mark_reachable()
                log.error("order %s for %s rejected: %s", _short(row.key), row.product, reason)
                store.mark_rejected(row.key, reason, now)
                self._report(row, OrderState.REJECTED, reason=reason)
            case Unclear(reason=reason):
                outcome = "unclear"
                self._mark_reachable()
                wait = backoff_seconds(row.attempts, self._backoff_cap)
                log.warning(
                    "order %s: unclear answer (%s); asking again with the same key in %.1fs",
                    _short(row.key),
                    reason,
                    wait,
                )
                store.mark_retry(row.key, now + wait, reason, now=now)
                self._report(row, OrderState.QUEUED, reason=reason)
            case _:
                assert_never(result)
        if self._on_send is not None:
            self._on_send(self._last_latency, outcome)

    def _mark_reachable(self, hold_until: float | None = None) -> None:
        """The shop answered. ``hold_until``: a Retry-After that holds every request."""
        self._reachable, self._probe_at = True, hold_until

    def _mark_unreachable(self, now: float, reason: str) -> None:
        if self._reachable is not False:
            log.warning(
                "the shop is unreachable (%s); probing every %.0fs", reason, self._probe_interval
            )
        self._reachable = False
        self._probe_at = now + self._probe_interval

    # ------------------------------------------------------------------ after acceptance

    def _follow_up(self, store: Store, row: OrderRow) -> None:
        poll = self._settings.poll_interval
        if row.shop_order_id is None:  # cannot happen via mark_accepted; never spin on it
            store.reschedule(row.key, self._clock.now() + poll, "accepted without a shop id")
            return
        if row.cancel_requested:
            result = self._backend.cancel_order(row.shop_order_id)
            now = self._clock.now()
            match result:
                case Cancelled():
                    self._mark_reachable()
                    store.mark_status(row.key, OrderState.CANCELLED, now)
                    log.info("order %s cancelled at the shop", _short(row.key))
                    self._report(row, OrderState.CANCELLED, shop_order_id=row.shop_order_id)
                case TooLate(reason=reason) | Rejected(reason=reason):
                    self._mark_reachable()
                    why = f"too late to cancel: {reason}"
                    store.clear_cancel_request(row.key, why, now, now + poll)
                    log.warning("order %s: %s", _short(row.key), why)
                    self._report(
                        row,
                        row.state,
                        shop_order_id=row.shop_order_id,
                        reason=why,
                        force=True,
                        cancel_refused=True,
                    )
                case _:
                    self._retry_follow_up(store, row, result, now)
            return
        status = self._backend.get_order(row.shop_order_id)
        now = self._clock.now()
        if isinstance(status, Status):
            self._mark_reachable()
            final = status.state.is_final
            changed = store.mark_status(
                row.key, status.state, now, next_poll_at=None if final else now + poll
            )
            if changed:
                log.info("order %s is %s", _short(row.key), status.state)
                self._report(row, status.state, shop_order_id=row.shop_order_id)
            return
        self._retry_follow_up(store, row, status, now)

    def _retry_follow_up(
        self, store: Store, row: OrderRow, result: Retry | Blocked | Rejected | Unclear, now: float
    ) -> None:
        match result:
            case Retry(reason=reason, unreachable=True):
                self._mark_unreachable(now, reason)
                assert self._probe_at is not None
                store.reschedule(row.key, self._probe_at, reason)
                return
            case Retry(reason=reason, after=after):
                wait = min(self._settings.poll_interval, after or self._backoff_cap)
            case Blocked(reason=reason):
                log.error("the shop refuses our credentials (%s)", reason)
                wait = self._blocked_interval
            case Rejected(reason=reason) | Unclear(reason=reason):
                wait = self._settings.poll_interval
        self._mark_reachable()
        log.warning("order %s: status check failed (%s)", _short(row.key), reason)
        store.reschedule(row.key, now + wait, reason)

    # ------------------------------------------------------------------ reporting

    def _report(
        self,
        row: OrderRow,
        state: OrderState,
        *,
        shop_order_id: str | None = None,
        reason: str | None = None,
        unreachable: bool = False,
        force: bool = False,
        cancel_refused: bool = False,
    ) -> None:
        # Retries that leave an order where it was (queued -> queued every 5 s during
        # an outage) are not news; a state or reachability change is.
        seen = (state, unreachable)
        if not force and self._reported.get(row.key, (OrderState.QUEUED, False)) == seen:
            return
        if state.is_final:
            self._reported.pop(row.key, None)
        else:
            if len(self._reported) >= _REPORTED_MAX:
                # Orders finished elsewhere (local cancels, `queue drop`) never reach a
                # final report here; forgetting only costs one repeated, harmless update.
                self._reported.clear()
            self._reported[row.key] = seen
        update = OrderUpdate(
            key=row.key,
            product=row.product,
            device=row.device,
            state=state,
            shop_order_id=shop_order_id,
            reason=reason,
            unreachable=unreachable,
            cancel_refused=cancel_refused,
        )
        try:
            self._on_update(update)
        except Exception:
            log.exception("sender: the order-update callback failed for %s", _short(row.key))


def _short(key: str) -> str:
    return key[:12]


def _close_quietly(store: Store | None) -> None:
    if store is not None:
        try:
            store.close()
        except sqlite3.Error as exc:
            log.debug("closing the outbox failed: %s", exc)
