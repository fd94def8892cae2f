"""``reorder-gateway queue list | retry | drop``: look into and repair the outbox.

Each function prints for a person and returns an exit code (0 done, 1 refused or
nothing found). They never create a state directory: a typo in ``gateway.state_dir``
must not leave an empty outbox behind.

>>> import io, tempfile
>>> out = io.StringIO()
>>> queue_list(tempfile.mkdtemp(), out, now=0.0)
1
>>> "no outbox" in out.getvalue()
True
"""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

from gateway.clock import Clock, RealClock
from gateway.core.events import OrderState
from gateway.outbox.store import OrderRow, OutboxError, Store

KEY_WIDTH = 16
_RETRYABLE = (OrderState.REJECTED, OrderState.BLOCKED)
_AT_SHOP = (OrderState.ACCEPTED, OrderState.SHIPPED)


def _age(seconds: float) -> str:
    seconds = max(0.0, seconds)
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("m", 60.0)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"


def _clip(text: str | None, width: int) -> str:
    flat = " ".join((text or "").split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _open(state_dir: str | Path, out: TextIO) -> Store | None:
    try:
        return Store.open(state_dir, create=False)
    except OutboxError as exc:
        print(
            f"{exc} — is gateway.state_dir in the config right?"
            " (the gateway creates it on first run)",
            file=out,
        )
    return None


def _one(store: Store, key_prefix: str, out: TextIO) -> OrderRow | None:
    if len(key_prefix) < 4:
        print("give at least 4 characters of the order key (see 'queue list')", file=out)
        return None
    found = store.find_prefix(key_prefix)
    if not found:
        print(f"no order key starts with {key_prefix!r}", file=out)
        return None
    if len(found) > 1:
        print(f"{len(found)} orders start with {key_prefix!r}; give more characters:", file=out)
        for row in found:
            print(f"  {row.key[:KEY_WIDTH]}  {row.product}  {row.state}", file=out)
        return None
    return found[0]


def queue_list(state_dir: str | Path, out: TextIO, now: float) -> int:
    """Print the newest orders as a table."""
    store = _open(state_dir, out)
    if store is None:
        return 1
    try:
        rows = store.list_orders()
    finally:
        store.close()
    if not rows:
        print("the outbox is empty", file=out)
        return 0
    header = ("KEY", "PRODUCT", "DEVICE", "STATE", "AGE", "TRIES", "LAST ERROR")
    table = [header] + [
        (
            row.key[:KEY_WIDTH],
            _clip(row.product, 20),
            _clip(row.device, 20),
            str(row.state) + (" (cancel asked)" if row.cancel_requested else ""),
            _age(now - row.created_at),
            str(row.attempts),
            _clip(row.last_error, 60),
        )
        for row in rows
    ]
    widths = [max(len(line[i]) for line in table) for i in range(len(header) - 1)]
    for line in table:
        cells = [cell.ljust(width) for cell, width in zip(line, widths, strict=False)]
        print("  ".join([*cells, line[-1]]).rstrip(), file=out)
    return 0


def queue_retry(
    state_dir: str | Path, key_prefix: str, out: TextIO, *, clock: Clock | None = None
) -> int:
    """Put a rejected or blocked order back in the queue (attempts reset), due now."""
    store = _open(state_dir, out)
    if store is None:
        return 1
    try:
        row = _one(store, key_prefix, out)
        if row is None:
            return 1
        if row.state not in _RETRYABLE:
            print(
                f"order {row.key[:KEY_WIDTH]} is {row.state}; only rejected or blocked "
                "orders can be retried",
                file=out,
            )
            return 1
        if not store.requeue(row.key, (clock or RealClock()).now()):
            print(f"order {row.key[:KEY_WIDTH]} changed meanwhile; look again", file=out)
            return 1
    finally:
        store.close()
    print(
        f"order {row.key[:KEY_WIDTH]} ({row.product}) is queued again; a running gateway "
        "sends it within 30 s, with the same idempotency key",
        file=out,
    )
    if row.last_error == "expired":
        print("note: it had expired (commerce.expire_after) and will expire again", file=out)
    return 0


def queue_drop(state_dir: str | Path, key_prefix: str, out: TextIO, *, force: bool = False) -> int:
    """Remove an order that is not on the wire and not at the shop."""
    store = _open(state_dir, out)
    if store is None:
        return 1
    try:
        row = _one(store, key_prefix, out)
        if row is None:
            return 1
        if row.state in _AT_SHOP:
            print(
                f"order {row.key[:KEY_WIDTH]} is {row.state} at the shop as "
                f"{row.shop_order_id}; dropping it here would not stop it — cancel it instead "
                "(hold the button, or send a cancel command)",
                file=out,
            )
            return 1
        if row.state is OrderState.SENDING:
            print(
                f"order {row.key[:KEY_WIDTH]} is being sent right now; try again in a moment",
                file=out,
            )
            return 1
        if row.attempts > 0 and not row.state.is_final and not force:
            print(
                f"order {row.key[:KEY_WIDTH]} was sent {row.attempts} time(s) without a clear "
                f"answer (last: {row.last_error or 'none'}); the shop may have it, and dropping "
                "it here would leave that order untracked — cancel it instead (hold the "
                "button, or send a cancel command), or drop it anyway with --force",
                file=out,
            )
            return 1
        if not store.delete(row.key, even_if_sent=force):
            print(f"order {row.key[:KEY_WIDTH]} changed meanwhile; look again", file=out)
            return 1
    finally:
        store.close()
    print(f"dropped order {row.key[:KEY_WIDTH]} ({row.product}, was {row.state})", file=out)
    return 0
