"""The commerce interface: the order intent in, a classified result out.

A backend gets the complete intent the core committed (:class:`PlaceOrder`) and
builds its own requests from it. It must build them deterministically — the same
intent gives the same bytes — because a retry after a lost answer sends the same
request under the same key, and the shop compares the two. Results are the
classified values of :mod:`gateway.core.results`; the retry policy that acts on
them (:mod:`gateway.core.retry`) is the same for every backend.

>>> from gateway.core.events import PlaceOrder
>>> intent = PlaceOrder(key="rg1_x", product="soap", sku="SKU-1", quantity=2,
...                     device="laundry", trigger="press", event_id="e1", created_at=0.0,
...                     gateway="kitchen-pi")
>>> build_body(intent)[:40]
b'{"created_at":"1970-01-01T00:00:00.000Z"'
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Protocol

from gateway.clock import rfc3339
from gateway.core.events import PlaceOrder
from gateway.core.results import (
    Accepted,
    Blocked,
    Cancelled,
    CancelResult,
    Misconfigured,
    PlaceResult,
    Probe,
    Rejected,
    Retry,
    Status,
    StatusResult,
    TooLate,
    Unclear,
)

__all__ = [
    "Accepted",
    "Blocked",
    "CancelResult",
    "Cancelled",
    "CommerceBackend",
    "Guarantee",
    "Misconfigured",
    "PlaceResult",
    "Probe",
    "Rejected",
    "Retry",
    "Status",
    "StatusResult",
    "TooLate",
    "Unclear",
    "build_body",
    "canonical_json",
    "intent_document",
]


class Guarantee(StrEnum):
    """How a backend keeps "exactly one order per trigger" (``check`` and the docs say it).

    >>> Guarantee.NATIVE_KEYS.explained.split(":")[0]
    'native idempotency keys'
    """

    NATIVE_KEYS = "native idempotency keys"
    KEY_BY_LOOKUP = "key by lookup"
    AT_LEAST_ONCE = "at-least-once with a key"

    @property
    def explained(self) -> str:
        return _EXPLAINED[self]


_EXPLAINED = {
    Guarantee.NATIVE_KEYS: (
        "native idempotency keys: the shop replays the first answer for a repeated key"
    ),
    Guarantee.KEY_BY_LOOKUP: (
        "key by lookup: the gateway writes its key on the order and looks it up before a retry"
    ),
    Guarantee.AT_LEAST_ONCE: (
        "at-least-once with a key: a retry may deliver twice, "
        "the receiver must drop repeats by Idempotency-Key"
    ),
}


class CommerceBackend(Protocol):
    """A shop. Implementations must be safe to call from the sender thread.

    ``guarantee`` states how the backend keeps one order per trigger.
    """

    guarantee: Guarantee

    def place_order(self, intent: PlaceOrder) -> PlaceResult:
        """Place the order; ``intent.key`` is its idempotency key (same key, same order)."""
        ...

    def get_order(self, shop_order_id: str) -> StatusResult: ...

    def cancel_order(self, shop_order_id: str) -> CancelResult: ...

    def probe(self) -> Probe:
        """A cheap look at the shop with no side effect: does it answer, does it take
        our credentials? ``Probe(None)`` for a backend with no safe probe. Never raises."""
        ...

    def close(self) -> None: ...


def intent_document(intent: PlaceOrder) -> dict[str, object]:
    """The fields of an order every backend sends, as plain JSON values."""
    return {
        "sku": intent.sku,
        "quantity": intent.quantity,
        "source": {
            "gateway": intent.gateway,
            "device": intent.device,
            "trigger": intent.trigger,
            "event_id": intent.event_id,
        },
        "created_at": rfc3339(intent.created_at),
    }


def canonical_json(document: dict[str, object]) -> bytes:
    """Compact JSON with sorted keys: the same document always gives the same bytes,
    which is what a shop compares under one Idempotency-Key (and a signature covers)."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8"
    )


def build_body(intent: PlaceOrder) -> bytes:
    """The Reorder API's order request body (docs/commerce-api.md)."""
    return canonical_json(intent_document(intent))
