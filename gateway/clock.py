"""The clock seam.

Nothing in the gateway reads ``time.time()`` directly: it asks a :class:`Clock`.
Production uses :class:`RealClock`; demos and tests may use :class:`ScaledClock`,
where ``--time-scale 600`` makes ten minutes pass per real second, so that
``settle``, cooldowns, delivery times and status polling stay consistent across
the gateway, the reference shop and the simulator.

>>> clock = ScaledClock(scale=60.0, start=1_000_000.0)
>>> clock.now() >= 1_000_000.0
True
"""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    """Wall time in epoch seconds, and waiting measured in that same time."""

    def now(self) -> float:
        """Current time, epoch seconds (UTC)."""
        ...

    def wait(self, event: threading.Event, timeout: float | None) -> bool:
        """Wait for ``event`` up to ``timeout`` clock-seconds; True if it was set."""
        ...

    def sleep(self, seconds: float) -> None:
        """Sleep for ``seconds`` clock-seconds."""
        ...

    @property
    def scale(self) -> float:
        """How many clock-seconds pass per real second (1.0 in production)."""
        ...


class RealClock:
    """The machine's clock."""

    scale = 1.0

    def now(self) -> float:
        return time.time()

    def wait(self, event: threading.Event, timeout: float | None) -> bool:
        return event.wait(timeout)

    def sleep(self, seconds: float) -> None:
        time.sleep(max(0.0, seconds))


class ScaledClock:
    """A clock that runs ``scale`` times faster than real time, for demos and tests.

    >>> c = ScaledClock(scale=600.0)
    >>> c.scale
    600.0
    """

    def __init__(self, scale: float, start: float | None = None) -> None:
        if scale <= 0:
            raise ValueError("time scale must be positive")
        self._scale = float(scale)
        self._real_start = time.monotonic()
        self._start = time.time() if start is None else start

    @property
    def scale(self) -> float:
        return self._scale

    def now(self) -> float:
        return self._start + (time.monotonic() - self._real_start) * self._scale

    def wait(self, event: threading.Event, timeout: float | None) -> bool:
        return event.wait(None if timeout is None else max(0.0, timeout) / self._scale)

    def sleep(self, seconds: float) -> None:
        time.sleep(max(0.0, seconds) / self._scale)


def make_clock(time_scale: float | None) -> Clock:
    """RealClock for ``None`` or 1.0, otherwise a ScaledClock."""
    if time_scale is None or time_scale == 1.0:
        return RealClock()
    return ScaledClock(time_scale)
