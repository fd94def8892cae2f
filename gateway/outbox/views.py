"""Read-only questions to the outbox: orders, counts, the status snapshot.

>>> import tempfile
>>> views = OrderViews.open(tempfile.mkdtemp())
>>> views.queue_depth(), views.list_orders()
(0, [])
>>> views.close()
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from gateway.clock import rfc3339
from gateway.core.events import BootCount, Episode, OrderState, PlaceOrder, Price, Trigger
from gateway.core.forecast import Interval, LeadTime, Usage
from gateway.core.keys import short_key
from gateway.errors import OutboxError
from gateway.outbox.schema import (
    FINAL,
    FOLLOWED,
    TO_SEND,
    UNSENT,
    Connection,
    marks,
)

COLUMNS = (
    "key, seq, gateway, shop, product, sku, quantity, device, trigger, event_id, state, "
    "attempts, next_attempt_at, last_error, shop_order_id, cancel_requested, hold_until, "
    "created_at, updated_at, price_currency, price_total, price_unit"
)


@dataclass(frozen=True)
class OrderRow:
    """One order as stored: its intent, and where it is in its life."""

    key: str
    seq: int
    gateway: str
    product: str
    sku: str
    quantity: int
    device: str
    trigger: str
    event_id: str
    state: OrderState
    attempts: int
    next_attempt_at: float
    last_error: str | None
    shop_order_id: str | None
    cancel_requested: bool
    hold_until: float | None
    created_at: float
    updated_at: float
    shop: str
    price: Price | None = None

    @property
    def intent(self) -> PlaceOrder:
        """The order intent as the core committed it: what a backend orders from."""
        trigger: Trigger = self.trigger  # type: ignore[assignment]  # written from a Trigger
        return PlaceOrder(
            key=self.key,
            product=self.product,
            sku=self.sku,
            quantity=self.quantity,
            device=self.device,
            trigger=trigger,
            event_id=self.event_id,
            created_at=self.created_at,
            hold_until=self.hold_until,
            gateway=self.gateway,
            shop=self.shop,
        )


def order_row(values: sqlite3.Row) -> OrderRow:
    return OrderRow(
        key=values["key"],
        seq=values["seq"],
        gateway=values["gateway"],
        product=values["product"],
        sku=values["sku"],
        quantity=values["quantity"],
        device=values["device"],
        trigger=values["trigger"],
        event_id=values["event_id"],
        state=OrderState(values["state"]),
        attempts=values["attempts"],
        next_attempt_at=values["next_attempt_at"],
        last_error=values["last_error"],
        shop_order_id=values["shop_order_id"],
        cancel_requested=bool(values["cancel_requested"]),
        hold_until=values["hold_until"],
        created_at=values["created_at"],
        updated_at=values["updated_at"],
        shop=values["shop"],
        price=_price(values),
    )


def _price(values: sqlite3.Row) -> Price | None:
    if values["price_currency"] is None or values["price_total"] is None:
        return None
    return Price(values["price_currency"], values["price_total"], values["price_unit"])


class OrderViews(Connection):
    """The read-only queries; every other role of the outbox builds on them."""

    def _select(self, where: str, params: Sequence[object] = ()) -> list[OrderRow]:
        rows = self._query(f"SELECT {COLUMNS} FROM orders {where}", params)  # noqa: S608
        return [order_row(r) for r in rows]

    def get(self, key: str) -> OrderRow | None:
        found = self._select("WHERE key = ?", (key,))
        return found[0] if found else None

    def find_prefix(self, prefix: str) -> list[OrderRow]:
        """Orders whose key starts with ``prefix`` (for the queue CLI)."""
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return self._select("WHERE key LIKE ? ESCAPE '\\' ORDER BY seq", (escaped + "%",))

    def open_orders(self) -> list[OrderRow]:
        return self._select(f"WHERE state NOT IN {marks(FINAL)} ORDER BY seq", FINAL)

    def orders_since(self, t: float) -> list[OrderRow]:
        """Orders created at or after ``t``, in any state (the caller judges caps)."""
        return self._select("WHERE created_at >= ? ORDER BY seq", (t,))

    def list_orders(self, limit: int = 100) -> list[OrderRow]:
        """Newest first."""
        return self._select("ORDER BY seq DESC LIMIT ?", (limit,))

    def queue_depth(self) -> int:
        """Orders that have not reached the shop yet (held, queued, sending, blocked)."""
        found = self._query(
            f"SELECT count(*) FROM orders WHERE state IN {marks(UNSENT)}",  # noqa: S608
            UNSENT,
        )
        return int(found[0][0])

    def count_by_state(self) -> dict[OrderState, int]:
        """How many orders the outbox holds in each state (metrics, status)."""
        rows = self._query("SELECT state, count(*) FROM orders GROUP BY state")
        return {OrderState(state): int(n) for state, n in rows}

    def oldest_queued_age(self, now: float) -> float | None:
        found = self._query(
            f"SELECT min(created_at) FROM orders WHERE state IN {marks(TO_SEND)}",  # noqa: S608
            TO_SEND,
        )
        return None if found[0][0] is None else max(0.0, now - float(found[0][0]))

    def next_wakeup(self) -> float | None:
        """The earliest time the sender has something to do, or None if nothing is pending."""
        found = self._query(
            "SELECT min(next_attempt_at) FROM orders "  # noqa: S608  (placeholders only)
            f"WHERE state IN {marks(FOLLOWED)}",
            FOLLOWED,
        )
        return None if found[0][0] is None else float(found[0][0])

    def next_wakeups(self) -> dict[str, float]:
        """Per shop, the earliest time the sender has something to do for it."""
        found = self._query(
            "SELECT shop, min(next_attempt_at) FROM orders "  # noqa: S608  (placeholders only)
            f"WHERE state IN {marks(FOLLOWED)} AND next_attempt_at IS NOT NULL GROUP BY shop",
            FOLLOWED,
        )
        return {str(row[0]): float(row[1]) for row in found if row[1] is not None}

    def is_seen(self, dedupe_key: str) -> bool:
        found = self._query("SELECT 1 FROM seen_events WHERE dedupe_key = ?", (dedupe_key,))
        return bool(found)

    def recent_actions(self) -> dict[str, float]:
        """When each (device, action) last acted (the dedupe window's memory)."""
        return {
            r["window_key"]: float(r["at"]) for r in self._query("SELECT * FROM recent_actions")
        }

    def device_boots(self) -> dict[str, BootCount]:
        """Where each button whose ids count since its boot is (boot, last count)."""
        return {
            r["device"]: BootCount(
                boot=int(r["boot"]), last=r["last_count"], connected=bool(r["connected"])
            )
            for r in self._query("SELECT * FROM device_boots")
        }

    def episodes(self) -> dict[str, Episode]:
        return {
            r["sensor"]: Episode(
                phase=r["phase"],
                below_since=r["below_since"],
                last_value=r["last_value"],
                last_seen=r["last_seen"],
                stale_reported=bool(r["stale_reported"]),
            )
            for r in self._query("SELECT * FROM episodes")
        }

    def learned(self) -> Learned:
        """What forecasting has learned, as the core holds it."""
        found = Learned()
        for r in self._query("SELECT kind, name, data FROM learned"):
            try:
                data = json.loads(r["data"])
                if r["kind"] == "usage":
                    data["rates"] = tuple(data["rates"])
                    data["sq"] = tuple(data["sq"])
                    found.usage[r["name"]] = Usage(**data)
                elif r["kind"] == "lead":
                    data["pending"] = tuple((k, float(t)) for k, t in data["pending"])
                    data["history"] = tuple(float(t) for t in data.get("history", ()))
                    found.leads[r["name"]] = LeadTime(**data)
                elif r["kind"] == "interval":
                    found.intervals[r["name"]] = Interval(**data)
            except (ValueError, TypeError, KeyError):
                # Written by another version: forgotten, learned again from readings.
                continue
        return found


@dataclass
class Learned:
    """The ``learned`` table, by kind."""

    usage: dict[str, Usage] = field(default_factory=dict)
    leads: dict[str, LeadTime] = field(default_factory=dict)
    intervals: dict[str, Interval] = field(default_factory=dict)


# --------------------------------------------------------------------------- status


@dataclass(frozen=True)
class OutboxSnapshot:
    """What the outbox holds right now.

    >>> OutboxSnapshot(0, None, {}, ()).queue_depth
    0
    """

    queue_depth: int
    oldest_queued_age: float | None
    by_state: Mapping[str, int]
    open_orders: Sequence[Mapping[str, object]]
    # Forecasting: per sensor the projected empty time last told, per button-only
    # product when it is usually due (sorted by name).
    forecasts: Sequence[Mapping[str, object]] = ()


def _forecasts(learned: Learned) -> list[Mapping[str, object]]:
    shown: list[Mapping[str, object]] = []
    for name, usage in sorted(learned.usage.items()):
        if usage.told_empty_at is not None:
            shown.append({"sensor": name, "runs_out": rfc3339(usage.told_empty_at)})
    for product, interval in sorted(learned.intervals.items()):
        due = interval.due_at()
        if due is not None:
            shown.append({"product": product, "due": rfc3339(due)})
    return shown


def read_outbox(views: OrderViews, now: float) -> OutboxSnapshot:
    open_orders = [
        {
            "product": r.product,
            "state": r.state.value,
            "order": short_key(r.key),
            "device": r.device,
            "created_at": rfc3339(r.created_at),
            "attempts": r.attempts,
            "last_error": r.last_error,
            "shop": r.shop,
            **({"total": r.price.shown} if r.price is not None else {}),
        }
        for r in views.open_orders()
    ]
    return OutboxSnapshot(
        queue_depth=views.queue_depth(),
        oldest_queued_age=views.oldest_queued_age(now),
        by_state={s.value: n for s, n in views.count_by_state().items()},
        open_orders=open_orders,
        forecasts=_forecasts(views.learned()),
    )


class StateReader:
    """Read-only questions to the outbox from any thread (scrapes, the status file).

    One connection behind a lock: a connection must not be used by two threads at
    once, and scrapes may overlap.

    >>> import tempfile
    >>> state_dir = tempfile.mkdtemp()
    >>> OrderViews.open(state_dir).close()
    >>> reader = StateReader(state_dir)
    >>> reader.snapshot(0.0).queue_depth
    0
    >>> reader.close()
    """

    def __init__(self, state_dir: str | Path) -> None:
        self._state_dir = Path(state_dir)
        self._lock = threading.Lock()
        self._views: OrderViews | None = None
        self._closed = False

    def snapshot(self, now: float) -> OutboxSnapshot:
        with self._lock:
            return read_outbox(self._open(), now)

    def last_orders(self) -> dict[str, float]:
        """Creation time of each product's newest order that was not refused or cancelled."""
        with self._lock:
            latest: dict[str, float] = {}
            for row in self._open().list_orders(limit=500):
                if not row.state.was_bought or row.product in latest:
                    continue
                latest[row.product] = row.created_at
            return latest

    def orders_since(self, t: float) -> list[OrderRow]:
        """Orders created at or after ``t``, oldest first (the web page's history)."""
        with self._lock:
            return self._open().orders_since(t)

    def open_orders(self) -> list[OrderRow]:
        with self._lock:
            return self._open().open_orders()

    def is_open(self) -> bool:
        """True while the database answers (readiness)."""
        try:
            with self._lock:
                self._open().queue_depth()
        except Exception:  # any failure means "not ready"; the reason is the caller's
            return False
        return True

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._views is not None:
                self._views.close()
                self._views = None

    def _open(self) -> OrderViews:
        if self._closed:
            raise OutboxError("the state database is closed (the gateway is stopping)")
        if self._views is None:
            self._views = OrderViews.open(self._state_dir, create=False)
        return self._views
