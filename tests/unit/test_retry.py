"""The retry policy and the order lifecycle rules, with no shop and no HTTP."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.core.events import OrderState, OrderUpdate
from gateway.core.lifecycle import CancelPlan, advance, cancel_plan, hold_ended
from gateway.core.results import (
    Accepted,
    Blocked,
    Cancelled,
    Misconfigured,
    Probe,
    Rejected,
    Retry,
    Status,
    TooLate,
    Unclear,
)
from gateway.core.retry import (
    Accept,
    Gate,
    KeepOrder,
    OrderView,
    Reject,
    Repoll,
    Reschedule,
    RetryPolicy,
    SetStatus,
    after_cancel,
    after_probe,
    after_status,
    backoff_seconds,
    expired,
    is_news,
    next_step,
    no_shop_id,
)

POLICY = RetryPolicy(poll_interval=300.0, expire_after=86_400.0)
T = 1_000_000.0


def order(
    state: OrderState = OrderState.SENDING, attempts: int = 1, created_at: float = T
) -> OrderView:
    return OrderView(
        "rg1_0123456789abcdef", "coffee", "pantry", state, attempts, created_at, "ord_1"
    )


def levels(step: object) -> list[int]:
    return [line.level for line in step.logs]  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- placing


def test_accepted_polls_later_and_releases_blocked_orders_once() -> None:
    step = next_step(order(), Accepted("ord_9"), T, Gate(), POLICY, jitter=0.3)
    assert step.change == Accept("rg1_0123456789abcdef", "ord_9", T + 300.0, cancel_due_at=T)
    assert step.update is not None and step.update.state is OrderState.ACCEPTED
    assert step.update.shop_order_id == "ord_9"
    assert step.outcome == "accepted"
    assert step.release_blocked, "after a start, blocked orders may be waiting"
    assert step.gate == Gate(reachable=True, closed_until=None, maybe_blocked=False)
    again = next_step(order(), Accepted("ord_10"), T, step.gate, POLICY, jitter=0.3)
    assert not again.release_blocked


def test_replayed_acceptance_is_logged_as_such() -> None:
    step = next_step(order(), Accepted("ord_9", replayed=True), T, Gate(), POLICY, jitter=0.0)
    assert "(replayed)" in step.logs[0].text


def test_unreachable_closes_the_gate_until_the_probe_and_says_so_once() -> None:
    first = next_step(order(), Retry("refused", unreachable=True), T, Gate(), POLICY, 0.5)
    assert first.change == Reschedule("rg1_0123456789abcdef", T + 5.0, "refused")
    assert first.gate.reachable is False and first.gate.closed_until == T + 5.0
    assert not first.gate.is_open(T + 4.9) and first.gate.is_open(T + 5.0)
    assert levels(first) == [logging.WARNING]
    assert first.update is not None and first.update.unreachable
    second = next_step(order(), Retry("refused", unreachable=True), T + 5, first.gate, POLICY, 0.5)
    assert second.logs == (), "the outage is told when it starts, not at every probe"


def test_busy_shop_backs_off_with_jitter_and_cap() -> None:
    step = next_step(order(attempts=3), Retry("HTTP 503"), T, Gate(), POLICY, jitter=0.5)
    assert step.change == Reschedule("rg1_0123456789abcdef", T + 2.0, "HTTP 503")
    assert step.gate.is_open(T), "a 503 for one order does not hold the others"
    capped = next_step(order(attempts=40), Retry("HTTP 503"), T, Gate(), POLICY, jitter=1.0)
    assert isinstance(capped.change, Reschedule) and capped.change.at == T + 60.0


def test_retry_after_holds_every_request_not_just_this_order() -> None:
    step = next_step(order(), Retry("HTTP 429", after=20.0), T, Gate(), POLICY, jitter=0.9)
    assert step.change == Reschedule("rg1_0123456789abcdef", T + 20.0, "HTTP 429")
    assert step.gate.closed_until == T + 20.0 and step.gate.reachable is True


def test_refused_credentials_block_slowly_and_loudly() -> None:
    step = next_step(order(), Blocked("HTTP 401"), T, Gate(maybe_blocked=False), POLICY, 0.5)
    assert step.change == Reschedule(
        "rg1_0123456789abcdef", T + 300.0, "HTTP 401", OrderState.BLOCKED
    )
    assert step.gate.maybe_blocked, "the next acceptance releases it at once"
    assert levels(step) == [logging.ERROR] and "commerce.token" in step.logs[0].text
    assert step.update is not None and step.update.state is OrderState.BLOCKED


def test_a_redirect_is_a_configuration_error_not_a_busy_shop() -> None:
    reason = "the shop answered HTTP 301 redirect to /x — check commerce.base_url"
    step = next_step(order(attempts=1), Misconfigured(reason), T, Gate(), POLICY, 0.0)
    assert isinstance(step.change, Reschedule)
    assert step.change.state is OrderState.BLOCKED and step.change.at == T + 300.0
    assert levels(step) == [logging.ERROR] and "commerce.base_url" in step.logs[0].text
    assert step.outcome == "misconfigured"


def test_permanent_refusal_is_a_dead_letter() -> None:
    step = next_step(order(), Rejected("HTTP 422: unknown sku"), T, Gate(), POLICY, 0.5)
    assert step.change == Reject("rg1_0123456789abcdef", "HTTP 422: unknown sku")
    assert step.update is not None and step.update.state is OrderState.REJECTED


def test_unclear_success_asks_again_with_the_same_key() -> None:
    step = next_step(order(attempts=2), Unclear("not JSON"), T, Gate(), POLICY, jitter=1.0)
    assert step.change == Reschedule("rg1_0123456789abcdef", T + 2.0, "not JSON")
    assert "same key" in step.logs[0].text


def test_expiry_says_when_the_shop_may_have_the_order() -> None:
    fresh = order(attempts=1, created_at=T)
    assert expired(fresh, T + 86_400.0, Gate(), POLICY) is None
    never_answered = expired(order(attempts=1), T + 86_401.0, Gate(), POLICY)
    assert never_answered is not None and never_answered.change == Reject(
        "rg1_0123456789abcdef", "expired"
    )
    lost = expired(order(attempts=3), T + 86_401.0, Gate(), POLICY)
    assert lost is not None and isinstance(lost.change, Reject)
    assert "2 earlier request(s) went unanswered" in lost.change.reason


@given(
    attempt=st.integers(min_value=1, max_value=200),
    jitter=st.floats(min_value=0.0, max_value=1.0),
    cap=st.floats(min_value=1.0, max_value=600.0),
)
def test_backoff_is_never_negative_and_never_above_its_cap(
    attempt: int, jitter: float, cap: float
) -> None:
    wait = backoff_seconds(attempt, cap, jitter)
    assert 0.0 <= wait <= cap
    assert wait <= 2 ** (attempt - 1)


# --------------------------------------------------------------------------- following up


def test_status_moves_only_forward() -> None:
    shipped = order(OrderState.SHIPPED)
    stale = after_status(shipped, Status("ord_1", OrderState.ACCEPTED), T, Gate(), POLICY)
    assert stale.update is None, "a stale answer is not news"
    assert stale.change == SetStatus("rg1_0123456789abcdef", OrderState.ACCEPTED, T + 300.0)
    done = after_status(shipped, Status("ord_1", OrderState.DELIVERED), T, Gate(), POLICY)
    assert done.update is not None and done.update.state is OrderState.DELIVERED
    assert done.change == SetStatus("rg1_0123456789abcdef", OrderState.DELIVERED, None)


def test_failed_status_checks_repoll_at_a_sensible_pace() -> None:
    accepted = order(OrderState.ACCEPTED)
    busy = after_status(accepted, Retry("HTTP 503", after=30.0), T, Gate(), POLICY)
    assert busy.change == Repoll("rg1_0123456789abcdef", T + 30.0, "HTTP 503")
    down = after_status(accepted, Retry("refused", unreachable=True), T, Gate(), POLICY)
    assert down.change == Repoll("rg1_0123456789abcdef", T + 5.0, "refused")
    assert down.gate.reachable is False
    refused = after_status(accepted, Blocked("HTTP 403"), T, Gate(), POLICY)
    assert isinstance(refused.change, Repoll) and refused.change.at == T + 300.0
    assert logging.ERROR in levels(refused)


def test_cancel_answers() -> None:
    accepted = order(OrderState.ACCEPTED)
    done = after_cancel(accepted, Cancelled(), T, Gate(), POLICY)
    assert done.change == SetStatus("rg1_0123456789abcdef", OrderState.CANCELLED, None)
    assert done.update is not None and done.update.state is OrderState.CANCELLED
    late = after_cancel(accepted, TooLate("shipped"), T, Gate(), POLICY)
    assert late.change == KeepOrder("rg1_0123456789abcdef", "too late to cancel: shipped", T + 300)
    assert late.force and late.update is not None and late.update.cancel_refused


def test_an_accepted_order_without_shop_id_never_spins() -> None:
    step = no_shop_id(order(OrderState.ACCEPTED), T, Gate(), POLICY)
    assert step.change == Repoll("rg1_0123456789abcdef", T + 300.0, "accepted without a shop id")


def test_retries_that_change_nothing_are_not_news() -> None:
    queued = OrderUpdate("k", "tea", "b", OrderState.QUEUED)
    assert not is_news(None, queued)
    assert is_news((OrderState.QUEUED, True), queued), "reachable again is news"
    assert is_news(None, OrderUpdate("k", "tea", "b", OrderState.ACCEPTED))


# --------------------------------------------------------------------------- lifecycle


@pytest.mark.parametrize(
    ("state", "attempts", "plan"),
    [
        (OrderState.HELD, 0, CancelPlan.LOCAL),
        (OrderState.QUEUED, 0, CancelPlan.LOCAL),
        (OrderState.BLOCKED, 0, CancelPlan.LOCAL),
        (OrderState.QUEUED, 1, CancelPlan.AFTER_RESEND),
        (OrderState.BLOCKED, 4, CancelPlan.AFTER_RESEND),
        (OrderState.SENDING, 1, CancelPlan.AFTER_ANSWER),
        (OrderState.ACCEPTED, 1, CancelPlan.AT_SHOP),
        (OrderState.SHIPPED, 1, CancelPlan.AT_SHOP),
        (OrderState.DELIVERED, 1, CancelPlan.NOTHING),
        (OrderState.CANCELLED, 0, CancelPlan.NOTHING),
        (OrderState.REJECTED, 2, CancelPlan.NOTHING),
        (None, 0, CancelPlan.NOTHING),
    ],
)
def test_cancel_plan(state: OrderState | None, attempts: int, plan: CancelPlan) -> None:
    assert cancel_plan(state, attempts) is plan


@given(st.sampled_from(list(OrderState)), st.sampled_from(list(OrderState)))
def test_advance_never_moves_back_and_never_leaves_a_final_state(
    current: OrderState, reported: OrderState
) -> None:
    moved = advance(current, reported)
    if moved is not None:
        assert moved is reported and not current.is_final
        assert advance(moved, current) is None


def test_hold_ends_at_its_time() -> None:
    assert not hold_ended(None, T)
    assert not hold_ended(T + 1, T)
    assert hold_ended(T, T)


def test_a_lost_answer_is_not_an_outage_but_three_in_a_row_are() -> None:
    lost = Retry("POST /orders: no answer in time", answer_lost=True)
    first = next_step(order(attempts=1), lost, T, Gate(), POLICY, jitter=1.0)
    assert first.change == Reschedule("rg1_0123456789abcdef", T + 1.0, lost.reason)
    assert first.gate.is_open(T), "the other orders keep draining"
    assert first.outcome == "answer_lost" and "same key" in first.logs[0].text
    assert first.update is not None and not first.update.unreachable
    second = next_step(order(attempts=2), lost, T + 1, first.gate, POLICY, jitter=1.0)
    assert second.gate.is_open(T + 1) and second.gate.lost_in_row == 2
    third = next_step(order(attempts=3), lost, T + 2, second.gate, POLICY, jitter=1.0)
    assert third.outcome == "unreachable" and not third.gate.is_open(T + 2)
    assert third.gate.closed_until == T + 7.0


def test_any_answer_between_lost_ones_starts_the_count_again() -> None:
    lost = Retry("dropped", answer_lost=True)
    gate = next_step(order(), lost, T, Gate(), POLICY, 0.5).gate
    gate = next_step(order(), lost, T, gate, POLICY, 0.5).gate
    gate = next_step(order(), Accepted("ord_2"), T, gate, POLICY, 0.5).gate
    assert gate.lost_in_row == 0
    assert next_step(order(), lost, T, gate, POLICY, 0.5).gate.is_open(T)


def test_a_probe_with_no_answer_closes_the_gate_until_the_next_probe_and_says_so_once() -> None:
    first = after_probe(Gate(), Probe(False, "connection refused"), T, POLICY)
    assert first.gate.reachable is False and first.gate.closed_until == T + 5.0
    assert [line.level for line in first.logs] == [logging.WARNING]
    again = after_probe(first.gate, Probe(False, "connection refused"), T + 5, POLICY)
    assert again.logs == () and again.gate.closed_until == T + 10.0


def test_a_probe_answered_opens_the_gate_and_a_refusal_is_kept_for_status() -> None:
    down = after_probe(Gate(), Probe(False, "down"), T, POLICY).gate
    back = after_probe(down, Probe(True), T + 5, POLICY)
    assert back.gate.reachable is True and back.gate.is_open(T + 5) and not back.gate.refused
    assert [line.text for line in back.logs] == ["the shop answers again"]
    refused = after_probe(Gate(), Probe(True, "HTTP 401", refused=True), T, POLICY)
    assert refused.gate.reachable is True and refused.gate.refused
    assert refused.gate.maybe_blocked
    assert [line.level for line in refused.logs] == [logging.ERROR]
    # The first order the shop accepts clears the refusal.
    accepted = next_step(order(), Accepted("ord_1"), T, refused.gate, POLICY, 0.5)
    assert not accepted.gate.refused and accepted.release_blocked


def test_a_backend_with_no_probe_leaves_the_shop_unknown() -> None:
    assert after_probe(Gate(), Probe(None, "webhook"), T, POLICY).gate == Gate()


def test_a_refused_order_marks_the_gate_refused_and_a_redirect_does_not() -> None:
    blocked = next_step(order(), Blocked("HTTP 403"), T, Gate(), POLICY, 0.5)
    assert blocked.gate.refused
    redirected = next_step(order(), Misconfigured("HTTP 301"), T, Gate(), POLICY, 0.5)
    assert not redirected.gate.refused
