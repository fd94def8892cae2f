"""``reorder-gateway status``: what the gateway is doing, for a person.

The running daemon rewrites ``<state_dir>/status.json`` (0600, atomically) every
two seconds and once more when it stops. ``status`` reads that file while it is
fresh; otherwise it says the gateway is not running and answers from the state
database instead (queue and open orders survive; connectivity and events do not).

>>> doc = {"gateway": "kitchen", "pid": 1, "running": True, "updated_at": 100.0,
...        "mqtt": {"url": "mqtt://127.0.0.1:1883", "connected": True},
...        "shop": {"url": "https://shop.example/api/v1", "reachable": None},
...        "queue": {"depth": 0, "oldest_age_seconds": None}, "open_orders": [],
...        "last_events": []}
>>> print(render_status(doc, now=101.0).splitlines()[0])
reorder-gateway kitchen: running (pid 1, snapshot 1 s old)
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from gateway.outbox.store import OutboxError, Store
from gateway.outbox.views import OutboxSnapshot, read_outbox
from gateway.outputs.files import write_private

STATUS_FILE = "status.json"
WRITE_EVERY = 2.0  # seconds between rewrites by the daemon
STALE_AFTER = 15.0  # an older file means the gateway is not running (or hangs)

EXIT_RUNNING = 0
EXIT_NO_STATE = 1
EXIT_NOT_RUNNING = 3  # as `systemctl status` says of an inactive unit


@dataclass(frozen=True)
class Liveness:
    """What only a running gateway knows: its process, connections and recent events."""

    pid: int
    running: bool
    started_at: float
    updated_at: float  # real epoch seconds: `status` judges freshness by the machine's clock
    mqtt_url: str
    mqtt_connected: bool
    shop_url: str
    shop_reachable: bool | None
    last_send_seconds: float | None
    metrics_url: str | None
    last_events: Sequence[Mapping[str, object]]
    # The clock the gateway dates its orders and events by, read as this was written:
    # the machine's (scale 1) or a scaled one (the demo). ``queue`` and ``status``
    # measure ages against it (:func:`clock_now`).
    clock_now: float | None = None
    clock_scale: float = 1.0
    mqtt_problem: str | None = None  # why the latest attempt to connect failed
    # Per configured shop: its location, whether it answers (None: not known yet) and
    # whether it refused our credentials. ``shop_reachable`` is all of them as one.
    shops: Mapping[str, ShopLiveness] = field(default_factory=dict)


@dataclass(frozen=True)
class ShopLiveness:
    """One configured shop as the sender sees it."""

    url: str
    reachable: bool | None
    refused: bool = False


FROM_DATABASE = "state database"


def status_document(
    gateway_id: str,
    outbox: OutboxSnapshot | None,
    live: Liveness | None = None,
    *,
    last_status: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The one status document: written by the running gateway (with ``live``), or
    answered from the state database when it is not running (``last_status`` is the
    stale status file it left, if any).

    >>> doc = status_document("kitchen", OutboxSnapshot(0, None, {}, ()))
    >>> doc["running"], doc["source"], doc["queue"]["depth"]
    (False, 'state database', 0)
    """
    queue = {
        "depth": outbox.queue_depth if outbox else None,
        "oldest_age_seconds": outbox.oldest_queued_age if outbox else None,
    }
    orders = dict(outbox.by_state) if outbox else {}
    open_orders = list(outbox.open_orders) if outbox else []
    forecasts = list(outbox.forecasts) if outbox else []
    if live is None:
        previous = None
        if last_status is not None:
            updated = last_status.get("updated_at")
            previous = {
                "updated_at": updated if isinstance(updated, int | float) else None,
                "stopped_cleanly": not last_status.get("running"),
            }
        return {
            "gateway": gateway_id,
            "running": False,
            "source": FROM_DATABASE,
            "queue": queue,
            "orders": orders,
            "open_orders": open_orders,
            "forecasts": forecasts,
            "last_status": previous,
        }
    return {
        "gateway": gateway_id,
        "pid": live.pid,
        "running": live.running,
        "started_at": live.started_at,
        "updated_at": live.updated_at,
        "mqtt": {
            "url": live.mqtt_url,
            "connected": live.mqtt_connected,
            "problem": live.mqtt_problem,
        },
        "shop": {
            "url": live.shop_url,
            "reachable": live.shop_reachable,
            "last_send_seconds": live.last_send_seconds,
            "shops": {
                name: {"url": s.url, "reachable": s.reachable, "refused": s.refused}
                for name, s in live.shops.items()
            },
        },
        "metrics": live.metrics_url if live.running else None,
        "clock": {
            "now": live.updated_at if live.clock_now is None else live.clock_now,
            "scale": live.clock_scale,
        },
        "queue": queue,
        "orders": orders,
        "open_orders": open_orders,
        "forecasts": forecasts,
        "last_events": list(live.last_events),
    }


def write_status(state_dir: Path, document: Mapping[str, Any]) -> None:
    """Replace the status file: private and atomic, like everything in the state dir."""
    data = json.dumps(document, separators=(",", ":")).encode()
    write_private(state_dir / STATUS_FILE, data)


def read_status(state_dir: Path) -> dict[str, Any] | None:
    try:
        loaded = json.loads((state_dir / STATUS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return loaded if isinstance(loaded, dict) else None


def clock_now(state_dir: Path, real_now: float) -> float:
    """Now on the clock the gateway in ``state_dir`` dates its orders by, for ages.

    That is the machine's time, unless its status file says it ran a scaled clock
    (``--time-scale``, the demo): then that clock's time, run on from its last
    reading while the gateway runs, and its last reading once it has stopped (the
    ages a stopped demo's ``queue`` shows are those of its last moment).

    >>> import tempfile, json
    >>> d = Path(tempfile.mkdtemp())
    >>> clock_now(d, 5000.0)
    5000.0
    >>> _ = (d / STATUS_FILE).write_text(json.dumps({"running": False, "updated_at": 4000.0,
    ...     "clock": {"now": 1000.0, "scale": 600.0}}))
    >>> clock_now(d, 5000.0)
    1000.0
    """
    document = read_status(state_dir)
    clock = document.get("clock") if document else None
    if not isinstance(clock, dict):
        return real_now
    now, scale = clock.get("now"), clock.get("scale")
    if not isinstance(now, int | float) or not isinstance(scale, int | float) or scale == 1:
        return real_now
    assert document is not None
    updated = document.get("updated_at")
    if document.get("running") and isinstance(updated, int | float) and is_live(document, real_now):
        return float(now) + max(0.0, real_now - float(updated)) * float(scale)
    return float(now)


def _pid_alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, it is just not ours
    return True


def is_live(document: Mapping[str, Any] | None, now: float) -> bool:
    if document is None or not document.get("running"):
        return False
    updated = document.get("updated_at")
    if not isinstance(updated, int | float) or now - updated > STALE_AFTER:
        return False
    return _pid_alive(document.get("pid"))


def _yes_no(value: object, yes: str, no: str) -> str:
    return "unknown yet" if value is None else (yes if value else no)


def _age(seconds: object) -> str:
    if not isinstance(seconds, int | float):
        return "—"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _orders_lines(open_orders: Sequence[Mapping[str, Any]]) -> list[str]:
    if not open_orders:
        return ["open orders: none"]
    lines = ["open orders:"]
    for o in open_orders:
        error = f"  last error: {o['last_error']}" if o.get("last_error") else ""
        total = f"  total {o['total']}" if o.get("total") else ""
        lines.append(
            f"  {o['product']:<14} {o['state']:<9} order {o['order']}  since {o['created_at']}"
            f"{total}{error}"
        )
    return lines


def _queue_line(queue: Mapping[str, Any]) -> str:
    oldest = queue.get("oldest_age_seconds")
    return f"  queue    {queue.get('depth')} waiting to be sent" + (
        f" (oldest {_age(oldest)})" if oldest is not None else ""
    )


def _forecast_lines(forecasts: Sequence[Mapping[str, Any]]) -> list[str]:
    """``coffee-scale runs out 2027-03-04T…`` / ``tea due 2027-03-09T…``."""
    lines = ["forecasts:"] if forecasts else []
    for f in forecasts:
        if "sensor" in f:
            lines.append(f"  {f['sensor']} runs out {f.get('runs_out')}")
        else:
            lines.append(f"  {f.get('product')} due {f.get('due')}")
    return lines


def render_status(doc: Mapping[str, Any], now: float) -> str:
    """The status document for a person: a running gateway's snapshot, or what the
    state database says when it is not running."""
    if doc.get("source") == FROM_DATABASE:
        return "\n".join(_offline_lines(doc, now))
    mqtt, shop = doc.get("mqtt", {}), doc.get("shop", {})
    lines = [
        f"reorder-gateway {doc.get('gateway')}: running (pid {doc.get('pid')}, "
        f"snapshot {_age(now - float(doc.get('updated_at', now)))} old)",
        f"  broker   {mqtt.get('url')}  "
        + _yes_no(mqtt.get("connected"), "connected", "NOT connected")
        + (f": {mqtt['problem']}" if mqtt.get("problem") else ""),
        *_shop_lines(shop),
        _queue_line(doc.get("queue", {})),
    ]
    if doc.get("metrics"):
        lines.append(f"  metrics  {doc['metrics']}/metrics")
    lines += _orders_lines(doc.get("open_orders", []))
    lines += _forecast_lines(doc.get("forecasts", []))
    events = doc.get("last_events", [])
    lines.append("last events:" if events else "last events: none since the start")
    lines += [f"  {e.get('at')}  {e.get('text')}" for e in events]
    return "\n".join(lines)


def _shop_lines(shop: Mapping[str, Any]) -> list[str]:
    """One line for the one shop, or one per shop (older status files: the aggregate)."""
    shops = shop.get("shops") or {}
    if len(shops) <= 1 and not any(s.get("refused") for s in shops.values()):
        return [
            f"  shop     {shop.get('url')}  "
            + _yes_no(shop.get("reachable"), "reachable", "UNREACHABLE")
        ]
    return [
        f"  shop     {name}  {s.get('url')}  "
        + _yes_no(s.get("reachable"), "reachable", "UNREACHABLE")
        + (" but REFUSES our credentials" if s.get("refused") else "")
        for name, s in shops.items()
    ]


def _offline_lines(doc: Mapping[str, Any], now: float) -> list[str]:
    previous = doc.get("last_status")
    if not previous:
        why = "no status file"
    else:
        why = f"last status {_age(now - float(previous.get('updated_at') or 0.0))} ago"
        if previous.get("stopped_cleanly"):
            why += ", it stopped cleanly"
    lines = [
        f"reorder-gateway {doc.get('gateway')}: NOT running ({why}).",
        "From the state database (connectivity and recent events need a running gateway):",
        _queue_line(doc.get("queue", {})),
    ]
    lines += _orders_lines(doc.get("open_orders", []))
    return lines + _forecast_lines(doc.get("forecasts", []))


def status_command(
    gateway_id: str, state_dir: Path, out: TextIO, *, now: float, as_json: bool = False
) -> int:
    """Print the snapshot; exit 0 when running, 3 when not, 1 without any state."""
    doc = read_status(state_dir)
    if is_live(doc, now):
        assert doc is not None
        out.write((json.dumps(doc, indent=2) if as_json else render_status(doc, now)) + "\n")
        return EXIT_RUNNING
    try:
        store = Store.open(state_dir, create=False)
    except (OutboxError, OSError) as exc:
        out.write(
            f"reorder-gateway {gateway_id}: NOT running, and {exc} — it has never run with "
            f"gateway.state_dir {state_dir} (or that directory is not readable by you)\n"
        )
        return EXIT_NO_STATE
    try:
        snapshot = read_outbox(store, clock_now(state_dir, now))
    finally:
        store.close()
    offline = status_document(gateway_id, snapshot, last_status=doc)
    out.write((json.dumps(offline, indent=2) if as_json else render_status(offline, now)) + "\n")
    return EXIT_NOT_RUNNING
