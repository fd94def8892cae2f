"""Idempotency keys and dedupe keys.

An order's idempotency key is derived from the trigger, so the same press, replayed
by a broker or retried after a crash, always maps to the same key — and the shop
creates at most one order for it. The key is an HMAC under a secret that lives only
in this installation's outbox, so nobody outside can predict or forge keys.

>>> k = order_key(b"s" * 32, "kitchen-pi", "laundry", "evt-1")
>>> k.startswith("rg1_") and len(k) == 68
True
>>> dedupe_key("laundry", "evt-1")
'7:laundry:evt-1'
"""

from __future__ import annotations

import hashlib
import hmac

KEY_PREFIX = "rg1_"
"""Versioned so that a future derivation can coexist with keys already in flight."""

_MAX_READABLE_EVENT_ID = 200


def _field(value: str) -> bytes:
    # Length-prefixing makes the encoding unambiguous: ("a:b", "c") and ("a", "b:c")
    # can never produce the same bytes, whatever characters the ids contain.
    raw = value.encode("utf-8")
    return str(len(raw)).encode("ascii") + b":" + raw


def order_key(secret: bytes, gateway_id: str, device: str, event_id: str) -> str:
    """The Idempotency-Key for one trigger: ``rg1_`` + 64 hex characters."""
    if len(secret) < 16:
        raise ValueError("the idempotency secret must be at least 16 bytes")
    message = b"".join(_field(part) for part in (gateway_id, device, event_id))
    return KEY_PREFIX + hmac.new(secret, message, hashlib.sha256).hexdigest()


def dedupe_key(device: str, event_id: str) -> str:
    """The key under which a device's event id is remembered as seen.

    Readable for ordinary ids; very long ids (a device sending junk) are hashed so
    that the table stays small.
    """
    if len(event_id) > _MAX_READABLE_EVENT_ID:
        event_id = "sha256:" + hashlib.sha256(event_id.encode("utf-8")).hexdigest()
    return f"{len(device)}:{device}:{event_id}"


def short_key(key: str) -> str:
    """The first 12 characters of an order key: enough to find it, short in logs.

    >>> short_key("rg1_0123456789abcdef")
    'rg1_01234567'
    """
    return key[:12]
