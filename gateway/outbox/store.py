"""The durable outbox: the only module that knows the SQLite schema.

Every decided reorder is written here, in the same transaction as the event id that
caused it, *before* anything is acknowledged. The sender drains it. Because the
request body is stored as exact bytes and never rewritten, a row re-sent after a
crash carries the same Idempotency-Key and the same body, which is what lets the
shop recognise it as a replay.

One :class:`Store` per thread: each opens its own connection (WAL lets the core
thread write intents while the sender writes progress).

>>> import tempfile
>>> store = Store.open(tempfile.mkdtemp())
>>> store.queue_depth()
0
>>> store.close()
"""

from __future__ import annotations

import os
import secrets
import sqlite3
import stat
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from pathlib import Path

from gateway.core.events import (
    Action,
    CancelOrder,
    Episode,
    OrderState,
    PlaceOrder,
    RememberEvent,
    SaveEpisode,
)

SCHEMA_VERSION = 1
DB_NAME = "gateway.db"

# States in which the sender still has to talk to the shop to place the order.
_TO_SEND = (OrderState.QUEUED, OrderState.BLOCKED, OrderState.SENDING)
# States in which the shop has the order and the sender follows its status.
_AT_SHOP = (OrderState.ACCEPTED, OrderState.SHIPPED)
_FINAL = tuple(s for s in OrderState if s.is_final)
# An order in these is on the wire or at the shop: deleting the row would not stop it.
_NOT_HERE = (OrderState.SENDING, *_AT_SHOP)
# Not at the shop yet: what the queue depth counts.
_UNSENT = (OrderState.HELD, *_TO_SEND)
# States the sender still has a time for (a send, a retry, a status poll).
_FOLLOWED = (*_TO_SEND, *_AT_SHOP)


def _marks(values: Sequence[object]) -> str:
    """``(?, ?, ?)`` for ``values``: SQL that follows the state sets as they change."""
    return "(" + ", ".join("?" for _ in values) + ")"


# Cancelling these needs no shop as long as no request ever left (attempts = 0).
# Once one did, its answer may have been lost after the shop created the order:
# only the shop can cancel it then (the sender re-sends the same key, the shop
# replays the order id, and the cancel follows).
_LOCAL_CANCEL = (OrderState.HELD, OrderState.QUEUED, OrderState.BLOCKED)
# Status only moves forward; a stale poll answer must not move an order back.
_PROGRESS = {
    OrderState.ACCEPTED: 0,
    OrderState.SHIPPED: 1,
    OrderState.DELIVERED: 2,
    OrderState.CANCELLED: 2,
}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
-- seq is SQLite's rowid (AUTOINCREMENT: never reused, so it is a true arrival order);
-- key is the idempotency key and the order's identity everywhere else.
CREATE TABLE IF NOT EXISTS orders (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    key              TEXT    NOT NULL UNIQUE,
    product          TEXT    NOT NULL,
    sku              TEXT    NOT NULL,
    quantity         INTEGER NOT NULL,
    device           TEXT    NOT NULL,
    trigger          TEXT    NOT NULL,
    event_id         TEXT    NOT NULL,
    body             BLOB    NOT NULL,
    state            TEXT    NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    -- when the sender should next look at the row: send attempt, or status poll
    next_attempt_at  REAL    NOT NULL,
    last_error       TEXT,
    shop_order_id    TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    hold_until       REAL,
    created_at       REAL    NOT NULL,
    updated_at       REAL    NOT NULL
);
CREATE INDEX IF NOT EXISTS orders_due ON orders (state, next_attempt_at);
CREATE INDEX IF NOT EXISTS orders_created ON orders (created_at);
CREATE TABLE IF NOT EXISTS seen_events (
    dedupe_key TEXT PRIMARY KEY,
    seen_at    REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS seen_events_at ON seen_events (seen_at);
CREATE TABLE IF NOT EXISTS episodes (
    sensor         TEXT PRIMARY KEY,
    phase          TEXT NOT NULL,
    below_since    REAL,
    last_value     REAL,
    last_seen      REAL,
    stale_reported INTEGER NOT NULL DEFAULT 0
);
"""

_COLUMNS = (
    "key, seq, product, sku, quantity, device, trigger, event_id, body, state, attempts, "
    "next_attempt_at, last_error, shop_order_id, cancel_requested, hold_until, "
    "created_at, updated_at"
)


class OutboxError(Exception):
    """The outbox cannot be used (base class)."""


class SchemaTooNewError(OutboxError):
    """The database was written by a newer gateway; refusing to guess its meaning."""


class OutboxMissingError(OutboxError):
    """There is no outbox in the state directory (the gateway has not run there)."""


@dataclass(frozen=True)
class OrderRow:
    """One order as stored. ``body`` is the exact request the shop receives."""

    key: str
    seq: int
    product: str
    sku: str
    quantity: int
    device: str
    trigger: str
    event_id: str
    body: bytes
    state: OrderState
    attempts: int
    next_attempt_at: float
    last_error: str | None
    shop_order_id: str | None
    cancel_requested: bool
    hold_until: float | None
    created_at: float
    updated_at: float


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
    wake_sender: bool = False


@dataclass
class _Tally:
    placed: list[str] = field(default_factory=list)
    local: list[str] = field(default_factory=list)
    remote: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)


def _row(values: sqlite3.Row) -> OrderRow:
    return OrderRow(
        key=values["key"],
        seq=values["seq"],
        product=values["product"],
        sku=values["sku"],
        quantity=values["quantity"],
        device=values["device"],
        trigger=values["trigger"],
        event_id=values["event_id"],
        body=bytes(values["body"]),
        state=OrderState(values["state"]),
        attempts=values["attempts"],
        next_attempt_at=values["next_attempt_at"],
        last_error=values["last_error"],
        shop_order_id=values["shop_order_id"],
        cancel_requested=bool(values["cancel_requested"]),
        hold_until=values["hold_until"],
        created_at=values["created_at"],
        updated_at=values["updated_at"],
    )


def _private_dir(path: Path) -> None:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if stat.S_IMODE(path.stat().st_mode) != 0o700:
        path.chmod(0o700)


def _private_file(path: Path) -> None:
    # Create with 0600 before SQLite opens it: SQLite gives its -wal and -shm files
    # the database file's permissions, so this keeps all three private.
    # O_EXCL: an existing database is never opened here. Closing any descriptor of
    # the file drops every POSIX lock this process holds on it, so another process
    # (``reorder-gateway status``, ``queue list``) would take itself for the last
    # connection, checkpoint and delete the WAL under our open connections, and all
    # later commits would go to a deleted file.
    with suppress(FileExistsError):
        os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))
    if stat.S_IMODE(path.stat().st_mode) != 0o600:
        path.chmod(0o600)


class Store:
    """A connection to the outbox. Not shared between threads.

    >>> import tempfile
    >>> s = Store.open(tempfile.mkdtemp())
    >>> len(s.secret())
    32
    >>> s.close()
    """

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self.path = path

    # ------------------------------------------------------------------ lifecycle

    @classmethod
    def open(cls, state_dir: str | Path, *, create: bool = True, durable: bool = True) -> Store:
        """Open (and with ``create``, create) ``state_dir/gateway.db``.

        ``durable=False`` is for connections whose writes can be redone after a
        power cut (the sender's progress, see :mod:`gateway.engine.sender`): their commits
        skip the fsync, the database stays consistent either way.
        """
        directory = Path(state_dir)
        path = directory / DB_NAME
        if not create and not path.exists():
            raise OutboxMissingError(f"no outbox at {path}")
        if create:
            _private_dir(directory)
            _private_file(path)
        # A Store is used by one thread at a time, but it may be opened by another
        # (the daemon opens the core's store before the core thread starts).
        conn = sqlite3.connect(path, timeout=10.0, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        try:
            conn.execute("PRAGMA busy_timeout = 10000")
            conn.execute("PRAGMA journal_mode = WAL")
            # FULL: a commit that returned survives a power cut. The order intent is
            # the one thing this gateway must never lose. NORMAL (in WAL mode) keeps
            # every commit atomic and the file consistent, but the newest commits may
            # roll back after a power cut; a later FULL commit on any connection
            # fsyncs the shared WAL, earlier NORMAL frames included.
            conn.execute(f"PRAGMA synchronous = {'FULL' if durable else 'NORMAL'}")
            conn.execute("PRAGMA foreign_keys = ON")
            store = cls(conn, path)
            store._migrate()
        except BaseException:
            conn.close()
            raise
        return store

    def close(self) -> None:
        self._conn.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        # IMMEDIATE takes the write lock up front, so two writers queue on
        # busy_timeout instead of failing halfway through with SQLITE_BUSY.
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def _migrate(self) -> None:
        with self._tx() as c:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    c.execute(statement)
            found = c.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            if found is None:
                c.execute(
                    "INSERT INTO meta (key, value) VALUES ('schema_version', ?)",
                    (str(SCHEMA_VERSION),),
                )
            elif int(found["value"]) > SCHEMA_VERSION:
                raise SchemaTooNewError(
                    f"{self.path} has schema version {found['value']}, this gateway knows "
                    f"{SCHEMA_VERSION} — upgrade the gateway"
                )

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

    def commit(
        self,
        actions: Sequence[Action],
        body_for: Callable[[PlaceOrder], bytes],
        *,
        now: float | None = None,
    ) -> CommitResult:
        """Apply all durable actions in ONE transaction; others are ignored.

        Bodies are built before the transaction starts, so a failing ``body_for``
        leaves the database untouched. ``now`` stamps local cancels; without it the
        latest time found in the batch (event or intent) is used.
        """
        bodies = {a.key: body_for(a) for a in actions if isinstance(a, PlaceOrder)}
        if now is None:
            times = [a.at for a in actions if isinstance(a, RememberEvent)]
            times += [a.created_at for a in actions if isinstance(a, PlaceOrder)]
            now = max(times, default=None)
        tally = _Tally()
        with self._tx() as c:
            for action in actions:
                if isinstance(action, PlaceOrder):
                    self._place(c, action, bodies[action.key], tally)
                elif isinstance(action, CancelOrder):
                    self._cancel(c, action.key, now, tally)
                elif isinstance(action, RememberEvent):
                    c.execute(
                        "INSERT OR IGNORE INTO seen_events (dedupe_key, seen_at) VALUES (?, ?)",
                        (action.dedupe_key, action.at),
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
        return CommitResult(
            placed=tuple(tally.placed),
            local_cancels=tuple(tally.local),
            remote_cancels=tuple(tally.remote),
            unknown_cancels=tuple(tally.unknown),
            # A held order needs no sender yet, but its hold_until is a new wake-up time.
            wake_sender=bool(tally.placed or tally.remote),
        )

    @staticmethod
    def _place(c: sqlite3.Connection, intent: PlaceOrder, body: bytes, tally: _Tally) -> None:
        held = intent.hold_until is not None
        cursor = c.execute(
            "INSERT OR IGNORE INTO orders (key, product, sku, quantity, device, trigger, "
            "event_id, body, state, attempts, next_attempt_at, hold_until, created_at, "
            "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?)",
            (
                intent.key,
                intent.product,
                intent.sku,
                intent.quantity,
                intent.device,
                intent.trigger,
                intent.event_id,
                body,
                OrderState.HELD if held else OrderState.QUEUED,
                intent.hold_until if held else intent.created_at,
                intent.hold_until,
                intent.created_at,
                intent.created_at,
            ),
        )
        if cursor.rowcount:
            tally.placed.append(intent.key)

    @staticmethod
    def _cancel(c: sqlite3.Connection, key: str, now: float | None, tally: _Tally) -> None:
        found = c.execute("SELECT state, attempts FROM orders WHERE key = ?", (key,)).fetchone()
        state = OrderState(found["state"]) if found else None
        never_sent = found is not None and int(found["attempts"]) == 0
        if state in _LOCAL_CANCEL and not never_sent:
            c.execute("UPDATE orders SET cancel_requested = 1 WHERE key = ?", (key,))
            tally.remote.append(key)
        elif state in _LOCAL_CANCEL:
            c.execute(
                "UPDATE orders SET state = ?, cancel_requested = 0, "
                "updated_at = coalesce(?, updated_at) WHERE key = ?",
                (OrderState.CANCELLED, now, key),
            )
            tally.local.append(key)
        elif state in (OrderState.SENDING, *_AT_SHOP):
            # next_attempt_at = 0: an order already at the shop is cancelled right away;
            # one on the wire is cancelled as soon as the shop's answer is in.
            c.execute(
                "UPDATE orders SET cancel_requested = 1, next_attempt_at = "
                "CASE WHEN state = ? THEN next_attempt_at ELSE 0 END WHERE key = ?",
                (OrderState.SENDING, key),
            )
            tally.remote.append(key)
        else:
            tally.unknown.append(key)

    def is_seen(self, dedupe_key: str) -> bool:
        found = self._conn.execute(
            "SELECT 1 FROM seen_events WHERE dedupe_key = ?", (dedupe_key,)
        ).fetchone()
        return found is not None

    def episodes(self) -> dict[str, Episode]:
        rows = self._conn.execute("SELECT * FROM episodes").fetchall()
        return {
            r["sensor"]: Episode(
                phase=r["phase"],
                below_since=r["below_since"],
                last_value=r["last_value"],
                last_seen=r["last_seen"],
                stale_reported=bool(r["stale_reported"]),
            )
            for r in rows
        }

    # ------------------------------------------------------------------ queries

    def _select(self, where: str, params: Sequence[object] = ()) -> list[OrderRow]:
        rows = self._conn.execute(f"SELECT {_COLUMNS} FROM orders {where}", params)  # noqa: S608
        return [_row(r) for r in rows.fetchall()]

    def get(self, key: str) -> OrderRow | None:
        found = self._select("WHERE key = ?", (key,))
        return found[0] if found else None

    def find_prefix(self, prefix: str) -> list[OrderRow]:
        """Orders whose key starts with ``prefix`` (for the queue CLI)."""
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return self._select("WHERE key LIKE ? ESCAPE '\\' ORDER BY seq", (escaped + "%",))

    def open_orders(self) -> list[OrderRow]:
        return self._select(f"WHERE state NOT IN {_marks(_FINAL)} ORDER BY seq", _FINAL)

    def orders_since(self, t: float) -> list[OrderRow]:
        """Orders created at or after ``t``, in any state (the caller judges caps)."""
        return self._select("WHERE created_at >= ? ORDER BY seq", (t,))

    def list_orders(self, limit: int = 100) -> list[OrderRow]:
        """Newest first."""
        return self._select("ORDER BY seq DESC LIMIT ?", (limit,))

    def queue_depth(self) -> int:
        """Orders that have not reached the shop yet (held, queued, sending, blocked)."""
        found = self._conn.execute(
            f"SELECT count(*) FROM orders WHERE state IN {_marks(_UNSENT)}",  # noqa: S608
            _UNSENT,
        ).fetchone()
        return int(found[0])

    def count_by_state(self) -> dict[OrderState, int]:
        """How many orders the outbox holds in each state (metrics, status)."""
        rows = self._conn.execute("SELECT state, count(*) FROM orders GROUP BY state")
        return {OrderState(state): int(n) for state, n in rows.fetchall()}

    def oldest_queued_age(self, now: float) -> float | None:
        found = self._conn.execute(
            f"SELECT min(created_at) FROM orders WHERE state IN {_marks(_TO_SEND)}",  # noqa: S608
            _TO_SEND,
        ).fetchone()
        return None if found[0] is None else max(0.0, now - float(found[0]))

    # ------------------------------------------------------------------ sender side

    def claim_next(self, now: float) -> OrderRow | None:
        """Take the oldest due order to send: it moves to ``sending``, attempts + 1.

        Held orders whose confirm window has passed become queued first. A row found
        in ``sending`` was left by a crash mid-request: it is due at once and goes out
        again with the same key and body.
        """
        with self._tx() as c:
            c.execute(
                "UPDATE orders SET state = ?, next_attempt_at = hold_until, updated_at = ? "
                "WHERE state = ? AND hold_until <= ?",
                (OrderState.QUEUED, now, OrderState.HELD, now),
            )
            found = c.execute(
                f"SELECT {_COLUMNS} FROM orders WHERE state = ? "  # noqa: S608
                "OR (state IN (?, ?) AND next_attempt_at <= ?) ORDER BY seq LIMIT 1",
                (OrderState.SENDING, OrderState.QUEUED, OrderState.BLOCKED, now),
            ).fetchone()
            if found is None:
                return None
            c.execute(
                "UPDATE orders SET state = ?, attempts = attempts + 1, updated_at = ? "
                "WHERE key = ?",
                (OrderState.SENDING, now, found["key"]),
            )
        claimed = _row(found)
        return replace(
            claimed, state=OrderState.SENDING, attempts=claimed.attempts + 1, updated_at=now
        )

    def due_followups(self, now: float) -> list[OrderRow]:
        """Orders at the shop whose status poll, or requested cancel, is due."""
        return self._select(
            "WHERE state IN (?, ?) AND next_attempt_at <= ? ORDER BY seq", (*_AT_SHOP, now)
        )

    def mark_accepted(
        self, key: str, shop_order_id: str, now: float, *, next_poll_at: float | None = None
    ) -> None:
        """The shop has the order. A cancel requested meanwhile stays due at once."""
        with self._tx() as c:
            c.execute(
                "UPDATE orders SET state = ?, shop_order_id = ?, last_error = NULL, "
                "next_attempt_at = CASE WHEN cancel_requested THEN 0 ELSE ? END, "
                "updated_at = ? WHERE key = ?",
                (
                    OrderState.ACCEPTED,
                    shop_order_id,
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

        Only forward moves are applied (accepted -> shipped -> delivered/cancelled),
        so a stale answer cannot undo progress. Final states clear any cancel request.
        """
        if state not in _PROGRESS:
            raise ValueError(f"mark_status cannot set state {state}")
        with self._tx() as c:
            found = c.execute("SELECT state FROM orders WHERE key = ?", (key,)).fetchone()
            if found is None:
                return False
            current = OrderState(found["state"])
            changed = current in _PROGRESS and _PROGRESS[state] > _PROGRESS[current]
            new_state = state if changed else current
            c.execute(
                "UPDATE orders SET state = ?, next_attempt_at = coalesce(?, next_attempt_at), "
                "cancel_requested = CASE WHEN ? THEN 0 ELSE cancel_requested END, "
                "last_error = ?, updated_at = ? WHERE key = ?",
                (new_state, next_poll_at, new_state.is_final, error, now, key),
            )
        return changed

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

    def release_blocked(self, now: float) -> int:
        """Credentials work again: every blocked order is due now. Returns how many."""
        with self._tx() as c:
            cursor = c.execute(
                "UPDATE orders SET next_attempt_at = ? WHERE state = ? AND next_attempt_at > ?",
                (now, OrderState.BLOCKED, now),
            )
        return int(cursor.rowcount)

    def next_wakeup(self) -> float | None:
        """The earliest time the sender has something to do, or None if nothing is pending."""
        found = self._conn.execute(
            "SELECT min(t) FROM ("  # noqa: S608  (placeholders only, built by _marks)
            f" SELECT min(next_attempt_at) AS t FROM orders WHERE state IN {_marks(_FOLLOWED)}"
            " UNION ALL SELECT min(hold_until) FROM orders WHERE state = ?)",
            (*_FOLLOWED, OrderState.HELD),
        ).fetchone()
        return None if found[0] is None else float(found[0])

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
                f"DELETE FROM orders WHERE key = ? AND state NOT IN {_marks(_NOT_HERE)} "  # noqa: S608
                f"AND (attempts = 0 OR state IN {_marks(_FINAL)} OR ?)",
                (
                    key,
                    *_NOT_HERE,
                    *_FINAL,
                    int(even_if_sent),
                ),
            )
        return cursor.rowcount == 1

    def prune(self, now: float, dedupe_retention: float, history_retention: float) -> int:
        """Forget old event ids and old finished orders; returns rows removed."""
        with self._tx() as c:
            seen = c.execute(
                "DELETE FROM seen_events WHERE seen_at < ?", (now - dedupe_retention,)
            ).rowcount
            done = c.execute(
                f"DELETE FROM orders WHERE state IN {_marks(_FINAL)} AND updated_at < ?",  # noqa: S608
                (*_FINAL, now - history_retention),
            ).rowcount
        return int(seen) + int(done)
