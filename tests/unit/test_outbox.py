"""The SQLite outbox: transactions, states, claim order, crash recovery, pruning."""

from __future__ import annotations

import io
import sqlite3
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.commerce.base import build_body
from gateway.core.events import (
    CancelOrder,
    Episode,
    Feedback,
    LedPattern,
    OrderState,
    Outcome,
    PlaceOrder,
    ReleaseHeld,
    RememberEvent,
    Report,
    SaveEpisode,
)
from gateway.ops.queue import queue_drop, queue_list, queue_retry
from gateway.outbox.store import (
    DB_NAME,
    SCHEMA_VERSION,
    OutboxError,
    OutboxMissingError,
    SchemaTooNewError,
    Store,
)

T0 = 1_700_000_000.0


def intent(n: int, *, at: float = T0, hold_until: float | None = None) -> PlaceOrder:
    return PlaceOrder(
        key=f"rg1_{n:04d}",
        product="soap",
        sku="SKU-SOAP",
        quantity=1,
        device="laundry",
        trigger="press",
        event_id=f"evt-{n}",
        created_at=at,
        hold_until=hold_until,
        gateway="test-pi",
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(tmp_path / "state")
    yield s
    s.close()


def test_state_files_are_private(tmp_path: Path) -> None:
    state = tmp_path / "state"
    s = Store.open(state)
    s.commit([intent(1)])
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    for name in (DB_NAME, DB_NAME + "-wal", DB_NAME + "-shm"):
        assert stat.S_IMODE((state / name).stat().st_mode) == 0o600, name
    s.close()


def test_existing_state_dir_is_tightened(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o755)
    state.chmod(0o755)
    Store.open(state).close()
    assert stat.S_IMODE(state.stat().st_mode) == 0o700


def test_journal_is_wal_with_full_sync(store: Store) -> None:
    conn = sqlite3.connect(store.path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()
    assert store._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_secret_is_created_once_and_persisted(tmp_path: Path) -> None:
    first = Store.open(tmp_path)
    secret = first.secret()
    assert len(secret) == 32
    assert first.secret() == secret
    first.close()
    again = Store.open(tmp_path)
    assert again.secret() == secret
    again.close()


def test_missing_outbox_is_not_created_on_request(tmp_path: Path) -> None:
    with pytest.raises(OutboxMissingError, match="no outbox"):
        Store.open(tmp_path / "nowhere", create=False)
    assert not (tmp_path / "nowhere").exists()


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    Store.open(tmp_path).close()
    conn = sqlite3.connect(tmp_path / DB_NAME)
    conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    with pytest.raises(SchemaTooNewError, match="upgrade the gateway"):
        Store.open(tmp_path)


def test_commit_writes_intent_event_and_episode_together(store: Store) -> None:
    episode = Episode(phase="settling", below_since=T0, last_value=1.5, last_seen=T0)
    result = store.commit(
        [
            intent(1),
            RememberEvent(dedupe_key="7:laundry:evt-1", at=T0),
            SaveEpisode(sensor="scale", episode=episode),
            Report(outcome=Outcome.ORDERED, device="laundry", at=T0),
            Feedback(device="laundry", pattern=LedPattern.RECEIVED),
        ],
    )
    assert result.placed == ("rg1_0001",)
    assert result.wake_sender
    assert store.is_seen("7:laundry:evt-1")
    assert not store.is_seen("7:laundry:evt-2")
    assert store.episodes() == {"scale": episode}
    row = store.get("rg1_0001")
    assert row is not None
    assert row.state is OrderState.QUEUED
    assert build_body(row.intent) == build_body(intent(1))
    assert row.attempts == 0


def test_episode_is_upserted(store: Store) -> None:
    store.commit([SaveEpisode(sensor="scale", episode=Episode(phase="settling"))])
    store.commit([SaveEpisode(sensor="scale", episode=Episode(phase="ordered"))])
    assert store.episodes()["scale"].phase == "ordered"


def test_a_failing_commit_leaves_nothing(store: Store) -> None:
    # An episode's phase is NOT NULL: the last statement fails, and the event id and
    # the intent written before it in the same transaction must go too.
    broken = SaveEpisode(sensor="scale", episode=Episode(phase=None))  # type: ignore[arg-type]
    with pytest.raises(OutboxError, match="NOT NULL"):
        store.commit([RememberEvent(dedupe_key="k", at=T0), intent(1), broken])
    assert not store.is_seen("k")
    assert store.get("rg1_0001") is None


def test_same_key_twice_keeps_the_first_body(store: Store) -> None:
    store.commit([intent(1, at=T0)])
    second = store.commit([intent(1, at=T0 + 50)])
    assert second.placed == ()
    assert not second.wake_sender
    row = store.get("rg1_0001")
    assert row is not None and row.created_at == T0
    assert build_body(row.intent) == build_body(intent(1, at=T0))


def test_held_order_is_promoted_when_its_window_passes(store: Store) -> None:
    placed = store.commit([intent(1, hold_until=T0 + 30)])
    assert not placed.wake_sender, "nothing for the sender until the window ends"
    assert store.get("rg1_0001").state is OrderState.HELD  # type: ignore[union-attr]
    # The core decides when the window has passed (decide.next_due, then a Tick);
    # until it releases the order, the sender cannot take it.
    assert store.claim_next(T0 + 29) is None
    assert store.claim_next(T0 + 30) is None
    result = store.commit([ReleaseHeld("rg1_0001")], now=T0 + 30)
    assert result.released == ("rg1_0001",) and result.wake_sender
    claimed = store.claim_next(T0 + 30)
    assert claimed is not None and claimed.key == "rg1_0001"


def test_cancel_is_local_before_the_shop_and_remote_after(store: Store) -> None:
    store.commit([intent(1), intent(2), intent(3, hold_until=T0 + 60), intent(4)])
    store.mark_accepted("rg1_0002", "ord_2", T0, next_poll_at=T0 + 600)
    sending = store.claim_next(T0)
    assert sending is not None and sending.key == "rg1_0001"
    result = store.commit(
        [
            CancelOrder(key="rg1_0001", product="soap", device="laundry"),
            CancelOrder(key="rg1_0002", product="soap", device="laundry"),
            CancelOrder(key="rg1_0003", product="soap", device="laundry"),
            CancelOrder(key="rg1_0004", product="soap", device="laundry"),
            CancelOrder(key="rg1_none", product="soap", device="laundry"),
            RememberEvent(dedupe_key="hold-1", at=T0 + 5),
        ],
    )
    assert result.local_cancels == ("rg1_0003", "rg1_0004")
    assert result.remote_cancels == ("rg1_0001", "rg1_0002")
    assert result.unknown_cancels == ("rg1_none",)
    assert result.wake_sender
    assert store.get("rg1_0004").state is OrderState.CANCELLED  # type: ignore[union-attr]
    assert store.get("rg1_0004").updated_at == T0 + 5  # type: ignore[union-attr]
    accepted = store.get("rg1_0002")
    assert accepted is not None and accepted.cancel_requested
    # An accepted order with a cancel request is due at once, not at its next poll.
    assert [r.key for r in store.due_followups(T0)] == ["rg1_0002"]
    # The order on the wire keeps its cancel request through acceptance.
    store.mark_accepted("rg1_0001", "ord_1", T0 + 1, next_poll_at=T0 + 601)
    assert [r.key for r in store.due_followups(T0 + 1)] == ["rg1_0001", "rg1_0002"]


def test_cancelling_a_final_order_does_nothing(store: Store) -> None:
    store.commit([intent(1)])
    store.mark_rejected("rg1_0001", "unknown sku", T0)
    result = store.commit([CancelOrder(key="rg1_0001", product="soap", device="x")])
    assert result.unknown_cancels == ("rg1_0001",)
    assert store.get("rg1_0001").state is OrderState.REJECTED  # type: ignore[union-attr]


def test_claim_takes_the_oldest_due_row_and_counts_attempts(store: Store) -> None:
    store.commit([intent(n) for n in (1, 2, 3)])
    first = store.claim_next(T0)
    assert first is not None
    assert (first.key, first.state, first.attempts) == ("rg1_0001", OrderState.SENDING, 1)
    assert store.get("rg1_0001").state is OrderState.SENDING  # type: ignore[union-attr]
    store.mark_retry("rg1_0001", T0 + 10, "HTTP 503")
    # The failing order waits; the next one is not held up by it.
    second = store.claim_next(T0 + 1)
    assert second is not None and second.key == "rg1_0002"
    store.mark_accepted("rg1_0002", "ord_2", T0 + 1)
    third = store.claim_next(T0 + 1)
    assert third is not None and third.key == "rg1_0003"
    store.mark_accepted("rg1_0003", "ord_3", T0 + 1)
    assert store.claim_next(T0 + 9) is None
    again = store.claim_next(T0 + 10)
    assert again is not None and (again.key, again.attempts) == ("rg1_0001", 2)
    assert again.last_error == "HTTP 503"


def test_blocked_rows_wait_for_their_slot_and_can_be_released(store: Store) -> None:
    store.commit([intent(1)])
    store.claim_next(T0)
    store.mark_retry("rg1_0001", T0 + 300, "HTTP 401", OrderState.BLOCKED, now=T0)
    assert store.get("rg1_0001").state is OrderState.BLOCKED  # type: ignore[union-attr]
    assert store.claim_next(T0 + 299) is None
    assert store.release_blocked(T0 + 10) == 1
    claimed = store.claim_next(T0 + 10)
    assert claimed is not None and claimed.key == "rg1_0001"


def test_mark_retry_refuses_other_states(store: Store) -> None:
    with pytest.raises(ValueError, match="cannot set state"):
        store.mark_retry("rg1_0001", T0, "x", OrderState.ACCEPTED)


def test_row_left_sending_by_a_crash_is_resent_with_same_key_and_body(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    store.commit([intent(1), intent(2)])
    store.close()
    # A real process claims the row and dies mid-request (no cleanup, no close).
    script = (
        "import os, sys; from gateway.outbox.store import Store; "
        "s = Store.open(sys.argv[1]); row = s.claim_next(0.0 + 1e12); "
        "print(row.key); os._exit(9)"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 9, done.stderr
    assert done.stdout.strip() == "rg1_0001"
    store = Store.open(tmp_path)
    left = store.get("rg1_0001")
    assert left is not None and left.state is OrderState.SENDING
    # Due at once, whatever its schedule says, and ahead of younger rows.
    again = store.claim_next(T0)
    assert again is not None
    resent = (again.key, build_body(again.intent), again.attempts)
    assert resent == ("rg1_0001", build_body(intent(1)), 2)
    store.close()


def test_status_only_moves_forward(store: Store) -> None:
    store.commit([intent(1)])
    store.claim_next(T0)
    store.mark_accepted("rg1_0001", "ord_1", T0, next_poll_at=T0 + 600)
    assert store.mark_status("rg1_0001", OrderState.SHIPPED, T0 + 600, next_poll_at=T0 + 1200)
    assert not store.mark_status("rg1_0001", OrderState.ACCEPTED, T0 + 1200, next_poll_at=T0 + 2)
    row = store.get("rg1_0001")
    assert row is not None and row.state is OrderState.SHIPPED
    assert row.shop_order_id == "ord_1"
    assert store.mark_status("rg1_0001", OrderState.DELIVERED, T0 + 1800)
    assert store.get("rg1_0001").state is OrderState.DELIVERED  # type: ignore[union-attr]
    assert store.open_orders() == []
    assert store.next_wakeup() is None


def test_too_late_cancel_keeps_the_order(store: Store) -> None:
    store.commit([intent(1)])
    store.claim_next(T0)
    store.mark_accepted("rg1_0001", "ord_1", T0)
    store.commit([CancelOrder(key="rg1_0001", product="soap", device="laundry")])
    store.clear_cancel_request("rg1_0001", "too late to cancel", T0 + 1, T0 + 601)
    row = store.get("rg1_0001")
    assert row is not None
    assert (row.state, row.cancel_requested, row.last_error) == (
        OrderState.ACCEPTED,
        False,
        "too late to cancel",
    )
    assert store.due_followups(T0 + 600) == []


def test_next_wakeup_covers_retries_and_polls(store: Store) -> None:
    assert store.next_wakeup() is None
    store.commit([intent(1), intent(2, hold_until=T0 + 40), intent(3)])
    store.claim_next(T0)
    store.mark_retry("rg1_0001", T0 + 20, "HTTP 500")
    store.claim_next(T0)
    store.mark_accepted("rg1_0003", "ord_3", T0, next_poll_at=T0 + 10)
    assert store.next_wakeup() == T0 + 10
    store.mark_status("rg1_0003", OrderState.DELIVERED, T0 + 10)
    assert store.next_wakeup() == T0 + 20
    store.claim_next(T0 + 20)
    store.mark_rejected("rg1_0001", "unknown sku", T0 + 20)
    # The held order is the core's to release at T0 + 40 (decide.next_due); the
    # sender has nothing to do until the core wakes it.
    assert store.next_wakeup() is None


def test_counters_and_listings(store: Store) -> None:
    store.commit([intent(1, at=T0), intent(2, at=T0 + 100), intent(3, at=T0 + 200)])
    store.claim_next(T0 + 300)
    store.mark_accepted("rg1_0001", "ord_1", T0 + 300)
    assert store.queue_depth() == 2
    assert store.oldest_queued_age(T0 + 300) == 200
    assert [r.key for r in store.orders_since(T0 + 100)] == ["rg1_0002", "rg1_0003"]
    assert [r.key for r in store.list_orders(limit=2)] == ["rg1_0003", "rg1_0002"]
    assert [r.key for r in store.open_orders()] == ["rg1_0001", "rg1_0002", "rg1_0003"]
    assert [r.key for r in store.find_prefix("rg1_000")] == ["rg1_0001", "rg1_0002", "rg1_0003"]
    # LIKE wildcards in a prefix are literal.
    assert store.find_prefix("rg1%") == []


def test_prune_forgets_old_events_and_old_finished_orders(store: Store) -> None:
    day = 86400.0
    store.commit(
        [intent(1), intent(2), RememberEvent("old", T0), RememberEvent("new", T0 + 20 * day)],
    )
    store.claim_next(T0)
    store.mark_rejected("rg1_0001", "unknown sku", T0)
    removed = store.prune(T0 + 40 * day, dedupe_retention=30 * day, history_retention=30 * day)
    assert removed == 2
    assert not store.is_seen("old")
    assert store.is_seen("new")
    assert store.get("rg1_0001") is None
    # Open orders are never pruned, however old.
    assert store.get("rg1_0002") is not None


def test_requeue_and_delete_respect_states(store: Store) -> None:
    store.commit([intent(1), intent(2)])
    store.claim_next(T0)
    store.mark_rejected("rg1_0001", "unknown sku", T0)
    assert store.requeue("rg1_0001", T0 + 5)
    row = store.get("rg1_0001")
    assert row is not None and (row.state, row.attempts) == (OrderState.QUEUED, 0)
    assert not store.requeue("rg1_0002", T0 + 5)  # queued already
    store.claim_next(T0 + 5)
    assert not store.delete("rg1_0001")  # on the wire
    assert store.delete("rg1_0002")
    assert store.get("rg1_0002") is None


def test_core_and_sender_threads_share_the_outbox(tmp_path: Path) -> None:
    Store.open(tmp_path).close()
    total = 150
    claimed: list[str] = []
    done = threading.Event()

    def sender() -> None:
        s = Store.open(tmp_path)
        while len(claimed) < total:
            row = s.claim_next(T0 + 1)
            if row is None:
                if done.is_set() and s.claim_next(T0 + 1) is None:
                    break
                continue
            s.mark_accepted(row.key, f"ord_{row.seq}", T0 + 1, next_poll_at=T0 + 999)
            claimed.append(row.key)
        s.close()

    thread = threading.Thread(target=sender)
    thread.start()
    core = Store.open(tmp_path)
    for n in range(total):
        core.commit([intent(n), RememberEvent(f"e{n}", T0)])
    done.set()
    thread.join(timeout=60)
    assert sorted(claimed) == sorted(f"rg1_{n:04d}" for n in range(total))
    assert len(set(claimed)) == total
    assert core.queue_depth() == 0
    core.close()


# ---------------------------------------------------------------- the queue CLI functions


def test_queue_list_shows_a_table(tmp_path: Path) -> None:
    s = Store.open(tmp_path)
    s.commit([intent(1, at=T0), intent(2, at=T0 + 3000)])
    s.claim_next(T0)
    s.mark_retry("rg1_0001", T0 + 5, "HTTP 503: the shop is\ntemporarily unavailable")
    s.close()
    out = io.StringIO()
    assert queue_list(tmp_path, out, now=T0 + 7200) == 0
    lines = out.getvalue().splitlines()
    assert lines[0].split() == [
        "KEY",
        "PRODUCT",
        "DEVICE",
        "STATE",
        "AGE",
        "TRIES",
        "LAST",
        "ERROR",
    ]
    assert lines[1].split()[:6] == ["rg1_0002", "soap", "laundry", "queued", "1h", "0"]
    assert lines[2].split()[:6] == ["rg1_0001", "soap", "laundry", "queued", "2h", "1"]
    assert lines[2].endswith("HTTP 503: the shop is temporarily unavailable")


def test_queue_functions_never_create_an_outbox(tmp_path: Path) -> None:
    out = io.StringIO()
    assert queue_list(tmp_path / "typo", out, now=T0) == 1
    assert queue_retry(tmp_path / "typo", "rg1_", out) == 1
    assert queue_drop(tmp_path / "typo", "rg1_", out) == 1
    assert "no outbox" in out.getvalue()
    assert not (tmp_path / "typo").exists()


def test_queue_retry_only_rejected_or_blocked(tmp_path: Path) -> None:
    s = Store.open(tmp_path)
    s.commit([intent(1), intent(2)])
    s.claim_next(T0)
    s.mark_rejected("rg1_0001", "unknown sku", T0)
    out = io.StringIO()
    assert queue_retry(tmp_path, "rg1_000", out) == 1
    assert "2 orders start with" in out.getvalue()
    assert queue_retry(tmp_path, "rg1_0002", out) == 1
    assert "only rejected or blocked" in out.getvalue()
    assert queue_retry(tmp_path, "rg1_0001", out) == 0
    row = s.get("rg1_0001")
    assert row is not None and (row.state, row.attempts) == (OrderState.QUEUED, 0)
    s.close()


def test_queue_drop_refuses_orders_at_the_shop(tmp_path: Path) -> None:
    s = Store.open(tmp_path)
    s.commit([intent(1), intent(2)])
    s.claim_next(T0)
    s.mark_accepted("rg1_0001", "ord_1", T0)
    out = io.StringIO()
    assert queue_drop(tmp_path, "rg1_0001", out) == 1
    assert "cancel it instead" in out.getvalue()
    assert queue_drop(tmp_path, "nope", out) == 1
    assert queue_drop(tmp_path, "rg1_0002", out) == 0
    assert "dropped order rg1_0002" in out.getvalue()
    assert s.get("rg1_0002") is None
    assert s.get("rg1_0001") is not None
    s.close()


def test_a_sent_but_unanswered_order_is_cancelled_at_the_shop_not_here(store: Store) -> None:
    # The request left, the answer was lost: the shop may have created the order.
    store.commit([intent(1)])
    store.claim_next(T0)
    store.mark_retry("rg1_0001", T0 + 5, "connection dropped", now=T0)
    result = store.commit([CancelOrder(key="rg1_0001", product="soap", device="x")])
    assert result.local_cancels == ()
    assert result.remote_cancels == ("rg1_0001",)
    row = store.get("rg1_0001")
    assert row is not None and row.state is OrderState.QUEUED and row.cancel_requested
    # It is sent again with the same key; once the shop answers, the cancel is due at once.
    again = store.claim_next(T0 + 5)
    assert again is not None and again.key == "rg1_0001"
    store.mark_accepted("rg1_0001", "ord_1", T0 + 6, next_poll_at=T0 + 606)
    assert [r.key for r in store.due_followups(T0 + 6)] == ["rg1_0001"]


def test_queue_drop_refuses_an_order_that_may_be_at_the_shop(tmp_path: Path) -> None:
    s = Store.open(tmp_path)
    s.commit([intent(1)])
    s.claim_next(T0)
    s.mark_retry("rg1_0001", T0 + 5, "read timeout", now=T0)
    out = io.StringIO()
    assert queue_drop(tmp_path, "rg1_0001", out) == 1
    assert "the shop may have it" in out.getvalue() and "--force" in out.getvalue()
    assert s.get("rg1_0001") is not None
    assert queue_drop(tmp_path, "rg1_0001", out, force=True) == 0
    assert s.get("rg1_0001") is None
    s.close()


def test_queue_drop_refuses_a_delivered_order_and_says_it_is_history(tmp_path: Path) -> None:
    s = Store.open(tmp_path)
    s.commit([intent(1), intent(2)])
    s.claim_next(T0)
    s.mark_accepted("rg1_0001", "ord_1", T0)
    assert s.mark_status("rg1_0001", OrderState.DELIVERED, T0 + 60)
    s.claim_next(T0)
    s.mark_accepted("rg1_0002", "ord_2", T0)
    assert s.mark_status("rg1_0002", OrderState.CANCELLED, T0 + 60)
    for key, state in (("rg1_0001", "delivered"), ("rg1_0002", "cancelled")):
        out = io.StringIO()
        assert queue_drop(tmp_path, key, out, history_retention=90 * 86400.0) == 1
        said = out.getvalue()
        assert f"was {state} at the shop" in said and "it is history" in said
        assert "after limits.history_retention (90d)" in said and "--force" in said
        assert s.get(key) is not None
    out = io.StringIO()
    assert queue_drop(tmp_path, "rg1_0001", out, force=True) == 0
    assert "dropped order rg1_0001 (soap, was delivered)" in out.getvalue()
    assert s.get("rg1_0001") is None
    s.close()


def test_queue_drop_takes_orders_that_never_reached_the_shop(tmp_path: Path) -> None:
    s = Store.open(tmp_path)
    s.commit([intent(1), intent(2), intent(3, hold_until=T0 + 30)])
    s.claim_next(T0)
    s.mark_rejected("rg1_0001", "HTTP 422: unknown sku", T0)
    result = s.commit([CancelOrder(key="rg1_0003", product="soap", device="laundry")])
    assert result.local_cancels == ("rg1_0003",)
    for key, was in (("rg1_0001", "rejected"), ("rg1_0002", "queued"), ("rg1_0003", "cancelled")):
        out = io.StringIO()
        assert queue_drop(tmp_path, key, out) == 0, out.getvalue()
        assert f"dropped order {key} (soap, was {was})" in out.getvalue()
        assert s.get(key) is None
    s.close()


def test_queue_drop_refuses_an_expired_order_whose_requests_went_unanswered(
    tmp_path: Path,
) -> None:
    s = Store.open(tmp_path)
    s.commit([intent(1)])
    s.claim_next(T0)
    s.mark_retry("rg1_0001", T0 + 5, "read timeout", now=T0)
    s.claim_next(T0 + 5)
    s.mark_rejected(
        "rg1_0001",
        "expired; 1 earlier request(s) went unanswered, so the shop may have it",
        T0 + 5,
    )
    out = io.StringIO()
    assert queue_drop(tmp_path, "rg1_0001", out) == 1
    assert "the shop may have it" in out.getvalue() and "sent 2 times" in out.getvalue()
    assert "/cancel" in out.getvalue()
    assert queue_drop(tmp_path, "rg1_0001", out, force=True) == 0
    s.close()


def test_queue_drop_never_removes_an_order_at_the_shop_even_with_force(tmp_path: Path) -> None:
    s = Store.open(tmp_path)
    s.commit([intent(1)])
    s.claim_next(T0)
    s.mark_accepted("rg1_0001", "ord_1", T0)
    out = io.StringIO()
    assert queue_drop(tmp_path, "rg1_0001", out, force=True) == 1
    assert "hold the button (a long press)" in out.getvalue()
    assert s.get("rg1_0001") is not None
    s.close()


# A version 1 outbox, as the gateway wrote it before the intent was stored whole:
# the Reorder API body as bytes, and no gateway column.
_V1_ORDERS = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE orders (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL UNIQUE, product TEXT NOT NULL,
    sku TEXT NOT NULL, quantity INTEGER NOT NULL, device TEXT NOT NULL,
    trigger TEXT NOT NULL, event_id TEXT NOT NULL, body BLOB NOT NULL, state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at REAL NOT NULL, last_error TEXT,
    shop_order_id TEXT, cancel_requested INTEGER NOT NULL DEFAULT 0, hold_until REAL,
    created_at REAL NOT NULL, updated_at REAL NOT NULL);
INSERT INTO meta VALUES ('schema_version', '1');
"""


def test_a_version_1_outbox_is_migrated_and_rebuilds_the_same_request(tmp_path: Path) -> None:
    old_body = (
        b'{"created_at":"2023-11-14T22:13:20.250Z","quantity":1,"sku":"SKU-SOAP",'
        b'"source":{"device":"laundry","event_id":"evt-1","gateway":"old-pi",'
        b'"trigger":"press"}}'
    )
    db = sqlite3.connect(tmp_path / DB_NAME)
    db.executescript(_V1_ORDERS)
    db.execute(
        "INSERT INTO orders (key, product, sku, quantity, device, trigger, event_id, body, "
        "state, attempts, next_attempt_at, created_at, updated_at) "
        "VALUES ('rg1_old', 'soap', 'SKU-SOAP', 1, 'laundry', 'press', 'evt-1', ?, "
        "'sending', 1, 0, ?, ?)",
        (old_body, T0 + 0.25, T0 + 0.25),
    )
    db.commit()
    db.close()
    store = Store.open(tmp_path)
    try:
        assert store.schema_version() == SCHEMA_VERSION
        assert store.device_boots() == {}  # version 3's table, there after any upgrade
        row = store.get("rg1_old")
        assert row is not None and row.gateway == "old-pi" and row.state is OrderState.SENDING
        # The replay after the upgrade carries the very bytes the shop stored.
        assert build_body(row.intent) == old_body
    finally:
        store.close()


def test_claims_follow_the_outbox_order_and_skip_keys_on_the_wire(store: Store) -> None:
    store.commit([intent(1), intent(2), intent(3)])
    first = store.claim_next(T0)
    second = store.claim_next(T0, exclude={"rg1_0001"})
    third = store.claim_next(T0, exclude={"rg1_0001", "rg1_0002"})
    assert [r.key for r in (first, second, third) if r] == ["rg1_0001", "rg1_0002", "rg1_0003"]
    # Without the exclusion a row left 'sending' is a crash's leftover and comes first.
    again = store.claim_next(T0)
    assert again is not None and again.key == "rg1_0001" and again.attempts == 2
