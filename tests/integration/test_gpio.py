"""GPIO buttons and LED patterns through gpiozero's real Button/LED code on MockFactory pins.

Nothing here asserts a duration: tests count events and LED on-periods and
check their order, and waits are generous deadlines, not measurements.
"""

from __future__ import annotations

import importlib.util
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from gpiozero import Device
from gpiozero.pins.mock import MockFactory, MockPWMPin
from gpiozero.pins.pi import PiFactory

from gateway.clock import ScaledClock
from gateway.config.models import ButtonConfig
from gateway.core.events import ButtonEvent, LedPattern
from gateway.inputs.gpio import (
    DriveRefusedError,
    GpioButtons,
    PinClaimError,
    PinFactoryUnavailableError,
    make_pin_factory,
)
from gateway.outputs.led import PATTERNS
from tests.support.leds import lit_durations, mock_pins, on_periods

DEADLINE = 20.0  # seconds; only ever reached when something is broken


def button(name: str, gpio: int | None, **extra: Any) -> ButtonConfig:
    return ButtonConfig.model_validate(
        {"name": name, "product": "detergent", "gpio": gpio, **extra}
    )


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.02)


def drain(events: queue.Queue[ButtonEvent]) -> list[ButtonEvent]:
    out = []
    while True:
        try:
            out.append(events.get_nowait())
        except queue.Empty:
            return out


@pytest.fixture
def factory() -> Iterator[MockFactory]:
    with mock_pins() as mock:
        yield mock


@pytest.fixture
def events() -> queue.Queue[ButtonEvent]:
    return queue.Queue()


@pytest.fixture
def make_gpio(
    factory: MockFactory, events: queue.Queue[ButtonEvent]
) -> Iterator[Callable[..., GpioButtons]]:
    made: list[GpioButtons] = []

    def make(*configs: ButtonConfig, **kwargs: Any) -> GpioButtons:
        gpio = GpioButtons(list(configs), events.put_nowait, pin_factory=factory, **kwargs)
        made.append(gpio)
        return gpio

    yield make
    for gpio in made:
        gpio.close()


# --------------------------------------------------------------------------- buttons


def test_short_press_is_one_press_event_sent_on_release(
    make_gpio: Callable[..., GpioButtons], factory: MockFactory, events: queue.Queue[ButtonEvent]
) -> None:
    gpio = make_gpio(button("laundry", 17, bounce_time="20ms", hold_time="5s"))
    pin = factory.pin(17)

    pin.drive_low()
    assert drain(events) == []  # nothing until the finger lifts
    time.sleep(0.2)
    pin.drive_high()

    [event] = drain(events)
    assert (event.device, event.action, event.origin) == ("laundry", "press", "gpio")
    assert event.event_id is not None and len(event.event_id) == 32
    assert event.synthetic_id is True
    assert gpio.stats()["presses"] == 1


def test_two_presses_get_two_distinct_event_ids(
    make_gpio: Callable[..., GpioButtons], factory: MockFactory, events: queue.Queue[ButtonEvent]
) -> None:
    make_gpio(button("laundry", 17, bounce_time="20ms", hold_time="5s"))
    pin = factory.pin(17)
    for _ in range(2):
        pin.drive_low()
        time.sleep(0.1)
        pin.drive_high()

    first, second = drain(events)
    assert first.action == second.action == "press"
    assert first.event_id != second.event_id


def test_contact_bounce_burst_is_exactly_one_press(
    make_gpio: Callable[..., GpioButtons], factory: MockFactory, events: queue.Queue[ButtonEvent]
) -> None:
    # A generous bounce_time keeps a scheduler hiccup inside the burst from
    # looking like a real press on a busy machine.
    gpio = make_gpio(button("laundry", 17, bounce_time="200ms", hold_time="5s"))
    pin = factory.pin(17)

    for _ in range(4):  # closing: the contact chatters a few times in well under 2 ms
        pin.drive_low()
        pin.drive_high()
    pin.drive_low()
    time.sleep(0.5)
    pin.drive_high()
    for _ in range(3):  # opening chatters too
        pin.drive_low()
        pin.drive_high()

    assert [e.action for e in drain(events)] == ["press"]
    assert gpio.stats()["bounces"] == 7


def test_mock_pins_do_not_debounce_by_themselves(factory: MockFactory) -> None:
    # Why the gateway debounces in software: gpiozero's MockPin records
    # bounce_time but reports every edge (other backends differ again).
    from gpiozero import Button

    seen: list[str] = []
    raw = Button(17, bounce_time=0.2, hold_time=5, pin_factory=factory)
    raw.when_pressed = lambda: seen.append("pressed")
    try:
        for _ in range(3):
            factory.pin(17).drive_low()
            factory.pin(17).drive_high()
    finally:
        raw.close()
    assert seen == ["pressed"] * 3


def test_long_press_is_one_hold_and_its_release_sends_nothing(
    make_gpio: Callable[..., GpioButtons], factory: MockFactory, events: queue.Queue[ButtonEvent]
) -> None:
    gpio = make_gpio(button("laundry", 17, bounce_time="20ms", hold_time="200ms"))
    pin = factory.pin(17)

    pin.drive_low()
    held = events.get(timeout=DEADLINE)  # fired by gpiozero's hold thread
    assert (held.device, held.action, held.origin) == ("laundry", "hold", "gpio")
    time.sleep(0.6)  # keep holding well past another hold_time: still one hold
    pin.drive_high()

    assert drain(events) == []
    assert gpio.stats()["holds"] == 1
    assert "presses" not in gpio.stats()


def test_pull_down_button_presses_high(
    make_gpio: Callable[..., GpioButtons], factory: MockFactory, events: queue.Queue[ButtonEvent]
) -> None:
    make_gpio(button("pantry", 27, pull_up=False, bounce_time="20ms", hold_time="5s"))
    pin = factory.pin(27)
    pin.drive_high()
    time.sleep(0.1)
    pin.drive_low()
    assert [(e.device, e.action) for e in drain(events)] == [("pantry", "press")]


def test_failing_event_handler_is_counted_and_logged_not_raised(
    factory: MockFactory, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(event: ButtonEvent) -> None:
        raise RuntimeError("queue gone")

    gpio = GpioButtons([button("laundry", 17, bounce_time="20ms")], broken, pin_factory=factory)
    try:
        with caplog.at_level(logging.ERROR, logger="gateway.inputs.gpio"):
            factory.pin(17).drive_low()
            time.sleep(0.1)
            factory.pin(17).drive_high()  # runs our handler in this thread: must not raise
        assert gpio.stats()["handler_errors"] == 1
        assert "event handler failed" in caplog.text
    finally:
        gpio.close()


def test_only_buttons_with_gpio_are_wired(
    make_gpio: Callable[..., GpioButtons], factory: MockFactory
) -> None:
    gpio = make_gpio(
        button("laundry", 17),
        ButtonConfig(name="coffee", product="beans", mqtt="zigbee2mqtt/coffee"),
    )
    assert gpio.devices == ("laundry",)
    gpio.show("coffee", LedPattern.RECEIVED)  # no LED: nothing happens, nothing raised
    gpio.show("nobody", LedPattern.LIMIT_REACHED)


def test_without_gpio_pins_no_pin_factory_is_loaded(events: queue.Queue[ButtonEvent]) -> None:
    previous = Device.pin_factory
    Device.pin_factory = None
    try:
        mqtt_only = ButtonConfig(name="coffee", product="beans", mqtt="zigbee2mqtt/coffee")
        with GpioButtons([mqtt_only], events.put_nowait) as gpio:
            assert gpio.pin_factory is None
            assert gpio.devices == ()
    finally:
        Device.pin_factory = previous


def test_pin_used_twice_is_a_clear_error_and_releases_what_it_claimed(
    make_gpio: Callable[..., GpioButtons], factory: MockFactory
) -> None:
    with pytest.raises(PinClaimError, match=r"button 'pantry': gpio 17"):
        make_gpio(button("laundry", 17, led=22), button("pantry", 17))
    # The failed attempt gave its pins back: the same pins can be claimed again.
    assert make_gpio(button("laundry", 17, led=22)).devices == ("laundry",)


def test_pin_missing_on_this_board_is_a_clear_error(make_gpio: Callable[..., GpioButtons]) -> None:
    with pytest.raises(PinClaimError, match=r"button 'laundry': gpio 40"):
        make_gpio(button("laundry", 40))


def test_last_seen_uses_the_gateway_clock(
    make_gpio: Callable[..., GpioButtons], factory: MockFactory
) -> None:
    clock = ScaledClock(scale=1.0, start=1_000_000.0)
    gpio = make_gpio(button("laundry", 17, bounce_time="20ms"), clock=clock)
    factory.pin(17).drive_low()
    time.sleep(0.1)
    factory.pin(17).drive_high()
    assert 1_000_000.0 <= gpio.last_seen()["laundry"] < 1_000_000.0 + DEADLINE


class ManualClock:
    """A clock whose time moves only when the test says so (monotonic and wall alike)."""

    scale = 1.0

    def __init__(self, start: float = 1_000_000.0) -> None:
        self._now = start
        self._mono = 0.0

    def advance(self, seconds: float) -> None:
        self._now += seconds
        self._mono += seconds

    def now(self) -> float:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    def wait(self, event: threading.Event, timeout: float | None) -> bool:
        return event.is_set()

    def sleep(self, seconds: float) -> None:
        self.advance(seconds)


def test_debounce_is_measured_with_the_clock_not_with_sleeps(
    make_gpio: Callable[..., GpioButtons], factory: MockFactory, events: queue.Queue[ButtonEvent]
) -> None:
    clock = ManualClock()
    gpio = make_gpio(button("laundry", 17, bounce_time="50ms", hold_time="5s"), clock=clock)
    pin = factory.pin(17)

    pin.drive_low()
    clock.advance(0.049)  # just inside bounce_time: contact bounce
    pin.drive_high()
    assert drain(events) == []
    assert gpio.stats()["bounces"] == 1

    pin.drive_low()
    clock.advance(0.05)  # exactly bounce_time: a press
    pin.drive_high()
    assert [e.action for e in drain(events)] == ["press"]
    assert gpio.last_seen()["laundry"] == clock.now()


def test_a_release_at_hold_time_is_a_hold_measured_with_the_clock(
    make_gpio: Callable[..., GpioButtons], factory: MockFactory, events: queue.Queue[ButtonEvent]
) -> None:
    # gpiozero's own hold timer runs in real time: with hold_time at a minute it never
    # fires during this test, so what is asserted is the clock-measured release.
    clock = ManualClock()
    gpio = make_gpio(button("laundry", 17, bounce_time="20ms", hold_time="60s"), clock=clock)
    pin = factory.pin(17)

    pin.drive_low()
    clock.advance(59.9)
    pin.drive_high()
    assert [e.action for e in drain(events)] == ["press"]

    pin.drive_low()
    clock.advance(60.0)
    pin.drive_high()
    assert [e.action for e in drain(events)] == ["hold"]
    assert gpio.stats() == {"presses": 1, "holds": 1}


def test_reconfigure_gives_back_the_old_pins_and_claims_the_new(
    make_gpio: Callable[..., GpioButtons], factory: MockFactory, events: queue.Queue[ButtonEvent]
) -> None:
    clock = ManualClock()
    gpio = make_gpio(button("laundry", 17, bounce_time="20ms", hold_time="5s"), clock=clock)
    gpio.reconfigure([button("pantry", 27, bounce_time="20ms", hold_time="5s")])
    assert gpio.devices == ("pantry",)

    factory.pin(17).drive_low()  # no longer a button: nothing listens
    clock.advance(0.1)
    factory.pin(17).drive_high()
    factory.pin(27).drive_low()
    clock.advance(0.1)
    factory.pin(27).drive_high()
    assert [(e.device, e.action) for e in drain(events)] == [("pantry", "press")]

    # A pin that cannot be claimed: nothing stays half wired.
    with pytest.raises(PinClaimError, match=r"button 'b': gpio 17"):
        gpio.reconfigure([button("a", 17), button("b", 17)])
    assert gpio.devices == ()
    gpio.reconfigure([button("laundry", 17)])
    assert gpio.devices == ("laundry",)


# --------------------------------------------------------------------------- LEDs


def test_led_patterns_are_distinct_by_count(
    make_gpio: Callable[..., GpioButtons], factory: MockFactory
) -> None:
    finite = {
        LedPattern.RECEIVED: (5, 20),
        LedPattern.ACCEPTED: (6, 21),
        LedPattern.ALREADY_ORDERED: (13, 16),
        LedPattern.LIMIT_REACHED: (19, 12),
        LedPattern.CANCELLED: (26, 25),
    }
    gpio = make_gpio(*(button(p.value, b, led=led) for p, (b, led) in finite.items()))
    pins = {p: factory.pin(led) for p, (_, led) in finite.items()}
    for pattern, pin in pins.items():  # all at once, so the test lasts as long as the longest
        pin.clear_states()
        gpio.show(pattern.value, pattern)

    fast = PATTERNS[LedPattern.LIMIT_REACHED].n
    assert fast is not None
    expected = {
        LedPattern.RECEIVED: 1,
        LedPattern.ACCEPTED: 1,
        LedPattern.ALREADY_ORDERED: 2,
        LedPattern.CANCELLED: 3,
        LedPattern.LIMIT_REACHED: fast,
    }
    for pattern, count in expected.items():
        wait_until(
            lambda pin=pins[pattern], count=count: on_periods(pin) >= count and pin.state == 0,
            f"{pattern} to finish",
        )
    time.sleep(1.5)  # longer than any gap inside a pattern: a stray extra blink would show
    assert {p: on_periods(pin) for p, pin in pins.items()} == expected
    assert all(pin.state == 0 for pin in pins.values())  # finite patterns end dark
    assert expected[LedPattern.LIMIT_REACHED] > expected[LedPattern.CANCELLED]
    # RECEIVED and ACCEPTED both light once; ACCEPTED's light is the long, steady one.
    assert lit_durations(pins[LedPattern.ACCEPTED])[0] > lit_durations(pins[LedPattern.RECEIVED])[0]


def test_queued_keeps_going_until_a_new_pattern_replaces_it(
    make_gpio: Callable[..., GpioButtons], factory: MockFactory
) -> None:
    gpio = make_gpio(button("laundry", 17, led=22))
    led = factory.pin(22)
    led.clear_states()

    gpio.show("laundry", LedPattern.QUEUED)
    wait_until(lambda: on_periods(led) >= 3, "QUEUED to keep blinking")
    before = on_periods(led)
    gpio.show("laundry", LedPattern.CANCELLED)
    wait_until(lambda: on_periods(led) >= before + 3 and led.state == 0, "CANCELLED to finish")
    settled = on_periods(led)
    time.sleep(1.5)  # longer than a QUEUED period: it would have flashed again by now
    assert on_periods(led) == settled

    gpio.show("laundry", LedPattern.QUEUED)
    wait_until(lambda: on_periods(led) >= settled + 1, "QUEUED to start again")
    gpio.show("laundry", LedPattern.OFF)
    assert led.state == 0  # OFF is immediate
    settled = on_periods(led)
    time.sleep(1.5)
    assert on_periods(led) == settled


def test_pwm_led_counts_blinks_the_same_and_breathes_while_queued(
    make_gpio: Callable[..., GpioButtons], factory: MockFactory
) -> None:
    gpio = make_gpio(button("laundry", 17, led=22, led_pwm=True))
    led = factory.pin(22)
    led.clear_states()

    gpio.show("laundry", LedPattern.CANCELLED)
    wait_until(lambda: on_periods(led) >= 3 and led.state == 0, "CANCELLED to finish")
    time.sleep(1.0)  # a fourth blink would have started by now
    assert on_periods(led) == 3
    assert all(float(s.state) in (0.0, 1.0) for s in led.states)  # crisp blinks, no fades

    gpio.show("laundry", LedPattern.QUEUED)
    wait_until(lambda: on_periods(led) >= 5, "two breaths")
    assert any(0 < float(s.state) < 1 for s in led.states)  # fades in and out
    gpio.show("laundry", LedPattern.OFF)
    assert led.state == 0


def test_show_after_close_is_ignored(
    make_gpio: Callable[..., GpioButtons], factory: MockFactory
) -> None:
    gpio = make_gpio(button("laundry", 17, led=22))
    gpio.close()
    gpio.show("laundry", LedPattern.LIMIT_REACHED)
    assert gpio.stats().get("led_errors", 0) == 0


# --------------------------------------------------------------------------- demo driving


def test_drive_press_goes_through_the_real_button_code(
    make_gpio: Callable[..., GpioButtons], factory: MockFactory, events: queue.Queue[ButtonEvent]
) -> None:
    gpio = make_gpio(button("laundry", 17, bounce_time="20ms", hold_time="5s"))
    gpio.drive(17, "press")  # returns at once; the release follows on a timer
    event = events.get(timeout=DEADLINE)
    assert (event.device, event.action, event.origin) == ("laundry", "press", "gpio")
    wait_until(lambda: factory.pin(17).state == 1, "the release")
    assert drain(events) == []


def test_drive_hold_is_one_hold(
    make_gpio: Callable[..., GpioButtons], factory: MockFactory, events: queue.Queue[ButtonEvent]
) -> None:
    gpio = make_gpio(button("laundry", 17, bounce_time="20ms", hold_time="200ms"))
    gpio.drive(17, "hold")
    assert events.get(timeout=DEADLINE).action == "hold"
    wait_until(lambda: factory.pin(17).state == 1, "the release")
    assert drain(events) == []


def test_drive_raw_edges(
    make_gpio: Callable[..., GpioButtons], factory: MockFactory, events: queue.Queue[ButtonEvent]
) -> None:
    gpio = make_gpio(button("laundry", 17, bounce_time="20ms", hold_time="5s"))
    gpio.drive(17, "down")
    assert factory.pin(17).state == 0
    time.sleep(0.1)
    gpio.drive(17, "up")
    assert [e.action for e in drain(events)] == ["press"]


def test_drive_refuses_unknown_pins_and_actions(make_gpio: Callable[..., GpioButtons]) -> None:
    gpio = make_gpio(button("laundry", 17))
    with pytest.raises(DriveRefusedError, match=r"gpio 4 is not a button pin \(button pins: 17\)"):
        gpio.drive(4, "press")
    with pytest.raises(DriveRefusedError, match=r"unknown GPIO action 'smash'"):
        gpio.drive(17, "smash")


def test_drive_after_close_is_refused(make_gpio: Callable[..., GpioButtons]) -> None:
    gpio = make_gpio(button("laundry", 17))
    gpio.close()
    with pytest.raises(DriveRefusedError, match="closed"):
        gpio.drive(17, "press")


class BenchFactory(PiFactory):
    """A factory that is not a MockFactory, as on a real Pi, backed by mock pins."""

    def __init__(self) -> None:
        super().__init__()
        self.pin_class = MockPWMPin

    def _get_revision(self) -> int:
        return 0xA02082

    @staticmethod
    def ticks() -> float:
        return time.monotonic()

    @staticmethod
    def ticks_diff(later: float, earlier: float) -> float:
        return later - earlier


def test_drive_refuses_a_gateway_on_real_pins(events: queue.Queue[ButtonEvent]) -> None:
    real_like = BenchFactory()
    gpio = GpioButtons([button("laundry", 17)], events.put_nowait, pin_factory=real_like)
    try:
        with pytest.raises(DriveRefusedError, match="only works with the mock pin factory"):
            gpio.drive(17, "press")
        assert real_like.pin(17).state == 1  # untouched: still pulled up
    finally:
        gpio.close()
        real_like.close()


# --------------------------------------------------------------------------- pin factories


def test_mock_factory_by_name_has_pwm_pins() -> None:
    mock = make_pin_factory("Mock")
    try:
        assert isinstance(mock, MockFactory)
        assert mock.pin_class is MockPWMPin
    finally:
        mock.close()


def test_unknown_factory_name_lists_the_choices() -> None:
    with pytest.raises(PinFactoryUnavailableError) as caught:
        make_pin_factory("banana")
    message = str(caught.value)
    assert "gateway.pin_factory: unknown pin factory 'banana'" in message
    assert "lgpio" in message and "mock" in message


def test_factory_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GPIOZERO_PIN_FACTORY", "mock")
    mock = make_pin_factory(None)
    try:
        assert isinstance(mock, MockFactory)
    finally:
        mock.close()
    monkeypatch.setenv("GPIOZERO_PIN_FACTORY", "banana")
    with pytest.raises(PinFactoryUnavailableError, match="GPIOZERO_PIN_FACTORY: unknown"):
        make_pin_factory(None)


def _has_gpio() -> bool:
    libraries = ("lgpio", "RPi", "pigpio")
    return any(importlib.util.find_spec(n) for n in libraries) or Path("/dev/gpiomem").exists()


@pytest.mark.skipif(_has_gpio(), reason="this machine has GPIO: nothing fails to load")
def test_factory_that_cannot_load_says_how_to_fix_it(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(PinFactoryUnavailableError) as caught:
        make_pin_factory("lgpio")
    message = str(caught.value)
    assert "cannot use pin factory 'lgpio'" in message
    assert "apt install python3-lgpio" in message
    assert "gateway.pin_factory: mock" in message

    monkeypatch.delenv("GPIOZERO_PIN_FACTORY", raising=False)
    with pytest.raises(PinFactoryUnavailableError) as caught:
        make_pin_factory(None)
    message = str(caught.value)
    assert message.startswith("no GPIO pin factory works on this machine")
    assert all(f"{name}:" in message for name in ("lgpio", "rpigpio", "pigpio", "native"))
