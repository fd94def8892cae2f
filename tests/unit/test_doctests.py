"""Every example in a docstring of gateway/ and devices/ runs and holds."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import devices
import gateway

MODULES = sorted(
    info.name
    for package in (gateway, devices)
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + ".")
    if not info.name.endswith("__main__")
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {name}"


def test_noisy_reports_are_limited_but_counted_in_the_next() -> None:
    from gateway.core.events import Outcome, Report
    from gateway.outputs.reports import NoisyReportLimiter

    limiter = NoisyReportLimiter(burst=1, per_second=1.0)
    bad = Report(Outcome.INVALID, "scale", 0.0, detail="not JSON")
    assert limiter.admit(bad, now=0.0) == bad
    assert limiter.admit(bad, now=0.1) is None
    assert limiter.admit(bad, now=0.2) is None
    later = limiter.admit(bad, now=1.5)
    assert later is not None and later.detail == "not JSON (2 more like it not shown)"
    ordered = Report(Outcome.ORDERED, "scale", 0.0)
    assert all(limiter.admit(ordered, now=2.0) == ordered for _ in range(10))


def test_battery_chatter_never_holds_back_an_ignored_word() -> None:
    from gateway.core.events import Outcome, Report
    from gateway.outputs.reports import NoisyReportLimiter

    limiter = NoisyReportLimiter(burst=1, per_second=0.0)
    chatter = Report(Outcome.IGNORED, "pantry", 0.0, detail="no button event", routine=True)
    assert limiter.admit(chatter, now=0.0) == chatter
    assert limiter.admit(chatter, now=0.1) is None
    word = Report(Outcome.IGNORED, "pantry", 0.0, detail="action 'double' is not mapped")
    assert limiter.admit(word, now=0.2) == word
