"""Reading LED patterns back from gpiozero's MockPin."""

from __future__ import annotations

import itertools

from gpiozero.pins.mock import MockPin


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
