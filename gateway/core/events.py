"""Events (what happened) and actions (what to do about it).

Inputs — GPIO, MQTT, virtual buttons, the sender's status reports, timer ticks —
become *events*. The pure core (:mod:`gateway.core.decide`) turns ``(state, event, now)``
into a new state and *actions*, which the adapters carry out. All of these are
frozen dataclasses: plain data, safe to hand between threads.

>>> press = ButtonEvent(device="laundry", action="press", event_id="a1", origin="gpio")
>>> press.action, press.retained
('press', False)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

from gateway.core.forecast import Interval, LeadTime, Usage

ButtonAction = Literal["press", "hold"]
"""``press`` asks for a reorder; ``hold`` (a long press, or a cancel command) cancels."""

Origin = Literal["gpio", "mqtt", "virtual"]
Trigger = Literal["press", "threshold", "forecast", "manual"]


class OrderState(StrEnum):
    """Life of an order in the outbox. Final states: delivered, cancelled, rejected."""

    HELD = "held"  # inside the product's confirm_window; a cancel drops it
    QUEUED = "queued"  # committed, waiting for the sender
    SENDING = "sending"  # a request may be on the wire; resent with the same key after a crash
    BLOCKED = "blocked"  # the shop said 401/403; retried slowly until credentials work
    ACCEPTED = "accepted"  # the shop has it (order id stored)
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"
    REJECTED = "rejected"  # dead letter: permanent error, reason kept

    @property
    def is_open(self) -> bool:
        """Open orders block new ones under ``one_open_order``."""
        return self not in _FINAL

    @property
    def is_final(self) -> bool:
        return self in _FINAL

    @property
    def was_bought(self) -> bool:
        """Counts towards caps and "last ordered": everything but cancelled and rejected."""
        return self not in (OrderState.CANCELLED, OrderState.REJECTED)


_FINAL = frozenset({OrderState.DELIVERED, OrderState.CANCELLED, OrderState.REJECTED})


# --------------------------------------------------------------------------- events


@dataclass(frozen=True)
class ButtonEvent:
    """A button (GPIO, MQTT device or virtual) did something."""

    device: str
    action: ButtonAction
    event_id: str | None
    origin: Origin
    retained: bool = False  # delivered from the broker's retained store: never a press
    redelivered: bool = False  # MQTT DUP flag: the broker sent this before
    # True when the gateway made the id (a GPIO press; an id-less MQTT message named
    # by its packet id and payload). Such ids only catch broker redeliveries; fresh
    # id-less messages are deduplicated by the time window instead.
    synthetic_id: bool = False
    # True when the device's id is a counter that starts again at its boot (Shelly
    # Gen1 ``event_cnt``): the core names it by the device's boot number, so the
    # presses after a power cut are not taken for the ones before it.
    counts_since_boot: bool = False


@dataclass(frozen=True)
class SensorReading:
    """A weight, level or count sensor reported a value."""

    device: str
    value: float
    event_id: str | None = None
    retained: bool = False
    redelivered: bool = False


@dataclass(frozen=True)
class InvalidInput:
    """A payload that could not be parsed. Never orders; counted and reported."""

    device: str
    topic: str
    reason: str


DEFAULT_SHOP = "default"
"""The name of the one shop a config's single ``commerce:`` section describes."""


@dataclass(frozen=True)
class Price:
    """What the shop says an order costs, in minor units (cents): money is never a float.

    >>> Price(currency="EUR", total_minor=2798, unit_minor=1399).shown
    '27.98 EUR'
    """

    currency: str
    total_minor: int
    unit_minor: int | None = None

    @property
    def shown(self) -> str:
        """The total as a household reads it (two decimals: every currency we meet)."""
        return f"{self.total_minor / 100:.2f} {self.currency}"


@dataclass(frozen=True)
class OrderUpdate:
    """The sender learned something about an order (from the shop, or from trying)."""

    key: str
    product: str
    device: str
    state: OrderState
    shop_order_id: str | None = None
    reason: str | None = None
    unreachable: bool = False  # still queued because the shop cannot be reached
    cancel_refused: bool = False  # the shop said it is too late to cancel this order
    price: Price | None = None  # what the shop said the order costs, when it said so


@dataclass(frozen=True)
class ConfirmOrder:
    """The household says yes to a held order: it is sent now.

    Sent by the web page, a Home Assistant button, or made by the core from a second
    press within the window; ``via`` names which, for the decisions log.

    >>> ConfirmOrder("rg1_k", via="web").via
    'web'
    """

    key: str
    via: str


@dataclass(frozen=True)
class ConfirmProduct:
    """The household says yes to the order of ``product`` that waits for one (Home
    Assistant's Confirm button, which cannot know the order's key); ``via`` names where
    it came from, for the decisions log.

    >>> ConfirmProduct("coffee", via="home_assistant").product
    'coffee'
    """

    product: str
    via: str


@dataclass(frozen=True)
class CancelByKey:
    """The household cancels one open order by its key (the web page's Cancel button):
    what a long press does for the newest order of its product. ``via`` names where it
    came from, for the decisions log.

    >>> CancelByKey("rg1_k", via="web").via
    'web'
    """

    key: str
    via: str


@dataclass(frozen=True)
class DeviceConnected:
    """A button whose event ids count since its boot says it has (re)connected
    (Shelly Gen1's live ``online: true``): after a boot or only after a reconnect —
    its next count tells which (see :class:`CounterSeen`).

    >>> DeviceConnected("hall").device
    'hall'
    """

    device: str


@dataclass(frozen=True)
class CounterSeen:
    """The counter since boot in a live message of such a button (Shelly Gen1
    ``event_cnt``, also in its idle report ``0`` and in words that do not order).
    Lower than the last count seen, after the device said it connected: it booted,
    and its ids start a new boot number. The same or higher: it only reconnected.

    >>> CounterSeen("hall", 0).count
    0
    """

    device: str
    count: int


@dataclass(frozen=True)
class Tick:
    """Time passed: promotes settled sensor readings and notices silent sensors."""


Event = (
    ButtonEvent
    | SensorReading
    | InvalidInput
    | OrderUpdate
    | ConfirmOrder
    | ConfirmProduct
    | CancelByKey
    | DeviceConnected
    | CounterSeen
    | Tick
)


# --------------------------------------------------------------------------- actions


class Outcome(StrEnum):
    """What a decision was. Published on ``reorder/<id>/events`` and logged."""

    ORDERED = "ordered"
    HELD = "held"
    ABSORBED = "absorbed"  # a rule said no; ``rule`` names it
    DUPLICATE = "duplicate"
    IGNORED = "ignored"  # retained message, release, unmapped action
    INVALID = "invalid"
    CANCEL_REQUESTED = "cancel_requested"
    NOTHING_TO_CANCEL = "nothing_to_cancel"
    SENSOR_LOW = "sensor_low"  # below threshold, settling
    SENSOR_RECOVERED = "sensor_recovered"  # back above threshold before it settled
    SENSOR_REARMED = "sensor_rearmed"
    SENSOR_STALE = "sensor_stale"
    ORDER_STATUS = "order_status"
    FORECAST = "forecast"  # a sensor's projected empty date changed (``value``: epoch s)
    DUE_SOON = "due_soon"  # a button-only product is usually reordered about now
    CONFIRMED = "confirmed"  # a held order was confirmed and goes to the shop now
    EXPIRED = "expired"  # an order waiting for a confirmation got none in time: dropped
    REQUEUED = "requeued"  # a rejected or blocked order was put back in the queue by hand

    @property
    def answers_a_message(self) -> bool:
        """True for the decision about a message (a press, a reading, a confirm); False
        for news that comes later on its own: an order's status from the shop, a
        forecast, a due reminder, an expired hold. Only the first kind is a device's
        "last decision" (Home Assistant, the web page's Devices).

        >>> Outcome.ORDERED.answers_a_message, Outcome.ORDER_STATUS.answers_a_message
        (True, False)
        """
        return self not in _LATER_NEWS


_LATER_NEWS = frozenset({Outcome.ORDER_STATUS, Outcome.FORECAST, Outcome.DUE_SOON, Outcome.EXPIRED})


class Rule(StrEnum):
    ONE_OPEN_ORDER = "one_open_order"
    COOLDOWN = "cooldown"
    MAX_PER_DAY = "max_per_day"
    GATEWAY_CAP = "max_orders_per_day"
    EPISODE_ORDERED = "episode_already_ordered"


class LedPattern(StrEnum):
    """Feedback a household can tell apart without a phone (see gateway.outputs.led)."""

    RECEIVED = "received"  # one short blink
    ACCEPTED = "accepted"  # solid for 3 s
    ALREADY_ORDERED = "already_ordered"  # two slow blinks
    QUEUED = "queued"  # slow pulse until sent
    LIMIT_REACHED = "limit_reached"  # fast blinking for 5 s: a daily cap said no
    REJECTED = "rejected"  # three long blinks: the shop refused the order for good
    BLOCKED = "blocked"  # lit with short dark gaps until replaced: the shop refused the token
    CANCELLED = "cancelled"  # three quick blinks
    OFF = "off"


@dataclass(frozen=True)
class PlaceOrder:
    """Commit an order intent to the outbox (state ``held`` or ``queued``).

    The intent is complete: every shop backend builds its requests from these fields
    alone, so the same intent always gives the same request (replays under one key).
    """

    key: str
    product: str
    sku: str
    quantity: int
    device: str
    trigger: Trigger
    event_id: str
    created_at: float
    hold_until: float | None = None
    gateway: str = field(kw_only=True)  # the gateway's id, named as the order's source
    shop: str = field(default=DEFAULT_SHOP, kw_only=True)  # the configured shop it goes to


@dataclass(frozen=True)
class ReleaseHeld:
    """A held order's confirm window has passed: it is queued for the sender."""

    key: str


@dataclass(frozen=True)
class CancelOrder:
    """Cancel an order: locally if it has not left, at the shop if it has."""

    key: str
    product: str
    device: str


@dataclass(frozen=True)
class RememberEvent:
    """Persist an event id so that it is acted on once, ever."""

    dedupe_key: str
    at: float


@dataclass(frozen=True)
class RememberBoot:
    """Persist where a counter-since-boot button is (:class:`BootCount`): the ids it
    sends are named by its boot number, also after the gateway's own restart."""

    device: str
    count: BootCount
    at: float


@dataclass(frozen=True)
class RememberAction:
    """Persist when a device last did an action, for the ``dedupe_window`` of families
    without event ids: a double publish that straddles a restart is still one press."""

    window_key: str
    at: float


@dataclass(frozen=True)
class SaveEpisode:
    """Persist a sensor's depletion-episode state."""

    sensor: str
    episode: Episode


LearnedKind = Literal["usage", "lead", "interval"]


@dataclass(frozen=True)
class SaveLearned:
    """Persist what forecasting learned: a sensor's usage, a product's lead time or
    a button-only product's order interval."""

    kind: LearnedKind
    name: str
    learned: Usage | LeadTime | Interval


@dataclass(frozen=True)
class Report:
    """Tell the household and the logs what was decided, and why."""

    outcome: Outcome
    device: str
    at: float
    product: str | None = None
    event_id: str | None = None
    rule: Rule | None = None
    order_key: str | None = None
    state: OrderState | None = None
    detail: str | None = None
    value: float | None = None
    price: Price | None = None
    # A message with nothing in it to decide (a battery report): logged, counted
    # and on the events topic, but not a device's last decision nor the household's news.
    routine: bool = False


@dataclass(frozen=True)
class Feedback:
    """Show an LED pattern on a button (ignored for buttons without an LED)."""

    device: str
    pattern: LedPattern


Action = (
    PlaceOrder
    | ReleaseHeld
    | CancelOrder
    | RememberEvent
    | RememberAction
    | RememberBoot
    | SaveEpisode
    | SaveLearned
    | Report
    | Feedback
)


# --------------------------------------------------------------------------- state pieces


EpisodePhase = Literal["armed", "settling", "ordered"]


@dataclass(frozen=True)
class BootCount:
    """A counter-since-boot button: its boot number (0 until a boot is seen, so its ids
    stay ``cnt-<N>``), the last count seen in that boot, and whether it has said it
    connected since that count.

    >>> BootCount().boot, BootCount().last, BootCount().connected
    (0, None, False)
    """

    boot: int = 0
    last: int | None = None
    connected: bool = False


@dataclass(frozen=True)
class Episode:
    """Where a sensor is in its depletion cycle.

    armed -> (below threshold) settling -> (still below after ``settle``) ordered
    -> (refilled above ``rearm_above``) armed.
    """

    phase: EpisodePhase = "armed"
    below_since: float | None = None
    last_value: float | None = None
    last_seen: float | None = None
    stale_reported: bool = False
