"""The one status document and its one renderer, running and not, and the private
file they are written to."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest

from gateway.ops.status import (
    STATUS_FILE,
    Liveness,
    OutboxSnapshot,
    ShopLiveness,
    clock_now,
    read_status,
    render_status,
    status_document,
    write_status,
)
from gateway.outputs.files import write_private

OUTBOX = OutboxSnapshot(
    queue_depth=1,
    oldest_queued_age=30.0,
    by_state={"queued": 1},
    open_orders=(
        {
            "product": "detergent",
            "state": "queued",
            "order": "rg1_b4c4187b",
            "device": "laundry",
            "created_at": "2026-03-02T08:14:03.000Z",
            "attempts": 2,
            "last_error": "shop unreachable",
        },
    ),
)


def live(running: bool = True) -> Liveness:
    return Liveness(
        pid=812,
        running=running,
        started_at=90.0,
        updated_at=100.0,
        mqtt_url="mqtt://127.0.0.1:1883",
        mqtt_connected=True,
        shop_url="https://shop.example/api/v1",
        shop_reachable=False,
        last_send_seconds=None,
        metrics_url="http://127.0.0.1:9464",
        last_events=[{"at": "2026-03-02T08:14:03.000Z", "text": "laundry: ordered"}],
    )


def test_a_running_gateway_renders_connections_queue_orders_and_events() -> None:
    text = render_status(status_document("kitchen", OUTBOX, live()), now=101.0)
    assert text.splitlines() == [
        "reorder-gateway kitchen: running (pid 812, snapshot 1 s old)",
        "  broker   mqtt://127.0.0.1:1883  connected",
        "  shop     https://shop.example/api/v1  UNREACHABLE",
        "  queue    1 waiting to be sent (oldest 30 s)",
        "  metrics  http://127.0.0.1:9464/metrics",
        "open orders:",
        "  detergent      queued    order rg1_b4c4187b  since 2026-03-02T08:14:03.000Z"
        "  last error: shop unreachable",
        "last events:",
        "  2026-03-02T08:14:03.000Z  laundry: ordered",
    ]


def test_each_shop_shows_its_own_reachability_and_a_refused_token() -> None:
    shops = {
        "family": ShopLiveness("http://ha.lan:8123", True, refused=True),
        "shop": ShopLiveness("https://shop.example/api/v1", False),
        "n8n": ShopLiveness("https://n8n.lan/webhook/x", None),
    }
    doc = status_document("kitchen", OUTBOX, dataclasses.replace(live(), shops=shops))
    assert doc["shop"]["shops"]["family"] == {
        "url": "http://ha.lan:8123",
        "reachable": True,
        "refused": True,
    }
    lines = render_status(doc, now=101.0).splitlines()
    assert lines[2:5] == [
        "  shop     family  http://ha.lan:8123  reachable but REFUSES our credentials",
        "  shop     shop  https://shop.example/api/v1  UNREACHABLE",
        "  shop     n8n  https://n8n.lan/webhook/x  unknown yet",
    ]


def test_a_stopped_gateway_names_no_metrics_endpoint() -> None:
    assert status_document("kitchen", OUTBOX, live(running=False))["metrics"] is None


def test_from_the_database_the_same_renderer_says_why_it_is_not_running() -> None:
    stopped = status_document("kitchen", None, live(running=False))
    offline = status_document("kitchen", OUTBOX, last_status=stopped)
    assert offline["source"] == "state database"
    assert render_status(offline, now=400.0).splitlines() == [
        "reorder-gateway kitchen: NOT running (last status 5 min ago, it stopped cleanly).",
        "From the state database (connectivity and recent events need a running gateway):",
        "  queue    1 waiting to be sent (oldest 30 s)",
        "open orders:",
        "  detergent      queued    order rg1_b4c4187b  since 2026-03-02T08:14:03.000Z"
        "  last error: shop unreachable",
    ]
    never = status_document("kitchen", OutboxSnapshot(0, None, {}, ()))
    assert render_status(never, now=0.0).splitlines()[0] == (
        "reorder-gateway kitchen: NOT running (no status file)."
    )


def test_the_status_file_is_private_and_reads_back(tmp_path: Path) -> None:
    document = status_document("kitchen", OUTBOX, live())
    write_status(tmp_path, document)
    assert read_status(tmp_path) == json.loads(json.dumps(document))
    assert (tmp_path / STATUS_FILE).stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == [STATUS_FILE]


def test_write_private_tightens_a_leftover_temporary_file(tmp_path: Path) -> None:
    leftover = tmp_path / ".state.json.tmp"
    leftover.write_bytes(b"half")
    leftover.chmod(0o644)
    write_private(tmp_path / "state.json", b"whole")
    assert (tmp_path / "state.json").read_bytes() == b"whole"
    assert (tmp_path / "state.json").stat().st_mode & 0o777 == 0o600
    assert not leftover.exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_write_private_that_fails_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    write_private(target, b"old")
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(OSError):
            write_private(target, b"new")
    finally:
        tmp_path.chmod(0o700)
    assert target.read_bytes() == b"old"


def test_the_document_records_the_clock_the_orders_are_dated_by(tmp_path: Path) -> None:
    assert status_document("kitchen", OUTBOX, live())["clock"] == {"now": 100.0, "scale": 1.0}
    scaled = dataclasses.replace(live(), clock_now=5_000.0, clock_scale=600.0)
    assert status_document("kitchen", OUTBOX, scaled)["clock"] == {"now": 5_000.0, "scale": 600.0}


def test_ages_are_told_on_the_gateways_clock(tmp_path: Path) -> None:
    # No status file, or one from the machine's clock: the machine's time.
    assert clock_now(tmp_path, 1_000.0) == 1_000.0
    write_status(tmp_path, status_document("kitchen", OUTBOX, live(running=False)))
    assert clock_now(tmp_path, 1_000.0) == 1_000.0
    # A stopped demo: its clock's last reading, however long ago it stopped.
    demo = dataclasses.replace(live(running=False), clock_now=5_000.0, clock_scale=600.0)
    write_status(tmp_path, status_document("demo", OUTBOX, demo))
    assert clock_now(tmp_path, 1_000_000.0) == 5_000.0
    # A running one (this very process, fresh): run on from that reading at its scale.
    running = dataclasses.replace(
        live(), pid=os.getpid(), updated_at=1_000.0, clock_now=5_000.0, clock_scale=600.0
    )
    write_status(tmp_path, status_document("demo", OUTBOX, running))
    assert clock_now(tmp_path, 1_002.0) == 5_000.0 + 2.0 * 600.0
    # An unreadable file (a power cut): the machine's time, no error.
    (tmp_path / STATUS_FILE).write_bytes(b"")
    assert clock_now(tmp_path, 1_000.0) == 1_000.0
