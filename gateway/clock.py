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

import os
import threading
import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    """Wall time in epoch seconds, and waiting measured in that same time."""

    def now(self) -> float:
        """Current time, epoch seconds (UTC)."""
        ...

    def monotonic(self) -> float:
        """Real seconds from an arbitrary start that never jumps: for measuring real
        durations (latency, debounce, a hung thread), never for dating anything."""
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

    def monotonic(self) -> float:
        return time.monotonic()

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

    def monotonic(self) -> float:
        # Real seconds, unscaled: durations measured with it are real durations.
        return time.monotonic()

    def wait(self, event: threading.Event, timeout: float | None) -> bool:
        return event.wait(None if timeout is None else max(0.0, timeout) / self._scale)

    def sleep(self, seconds: float) -> None:
        time.sleep(max(0.0, seconds) / self._scale)


def rfc3339(t: float) -> str:
    """Epoch seconds as RFC 3339 UTC with milliseconds, the one format used on the wire,
    in events, state topics and the status file.

    >>> rfc3339(1767323045.5)
    '2026-01-02T03:04:05.500Z'
    """
    stamp = datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


ORIGIN_ENV = "RG_TIME_ORIGIN"


def make_clock(time_scale: float | None, origin: float | None = None) -> Clock:
    """RealClock for ``None`` or 1.0, otherwise a ScaledClock.

    Processes that must share one scaled timeline (the demo's gateway, shop and
    simulator) agree on an *origin*: the real epoch second at which scaled time
    equals real time. It comes from ``origin`` or the ``RG_TIME_ORIGIN``
    environment variable; without one, each clock starts at its own start time.

    >>> a = make_clock(600.0, origin=1_000.0)
    >>> b = make_clock(600.0, origin=1_000.0)
    >>> abs(a.now() - b.now()) < 600.0
    True
    """
    if time_scale is None or time_scale == 1.0:
        return RealClock()
    if origin is None and os.environ.get(ORIGIN_ENV):
        origin = float(os.environ[ORIGIN_ENV])
    if origin is None:
        return ScaledClock(time_scale)
    return ScaledClock(time_scale, start=origin + (time.time() - origin) * time_scale)
