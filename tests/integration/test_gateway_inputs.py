"""The gateway's inputs end to end: GPIO on gpiozero's MockFactory, MQTT devices
through a real mosquitto, orders counted at the real reference shop.

* GPIO (the :class:`~gateway.daemon.Gateway` in this process, so its pins can be
  driven): contact bounce is no press, a long press cancels, a press orders and
  the LED shows ``received`` and then ``accepted``; a second press under the
  Dash rule shows ``already ordered``.
* the demo topic ``reorder/<id>/sim/gpio/<pin>`` of ``reorder-gateway run --demo``;
* Zigbee2MQTT's double publish (state topic, ``/action`` sub-topic, and again)
  is one order; the same button pressed after the dedupe window orders again;
* retained messages are never a press, on the first subscribe or after a restart;
* the gateway stopped (SIGTERM) and killed (SIGKILL) while three device families
  publish: every press becomes exactly one order (persistent session, QoS 1);
* the broker restarted with presses in flight, and again while the gateway is
  down with presses queued for it: nothing lost, nothing doubled.

Waits are deadlines for something to happen, never measurements.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from gpiozero.pins.mock import MockPin

from firmware_sim.shop.server import ShopServer
from gateway.clock import RealClock
from gateway.config.load import load_config
from gateway.core.events import LedPattern
from gateway.daemon import Gateway, RunOptions
from gateway.outputs.led import PATTERNS
from tests.support.broker import Broker
from tests.support.gateway import GatewayProcess, orders_by_event, press_payload
from tests.support.leds import lit_durations, on_periods
from tests.support.publisher import Publisher, wait_until
from tests.support.shop import shop_fixture  # noqa: F401  (fixture "shop")

DEADLINE = 30.0  # seconds; only reached when something is broken

Z2M = "zigbee2mqtt/pantry"
JSON_BUTTON = "home/hall/button"
SHELLY = "shellies/porch/input_event/0"
DEVICES: dict[str, Any] = {
    "products": {
        "detergent": {"sku": "TIDE-PODS-42", "one_open_order": False},
        "coffee": {"sku": "LAVAZZA-1KG", "one_open_order": False},
    },
    "buttons": [
        {
            "name": "e2e-button",
            "mqtt": "home/reorder/e2e-button",
            "profile": "reorder-button",
            "product": "detergent",
        },
        {"name": "pantry", "mqtt": Z2M, "profile": "zigbee2mqtt", "product": "coffee"},
        {
            "name": "hall",
            "mqtt": JSON_BUTTON,
            "profile": "json",
            "action": "action",
            "event_id": "msg_id",
            "product": "detergent",
        },
        {"name": "porch", "mqtt": SHELLY, "profile": "shelly", "product": "coffee"},
    ],
}


@pytest.fixture
def gateways(tmp_path: Path, broker: Broker, shop: ShopServer) -> Iterator[list[GatewayProcess]]:
    """Gateway processes a test starts; all killed at teardown, whatever happened."""
    started: list[GatewayProcess] = []
    try:
        yield started
    finally:
        for gw in started:
            gw.close()


def gateway_process(
    gateways: list[GatewayProcess],
    tmp_path: Path,
    broker: Broker,
    shop: ShopServer,
    config: dict[str, Any],
    **kwargs: Any,
) -> GatewayProcess:
    gw = GatewayProcess(
        tmp_path / f"gw{len(gateways)}",
        config,
        broker_url=broker.url,
        shop_url=shop.url,
        shop_token=shop.token,
        **kwargs,
    )
    gateways.append(gw)
    return gw


def outcomes(gw: GatewayProcess, device: str | None = None) -> list[str]:
    return [
        str(e.get("outcome"))
        for e in gw.events.items
        if device is None or e.get("device") == device
    ]


def wait_orders(shop: ShopServer, n: int) -> list[dict[str, Any]]:
    wait_until(lambda: len(shop.orders()) >= n, DEADLINE, f"{n} orders at the shop")
    return shop.orders()


def assert_once_each(shop: ShopServer, event_ids: list[str]) -> None:
    """Every id became exactly one order, and nothing else was ordered."""
    wait_orders(shop, len(event_ids))
    counts = orders_by_event(shop.orders())
    assert counts == dict.fromkeys(event_ids, 1), {
        "missing": sorted(set(event_ids) - set(counts)),
        "doubled": sorted(k for k, v in counts.items() if v > 1),
        "unexpected": sorted(set(counts) - set(event_ids)),
    }


# --------------------------------------------------------------------------- GPIO


# The longest "on" of every pattern but accepted, which is solid for seconds.
LONGEST_BLINK = max(b.on_time for p, b in PATTERNS.items() if p != LedPattern.ACCEPTED)


@pytest.fixture
def gpio_gateway(tmp_path: Path, broker: Broker, shop: ShopServer) -> Iterator[Gateway]:
    """The Gateway class in this process, on MockFactory pins 17 (button) and 27 (LED)."""
    config = {
        "gateway": {"id": "gpio", "state_dir": str(tmp_path / "state"), "pin_factory": "mock"},
        "mqtt": {"url": broker.url},
        "commerce": {"base_url": shop.url, "token": shop.token},
        "metrics": {"enabled": False},
        "homeassistant": {"discovery": False},
        "products": {"detergent": {"sku": "TIDE-PODS-42", "one_open_order": True}},
        "buttons": [
            {
                "name": "laundry",
                "gpio": 17,
                "led": 27,
                "product": "detergent",
                "bounce_time": "100ms",
                "hold_time": "1s",
            }
        ],
    }
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    gateway = Gateway(load_config(path, env={}), RunOptions(path, RealClock()))
    try:
        gateway.start()
        assert gateway.ready.wait(DEADLINE), "the in-process gateway never connected"
        yield gateway
    finally:
        gateway.shutdown()


def test_gpio_bounce_hold_press_and_the_led_patterns(
    gpio_gateway: Gateway, broker: Broker, shop: ShopServer
) -> None:
    gpio = gpio_gateway.gpio
    assert gpio is not None and gpio.pin_factory is not None
    button: MockPin = gpio.pin_factory.pin(17)
    led: MockPin = gpio.pin_factory.pin(27)
    with Publisher(broker.url) as watcher:
        watcher.subscribe("reorder/gpio/events")

        def events() -> list[dict[str, Any]]:
            return [json.loads(m.payload) for m in watcher.messages("reorder/gpio/events")]

        # Contact bounce: closed and opened again at once (well inside 100 ms).
        button.drive_low()
        button.drive_high()
        wait_until(lambda: gpio.stats().get("bounces") == 1, DEADLINE, "the bounce counted")

        # A long press is a hold: with nothing open, there is nothing to cancel.
        button.drive_low()
        wait_until(lambda: gpio.stats().get("holds") == 1, DEADLINE, "the hold")
        button.drive_high()
        wait_until(
            lambda: [e["outcome"] for e in events()] == ["nothing_to_cancel"],
            DEADLINE,
            "nothing_to_cancel",
        )
        assert shop.orders() == []

        # A press: ordered, accepted by the shop; LED shows received, then accepted.
        lit_before = on_periods(led)
        gpio.drive(17, "press", hold_seconds=0.3)
        wait_until(
            lambda: any(e.get("state") == "accepted" for e in events()), DEADLINE, "accepted"
        )
        assert [o["source"]["device"] for o in shop.orders()] == ["laundry"]
        assert [e["outcome"] for e in events()][1:] == ["ordered", "order_status"]
        # received (one short blink; the accepted pattern may cut it short), then
        # accepted: solid, longer than any blink of any pattern, then dark again.
        wait_until(
            lambda: any(t > LONGEST_BLINK for t in lit_durations(led)), DEADLINE, "accepted LED"
        )
        assert on_periods(led) - lit_before in (1, 2)
        assert led.state == 0
        lit_before = on_periods(led)

        # Pressed again while that order is open: the Dash rule absorbs it and the
        # LED blinks twice (already ordered).
        gpio.drive(17, "press", hold_seconds=0.3)
        wait_until(lambda: events()[-1]["outcome"] == "absorbed", DEADLINE, "absorbed")
        assert events()[-1]["rule"] == "one_open_order"
        wait_until(lambda: on_periods(led) == lit_before + 2, DEADLINE, "two more blinks")
        assert len(shop.orders()) == 1
        assert gpio.stats() == {"bounces": 1, "holds": 1, "presses": 2}


def test_demo_topic_drives_the_mock_pins_of_a_gateway_process(
    gateways: list[GatewayProcess], tmp_path: Path, broker: Broker, shop: ShopServer
) -> None:
    config = {
        "gateway": {"pin_factory": "mock"},
        "buttons": [{"name": "laundry", "gpio": 17, "led": 27, "product": "detergent"}],
    }
    gw = gateway_process(gateways, tmp_path, broker, shop, config, demo=True)
    gw.start().wait_ready()
    with Publisher(broker.url) as pub:
        pub.publish("reorder/e2e/sim/gpio/17", b'{"action": "jump"}')
        pub.publish("reorder/e2e/sim/gpio/17", b'{"action": "press"}')
    orders = wait_orders(shop, 1)
    assert [o["source"]["device"] for o in orders] == ["laundry"]
    assert [o["source"]["trigger"] for o in orders] == ["press"]
    gw.events.wait_for(lambda evs: any(e.get("state") == "accepted" for e in evs))
    assert outcomes(gw)[:2] == ["invalid", "ordered"]


# --------------------------------------------------------------------------- MQTT devices


def test_zigbee_double_publish_is_one_order_and_a_later_press_another(
    gateways: list[GatewayProcess], tmp_path: Path, broker: Broker, shop: ShopServer
) -> None:
    gw = gateway_process(
        gateways, tmp_path, broker, shop, {**DEVICES, "limits": {"dedupe_window": "1s"}}
    )
    gw.start().wait_ready()
    with Publisher(broker.url) as pub:
        # What some Aqara buttons do through Zigbee2MQTT for ONE press: the state
        # object, the legacy action sub-topic, and the state object once more.
        pub.publish(Z2M, b'{"action": "single", "battery": 97, "linkquality": 120}')
        pub.publish(f"{Z2M}/action", b"single")
        pub.publish(Z2M, b'{"action": "single", "battery": 97, "linkquality": 120}')
        pub.publish(Z2M, b'{"battery": 97, "linkquality": 117}')  # no action: routine
        gw.events.wait_for(lambda evs: any(e.get("routine") for e in evs))
        # The decisions; the order's status report may already follow them.
        decisions = [o for o in outcomes(gw, "pantry") if o != "order_status"]
        assert decisions == ["ordered", "duplicate", "duplicate", "ignored"]
        time.sleep(1.3)  # past the 1 s dedupe window: the next one is a new press
        pub.publish(Z2M, b'{"action": "single", "battery": 96, "linkquality": 119}')
    orders = wait_orders(shop, 2)
    assert [o["sku"] for o in orders] == ["LAVAZZA-1KG", "LAVAZZA-1KG"]
    assert len({o["source"]["event_id"] for o in orders}) == 2
    # The decision's event travels through the broker; the order may reach the shop first.
    gw.events.wait_for(lambda _evs: outcomes(gw, "pantry").count("ordered") >= 2)
    assert outcomes(gw, "pantry").count("ordered") == 2


def test_retained_messages_are_never_a_press(
    gateways: list[GatewayProcess], tmp_path: Path, broker: Broker, shop: ShopServer
) -> None:
    with Publisher(broker.url) as pub:
        # Left on the broker before the gateway ever subscribed (a misconfigured
        # bridge, or a device that publishes with retain).
        pub.publish(Z2M, b'{"action": "single"}', retain=True)
        pub.publish(JSON_BUTTON, b'{"action": "press", "msg_id": "r-1"}', retain=True)
        gw = gateway_process(gateways, tmp_path, broker, shop, DEVICES)
        gw.start().wait_ready()
        gw.events.wait_for(lambda evs: len(evs) >= 2)
        assert sorted(outcomes(gw)) == ["ignored", "ignored"]
        assert all("retained" in e["detail"] for e in gw.events.items)
        # A live press is one, of course (the broker clears the retain flag for
        # subscribers that are already listening).
        pub.publish(JSON_BUTTON, b'{"action": "press", "msg_id": "live-1"}')
        wait_orders(shop, 1)
        # After a restart the broker sends the retained messages again: still ignored.
        gw.terminate()
        gw.start().wait_ready()
        gw.events.wait_for(lambda evs: outcomes(gw).count("ignored") >= 4)
        pub.publish(JSON_BUTTON, b'{"action": "press", "msg_id": "live-2"}')
        assert_once_each(shop, ["live-1", "live-2"])
        pub.clear_retained(Z2M)
        pub.clear_retained(JSON_BUTTON)
    assert outcomes(gw).count("ordered") == 2


def _three_families(i: int) -> tuple[str, bytes, str]:
    """Press ``i`` from one of three families that carry ids; returns the shop's event id."""
    family = i % 3
    if family == 0:
        return "home/reorder/e2e-button", press_payload(f"rb-{i}", i), f"rb-{i}"
    if family == 1:
        return JSON_BUTTON, json.dumps({"action": "press", "msg_id": f"js-{i}"}).encode(), f"js-{i}"
    return SHELLY, json.dumps({"event": "S", "event_cnt": i}).encode(), f"cnt-{i}"


def test_gateway_stopped_and_killed_while_devices_publish_loses_nothing(
    gateways: list[GatewayProcess], tmp_path: Path, broker: Broker, shop: ShopServer
) -> None:
    gw = gateway_process(gateways, tmp_path, broker, shop, DEVICES)
    gw.start().wait_ready()
    presses = [_three_families(i) for i in range(150)]
    published = threading.Event()
    failure: list[BaseException] = []

    def publish_all() -> None:
        try:
            with Publisher(broker.url, "devices", persistent=True) as pub:
                for topic, payload, _ in presses:
                    pub.publish(topic, payload)
                    time.sleep(0.01)  # a steady stream across both restarts
        except BaseException as exc:  # handed to the test thread
            failure.append(exc)
        finally:
            published.set()

    publisher = threading.Thread(target=publish_all, name="devices")
    publisher.start()
    try:
        wait_until(lambda: len(gw.events.items) >= 20, DEADLINE, "the first decisions")
        stopped_mid_stream = not published.is_set()
        code, _ = gw.terminate()  # graceful: finishes the batch in hand
        assert code == 0
        gw.start()
        wait_until(lambda: len(gw.events.items) >= 70, DEADLINE, "decisions after the restart")
        gw.kill()  # no goodbye at all: unacknowledged messages come again
        gw.start().wait_ready()
    finally:
        publisher.join(DEADLINE)
    assert not failure, failure
    assert stopped_mid_stream, "the stream ended before the first stop: make it longer"
    assert_once_each(shop, [event_id for _, _, event_id in presses])
    assert "Traceback" not in gw.log_text()


def test_broker_restarts_with_presses_in_flight_and_queued_lose_nothing(
    gateways: list[GatewayProcess], tmp_path: Path, broker: Broker, shop: ShopServer
) -> None:
    gw = gateway_process(gateways, tmp_path, broker, shop, DEVICES)
    gw.start().wait_ready()
    first = [_three_families(i) for i in range(60)]
    second = [_three_families(i) for i in range(60, 120)]
    with Publisher(broker.url, "devices-a", persistent=True) as pub:
        for topic, payload, _ in first:
            pub.publish(topic, payload)
    # At once, with most of these still on their way to the gateway.
    broker.restart()
    wait_until(lambda: gw.current_log().count("MQTT: connected to") >= 2, DEADLINE, "reconnect")
    gw.terminate()
    # The gateway is away: its persistent session holds these for it, and the
    # broker's persistence file keeps them across its second restart.
    with Publisher(broker.url, "devices-b", persistent=True) as pub:
        for topic, payload, _ in second:
            pub.publish(topic, payload)
    broker.restart()
    gw.start().wait_ready()
    assert_once_each(shop, [event_id for _, _, event_id in first + second])
    log = gw.log_text()
    assert "lost the connection" in log and "session resumed" in log
    assert "Traceback" not in log
