"""Consent before paying (``confirm: true``): held until a yes, never sent on its own."""

from __future__ import annotations

from pathlib import Path

from gateway.core.decide import State, decide, next_due
from gateway.core.events import (
    Action,
    ButtonEvent,
    CancelOrder,
    ConfirmOrder,
    ConfirmProduct,
    Feedback,
    LedPattern,
    OrderState,
    Outcome,
    PlaceOrder,
    ReleaseHeld,
    Report,
    SensorReading,
    Tick,
)
from gateway.core.rules import ProductRules, Rules, SensorRules

HOUR = 3600.0
RULES = Rules(
    gateway_id="gw",
    secret=b"s" * 32,
    products={
        "coffee": ProductRules(sku="COF", confirm=True, confirm_expires=12 * HOUR),
        "tea": ProductRules(sku="TEA", confirm_window=30.0),
    },
    button_products={"pantry": "coffee", "kettle": "tea"},
    sensors={"jar": SensorRules("jar", "coffee", reorder_below=100, rearm_above=300, settle=0.0)},
)


def press(event_id: str, device: str = "pantry", action: str = "press") -> ButtonEvent:
    return ButtonEvent(device, "hold" if action == "hold" else "press", event_id, "mqtt")


def reports(actions: list[Action]) -> list[Report]:
    return [a for a in actions if isinstance(a, Report)]


def held(now: float = 0.0) -> tuple[State, PlaceOrder]:
    state, actions = decide(State(), press("p1"), now, RULES)
    [intent] = [a for a in actions if isinstance(a, PlaceOrder)]
    return state, intent


def test_a_press_holds_the_order_until_it_expires_and_asks_for_a_yes() -> None:
    state, intent = held()
    assert intent.hold_until == 12 * HOUR
    [report] = reports(decide(State(), press("p1"), 0.0, RULES)[1])
    assert (report.outcome, report.state) == (Outcome.HELD, OrderState.HELD)
    assert report.detail is not None and "confirm" in report.detail
    assert next_due(state, 0.0, RULES) == 12 * HOUR


def test_without_a_yes_nothing_is_sent_and_the_order_expires() -> None:
    state, intent = held()
    state, actions = decide(state, Tick(), 12 * HOUR - 1, RULES)
    assert actions == []
    state, actions = decide(state, Tick(), 12 * HOUR, RULES)
    assert not any(isinstance(a, ReleaseHeld) for a in actions)
    assert CancelOrder(intent.key, "coffee", "pantry") in actions
    [expired] = reports(actions)
    assert expired.outcome is Outcome.EXPIRED and expired.order_key == intent.key
    assert expired.detail is not None and "nothing was ordered" in expired.detail
    # Dropped once: a later tick does not expire it again.
    assert decide(state, Tick(), 13 * HOUR, RULES)[1] == []


def test_a_second_press_within_the_window_confirms_it() -> None:
    state, intent = held()
    state, actions = decide(state, press("p2"), 60.0, RULES)
    assert ReleaseHeld(intent.key) in actions
    assert not any(isinstance(a, PlaceOrder) for a in actions)
    [confirmed] = reports(actions)
    assert confirmed.outcome is Outcome.CONFIRMED
    assert confirmed.detail == "confirmed via second press"
    assert Feedback("pantry", LedPattern.RECEIVED) in actions
    # Sent now: nothing is due any more, and a third press is the Dash rule's.
    assert next_due(state, 60.0, RULES) is None
    _, actions = decide(state, press("p3"), 61.0, RULES)
    assert [r.outcome for r in reports(actions)] == [Outcome.ABSORBED]


def test_the_core_event_confirms_it_once_and_names_who_said_yes() -> None:
    state, intent = held()
    state, actions = decide(state, ConfirmOrder(intent.key, via="web"), 5.0, RULES)
    assert ReleaseHeld(intent.key) in actions
    assert reports(actions)[0].detail == "confirmed via web"
    _, again = decide(state, ConfirmOrder(intent.key, via="web"), 6.0, RULES)
    assert not any(isinstance(a, ReleaseHeld) for a in again)
    assert [r.outcome for r in reports(again)] == [Outcome.IGNORED]


def test_a_yes_by_product_confirms_the_held_order_and_a_second_yes_finds_none() -> None:
    # Home Assistant's Confirm button knows the product, not the order's key.
    state, intent = held()
    state, actions = decide(state, ConfirmProduct("coffee", via="home_assistant"), 5.0, RULES)
    assert ReleaseHeld(intent.key) in actions
    [confirmed] = reports(actions)
    assert (confirmed.outcome, confirmed.device) == (Outcome.CONFIRMED, "pantry")
    assert confirmed.detail == "confirmed via home_assistant"
    again, actions = decide(state, ConfirmProduct("coffee", via="home_assistant"), 6.0, RULES)
    assert again == state and not any(isinstance(a, ReleaseHeld) for a in actions)
    [ignored] = reports(actions)
    assert ignored.outcome is Outcome.IGNORED
    assert (
        ignored.detail == "nothing to confirm via home_assistant: no coffee order waits for a yes"
    )


def test_confirming_an_unknown_order_does_nothing() -> None:
    state, actions = decide(State(), ConfirmOrder("rg1_nope", via="homeassistant"), 0.0, RULES)
    assert state == State()
    [report] = reports(actions)
    assert report.outcome is Outcome.IGNORED and report.order_key == "rg1_nope"


def test_a_long_press_drops_the_held_order_and_it_cannot_be_confirmed_after() -> None:
    state, intent = held()
    state, actions = decide(state, press("h1", action="hold"), 10.0, RULES)
    assert CancelOrder(intent.key, "coffee", "pantry") in actions
    _, actions = decide(state, ConfirmOrder(intent.key, via="web"), 11.0, RULES)
    assert not any(isinstance(a, ReleaseHeld) for a in actions)


def test_a_sensor_never_confirms_but_its_order_waits_for_a_person() -> None:
    state, actions = decide(State(), SensorReading("jar", 50.0, "r1"), 0.0, RULES)
    [intent] = [a for a in actions if isinstance(a, PlaceOrder)]
    assert intent.trigger == "threshold" and intent.hold_until == 12 * HOUR
    state, actions = decide(state, press("p1"), 30.0, RULES)
    assert ReleaseHeld(intent.key) in actions


def test_a_confirm_window_order_is_still_released_when_its_window_ends() -> None:
    state, actions = decide(State(), press("k1", device="kettle"), 0.0, RULES)
    [intent] = [a for a in actions if isinstance(a, PlaceOrder)]
    _, actions = decide(state, Tick(), 30.0, RULES)
    assert actions == [ReleaseHeld(intent.key)]
    # ...and a yes sends it before the window ends.
    _, actions = decide(state, ConfirmOrder(intent.key, via="web"), 1.0, RULES)
    assert ReleaseHeld(intent.key) in actions


def test_a_confirmed_order_is_due_for_the_sender_at_once(tmp_path: Path) -> None:
    from gateway.outbox.store import Store

    state, intent = held(now=100.0)
    state, actions = decide(state, ConfirmOrder(intent.key, via="web"), 160.0, RULES)
    store = Store.open(tmp_path)
    try:
        store.commit([intent], now=100.0)
        assert store.claim_next(160.0) is None  # held: not the sender's yet
        result = store.commit([a for a in actions if isinstance(a, ReleaseHeld)], now=160.0)
        assert result.released == (intent.key,) and result.wake_sender
        claimed = store.claim_next(160.0)
        assert claimed is not None and claimed.key == intent.key  # not at its expiry
    finally:
        store.close()
