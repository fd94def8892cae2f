"""The commerce interface: what the sender needs from any shop backend.

Every call returns a *classified result* instead of raising, so the sender's retry
policy is a plain ``match`` over a handful of cases:

========== ============================================ ===========================
Result     When                                         Sender does
========== ============================================ ===========================
Accepted   the shop has the order (new or replayed)     state accepted, poll status
Retry      down, timeout, 408/409/429/5xx               try later (same key, body)
Blocked    401/403                                      state blocked, slow retries
Rejected   400/404/422: will never work                 dead letter with the reason
Unclear    2xx we cannot read (HTML, truncated, no id)  retry later; shop replays
========== ============================================ ===========================

>>> from gateway.core.events import PlaceOrder
>>> intent = PlaceOrder(key="rg1_x", product="soap", sku="SKU-1", quantity=2,
...                     device="laundry", trigger="press", event_id="e1", created_at=0.0)
>>> build_body(intent, "kitchen-pi")[:40]
b'{"created_at":"1970-01-01T00:00:00.000Z"'
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Protocol

from gateway.clock import rfc3339
from gateway.core.events import OrderState, PlaceOrder


@dataclass(frozen=True)
class Accepted:
    """The shop has the order. ``replayed``: it was created by an earlier attempt."""

    shop_order_id: str
    replayed: bool = False


@dataclass(frozen=True)
class Retry:
    """Try again later. ``after``: the shop's Retry-After in seconds, if it gave one.

    ``unreachable``: no HTTP answer at all (refused, timeout, dropped connection).
    """

    reason: str
    after: float | None = None
    unreachable: bool = False


@dataclass(frozen=True)
class Blocked:
    """The credentials were refused (401/403)."""

    reason: str


@dataclass(frozen=True)
class Rejected:
    """A permanent refusal, with the shop's message."""

    reason: str


@dataclass(frozen=True)
class Unclear:
    """A success status we could not read; retrying with the same key is safe."""

    reason: str


@dataclass(frozen=True)
class Status:
    """The shop's current view of an order."""

    shop_order_id: str
    state: OrderState


@dataclass(frozen=True)
class Cancelled:
    """The shop cancelled the order."""


@dataclass(frozen=True)
class TooLate:
    """The shop refused to cancel (already shipped)."""

    reason: str


PlaceResult = Accepted | Retry | Blocked | Rejected | Unclear
StatusResult = Status | Retry | Blocked | Rejected | Unclear
CancelResult = Cancelled | TooLate | Retry | Blocked | Rejected | Unclear


class CommerceBackend(Protocol):
    """A shop. Implementations must be safe to call from the sender thread."""

    def place_order(self, key: str, body: bytes) -> PlaceResult:
        """Send ``body`` exactly as given, with ``key`` as the Idempotency-Key."""
        ...

    def get_order(self, shop_order_id: str) -> StatusResult: ...

    def cancel_order(self, shop_order_id: str) -> CancelResult: ...

    def close(self) -> None: ...


def build_body(intent: PlaceOrder, gateway_id: str) -> bytes:
    """The order request body: compact JSON, sorted keys, so the same intent always
    gives the same bytes (the shop compares bodies under one Idempotency-Key)."""
    document = {
        "sku": intent.sku,
        "quantity": intent.quantity,
        "source": {
            "gateway": gateway_id,
            "device": intent.device,
            "trigger": intent.trigger,
            "event_id": intent.event_id,
        },
        "created_at": rfc3339(intent.created_at),
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8"
    )
