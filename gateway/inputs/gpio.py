"""Buttons wired to the Pi's header become :class:`ButtonEvent` s; LEDs show feedback.

Everything here is gpiozero behind its usual seam: pass ``pin_factory=`` (or set
``Device.pin_factory``), and tests swap in a ``MockFactory``.

What a button press means:

* a short press (released before ``hold_time``) is ``press``, sent on release;
* a long press is ``hold`` (cancel), sent once when ``hold_time`` is reached;
  the release that ends it sends nothing;
* a contact closed for less than ``bounce_time`` is contact bounce, not a press.
  This is checked here in software because pin backends disagree on what their
  own ``bounce`` setting does (and gpiozero's ``MockPin`` ignores it entirely), so
  a burst of edges within a few milliseconds is one press on every backend.

How long a contact was closed is measured with the clock's ``monotonic()`` (real
seconds: a finger is physical), so tests drive debounce and hold with a clock
they advance themselves instead of sleeping.

The LED patterns are described in :mod:`gateway.outputs.led`.

gpiozero calls the button handlers from its own threads; they only build the
event and hand it to ``on_event`` (a non-blocking queue put). They never block
and never raise: failures are counted in :meth:`GpioButtons.stats` and logged.

Errors (all :class:`GpioError`, in :mod:`gateway.errors`)::

    GpioError
    ├── PinFactoryUnavailableError  the pin factory cannot load here (says how to fix it)
    ├── PinClaimError               a button or LED pin could not be claimed
    └── DriveRefusedError           demo driving of real pins, an unknown pin or action
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Literal

from gpiozero import LED, PWMLED, Button, Device, Factory, GPIOZeroError
from gpiozero.pins.mock import MockFactory, MockPWMPin

from gateway.clock import Clock, RealClock
from gateway.config.models import ButtonConfig
from gateway.core.events import ButtonAction, ButtonEvent, LedPattern
from gateway.errors import DriveRefusedError, GpioError, PinClaimError, PinFactoryUnavailableError
from gateway.outputs.led import play

log = logging.getLogger(__name__)

DriveAction = Literal["press", "hold", "down", "up"]
DRIVE_ACTIONS: tuple[DriveAction, ...] = ("press", "hold", "down", "up")

# Tried in this order when neither the config nor GPIOZERO_PIN_FACTORY names one
# (gpiozero's own preference: lgpio works on every Pi model and has PWM).
_DEFAULT_ORDER = ("lgpio", "rpigpio", "pigpio", "native")
_FACTORY_FIXES = {
    "lgpio": "install lgpio (sudo apt install python3-lgpio)",
    "rpigpio": "install RPi.GPIO (sudo apt install python3-rpi.gpio)",
    "pigpio": "install and start pigpio (sudo apt install python3-pigpio pigpio && "
    "sudo systemctl enable --now pigpiod)",
    "native": "run on a Raspberry Pi as a user in the 'gpio' group",
}
_NO_GPIO_FIX = (
    "on a machine without GPIO set gateway.pin_factory: mock (demo), "
    "or remove the gpio:/led: pins from the buttons"
)


_COUNTER: dict[ButtonAction, str] = {"press": "presses", "hold": "holds"}


# --------------------------------------------------------------------------- pin factories


def _factory_names() -> list[str]:
    return sorted({ep.name for ep in entry_points(group="gpiozero_pin_factories")})


def _load_named(name: str, source: str) -> Factory:
    key = name.strip().lower()
    if key == "mock":
        # PWM-capable mock pins, so that `led_pwm: true` works in demos too.
        return MockFactory(pin_class=MockPWMPin)
    points = {ep.name: ep for ep in entry_points(group="gpiozero_pin_factories")}
    if key not in points:
        raise PinFactoryUnavailableError(
            f"{source}: unknown pin factory {name!r} — choose one of {', '.join(_factory_names())}"
        )
    try:
        factory: Factory = points[key].load()()
    except Exception as exc:  # third-party factories fail in many ways (import, no Pi, no daemon)
        fix = _FACTORY_FIXES.get(key, "check the pin factory's installation")
        raise PinFactoryUnavailableError(
            f"{source}: cannot use pin factory {key!r}: {exc} — {fix}; {_NO_GPIO_FIX}"
        ) from exc
    return factory


def make_pin_factory(name: str | None) -> Factory:
    """The gpiozero pin factory named ``name`` (``gateway.pin_factory`` in the config).

    ``"mock"`` gives a ``MockFactory`` with PWM-capable pins; other names load
    gpiozero's factory of that name; ``None`` uses ``GPIOZERO_PIN_FACTORY`` from
    the environment, else the first of lgpio, rpigpio, pigpio, native that loads.
    Raises :class:`PinFactoryUnavailableError` with the fix when none can be used.

    >>> type(make_pin_factory("mock")).__name__
    'MockFactory'
    """
    if name is not None and name.strip():
        return _load_named(name, "gateway.pin_factory")
    from_env = os.environ.get("GPIOZERO_PIN_FACTORY", "").strip()
    if from_env:
        return _load_named(from_env, "GPIOZERO_PIN_FACTORY")
    reasons = []
    for candidate in _DEFAULT_ORDER:
        try:
            factory = _load_named(candidate, "default")
        except PinFactoryUnavailableError as exc:
            reasons.append(f"{candidate}: {exc.__cause__}")
            continue
        log.info("GPIO: using the %s pin factory", candidate)
        return factory
    raise PinFactoryUnavailableError(
        "no GPIO pin factory works on this machine ("
        + "; ".join(reasons)
        + f") — on a Raspberry Pi, {_FACTORY_FIXES['lgpio']}; {_NO_GPIO_FIX}"
    )


# --------------------------------------------------------------------------- buttons


@dataclass
class _Press:
    """Where one button is in a press. Touched from gpiozero's threads, under ``lock``."""

    cfg: ButtonConfig
    button: Button
    lock: threading.Lock = field(default_factory=threading.Lock)
    pressed_at: float | None = None  # clock.monotonic() of the latest closing edge
    held: bool = False  # a hold was sent for the current press


class GpioButtons:
    """Buttons wired to the header -> ButtonEvent; LEDs -> feedback patterns.

    Only buttons with ``gpio:`` set are read (the rest are MQTT devices); any
    button with ``led:`` set gets an LED (a PWMLED with ``led_pwm: true``).

    >>> from gateway.config.models import ButtonConfig
    >>> cfg = ButtonConfig(name="laundry", product="detergent", gpio=17, led=27)
    >>> seen = []
    >>> with GpioButtons([cfg], seen.append, pin_factory=make_pin_factory("mock")) as gpio:
    ...     gpio.show("laundry", LedPattern.RECEIVED)
    >>> gpio.devices
    ('laundry',)
    """

    def __init__(
        self,
        buttons: Sequence[ButtonConfig],
        on_event: Callable[[ButtonEvent], None],
        *,
        pin_factory: Factory | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._on_event = on_event
        # Press and hold durations are physical (a finger, real seconds): measured with
        # clock.monotonic(). clock.now() only dates activity in the gateway's time.
        self._clock = clock or RealClock()
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._last_seen: dict[str, float] = {}
        self._presses: dict[str, _Press] = {}
        self._by_pin: dict[int, _Press] = {}
        self._leds: dict[str, LED | PWMLED] = {}
        self._led_lock = threading.Lock()  # patterns start and stop one at a time
        self._timers: set[threading.Timer] = set()
        self._closed = False
        self._owns_factory = False
        self._factory: Factory | None = pin_factory
        try:
            self._claim_all(buttons)
        except PinClaimError:
            self.close()  # give back the pins claimed before the failure
            raise

    def _claim_all(self, buttons: Sequence[ButtonConfig]) -> None:
        wired = [b for b in buttons if b.gpio is not None or b.led is not None]
        if wired and self._factory is None:
            self._factory = Device.pin_factory
            if self._factory is None:
                self._factory = make_pin_factory(None)
                self._owns_factory = True
        for cfg in wired:
            self._claim(cfg)

    def reconfigure(self, buttons: Sequence[ButtonConfig]) -> None:
        """Give back every pin and claim the pins of ``buttons`` (a config reload).

        The pin factory stays. Raises :class:`PinClaimError` when a new pin cannot be
        claimed; the pins claimed before it are given back, so nothing is half wired.
        """
        self._cancel_timers()
        with self._led_lock:
            self._release_devices()
            self._presses.clear()
            self._by_pin.clear()
            self._leds.clear()
            try:
                self._claim_all(buttons)
            except PinClaimError:
                self._release_devices()
                self._presses.clear()
                self._by_pin.clear()
                self._leds.clear()
                raise

    def _claim(self, cfg: ButtonConfig) -> None:
        where = f"button {cfg.name!r}"
        if cfg.gpio is not None:
            try:
                button = Button(
                    cfg.gpio,
                    pull_up=cfg.pull_up,
                    bounce_time=cfg.bounce_time,
                    hold_time=cfg.hold_time,
                    pin_factory=self._factory,
                )
            except GPIOZeroError as exc:
                raise PinClaimError(f"{where}: gpio {cfg.gpio}: {exc}") from exc
            press = _Press(cfg=cfg, button=button)
            self._presses[cfg.name] = press
            self._by_pin[cfg.gpio] = press
            button.when_pressed = lambda: self._pressed(press)
            button.when_released = lambda: self._released(press)
            button.when_held = lambda: self._held(press)
        if cfg.led is not None:
            kind = PWMLED if cfg.led_pwm else LED
            try:
                self._leds[cfg.name] = kind(cfg.led, pin_factory=self._factory)
            except GPIOZeroError as exc:
                raise PinClaimError(f"{where}: led {cfg.led}: {exc}") from exc

    @property
    def devices(self) -> tuple[str, ...]:
        """Names of the buttons read from GPIO pins."""
        return tuple(self._presses)

    @property
    def pin_factory(self) -> Factory | None:
        """The factory the pins were made with (None when no pin is configured)."""
        return self._factory

    def stats(self) -> dict[str, int]:
        """Counters: presses, holds, bounces, stray_releases, handler_errors, led_errors."""
        with self._lock:
            return dict(self._counts)

    def last_seen(self) -> dict[str, float]:
        """When each button last sent an event, in the gateway clock's epoch seconds."""
        with self._lock:
            return dict(self._last_seen)

    # ---------------------------------------------------------------- gpiozero threads

    def _count(self, what: str) -> None:
        with self._lock:
            self._counts[what] += 1

    def _pressed(self, press: _Press) -> None:
        with press.lock:
            press.pressed_at = self._clock.monotonic()
            press.held = False

    def _held(self, press: _Press) -> None:
        with press.lock:
            # A release racing the hold timer may already have ended this press.
            if press.pressed_at is None or press.held:
                return
            press.held = True
        self._emit(press.cfg.name, "hold")

    def _released(self, press: _Press) -> None:
        cfg = press.cfg
        with press.lock:
            started, held = press.pressed_at, press.held
            press.pressed_at = None
        if started is None:
            # Closed before we were listening (e.g. held down at start-up): not a press.
            self._count("stray_releases")
            log.info("button %s: release without a press ignored", cfg.name)
            return
        if held:
            return
        closed_for = self._clock.monotonic() - started
        if closed_for < cfg.bounce_time:
            self._count("bounces")
            log.debug("button %s: %.1f ms contact bounce ignored", cfg.name, closed_for * 1e3)
            return
        # gpiozero's hold timer may lose the race against a release at hold_time;
        # a press that long was still meant as a hold, never as an order.
        self._emit(cfg.name, "hold" if closed_for >= cfg.hold_time else "press")

    def _emit(self, device: str, action: ButtonAction) -> None:
        event = ButtonEvent(
            device=device,
            action=action,
            event_id=uuid.uuid4().hex,
            origin="gpio",
            synthetic_id=True,
        )
        with self._lock:
            self._counts[_COUNTER[action]] += 1
            self._last_seen[device] = self._clock.now()
        log.info("button %s: %s (%s)", device, action, event.event_id)
        try:
            self._on_event(event)
        except Exception:  # gpiozero's thread must survive whatever the handler does
            self._count("handler_errors")
            log.exception("button %s: the event handler failed; %s dropped", device, action)

    # ---------------------------------------------------------------- LEDs

    def show(self, device: str, pattern: LedPattern) -> None:
        """Show ``pattern`` on ``device``'s LED, replacing the current one. Never blocks.

        A device without an LED (or unknown here) is ignored.
        """
        led = self._leds.get(device)
        if led is None:
            return
        with self._led_lock:
            if self._closed:
                return
            try:
                play(led, pattern)
            except GPIOZeroError as exc:
                self._count("led_errors")
                log.warning("button %s: LED pattern %s failed: %s", device, pattern.value, exc)

    # ---------------------------------------------------------------- demo driving

    def drive(self, pin: int, action: str, hold_seconds: float = 0.1) -> None:
        """Press a button's mock pin, for demos. Refused on real pins.

        ``press`` closes the contact for ``hold_seconds`` (at least twice
        ``bounce_time``, so it is never mistaken for bounce; at ``hold_time`` or
        more it is a hold); ``hold`` closes it
        for ``hold_time`` + 0.5 s; ``down``/``up`` are the raw edges. Returns at
        once: the release happens on a short-lived timer thread.
        """
        if not isinstance(self._factory, MockFactory):
            raise DriveRefusedError(
                "GPIO driving only works with the mock pin factory "
                "(gateway.pin_factory: mock); real pins are pressed by hand"
            )
        if action not in DRIVE_ACTIONS:
            raise DriveRefusedError(
                f"unknown GPIO action {action!r} — use one of {', '.join(DRIVE_ACTIONS)}"
            )
        press = self._by_pin.get(pin)
        if press is None:
            wired = ", ".join(str(p) for p in sorted(self._by_pin)) or "none"
            raise DriveRefusedError(f"gpio {pin} is not a button pin (button pins: {wired})")
        cfg = press.cfg
        if action == "down":
            self._edge(press, closed=True)
        elif action == "up":
            self._edge(press, closed=False)
        else:
            if action == "hold":
                seconds = cfg.hold_time + 0.5
            else:
                seconds = max(hold_seconds, 2 * cfg.bounce_time)
            self._edge(press, closed=True)
            timer = threading.Timer(seconds, self._release_later, args=(press,))
            timer.daemon = True
            with self._lock:
                if self._closed:
                    return
                self._timers.add(timer)
            timer.start()

    def _edge(self, press: _Press, *, closed: bool) -> None:
        with self._lock:
            if self._closed:
                raise DriveRefusedError("GPIO is closed")
        # A pulled-up button closes to ground (low); a pulled-down one to 3.3 V.
        low = closed == press.cfg.pull_up
        if low:
            press.button.pin.drive_low()
        else:
            press.button.pin.drive_high()

    def _release_later(self, press: _Press) -> None:
        try:
            self._edge(press, closed=False)
        except GpioError:
            pass  # closed meanwhile: nothing left to release
        finally:
            current = threading.current_thread()
            if isinstance(current, threading.Timer):
                with self._lock:
                    self._timers.discard(current)

    # ---------------------------------------------------------------- shutdown

    def close(self) -> None:
        """Release every pin and stop LED patterns and pending demo releases."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._cancel_timers()
        with self._led_lock:  # waits for a pattern being started right now
            self._release_devices()
        if self._owns_factory and self._factory is not None:
            self._factory.close()

    def _cancel_timers(self) -> None:
        with self._lock:
            timers = list(self._timers)
            self._timers.clear()
        for timer in timers:
            timer.cancel()
            if timer is not threading.current_thread():
                timer.join()

    def _release_devices(self) -> None:
        devices = [*(p.button for p in self._presses.values()), *self._leds.values()]
        for device in devices:
            try:
                device.close()
            except GPIOZeroError as exc:
                log.warning("GPIO: closing %r failed: %s", device, exc)

    def __enter__(self) -> GpioButtons:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
