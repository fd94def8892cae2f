"""The reference shop's durable state: orders, idempotency records, counters.

One SQLite database (WAL, ``synchronous=FULL``), one connection guarded by one
lock: the shop is a test double, and serialising its writes is what makes the
idempotency rules easy to see correct. An order and the idempotency record that
answers for it are written in the same transaction, so a crash can never leave
one without the other.

>>> import tempfile, pathlib
>>> store = ShopStore(pathlib.Path(tempfile.mkdtemp()) / "shop.db", Lifecycle(60, 60))
>>> store.begin("k1", "fp") is None  # claimed: nobody has used k1 yet
True
>>> store.close()
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from firmware_sim.shop.requests import ApiError, OrderRequest
from gateway.clock import rfc3339

CURRENCY = "EUR"
"""The currency of the catalog's cents."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    sku TEXT NOT NULL,
    quantity INTEGER NOT NULL,
    source TEXT NOT NULL,
    created_at TEXT NOT NULL,
    placed_at REAL NOT NULL,
    status TEXT NOT NULL,
    updated_at REAL NOT NULL,
    idempotency_key TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS orders_by_sku ON orders (sku);
CREATE TABLE IF NOT EXISTS idempotency (
    key TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    status INTEGER NOT NULL,
    body TEXT NOT NULL,
    stored_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
"""

_SELECT = "SELECT seq, sku, quantity, source, created_at, placed_at, status, updated_at FROM orders"
_BY_SEQ = _SELECT + " WHERE seq = ?"
_BY_SKU = _SELECT + " WHERE sku = ? ORDER BY seq"
_ALL = _SELECT + " ORDER BY seq"

# Statuses only move forward along this order; "cancelled" leaves it for good.
_PROGRESS = {"accepted": 0, "shipped": 1, "delivered": 2}


class StoreClosedError(RuntimeError):
    """The shop is shutting down; the request was not carried out."""


@dataclass(frozen=True)
class Lifecycle:
    """How long an accepted order takes to ship, and then to be delivered (seconds)."""

    ship_after: float
    deliver_after: float

    def status_at(self, placed_at: float, now: float) -> tuple[str, float]:
        """The status due at ``now`` and the time it became due."""
        shipped_at = placed_at + self.ship_after
        delivered_at = shipped_at + self.deliver_after
        if now >= delivered_at:
            return "delivered", delivered_at
        if now >= shipped_at:
            return "shipped", shipped_at
        return "accepted", placed_at


@dataclass(frozen=True)
class StoredResponse:
    """The first answer given for an idempotency key, replayed for every retry."""

    status: int
    body: dict[str, Any]


def order_id(seq: int) -> str:
    return f"ord_{seq}"


class ShopStore:
    """Orders and idempotency records in SQLite; keys being processed in memory."""

    def __init__(self, path: Path, lifecycle: Lifecycle) -> None:
        self.path = Path(path)
        self.lifecycle = lifecycle
        _create_private(self.path)
        self._lock = threading.Lock()
        self._in_flight: set[str] = set()
        self._db: sqlite3.Connection | None = sqlite3.connect(
            self.path, check_same_thread=False, isolation_level=None
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise StoreClosedError("the shop is shutting down")
        return self._db

    # ------------------------------------------------------------------ idempotency

    def begin(self, key: str, fingerprint: str) -> StoredResponse | None:
        """Claim ``key`` for a new request, or return the stored answer to replay.

        Raises 422 when the key was used with a different body, 409 while another
        request with the key is still being processed.
        """
        with self._lock:
            row = (
                self._conn()
                .execute("SELECT fingerprint, status, body FROM idempotency WHERE key = ?", (key,))
                .fetchone()
            )
            if row is not None:
                if row[0] != fingerprint:
                    raise ApiError(
                        422,
                        "idempotency_key_reused",
                        "this Idempotency-Key was already used with a different request body; "
                        "use a new key for a new order",
                    )
                return StoredResponse(status=int(row[1]), body=json.loads(row[2]))
            if key in self._in_flight:
                raise ApiError(
                    409,
                    "request_in_progress",
                    "a request with this Idempotency-Key is still being processed; retry later",
                    {"Retry-After": "1"},
                )
            self._in_flight.add(key)
            return None

    def release(self, key: str) -> None:
        """Give up a claim without storing an answer (the client may retry)."""
        with self._lock:
            self._in_flight.discard(key)

    def create_order(
        self, key: str, order: OrderRequest, placed_at: float, unit_price_cents: int = 0
    ) -> StoredResponse:
        """Insert the order and its idempotency record in one transaction. The answer
        carries the price, so that a replay shows the same price as the first answer."""
        with self._lock:
            try:
                with _transaction(self._conn()) as db:
                    cursor = db.execute(
                        "INSERT INTO orders (sku, quantity, source, created_at, placed_at, status,"
                        " updated_at, idempotency_key) VALUES (?, ?, ?, ?, ?, 'accepted', ?, ?)",
                        (
                            order.sku,
                            order.quantity,
                            json.dumps(order.source),
                            order.created_at,
                            placed_at,
                            placed_at,
                            key,
                        ),
                    )
                    seq = cursor.lastrowid
                    assert seq is not None
                    body = {
                        "id": order_id(seq),
                        "status": "accepted",
                        "sku": order.sku,
                        "quantity": order.quantity,
                        "source": order.source,
                        "created_at": order.created_at,
                        "currency": CURRENCY,
                        "unit_price_cents": unit_price_cents,
                        "total_cents": unit_price_cents * order.quantity,
                    }
                    self._remember(db, key, order.fingerprint, 201, body, placed_at)
            finally:
                self._in_flight.discard(key)
            return StoredResponse(201, body)

    def store_answer(
        self, key: str, fingerprint: str, answer: StoredResponse, at: float
    ) -> StoredResponse:
        """Store a deterministic non-order answer (404 unknown SKU) for replay."""
        with self._lock:
            try:
                with _transaction(self._conn()) as db:
                    self._remember(db, key, fingerprint, answer.status, answer.body, at)
            finally:
                self._in_flight.discard(key)
            return answer

    @staticmethod
    def _remember(
        db: sqlite3.Connection,
        key: str,
        fingerprint: str,
        status: int,
        body: dict[str, Any],
        at: float,
    ) -> None:
        db.execute(
            "INSERT INTO idempotency (key, fingerprint, status, body, stored_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (key, fingerprint, status, json.dumps(body), at),
        )

    def in_flight(self) -> int:
        with self._lock:
            return len(self._in_flight)

    # ------------------------------------------------------------------ orders

    def get_order(self, seq: int, now: float) -> dict[str, Any] | None:
        with self._lock:
            rows = self._select(_BY_SEQ, (seq,))
            return self._advance(rows, now)[0] if rows else None

    def list_orders(self, now: float, sku: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._select(_BY_SKU, (sku,)) if sku else self._select(_ALL, ())
            return self._advance(rows, now)

    def cancel(self, seq: int, now: float) -> tuple[dict[str, Any] | None, bool]:
        """``(order, cancelled)``: ``(None, False)`` unknown; ``cancelled`` False if too late."""
        with self._lock:
            rows = self._select(_BY_SEQ, (seq,))
            if not rows:
                return None, False
            order = self._advance(rows, now)[0]
            if order["status"] == "cancelled":
                return order, True
            if order["status"] != "accepted":
                return order, False
            db = self._conn()
            db.execute(
                "UPDATE orders SET status = 'cancelled', updated_at = ? WHERE seq = ?", (now, seq)
            )
            order.update(status="cancelled", updated_at=rfc3339(now))
            return order, True

    def count_orders(self) -> int:
        with self._lock:
            return int(self._conn().execute("SELECT COUNT(*) FROM orders").fetchone()[0])

    def _select(self, sql: str, args: tuple[object, ...]) -> list[tuple[Any, ...]]:
        return list(self._conn().execute(sql, args).fetchall())

    def _advance(self, rows: list[tuple[Any, ...]], now: float) -> list[dict[str, Any]]:
        """Represent rows, persisting any status transition that is now due.

        Statuses never move backwards, even if a restarted scaled clock reads
        earlier than the one that reported the later status.
        """
        db = self._conn()
        orders: list[dict[str, Any]] = []
        changes: list[tuple[str, float, int]] = []
        for seq, sku, quantity, source, created_at, placed_at, stored, stored_at in rows:
            status, updated_at = stored, stored_at
            if stored in _PROGRESS:
                due, since = self.lifecycle.status_at(placed_at, now)
                if _PROGRESS[due] > _PROGRESS[stored]:
                    status, updated_at = due, since
                    changes.append((due, since, seq))
            orders.append(
                {
                    "id": order_id(seq),
                    "status": status,
                    "sku": sku,
                    "quantity": quantity,
                    "source": json.loads(source),
                    "created_at": created_at,
                    "updated_at": rfc3339(updated_at),
                }
            )
        if changes:
            with _transaction(db):
                db.executemany(
                    "UPDATE orders SET status = ?, updated_at = ? WHERE seq = ?", changes
                )
        return orders

    # ------------------------------------------------------------------ counters

    def bump(self, name: str) -> None:
        with self._lock:
            self._conn().execute(
                "INSERT INTO counters (name, value) VALUES (?, 1)"
                " ON CONFLICT (name) DO UPDATE SET value = value + 1",
                (name,),
            )

    def counters(self) -> dict[str, int]:
        with self._lock:
            rows = self._conn().execute("SELECT name, value FROM counters").fetchall()
            return {str(name): int(value) for name, value in rows}


@contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One explicit write transaction (the connection runs in autocommit mode)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _create_private(path: Path) -> None:
    """Parent directory 0700 and database file 0600 when we create them.

    SQLite gives the -wal and -shm files the database file's permissions.
    """
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    os.close(fd)
