"""Topic -> device routing, virtual command topics and gateway-made ids."""

from __future__ import annotations

from gateway.config.models import Config
from gateway.core.events import ButtonEvent, ConfirmProduct, InvalidInput, SensorReading
from gateway.inputs.routing import Ignored, Router, SimGpio

CONFIG = Config.model_validate(
    {
        "gateway": {"id": "kitchen"},
        "commerce": {"base_url": "http://127.0.0.1:1/api/v1"},
        "products": {"coffee": {"sku": "COFFEE"}},
        "buttons": [
            {"name": "pantry", "product": "coffee", "mqtt": "z2m/pantry", "profile": "zigbee2mqtt"},
            {"name": "laundry", "product": "coffee", "gpio": 17},
        ],
        "sensors": [
            {
                "name": "scale",
                "product": "coffee",
                "mqtt": "s/scale",
                "value": "weight_g",
                "reorder_below": 250,
                "rearm_above": 800,
            }
        ],
    }
)


def events(router: Router, topic: str, payload: bytes, mid: int = 1, dup: bool = False) -> list:  # type: ignore[type-arg]
    return router.events(topic, payload, mid=mid, retain=False, dup=dup, now=0.0)


def test_subscribes_device_topics_subtopics_and_virtual_commands() -> None:
    topics = Router.from_config(CONFIG).topics
    assert "z2m/pantry" in topics and "z2m/pantry/action" in topics
    assert "reorder/kitchen/pantry/press" in topics
    assert "reorder/kitchen/laundry/cancel" in topics
    assert "s/scale" in topics
    assert not any("/sim/gpio/" in t for t in topics), "real pins must never be driven"


def test_sim_gpio_topics_only_in_demo_mode() -> None:
    router = Router.from_config(CONFIG, sim_gpio=True)
    assert "reorder/kitchen/sim/gpio/17" in router.topics
    assert events(router, "reorder/kitchen/sim/gpio/17", b'{"action":"hold"}') == [
        SimGpio(17, "hold")
    ]


def test_id_less_messages_get_a_stable_name_for_redelivery() -> None:
    router = Router.from_config(CONFIG)
    [first] = events(router, "z2m/pantry", b'{"action":"single"}', mid=7)
    [again] = events(router, "z2m/pantry", b'{"action":"single"}', mid=7, dup=True)
    [other] = events(router, "z2m/pantry", b'{"action":"single"}', mid=8)
    assert isinstance(first, ButtonEvent) and first.synthetic_id
    assert first.event_id == again.event_id != other.event_id
    assert again.redelivered


def test_unmapped_actions_are_ignored_with_a_reason() -> None:
    [item] = events(Router.from_config(CONFIG), "z2m/pantry", b'{"action":"double"}')
    assert isinstance(item, Ignored) and "double" in item.detail


def test_virtual_press_with_and_without_id() -> None:
    router = Router.from_config(CONFIG)
    [with_id] = events(router, "reorder/kitchen/pantry/press", b'{"id": "ha-1"}')
    [without] = events(router, "reorder/kitchen/pantry/cancel", b"")
    assert isinstance(with_id, ButtonEvent) and with_id.event_id == "ha-1"
    assert not with_id.synthetic_id and with_id.origin == "virtual"
    assert isinstance(without, ButtonEvent) and without.action == "hold" and without.synthetic_id
    [bad] = events(router, "reorder/kitchen/pantry/press", b"[1, 2]")
    assert isinstance(bad, InvalidInput)


def test_sensor_readings_and_parse_errors() -> None:
    router = Router.from_config(CONFIG)
    assert events(router, "s/scale", b'{"weight_g": 512.5}') == [SensorReading("scale", 512.5)]
    [bad] = events(router, "s/scale", b'{"weight_g": "heavy"}')
    assert isinstance(bad, InvalidInput) and bad.device == "scale"


def test_a_confirm_topic_per_consent_product_and_a_retained_yes_is_no_yes() -> None:
    config = Config.model_validate(
        {
            **CONFIG.model_dump(mode="json", exclude_unset=True),
            "products": {"coffee": {"sku": "COFFEE", "confirm": True}, "tea": {"sku": "TEA"}},
        }
    )
    router = Router.from_config(config)
    assert "reorder/kitchen/product/coffee/confirm" in router.topics
    assert "reorder/kitchen/product/tea/confirm" not in router.topics  # nothing to say yes to
    topic = "reorder/kitchen/product/coffee/confirm"
    assert events(router, topic, b"{}") == [ConfirmProduct("coffee", via="home_assistant")]
    [ignored] = router.events(topic, b"{}", mid=2, retain=True, dup=False, now=0.0)
    assert isinstance(ignored, Ignored) and "retained" in ignored.detail
