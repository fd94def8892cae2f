"""What forecasting learns survives a restart (the learned table), is pruned, and
its settings are checked with located errors."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from gateway.clock import rfc3339
from gateway.config.load import ConfigError, load_config
from gateway.config.models import Config
from gateway.core.events import Outcome, Report, SaveLearned
from gateway.core.forecast import DAY, Interval, LeadTime, Usage
from gateway.engine.decider import load_state
from gateway.ops.status import render_status, status_document
from gateway.outbox.store import Store
from gateway.outbox.views import StateReader
from gateway.outputs.homeassistant import HomeAssistantBridge, discovery_configs

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


def _config(forecast: bool) -> Config:
    sensor: dict[str, object] = {
        "name": "scale",
        "product": "coffee",
        "mqtt": "kitchen/scale",
        "value": "grams",
        "unit": "g",
        "reorder_below": 100,
        "rearm_above": 300,
    }
    if forecast:
        sensor["forecast"] = {"service_level": "99%"}
    return Config.model_validate(
        {
            "gateway": {"id": "home"},
            "commerce": {"base_url": "http://127.0.0.1/api"},
            "products": {"coffee": {"sku": "C"}},
            "sensors": [sensor],
        }
    )


def test_status_shows_when_a_sensor_runs_out_and_when_a_product_is_due(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    empty = 1_800_345_600.0  # 2027-01-19T...
    store.commit(
        [
            SaveLearned("usage", "scale", Usage(level=300.0, told_empty_at=empty)),
            SaveLearned("interval", "tea", Interval(last=T0, mean=10 * DAY, n=2)),
        ],
        now=T0,
    )
    store.close()
    reader = StateReader(tmp_path)
    doc = status_document("home", reader.snapshot(T0))
    reader.close()
    assert doc["forecasts"] == [
        {"sensor": "scale", "runs_out": rfc3339(empty)},
        {"product": "tea", "due": rfc3339(T0 + 10 * DAY)},
    ]
    text = render_status(doc, T0)
    assert f"scale runs out {rfc3339(empty)}" in text
    assert f"tea due {rfc3339(T0 + 10 * DAY)}" in text


def test_home_assistant_gets_a_runs_out_sensor_with_the_weekday(tmp_path: Path) -> None:
    assert not [t for t in discovery_configs(_config(False)) if "runs_out" in t]
    config = _config(True)
    (topic,) = [t for t in discovery_configs(config) if "runs_out" in t]
    assert discovery_configs(config)[topic]["name"] == "scale runs out"
    sent: list[tuple[str, bytes]] = []
    bridge = HomeAssistantBridge(config, tmp_path, lambda t, p: sent.append((t, p)))
    empty = 1_800_345_600.0
    bridge.on_report(Report(Outcome.FORECAST, "scale", T0, "coffee", value=empty))
    body = json.loads(sent[-1][1])
    assert body["runs_out"] == datetime.fromtimestamp(empty).strftime("%A")
