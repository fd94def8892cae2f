"""What forecasting learns survives a restart (the learned table), is pruned, and
its settings are checked with located errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config.load import ConfigError, load_config
from gateway.core.events import SaveLearned
from gateway.core.forecast import DAY, Interval, LeadTime, Usage
from gateway.engine.decider import load_state
from gateway.outbox.store import Store

T0 = 1_800_000_000.0


def test_learned_state_is_loaded_back_after_a_restart(tmp_path: Path) -> None:
    usage = Usage(
        level=420.0,
        level_at=T0,
        rates=(38.0, None, 40.0, 41.0, 39.0, 55.0, 60.0),
        days_learned=12,
        episode_start=T0 - 9 * DAY,
        ordered_episode=T0 - 9 * DAY,
    )
    lead = LeadTime(mean=2.5 * DAY, var=DAY**2, n=4, pending=(("k1", T0 - DAY),))
    interval = Interval(last=T0, mean=10 * DAY, n=3, told_due=T0)
    store = Store.open(tmp_path)
    store.commit(
        [
            SaveLearned("usage", "scale", usage),
            SaveLearned("lead", "coffee", lead),
            SaveLearned("interval", "tea", interval),
        ],
        now=T0,
    )
    store.close()
    again = Store.open(tmp_path)
    state = load_state(again, T0)
    assert state.usage == {"scale": usage}
    assert state.leads == {"coffee": lead}
    assert state.intervals == {"tea": interval}
    assert again.prune(T0 + 91 * DAY, 30 * DAY, 90 * DAY) == 3
    assert load_state(again, T0).usage == {}
    again.close()


BASE = """\
gateway:
  id: home
commerce:
  base_url: https://shop.example/api/v1
  token: t0ken
products:
  coffee:
    sku: LAVAZZA-1KG
sensors:
  - name: scale
    mqtt: kitchen/scale
    value: grams
    product: coffee
    reorder_below: 100
    rearm_above: 300
"""


def _messages(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "gw.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as raised:
        load_config(path, env={})
    return [m[len(f"{path}:") :] for m in raised.value.messages]


def test_a_forecast_config_loads(tmp_path: Path) -> None:
    path = tmp_path / "gw.yaml"
    path.write_text(BASE + "    forecast:\n      service_level: 99.5%\n      lift_window: 20m\n")
    path.chmod(0o600)
    fc = load_config(path, env={}).config.sensors[0].forecast
    assert fc is not None and fc.service_level == 0.995 and fc.lift_window == 1200.0


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            "    forecast:\n      service_level: 99\n",
            "17:22: sensors[0].forecast.service_level: has no % sign — did you mean '99%'?",
        ),
        (
            "    forecast:\n      service_level: 100%\n",
            "17:22: sensors[0].forecast.service_level: must be at least 50% and below 100% — "
            "100% would need infinite stock; 95% to 99.5% is usual",
        ),
        (
            "    forecast:\n      empty_at: 150\n",
            "17:7: sensors[0].forecast: empty_at (150) must be below reorder_below (100) — "
            "empty_at is where the household has run out, the threshold orders before it",
        ),
    ],
)
def test_forecast_mistakes_are_located(tmp_path: Path, extra: str, expected: str) -> None:
    assert _messages(tmp_path, BASE + extra) == [expected]


def test_order_when_due_is_refused_for_a_product_with_a_sensor(tmp_path: Path) -> None:
    text = BASE.replace(
        "    sku: LAVAZZA-1KG\n", "    sku: LAVAZZA-1KG\n    order_when_due: true\n"
    )
    (message,) = _messages(tmp_path, text)
    assert message.startswith("9:21: products.coffee.order_when_due: 'coffee' has the sensor")
