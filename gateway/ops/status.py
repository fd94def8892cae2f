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
>>> print(render_live(doc, now=101.0).splitlines()[0])
reorder-gateway kitchen: running (pid 1, snapshot 1 s old)
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from gateway.outbox.store import OutboxError, Store
from gateway.outbox.views import OutboxSnapshot, read_outbox

STATUS_FILE = "status.json"
WRITE_EVERY = 2.0  # seconds between rewrites by the daemon
STALE_AFTER = 15.0  # an older file means the gateway is not running (or hangs)

EXIT_RUNNING = 0
EXIT_NO_STATE = 1
EXIT_NOT_RUNNING = 3  # as `systemctl status` says of an inactive unit


def write_status(state_dir: Path, document: Mapping[str, Any]) -> None:
    """Replace the status file atomically; private, like everything in the state dir."""
    path = state_dir / STATUS_FILE
    tmp = state_dir / f".{STATUS_FILE}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(document, out, separators=(",", ":"))
    tmp.replace(path)


def read_status(state_dir: Path) -> dict[str, Any] | None:
    try:
        loaded = json.loads((state_dir / STATUS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return loaded if isinstance(loaded, dict) else None


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
        lines.append(
            f"  {o['product']:<14} {o['state']:<9} order {o['order']}  since {o['created_at']}"
            f"{error}"
        )
    return lines


def render_live(doc: Mapping[str, Any], now: float) -> str:
    mqtt, shop, queue = doc.get("mqtt", {}), doc.get("shop", {}), doc.get("queue", {})
    lines = [
        f"reorder-gateway {doc.get('gateway')}: running (pid {doc.get('pid')}, "
        f"snapshot {_age(now - float(doc.get('updated_at', now)))} old)",
        f"  broker   {mqtt.get('url')}  "
        + _yes_no(mqtt.get("connected"), "connected", "NOT connected"),
        f"  shop     {shop.get('url')}  "
        + _yes_no(shop.get("reachable"), "reachable", "UNREACHABLE"),
        f"  queue    {queue.get('depth')} waiting to be sent"
        + (
            f" (oldest {_age(queue.get('oldest_age_seconds'))})"
            if queue.get("oldest_age_seconds") is not None
            else ""
        ),
    ]
    if doc.get("metrics"):
        lines.append(f"  metrics  {doc['metrics']}/metrics")
    lines += _orders_lines(doc.get("open_orders", []))
    events = doc.get("last_events", [])
    lines.append("last events:" if events else "last events: none since the start")
    lines += [f"  {e.get('at')}  {e.get('text')}" for e in events]
    return "\n".join(lines)


def render_offline(
    gateway_id: str, doc: Mapping[str, Any] | None, snapshot: OutboxSnapshot, now: float
) -> str:
    if doc is None:
        why = "no status file"
    else:
        why = f"last status {_age(now - float(doc.get('updated_at', 0.0)))} ago"
        if not doc.get("running"):
            why += ", it stopped cleanly"
    lines = [
        f"reorder-gateway {gateway_id}: NOT running ({why}).",
        "From the state database (connectivity and recent events need a running gateway):",
        f"  queue    {snapshot.queue_depth} waiting to be sent"
        + (
            f" (oldest {_age(snapshot.oldest_queued_age)})"
            if snapshot.oldest_queued_age is not None
            else ""
        ),
    ]
    lines += _orders_lines(snapshot.open_orders)
    return "\n".join(lines)


def status_command(
    gateway_id: str, state_dir: Path, out: TextIO, *, now: float, as_json: bool = False
) -> int:
    """Print the snapshot; exit 0 when running, 3 when not, 1 without any state."""
    doc = read_status(state_dir)
    if is_live(doc, now):
        assert doc is not None
        out.write((json.dumps(doc, indent=2) if as_json else render_live(doc, now)) + "\n")
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
        snapshot = read_outbox(store, now)
    finally:
        store.close()
    if as_json:
        offline = {
            "gateway": gateway_id,
            "running": False,
            "source": "state database",
            "queue": {
                "depth": snapshot.queue_depth,
                "oldest_age_seconds": snapshot.oldest_queued_age,
            },
            "orders": dict(snapshot.by_state),
            "open_orders": list(snapshot.open_orders),
        }
        out.write(json.dumps(offline, indent=2) + "\n")
    else:
        out.write(render_offline(gateway_id, doc, snapshot, now) + "\n")
    return EXIT_NOT_RUNNING
