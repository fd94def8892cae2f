"""Reading LED patterns back from gpiozero's MockPin."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager

from gpiozero import Device
from gpiozero.pins.mock import MockFactory, MockPin, MockPWMPin


def lit_durations(pin: MockPin) -> list[float]:
    """Length of each finished lit stretch (MockPin stamps each change with the time
    since the previous one)."""
    out: list[float] = []
    lit_for: float | None = None
    for state in pin.states[1:]:
        if lit_for is not None:
            lit_for += state.timestamp
        if float(state.state) > 0 and lit_for is None:
            lit_for = 0.0
        elif float(state.state) == 0 and lit_for is not None:
            out.append(lit_for)
            lit_for = None
    return out


def on_periods(pin: MockPin) -> int:
    """How many times the LED went from dark to lit."""
    values = [float(s.state) for s in pin.states]
    return sum(1 for before, after in itertools.pairwise(values) if before == 0 and after > 0)


@contextmanager
def mock_pins() -> Iterator[MockFactory]:
    """gpiozero's own MockFactory (PWM-capable pins) as the default pin factory, put
    back as it was afterwards: the seam tests drive GPIO through."""
    previous = Device.pin_factory
    mock = MockFactory(pin_class=MockPWMPin)
    Device.pin_factory = mock
    try:
        yield mock
    finally:
        mock.close()
        Device.pin_factory = previous
