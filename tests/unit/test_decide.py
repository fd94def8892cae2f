"""Readable examples of the decision rules (the state machine covers the rest)."""

from __future__ import annotations

from gateway.config.models import ProductConfig, SensorConfig
from gateway.core.decide import Rules, State, decide, next_due
from gateway.core.events import (
    Action,
    BootCount,
    ButtonEvent,
    CancelOrder,
    CounterSeen,
    DeviceConnected,
    Feedback,
    LedPattern,
    OrderState,
    OrderUpdate,
    Outcome,
    PlaceOrder,
    ReleaseHeld,
    Report,
    Rule,
    SensorReading,
    Tick,
)

T0 = 1_800_000_000.0


def rules(**product: object) -> Rules:
    scale = SensorConfig.model_validate(
        {
            "name": "scale",
            "product": "coffee",
            "mqtt": "s",
            "value": "w",
            "reorder_below": 250,
            "rearm_above": 800,
            "settle": "60s",
            "stale_after": "1h",
        }
    )
    return Rules(
        gateway_id="kitchen-pi",
        secret=b"x" * 32,
        products={
            "detergent": ProductConfig.model_validate({"sku": "TIDE", **product}),
            "coffee": ProductConfig(sku="COFFEE", quantity=2),
        },
        button_products={"laundry": "detergent", "pantry": "coffee"},
        sensors={"scale": scale},
        max_orders_per_day=3,
    )


def outcomes(actions: list[Action]) -> list[Outcome]:
    return [a.outcome for a in actions if isinstance(a, Report)]


def press(device: str = "laundry", event_id: str | None = "e1", **kw: object) -> ButtonEvent:
    return ButtonEvent(device, "press", event_id, "mqtt", **kw)  # type: ignore[arg-type]


def test_press_orders_once_with_a_stable_key() -> None:
    r = rules()
    _, first = decide(State(), press(), T0, r)
    _, again = decide(State(), press(), T0 + 5, r)
    intents = [a for a in first if isinstance(a, PlaceOrder)]
    assert len(intents) == 1
    assert intents[0].sku == "TIDE" and intents[0].trigger == "press"
    assert intents[0].key == next(a for a in again if isinstance(a, PlaceOrder)).key
    assert len(intents[0].key) <= 255


def test_second_press_while_open_is_absorbed_by_one_open_order() -> None:
    r = rules()
    state, _ = decide(State(), press(event_id="e1"), T0, r)
    state, actions = decide(state, press(event_id="e2"), T0 + 10, r)
    assert outcomes(actions) == [Outcome.ABSORBED]
    report = next(a for a in actions if isinstance(a, Report))
    assert report.rule is Rule.ONE_OPEN_ORDER
    assert Feedback("laundry", LedPattern.ALREADY_ORDERED) in actions
    assert not any(isinstance(a, PlaceOrder) for a in actions)


def test_delivery_releases_the_dash_rule() -> None:
    r = rules()
    state, actions = decide(State(), press(event_id="e1"), T0, r)
    key = next(a for a in actions if isinstance(a, PlaceOrder)).key
    delivered = OrderUpdate(key, "detergent", "laundry", OrderState.DELIVERED)
    state, _ = decide(state, delivered, T0 + 100, r)
    _, actions = decide(state, press(event_id="e2"), T0 + 200, r)
    assert outcomes(actions) == [Outcome.ORDERED]


def test_a_device_event_id_seen_before_is_a_duplicate() -> None:
    _, actions = decide(State(), press(), T0, rules(), seen=True)
    assert outcomes(actions) == [Outcome.DUPLICATE]


def test_zigbee_double_publish_counts_once_within_the_window() -> None:
    r = rules(one_open_order=False)
    first = press(event_id="m1-aa", synthetic_id=True)
    second = press(event_id="m2-aa", synthetic_id=True)
    state, a1 = decide(State(), first, T0, r)
    state, a2 = decide(state, second, T0 + 0.05, r)
    assert outcomes(a1) == [Outcome.ORDERED]
    assert outcomes(a2) == [Outcome.DUPLICATE]
    _, a3 = decide(state, press(event_id="m3-aa", synthetic_id=True), T0 + 10, r)
    assert outcomes(a3) == [Outcome.ORDERED]


def test_a_hold_repeated_while_held_cancels_one_order_however_long_the_press() -> None:
    # A Hue dimmer held for 5 s: on_hold about once a second (philips.ts,
    # hue_dimmer_switch). With two open orders, only the newest is cancelled.
    r = rules(one_open_order=False)
    state = State()
    for n in (1, 2):
        state, _ = decide(state, press(event_id=f"m{n}-p", synthetic_id=True), T0 + 10 * n, r)
    told: list[Outcome] = []
    for n in range(6):
        hold = ButtonEvent("laundry", "hold", f"m{10 + n}-h", "mqtt", synthetic_id=True)
        state, actions = decide(state, hold, T0 + 100 + 0.9 * n, r)
        told += outcomes(actions)
    assert told == [Outcome.CANCEL_REQUESTED] + [Outcome.DUPLICATE] * 5
    assert sum(o.cancel_requested for o in state.open_orders) == 1
    # A new long press after the window cancels the next one.
    hold = ButtonEvent("laundry", "hold", "m20-h", "mqtt", synthetic_id=True)
    _, actions = decide(state, hold, T0 + 100 + 0.9 * 5 + 2.5, r)
    assert outcomes(actions) == [Outcome.CANCEL_REQUESTED]


def test_retained_message_is_not_a_press() -> None:
    _, actions = decide(State(), press(retained=True), T0, rules())
    assert outcomes(actions) == [Outcome.IGNORED]


def test_long_press_cancels_the_newest_open_order() -> None:
    r = rules()
    state, actions = decide(State(), press(), T0, r)
    key = next(a for a in actions if isinstance(a, PlaceOrder)).key
    hold = ButtonEvent("laundry", "hold", None, "gpio")
    _, actions = decide(state, hold, T0 + 3, r)
    assert CancelOrder(key, "detergent", "laundry") in actions
    assert Feedback("laundry", LedPattern.CANCELLED) in actions


def test_confirm_window_holds_the_order() -> None:
    _, actions = decide(State(), press(), T0, rules(confirm_window="30s"))
    intent = next(a for a in actions if isinstance(a, PlaceOrder))
    assert intent.hold_until == T0 + 30
    assert outcomes(actions) == [Outcome.HELD]


def test_caps_absorb_with_the_rule_named() -> None:
    r = rules(one_open_order=False, max_per_day=2)
    state = State()
    results = []
    for i in range(3):
        state, actions = decide(state, press(event_id=f"e{i}"), T0 + i * 60, r)
        results.append(outcomes(actions))
    assert results[:2] == [[Outcome.ORDERED], [Outcome.ORDERED]]
    assert results[2] == [Outcome.ABSORBED]
    # a day later the rolling window has moved on
    _, actions = decide(state, press(event_id="e9"), T0 + 86_400 + 200, r)
    assert outcomes(actions) == [Outcome.ORDERED]


def test_gateway_cap_counts_all_products() -> None:
    r = rules(one_open_order=False)
    state = State()
    for i in range(3):
        state, _ = decide(state, press(event_id=f"e{i}"), T0 + i, r)
    _, actions = decide(state, press("pantry", event_id="p1"), T0 + 10, r)
    report = next(a for a in actions if isinstance(a, Report))
    assert report.rule is Rule.GATEWAY_CAP


def test_lifting_the_jar_does_not_order() -> None:
    r = rules()
    state, _ = decide(State(), SensorReading("scale", 600), T0, r)
    state, a1 = decide(state, SensorReading("scale", 2), T0 + 5, r)  # lifted
    state, a2 = decide(state, SensorReading("scale", 590), T0 + 20, r)  # put back
    state, a3 = decide(state, Tick(), T0 + 500, r)
    assert outcomes(a1) == [Outcome.SENSOR_LOW]
    assert outcomes(a2) == [Outcome.SENSOR_RECOVERED]
    assert not any(isinstance(a, PlaceOrder) for a in a1 + a2 + a3)


def test_low_for_settle_orders_once_per_episode_and_refill_rearms() -> None:
    r = rules()
    state, _ = decide(State(), SensorReading("scale", 200), T0, r)
    assert next_due(state, T0, r) == T0 + 60
    state, actions = decide(state, Tick(), T0 + 61, r)
    intents = [a for a in actions if isinstance(a, PlaceOrder)]
    assert len(intents) == 1 and intents[0].trigger == "threshold"
    state, more = decide(state, SensorReading("scale", 150), T0 + 120, r)
    state, more2 = decide(state, Tick(), T0 + 500, r)
    assert not any(isinstance(a, PlaceOrder) for a in more + more2)
    state, rearm = decide(state, SensorReading("scale", 900), T0 + 900, r)
    assert outcomes(rearm) == [Outcome.SENSOR_REARMED]


def test_silent_sensor_is_reported_stale_and_not_acted_on() -> None:
    r = rules()
    state, _ = decide(State(), SensorReading("scale", 100), T0, r)
    state, actions = decide(state, Tick(), T0 + 3601, r)
    assert outcomes(actions) == [Outcome.SENSOR_STALE]
    assert not any(isinstance(a, PlaceOrder) for a in actions)


def test_unreachable_shop_shows_the_queued_pattern() -> None:
    update = OrderUpdate("k", "detergent", "laundry", OrderState.QUEUED, unreachable=True)
    _, actions = decide(State(), update, T0, rules())
    assert Feedback("laundry", LedPattern.QUEUED) in actions


def test_a_refused_cancel_lets_the_next_long_press_try_again() -> None:
    r = rules()
    state, actions = decide(State(), press(), T0, r)
    key = next(a for a in actions if isinstance(a, PlaceOrder)).key
    accepted = OrderUpdate(key, "detergent", "laundry", OrderState.SHIPPED)
    state, _ = decide(state, accepted, T0 + 1, r)
    hold = ButtonEvent("laundry", "hold", None, "gpio")
    state, first = decide(state, hold, T0 + 2, r)
    assert outcomes(first) == [Outcome.CANCEL_REQUESTED]
    _, before_refusal = decide(state, hold, T0 + 3, r)
    assert outcomes(before_refusal) == [Outcome.NOTHING_TO_CANCEL]
    refused = OrderUpdate(
        key, "detergent", "laundry", OrderState.SHIPPED, reason="too late", cancel_refused=True
    )
    state, _ = decide(state, refused, T0 + 4, r)
    _, again = decide(state, hold, T0 + 5, r)
    assert outcomes(again) == [Outcome.CANCEL_REQUESTED]


def test_a_held_order_is_released_when_its_window_ends_unless_cancelled() -> None:
    r = rules(confirm_window="30s")
    state, _ = decide(State(), press(), T0, r)
    assert next_due(state, T0, r) == T0 + 30
    early, nothing = decide(state, Tick(), T0 + 29, r)
    assert [a for a in nothing if isinstance(a, ReleaseHeld)] == []
    released, actions = decide(early, Tick(), T0 + 30, r)
    [release] = [a for a in actions if isinstance(a, ReleaseHeld)]
    assert release.key == state.open_orders[0].key
    assert released.open_orders[0].state is OrderState.QUEUED
    assert next_due(released, T0 + 30, r) is None, "released once, not at every tick"
    # A long press inside the window: the order is cancelled, never released.
    cancelled, _ = decide(state, ButtonEvent("laundry", "hold", "h1", "mqtt"), T0 + 10, r)
    assert next_due(cancelled, T0 + 10, r) is None
    _, after = decide(cancelled, Tick(), T0 + 30, r)
    assert [a for a in after if isinstance(a, ReleaseHeld)] == []


def test_a_counter_since_boot_starts_a_boot_only_when_it_goes_back_after_a_connect() -> None:
    # Shelly Gen1 event_cnt: (event, expected BootCount after it).
    r = rules()
    steps: list[tuple[CounterSeen | DeviceConnected, BootCount]] = [
        (CounterSeen("laundry", 5), BootCount(0, 5)),
        (CounterSeen("laundry", 3), BootCount(0, 5)),  # reordered or replayed: no boot
        (DeviceConnected("laundry"), BootCount(0, 5, connected=True)),
        (CounterSeen("laundry", 5), BootCount(0, 5)),  # its last event again: a reconnect
        (DeviceConnected("laundry"), BootCount(0, 5, connected=True)),
        (CounterSeen("laundry", 0), BootCount(1, 0)),  # the idle report after a boot
        (CounterSeen("laundry", 1), BootCount(1, 1)),
        (DeviceConnected("laundry"), BootCount(1, 1, connected=True)),
        (CounterSeen("laundry", 2), BootCount(1, 2)),  # counted on: the same boot
    ]
    state = State()
    for event, expected in steps:
        state, _ = decide(state, event, T0, r)
        assert state.boots["laundry"] == expected, event
    # A press is named by the boot it came in.
    state, actions = decide(state, press(event_id="cnt-2", counts_since_boot=True), T0, r)
    assert next(a for a in actions if isinstance(a, PlaceOrder)).event_id == "b1-cnt-2"
