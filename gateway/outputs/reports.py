"""How decisions are told: one log line each, and JSON on ``<prefix>/<id>/events``.

:class:`DecisionTeller` does both for each report, holding back floods of noisy
ones (:class:`NoisyReportLimiter`).

>>> from gateway.core.events import Outcome, Report
>>> r = Report(Outcome.ABSORBED, "laundry", 0.0, "detergent", "e1", detail=None)
>>> describe(r)
'laundry: absorbed (detergent) event e1'
>>> report_json(r)["outcome"]
'absorbed'
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import replace

from gateway.clock import Clock, RealClock, rfc3339
from gateway.core.events import Outcome, Report
from gateway.core.keys import short_key


def report_json(report: Report) -> dict[str, object]:
    body: dict[str, object] = {
        "outcome": report.outcome.value,
        "device": report.device,
        "at": rfc3339(report.at),
    }
    optional: dict[str, object | None] = {
        "product": report.product,
        "event_id": report.event_id,
        "rule": report.rule.value if report.rule else None,
        "order": (short_key(report.order_key) if report.order_key else None),
        "state": report.state.value if report.state else None,
        "detail": report.detail,
        "value": report.value,
        "price": _price_json(report),
        "routine": True if report.routine else None,
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    return body


def _price_json(report: Report) -> dict[str, object] | None:
    price = report.price
    if price is None:
        return None
    found: dict[str, object] = {"currency": price.currency, "total_cents": price.total_minor}
    if price.unit_minor is not None:
        found["unit_price_cents"] = price.unit_minor
    return found


def report_payload(report: Report) -> bytes:
    return json.dumps(report_json(report), separators=(",", ":")).encode()


def describe(report: Report) -> str:
    """One human line per decision, with the event id (the issue asks for it)."""
    parts = [f"{report.device}: {report.outcome.value}"]
    if report.outcome is Outcome.ORDER_STATUS and report.state is not None:
        parts = [f"{report.device}: order {short_key(report.order_key or '')} {report.state.value}"]
    if report.rule is not None:
        parts.append(f"by {report.rule.value}")
    if report.product:
        parts.append(f"({report.product})")
    if report.value is not None:
        parts.append(f"value={report.value:g}")
    if report.event_id:
        parts.append(f"event {report.event_id}")
    if report.order_key and report.outcome is not Outcome.ORDER_STATUS:
        parts.append(f"order {short_key(report.order_key or '')}")
    if report.price is not None:
        parts.append(f"total {report.price.shown}")
    if report.detail:
        parts.append(f"— {report.detail}")
    return " ".join(parts)


class NoisyReportLimiter:
    """Rate-limits the reports a flood can produce (invalid and ignored payloads).

    A broken or hostile device can send thousands of bad messages a second; each
    is still counted (metrics, status), but only a few per device reach the log and
    the events topic. The next report that gets through says how many were held
    back, so nothing disappears without a trace. Real (monotonic) time is used:
    this protects the Pi's log and the broker, not the household's schedule.

    >>> limiter = NoisyReportLimiter(burst=2, per_second=0.0)
    >>> r = Report(Outcome.INVALID, "scale", 0.0, detail="not JSON")
    >>> [limiter.admit(r, now=0.0) is not None for _ in range(3)]
    [True, True, False]
    """

    NOISY = frozenset({Outcome.INVALID, Outcome.IGNORED})

    def __init__(self, burst: int = 5, per_second: float = 1.0, clock: Clock | None = None) -> None:
        self._monotonic = (clock or RealClock()).monotonic
        self._burst = float(burst)
        self._rate = per_second
        self._tokens: dict[tuple[str, Outcome, bool], tuple[float, float]] = {}
        self._held: dict[tuple[str, Outcome, bool], int] = {}

    def admit(self, report: Report, now: float | None = None) -> Report | None:
        """The report to tell (perhaps noting how many were held back), or None."""
        if report.outcome not in self.NOISY:
            return report
        now = self._monotonic() if now is None else now
        # Routine reports (battery chatter) have their own allowance, so they never
        # hold back the line about a word the gateway ignored.
        key = (report.device, report.outcome, report.routine)
        tokens, last = self._tokens.get(key, (self._burst, now))
        tokens = min(self._burst, tokens + (now - last) * self._rate)
        if tokens < 1.0:
            self._tokens[key] = (tokens, now)
            self._held[key] = self._held.get(key, 0) + 1
            return None
        self._tokens[key] = (tokens - 1.0, now)
        held = self._held.pop(key, 0)
        if held:
            note = f"{held} more like it not shown"
            detail = f"{report.detail} ({note})" if report.detail else note
            return replace(report, detail=detail)
        return report


class RateLimitedLog:
    """Log a warning at most once per ``every`` seconds, saying how many were skipped.

    >>> import logging
    >>> limited = RateLimitedLog(logging.getLogger("doc"), every=60.0)
    >>> limited.warning("dropped %s", "one"); limited.warning("dropped %s", "two")
    >>> limited.skipped
    1
    """

    def __init__(
        self, logger: logging.Logger, every: float = 60.0, clock: Clock | None = None
    ) -> None:
        self._monotonic = (clock or RealClock()).monotonic
        self._logger = logger
        self._every = every
        self._last = -every
        self.skipped = 0
        self._lock = threading.Lock()

    def warning(self, msg: str, *args: object) -> None:
        now = self._monotonic()
        with self._lock:
            if now - self._last < self._every:
                self.skipped += 1
                return
            skipped, self.skipped, self._last = self.skipped, 0, now
        suffix = f" ({skipped} more since the last report)" if skipped else ""
        self._logger.warning(msg + suffix, *args)


decisions_log = logging.getLogger("gateway.decisions")


class DecisionTeller:
    """Tells each decision: one line on the ``gateway.decisions`` log (with the ids as
    structured fields) and its JSON on the events topic, QoS 1. Floods of invalid and
    ignored reports are held back by a :class:`NoisyReportLimiter`.

    >>> sent = []
    >>> teller = DecisionTeller(lambda topic, payload: sent.append(topic), "reorder/gw/events")
    >>> teller.tell(Report(Outcome.ORDERED, "laundry", 0.0, "detergent", "e1"))
    >>> sent
    ['reorder/gw/events']
    """

    def __init__(
        self,
        publish: Callable[[str, bytes], None],
        events_topic: str,
        limiter: NoisyReportLimiter | None = None,
    ) -> None:
        self._publish = publish
        self._topic = events_topic
        self._limiter = limiter or NoisyReportLimiter()

    def tell(self, report: Report) -> None:
        told = self._limiter.admit(report)
        if told is None:
            return  # a flood of bad payloads: counted by the caller, held back here
        decisions_log.info(
            "%s",
            describe(told),
            extra={
                "event_id": told.event_id,
                "device": told.device,
                "product": told.product,
                "outcome": told.outcome.value,
                "rule": told.rule.value if told.rule else None,
            },
        )
        self._publish(self._topic, report_payload(told))
