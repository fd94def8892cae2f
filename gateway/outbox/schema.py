"""The one SQL schema of the outbox, its migrations, and how a connection is opened.

Every other module of :mod:`gateway.outbox` works through :class:`Connection`;
nothing outside the package sees SQLite: its errors become
:class:`OutboxUnavailableError` here, at the boundary.

>>> import tempfile
>>> conn = Connection.open(tempfile.mkdtemp())
>>> conn.schema_version()
3
>>> conn.close()
"""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Self

from gateway.core.events import DEFAULT_SHOP, OrderState
from gateway.errors import (
    OutboxMissingError,
    OutboxUnavailableError,
    SchemaTooNewError,
)

SCHEMA_VERSION = 3
DB_NAME = "gateway.db"

# States in which the sender still has to talk to the shop to place the order.
TO_SEND = (OrderState.QUEUED, OrderState.BLOCKED, OrderState.SENDING)
# States in which the shop has the order and the sender follows its status.
AT_SHOP = (OrderState.ACCEPTED, OrderState.SHIPPED)
FINAL = tuple(s for s in OrderState if s.is_final)
# An order in these is on the wire or at the shop: deleting the row would not stop it.
NOT_HERE = (OrderState.SENDING, *AT_SHOP)
# Not at the shop yet: what the queue depth counts.
UNSENT = (OrderState.HELD, *TO_SEND)
# States the sender still has a time for (a send, a retry, a status poll).
FOLLOWED = (*TO_SEND, *AT_SHOP)


def marks(values: Sequence[object]) -> str:
    """``(?, ?, ?)`` for ``values``: SQL that follows the state sets as they change."""
    return "(" + ", ".join("?" for _ in values) + ")"


_ORDERS = """
CREATE TABLE IF NOT EXISTS orders (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    key              TEXT    NOT NULL UNIQUE,
    gateway          TEXT    NOT NULL,
    -- the configured shop (config ``shops:``) the sender places it with
    shop             TEXT    NOT NULL,
    product          TEXT    NOT NULL,
    sku              TEXT    NOT NULL,
    quantity         INTEGER NOT NULL,
    device           TEXT    NOT NULL,
    trigger          TEXT    NOT NULL,
    event_id         TEXT    NOT NULL,
    state            TEXT    NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    -- when the sender should next look at the row: send attempt, or status poll
    next_attempt_at  REAL    NOT NULL,
    last_error       TEXT,
    shop_order_id    TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    hold_until       REAL,
    created_at       REAL    NOT NULL,
    updated_at       REAL    NOT NULL,
    -- what the shop said the order costs (minor units), for shops that say
    price_currency   TEXT,
    price_total      INTEGER,
    price_unit       INTEGER
)"""

# seq is SQLite's rowid (AUTOINCREMENT: never reused, so it is a true arrival order);
# key is the idempotency key and the order's identity everywhere else. The columns
# from gateway to created_at are the order intent, complete: every shop backend
# builds its requests from them alone.
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
{_ORDERS};
CREATE INDEX IF NOT EXISTS orders_due ON orders (state, next_attempt_at);
CREATE INDEX IF NOT EXISTS orders_created ON orders (created_at);
CREATE TABLE IF NOT EXISTS seen_events (
    dedupe_key TEXT PRIMARY KEY,
    seen_at    REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS seen_events_at ON seen_events (seen_at);
-- When each (device, action) of an id-less family last acted: the dedupe window,
-- kept across restarts. One row per device and action, so it stays small.
CREATE TABLE IF NOT EXISTS recent_actions (
    window_key TEXT PRIMARY KEY,
    at         REAL NOT NULL
);
-- Each button whose event ids count since its boot (Shelly Gen1): its boot number,
-- by which its ids are named (gateway.core.boots), the last count seen
-- and whether it connected since (gateway.core.events.BootCount). Version 3.
CREATE TABLE IF NOT EXISTS device_boots (
    device     TEXT PRIMARY KEY,
    boot       INTEGER NOT NULL,
    last_count INTEGER,
    connected  INTEGER NOT NULL,
    at         REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS episodes (
    sensor         TEXT PRIMARY KEY,
    phase          TEXT NOT NULL,
    below_since    REAL,
    last_value     REAL,
    last_seen      REAL,
    stale_reported INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS learned (
    kind       TEXT NOT NULL,  -- usage (per sensor), lead (per product), interval (per product)
    name       TEXT NOT NULL,
    data       TEXT NOT NULL,  -- JSON of gateway.core.forecast's dataclass
    updated_at REAL NOT NULL,
    PRIMARY KEY (kind, name)
);
"""

# Version 1 stored the Reorder API's request body instead of the intent. Its
# source.gateway is the one field the other columns did not hold; the body itself is
# rebuilt from the intent byte for byte (same fields, same formatting). Version 1
# knew one shop, the single ``commerce:`` section: its orders go to DEFAULT_SHOP.
_V1_TO_V2 = (
    _ORDERS.replace("IF NOT EXISTS orders", "orders_v2")  # noqa: S608  (constants only)
    + f""";
INSERT INTO orders_v2 (seq, key, gateway, shop, product, sku, quantity, device, trigger,
    event_id, state, attempts, next_attempt_at, last_error, shop_order_id,
    cancel_requested, hold_until, created_at, updated_at)
  SELECT seq, key, coalesce(json_extract(body, '$.source.gateway'), ''), '{DEFAULT_SHOP}',
    product, sku, quantity, device, trigger, event_id, state, attempts, next_attempt_at,
    last_error, shop_order_id, cancel_requested, hold_until, created_at, updated_at
  FROM orders;
DROP TABLE orders;
ALTER TABLE orders_v2 RENAME TO orders;
CREATE INDEX IF NOT EXISTS orders_due ON orders (state, next_attempt_at);
CREATE INDEX IF NOT EXISTS orders_created ON orders (created_at);
"""  # noqa: S608  (constants only)
)


@contextmanager
def translated(what: str) -> Iterator[None]:
    """SQLite's and the file system's errors, as the outbox's own."""
    try:
        yield
    except sqlite3.Error as exc:
        raise OutboxUnavailableError(f"{what}: {exc}") from exc
    except OSError as exc:
        raise OutboxUnavailableError(f"{what}: {exc.strerror or exc}") from exc


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


class Connection:
    """One SQLite connection to the outbox, used by one thread at a time."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self.path = path

    @classmethod
    def open(cls, state_dir: str | Path, *, create: bool = True, durable: bool = True) -> Self:
        """Open (and with ``create``, create) ``state_dir/gateway.db``.

        ``durable=False`` is for connections whose writes can be redone after a
        power cut (the sender's progress, see :mod:`gateway.engine.sender`): their
        commits skip the fsync, the database stays consistent either way.
        """
        directory = Path(state_dir)
        path = directory / DB_NAME
        if not create and not path.exists():
            raise OutboxMissingError(f"no outbox at {path}")
        with translated(f"cannot open {path}"):
            if create:
                _private_dir(directory)
                _private_file(path)
            # A connection is used by one thread at a time, but it may be opened by
            # another (the daemon opens the core's store before the core thread starts).
            conn = sqlite3.connect(
                path, timeout=10.0, isolation_level=None, check_same_thread=False
            )
        conn.row_factory = sqlite3.Row
        try:
            with translated(f"cannot open {path}"):
                conn.execute("PRAGMA busy_timeout = 10000")
                conn.execute("PRAGMA journal_mode = WAL")
                # FULL: a commit that returned survives a power cut. The order intent
                # is the one thing this gateway must never lose. NORMAL (in WAL mode)
                # keeps every commit atomic and the file consistent, but the newest
                # commits may roll back after a power cut; a later FULL commit on any
                # connection fsyncs the shared WAL, earlier NORMAL frames included.
                conn.execute(f"PRAGMA synchronous = {'FULL' if durable else 'NORMAL'}")
                conn.execute("PRAGMA foreign_keys = ON")
            opened = cls(conn, path)
            opened._migrate()
        except BaseException:
            conn.close()
            raise
        return opened

    def close(self) -> None:
        with translated("cannot close the outbox"):
            self._conn.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        # IMMEDIATE takes the write lock up front, so two writers queue on
        # busy_timeout instead of failing halfway through with SQLITE_BUSY.
        with translated("outbox write failed"):
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _query(self, sql: str, params: Sequence[object] = ()) -> list[sqlite3.Row]:
        with translated("outbox read failed"):
            return self._conn.execute(sql, params).fetchall()

    def schema_version(self) -> int:
        found = self._query("SELECT value FROM meta WHERE key = 'schema_version'")
        return int(found[0]["value"])

    def _migrate(self) -> None:
        with self._tx() as c:
            c.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL)")
            found = c.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            version = None if found is None else int(found["value"])
            if version is not None and version > SCHEMA_VERSION:
                raise SchemaTooNewError(
                    f"{self.path} has schema version {version}, this gateway knows "
                    f"{SCHEMA_VERSION} — upgrade the gateway"
                )
            if version == 1:
                for statement in _V1_TO_V2.split(";"):
                    if statement.strip():
                        c.execute(statement)
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    c.execute(statement)
            c.execute(
                "INSERT INTO meta (key, value) VALUES ('schema_version', ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (str(SCHEMA_VERSION),),
            )
