"""Fault knobs of the reference shop: how it misbehaves on purpose, reproducibly.

Knobs can be set at start (CLI flags) and changed at runtime (``POST /_admin/faults``).
Each request draws one :class:`FaultPlan` from a seeded random generator, always
drawing the same number of values in the same order, so a seed replays the same
sequence of faults whatever the knobs are.

>>> injector = FaultInjector(Faults(error_rate=1.0, seed=1))
>>> injector.draw().error
True
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

GARBAGE_KINDS = ("html", "truncated", "no_id")
_RATES = ("error_rate", "drop_after_commit_rate", "slow_rate", "rate_limit_rate", "garbage_rate")


class FaultSettingError(ValueError):
    """A fault knob with an unknown name or an impossible value."""


@dataclass(frozen=True)
class Faults:
    """The knobs. Rates are probabilities per request, 0.0 (never) .. 1.0 (always)."""

    error_rate: float = 0.0
    drop_after_commit_rate: float = 0.0
    slow_rate: float = 0.0
    slow_seconds: float = 0.0
    rate_limit_rate: float = 0.0
    retry_after: int = 1
    garbage_rate: float = 0.0
    garbage_kind: str = "html"
    seed: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def changed(self, changes: Mapping[str, object]) -> Faults:
        """A copy with ``changes`` applied; every value is checked."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise FaultSettingError(
                f"unknown fault knob(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        checked: dict[str, Any] = {}
        for name, value in changes.items():
            checked[name] = _check(name, value)
        return replace(self, **checked)


def _check(name: str, value: object) -> object:
    if name == "seed":
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise FaultSettingError("seed must be a whole number or null")
        return value
    if name == "garbage_kind":
        if value not in GARBAGE_KINDS:
            raise FaultSettingError(f"garbage_kind must be one of: {', '.join(GARBAGE_KINDS)}")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FaultSettingError(f"{name} must be a number")
    if name in _RATES and not 0.0 <= value <= 1.0:
        raise FaultSettingError(f"{name} is a probability: between 0.0 and 1.0")
    if name == "retry_after":
        if not isinstance(value, int) or value < 0:
            raise FaultSettingError("retry_after must be whole seconds, 0 or more")
        return value
    if value < 0:
        raise FaultSettingError(f"{name} must not be negative")
    return float(value)


@dataclass(frozen=True)
class FaultPlan:
    """What goes wrong with one request (usually nothing)."""

    error: bool = False
    rate_limited: bool = False
    slow: bool = False
    drop_after_commit: bool = False
    garbage: str | None = None


class FaultInjector:
    """Holds the current knobs, draws plans, counts what was injected, and lets
    slow requests be released early when the knobs change (tests rely on that to
    hold a request "in progress" for as long as they need, with no sleeps)."""

    def __init__(self, faults: Faults | None = None) -> None:
        self._faults = faults or Faults()
        self._random = random.Random(self._faults.seed)
        self._changed = threading.Condition()
        self._stopping = False
        self.injected: dict[str, int] = {
            "error": 0,
            "rate_limit": 0,
            "slow": 0,
            "drop_after_commit": 0,
            "garbage": 0,
        }

    @property
    def faults(self) -> Faults:
        with self._changed:
            return self._faults

    def update(self, changes: Mapping[str, object]) -> Faults:
        with self._changed:
            self._faults = self._faults.changed(changes)
            if "seed" in changes:
                self._random.seed(self._faults.seed)
            self._changed.notify_all()
            return self._faults

    def draw(self) -> FaultPlan:
        with self._changed:
            f = self._faults
            rolls = [self._random.random() for _ in range(5)]
            return FaultPlan(
                error=rolls[0] < f.error_rate,
                rate_limited=rolls[1] < f.rate_limit_rate,
                slow=rolls[2] < f.slow_rate and f.slow_seconds > 0,
                drop_after_commit=rolls[3] < f.drop_after_commit_rate,
                garbage=f.garbage_kind if rolls[4] < f.garbage_rate else None,
            )

    def count(self, kind: str) -> None:
        with self._changed:
            self.injected[kind] += 1

    def counts(self) -> dict[str, int]:
        with self._changed:
            return dict(self.injected)

    def sleep(self, started: float, monotonic: Callable[[], float] = time.monotonic) -> None:
        """Sleep until ``started + slow_seconds`` (real seconds, never scaled).

        Re-reads ``slow_seconds`` whenever the knobs change, so lowering it
        releases requests that are already waiting; ``stop()`` releases all.
        """
        with self._changed:
            while not self._stopping:
                remaining = started + self._faults.slow_seconds - monotonic()
                if remaining <= 0:
                    return
                self._changed.wait(remaining)

    def stop(self) -> None:
        with self._changed:
            self._stopping = True
            self._changed.notify_all()
