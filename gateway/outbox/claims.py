"""The sender's side of the outbox: claim the next order, apply the policy's change.

Nothing here decides: :mod:`gateway.core.retry` says what happens after each
answer, and :meth:`SenderClaims.apply` writes it. The one thing read here in the
same transaction as the write is what another thread may have changed meanwhile
(a cancel requested by the core), so the two cannot cross.

>>> import tempfile
>>> claims = SenderClaims.open(tempfile.mkdtemp())
>>> claims.claim_next(0.0) is None
True
>>> claims.close()
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace
from typing import assert_never

from gateway.core.events import OrderState
from gateway.core.lifecycle import SHOP_STATES, advance
from gateway.core.retry import Accept, Change, KeepOrder, Reject, Repoll, Reschedule, SetStatus
from gateway.outbox.schema import AT_SHOP, marks
from gateway.outbox.views import COLUMNS, OrderRow, OrderViews, order_row


class SenderClaims(OrderViews):
    """Claims and progress, written by the sender's own connection."""

    def claim_next(
        self, now: float, exclude: Collection[str] = (), skip_shops: Collection[str] = ()
    ) -> OrderRow | None:
        """Take the oldest due order to send: it moves to ``sending``, attempts + 1.

        ``skip_shops``: shops not to take an order for now (their gate is closed, or
        they have as many requests on the wire as they may): the others go on.

        A row found in ``sending`` and not in ``exclude`` (the keys this sender has on
        the wire) was left by a crash mid-request: it is due at once and goes out again
        with the same key and intent.
        """
        busy, skipped = tuple(exclude), tuple(skip_shops)
        with self._tx() as c:
            found = c.execute(
                f"SELECT {COLUMNS} FROM orders WHERE shop NOT IN {marks(skipped)} "  # noqa: S608
                f"AND ((state = ? AND key NOT IN {marks(busy)}) "
                "OR (state IN (?, ?) AND next_attempt_at <= ?)) ORDER BY seq LIMIT 1",
                (*skipped, OrderState.SENDING, *busy, OrderState.QUEUED, OrderState.BLOCKED, now),
            ).fetchone()
            if found is None:
                return None
            c.execute(
                "UPDATE orders SET state = ?, attempts = attempts + 1, updated_at = ? "
                "WHERE key = ?",
                (OrderState.SENDING, now, found["key"]),
            )
        claimed = order_row(found)
        return replace(
            claimed, state=OrderState.SENDING, attempts=claimed.attempts + 1, updated_at=now
        )

    def due_followups(self, now: float) -> list[OrderRow]:
        """Orders at the shop whose status poll, or requested cancel, is due."""
        return self._select(
            f"WHERE state IN {marks(AT_SHOP)} AND next_attempt_at <= ? ORDER BY seq",
            (*AT_SHOP, now),
        )

    def apply(self, change: Change, now: float) -> None:
        """Write what the retry policy decided for one order."""
        match change:
            case Accept():
                self.mark_accepted(
                    change.key,
                    change.shop_order_id,
                    now,
                    next_poll_at=change.next_poll_at,
                    cancel_due_at=change.cancel_due_at,
                )
            case Reschedule():
                self.mark_retry(change.key, change.at, change.error, change.state, now=now)
            case Reject():
                self.mark_rejected(change.key, change.reason, now)
            case SetStatus():
                self.mark_status(
                    change.key,
                    change.state,
                    now,
                    next_poll_at=change.next_poll_at,
                    error=change.error,
                )
            case KeepOrder():
                self.clear_cancel_request(change.key, change.reason, now, change.next_poll_at)
            case Repoll():
                self.reschedule(change.key, change.at, change.error)
            case _:
                assert_never(change)

    def mark_accepted(
        self,
        key: str,
        shop_order_id: str,
        now: float,
        *,
        next_poll_at: float | None = None,
        cancel_due_at: float = 0.0,
    ) -> None:
        """The shop has the order. A cancel requested meanwhile makes it due at
        ``cancel_due_at`` instead of at ``next_poll_at``."""
        with self._tx() as c:
            c.execute(
                "UPDATE orders SET state = ?, shop_order_id = ?, last_error = NULL, "
                "next_attempt_at = CASE WHEN cancel_requested THEN ? ELSE ? END, "
                "updated_at = ? WHERE key = ?",
                (
                    OrderState.ACCEPTED,
                    shop_order_id,
                    cancel_due_at,
                    now if next_poll_at is None else next_poll_at,
                    now,
                    key,
                ),
            )

    def mark_retry(
        self,
        key: str,
        next_attempt_at: float,
        error: str,
        state: OrderState = OrderState.QUEUED,
        *,
        now: float | None = None,
    ) -> None:
        """Send again at ``next_attempt_at`` (``state`` is queued, or blocked for 401/403)."""
        if state not in (OrderState.QUEUED, OrderState.BLOCKED):
            raise ValueError(f"mark_retry cannot set state {state}")
        with self._tx() as c:
            c.execute(
                "UPDATE orders SET state = ?, next_attempt_at = ?, last_error = ?, "
                "updated_at = coalesce(?, updated_at) WHERE key = ?",
                (state, next_attempt_at, error, now, key),
            )

    def mark_rejected(self, key: str, reason: str, now: float) -> None:
        """Dead letter: the shop refused the order for good (or it expired)."""
        with self._tx() as c:
            c.execute(
                "UPDATE orders SET state = ?, last_error = ?, cancel_requested = 0, "
                "updated_at = ? WHERE key = ?",
                (OrderState.REJECTED, reason, now, key),
            )

    def mark_status(
        self,
        key: str,
        state: OrderState,
        now: float,
        *,
        next_poll_at: float | None = None,
        error: str | None = None,
    ) -> bool:
        """Record a status the shop reported; True if the order's state changed.

        Only forward moves are applied (:func:`gateway.core.lifecycle.advance`), so a
        stale answer cannot undo progress. Final states clear any cancel request.
        """
        if state not in SHOP_STATES:
            raise ValueError(f"mark_status cannot set state {state}")
        with self._tx() as c:
            found = c.execute("SELECT state FROM orders WHERE key = ?", (key,)).fetchone()
            if found is None:
                return False
            current = OrderState(found["state"])
            moved = advance(current, state)
            new_state = moved if moved is not None else current
            c.execute(
                "UPDATE orders SET state = ?, next_attempt_at = coalesce(?, next_attempt_at), "
                "cancel_requested = CASE WHEN ? THEN 0 ELSE cancel_requested END, "
                "last_error = ?, updated_at = ? WHERE key = ?",
                (new_state, next_poll_at, new_state.is_final, error, now, key),
            )
        return moved is not None

    def clear_cancel_request(self, key: str, reason: str, now: float, next_poll_at: float) -> None:
        """The shop said it is too late to cancel: keep the order, note why."""
        with self._tx() as c:
            c.execute(
                "UPDATE orders SET cancel_requested = 0, last_error = ?, next_attempt_at = ?, "
                "updated_at = ? WHERE key = ?",
                (reason, next_poll_at, now, key),
            )

    def reschedule(self, key: str, next_attempt_at: float, error: str | None = None) -> None:
        """Move an accepted order's next poll/cancel attempt (the shop did not answer)."""
        with self._tx() as c:
            c.execute(
                "UPDATE orders SET next_attempt_at = ?, last_error = coalesce(?, last_error) "
                "WHERE key = ?",
                (next_attempt_at, error, key),
            )

    def release_blocked(self, now: float, shop: str | None = None) -> int:
        """Credentials work again: every blocked order (of ``shop``, if given) is due
        now. Returns how many."""
        where, args = ("", ()) if shop is None else (" AND shop = ?", (shop,))
        with self._tx() as c:
            cursor = c.execute(
                "UPDATE orders SET next_attempt_at = ? WHERE state = ? "  # noqa: S608
                f"AND next_attempt_at > ?{where}",
                (now, OrderState.BLOCKED, now, *args),
            )
        return int(cursor.rowcount)
