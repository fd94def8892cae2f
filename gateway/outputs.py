"""How decisions are told: one log line each, and JSON on ``<prefix>/<id>/events``.

>>> from gateway.events import Outcome, Report
>>> r = Report(Outcome.ABSORBED, "laundry", 0.0, "detergent", "e1", detail=None)
>>> describe(r)
'laundry: absorbed (detergent) event e1'
>>> report_json(r)["outcome"]
'absorbed'
"""

from __future__ import annotations

import json
import time

from gateway.events import Outcome, Report


def rfc3339(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def short_key(key: str | None) -> str | None:
    """Idempotency keys are long; 12 characters identify an order in logs and the CLI."""
    return None if key is None else key[:12]


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
        "order": short_key(report.order_key),
        "state": report.state.value if report.state else None,
        "detail": report.detail,
        "value": report.value,
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    return body


def report_payload(report: Report) -> bytes:
    return json.dumps(report_json(report), separators=(",", ":")).encode()


def describe(report: Report) -> str:
    """One human line per decision, with the event id (the issue asks for it)."""
    parts = [f"{report.device}: {report.outcome.value}"]
    if report.outcome is Outcome.ORDER_STATUS and report.state is not None:
        parts = [f"{report.device}: order {short_key(report.order_key)} {report.state.value}"]
    if report.rule is not None:
        parts.append(f"by {report.rule.value}")
    if report.product:
        parts.append(f"({report.product})")
    if report.value is not None:
        parts.append(f"value={report.value:g}")
    if report.event_id:
        parts.append(f"event {report.event_id}")
    if report.order_key and report.outcome is not Outcome.ORDER_STATUS:
        parts.append(f"order {short_key(report.order_key)}")
    if report.detail:
        parts.append(f"— {report.detail}")
    return " ".join(parts)
