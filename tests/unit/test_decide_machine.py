"""A hypothesis state machine for the pure core.

Any sequence of presses (fresh, repeated, redelivered, retained), long presses,
sensor readings, order status changes, ticks and clock jumps. A tiny model of the
outbox applies the actions the way gateway.outbox.store does (intents, local cancels,
seen ids), and after every step the invariants of the issue must hold:

* never two open orders of a product under ``one_open_order``;
* caps (per product quantity, gateway-wide count, rolling 24 h) never exceeded;
* an event with an id never orders twice, and no idempotency key is used twice.
"""

from __future__ import annotations

from dataclasses import dataclass

import hypothesis.strategies as st
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from gateway.config.models import ProductConfig, SensorConfig
from gateway.core.decide import DAY, Rules, State, decide, event_dedupe_key
from gateway.core.events import (
    Action,
    ButtonEvent,
    CancelOrder,
    Event,
    OrderState,
    OrderUpdate,
    PlaceOrder,
    RememberEvent,
    SensorReading,
    Tick,
)

PRODUCTS = {
    "detergent": ProductConfig(sku="TIDE", quantity=1, one_open_order=True, max_per_day=2),
    "coffee": ProductConfig(sku="COFFEE", quantity=2, one_open_order=False, max_per_day=4),
    "tea": ProductConfig(sku="TEA", quantity=1, one_open_order=True, cooldown="1h"),
    "paper": ProductConfig(sku="PAPER", quantity=1, one_open_order=False, confirm_window="30s"),
}
BUTTONS = {"laundry": "detergent", "pantry": "coffee", "kettle": "tea", "roll": "paper"}
SENSORS = {
    "scale": SensorConfig.model_validate(
        {
            "name": "scale",
            "product": "coffee",
            "mqtt": "s/scale",
            "value": "w",
            "reorder_below": 250,
            "rearm_above": 800,
            "settle": "60s",
            "stale_after": "1h",
        }
    )
}
RULES = Rules(
    gateway_id="gw",
    secret=b"k" * 32,
    products=PRODUCTS,
    button_products=BUTTONS,
    sensors=SENSORS,
    max_orders_per_day=5,
    dedupe_window=2.0,
)


@dataclass
class ModelOrder:
    intent: PlaceOrder
    state: OrderState
    cancel_requested: bool = False


class DecideMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.state = State()
        self.now = 1_700_000_000.0
        self.seen: set[str] = set()
        self.orders: dict[str, ModelOrder] = {}
        self.orders_by_event: dict[tuple[str, str], int] = {}
        self.counter = 0

    # ----------------------------------------------------------------- plumbing

    def feed(self, event: Event) -> None:
        seen = False
        if isinstance(event, ButtonEvent | SensorReading):
            key = event_dedupe_key(self.state, event)
            seen = key is not None and key in self.seen
        self.state, actions = decide(self.state, event, self.now, RULES, seen=seen)
        self.apply(actions)

    def apply(self, actions: list[Action]) -> None:
        local_cancels: list[OrderUpdate] = []
        for action in actions:
            if isinstance(action, PlaceOrder):
                assert action.key not in self.orders, "an idempotency key was used twice"
                self.check_caps_before(action)
                state = OrderState.HELD if action.hold_until else OrderState.QUEUED
                self.orders[action.key] = ModelOrder(action, state)
                if "@" not in action.event_id:  # gateway-made ids are unique per moment
                    ident = (action.device, action.event_id)
                    self.orders_by_event[ident] = self.orders_by_event.get(ident, 0) + 1
            elif isinstance(action, RememberEvent):
                self.seen.add(action.dedupe_key)
            elif isinstance(action, CancelOrder):
                order = self.orders[action.key]
                if order.state in (OrderState.HELD, OrderState.QUEUED, OrderState.BLOCKED):
                    order.state = OrderState.CANCELLED
                    local_cancels.append(
                        OrderUpdate(action.key, action.product, action.device, OrderState.CANCELLED)
                    )
                else:
                    order.cancel_requested = True
        for update in local_cancels:
            self.feed(update)

    def counted(self, since: float) -> list[ModelOrder]:
        return [
            o
            for o in self.orders.values()
            if o.intent.created_at > since
            and o.state not in (OrderState.CANCELLED, OrderState.REJECTED)
        ]

    def check_caps_before(self, intent: PlaceOrder) -> None:
        window = self.counted(intent.created_at - DAY)
        assert len(window) + 1 <= RULES.max_orders_per_day, "gateway cap exceeded"
        cap = PRODUCTS[intent.product].max_per_day
        if cap is not None:
            qty = sum(o.intent.quantity for o in window if o.intent.product == intent.product)
            assert qty + intent.quantity <= cap, f"max_per_day exceeded for {intent.product}"
        if PRODUCTS[intent.product].one_open_order:
            open_same = [
                o
                for o in self.orders.values()
                if o.intent.product == intent.product and o.state.is_open
            ]
            assert not open_same, "a second open order under one_open_order"

    # ----------------------------------------------------------------- rules

    @rule(
        button=st.sampled_from(sorted(BUTTONS)),
        event_id=st.one_of(st.none(), st.sampled_from(["a", "b", "c", "d"])),
        origin=st.sampled_from(["mqtt", "gpio", "virtual"]),
        redelivered=st.booleans(),
        retained=st.booleans(),
    )
    def press(
        self, button: str, event_id: str | None, origin: str, redelivered: bool, retained: bool
    ) -> None:
        synthetic = event_id is None
        if synthetic:
            # GPIO presses get fresh ids; id-less MQTT messages are named by packet id,
            # which the broker reuses: model that with a tiny pool.
            self.counter += 1
            event_id = f"g{self.counter}" if origin == "gpio" else f"m{self.counter % 3}"
        self.feed(
            ButtonEvent(
                button,
                "press",
                event_id,
                origin,  # type: ignore[arg-type]
                retained=retained,
                redelivered=redelivered,
                synthetic_id=synthetic,
            )
        )

    @rule(button=st.sampled_from(sorted(BUTTONS)))
    def long_press(self, button: str) -> None:
        self.feed(ButtonEvent(button, "hold", None, "gpio"))

    @rule(value=st.floats(min_value=-10, max_value=2000, allow_nan=False))
    def reading(self, value: float) -> None:
        self.feed(SensorReading("scale", value))

    @rule(seconds=st.sampled_from([0.5, 1.0, 3.0, 59.0, 61.0, 3600.0, 7200.0, DAY, 2 * DAY]))
    def advance(self, seconds: float) -> None:
        self.now += seconds
        self.feed(Tick())

    @precondition(lambda self: any(o.state.is_open for o in self.orders.values()))
    @rule(
        data=st.data(),
        new_state=st.sampled_from(
            [
                OrderState.QUEUED,
                OrderState.ACCEPTED,
                OrderState.SHIPPED,
                OrderState.DELIVERED,
                OrderState.CANCELLED,
                OrderState.REJECTED,
                OrderState.BLOCKED,
            ]
        ),
    )
    def shop_update(self, data: st.DataObject, new_state: OrderState) -> None:
        open_keys = sorted(k for k, o in self.orders.items() if o.state.is_open)
        key = data.draw(st.sampled_from(open_keys))
        order = self.orders[key]
        order.state = new_state
        self.feed(OrderUpdate(key, order.intent.product, order.intent.device, new_state))

    # ----------------------------------------------------------------- invariants

    @invariant()
    def one_open_order_per_product(self) -> None:
        for product, cfg in PRODUCTS.items():
            if cfg.one_open_order:
                open_ = [
                    o
                    for o in self.orders.values()
                    if o.intent.product == product and o.state.is_open
                ]
                assert len(open_) <= 1, f"{product}: {len(open_)} open orders"

    @invariant()
    def an_event_id_orders_at_most_once(self) -> None:
        assert all(n == 1 for n in self.orders_by_event.values())

    @invariant()
    def core_cache_matches_model(self) -> None:
        cached = {o.key for o in self.state.open_orders}
        model = {k for k, o in self.orders.items() if o.state.is_open}
        assert cached == model


TestDecideMachine = DecideMachine.TestCase
TestDecideMachine.settings = settings(
    max_examples=300,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
