"""LED feedback patterns a household can tell apart without a phone.

Each pattern differs from the others in something a person notices from across
the kitchen: how many blinks, how fast, or whether it keeps going.

===============  ==============================================  ===============================
Pattern          What the LED does                               What it means
===============  ==============================================  ===============================
RECEIVED         one short blink (0.15 s)                        the press reached the gateway
ACCEPTED         solid on for 3 s                                the shop accepted the order
ALREADY_ORDERED  two slow blinks (0.6 s on, 0.6 s off)           an order is already on its way
QUEUED           a short flash every second until the next       the shop is unreachable; the
                 pattern (PWM LEDs breathe, every 2 s)           order is kept and sent later
LIMIT_REACHED    fast blinking (0.1 s on, 0.1 s off) for 5 s     a daily cap said no: nothing
                                                                 was ordered
REJECTED         three long blinks (1 s on, 0.5 s off)           the shop refused the order for
                                                                 good (a dead letter)
BLOCKED          lit, with a short dark gap every 1.8 s, until   the shop refused the gateway's
                 the next pattern                                token: the installer must fix
                                                                 it; the order waits
CANCELLED        three quick blinks (0.15 s on, 0.15 s off)      the order was cancelled
OFF              dark
===============  ==============================================  ===============================

The three "no" patterns differ in what a person notices first: LIMIT_REACHED
flickers, REJECTED is slow and heavy, BLOCKED stays mostly lit and does not stop
on its own. docs/leds.md holds the same table and the wiring of a button's LED.

Patterns run on gpiozero's own background blink thread, so showing one never
blocks, and a new pattern replaces whatever was showing.

>>> PATTERNS[LedPattern.CANCELLED].n
3
"""

from __future__ import annotations

from dataclasses import dataclass

from gpiozero import LED, PWMLED

from gateway.core.events import LedPattern


@dataclass(frozen=True)
class Blink:
    """One pattern as gpiozero blink arguments.

    ``n`` is the number of on/off cycles; ``None`` repeats until replaced.
    ``pwm_fade`` is the fade in/out time on a PWM LED (ignored on a plain LED).

    >>> Blink(on_time=0.15, off_time=0.15, n=3).n
    3
    """

    on_time: float
    off_time: float
    n: int | None
    pwm_fade: float = 0.0


PATTERNS: dict[LedPattern, Blink] = {
    LedPattern.RECEIVED: Blink(on_time=0.15, off_time=0.15, n=1),
    LedPattern.ACCEPTED: Blink(on_time=3.0, off_time=0.0, n=1),
    LedPattern.ALREADY_ORDERED: Blink(on_time=0.6, off_time=0.6, n=2),
    LedPattern.QUEUED: Blink(on_time=0.1, off_time=0.9, n=None, pwm_fade=0.5),
    LedPattern.LIMIT_REACHED: Blink(on_time=0.1, off_time=0.1, n=25),
    LedPattern.REJECTED: Blink(on_time=1.0, off_time=0.5, n=3),
    # Mostly lit, unlike QUEUED (mostly dark): a refused token needs a person.
    LedPattern.BLOCKED: Blink(on_time=1.5, off_time=0.3, n=None),
    LedPattern.CANCELLED: Blink(on_time=0.15, off_time=0.15, n=3),
}
"""Every pattern except OFF, which simply turns the LED off."""


def play(led: LED | PWMLED, pattern: LedPattern) -> None:
    """Start ``pattern`` on ``led`` in the background, replacing what it showed.

    Raises gpiozero's own errors (e.g. a closed device); the caller decides
    what a failed LED means.
    """
    # Start every pattern from dark: a pattern that replaces one caught mid-blink
    # then still begins with a fresh "on", so its blinks count the same.
    led.off()
    if pattern == LedPattern.OFF:
        return
    blink = PATTERNS[pattern]
    if isinstance(led, PWMLED):
        led.blink(
            on_time=blink.on_time,
            off_time=blink.off_time,
            fade_in_time=blink.pwm_fade,
            fade_out_time=blink.pwm_fade,
            n=blink.n,
            background=True,
        )
    else:
        led.blink(on_time=blink.on_time, off_time=blink.off_time, n=blink.n, background=True)
