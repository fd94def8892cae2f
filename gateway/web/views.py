"""The History additions and the Devices page, as HTML fragments.

Pure rendering from what the outbox and the :class:`~gateway.web.live.LiveFeed` hold;
:class:`~gateway.web.server.WebPage` wraps them in the page.

>>> month_start(0.0) <= 0.0
True
"""

from __future__ import annotations

import html
import time
from collections.abc import Sequence

from gateway.clock import rfc3339
from gateway.config.models import Config
from gateway.outbox.views import OrderRow
from gateway.web.journal import Decision
from gateway.web.live import DeviceSeen

DAY = 86400.0

# docs/leds.md's table (tests/unit/test_web_views.py keeps the two the same).
LED_PATTERNS: tuple[tuple[str, str, str], ...] = (
    ("received", "one short blink (0.15 s)", "the press reached the gateway"),
    ("accepted", "solid on for 3 s", "the shop accepted the order"),
    ("already_ordered", "two slow blinks", "an order for this product is on its way"),
    ("queued", "a short flash every second", "the shop cannot be reached; sent later"),
    ("limit_reached", "fast flicker for 5 s", "a daily cap said no: nothing was ordered"),
    ("rejected", "three long blinks", "the shop refused this order for good"),
    ("blocked", "mostly lit, a short dark gap", "the shop refused the gateway's token"),
    ("cancelled", "three quick blinks", "the order was cancelled"),
    ("off", "dark", "a long press found nothing to cancel"),
)


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def month_start(now: float) -> float:
    """Midnight of the first of this month, in the gateway's local time."""
    t = time.localtime(now)
    return time.mktime((t.tm_year, t.tm_mon, 1, 0, 0, 0, 0, 0, -1))


def spending(config: Config, rows: Sequence[OrderRow], now: float) -> str:
    """This month's spending per currency, and the caps with how much of them is used."""
    start = month_start(now)
    totals: dict[str, int] = {}
    unpriced = 0
    for r in rows:
        if r.created_at < start or not r.state.was_bought:
            continue
        if r.price is None:
            unpriced += 1
            continue
        totals[r.price.currency] = totals.get(r.price.currency, 0) + r.price.total_minor
    parts = ["<h2>Spending this month</h2>"]
    if not totals:
        parts.append("<p>nothing with a price yet</p>")
    for currency, minor in sorted(totals.items()):
        parts.append(f'<p class="spent">{minor / 100:.2f} {_e(currency)}</p>')
    if unpriced:
        parts.append(f"<p>and {unpriced} order(s) whose price the shop has not told</p>")
    day = [r for r in rows if r.created_at >= now - DAY]
    cap = config.limits.max_orders_per_day
    parts.append(
        "<h2>Caps</h2><table><tr><th>cap</th><th>used (last 24 h)</th><th>limit</th></tr>"
        f"<tr><td>orders, all products</td><td>{len(day)}</td><td>{cap}</td></tr>"
    )
    for name, product in config.products.items():
        if product.max_per_day is None:
            continue
        used = sum(r.quantity for r in day if r.product == name)
        parts.append(
            f"<tr><td>{_e(name)} quantity</td><td>{used}</td><td>{product.max_per_day}</td></tr>"
        )
    parts.append("</table>")
    return "".join(parts)


def decisions(recent: Sequence[Decision]) -> str:
    """The decisions since the gateway started, newest first, each with its reason."""
    parts = ["<h2>Decisions</h2>"]
    if not recent:
        parts.append("<p>none since the gateway started</p>")
        return "".join(parts)
    parts.append('<table class="decisions"><tr><th>when</th><th>decision</th></tr>')
    for d in recent:
        parts.append(f"<tr><td>{_e(rfc3339(d.at))}</td><td>{_e(d.text)}</td></tr>")
    parts.append("</table>")
    return "".join(parts)


def devices(config: Config, seen: dict[str, DeviceSeen]) -> str:
    """Each configured button and sensor: its last message, the last decision, and its
    battery and link where its messages carry them."""
    parts = [
        "<h1>Devices</h1><table><tr><th>device</th><th>last message</th>"
        "<th>last decision</th><th>battery / link</th></tr>"
    ]
    named = [(b.name, "button", b.product) for b in config.buttons]
    named += [(s.name, "sensor", s.product) for s in config.sensors]
    for name, kind, product in named:
        last = seen.get(name)
        when = rfc3339(last.last_message_at) if last is not None else "nothing yet"
        what = last.last_decision.text if last is not None and last.last_decision else "—"
        health = "not reported"
        if last is not None and last.vitals is not None and last.vitals_at is not None:
            health = f"{last.vitals.describe()} (at {rfc3339(last.vitals_at)})"
        parts.append(
            f'<tr data-device="{_e(name)}"><td>{_e(name)} ({kind}, {_e(product)})</td>'
            f"<td>{_e(when)}</td><td>{_e(what)}</td><td>{_e(health)}</td></tr>"
        )
    parts.append("</table><h2>What the LED says</h2>")
    parts.append("<table><tr><th>pattern</th><th>the LED</th><th>means</th></tr>")
    for pattern, looks, means in LED_PATTERNS:
        parts.append(f"<tr><td>{_e(pattern)}</td><td>{_e(looks)}</td><td>{_e(means)}</td></tr>")
    parts.append("</table>")
    return "".join(parts)
