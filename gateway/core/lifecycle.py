"""What may happen to an order once it is in the outbox: pure rules.

The outbox applies these inside its own transactions — it passes the row's state as
it is on disk at that moment, so a decision and a concurrent change by the sender
cannot cross — but the rules themselves live here, with the rest of the core.

>>> cancel_plan(OrderState.QUEUED, attempts=0)
<CancelPlan.LOCAL: 'local'>
>>> cancel_plan(OrderState.QUEUED, attempts=2)
<CancelPlan.AFTER_RESEND: 'after_resend'>
>>> advance(OrderState.SHIPPED, OrderState.ACCEPTED) is None
True
"""

from __future__ import annotations

from enum import StrEnum

from gateway.core.events import OrderState


class CancelPlan(StrEnum):
    """How a requested cancel is carried out."""

    LOCAL = "local"  # no request ever left: cancelled here, the shop never hears of it
    # A request left but its answer was lost: the shop may have the order. It is sent
    # again with the same key (the shop replays the id), then cancelled at the shop.
    AFTER_RESEND = "after_resend"
    AFTER_ANSWER = "after_answer"  # a request is on the wire: cancel once it is answered
    AT_SHOP = "at_shop"  # the shop has it: cancel there, now
    NOTHING = "nothing"  # finished (or gone): nothing to cancel


_NOT_SENT_YET = frozenset({OrderState.HELD, OrderState.QUEUED, OrderState.BLOCKED})
_AT_SHOP = frozenset({OrderState.ACCEPTED, OrderState.SHIPPED})


def cancel_plan(state: OrderState | None, attempts: int) -> CancelPlan:
    """The way to cancel an order in ``state`` after ``attempts`` send attempts.

    Only an order no request ever left for is cancelled locally: once one did, its
    answer may have been lost after the shop created the order.
    """
    if state in _NOT_SENT_YET:
        return CancelPlan.LOCAL if attempts == 0 else CancelPlan.AFTER_RESEND
    if state is OrderState.SENDING:
        return CancelPlan.AFTER_ANSWER
    if state in _AT_SHOP:
        return CancelPlan.AT_SHOP
    return CancelPlan.NOTHING


# Status only moves forward; a stale poll answer must not move an order back.
_PROGRESS = {
    OrderState.ACCEPTED: 0,
    OrderState.SHIPPED: 1,
    OrderState.DELIVERED: 2,
    OrderState.CANCELLED: 2,
}

SHOP_STATES = frozenset(_PROGRESS)
"""The states a shop can report for an order it has."""


def advance(current: OrderState, reported: OrderState) -> OrderState | None:
    """The order's new state when the shop reports ``reported``, or None to keep it.

    >>> advance(OrderState.ACCEPTED, OrderState.DELIVERED)
    <OrderState.DELIVERED: 'delivered'>
    """
    if current not in _PROGRESS or reported not in _PROGRESS:
        return None
    return reported if _PROGRESS[reported] > _PROGRESS[current] else None


def hold_ended(hold_until: float | None, now: float) -> bool:
    """A held order's confirm window is over: it may be sent."""
    return hold_until is not None and now >= hold_until
