"""The retry policy: what happens to an order after each answer from the shop.

``next_step(order, result, now, gate, policy, jitter)`` is pure: the sender calls a
backend, hands the classified result (:mod:`gateway.core.results`) here, and
carries out the :class:`Step` it gets back — a :data:`Change` for the outbox, the
new :class:`Gate`, the update to tell the core, and the log lines. The same policy
serves every backend.

=========================== ====================================================
The shop...                 The order...
=========================== ====================================================
cannot be reached           waits for the next probe (``probe_interval``, 5 s);
                            no request at all goes out before it
loses an answer (timeout,   asks again after a short backoff, same key; the
dropped connection)         others go on; 3 in a row count as unreachable
answers 5xx / 408 / 409     full-jitter exponential backoff, capped at 60 s
answers 429 + Retry-After   waits what the shop asked; so does every request
answers 401 / 403           ``blocked``, ERROR logged, retried every 5 minutes
redirects (3xx)             ``blocked``: ``base_url`` is wrong, ERROR logged
answers 400 / 404 / 422     ``rejected`` (dead letter, the shop's message)
answers 2xx we cannot read  asks again later with the same key (the shop replays)
was not reached in time     ``rejected`` as expired (``expire_after``)
=========================== ====================================================

>>> policy = RetryPolicy(poll_interval=300.0, expire_after=86_400.0)
>>> order = OrderView("rg1_k", "coffee", "pantry", OrderState.SENDING, 1, 0.0)
>>> step = next_step(order, Retry("HTTP 503"), 10.0, Gate(), policy, jitter=0.5)
>>> step.change
Reschedule(key='rg1_k', at=10.5, error='HTTP 503', state=<OrderState.QUEUED: 'queued'>)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import assert_never

from tenacity import RetryCallState, Retrying, stop_never, wait_exponential

from gateway.core.events import OrderState, OrderUpdate
from gateway.core.keys import short_key
from gateway.core.lifecycle import advance
from gateway.core.results import (
    Accepted,
    Blocked,
    Cancelled,
    CancelResult,
    Misconfigured,
    PlaceResult,
    Probe,
    Rejected,
    Retry,
    Status,
    StatusResult,
    TooLate,
    Unclear,
)

PROBE_INTERVAL = 5.0
# This many lost answers in a row (timeouts, dropped connections) and no answer in
# between: the shop is taken for unreachable and probed. Fewer: only that order waits.
LOST_ANSWERS_FOR_OUTAGE = 3
BACKOFF_CAP = 60.0
BLOCKED_INTERVAL = 300.0


@dataclass(frozen=True)
class RetryPolicy:
    """The knobs of the policy (from ``commerce:`` in the config)."""

    poll_interval: float
    expire_after: float
    backoff_cap: float = BACKOFF_CAP
    blocked_interval: float = BLOCKED_INTERVAL
    probe_interval: float = PROBE_INTERVAL


@dataclass(frozen=True)
class OrderView:
    """What the policy needs to know of one order (a row the sender claimed)."""

    key: str
    product: str
    device: str
    state: OrderState
    attempts: int  # send attempts so far, this one included
    created_at: float
    shop_order_id: str | None = None
    cancel_requested: bool = False


@dataclass(frozen=True)
class Gate:
    """Whether the sender may talk to one shop at all (the sender keeps one per shop).

    ``closed_until``: no request before this (a probe while unreachable, or a
    Retry-After, which speaks for this client, not for one order). ``maybe_blocked``:
    blocked orders may be waiting (after a start, or a refusal); the next acceptance
    releases them at once instead of after their slow retry. ``refused``: the shop's
    latest word on our credentials was a refusal (401/403), for status.
    """

    reachable: bool | None = None
    closed_until: float | None = None
    maybe_blocked: bool = True
    lost_in_row: int = 0  # answers lost one after the other, with no answer between
    refused: bool = False

    def is_open(self, now: float) -> bool:
        return self.closed_until is None or now >= self.closed_until


# --------------------------------------------------------------------------- changes


@dataclass(frozen=True)
class Accept:
    """The shop has the order: store its id, poll its status at ``next_poll_at``.

    A cancel requested meanwhile (the flag is read in the same transaction) makes
    the order due at ``cancel_due_at`` instead.
    """

    key: str
    shop_order_id: str
    next_poll_at: float
    cancel_due_at: float


@dataclass(frozen=True)
class Reschedule:
    """Send again at ``at``; ``state`` is queued, or blocked for a credentials problem."""

    key: str
    at: float
    error: str
    state: OrderState = OrderState.QUEUED


@dataclass(frozen=True)
class Reject:
    """Dead letter: the shop refused the order for good, or it expired."""

    key: str
    reason: str


@dataclass(frozen=True)
class SetStatus:
    """The shop reported ``state``; applied only if it moves the order forward."""

    key: str
    state: OrderState
    next_poll_at: float | None
    error: str | None = None


@dataclass(frozen=True)
class KeepOrder:
    """The shop refused the cancel (too late): keep the order, say why, poll again."""

    key: str
    reason: str
    next_poll_at: float


@dataclass(frozen=True)
class Repoll:
    """Look at an accepted order again at ``at`` (its status check failed)."""

    key: str
    at: float
    error: str


Change = Accept | Reschedule | Reject | SetStatus | KeepOrder | Repoll


@dataclass(frozen=True)
class LogLine:
    level: int
    text: str


@dataclass(frozen=True)
class Step:
    """What the sender does after one answer."""

    change: Change
    gate: Gate
    update: OrderUpdate | None = None  # what to tell the core; None: nothing new
    force: bool = False  # tell even if it looks like no news (a refused cancel)
    logs: tuple[LogLine, ...] = ()
    outcome: str | None = None  # place-order outcome, for the metrics
    release_blocked: bool = False  # credentials work: every blocked order is due now


@dataclass(frozen=True)
class ProbeStep:
    """What the sender does after a probe: no order changes, only the gate."""

    gate: Gate
    logs: tuple[LogLine, ...] = ()


# --------------------------------------------------------------------------- policy


def backoff_seconds(attempt: int, cap: float = BACKOFF_CAP, jitter: float = 1.0) -> float:
    """Full-jitter exponential backoff for the ``attempt``-th try (1-based):
    ``jitter`` (drawn uniformly from [0, 1) by the caller) times tenacity's
    exponential wait, capped at ``cap``.

    >>> backoff_seconds(1), backoff_seconds(3), backoff_seconds(30)
    (1.0, 4.0, 60.0)
    >>> backoff_seconds(30, jitter=0.5)
    30.0
    """
    policy = Retrying(wait=wait_exponential(multiplier=1, max=cap), stop=stop_never)
    state = RetryCallState(policy, None, (), {})
    state.attempt_number = max(1, attempt)
    return float(policy.wait(state)) * min(max(jitter, 0.0), 1.0)


def expired(order: OrderView, now: float, gate: Gate, policy: RetryPolicy) -> Step | None:
    """Before sending: an order older than ``expire_after`` is not sent any more."""
    if now - order.created_at <= policy.expire_after:
        return None
    reason = "expired"
    if order.attempts > 1:  # this claim counted one; earlier ones went unanswered
        reason += (
            f"; {order.attempts - 1} earlier request(s) went unanswered, so the shop may"
            " have it — check the shop's order list"
        )
    return Step(
        change=Reject(order.key, reason),
        gate=gate,
        update=_update(order, OrderState.REJECTED, reason=reason),
        logs=(
            LogLine(
                logging.WARNING, f"order {short_key(order.key)} for {order.product} expired unsent"
            ),
        ),
        outcome="expired",
    )


def next_step(
    order: OrderView,
    result: PlaceResult,
    now: float,
    gate: Gate,
    policy: RetryPolicy,
    jitter: float,
) -> Step:
    """The step after a place-order ``result`` for ``order``."""
    key, product = short_key(order.key), order.product
    match result:
        case Accepted(shop_order_id=shop_id, replayed=replayed):
            logs = [
                LogLine(
                    logging.INFO,
                    f"order {key} for {product} accepted as {shop_id}"
                    + (" (replayed)" if replayed else ""),
                )
            ]
            return Step(
                change=Accept(order.key, shop_id, now + policy.poll_interval, cancel_due_at=now),
                gate=Gate(reachable=True, closed_until=None, maybe_blocked=False, lost_in_row=0),
                update=_update(order, OrderState.ACCEPTED, shop_order_id=shop_id),
                logs=tuple(logs),
                outcome="accepted",
                release_blocked=gate.maybe_blocked,
            )
        case Retry(reason=reason, answer_lost=True) if (
            gate.lost_in_row + 1 < LOST_ANSWERS_FOR_OUTAGE
        ):
            # A slow or cut answer is not an outage: this order asks again soon with
            # the same key (the shop replays it if it did place it); the others go on.
            wait = backoff_seconds(order.attempts, policy.backoff_cap, jitter)
            lost = replace(gate, lost_in_row=gate.lost_in_row + 1)
            text = f"order {key}: {reason}; asking again with the same key in {wait:.1f}s"
            return Step(
                change=Reschedule(order.key, now + wait, reason),
                gate=lost,
                update=_update(order, OrderState.QUEUED, reason=reason),
                logs=(LogLine(logging.WARNING, text),),
                outcome="answer_lost",
            )
        case Retry(reason=reason, unreachable=unreachable, answer_lost=answer_lost) if (
            unreachable or answer_lost
        ):
            closed = _unreachable(gate, now, policy)
            return Step(
                change=Reschedule(order.key, _probe_at(closed), reason),
                gate=closed,
                update=_update(order, OrderState.QUEUED, reason=reason, unreachable=True),
                logs=_unreachable_logs(gate, reason, policy),
                outcome="unreachable",
            )
        case Retry(reason=reason, after=after):
            wait = (
                after
                if after is not None
                else backoff_seconds(order.attempts, policy.backoff_cap, jitter)
            )
            return Step(
                change=Reschedule(order.key, now + wait, reason),
                gate=_answered(gate, hold_until=None if after is None else now + after),
                update=_update(order, OrderState.QUEUED, reason=reason),
                logs=(LogLine(logging.WARNING, f"order {key}: {reason}; retrying in {wait:.1f}s"),),
                outcome="retry",
            )
        case Blocked(reason=reason):
            text = (
                f"the shop refuses our credentials ({reason}): order {key} for {product} is "
                f"blocked; fix commerce.token / token_file — retrying every "
                f"{policy.blocked_interval:.0f}s"
            )
            return _blocked(order, reason, text, now, gate, policy, "blocked")
        case Misconfigured(reason=reason):
            text = (
                f"{reason}: order {key} for {product} is blocked until the setting is "
                f"fixed — retrying every {policy.blocked_interval:.0f}s"
            )
            return _blocked(order, reason, text, now, gate, policy, "misconfigured")
        case Rejected(reason=reason):
            return Step(
                change=Reject(order.key, reason),
                gate=_answered(gate),
                update=_update(order, OrderState.REJECTED, reason=reason),
                logs=(LogLine(logging.ERROR, f"order {key} for {product} rejected: {reason}"),),
                outcome="rejected",
            )
        case Unclear(reason=reason):
            wait = backoff_seconds(order.attempts, policy.backoff_cap, jitter)
            text = (
                f"order {key}: unclear answer ({reason}); asking again with the same key "
                f"in {wait:.1f}s"
            )
            return Step(
                change=Reschedule(order.key, now + wait, reason),
                gate=_answered(gate),
                update=_update(order, OrderState.QUEUED, reason=reason),
                logs=(LogLine(logging.WARNING, text),),
                outcome="unclear",
            )
        case _:
            assert_never(result)


def after_status(
    order: OrderView, result: StatusResult, now: float, gate: Gate, policy: RetryPolicy
) -> Step:
    """The step after a status poll of an accepted order."""
    if isinstance(result, Status):
        new_state = advance(order.state, result.state)
        final = result.state.is_final
        change = SetStatus(order.key, result.state, None if final else now + policy.poll_interval)
        if new_state is None:
            return Step(change=change, gate=_worked(gate))
        return Step(
            change=change,
            gate=_worked(gate),
            update=_update(order, new_state, shop_order_id=order.shop_order_id),
            logs=(LogLine(logging.INFO, f"order {short_key(order.key)} is {new_state}"),),
        )
    return _follow_up_failed(order, result, now, gate, policy)


def after_cancel(
    order: OrderView, result: CancelResult, now: float, gate: Gate, policy: RetryPolicy
) -> Step:
    """The step after asking the shop to cancel an accepted order."""
    match result:
        case Cancelled():
            return Step(
                change=SetStatus(order.key, OrderState.CANCELLED, None),
                gate=_worked(gate),
                update=_update(order, OrderState.CANCELLED, shop_order_id=order.shop_order_id),
                logs=(
                    LogLine(logging.INFO, f"order {short_key(order.key)} cancelled at the shop"),
                ),
            )
        case TooLate(reason=reason) | Rejected(reason=reason):
            why = f"too late to cancel: {reason}"
            update = _update(
                order,
                order.state,
                shop_order_id=order.shop_order_id,
                reason=why,
                cancel_refused=True,
            )
            return Step(
                change=KeepOrder(order.key, why, now + policy.poll_interval),
                gate=_answered(gate),
                update=update,
                force=True,
                logs=(LogLine(logging.WARNING, f"order {short_key(order.key)}: {why}"),),
            )
        case _:
            return _follow_up_failed(order, result, now, gate, policy)


def no_shop_id(order: OrderView, now: float, gate: Gate, policy: RetryPolicy) -> Step:
    """An accepted order without the shop's id (never written so): never spin on it."""
    return Step(
        change=Repoll(order.key, now + policy.poll_interval, "accepted without a shop id"),
        gate=gate,
    )


def is_news(previous: tuple[OrderState, bool] | None, update: OrderUpdate) -> bool:
    """Retries that leave an order where it was (queued -> queued every 5 s during an
    outage) are not news; a change of state or of reachability is.

    >>> u = OrderUpdate("k", "tea", "b", OrderState.QUEUED, unreachable=True)
    >>> is_news(None, u), is_news((OrderState.QUEUED, True), u)
    (True, False)
    """
    return (previous or (OrderState.QUEUED, False)) != (update.state, update.unreachable)


# --------------------------------------------------------------------------- helpers


def _update(
    order: OrderView,
    state: OrderState,
    *,
    shop_order_id: str | None = None,
    reason: str | None = None,
    unreachable: bool = False,
    cancel_refused: bool = False,
) -> OrderUpdate:
    return OrderUpdate(
        key=order.key,
        product=order.product,
        device=order.device,
        state=state,
        shop_order_id=shop_order_id,
        reason=reason,
        unreachable=unreachable,
        cancel_refused=cancel_refused,
    )


def after_probe(gate: Gate, probe: Probe, now: float, policy: RetryPolicy) -> ProbeStep:
    """The shop's gate after a probe. A probe that tells nothing (the backend has
    none) leaves the gate as it is: reachability stays unknown until an order goes.

    >>> closed = after_probe(Gate(), Probe(False, "refused"), 10.0, RetryPolicy(300.0, 86400.0))
    >>> closed.gate.reachable, closed.gate.closed_until
    (False, 15.0)
    """
    if probe.reachable is None:
        return ProbeStep(gate)
    if probe.reachable is False:
        closed = _unreachable(gate, now, policy)
        return ProbeStep(closed, _unreachable_logs(gate, probe.reason, policy))
    logs: list[LogLine] = []
    if gate.reachable is False:
        logs.append(LogLine(logging.WARNING, "the shop answers again"))
    opened = replace(_answered(gate), refused=probe.refused)
    if probe.refused:
        # Orders for it will be refused too: the first acceptance releases them.
        opened = replace(opened, maybe_blocked=True)
        if not gate.refused:
            text = (
                f"the shop answers but refuses our credentials ({probe.reason}); its "
                "orders will be blocked until the token is fixed"
            )
            logs.append(LogLine(logging.ERROR, text))
    return ProbeStep(opened, tuple(logs))


def _worked(gate: Gate) -> Gate:
    """The shop answered a request that needs our credentials: they work."""
    return replace(_answered(gate), refused=False)


def _answered(gate: Gate, hold_until: float | None = None) -> Gate:
    """The shop answered. ``hold_until``: a Retry-After that holds every request."""
    return replace(gate, reachable=True, closed_until=hold_until, lost_in_row=0)


def _unreachable(gate: Gate, now: float, policy: RetryPolicy) -> Gate:
    return replace(gate, reachable=False, closed_until=now + policy.probe_interval, lost_in_row=0)


def _probe_at(gate: Gate) -> float:
    assert gate.closed_until is not None
    return gate.closed_until


def _unreachable_logs(gate: Gate, reason: str, policy: RetryPolicy) -> tuple[LogLine, ...]:
    if gate.reachable is False:
        return ()  # said once, when it went away
    text = f"the shop is unreachable ({reason}); probing every {policy.probe_interval:.0f}s"
    return (LogLine(logging.WARNING, text),)


def _blocked(
    order: OrderView,
    reason: str,
    text: str,
    now: float,
    gate: Gate,
    policy: RetryPolicy,
    outcome: str,
) -> Step:
    return Step(
        change=Reschedule(order.key, now + policy.blocked_interval, reason, OrderState.BLOCKED),
        gate=replace(_answered(gate), maybe_blocked=True, refused=outcome == "blocked"),
        update=_update(order, OrderState.BLOCKED, reason=reason),
        logs=(LogLine(logging.ERROR, text),),
        outcome=outcome,
    )


def _follow_up_failed(
    order: OrderView,
    result: Retry | Blocked | Rejected | Unclear | Misconfigured,
    now: float,
    gate: Gate,
    policy: RetryPolicy,
) -> Step:
    poll = policy.poll_interval
    logs: list[LogLine] = []
    match result:
        case Retry(reason=reason, answer_lost=True) if (
            gate.lost_in_row + 1 < LOST_ANSWERS_FOR_OUTAGE
        ):
            lost = replace(gate, lost_in_row=gate.lost_in_row + 1)
            return Step(
                change=Repoll(order.key, now + min(poll, policy.backoff_cap), reason), gate=lost
            )
        case Retry(reason=reason, unreachable=unreachable, answer_lost=answer_lost) if (
            unreachable or answer_lost
        ):
            closed = _unreachable(gate, now, policy)
            return Step(
                change=Repoll(order.key, _probe_at(closed), reason),
                gate=closed,
                logs=_unreachable_logs(gate, reason, policy),
            )
        case Retry(reason=reason, after=after):
            wait = min(poll, after or policy.backoff_cap)
        case Blocked(reason=reason):
            logs.append(LogLine(logging.ERROR, f"the shop refuses our credentials ({reason})"))
            wait = policy.blocked_interval
            gate = replace(gate, refused=True)
        case Misconfigured(reason=reason):
            logs.append(LogLine(logging.ERROR, reason))
            wait = policy.blocked_interval
        case Rejected(reason=reason) | Unclear(reason=reason):
            wait = poll
        case _:
            assert_never(result)
    logs.append(
        LogLine(logging.WARNING, f"order {short_key(order.key)}: status check failed ({reason})")
    )
    return Step(
        change=Repoll(order.key, now + wait, reason), gate=_answered(gate), logs=tuple(logs)
    )
