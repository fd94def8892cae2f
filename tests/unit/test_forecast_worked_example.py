"""The worked example of docs/forecasting.md, computed by the forecast itself: every
figure the page shows is checked here, so the page cannot drift from the code."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from gateway.core.forecast import (
    DAY,
    ForecastRules,
    LeadTime,
    Usage,
    day_number,
    explain,
    projection,
    should_order,
)

MONDAY_8AM = datetime(2026, 11, 30, 8, tzinfo=UTC).timestamp()
RULES = ForecastRules()  # service_level 99 %
DEFAULT_LEAD = 2 * DAY


def learned(*days: float) -> LeadTime:
    lead = LeadTime()
    for took in days:
        lead = lead.learn(took * DAY, default=DEFAULT_LEAD)
    return lead


USAGE = Usage(
    level=410.0,
    level_at=MONDAY_8AM,
    rates=(38.0, 36.0, 40.0, 37.0, 38.0, 56.0, 56.0),
    sq=(3.0**2,) * 7,
    recent=44.6,
    peak_sq=10.0**2,
    days_learned=21,
    day=day_number(MONDAY_8AM),
)
LEAD = learned(2, 3.5, 2, 2.5, 2)


def order_level(lead: LeadTime) -> float:
    """The highest level at which the forecast orders (bisection on the level)."""
    low, high = 0.0, 5000.0
    for _ in range(60):
        mid = (low + high) / 2
        p = projection(replace(USAGE, level=mid), lead, DEFAULT_LEAD, MONDAY_8AM, RULES)
        assert p is not None
        low, high = (mid, high) if should_order(p, RULES) else (low, mid)
    return low


def test_the_learned_lead_time() -> None:
    assert LEAD.mean_or(DEFAULT_LEAD) / DAY == pytest.approx(2.27, abs=0.005)
    assert LEAD.upper(DEFAULT_LEAD, z=RULES.z) / DAY == pytest.approx(4.13, abs=0.005)


def test_demand_safety_and_the_table() -> None:
    p = projection(USAGE, LEAD, DEFAULT_LEAD, MONDAY_8AM, RULES)
    assert p is not None
    assert p.demand == pytest.approx(4.133 * 44.6, abs=0.5)  # 184 g
    assert round(p.demand) == 184
    assert math.sqrt(4.133 * 9 + 100) == pytest.approx(11.7, abs=0.05)
    assert round(p.safety) == 27
    assert round(p.left_on_arrival) == 198 and not should_order(p, RULES)  # 410 g: wait
    at_250 = projection(replace(USAGE, level=250.0), LEAD, DEFAULT_LEAD, MONDAY_8AM, RULES)
    assert at_250 is not None and round(at_250.left_on_arrival) == 38
    assert not should_order(at_250, RULES)
    level = order_level(LEAD)
    assert math.floor(level) == 211
    at_order = projection(replace(USAGE, level=211.0), LEAD, DEFAULT_LEAD, MONDAY_8AM, RULES)
    assert at_order is not None and should_order(at_order, RULES)
    assert explain("coffee", at_order, "g") == (
        "coffee: 211 g left, 45 g/day, delivery usually 2.3 days → ordering now"
    )
    # The threshold (150 g) is reached (211 - 150) / 44.6 days later: about 33 hours.
    assert round((math.floor(level) - 150) / 44.6 * 24) == 33


def test_a_slower_shop_orders_days_earlier() -> None:
    slow = learned(5, 6.5, 4, 5, 4.5)
    assert slow.mean_or(DEFAULT_LEAD) / DAY == pytest.approx(4.2, abs=0.05)
    assert slow.upper(DEFAULT_LEAD, z=RULES.z) / DAY == pytest.approx(11.2, abs=0.05)
    assert round(order_level(slow)) == 557
