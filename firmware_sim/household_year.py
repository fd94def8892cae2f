"""A household's year of coffee, seeded: what is used when, and how long the shop takes.

The same seed gives the same year, so several reorder policies can be run through
it and compared (``bench/replenish.py``). The year holds:

* daily use with a weekly rhythm (more at weekends) and random variation from day
  to day, taken in a few doses at breakfast, lunch and in the afternoon;
* holidays (one or two weeks with no use at all) and guests (two or three times the
  use for a few days);
* lifts: the jar is taken off the scale at every dose, for a minute or a few, and
  the scale reads (about) nothing meanwhile; sensor noise on every reading;
* delivery times from 1 to 5 days, and the shop sometimes slow (a parcel taking
  twice as long, and a fortnight or two a year when everything does).

The year knows only what happens; stock, orders and refills are the policy runner's
(the refill is a pack added to the jar the moment the shop delivers).

>>> year = HouseholdYear.generate(seed=1)
>>> len(year.doses) > 365 * 2, 1.0 <= year.lead_time(year.start + 3600) <= 15.0
(True, True)
>>> year.total_use() == HouseholdYear.generate(seed=1).total_use()
True
"""

from __future__ import annotations

import bisect
import itertools
import random
from dataclasses import dataclass, field

DAY = 86_400.0
YEAR_DAYS = 365
# 2027-01-04 00:00 UTC, a Monday: the year begins with a week.
YEAR_START = 1_799_020_800.0


@dataclass(frozen=True)
class Dose:
    """One use of the product: ``amount`` taken at ``at``, the jar off the scale for
    ``lift`` seconds while it happens."""

    at: float
    amount: float
    lift: float


@dataclass(frozen=True)
class HouseholdYear:
    """The seeded year. ``doses`` are sorted by time; lead times are per day
    (an order accepted on a day takes that day's delivery time)."""

    seed: int
    start: float
    doses: tuple[Dose, ...]
    leads: tuple[float, ...]  # per day, seconds
    holidays: tuple[tuple[int, int], ...]  # (first day, days)
    guests: tuple[tuple[int, int], ...]
    slow_spells: tuple[tuple[int, int], ...]
    noise: float = 1.5  # grams, standard deviation of a reading
    _times: tuple[float, ...] = field(default=(), repr=False, compare=False)
    _cumulative: tuple[float, ...] = field(default=(), repr=False, compare=False)

    @classmethod
    def generate(
        cls, seed: int, *, weekday_use: float = 38.0, weekend_factor: float = 1.5
    ) -> HouseholdYear:
        rnd = random.Random(seed)
        holidays = _spells(rnd, count=2, length=(7, 14), avoid=())
        guests = _spells(rnd, count=3, length=(3, 5), avoid=holidays)
        slow = _spells(rnd, count=2, length=(10, 16), avoid=())
        doses: list[Dose] = []
        for day in range(YEAR_DAYS):
            if _inside(day, holidays):
                continue
            weekend = day % 7 in (5, 6)
            use = weekday_use * (weekend_factor if weekend else 1.0)
            use *= rnd.lognormvariate(0.0, 0.25)
            if _inside(day, guests):
                use *= rnd.uniform(2.0, 3.0)
            count = rnd.choice((2, 3, 3, 4))
            times = sorted(rnd.uniform(6.5, 21.0) * 3600 for _ in range(count))
            for t in times:
                lift = rnd.uniform(40.0, 240.0)
                doses.append(Dose(YEAR_START + day * DAY + t, use / count, lift))
        leads: list[float] = []
        for day in range(YEAR_DAYS + 30):
            lead = rnd.triangular(1.0, 5.0, 2.0)
            if rnd.random() < 0.08 or _inside(day, slow):
                lead *= 2.0  # the shop is slow: a lost parcel, a strike, the season
            leads.append(lead * DAY)
        return cls(
            seed=seed,
            start=YEAR_START,
            doses=tuple(doses),
            leads=tuple(leads),
            holidays=holidays,
            guests=guests,
            slow_spells=slow,
            _times=tuple(d.at for d in doses),
            _cumulative=tuple(itertools.accumulate((d.amount for d in doses), initial=0.0)),
        )

    @property
    def end(self) -> float:
        return self.start + YEAR_DAYS * DAY

    def lead_time(self, accepted_at: float) -> float:
        """How long an order accepted at ``accepted_at`` takes to arrive."""
        day = min(max(int((accepted_at - self.start) // DAY), 0), len(self.leads) - 1)
        return self.leads[day]

    def use_between(self, since: float, until: float) -> float:
        """What the household wants between two moments (the planner's foresight)."""
        lo = bisect.bisect_left(self._times, since)
        hi = bisect.bisect_left(self._times, until)
        return self._cumulative[hi] - self._cumulative[lo] if hi > lo else 0.0

    def total_use(self) -> float:
        return sum(d.amount for d in self.doses)

    def reading_noise(self, rnd: random.Random) -> float:
        return rnd.gauss(0.0, self.noise)


def _inside(day: int, spells: tuple[tuple[int, int], ...]) -> bool:
    return any(first <= day < first + length for first, length in spells)


def _spells(
    rnd: random.Random,
    *,
    count: int,
    length: tuple[int, int],
    avoid: tuple[tuple[int, int], ...],
) -> tuple[tuple[int, int], ...]:
    """``count`` non-overlapping spells, none in the first month (the gateway learns
    then) and none overlapping ``avoid``."""
    found: list[tuple[int, int]] = []
    while len(found) < count:
        days = rnd.randint(*length)
        first = rnd.randint(30, YEAR_DAYS - days - 1)
        taken = (*avoid, *found)
        if any(first < f + n + 3 and f < first + days + 3 for f, n in taken):
            continue
        found.append((first, days))
    return tuple(sorted(found))
