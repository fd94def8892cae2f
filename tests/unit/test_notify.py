"""Notifications: what each says, and delivery through apprise to a real local receiver."""

from __future__ import annotations

import time

from gateway.core.events import OrderState, Outcome, Price, Report
from gateway.outputs.notify import (
    AppriseChannel,
    Notifications,
    ProductFacts,
    compose,
    split_urls,
)
from tests.support.receiver import PushReceiver, closed_port

FACTS = {
    "coffee": ProductFacts(quantity=2, confirm=True, confirm_expires=86_400.0),
    "tea": ProductFacts(quantity=1, confirm_window=30.0),
}
LINK = "https://gw.local:8443"


def report(outcome: Outcome, product: str = "coffee", **extra: object) -> Report:
    return Report(outcome, "pantry", 0.0, product, order_key="rg1_k", **extra)  # type: ignore[arg-type]


def test_a_held_order_asks_for_a_yes_names_price_and_that_it_is_paid() -> None:
    message = compose(report(Outcome.HELD, state=OrderState.HELD), FACTS, LINK)
    assert message is not None
    assert "2 × coffee" in message.title
    assert "paid order" in message.body
    assert "Price:" in message.body
    assert "press the button again" in message.body and f"{LINK}/orders/rg1_k" in message.body
    assert "24 h" in message.body


def test_a_confirm_window_order_says_when_and_how_to_cancel() -> None:
    message = compose(report(Outcome.HELD, "tea", state=OrderState.HELD), FACTS, None)
    assert message is not None
    assert message.title == "Ordering 1 × tea in 30 s"
    assert "long press" in message.body and "paid order" in message.body


def test_an_accepted_order_names_the_shops_price() -> None:
    price = Price("EUR", 2798, 1399)
    message = compose(
        report(Outcome.ORDER_STATUS, state=OrderState.ACCEPTED, price=price), FACTS, LINK
    )
    assert message is not None
    assert message.title == "Ordered: 2 × coffee, 27.98 EUR"
    assert "paid order" in message.body and f"{LINK}/orders/rg1_k" in message.body


def test_failures_and_expiry_are_told_and_everything_else_is_not() -> None:
    rejected = compose(
        report(Outcome.ORDER_STATUS, state=OrderState.REJECTED, detail="unknown sku"), FACTS, None
    )
    assert rejected is not None and "unknown sku" in rejected.body
    blocked = compose(report(Outcome.ORDER_STATUS, state=OrderState.BLOCKED), FACTS, None)
    assert blocked is not None and "credentials" in blocked.body
    expired = compose(report(Outcome.EXPIRED), FACTS, None)
    assert expired is not None and "nothing was ordered" in expired.body
    for quiet in (Outcome.ORDERED, Outcome.ABSORBED, Outcome.CANCEL_REQUESTED):
        assert compose(report(quiet), FACTS, LINK) is None
    assert compose(report(Outcome.ORDER_STATUS, state=OrderState.SHIPPED), FACTS, LINK) is None


def test_urls_are_split_on_spaces_commas_and_lines() -> None:
    assert split_urls(" ntfy://a/b,json://c/d\nmailtos://e ") == [
        "ntfy://a/b",
        "json://c/d",
        "mailtos://e",
    ]


def test_delivered_to_a_real_local_receiver_once_per_order_and_kind() -> None:
    with PushReceiver() as phone:
        sender = Notifications(AppriseChannel(phone.apprise_url), FACTS, link_base=LINK)
        sender.start()
        try:
            accepted = report(
                Outcome.ORDER_STATUS, state=OrderState.ACCEPTED, price=Price("EUR", 500)
            )
            sender.on_report(accepted)
            sender.on_report(accepted)  # told once, however often it is reported
            got = phone.wait_for(lambda m: m["title"].startswith("Ordered"))
            assert got["title"] == "Ordered: 2 × coffee, 5.00 EUR"
            assert "paid order" in got["body"]
            time.sleep(0.3)
            assert len(phone.received()) == 1
            assert (sender.counters.sent, sender.counters.failed) == (1, 0)
        finally:
            sender.close()


def test_an_unreachable_receiver_is_retried_counted_and_never_raises() -> None:
    channel = AppriseChannel(f"json://127.0.0.1:{closed_port()}/notify", timeout=1.0)
    sender = Notifications(channel, FACTS, link_base=None, retries=2, retry_wait=0.05)
    sender.start()
    try:
        started = time.monotonic()
        sender.on_report(report(Outcome.EXPIRED))  # returns at once
        assert time.monotonic() - started < 0.1
        deadline = time.monotonic() + 15.0
        while sender.counters.failed == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert (sender.counters.failed, sender.counters.retries, sender.counters.sent) == (1, 2, 0)
    finally:
        sender.close()


def test_urls_are_never_logged(caplog: object) -> None:
    import logging

    import pytest

    assert isinstance(caplog, pytest.LogCaptureFixture)
    secret = "tk_9f8e7d6c5b4a"
    with caplog.at_level(logging.DEBUG):
        channel = AppriseChannel(
            f"json://user:{secret}@127.0.0.1:{closed_port()}/n nosuch://{secret}", timeout=0.5
        )
        sender = Notifications(channel, FACTS, link_base=None, retries=1, retry_wait=0.01)
        sender.start()
        sender.on_report(report(Outcome.EXPIRED))
        deadline = time.monotonic() + 10.0
        while sender.counters.failed == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        sender.close()
    assert channel.services == ("json",)  # the unreadable one is left out, with an error
    assert "nosuch://" in caplog.text
    assert secret not in caplog.text
