"""Battery and link from the devices' own messages, as the upstream projects define them.

Sources of the shapes:
- Zigbee2MQTT: zigbee-herdsman-converters ``src/lib/exposes.ts`` defines ``battery``
  (numeric, %, 0..100), ``voltage`` (numeric, mV) and ``linkquality`` (numeric,
  0..255); Z2M publishes them as keys of the device's state object, beside
  ``action`` (the IKEA E1743 entries of tests/fixtures/devices/corpus.json).
- Shelly Gen2: the API docs' DevicePower status (``battery: {V, percent}``, on
  battery devices only) and WiFi status (``rssi`` in dBm), delivered on
  ``<id>/events/rpc`` as ``NotifyStatus``/``NotifyFullStatus`` whose params name
  each component (``devicepower:0``, ``wifi``) — the Gen2 docs' Notifications page.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices import get_profile
from devices.base import Vitals
from devices.vitals import read_shelly, read_zigbee2mqtt
from gateway.core.events import ButtonEvent, InvalidInput, Outcome, Report
from gateway.inputs.routing import DeviceVitals, Ignored, Router
from gateway.web import views
from gateway.web.live import LiveFeed
from tests.unit.test_routing import CONFIG as ROUTING_CONFIG

# A Shelly Plus H&T woken from deep sleep: its full status, trimmed to what matters.
SHELLY_FULL_STATUS = json.dumps(
    {
        "src": "shellyplusht-b8d61a8b17cc",
        "dst": "shellyplusht-b8d61a8b17cc/events",
        "method": "NotifyFullStatus",
        "params": {
            "ts": 1680962879.62,
            "devicepower:0": {
                "id": 0,
                "battery": {"V": 2.91, "percent": 74},
                "external": {"present": False},
            },
            "wifi": {"sta_ip": "192.168.3.183", "status": "got ip", "ssid": "home", "rssi": -61},
            "sys": {"uptime": 3},
        },
    }
).encode()


def test_zigbee2mqtt_battery_voltage_and_link_quality() -> None:
    payload = b'{"action": "on", "battery": 87, "linkquality": 120, "voltage": 2900}'
    vitals = read_zigbee2mqtt("zigbee2mqtt/pantry", payload)
    assert vitals == Vitals(battery=87.0, voltage=2.9, link=120.0, link_unit="LQI")
    assert vitals.describe() == "battery 87 % (2.9 V) · link LQI 120"
    assert get_profile("zigbee2mqtt").vitals is read_zigbee2mqtt


def test_shelly_gen2_status_battery_and_wifi() -> None:
    vitals = read_shelly("shellyplusht-b8d61a8b17cc/events/rpc", SHELLY_FULL_STATUS)
    assert vitals == Vitals(battery=74.0, voltage=2.91, link=-61.0, link_unit="dBm")
    assert vitals.describe() == "battery 74 % (2.91 V) · link -61 dBm"
    mains = {"method": "NotifyStatus", "params": {"ts": 1.0, "wifi": {"rssi": -70}}}
    assert read_shelly("t", json.dumps(mains).encode()) == Vitals(link=-70.0, link_unit="dBm")
    event = b'{"method": "NotifyEvent", "params": {"events": []}}'
    assert read_shelly("t", event) is None


@pytest.mark.parametrize(
    "payload",
    [
        b'{"action": "single"}',  # nothing said of the battery
        b'{"battery": "87", "linkquality": true}',  # a string and a bool are not numbers
        b'{"battery": 187, "linkquality": 999, "voltage": -1}',  # out of range
        b'{"battery": NaN}',  # not JSON: the strict decoder refuses it
        b'{"battery": 1' + b"0" * 400 + b"}",  # too large for a float (found by the fuzz)
        b"single",
        b"\xff\xfe",
        b"[87]",
    ],
)
def test_what_is_not_a_plausible_number_is_not_shown(payload: bytes) -> None:
    assert read_zigbee2mqtt("zigbee2mqtt/pantry", payload) is None


# The kitchen of the routing tests: its "pantry" is a Zigbee2MQTT button on z2m/pantry.
CONFIG = ROUTING_CONFIG


def test_the_router_tells_vitals_beside_what_the_message_means() -> None:
    router = Router.from_config(CONFIG)

    def routed(payload: bytes) -> list[object]:
        return list(router.events("z2m/pantry", payload, mid=1, retain=False, dup=False, now=0.0))

    told = DeviceVitals("pantry", Vitals(battery=96.0, link=120.0, link_unit="LQI"))
    # A battery report with no press is still news of the device, and a decision
    # that says there was nothing to press: no message on a device's topic is dropped unsaid.
    assert routed(b'{"battery": 96, "linkquality": 120}') == [
        told,
        Ignored("pantry", "zigbee2mqtt: no button event in this message", routine=True),
    ]
    [vitals, press] = routed(b'{"action": "single", "battery": 96, "linkquality": 120}')
    assert vitals == told and isinstance(press, ButtonEvent) and press.action == "press"
    [vitals, ignored] = routed(b'{"action": "double", "battery": 96, "linkquality": 120}')
    assert vitals == told and isinstance(ignored, Ignored)
    [vitals, invalid] = routed(b'{"action": 5, "battery": 96, "linkquality": 120}')
    assert vitals == told and isinstance(invalid, InvalidInput)


def test_the_devices_page_shows_the_last_vitals_and_keeps_them_past_a_decision() -> None:
    feed = LiveFeed()
    client = feed.subscribe()
    assert client is not None
    feed.note_vitals("pantry", Vitals(battery=12.0, link=40.0, link_unit="LQI"), at=100.0)
    assert client.get(timeout=0) == '{"kind":"vitals","device":"pantry"}'
    feed.note_report(Report(Outcome.ORDERED, "pantry", 101.0, product="coffee", order_key="k"))
    seen = feed.devices()["pantry"]
    assert seen.last_message_at == 101.0 and seen.vitals_at == 100.0
    page = views.devices(CONFIG, feed.devices())
    assert "battery 12 % · link LQI 40" in page
    assert "not reported" in views.devices(CONFIG, {})


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=12,
)
_KEYS = st.sampled_from(["battery", "voltage", "linkquality", "method", "params", "wifi"])


@settings(max_examples=300, deadline=None)
@given(
    raw=st.binary(max_size=64),
    shaped=st.dictionaries(_KEYS | st.just("devicepower:0"), _JSON, max_size=4),
    big=st.integers(min_value=10**300, max_value=10**400),
)
def test_the_readers_never_raise(raw: bytes, shaped: dict[str, object], big: int) -> None:
    for payload in (raw, json.dumps(shaped).encode(), json.dumps({"battery": big}).encode()):
        for read in (read_zigbee2mqtt, read_shelly):
            vitals = read("t", payload)
            assert vitals is None or isinstance(vitals, Vitals)
