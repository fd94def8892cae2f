"""The outbox's writer: applies the core's decisions, in one transaction per batch.

Every decided reorder is written here, in the same transaction as the event id that
caused it, *before* anything is acknowledged. The sender drains it
(:mod:`gateway.outbox.claims`). The order intent is stored complete and never
rewritten, so a row re-sent after a crash builds the same request under the same
Idempotency-Key, which is what lets the shop recognise it as a replay.

One :class:`Store` per thread: each opens its own connection (WAL lets the core
thread write intents while the sender writes progress).

>>> import tempfile
>>> store = Store.open(tempfile.mkdtemp())
>>> store.queue_depth()
0
>>> store.close()
"""

from __future__ import annotations

import json
import secrets
import sqlite3
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from gateway.core.events import (
    Action,
    CancelOrder,
    OrderState,
    PlaceOrder,
    Price,
    ReleaseHeld,
    RememberAction,
    RememberBoot,
    RememberEvent,
    SaveEpisode,
    SaveLearned,
)
from gateway.core.lifecycle import CancelPlan, cancel_plan
from gateway.errors import (
    OutboxError,
    OutboxMissingError,
    OutboxUnavailableError,
    SchemaTooNewError,
)
from gateway.outbox.claims import SenderClaims
from gateway.outbox.schema import (
    DB_NAME,
    FINAL,
    NOT_HERE,
    SCHEMA_VERSION,
    marks,
)
from gateway.outbox.views import OrderRow

__all__ = [
    "DB_NAME",
    "SCHEMA_VERSION",
    "CommitResult",
    "OrderRow",
    "OutboxError",
    "OutboxMissingError",
    "OutboxUnavailableError",
    "SchemaTooNewError",
    "Store",
]


@dataclass(frozen=True)
class CommitResult:
    """What one :meth:`Store.commit` did.

    ``local_cancels``: orders cancelled without the shop (they never left).
    ``remote_cancels``: orders the sender must cancel at the shop.
    ``unknown_cancels``: cancels for keys that are missing or already final.
    """

    placed: tuple[str, ...] = ()
    local_cancels: tuple[str, ...] = ()
    remote_cancels: tuple[str, ...] = ()
    unknown_cancels: tuple[str, ...] = ()
    released: tuple[str, ...] = ()
    wake_sender: bool = False


@dataclass
class _Tally:
    placed: list[str] = field(default_factory=list)
    local: list[str] = field(default_factory=list)
    remote: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    released: list[str] = field(default_factory=list)
    to_send: int = 0  # placed orders the sender can take now (not held)


class Store(SenderClaims):
    """A connection to the outbox: the core's writes, the sender's claims, the views.

    >>> import tempfile
    >>> s = Store.open(tempfile.mkdtemp())
    >>> len(s.secret())
    32
    >>> s.close()
    """

    def secret(self) -> bytes:
        """This installation's 32-byte idempotency secret (created once, kept forever)."""
        with self._tx() as c:
            found = c.execute("SELECT value FROM meta WHERE key = 'secret'").fetchone()
            if found is not None:
                return bytes(found["value"])
            value = secrets.token_bytes(32)
            c.execute("INSERT INTO meta (key, value) VALUES ('secret', ?)", (value,))
            return value

    # ------------------------------------------------------------------ core side

    def commit(self, actions: Sequence[Action], *, now: float | None = None) -> CommitResult:
        """Apply all durable actions in ONE transaction; others are ignored.

        ``now`` stamps cancels and releases; without it the latest time found in the
        batch (event or intent) is used.
        """
        if now is None:
            times = [a.at for a in actions if isinstance(a, RememberEvent)]
            times += [a.created_at for a in actions if isinstance(a, PlaceOrder)]
            now = max(times, default=None)
        tally = _Tally()
        with self._tx() as c:
            for action in actions:
                if isinstance(action, PlaceOrder):
                    self._place(c, action, tally)
                elif isinstance(action, CancelOrder):
                    self._cancel(c, action.key, now, tally)
                elif isinstance(action, ReleaseHeld):
                    self._release(c, action.key, now, tally)
                elif isinstance(action, RememberEvent):
                    c.execute(
                        "INSERT OR IGNORE INTO seen_events (dedupe_key, seen_at) VALUES (?, ?)",
                        (action.dedupe_key, action.at),
                    )
                elif isinstance(action, RememberAction):
                    c.execute(
                        "INSERT INTO recent_actions (window_key, at) VALUES (?, ?) "
                        "ON CONFLICT (window_key) DO UPDATE SET at = excluded.at",
                        (action.window_key, action.at),
                    )
                elif isinstance(action, RememberBoot):
                    b = action.count
                    c.execute(
                        "INSERT INTO device_boots (device, boot, last_count, connected, at) "
                        "VALUES (?, ?, ?, ?, ?) ON CONFLICT (device) DO UPDATE SET "
                        "boot = excluded.boot, last_count = excluded.last_count, "
                        "connected = excluded.connected, at = excluded.at",
                        (action.device, b.boot, b.last, int(b.connected), action.at),
                    )
                elif isinstance(action, SaveEpisode):
                    e = action.episode
                    c.execute(
                        "INSERT INTO episodes (sensor, phase, below_since, last_value, "
                        "last_seen, stale_reported) VALUES (?, ?, ?, ?, ?, ?) "
                        "ON CONFLICT (sensor) DO UPDATE SET phase = excluded.phase, "
                        "below_since = excluded.below_since, last_value = excluded.last_value, "
                        "last_seen = excluded.last_seen, stale_reported = excluded.stale_reported",
                        (
                            action.sensor,
                            e.phase,
                            e.below_since,
                            e.last_value,
                            e.last_seen,
                            int(e.stale_reported),
                        ),
                    )
                elif isinstance(action, SaveLearned):
                    c.execute(
                        "INSERT INTO learned (kind, name, data, updated_at) "
                        "VALUES (?, ?, ?, coalesce(?, 0)) ON CONFLICT (kind, name) "
                        "DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at",
                        (action.kind, action.name, json.dumps(asdict(action.learned)), now),
                    )
        return CommitResult(
            placed=tuple(tally.placed),
            local_cancels=tuple(tally.local),
            remote_cancels=tuple(tally.remote),
            unknown_cancels=tuple(tally.unknown),
            released=tuple(tally.released),
            # A held order needs no sender yet; its release is a batch of its own.
            wake_sender=bool(tally.to_send or tally.remote or tally.released),
        )

    @staticmethod
    def _place(c: sqlite3.Connection, intent: PlaceOrder, tally: _Tally) -> None:
        held = intent.hold_until is not None
        cursor = c.execute(
            "INSERT OR IGNORE INTO orders (key, gateway, shop, product, sku, quantity, device, "
            "trigger, event_id, state, attempts, next_attempt_at, hold_until, created_at, "
            "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?)",
            (
                intent.key,
                intent.gateway,
                intent.shop,
                intent.product,
                intent.sku,
                intent.quantity,
                intent.device,
                intent.trigger,
                intent.event_id,
                OrderState.HELD if held else OrderState.QUEUED,
                intent.hold_until if held else intent.created_at,
                intent.hold_until,
                intent.created_at,
                intent.created_at,
            ),
        )
        if cursor.rowcount:
            tally.placed.append(intent.key)
            tally.to_send += 0 if held else 1

    @staticmethod
    def _cancel(c: sqlite3.Connection, key: str, now: float | None, tally: _Tally) -> None:
        # The plan is the core's rule, judged on the row as it is now, inside this
        # transaction: the sender may have claimed the order a moment ago.
        found = c.execute("SELECT state, attempts FROM orders WHERE key = ?", (key,)).fetchone()
        state = OrderState(found["state"]) if found else None
        plan = cancel_plan(state, int(found["attempts"]) if found else 0)
        if plan is CancelPlan.LOCAL:
            c.execute(
                "UPDATE orders SET state = ?, cancel_requested = 0, "
                "updated_at = coalesce(?, updated_at) WHERE key = ?",
                (OrderState.CANCELLED, now, key),
            )
            tally.local.append(key)
        elif plan is CancelPlan.AT_SHOP:
            # Due at once: an order already at the shop is cancelled right away.
            c.execute(
                "UPDATE orders SET cancel_requested = 1, next_attempt_at = 0 WHERE key = ?", (key,)
            )
            tally.remote.append(key)
        elif plan in (CancelPlan.AFTER_RESEND, CancelPlan.AFTER_ANSWER):
            # Sent again on its schedule (or answered first), then cancelled at the shop.
            c.execute("UPDATE orders SET cancel_requested = 1 WHERE key = ?", (key,))
            tally.remote.append(key)
        else:
            tally.unknown.append(key)

    @staticmethod
    def _release(c: sqlite3.Connection, key: str, now: float | None, tally: _Tally) -> None:
        cursor = c.execute(
            # A confirmed order leaves now, before its hold_until (its expiry).
            "UPDATE orders SET state = ?, "
            "next_attempt_at = min(hold_until, coalesce(?, hold_until)), "
            "updated_at = coalesce(?, updated_at) WHERE key = ? AND state = ?",
            (OrderState.QUEUED, now, now, key, OrderState.HELD),
        )
        if cursor.rowcount:
            tally.released.append(key)

    def record_price(self, key: str, price: Price) -> None:
        """What the shop said the order costs (its accept answer), for status and reports."""
        with self._tx() as c:
            c.execute(
                "UPDATE orders SET price_currency = ?, price_total = ?, price_unit = ? "
                "WHERE key = ?",
                (price.currency, price.total_minor, price.unit_minor, key),
            )

    # ------------------------------------------------------------------ maintenance

    def requeue(self, key: str, now: float) -> bool:
        """A rejected or blocked order goes back to the queue, attempts reset."""
        with self._tx() as c:
            cursor = c.execute(
                "UPDATE orders SET state = ?, attempts = 0, next_attempt_at = ?, "
                "last_error = NULL, updated_at = ? WHERE key = ? AND state IN (?, ?)",
                (OrderState.QUEUED, now, now, key, OrderState.REJECTED, OrderState.BLOCKED),
            )
        return cursor.rowcount == 1

    def delete(self, key: str, *, even_if_sent: bool = False) -> bool:
        """Remove an order that is neither on the wire nor at the shop, and (unless
        ``even_if_sent``) was never sent: an unanswered request may have placed it."""
        with self._tx() as c:
            cursor = c.execute(
                f"DELETE FROM orders WHERE key = ? AND state NOT IN {marks(NOT_HERE)} "  # noqa: S608
                f"AND (attempts = 0 OR state IN {marks(FINAL)} OR ?)",
                (key, *NOT_HERE, *FINAL, int(even_if_sent)),
            )
        return cursor.rowcount == 1

    def prune(self, now: float, dedupe_retention: float, history_retention: float) -> int:
        """Forget old event ids and old finished orders; returns rows removed."""
        with self._tx() as c:
            seen = c.execute(
                "DELETE FROM seen_events WHERE seen_at < ?", (now - dedupe_retention,)
            ).rowcount
            # A window is seconds long; a day-old entry can never matter again.
            seen += c.execute("DELETE FROM recent_actions WHERE at < ?", (now - 86_400.0,)).rowcount
            done = c.execute(
                f"DELETE FROM orders WHERE state IN {marks(FINAL)} AND updated_at < ?",  # noqa: S608
                (*FINAL, now - history_retention),
            ).rowcount
            # A sensor or product gone from the config stops being updated.
            forgotten = c.execute(
                "DELETE FROM learned WHERE updated_at < ?", (now - history_retention,)
            ).rowcount
        return int(seen) + int(done) + int(forgotten)
