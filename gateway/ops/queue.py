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
from gateway.config.summary import format_duration, plural
from gateway.core.events import OrderState
from gateway.outbox.store import OrderRow, OutboxError, Store

KEY_WIDTH = 16
_RETRYABLE = (OrderState.REJECTED, OrderState.BLOCKED)
_AT_SHOP = (OrderState.ACCEPTED, OrderState.SHIPPED)
# How a person cancels an order the shop has (or may have): the core decides it.
_CANCEL_HOW = (
    "cancel it instead: hold the button (a long press), or publish an empty message to "
    "<topic_prefix>/<gateway id>/<button>/cancel"
)


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


def _reached_the_shop(row: OrderRow, history_retention: float | None) -> str | None:
    """Why ``row`` is not an order that never reached the shop, or None when it is.

    Such an order is dropped on request; any other one needs what the reason says.
    """
    key = row.key[:KEY_WIDTH]
    if row.state in _AT_SHOP:
        return (
            f"order {key} is {row.state} at the shop as {row.shop_order_id}; dropping it "
            f"here would not stop it — {_CANCEL_HOW}"
        )
    if row.state is OrderState.SENDING:
        return f"order {key} is being sent right now; try again in a moment"
    kept = (
        f"limits.history_retention ({format_duration(history_retention)})"
        if history_retention is not None
        else "limits.history_retention"
    )
    if row.state is OrderState.DELIVERED or (
        row.state is OrderState.CANCELLED and row.shop_order_id is not None
    ):
        at = f" as {row.shop_order_id}" if row.shop_order_id else ""
        return (
            f"order {key} ({row.product}) was {row.state} at the shop{at}: it is history, "
            f"not something waiting to be sent — the gateway forgets it by itself after {kept}; "
            "drop it anyway with --force"
        )
    if row.state is OrderState.REJECTED:
        # Refused for good, the shop has nothing; but an order that expired after
        # unanswered requests (its first claim counted one) may be there.
        unanswered = (row.last_error or "").startswith("expired") and row.attempts > 1
    else:
        unanswered = row.state is not OrderState.CANCELLED and row.attempts > 0
    if unanswered:
        return (
            f"order {key} was sent {plural(row.attempts, 'time')} without a clear answer "
            f"(last: {row.last_error or 'none'}); the shop may have it, and dropping it here "
            f"would leave that order untracked — {_CANCEL_HOW}; or drop it anyway with --force"
        )
    return None


def queue_drop(
    state_dir: str | Path,
    key_prefix: str,
    out: TextIO,
    *,
    force: bool = False,
    history_retention: float | None = None,
) -> int:
    """Remove an order that never reached the shop (any other only with ``force``,
    and never one that is on the wire or at the shop)."""
    store = _open(state_dir, out)
    if store is None:
        return 1
    try:
        row = _one(store, key_prefix, out)
        if row is None:
            return 1
        reason = _reached_the_shop(row, history_retention)
        on_the_wire_or_at_the_shop = row.state in (OrderState.SENDING, *_AT_SHOP)
        if reason is not None and (on_the_wire_or_at_the_shop or not force):
            print(reason, file=out)
            return 1
        if not store.delete(row.key, even_if_sent=force):
            print(f"order {row.key[:KEY_WIDTH]} changed meanwhile; look again", file=out)
            return 1
    finally:
        store.close()
    print(f"dropped order {row.key[:KEY_WIDTH]} ({row.product}, was {row.state})", file=out)
    return 0
