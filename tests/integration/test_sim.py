"""The firmware simulator against a real mosquitto and the real reference shop.

The sim runs in-process at a high time scale; a plain MQTT client subscribed to
``#`` sees exactly what a gateway would, and every payload is parsed with the
gateway's own device profiles.
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from devices import DeviceAction, DeviceReading, ParseError, ProfileOptions, get_profile
from firmware_sim.scenario import Scenario, ScenarioError, load_scenario, parse_scenario
from firmware_sim.shop.server import ShopServer
from firmware_sim.sim import SimRunner, main
from tests.support.broker import Broker
from tests.support.publisher import Publisher, Received, wait_until

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "firmware_sim" / "scenarios" / "demo.yaml"

SCALE_OPTIONS = ProfileOptions(value_path="weight_g")
LEVEL_OPTIONS = ProfileOptions(value_path="level_pct")


def run_sim(scenario: Scenario, broker: Broker, **kwargs: Any) -> tuple[dict[str, int], str]:
    out = io.StringIO()
    kwargs.setdefault("run_id", "t1")
    summary = SimRunner(scenario, broker=broker.url, out=out, **kwargs).run()
    return summary, out.getvalue()


def on(messages: list[Received], topic: str) -> list[Received]:
    return [m for m in messages if m.topic == topic]


def readings(messages: list[Received], topic: str, options: ProfileOptions) -> list[float]:
    values = []
    for m in on(messages, topic):
        for item in get_profile("json").parse(topic, m.payload, options):
            assert isinstance(item, DeviceReading)
            values.append(item.value)
    return values


def record(broker: Broker) -> Publisher:
    watcher = Publisher(broker.url)
    watcher.subscribe("#")
    return watcher


def all_of(watcher: Publisher, summary: dict[str, int]) -> list[Received]:
    """Everything the sim published (mosquitto keeps one connection's order)."""
    count = summary["published"]
    return watcher.wait_for(lambda ms: len(ms) >= count)


@pytest.fixture(scope="module")
def demo() -> Scenario:
    return load_scenario(DEMO)


# --------------------------------------------------------------------------- the demo


def test_demo_scenario_publishes_what_the_demo_gateway_expects(
    broker: Broker, demo: Scenario
) -> None:
    with record(broker) as watcher:
        summary, output = run_sim(demo, broker, time_scale=36000)  # 10 sim hours in 1 s
        got = all_of(watcher, summary)

    assert summary["presses"] == 4
    assert summary["duplicates"] == 1
    assert summary["double_publishes"] == 1
    assert summary["lifts"] == 1
    assert summary["malformed"] == 0
    assert len(got) == summary["published"]

    # laundry: GPIO 17 through the gateway's sim topic, twice (the second is absorbed).
    gpio = on(got, "reorder/demo/sim/gpio/17")
    assert [json.loads(m.payload) for m in gpio] == [{"action": "press"}] * 2

    # hallway: one press sent twice with the same event id (a lost PUBACK).
    hallway = on(got, "reorder/demo-devices/hallway")
    parsed = [
        get_profile("reorder-button").parse(m.topic, m.payload, ProfileOptions()) for m in hallway
    ]
    assert len(parsed) == 2 and parsed[0] == parsed[1]
    assert isinstance(parsed[0][0], DeviceAction) and parsed[0][0].event_id == "hallway-t1-1"

    # pantry: the press is published twice, identically; status updates carry no action.
    z2m = get_profile("zigbee2mqtt")
    actions = [
        m.payload
        for m in on(got, "zigbee2mqtt/pantry_button")
        if z2m.parse(m.topic, m.payload, ProfileOptions())
    ]
    assert len(actions) == 2 and actions[0] == actions[1]

    # coffee-scale: one lift of 1-3 readings near 0 g, then the jar is back.
    weights = readings(got, "sensors/coffee-scale/state", SCALE_OPTIONS)
    lifted = [i for i, w in enumerate(weights) if w <= 5.0]
    assert 1 <= len(lifted) <= 3
    assert lifted == list(range(lifted[0], lifted[-1] + 1))
    assert weights[lifted[-1] + 1] > 250
    # ... and later it drops below 250 g and stays there (no shop: no refill).
    first_low = next(i for i, w in enumerate(weights) if i > lifted[-1] and w < 250)
    assert all(w < 252 for w in weights[first_low:])
    assert len(weights[first_low:]) >= 3  # stays low for well over the 60 s settle
    assert "[sim 2026-11-26 06:00] coffee-scale 301 g" in output

    tank = readings(got, "sensors/detergent-tank/state", LEVEL_OPTIONS)
    assert tank and all(15 < v <= 62.5 for v in tank)
    assert json.loads(output.splitlines()[-1]) == summary


# --------------------------------------------------------------------------- seeded


CHAOTIC = """
name: chaotic
start: "2026-11-26 00:00"
duration: 2d
seed: 5
devices:
  - kind: reorder-button
    name: hall
    topic: buttons/hall
    duplicate_rate: 0.5
    ack_timeout: 2s
    schedule: {every: 3h, jitter: 20m}
  - kind: zigbee2mqtt
    name: pantry
    status_every: 4h
    schedule: {every: 7h, jitter: 1h}
  - kind: tasmota
    name: desk
    schedule: {presses: [{at: "09:00"}, {at: "21:00", day: 1, action: hold}]}
  - kind: shelly
    name: door
    schedule: {every: 11h}
  - kind: scale
    name: jar
    topic: sensors/jar
    interval: 30m
    use_per_day_g: 80
    lift_every: 12h
chaos:
  malformed_rate: 0.2
"""


def test_same_seed_publishes_the_same_messages_and_another_seed_does_not(
    broker: Broker,
) -> None:
    scenario = parse_scenario(CHAOTIC)
    runs = []
    for seed in (5, 5, 6):
        with record(broker) as watcher:
            summary, _ = run_sim(scenario, broker, time_scale=400_000, seed=seed)
            got = all_of(watcher, summary)
        runs.append([(m.topic, m.payload) for m in got])
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


def test_every_device_family_parses_and_chaos_garbage_does_not(broker: Broker) -> None:
    scenario = parse_scenario(CHAOTIC)
    with record(broker) as watcher:
        summary, output = run_sim(scenario, broker, time_scale=400_000)
        got = all_of(watcher, summary)
    profiles = {
        "buttons/hall": ("reorder-button", ProfileOptions()),
        "zigbee2mqtt/pantry": ("zigbee2mqtt", ProfileOptions()),
        "stat/desk/RESULT": ("tasmota", ProfileOptions()),
        "shellies/door/input_event/0": ("shelly", ProfileOptions()),
        "sensors/jar": ("json", ProfileOptions(value_path="weight_g")),
    }
    rejected = 0
    actions: dict[str, list[str]] = {}
    for m in got:
        name, options = profiles[m.topic]
        try:
            items = get_profile(name).parse(m.topic, m.payload, options)
        except ParseError:
            rejected += 1
            continue
        actions.setdefault(m.topic, []).extend(
            i.action for i in items if isinstance(i, DeviceAction)
        )
    # Garbage that happens to parse (e.g. a truncated status) is possible but rare.
    assert summary["malformed"] > 5
    assert rejected >= summary["malformed"] * 0.7
    assert actions["stat/desk/RESULT"] == ["press", "hold"]
    assert summary["duplicates"] > 0 and summary["reconnects"] == summary["duplicates"]
    assert "chaos: " in output


def test_flood_and_reconnect_storm(broker: Broker) -> None:
    scenario = parse_scenario(
        """
name: storm
start: "2026-11-26 08:00"
duration: 1h
devices:
  - {kind: gpio, name: laundry, pin: 17}
  - {kind: reorder-button, name: hall, topic: buttons/hall, schedule: {presses: [{at: "08:10"}]}}
chaos:
  flood: [{at: "08:20", device: hall, rate: 500, seconds: 0.1}]
  reconnect_storm: [{at: "08:30", count: 3}]
"""
    )
    with record(broker) as watcher:
        summary, output = run_sim(scenario, broker, time_scale=10_000, gateway_id="kitchen")
        got = all_of(watcher, summary)
    assert summary["flood"] == 50
    assert summary["reconnects"] == 3
    assert summary["duplicates"] == 0  # the press was acknowledged before the storm
    assert len(on(got, "buttons/hall")) == 51
    assert "reconnected to the broker" in output


# --------------------------------------------------------------------------- the shop loop


def place_order(shop: ShopServer, sku: str, key: str) -> None:
    response = httpx.post(
        f"{shop.url}/orders",
        headers={"Authorization": f"Bearer {shop.token}", "Idempotency-Key": key},
        json={
            "sku": sku,
            "quantity": 1,
            "source": {"gateway": "test", "device": "jar", "trigger": "manual", "event_id": key},
            "created_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        },
    )
    assert response.status_code in (200, 201), response.text


REFILL = """
name: refill
start: "2026-11-26 07:00"
duration: 4h
shop: {poll: 5m}
devices:
  - kind: scale
    name: jar
    topic: sensors/jar
    sku: LAVAZZA-1KG
    interval: 5m
    full_g: 1000
    start_g: 120
"""


def test_scale_refills_once_per_order_the_shop_delivers(broker: Broker, tmp_path: Path) -> None:
    shop = ShopServer(
        tmp_path / "shop.db", token="s3cret", time_scale=3600, ship_after="1m", deliver_after="1m"
    ).start()
    try:
        # Delivered before the sim starts: must not refill anything.
        place_order(shop, "LAVAZZA-1KG", "before-start")
        wait_until(lambda: shop.orders()[0]["status"] == "delivered", 5.0, "first delivery")
        out = io.StringIO()
        runner = SimRunner(
            parse_scenario(REFILL),
            broker=broker.url,
            time_scale=3600,  # 4 sim hours in 4 s
            shop_url=shop.url,
            shop_token="s3cret",
            run_id="t",
            out=out,
        )
        with record(broker) as watcher:
            thread = threading.Thread(target=runner.run)
            thread.start()
            watcher.wait_for(lambda ms: len(ms) >= 3)  # running, baseline taken
            place_order(shop, "LAVAZZA-1KG", "during-run")
            place_order(shop, "TIDE-PODS-42", "other-sku")  # not this scale's sku
            thread.join(timeout=30)
            assert not thread.is_alive()
            weights = readings(watcher.received.items, "sensors/jar", SCALE_OPTIONS)
    finally:
        shop.stop()
    assert runner.counts["refills"] == 1
    assert runner.counts["shop_errors"] == 0
    assert weights[0] < 130 and max(weights) > 990
    assert "jar refilled to 1000 g" in out.getvalue()
    assert "s3cret" not in out.getvalue()


def test_wrong_shop_token_is_reported_and_counted(broker: Broker, tmp_path: Path) -> None:
    with ShopServer(tmp_path / "shop.db", token="right") as shop:
        summary, output = run_sim(
            parse_scenario(REFILL.replace("4h", "5m")),
            broker,
            time_scale=3000,
            shop_url=shop.url,
            shop_token="wrong-token",
        )
    assert summary["shop_errors"] >= 1 and summary["refills"] == 0
    assert re.search(r"answered 40[13] — check --shop-token", output)
    assert "wrong-token" not in output


# --------------------------------------------------------------------------- scenario errors


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: x\nstart: 2026-11-26\n", "<s>:2: start: expected a date and time such as"),
        (
            'name: x\nstart: "2026-11-26 06:00"\nduration: 1h\ndevices:\n  - kind: scale\n'
            "    name: jar\n    topic: t\n    intervall: 5m\n",
            "<s>:8: devices[0].intervall: unknown key 'intervall' — did you mean 'interval'?",
        ),
        (
            'name: x\nstart: "2026-11-26 06:00"\nduration: 60\ndevices: []\n',
            "<s>:3: duration: has no time unit",
        ),
        (
            'name: x\nstart: "2026-11-26 06:00"\nduration: 1h\ndevices:\n  - kind: lamp\n'
            "    name: a\n",
            "<s>:5: devices[0]: unknown device kind — use one of: reorder-button,",
        ),
        (
            'name: x\nstart: "2026-11-26 06:00"\nduration: 1h\ndevices:\n'
            "  - {kind: gpio, name: a, pin: 17}\n  - {kind: gpio, name: a, pin: 17}\n",
            "<s>:6: devices[1].name: 'a' is already used by devices[0]",
        ),
        (
            'name: x\nstart: "2026-11-26 06:00"\nduration: 1h\ndevices:\n'
            "  - {kind: gpio, name: a, pin: 17, schedule: {presses: [{at: 25:00}]}}\n",
            "<s>:5: devices[0].schedule.presses[0].at: '25:00' is not a time of day",
        ),
        ("name: [unclosed\n", "<s>:2: not valid YAML"),
    ],
)
def test_scenario_problems_name_file_line_and_fix(text: str, expected: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(text, "<s>")
    assert any(p.startswith(expected) for p in caught.value.problems), caught.value.problems


def test_unquoted_times_are_read_as_times_not_sexagesimal_numbers() -> None:
    scenario = parse_scenario(
        'name: x\nstart: "2026-11-26 06:00"\nduration: 1d\ndevices:\n'
        "  - {kind: gpio, name: a, pin: 4, schedule: {presses: [{at: 10:30}]}}\n"
    )
    assert scenario.devices[0].schedule.presses[0].at == 10 * 3600 + 30 * 60  # type: ignore[union-attr]


def test_cli_reports_scenario_errors_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text('name: x\nstart: "2026-11-26 06:00"\nduration: 1h\ndevices:\n  - {kind: gpio}\n')
    assert main(["--scenario", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:5: devices[0]: 'name' is required" in err
    assert f"{bad}:5: devices[0]: 'pin' is required" in err
    assert "Traceback" not in err


def test_cli_runs_as_a_module_and_ends_with_a_json_summary(broker: Broker) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "firmware_sim.sim", "--broker", broker.url, "--scenario", str(DEMO),
         "--time-scale", "72000", "--quiet"],
        capture_output=True, text=True, timeout=60, cwd=ROOT, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1
    assert json.loads(lines[0])["presses"] == 4


def test_cli_says_clearly_when_the_broker_is_not_there(tmp_path: Path) -> None:
    stopped = Broker(tmp_path / "b")  # a free port nobody listens on
    command = [sys.executable, "-m", "firmware_sim.sim", "--broker", stopped.url]
    done = subprocess.run(
        [*command, "--scenario", str(DEMO)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 1
    assert f"reorder-sim: cannot connect to {stopped.url}" in done.stderr
    assert "Traceback" not in done.stderr
