"""The page's live feed (per-client queues that drop and count) and its new views."""

from __future__ import annotations

import re
import time
from pathlib import Path

from prometheus_client import CollectorRegistry

from gateway.config.models import Config
from gateway.core.events import OrderState, Outcome, Price, Report, Rule
from gateway.outbox.views import OrderRow
from gateway.web import views
from gateway.web.journal import Decision, DecisionJournal
from gateway.web.live import CLOSED, RECENT_DECISIONS, LiveFeed

LEDS_MD = Path(__file__).resolve().parents[2] / "docs" / "leds.md"


def test_the_led_table_names_the_patterns_of_docs_leds_md_in_order() -> None:
    documented = re.findall(r"^\| `(\w+)` \|", LEDS_MD.read_text(), re.MULTILINE)
    assert documented == [p for p, _, _ in views.LED_PATTERNS]


def test_a_client_that_does_not_read_loses_changes_counted_and_others_still_get_them() -> None:
    feed = LiveFeed(queue_size=2)
    slow, fast = feed.subscribe(), feed.subscribe()
    assert slow is not None and fast is not None
    for n in range(5):
        feed.note_reading("scale", at=float(n))
        assert fast.get_nowait() == '{"kind":"reading","device":"scale"}'
    assert feed.dropped == 3
    registry = CollectorRegistry()
    registry.register(feed.collector())
    assert registry.get_sample_value("reorder_web_live_dropped_total") == 3
    assert registry.get_sample_value("reorder_web_live_clients") == 2
    assert slow.qsize() == 2
    feed.close()  # the stream ends even with a full queue
    assert CLOSED in [slow.get_nowait(), slow.get_nowait()]
    assert feed.clients() == 0


def test_more_streams_than_the_limit_are_refused_and_a_closed_one_frees_its_place() -> None:
    feed = LiveFeed(max_clients=1)
    first = feed.subscribe()
    assert first is not None
    assert feed.subscribe() is None
    feed.unsubscribe(first)
    assert feed.subscribe() is not None


def test_decisions_are_kept_newest_first_bounded_and_per_device() -> None:
    feed = LiveFeed()
    for n in range(RECENT_DECISIONS + 5):
        feed.note_report(
            Report(Outcome.ABSORBED, "b1", float(n), product="soap", rule=Rule.COOLDOWN)
        )
    recent = feed.recent()
    assert len(recent) == RECENT_DECISIONS
    assert recent[0].at == RECENT_DECISIONS + 4 and "by cooldown" in recent[0].text
    # An order's later state is news about the order, not a decision about a message
    # from the button: it is in the recent decisions, and leaves the device's alone.
    feed.note_report(
        Report(Outcome.ORDER_STATUS, "b1", 999.0, order_key="k", state=OrderState.ACCEPTED)
    )
    assert "accepted" in feed.recent()[0].text
    seen = feed.devices()["b1"]
    assert seen.last_message_at == RECENT_DECISIONS + 4
    assert seen.last_decision is not None and "by cooldown" in seen.last_decision.text


def _row(key: str, created_at: float, state: OrderState, price: Price | None) -> OrderRow:
    return OrderRow(
        key=key, seq=1, gateway="gw", product="soap", sku="S", quantity=2, device="b1",
        trigger="press", event_id=key, state=state, attempts=1, next_attempt_at=0.0,
        last_error=None, shop_order_id=None, cancel_requested=False, hold_until=None,
        created_at=created_at, updated_at=created_at, shop="shop", price=price,
    )  # fmt: skip


def test_spending_counts_this_months_bought_orders_and_shows_the_caps() -> None:
    config = Config.model_validate(
        {
            "gateway": {"id": "kitchen"},
            "commerce": {"base_url": "http://127.0.0.1:1/api/v1"},
            "limits": {"max_orders_per_day": 4},
            "products": {"soap": {"sku": "S", "quantity": 2, "max_per_day": 6}},
        }
    )
    now = time.mktime((2026, 6, 15, 12, 0, 0, 0, 0, -1))  # mid-month: no month edge
    eur = Price("EUR", 1399)
    rows = [
        _row("a", now - 60, OrderState.ACCEPTED, eur),
        _row("b", now - 120, OrderState.DELIVERED, eur),
        _row("c", now - 180, OrderState.CANCELLED, eur),  # never paid
        _row("d", now - 240, OrderState.QUEUED, None),
        _row("e", views.month_start(now) - 1, OrderState.DELIVERED, eur),  # last month
    ]
    shown = views.spending(config, rows, now)
    assert "27.98 EUR" in shown
    assert "1 order(s) whose price" in shown
    assert "<td>orders, all products</td><td>4</td><td>4</td>" in shown
    assert "<td>soap quantity</td><td>8</td><td>6</td>" in shown


def test_decisions_are_kept_across_a_restart_and_a_torn_line_is_skipped(tmp_path: Path) -> None:
    feed = LiveFeed(journal=DecisionJournal(tmp_path))
    feed.note_report(Report(Outcome.ORDERED, "hall", 10.0, product="tea", order_key="rg1_k"))
    feed.note_report(
        Report(Outcome.ORDER_STATUS, "hall", 11.0, order_key="rg1_k", state=OrderState.ACCEPTED)
    )
    journal_file = tmp_path / "decisions.jsonl"
    assert oct(journal_file.stat().st_mode & 0o777) == "0o600"
    with journal_file.open("a") as out:
        out.write('{"at": 12.0, "device": "ha')  # a power cut in the middle of a line
    journal = DecisionJournal(tmp_path)
    again = LiveFeed(journal=journal)
    assert [d.outcome for d in again.recent()] == ["order_status", "ordered"]
    assert journal.skipped == 1
    seen = again.devices()["hall"]  # the decision about its message, not the order's news
    assert seen.last_decision is not None and seen.last_decision.outcome == "ordered"
    # The next decision starts a line of its own, after the torn one.
    again.note_report(Report(Outcome.ABSORBED, "hall", 13.0, product="tea"))
    assert [d.outcome for d in DecisionJournal(tmp_path).load(10)][-1] == "absorbed"


def test_the_journal_is_bounded_and_a_disk_error_is_counted_not_raised(tmp_path: Path) -> None:
    journal = DecisionJournal(tmp_path, max_bytes=300)
    for n in range(20):
        journal.append(Decision(float(n), "hall", "absorbed", "tea", f"hall: absorbed {n}"))
    assert (tmp_path / "decisions.1.jsonl").exists()
    assert (tmp_path / "decisions.jsonl").stat().st_size <= 300
    kept = journal.load(100)
    assert kept[-1].text == "hall: absorbed 19" and len(kept) < 20
    assert [d.at for d in kept] == sorted(d.at for d in kept)
    gone = DecisionJournal(tmp_path / "no-such-dir")
    gone.append(Decision(1.0, "hall", "ordered", "tea", "hall: ordered"))
    assert gone.failed == 1
