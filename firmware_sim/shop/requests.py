"""Checking what clients send the shop: idempotency keys and order bodies.

Every problem becomes an :class:`ApiError` that the server turns into a JSON
error body, so a client always learns *which* field is wrong and never sees a
traceback.

>>> order = parse_order(
...     b'{"sku": "OAT-MILK-6", "quantity": 1, "created_at": "2026-01-02T03:04:05Z",'
...     b' "source": {"gateway": "kitchen", "device": "fridge", "trigger": "press",'
...     b' "event_id": "e1"}}'
... )
>>> order.sku, len(order.fingerprint)
('OAT-MILK-6', 64)
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

MAX_BODY_BYTES = 64 * 1024
MAX_KEY_LENGTH = 255
MAX_QUANTITY = 100
TRIGGERS = ("press", "threshold", "forecast", "manual")
_SOURCE_FIELDS = ("gateway", "device", "trigger", "event_id")
_ORDER_FIELDS = ("sku", "quantity", "source", "created_at")


@dataclass
class ApiError(Exception):
    """A request the shop answers with an error status and ``{"error": {code, message}}``."""

    status: int
    code: str
    message: str
    headers: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.status} {self.code}: {self.message}"


@dataclass(frozen=True)
class OrderRequest:
    """A checked ``POST /orders`` body and the hash of its canonical JSON."""

    sku: str
    quantity: int
    source: dict[str, str]
    created_at: str
    fingerprint: str


def bad_request(message: str, code: str = "invalid_request") -> ApiError:
    return ApiError(400, code, message)


def check_idempotency_key(value: str | None) -> str:
    """The ``Idempotency-Key`` header: 1..255 printable ASCII characters."""
    if value is None or value == "":
        raise bad_request(
            "the Idempotency-Key header is required: send one unique key per order, "
            "and the same key when you retry it",
            "missing_idempotency_key",
        )
    if len(value) > MAX_KEY_LENGTH:
        raise bad_request(
            f"the Idempotency-Key is {len(value)} characters long; at most "
            f"{MAX_KEY_LENGTH} are allowed",
            "invalid_idempotency_key",
        )
    if not all(" " <= ch <= "~" for ch in value):
        raise bad_request(
            "the Idempotency-Key may only contain printable ASCII characters",
            "invalid_idempotency_key",
        )
    return value


def fingerprint(document: Any) -> str:
    """SHA-256 of the canonical JSON form: key order and whitespace do not matter."""
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def parse_json(body: bytes) -> Any:
    try:
        return json.loads(body.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise bad_request("the body is not UTF-8 text") from exc
    except json.JSONDecodeError as exc:
        raise bad_request(f"the body is not valid JSON ({exc.msg} at character {exc.pos})") from exc


def _text(obj: dict[str, Any], name: str, where: str) -> str:
    value = obj.get(name)
    if not isinstance(value, str) or not value.strip():
        raise bad_request(f"'{where}{name}' must be a non-empty string")
    if len(value) > 255:
        raise bad_request(f"'{where}{name}' is longer than 255 characters")
    try:
        # JSON may escape a lone surrogate ("\ud800"): valid JSON, but no text, and
        # the fingerprint (UTF-8) could not be taken — a 400, not a 500.
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise bad_request(f"'{where}{name}' is not valid Unicode text") from None
    return value


def _only(obj: dict[str, Any], allowed: tuple[str, ...], where: str) -> None:
    missing = [name for name in allowed if name not in obj]
    if missing:
        raise bad_request(f"missing field(s): {', '.join(where + m for m in missing)}")
    unknown = sorted(set(obj) - set(allowed))
    if unknown:
        # Strict on purpose: a reference shop that ignored typos would hide client bugs.
        raise bad_request(f"unknown field(s): {', '.join(where + u for u in unknown)}")


def parse_order(body: bytes) -> OrderRequest:
    """Check a ``POST /orders`` body; raises :class:`ApiError` (400) naming the field."""
    document = parse_json(body)
    if not isinstance(document, dict):
        raise bad_request("the body must be a JSON object")
    _only(document, _ORDER_FIELDS, "")
    sku = _text(document, "sku", "")
    quantity = document["quantity"]
    if isinstance(quantity, bool) or not isinstance(quantity, int):
        raise bad_request("'quantity' must be a whole number")
    if not 1 <= quantity <= MAX_QUANTITY:
        raise bad_request(f"'quantity' must be between 1 and {MAX_QUANTITY}")
    source = document["source"]
    if not isinstance(source, dict):
        raise bad_request("'source' must be an object with gateway, device, trigger, event_id")
    _only(source, _SOURCE_FIELDS, "source.")
    checked = {name: _text(source, name, "source.") for name in _SOURCE_FIELDS}
    if checked["trigger"] not in TRIGGERS:
        raise bad_request(f"'source.trigger' must be one of: {', '.join(TRIGGERS)}")
    created_at = _text(document, "created_at", "")
    check_rfc3339(created_at, "created_at")
    return OrderRequest(
        sku=sku,
        quantity=quantity,
        source=checked,
        created_at=created_at,
        fingerprint=fingerprint(document),
    )


def check_rfc3339(value: str, name: str) -> datetime:
    """An RFC 3339 date-time with a zone (``Z`` or ``+01:00``)."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise bad_request(
            f"'{name}' must be an RFC 3339 time such as 2026-01-02T03:04:05Z"
        ) from exc
    if "T" not in value.upper() or parsed.tzinfo is None:
        raise bad_request(f"'{name}' must be an RFC 3339 time with a zone, e.g. ...Z or +01:00")
    return parsed
