"""The core thread's batch step against a real outbox: commit before acknowledge."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.clock import RealClock
from gateway.commerce import build_body
from gateway.config.models import Config
from gateway.core.events import (
    Episode,
    Feedback,
    OrderState,
    Outcome,
    PlaceOrder,
    Report,
    SaveEpisode,
)
from gateway.engine.decider import Core, Decided, load_state
from gateway.inputs.messages import InboundMessage
from gateway.inputs.routing import Router
from gateway.outbox.store import OutboxError, Store
from gateway.wiring import core_rules

CONFIG = Config.model_validate(
    {
        "gateway": {"id": "kitchen"},
        "commerce": {"base_url": "http://127.0.0.1:1/api/v1"},
        "products": {"detergent": {"sku": "TIDE"}, "coffee": {"sku": "COFFEE"}},
        "buttons": [
            {
                "name": "hallway",
                "product": "detergent",
                "mqtt": "b/hallway",
                "profile": "reorder-button",
            },
            {"name": "pantry", "product": "coffee", "mqtt": "z/pantry", "profile": "zigbee2mqtt"},
        ],
    }
)


class Recorder:
    """Outputs that remember what happened, and what the database held at that moment."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.reports: list[Report] = []
        self.feedback: list[Feedback] = []
        self.acks: list[tuple[int, int, int]] = []  # (mid, qos, orders committed at ack time)

    def ack(self, message: InboundMessage) -> None:
        mid, qos = message.mid, message.qos
        reader = Store.open(self.state_dir, create=False)
        try:
            self.acks.append((mid, qos, len(reader.list_orders())))
        finally:
            reader.close()

    def deliver(self, decided: Decided) -> None:
        for message in decided.acks:
            self.ack(message)
        self.reports.extend(decided.reports)
        self.feedback.extend(decided.feedback)


class Discard:
    """Outputs that tell nobody."""

    def deliver(self, decided: Decided) -> None:
        pass


def make_core(tmp_path: Path) -> tuple[Core, Store, Recorder]:
    store = Store.open(tmp_path)
    recorder = Recorder(tmp_path)
    core = Core(
        store,
        core_rules(CONFIG, store.secret()),
        Router.from_config(CONFIG),
        RealClock(),
        recorder,
    )
    return core, store, recorder


def press(mid: int, event_id: str, topic: str = "b/hallway", dup: bool = False) -> InboundMessage:
    payload = json.dumps({"event": "press", "id": event_id, "seq": mid}).encode()
    return InboundMessage(topic, payload, mid, 1, retain=False, dup=dup)


def test_the_ack_comes_after_the_order_is_committed(tmp_path: Path) -> None:
    core, store, rec = make_core(tmp_path)
    core.process([press(1, "a")])
    assert rec.acks == [(1, 1, 1)], "acknowledged before the intent was in the database"
    [row] = store.list_orders()
    assert row.state is OrderState.QUEUED and row.event_id == "a"
    assert json.loads(build_body(row.intent))["source"]["event_id"] == "a"


def test_the_same_id_twice_in_one_batch_orders_once(tmp_path: Path) -> None:
    core, store, rec = make_core(tmp_path)
    core.process([press(1, "a"), press(2, "a", dup=True)])
    assert len(store.list_orders()) == 1
    assert [r.outcome for r in rec.reports] == [Outcome.ORDERED, Outcome.DUPLICATE]
    assert [a[0] for a in rec.acks] == [1, 2]


def test_a_redelivery_after_restart_is_a_duplicate(tmp_path: Path) -> None:
    core, store, _ = make_core(tmp_path)
    core.process([press(1, "a")])
    store.close()
    core2, store2, rec2 = make_core(tmp_path)
    core2.process([press(1, "a", dup=True)])
    assert len(store2.list_orders()) == 1
    assert [r.outcome for r in rec2.reports] == [Outcome.DUPLICATE]


def test_a_failed_commit_acknowledges_nothing_and_rolls_back(tmp_path: Path) -> None:
    core, store, rec = make_core(tmp_path)
    store.close()  # every statement now fails, as on a dead disk
    # sqlite3's own error never leaks past the outbox: the outbox's does.
    with pytest.raises(OutboxError):
        core.process([press(1, "a")])
    assert rec.acks == [] and rec.reports == []
    assert core.state.open_orders == ()


def test_invalid_payload_is_reported_and_acknowledged_without_an_order(tmp_path: Path) -> None:
    core, store, rec = make_core(tmp_path)
    core.process([InboundMessage("b/hallway", b"{not json", 5, 1, retain=False, dup=False)])
    assert store.list_orders() == []
    assert [r.outcome for r in rec.reports] == [Outcome.INVALID]
    assert rec.acks == [(5, 1, 0)]


def test_cancel_before_sending_is_told_at_once(tmp_path: Path) -> None:
    core, store, rec = make_core(tmp_path)
    core.process([press(1, "a")])
    hold = json.dumps({"event": "hold", "id": "h", "seq": 2}).encode()
    core.process([InboundMessage("b/hallway", hold, 2, 1, retain=False, dup=False)])
    [row] = store.list_orders()
    assert row.state is OrderState.CANCELLED
    states = [r.state for r in rec.reports if r.outcome is Outcome.ORDER_STATUS]
    assert states == [OrderState.CANCELLED]
    assert core.state.open_orders == ()


def test_open_orders_survive_a_restart_of_the_core(tmp_path: Path) -> None:
    core, store, _ = make_core(tmp_path)
    core.process([press(1, "a")])
    store.close()
    core2, _, rec2 = make_core(tmp_path)
    core2.process([press(2, "b")])
    assert [r.outcome for r in rec2.reports] == [Outcome.ABSORBED]


def test_place_order_bodies_never_change(tmp_path: Path) -> None:
    core, store, _ = make_core(tmp_path)
    core.process([press(1, "a")])
    first = build_body(store.list_orders()[0].intent)
    intent = PlaceOrder(
        "k", "detergent", "TIDE", 1, "hallway", "press", "a", 0.0, gateway="kitchen"
    )
    assert build_body(intent) == build_body(intent)
    core.process([press(1, "a", dup=True)])
    assert build_body(store.list_orders()[0].intent) == first


def test_a_qos0_flood_cannot_crowd_out_presses(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    core = Core(
        store,
        core_rules(CONFIG, store.secret()),
        Router.from_config(CONFIG),
        RealClock(),
        Discard(),
        queue_size=10,
    )
    for mid in range(50):  # not started: nothing drains the queue
        core.submit(InboundMessage("z/pantry", b'{"action":"single"}', mid, 0, False, False))
    core.submit(press(99, "qos1-after-the-flood"))
    assert core.counters.queue_full == 40
    assert core.backlog == 11, "the QoS 1 press must be queued even past the limit"
    store.close()


def test_a_double_publish_straddling_a_restart_is_one_press(tmp_path: Path) -> None:
    # Zigbee2MQTT sends no event id; the dedupe window catches its double publishes.
    # The window is in the database, so a restart between the two changes nothing —
    # even with the Dash rule off, which would otherwise hide a second order.
    config = CONFIG.model_copy(
        update={
            "products": {
                **CONFIG.products,
                "coffee": CONFIG.products["coffee"].model_copy(update={"one_open_order": False}),
            }
        }
    )
    store = Store.open(tmp_path)
    recorder = Recorder(tmp_path)
    single = b'{"action": "single", "linkquality": 120}'
    core = Core(
        store, core_rules(config, store.secret()), Router.from_config(config), RealClock(), recorder
    )
    core.process([InboundMessage("z/pantry", single, 1, 1, retain=False, dup=False)])
    store.close()
    store = Store.open(tmp_path)
    again = Core(
        store, core_rules(config, store.secret()), Router.from_config(config), RealClock(), recorder
    )
    again.process([InboundMessage("z/pantry", single, 2, 1, retain=False, dup=False)])
    assert [r.outcome for r in recorder.reports] == [Outcome.ORDERED, Outcome.DUPLICATE]
    assert len(store.list_orders()) == 1
    store.close()


def test_a_sensor_that_kept_reporting_is_not_stale_right_after_a_restart(tmp_path: Path) -> None:
    # Its last reading was saved with its last phase change, a day ago; it has been
    # reporting since (without a phase change). Silence counts from the start.
    store = Store.open(tmp_path)
    long_ago = 1_000_000.0
    store.commit([SaveEpisode("scale", Episode(phase="armed", last_seen=long_ago))])
    now = long_ago + 86_400.0
    episode = load_state(store, now).episodes["scale"]
    assert episode.last_seen == now and not episode.stale_reported
    # One already reported stale before the restart stays reported (no second report).
    store.commit([SaveEpisode("scale", Episode(last_seen=long_ago, stale_reported=True))])
    assert load_state(store, now).episodes["scale"].last_seen == long_ago
    store.close()


def test_a_shelly_gen1_counter_starts_again_after_the_device_restarts(tmp_path: Path) -> None:
    # Shelly Gen1 ``event_cnt`` counts since boot: after a power cut the first press is
    # count 1 again. The device's live ``online: true`` (it publishes one each time it
    # connects) followed by a count lower than the last starts a new boot, so that
    # press orders; a broker redelivery of both, also across the gateway's restart,
    # and a reconnect that repeats the last event are still one press. Two inputs of
    # one device share its online topic.
    config = Config.model_validate(
        {
            "gateway": {"id": "kitchen"},
            "commerce": {"base_url": "http://127.0.0.1:1/api/v1"},
            "products": {"coffee": {"sku": "COFFEE", "one_open_order": False}},
            "buttons": [
                {
                    "name": f"hall-{n}",
                    "product": "coffee",
                    "mqtt": f"shellies/shellyix3-A1/input_event/{n}",
                    "profile": "shelly",
                }
                for n in (0, 1)
            ],
        }
    )
    recorder = Recorder(tmp_path)

    def core() -> tuple[Core, Store]:
        store = Store.open(tmp_path)
        rules = core_rules(config, store.secret())
        return Core(store, rules, Router.from_config(config), RealClock(), recorder), store

    def cnt(mid: int, n: int, dup: bool = False) -> InboundMessage:
        payload = json.dumps({"event": "S", "event_cnt": n}).encode()
        return InboundMessage("shellies/shellyix3-A1/input_event/0", payload, mid, 1, False, dup)

    def online(mid: int, retain: bool) -> InboundMessage:
        return InboundMessage("shellies/shellyix3-A1/online", b"true", mid, 1, retain, False)

    def idle(mid: int) -> InboundMessage:
        # What a Gen1 input reports after boot, before any event.
        payload = b'{"event": "", "event_cnt": 0}'
        return InboundMessage("shellies/shellyix3-A1/input_event/0", payload, mid, 1, False, False)

    first, store = core()
    assert "shellies/shellyix3-A1/online" in Router.from_config(config).topics
    first.process([cnt(1, 1), cnt(1, 1, dup=True)])
    # A power cut: it connects, reports count 0, and its first press is count 1 again.
    first.process([online(2, retain=False), idle(3), cnt(4, 1)])
    # A broker that resends both after a lost acknowledgement: the same boot.
    first.process([online(2, retain=False), cnt(4, 1, dup=True)])
    first.process([online(5, retain=True)])  # the retained copy, on a resubscribe
    store.close()
    again, store = core()
    again.process([cnt(4, 1, dup=True), cnt(6, 2)])
    # Only a lost Wi-Fi: it connects and sends its last event again, then counts on.
    again.process([online(7, retain=False), cnt(8, 2), cnt(9, 3)])
    told = [(r.outcome, r.device) for r in recorder.reports if not r.routine]
    assert told == [
        (Outcome.ORDERED, "hall-0"),
        (Outcome.DUPLICATE, "hall-0"),
        (Outcome.ORDERED, "hall-0"),  # b1-cnt-1
        (Outcome.DUPLICATE, "hall-0"),
        (Outcome.DUPLICATE, "hall-0"),
        (Outcome.ORDERED, "hall-0"),  # b1-cnt-2
        (Outcome.DUPLICATE, "hall-0"),
        (Outcome.ORDERED, "hall-0"),  # b1-cnt-3
    ]
    # Each connect, and the idle report, is a routine decision of its own.
    routine = [r.device for r in recorder.reports if r.routine]
    assert routine.count("hall-1") == 4 and routine.count("hall-0") == 5
    orders = [r.event_id for r in reversed(store.list_orders())]
    assert orders == ["cnt-1", "b1-cnt-1", "b1-cnt-2", "b1-cnt-3"]
    store.close()
