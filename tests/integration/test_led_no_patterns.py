"""The three ways of saying "no" on a button's LED, on gpiozero's MockFactory pins.

A cap (LIMIT_REACHED), a shop's final refusal (REJECTED) and a refused token
(BLOCKED) used to share one fast blink. Here each comes out of the real core for
its own cause and plays through the real LED code; the pin's history tells them
apart by count, length of light, and whether the pattern ends on its own.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from gpiozero.pins.mock import MockFactory

from gateway.config.models import ButtonConfig
from gateway.core.decide import State, decide
from gateway.core.events import (
    ButtonEvent,
    Feedback,
    LedPattern,
    OrderState,
    OrderUpdate,
    PlaceOrder,
)
from gateway.core.rules import ProductRules, Rules
from gateway.inputs.gpio import GpioButtons
from gateway.outputs.led import PATTERNS
from tests.support.leds import lit_durations, mock_pins, on_periods

DEADLINE = 20.0


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.02)


@pytest.fixture
def factory() -> Iterator[MockFactory]:
    with mock_pins() as mock:
        yield mock


def pattern_for(cause: str) -> LedPattern:
    """The pattern the core shows for one cause of "no", decided for real."""
    rules = Rules(
        gateway_id="gw",
        secret=b"s" * 32,
        products={"tea": ProductRules(sku="TEA", one_open_order=False)},
        button_products={"b": "tea"},
        max_orders_per_day=1,
    )
    state, actions = decide(State(), ButtonEvent("b", "press", "e1", "mqtt"), 0.0, rules)
    [order] = [a for a in actions if isinstance(a, PlaceOrder)]
    if cause == "cap":
        _, actions = decide(state, ButtonEvent("b", "press", "e2", "mqtt"), 1.0, rules)
    else:
        refused = OrderState.REJECTED if cause == "rejected" else OrderState.BLOCKED
        update = OrderUpdate(order.key, "tea", "b", refused, reason="HTTP 4xx")
        _, actions = decide(state, update, 1.0, rules)
    [feedback] = [a for a in actions if isinstance(a, Feedback)]
    return feedback.pattern


def test_cap_rejected_and_blocked_each_have_their_own_pattern() -> None:
    patterns = {cause: pattern_for(cause) for cause in ("cap", "rejected", "blocked")}
    assert patterns == {
        "cap": LedPattern.LIMIT_REACHED,
        "rejected": LedPattern.REJECTED,
        "blocked": LedPattern.BLOCKED,
    }
    assert len({PATTERNS[p] for p in patterns.values()}) == 3


def test_the_three_patterns_look_different_on_a_real_led(factory: MockFactory) -> None:
    pins = {LedPattern.LIMIT_REACHED: 5, LedPattern.REJECTED: 6, LedPattern.BLOCKED: 13}
    buttons = [
        ButtonConfig.model_validate(
            {"name": p.value.replace("_", "-"), "product": "tea", "gpio": 20 + i, "led": led}
        )
        for i, (p, led) in enumerate(pins.items())
    ]
    gpio = GpioButtons(buttons, lambda _event: None, pin_factory=factory)
    try:
        leds = {p: factory.pin(led) for p, led in pins.items()}
        for pattern, pin in leds.items():
            pin.clear_states()
            gpio.show(pattern.value.replace("_", "-"), pattern)

        cap, rejected, blocked = (leds[p] for p in pins)
        cap_blinks = PATTERNS[LedPattern.LIMIT_REACHED].n
        assert cap_blinks is not None
        wait_until(lambda: on_periods(cap) >= cap_blinks and cap.state == 0, "the cap flicker")
        wait_until(lambda: on_periods(rejected) >= 3 and rejected.state == 0, "three long blinks")
        time.sleep(1.0)  # longer than any gap inside a finite pattern
        assert on_periods(cap) == cap_blinks
        assert on_periods(rejected) == 3
        # REJECTED's blinks are long and heavy, the cap's a flicker.
        assert min(lit_durations(rejected)) > 3 * max(lit_durations(cap))
        # BLOCKED does not end on its own, and is lit far longer than it is dark.
        assert on_periods(blocked) > 3
        lit = sum(lit_durations(blocked))
        total = sum(s.timestamp for s in blocked.states[1:])
        assert lit > 0.6 * total
        gpio.show("blocked", LedPattern.OFF)
        assert blocked.state == 0
    finally:
        gpio.close()
