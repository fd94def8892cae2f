"""Forecasting, pure: how fast a sensor's product is used, how long delivery takes,
and whether an order placed now is the last safe moment.

Everything here is a function of the readings, the order history and ``now``
handed in by :mod:`gateway.core.decide`; nothing reads the clock or the disk.

* :class:`Usage` learns a sensor's consumption per weekday from *settled* levels:
  readings are grouped into windows of ``lift_window`` and each window's highest
  reading is its level (a jar lifted off the scale reads low, never high); a drop
  bigger than ``refill_jump`` within one window is held until the next window
  confirms it (a long lift comes back); a rise bigger than ``refill_jump`` is a
  refill and starts a new depletion episode. Use is the sum of level changes, so
  noise cancels out over a day. A day with no use at all is taken as the household
  being away (holidays), not as a slow day.
* :class:`LeadTime` learns accepted -> delivered per product, starting from the
  configured default (worth two deliveries) so that one slow parcel moves it, but
  does not take it over.
* :func:`projection` says how much will be left when an order placed now arrives,
  with a safety margin for the service level.

>>> rules = ForecastRules(service_level=0.99, lift_window=1800.0, refill_jump=50.0)
>>> usage = Usage()
>>> for hour in range(0, 24 * 15):
...     usage = observe(usage, 1000.0 - 2.0 * hour, hour * 3600.0, rules)
>>> round(usage.rate_on(usage.day + 1))
48
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from statistics import NormalDist

DAY = 86_400.0
_WEEK = 7
# 1970-01-01 was a Thursday: day 0 is weekday 3 (Monday = 0).
_EPOCH_WEEKDAY = 3
_RATE_ALPHA = 0.3  # per weekday: about the last three weeks of that weekday count
_RECENT_ALPHA = 0.25  # all days: the last week or so
_LEAD_ALPHA_FLOOR = 0.2
_PRIOR_WEIGHT = 2.0  # the configured lead time counts as this many deliveries
_LEAD_HISTORY = 20  # deliveries kept for the slow end: about a year of a weekly product
_PEAK_FADE = 0.5 ** (1 / 60)  # per day: a surge is remembered for a couple of months


def weekday(day: int) -> int:
    """Weekday (Monday = 0) of a day number (days since 1970-01-01 in the rules' zone).

    >>> weekday(0)
    3
    """
    return (day + _EPOCH_WEEKDAY) % _WEEK


def day_number(t: float, utc_offset: float = 0.0) -> int:
    return math.floor((t + utc_offset) / DAY)


@dataclass(frozen=True)
class ForecastRules:
    """A sensor's forecast settings (``forecast:`` under the sensor in the config).

    >>> ForecastRules().z
    2.33
    """

    service_level: float = 0.99
    empty_at: float = 0.0  # the level at which the household has run out
    lift_window: float = 1800.0
    refill_jump: float = 50.0
    min_days: int = 3  # days of use learned before the forecast may order
    utc_offset: float = 0.0  # where the household's days (and weekends) begin

    @property
    def z(self) -> float:
        return round(NormalDist().inv_cdf(self.service_level), 2)


@dataclass(frozen=True)
class Usage:
    """What has been learned about one sensor's consumption (durable, small)."""

    level: float | None = None  # the last settled level
    level_at: float | None = None
    window_start: float | None = None
    window_max: float | None = None
    suspect: float | None = None  # a drop too fast to believe yet
    day: int = 0  # the day being counted
    day_used: float = 0.0
    rates: tuple[float | None, ...] = (None,) * _WEEK  # use per day, per weekday
    sq: tuple[float, ...] = (0.0,) * _WEEK  # mean squared deviation, per weekday
    recent: float | None = None  # use per day over the last week or so, all weekdays
    # The largest squared deviation of a day from its weekday's rate, fading with a
    # half-life of two months: guests came once, they may come again.
    peak_sq: float = 0.0
    days_learned: int = 0
    episode_start: float | None = None  # last refill (or first reading)
    ordered_episode: float | None = None  # episode_start of the last forecast order
    told_empty_at: float | None = None  # last projected empty time reported

    def rate_on(self, day: int) -> float | None:
        """Expected use on ``day``: its weekday's rate, else the mean of those known,
        and never below the last week's pace (guests push it up at once)."""
        known = [r for r in self.rates if r is not None]
        if not known:
            return None
        rate = self.rates[weekday(day)]
        base = rate if rate is not None else sum(known) / len(known)
        return max(base, self.recent or 0.0)

    def variance_on(self, day: int) -> float:
        """The usual day-to-day spread of ``day``'s weekday (squared)."""
        return self.sq[weekday(day)] if self.rates[weekday(day)] is not None else max(self.sq)


def observe(usage: Usage, value: float, now: float, rules: ForecastRules) -> Usage:
    """Learn from one raw reading."""
    if usage.window_start is None or usage.window_max is None:
        return replace(usage, window_start=now, window_max=value)
    if now - usage.window_start < rules.lift_window:
        if value > usage.window_max:
            return replace(usage, window_max=value)
        return usage
    settled = _settle(usage, usage.window_max, usage.window_start, rules)
    return replace(settled, window_start=now, window_max=value)


def _settle(usage: Usage, level: float, at: float, rules: ForecastRules) -> Usage:
    if usage.level is None or usage.level_at is None:
        day = day_number(at, rules.utc_offset)
        return replace(usage, level=level, level_at=at, day=day, episode_start=at)
    if level > usage.level + rules.refill_jump:
        # A refill, or a lifted jar put back after its drop was held as suspect.
        return replace(usage, level=level, level_at=at, suspect=None, episode_start=at)
    if usage.level - level > rules.refill_jump and usage.suspect is None:
        return replace(usage, suspect=level)
    used, since = usage.level - level, usage.level_at
    return _count(replace(usage, suspect=None, level=level, level_at=at), used, since, at, rules)


def _count(usage: Usage, used: float, since: float, at: float, rules: ForecastRules) -> Usage:
    """Add ``used`` to the days it fell on, spread evenly over ``since`` .. ``at`` (a
    gap in the readings, or a window across midnight)."""
    day = day_number(at, rules.utc_offset)
    if day <= usage.day:
        return replace(usage, day_used=usage.day_used + used)
    span = max(at - since, 1e-9)

    def share(d: int) -> float:
        begin = d * DAY - rules.utc_offset
        overlap = min(at, begin + DAY) - max(since, begin)
        return used * max(overlap, 0.0) / span

    for closing in range(usage.day, day):
        usage = replace(usage, day_used=usage.day_used + share(closing))
        usage = _close_day(usage, closing, rules)
        usage = replace(usage, day=closing + 1, day_used=0.0)
    return replace(usage, day_used=share(day))


def _close_day(usage: Usage, day: int, rules: ForecastRules) -> Usage:
    used = usage.day_used
    if used <= rules.refill_jump / 10:
        return usage  # nobody home: a holiday is not a slow day
    wd = weekday(day)
    rates, sq = list(usage.rates), list(usage.sq)
    before = rates[wd]
    peak = usage.peak_sq * _PEAK_FADE
    if before is None:
        rates[wd] = used
    else:
        rates[wd] = before + _RATE_ALPHA * (used - before)
        sq[wd] = sq[wd] + _RATE_ALPHA * ((used - before) ** 2 - sq[wd])
        peak = max(peak, (used - before) ** 2)
    recent = used if usage.recent is None else usage.recent + _RECENT_ALPHA * (used - usage.recent)
    return replace(
        usage,
        rates=tuple(rates),
        sq=tuple(sq),
        recent=recent,
        peak_sq=peak,
        days_learned=usage.days_learned + 1,
    )


@dataclass(frozen=True)
class LeadTime:
    """Accepted -> delivered for one product, in seconds: the usual time, its spread,
    and the last deliveries themselves (for the slow end: see :meth:`upper`).

    >>> lead = LeadTime().learn(5 * DAY, default=2 * DAY)
    >>> round(lead.mean_or(2 * DAY) / DAY, 1)
    3.0
    >>> round(lead.upper(2 * DAY, z=2.33) / DAY, 1)
    8.8
    """

    mean: float | None = None
    var: float = 0.0
    n: int = 0
    pending: tuple[tuple[str, float], ...] = ()  # (order key, accepted at), not delivered
    history: tuple[float, ...] = ()  # the last deliveries' lead times, oldest first

    def mean_or(self, default: float) -> float:
        return default if self.mean is None else self.mean

    def spread_or(self, default: float) -> float:
        return default / 3 if self.mean is None else math.sqrt(self.var)

    def upper(self, default: float, *, z: float) -> float:
        """The lead time an order must be ready to wait, at the service level ``z``.

        Delivery times are skewed: most parcels come in two or three days, a few
        take twice that. A mean and a spread (and the normal distribution they imply)
        put the slow end far too close, so the quantile is taken from a log-normal
        fitted to the last deliveries, with the configured default counted as
        ``_PRIOR_WEIGHT`` deliveries of spread a third of it.
        """
        weight = _PRIOR_WEIGHT
        prior, prior_var = math.log(default), math.log(1 + (1 / 3) ** 2)
        logs = [math.log(max(took, 60.0)) for took in self.history]
        mu = (weight * prior + sum(logs)) / (weight + len(logs))
        spread = weight * (prior_var + (prior - mu) ** 2) + sum((x - mu) ** 2 for x in logs)
        sigma = math.sqrt(spread / (weight + len(logs)))
        return max(math.exp(mu + z * sigma), self.mean_or(default))

    def learn(self, took: float, *, default: float) -> LeadTime:
        mean = self.mean_or(default)
        var = self.var if self.mean is not None else (default / 3) ** 2
        alpha = max(1.0 / (self.n + 1 + _PRIOR_WEIGHT), _LEAD_ALPHA_FLOOR)
        deviation = took - mean
        return LeadTime(
            mean=mean + alpha * deviation,
            var=(1 - alpha) * (var + alpha * deviation**2),
            n=self.n + 1,
            pending=self.pending,
            history=(*self.history, took)[-_LEAD_HISTORY:],
        )


@dataclass(frozen=True)
class Projection:
    """What an order placed now would find when it arrives."""

    level: float
    rate: float  # use per day over the lead time
    lead: float  # seconds: the usual delivery time
    demand: float  # expected use until a slow delivery (``lead_upper``) arrives
    safety: float
    empty_at: float  # projected run-out time at the expected pace
    lead_upper: float = 0.0  # seconds: the slow delivery an order must outlast

    @property
    def left_on_arrival(self) -> float:
        return self.level - self.demand - self.safety


def projection(
    usage: Usage, lead: LeadTime, default_lead: float, now: float, rules: ForecastRules
) -> Projection | None:
    """Stock projected over the lead time, or None until enough use is learned.

    The order must outlast a slow delivery (the lead time's quantile at the service
    level), with the day-to-day spread of use over that time as the safety margin.
    """
    if usage.level is None or usage.days_learned < rules.min_days:
        return None
    lead_mean = lead.mean_or(default_lead)
    lead_upper = lead.upper(default_lead, z=rules.z)
    demand = variance = 0.0
    t, end = now, now + lead_upper
    while t < end:
        day = day_number(t, rules.utc_offset)
        step = min(end, (day + 1) * DAY - rules.utc_offset) - t
        fraction = step / DAY
        demand += (usage.rate_on(day) or 0.0) * fraction
        variance += usage.variance_on(day) * fraction
        t += step
    rate = demand / (lead_upper / DAY) if lead_upper > 0 else usage.rate_on(usage.day) or 0.0
    # A remembered surge (guests) counts once, not on every day of a long delivery:
    # spread over each day it would ask for a week of guests on every order.
    safety = rules.z * math.sqrt(variance + usage.peak_sq)
    left = usage.level - rules.empty_at
    empty_at = now + (left / rate * DAY if rate > 0 else 365 * DAY)
    return Projection(usage.level, rate, lead_mean, demand, safety, empty_at, lead_upper)


def should_order(p: Projection, rules: ForecastRules) -> bool:
    return p.left_on_arrival <= rules.empty_at


def explain(product: str, p: Projection, unit: str) -> str:
    """The household's sentence for a forecast order.

    >>> p = Projection(410.0, 38.0, 2.5 * DAY, 95.0, 30.0, 0.0)
    >>> explain("coffee", p, "g")
    'coffee: 410 g left, 38 g/day, delivery usually 2.5 days → ordering now'
    """
    return (
        f"{product}: {p.level:.0f} {unit} left, {p.rate:.0f} {unit}/day, "
        f"delivery usually {p.lead / DAY:.1f} days → ordering now"
    )


# --------------------------------------------------------------------------- buttons


@dataclass(frozen=True)
class Interval:
    """The usual time between orders of a product with only a button.

    >>> i = Interval().learn(0.0).learn(10 * DAY).learn(20 * DAY)
    >>> i.due_at() / DAY
    30.0
    """

    last: float | None = None
    mean: float | None = None
    n: int = 0
    told_due: float | None = None  # the ``last`` for which "due soon" was told

    def learn(self, at: float) -> Interval:
        if self.last is None:
            return Interval(last=at)
        gap = at - self.last
        if gap <= 0:
            return self
        mean = gap if self.mean is None else self.mean + 0.3 * (gap - self.mean)
        return Interval(last=at, mean=mean, n=self.n + 1)

    def due_at(self) -> float | None:
        if self.last is None or self.mean is None or self.n < 2:
            return None
        return self.last + self.mean
