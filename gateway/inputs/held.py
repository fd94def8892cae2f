"""Binary sensors timed by the gateway: ON..OFF shorter than ``hold_time`` is a
press, held at least that long a cancel — as a wired button behaves.

An ESPHome ``binary_sensor`` says only ON and OFF; which of the two a person
meant is the time between them. The times come from the clock seam (the core
thread's clock), so tests drive them without sleeping.

>>> timer = HeldTimer(hold_time=2.0)
>>> timer.down("coffee", now=100.0)
>>> timer.up("coffee", now=100.4)
'press'
>>> timer.down("coffee", now=200.0)
>>> timer.up("coffee", now=203.0)
'hold'
>>> timer.up("coffee", now=204.0) is None  # OFF without an ON first
True
"""

from __future__ import annotations

from typing import Literal

HeldMeaning = Literal["press", "hold"]


class HeldTimer:
    """When each button went down, and what its release means."""

    def __init__(self, hold_time: float) -> None:
        self.hold_time = hold_time
        self._down: dict[str, float] = {}

    def down(self, device: str, now: float) -> None:
        # A second ON without an OFF between (a lost OFF) starts again: the
        # person is pressing now.
        self._down[device] = now

    def up(self, device: str, now: float) -> HeldMeaning | None:
        """``press`` or ``hold`` for a release; None when no press was seen."""
        since = self._down.pop(device, None)
        if since is None:
            return None
        return "hold" if now - since >= self.hold_time else "press"

    def is_down(self, device: str) -> bool:
        return device in self._down
