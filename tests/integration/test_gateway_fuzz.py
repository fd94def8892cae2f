"""10,000 random and malformed payloads through a real mosquitto into a gateway process.

Every configured device topic gets them — each button family, both sensor
families, the virtual ``press``/``cancel`` command topics — and a few messages
over ``mqtt.max_payload``. The payloads are seeded-random: bytes, text, family
examples with bytes flipped, cut or inserted, examples with JSON values replaced
by junk, nesting and number bombs. A payload that *is* a valid press (judged by
the oracle of ``tests/unit/test_devices_fuzz.py``, written apart from the
parsers) is not sent: this test is about what must never order.

Then one valid press, sent last, must order: the gateway still works, and since
one session's messages arrive in order, every fuzz message was decided before it.

Checked: the process is alive and logged no traceback; the shop has exactly the
one order; no fuzz message was decided as an order, hold-back or cancel; every
unparsable payload shows up once as ``invalid`` on the events topic and in the
``reorder_invalid_payloads`` counter, and every oversized one in that counter.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as paho
import pytest
from prometheus_client.parser import text_string_to_metric_families

from devices import ParseError, ProfileOptions, get_profile
from firmware_sim.shop.server import ShopServer
from tests.support.broker import Broker
from tests.support.gateway import GatewayProcess, orders_by_event, press_payload
from tests.support.publisher import Publisher, wait_until
from tests.support.shop import shop_fixture  # noqa: F401  (fixture "shop")
from tests.unit.test_devices_fuzz import IS_VALID_PRESS, MAX_DEPTH, depth

N_PAYLOADS = 10_000
N_OVERSIZED = 25
MAX_PAYLOAD = 8192
GATEWAY_ID = "fuzz"
DEADLINE = 120.0  # seconds; only reached when something is broken
SEED = 20260102


@dataclass(frozen=True)
class Target:
    """A configured topic, the profile that parses it, and its options."""

    topic: str
    profile: str | None  # None: a virtual command topic
    options: ProfileOptions = field(default_factory=ProfileOptions)


BUTTONS: list[dict[str, Any]] = [
    {"name": "button", "mqtt": "home/reorder/b1", "profile": "reorder-button"},
    {"name": "pantry", "mqtt": "zigbee2mqtt/pantry", "profile": "zigbee2mqtt"},
    {"name": "garage", "mqtt": "stat/garage/RESULT", "profile": "tasmota", "button_index": 2},
    {"name": "porch", "mqtt": "shellies/porch/input_event/0", "profile": "shelly"},
    {"name": "patio", "mqtt": "patio-i4/events/rpc", "profile": "shelly"},
    {"name": "node", "mqtt": "node/binary_sensor/btn/state", "profile": "esphome"},
    {
        "name": "hall",
        "mqtt": "home/hall/button",
        "profile": "json",
        "action": "action",
        "event_id": "msg_id",
    },
]
SENSORS: list[dict[str, Any]] = [
    {"name": "scale", "mqtt": "sensors/scale/state", "profile": "json", "value": "weight_g"},
    {"name": "tank", "mqtt": "node/sensor/tank/state", "profile": "esphome"},
]
CONFIG: dict[str, Any] = {
    "gateway": {"id": GATEWAY_ID},
    "metrics": {"enabled": True, "port": 0},
    "products": {"detergent": {"sku": "TIDE-PODS-42", "one_open_order": False}},
    "buttons": [{**b, "product": "detergent"} for b in BUTTONS],
    # A random low reading is a real reading: it starts a settle period that
    # outlasts the test instead of an order.
    "sensors": [
        {**s, "product": "detergent", "reorder_below": 250, "rearm_above": 800, "settle": "1d"}
        for s in SENSORS
    ],
}
ORDERING = ("ordered", "held", "cancel_requested")
SENTINEL = ("home/reorder/b1", press_payload("after-fuzz", 1))


def targets() -> list[Target]:
    out = []
    for b in BUTTONS:
        options = ProfileOptions(
            action_path=b.get("action"),
            event_id_path=b.get("event_id"),
            button_index=b.get("button_index", 1),
        )
        out.append(Target(b["mqtt"], b["profile"], options))
        out += [
            Target(f"{b['mqtt']}/{sub}", b["profile"])
            for sub in get_profile(b["profile"]).subtopics
        ]
        out += [
            Target(f"reorder/{GATEWAY_ID}/{b['name']}/{cmd}", None) for cmd in ("press", "cancel")
        ]
    for s in SENSORS:
        out.append(Target(s["mqtt"], s["profile"], ProfileOptions(value_path=s.get("value"))))
    return out


# ------------------------------------------------------------------ payloads

_JUNK_VALUES: list[Any] = [
    None, True, False, 0, -1, 1.5, 10**400, -(10**30), "", " ", "x" * 300, [], {}, [[[]]],
    "SINGLE", "Single", "ſingle", "single\x00", "press ", "ON\n", "nan", "1e999", "\ud800",
    {"action": None}, {"Action": "CLEAR"}, "💥", "\u202epress",
]  # fmt: skip
_FRAGMENTS = [b"{", b"}", b"[", b"]", b'"', b":", b",", b"\\", b"\x00", b"\xff", b"\xc3", b"NaN"]


def _random_text(rng: random.Random) -> bytes:
    chars = [
        chr(rng.choice([rng.randrange(32, 127), rng.randrange(0, 0x110000)]))
        for _ in range(rng.randrange(0, 80))
    ]
    return "".join(chars).encode("utf-8", "surrogatepass")


def _flip(rng: random.Random, data: bytes) -> bytes:
    if not data:
        return bytes([rng.randrange(256)])
    out = bytearray(data)
    for _ in range(rng.randrange(1, 4)):
        i = rng.randrange(len(out))
        op = rng.randrange(4)
        if op == 0:
            out[i] = rng.randrange(256)
        elif op == 1:
            del out[i : i + rng.randrange(1, 8)]
        elif op == 2:
            out[i:i] = rng.choice(_FRAGMENTS)
        elif out:
            out = out[: rng.randrange(len(out) + 1)]
        if not out:
            break
    return bytes(out)


def _junk_leaf(rng: random.Random, node: Any) -> Any:
    """``node`` with one leaf replaced, one key removed, or one key added."""
    if isinstance(node, dict) and node:
        key = rng.choice(sorted(node, key=str))
        roll = rng.random()
        if roll < 0.2:
            return {k: v for k, v in node.items() if k != key}
        if roll < 0.3:
            return {**node, rng.choice(["id", "seq", "event", "x", ""]): rng.choice(_JUNK_VALUES)}
        return {**node, key: _junk_leaf(rng, node[key])}
    if isinstance(node, list) and node:
        i = rng.randrange(len(node))
        return [*node[:i], _junk_leaf(rng, node[i]), *node[i + 1 :]]
    return rng.choice(_JUNK_VALUES)


def _mutated_json(rng: random.Random, example: bytes) -> bytes:
    try:
        document = json.loads(example)
    except ValueError:
        return _flip(rng, example)
    return json.dumps(_junk_leaf(rng, document), ensure_ascii=rng.random() < 0.5).encode(
        "utf-8", "surrogatepass"
    )


def _bomb(rng: random.Random) -> bytes:
    n = rng.randrange(100, 2000)
    return rng.choice(
        [
            b"[" * n + b"]" * n,
            b'{"a":' * n + b"1" + b"}" * n,
            b'{"action": ' + b"9" * (n * 3) + b"}",
            b'{"event": "press", "id": "x", "seq": ' + b"9" * (n * 3) + b"}",
            json.dumps({f"k{i}": i for i in range(n // 4)}).encode()[:MAX_PAYLOAD],
            b" " * n,
        ]
    )


def payload_for(rng: random.Random, target: Target) -> bytes:
    examples = [e.payload for e in get_profile(target.profile or "json").examples]
    roll = rng.random()
    if roll < 0.12:
        return rng.randbytes(rng.randrange(0, 200))
    if roll < 0.24:
        return _random_text(rng)
    if roll < 0.50:
        return _flip(rng, rng.choice(examples))
    if roll < 0.94:
        return _mutated_json(rng, rng.choice(examples))
    return _bomb(rng)


def _virtual_is_press(payload: bytes) -> bool:
    # The command topics take an empty payload or {"id": ...} (gateway.routing).
    if not payload.strip():
        return True

    def no_constants(name: str) -> object:
        raise ValueError(name)  # strict JSON: NaN and Infinity are refused

    try:
        # Strict UTF-8 first: json.loads(bytes) would let lone surrogates through.
        body = json.loads(payload.decode("utf-8"), parse_constant=no_constants)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return False
    if not isinstance(body, dict) or depth(body) > MAX_DEPTH:
        return False
    ident = body.get("id")
    if ident is None:
        return True
    if isinstance(ident, int) and not isinstance(ident, bool):
        return 0 <= ident < 10**30
    # The same id rule as device profiles: 1..128 printable characters.
    return isinstance(ident, str) and 1 <= len(ident) <= 128 and ident.isprintable()


def is_press(target: Target, payload: bytes) -> bool:
    if target.profile is None:
        return target.topic.endswith("/press") and _virtual_is_press(payload)
    return IS_VALID_PRESS[target.profile](target.topic, payload, target.options)


def is_unparsable(target: Target, payload: bytes) -> bool:
    """Whether the gateway must report this payload as invalid."""
    if target.profile is None:
        return not _virtual_is_press(payload)  # the same format on press and cancel
    try:
        get_profile(target.profile).parse(target.topic, payload, target.options)
    except ParseError:
        return True
    return False


@dataclass(frozen=True)
class Plan:
    messages: list[tuple[Target, bytes]]
    expected_invalid: int
    oversized: int


def make_plan() -> Plan:
    rng = random.Random(SEED)
    all_targets = targets()
    messages: list[tuple[Target, bytes]] = []
    while len(messages) < N_PAYLOADS - N_OVERSIZED:
        target = rng.choice(all_targets)
        payload = payload_for(rng, target)
        if len(payload) <= MAX_PAYLOAD and not is_press(target, payload):
            messages.append((target, payload))
    for _ in range(N_OVERSIZED):
        messages.insert(
            rng.randrange(len(messages)), (rng.choice(all_targets), b"{" * (MAX_PAYLOAD + 1))
        )
    expected = sum(1 for t, p in messages if len(p) <= MAX_PAYLOAD and is_unparsable(t, p))
    return Plan(messages, expected, N_OVERSIZED)


# ------------------------------------------------------------------ the test


@pytest.fixture
def gateway(tmp_path: Path, broker: Broker, shop: ShopServer) -> Iterator[GatewayProcess]:
    gw = GatewayProcess(
        tmp_path / "gw", CONFIG, broker_url=broker.url, shop_url=shop.url, shop_token=shop.token
    )
    try:
        gw.start().wait_ready()
        yield gw
    finally:
        gw.close()


def metrics(gw: GatewayProcess) -> dict[str, float]:
    match = re.search(r"metrics: serving (\S+)/metrics", gw.current_log())
    assert match, "the gateway did not log its metrics address"
    text = httpx.get(f"{match.group(1)}/metrics", timeout=10).text
    return {
        f"{s.name}{sorted(s.labels.items())}": s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_ten_thousand_malformed_payloads_never_order_and_are_all_counted(
    gateway: GatewayProcess, broker: Broker, shop: ShopServer
) -> None:
    plan = make_plan()
    assert len(plan.messages) == N_PAYLOADS
    assert len({t.topic for t, _ in plan.messages}) == len(targets())  # every topic got some
    assert plan.expected_invalid > N_PAYLOADS // 2  # most of it must be refused, not ignored
    with Publisher(broker.url, "fuzzer", persistent=True) as pub:
        infos: list[paho.MQTTMessageInfo] = []
        for target, payload in plan.messages:
            infos.append(pub.publish(target.topic, payload, wait=False))
        pub.publish(*SENTINEL)
        for info in infos:
            info.wait_for_publish(DEADLINE)

    wait_until(lambda: len(shop.orders()) >= 1, DEADLINE, "the order of the press sent last")
    unparsable = "reorder_invalid_payloads_total[('reason', 'unparsable')]"
    wait_until(
        lambda: metrics(gateway).get(unparsable, 0) >= plan.expected_invalid,
        DEADLINE,
        f"{plan.expected_invalid} unparsable payloads counted",
    )

    assert orders_by_event(shop.orders()) == {"after-fuzz": 1}
    numbers = metrics(gateway)
    assert numbers[unparsable] == plan.expected_invalid
    assert numbers["reorder_invalid_payloads_total[('reason', 'oversized')]"] == plan.oversized

    def decided(outcome: str) -> float:
        return numbers.get(f"reorder_decisions_total[('outcome', '{outcome}')]", 0)

    assert decided("invalid") == plan.expected_invalid
    assert decided("ordered") == 1
    assert decided("held") == decided("cancel_requested") == 0
    # The events topic tells the same story, but lossily: under this flood most of
    # its QoS 1 publishes are dropped at the gateway (paho's bounded queue; counted
    # and logged), so only what arrived is checked: nothing but the last press ordered.
    arrived = gateway.events.items
    assert any(e.get("outcome") == "invalid" for e in arrived)
    assert [e.get("event_id") for e in arrived if e.get("outcome") in ORDERING] in (
        [],
        ["after-fuzz"],
    )
    assert gateway.running
    log = gateway.log_text()
    assert "Traceback" not in log and "internal error" not in log
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", log), "a control character reached the log"
    print(
        f"published {len(plan.messages)} payloads: {plan.expected_invalid} invalid, "
        f"{decided('ignored'):.0f} ignored, {decided('nothing_to_cancel'):.0f} holds with "
        f"nothing open, {decided('duplicate'):.0f} duplicates, {plan.oversized} oversized; "
        f"{len(arrived)} decisions arrived on the events topic"
    )
