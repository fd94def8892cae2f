"""The pure decision core: ``decide(state, event, now, rules) -> (state, actions)``.

No I/O, no clock reads, no threads: everything it needs is passed in, everything
it wants done comes back as actions (:mod:`gateway.core.events`). That is what lets a
hypothesis state machine throw any sequence of presses, duplicates, readings,
deliveries, cancels and clock jumps at it (tests/unit/test_decide_machine.py).

The rules, per product:

* ``one_open_order`` (the Dash rule): while an order is held, queued, sending,
  blocked, accepted or shipped, another trigger is absorbed, not ordered;
* ``cooldown`` after an order; ``max_per_day`` (quantity, rolling 24 h);
* gateway-wide ``limits.max_orders_per_day`` (orders, rolling 24 h);
* ``confirm_window``: the order is held; a long press or cancel inside it drops it;
* ``confirm`` (consent before paying): the order is held until the household says
  yes (:class:`ConfirmOrder` from the web page or Home Assistant, or a second press
  within ``confirm_expires``); it is never sent on its own, and dropped (expired)
  when no yes came in time.

Sensors have hysteresis: below ``reorder_below`` for ``settle`` seconds orders once
per depletion episode; only a refill above ``rearm_above`` re-arms.

Forecasting (:mod:`gateway.core.forecast`): a sensor with ``forecast`` rules also
orders, once per depletion episode, when the stock projected over the product's lead
time plus a safety margin falls to the level at which the household runs out; the
threshold stays as the floor, whichever comes first orders. Lead times are learned
from accepted -> delivered; button-only products learn their usual interval and
are told "due soon" (ordered then only with ``order_when_due``).

>>> from gateway.core.rules import ProductRules
>>> rules = Rules(gateway_id="gw", secret=b"s" * 32,
...               products={"tea": ProductRules(sku="TEA")}, button_products={"b": "tea"})
>>> state, actions = decide(State(), ButtonEvent("b", "press", "e1", "mqtt"), 0.0, rules)
>>> [type(a).__name__ for a in actions]
['PlaceOrder', 'RememberEvent', 'Report', 'Feedback']
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from gateway.core.boots import CONNECTED, connected, counted, since_boot
from gateway.core.events import (
    Action,
    BootCount,
    ButtonEvent,
    CancelByKey,
    CancelOrder,
    ConfirmOrder,
    ConfirmProduct,
    CounterSeen,
    DeviceConnected,
    Episode,
    Event,
    Feedback,
    InvalidInput,
    LedPattern,
    OrderState,
    OrderUpdate,
    Outcome,
    PlaceOrder,
    ReleaseHeld,
    RememberAction,
    RememberBoot,
    RememberEvent,
    Report,
    Rule,
    SaveEpisode,
    SaveLearned,
    SensorReading,
    Trigger,
)
from gateway.core.forecast import (
    Interval,
    LeadTime,
    Usage,
    day_number,
    explain,
    observe,
    projection,
    should_order,
    weekday,
)
from gateway.core.keys import dedupe_key, order_key
from gateway.core.lifecycle import hold_ended
from gateway.core.rules import ProductRules, Rules, SensorRules

DAY = 86_400.0


@dataclass(frozen=True)
class OpenOrder:
    """An order that still blocks new ones of its product under ``one_open_order``."""

    key: str
    product: str
    device: str
    state: OrderState
    created_at: float
    cancel_requested: bool = False
    hold_until: float | None = None  # a held order is released to the sender then
    shop_order_id: str | None = None  # the shop's name for it, once the shop took it


@dataclass(frozen=True)
class PlacedOrder:
    """An order that counts towards the rolling-24-hour caps."""

    key: str
    product: str
    quantity: int
    at: float


@dataclass(frozen=True)
class State:
    """What the core knows. A cache of the outbox: rebuilt from it on start."""

    open_orders: tuple[OpenOrder, ...] = ()
    placed: tuple[PlacedOrder, ...] = ()
    episodes: Mapping[str, Episode] = field(default_factory=dict)
    # Last time each (device, action) of an id-less family was acted on.
    recent: Mapping[str, float] = field(default_factory=dict)
    # Learned by forecasting (durable, see SaveLearned): per sensor, per product.
    usage: Mapping[str, Usage] = field(default_factory=dict)
    leads: Mapping[str, LeadTime] = field(default_factory=dict)
    intervals: Mapping[str, Interval] = field(default_factory=dict)
    # Per button whose ids count since its boot (durable, RememberBoot).
    boots: Mapping[str, BootCount] = field(default_factory=dict)


Decision = tuple[State, list[Action]]


def decide(state: State, event: Event, now: float, rules: Rules, *, seen: bool = False) -> Decision:
    """Turn one event into a new state and the actions to carry out.

    ``seen`` says whether the event's id is already in the outbox's seen-ids table
    (looked up by the caller; the table is too large to copy into every state).
    """
    if isinstance(event, ButtonEvent):
        return _button(state, since_boot(state.boots, event), now, rules, seen)
    if isinstance(event, SensorReading):
        return _reading(state, event, now, rules, seen)
    if isinstance(event, OrderUpdate):
        return _order_update(state, event, now, rules)
    if isinstance(event, InvalidInput):
        report = Report(Outcome.INVALID, event.device, now, detail=event.reason)
        return state, [report]
    if isinstance(event, ConfirmOrder):
        return _confirm(state, event.key, event.via, now)
    if isinstance(event, ConfirmProduct):
        return _confirm_product(state, event, now)
    if isinstance(event, CancelByKey):
        return _cancel_by_key(state, event.key, event.via, now)
    if isinstance(event, DeviceConnected):
        known = state.boots.get(event.device, BootCount())
        report = Report(Outcome.IGNORED, event.device, now, detail=CONNECTED, routine=True)
        return _boot(state, event.device, connected(known), now, [report])
    if isinstance(event, CounterSeen):
        known = state.boots.get(event.device, BootCount())
        return _boot(state, event.device, counted(known, event.count), now, [])
    return _tick(state, now, rules)


def event_dedupe_key(state: State, event: ButtonEvent | SensorReading) -> str | None:
    """The seen-ids key the caller must look up for ``seen``, or None."""
    if isinstance(event, ButtonEvent):
        event = since_boot(state.boots, event)
    if event.event_id is None:
        return None
    return dedupe_key(event.device, event.event_id)


def _boot(state: State, device: str, count: BootCount, now: float, told: list[Action]) -> Decision:
    """Keep a counter-since-boot button's new BootCount (gateway.core.boots), durably."""
    if count == state.boots.get(device, BootCount()):
        return state, told
    state = replace(state, boots={**state.boots, device: count})
    return state, [RememberBoot(device, count, now), *told]


# --------------------------------------------------------------------------- buttons


def _button(state: State, event: ButtonEvent, now: float, rules: Rules, seen: bool) -> Decision:
    device = event.device
    product = rules.button_products.get(device)
    if product is None:
        return state, [Report(Outcome.INVALID, device, now, detail="unknown button")]
    if event.retained:
        detail = "retained message replayed by the broker, not a press"
        return state, [Report(Outcome.IGNORED, device, now, product, event.event_id, detail=detail)]
    # A device's own ids are acted on once, ever. Gateway-made ids only repeat when
    # the broker redelivers a message we never acknowledged.
    if event.event_id is not None and seen and (event.redelivered or not event.synthetic_id):
        return state, [Report(Outcome.DUPLICATE, device, now, product, event.event_id)]
    actions: list[Action] = []
    if event.origin != "gpio" and event.synthetic_id:
        window_key = f"{device}\x00{event.action}"
        last = state.recent.get(window_key)
        if last is not None and 0 <= now - last < rules.dedupe_window:
            detail = f"same action within the {rules.dedupe_window:g}s dedupe window"
            report = Report(Outcome.DUPLICATE, device, now, product, event.event_id, detail=detail)
            if event.action != "hold":
                return state, [report]
            # A hold repeats while the button is held (a Hue dimmer's on_hold, about
            # once a second): the window runs from the latest, so one long press,
            # however long, cancels one order.
            recent = {**state.recent, window_key: now}
            return replace(state, recent=recent), [report, RememberAction(window_key, now)]
        recent = {k: t for k, t in state.recent.items() if now - t < rules.dedupe_window}
        recent[window_key] = now
        state = replace(state, recent=recent)
        actions.append(RememberAction(window_key, now))
    if event.event_id is not None:
        actions.append(RememberEvent(dedupe_key(device, event.event_id), now))
    # Gateway-made ids can repeat for different presses (MQTT packet ids are reused),
    # so the order is named by the moment too; device ids are unique by contract.
    event_id = event.event_id or "t"
    if event.synthetic_id:
        event_id = f"{event_id}@{now:.6f}"
    if event.action == "hold":
        state, more = _cancel_newest(state, product, device, event_id, now)
    else:
        trigger: Trigger = "manual" if event.origin == "virtual" else "press"
        state, more = _order(state, product, device, event_id, trigger, now, rules)
    if more and isinstance(more[0], PlaceOrder):
        # The intent first, then the id that made it, so a crash between the two
        # statements cannot exist: the caller commits them in one transaction.
        return state, [more[0], *actions, *more[1:]]
    return state, actions + more


def _cancel_newest(state: State, product: str, device: str, event_id: str, now: float) -> Decision:
    candidates = [o for o in state.open_orders if o.product == product and not o.cancel_requested]
    if not candidates:
        report = Report(Outcome.NOTHING_TO_CANCEL, device, now, product, event_id)
        return state, [report, Feedback(device, LedPattern.OFF)]
    newest = max(candidates, key=lambda o: o.created_at)
    marked = replace(newest, cancel_requested=True)
    open_orders = tuple(marked if o.key == newest.key else o for o in state.open_orders)
    report = Report(Outcome.CANCEL_REQUESTED, device, now, product, event_id, order_key=newest.key)
    return replace(state, open_orders=open_orders), [
        CancelOrder(newest.key, product, device),
        report,
        Feedback(device, LedPattern.CANCELLED),
    ]


def _cancel_by_key(state: State, key: str, via: str, now: float) -> Decision:
    """A cancel for one order, named by its key: as a long press cancels the newest."""
    order = next((o for o in state.open_orders if o.key == key), None)
    if order is None or order.cancel_requested:
        why = "already being cancelled" if order is not None else "no longer open"
        device = order.device if order is not None else "?"
        product = order.product if order is not None else None
        detail = f"nothing to cancel via {via}: the order is {why}"
        report = Report(
            Outcome.NOTHING_TO_CANCEL, device, now, product, order_key=key, detail=detail
        )
        return state, [report]
    marked = replace(order, cancel_requested=True)
    open_orders = tuple(marked if o.key == key else o for o in state.open_orders)
    report = Report(
        Outcome.CANCEL_REQUESTED,
        order.device,
        now,
        order.product,
        order_key=key,
        detail=f"cancel asked via {via}",
    )
    return replace(state, open_orders=open_orders), [
        CancelOrder(key, order.product, order.device),
        report,
        Feedback(order.device, LedPattern.CANCELLED),
    ]


def _order(
    state: State,
    product: str,
    device: str,
    event_id: str,
    trigger: Trigger,
    now: float,
    rules: Rules,
) -> Decision:
    cfg = rules.products[product]
    placed = tuple(p for p in state.placed if now - p.at < DAY)
    state = replace(state, placed=placed)
    if cfg.confirm and trigger != "threshold":
        # A press while the product's order waits for a yes is that yes: a sensor
        # reading never is, since only a person can consent to paying.
        waiting = _awaiting_consent(state, product)
        if waiting is not None:
            return _confirm(state, waiting.key, "second press", now)
    rule = _blocking_rule(state, product, cfg, now, rules)
    if rule is not None:
        pattern = (
            LedPattern.ALREADY_ORDERED
            if rule in (Rule.ONE_OPEN_ORDER, Rule.COOLDOWN)
            else LedPattern.LIMIT_REACHED
        )
        report = Report(Outcome.ABSORBED, device, now, product, event_id, rule=rule)
        return state, [report, Feedback(device, pattern)]
    key = order_key(rules.secret, rules.gateway_id, device, event_id)
    hold_until = now + cfg.confirm_window if cfg.confirm_window > 0 else None
    if cfg.confirm:
        # Held until confirmed; hold_until is when it expires instead of being sent.
        hold_until = now + cfg.confirm_expires
    order_state = OrderState.HELD if hold_until is not None else OrderState.QUEUED
    intent = PlaceOrder(
        key=key,
        product=product,
        sku=cfg.sku,
        quantity=cfg.quantity,
        device=device,
        trigger=trigger,
        event_id=event_id,
        created_at=now,
        hold_until=hold_until,
        gateway=rules.gateway_id,
        shop=cfg.shop,
    )
    state = replace(
        state,
        open_orders=(
            *state.open_orders,
            OpenOrder(key, product, device, order_state, now, hold_until=hold_until),
        ),
        placed=(*placed, PlacedOrder(key, product, cfg.quantity, now)),
    )
    outcome = Outcome.HELD if hold_until is not None else Outcome.ORDERED
    detail = "waiting for a confirmation (press again, or confirm on the web page)"
    report = Report(
        outcome,
        device,
        now,
        product,
        event_id,
        order_key=key,
        state=order_state,
        detail=detail if cfg.confirm else None,
    )
    return state, [intent, report, Feedback(device, LedPattern.RECEIVED)]


def _blocking_rule(
    state: State, product: str, cfg: ProductRules, now: float, rules: Rules
) -> Rule | None:
    if cfg.one_open_order and any(o.product == product for o in state.open_orders):
        return Rule.ONE_OPEN_ORDER
    mine = [p for p in state.placed if p.product == product]
    if cfg.cooldown > 0 and any(now - p.at < cfg.cooldown for p in mine):
        return Rule.COOLDOWN
    if cfg.max_per_day is not None and sum(p.quantity for p in mine) + cfg.quantity > (
        cfg.max_per_day
    ):
        return Rule.MAX_PER_DAY
    if len(state.placed) >= rules.max_orders_per_day:
        return Rule.GATEWAY_CAP
    return None


# --------------------------------------------------------------------------- sensors


def _reading(state: State, event: SensorReading, now: float, rules: Rules, seen: bool) -> Decision:
    sensor = rules.sensors.get(event.device)
    if sensor is None:
        return state, [Report(Outcome.INVALID, event.device, now, detail="unknown sensor")]
    if event.event_id is not None and seen:
        duplicate = Report(Outcome.DUPLICATE, event.device, now, sensor.product, event.event_id)
        return state, [duplicate]
    actions: list[Action] = []
    if event.event_id is not None:
        actions.append(RememberEvent(dedupe_key(event.device, event.event_id), now))
    before = state.episodes.get(sensor.name, Episode())
    # Built directly, not with dataclasses.replace: this runs for every reading.
    episode = Episode(before.phase, before.below_since, event.value, now, False)
    value = event.value
    report: Report | None = None
    if episode.phase == "armed" and value < sensor.reorder_below:
        episode = replace(episode, phase="settling", below_since=now)
        report = Report(
            Outcome.SENSOR_LOW,
            sensor.name,
            now,
            sensor.product,
            value=value,
            detail=f"below {sensor.reorder_below:g}; ordering if it stays there {sensor.settle:g}s",
        )
    elif episode.phase == "settling" and value >= sensor.reorder_below:
        episode = replace(episode, phase="armed", below_since=None)
        report = Report(
            Outcome.SENSOR_RECOVERED,
            sensor.name,
            now,
            sensor.product,
            value=value,
            detail="back above the threshold before it settled (lifted off?): no order",
        )
    elif episode.phase == "ordered" and value >= sensor.rearm_above:
        episode = replace(episode, phase="armed", below_since=None)
        report = Report(Outcome.SENSOR_REARMED, sensor.name, now, sensor.product, value=value)
    state = _with_episode(state, sensor.name, episode)
    if episode.phase != before.phase or before.stale_reported:
        actions.append(SaveEpisode(sensor.name, episode))
    if report is not None:
        actions.append(report)
    if episode.phase == "settling":
        state, more = _maybe_settled(state, sensor, now, rules)
        actions.extend(more)
    if sensor.forecast is not None:
        state, more = _foresee(state, sensor, value, now, rules)
        actions.extend(more)
    return state, actions


def _maybe_settled(state: State, sensor: SensorRules, now: float, rules: Rules) -> Decision:
    episode = state.episodes[sensor.name]
    if episode.phase != "settling" or episode.below_since is None:
        return state, []
    if now - episode.below_since < sensor.settle:
        return state, []
    if episode.last_seen is None or now - episode.last_seen > sensor.stale_after:
        return state, []  # silent sensor: reported as stale, never acted on
    # One id per depletion episode: a restart or a replayed reading maps to the same
    # idempotency key, so the shop sees one order at most.
    event_id = f"low-{episode.below_since:.3f}"
    state, actions = _order(state, sensor.product, sensor.name, event_id, "threshold", now, rules)
    ordered = replace(episode, phase="ordered")
    state = _with_episode(state, sensor.name, ordered)
    usage = state.usage.get(sensor.name)
    if usage is not None and actions and isinstance(actions[0], PlaceOrder):
        # This episode is ordered for: the forecast must not order it again once the
        # order is delivered but the refill has not settled yet.
        usage = replace(usage, ordered_episode=usage.episode_start)
        state = _with_usage(state, sensor.name, usage)
        actions.append(SaveLearned("usage", sensor.name, usage))
        below = f"{sensor.reorder_below:g} {sensor.unit or ''}".rstrip()
        actions = _explained(actions, f"{sensor.product}: below {below} → ordering now (threshold)")
    return state, [*actions, SaveEpisode(sensor.name, ordered)]


def _with_episode(state: State, name: str, episode: Episode) -> State:
    episodes = dict(state.episodes)
    episodes[name] = episode
    return State(
        state.open_orders,
        state.placed,
        episodes,
        state.recent,
        state.usage,
        state.leads,
        state.intervals,
    )


# --------------------------------------------------------------------------- forecasting


def _with_usage(state: State, name: str, usage: Usage) -> State:
    learned = dict(state.usage)
    learned[name] = usage
    return replace(state, usage=learned)


def _has_sensor(product: str, rules: Rules) -> bool:
    return any(s.product == product for s in rules.sensors.values())


def _explained(actions: list[Action], detail: str) -> list[Action]:
    """The order's report says why (trigger and numbers)."""
    return [
        replace(a, detail=detail)
        if isinstance(a, Report) and a.outcome in (Outcome.ORDERED, Outcome.HELD)
        else a
        for a in actions
    ]


_PENDING_KEPT = 60 * DAY
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _foresee(state: State, sensor: SensorRules, value: float, now: float, rules: Rules) -> Decision:
    """Learn from the reading; order when the projection says this is the last safe
    moment; tell the projected empty date when it moves to another day."""
    fc = sensor.forecast
    assert fc is not None
    unit = sensor.unit or ""
    before = state.usage.get(sensor.name, Usage())
    usage = observe(before, value, now, fc)
    if usage == before:
        return state, []
    actions: list[Action] = []
    settled = usage.level_at != before.level_at
    product = rules.products[sensor.product]
    p = projection(usage, state.leads.get(sensor.product, LeadTime()), product.lead_time, now, fc)
    if p is not None and settled:
        empty_day = day_number(p.empty_at, fc.utc_offset)
        told = usage.told_empty_at
        if told is None or day_number(told, fc.utc_offset) != empty_day:
            usage = replace(usage, told_empty_at=p.empty_at)
            name = _WEEKDAYS[weekday(empty_day)]
            actions.append(
                Report(
                    Outcome.FORECAST,
                    sensor.name,
                    now,
                    sensor.product,
                    value=p.empty_at,
                    detail=f"{sensor.product} runs out {name} "
                    f"({p.level:.0f} {unit} left, {p.rate:.0f} {unit}/day)",
                )
            )
        open_now = any(o.product == sensor.product for o in state.open_orders)
        if not open_now and usage.ordered_episode != usage.episode_start and should_order(p, fc):
            event_id = f"fc-{usage.episode_start:.3f}"
            state, placed = _order(
                state, sensor.product, sensor.name, event_id, "forecast", now, rules
            )
            if placed and isinstance(placed[0], PlaceOrder):
                usage = replace(usage, ordered_episode=usage.episode_start)
                actions.extend(_explained(placed, explain(sensor.product, p, unit)))
            else:
                actions.extend(placed)
    state = _with_usage(state, sensor.name, usage)
    if settled or usage.ordered_episode != before.ordered_episode:
        actions.append(SaveLearned("usage", sensor.name, usage))
    return state, actions


def _learn_interval(state: State, product: str, now: float) -> tuple[State, SaveLearned]:
    interval = state.intervals.get(product, Interval()).learn(now)
    intervals = dict(state.intervals)
    intervals[product] = interval
    return replace(state, intervals=intervals), SaveLearned("interval", product, interval)


def _due_soon_at(
    interval: Interval, cfg: ProductRules, leads: Mapping[str, LeadTime], name: str
) -> float | None:
    due = interval.due_at()
    if due is None or interval.told_due == interval.last:
        return None
    return due - leads.get(name, LeadTime()).mean_or(cfg.lead_time)


def _due_soon(state: State, now: float, rules: Rules) -> Decision:
    actions: list[Action] = []
    for name, interval in state.intervals.items():
        cfg = rules.products.get(name)
        if cfg is None or _has_sensor(name, rules):
            continue
        at = _due_soon_at(interval, cfg, state.leads, name)
        if at is None or now < at:
            continue
        told = replace(interval, told_due=interval.last)
        state = replace(state, intervals={**state.intervals, name: told})
        days = (interval.mean or 0.0) / DAY
        detail = f"{name} is usually reordered every {days:.1f} days: due soon"
        actions.append(Report(Outcome.DUE_SOON, name, now, name, detail=detail))
        actions.append(SaveLearned("interval", name, told))
        if cfg.order_when_due:
            event_id = f"due-{interval.last:.3f}"
            state, placed = _order(state, name, name, event_id, "forecast", now, rules)
            if placed and isinstance(placed[0], PlaceOrder):
                placed = _explained(placed, detail + " → ordering now")
            actions.extend(placed)
    return state, actions


def _learn_lead(state: State, update: OrderUpdate, now: float, rules: Rules) -> Decision:
    """Accepted -> delivered, per product, from the shop's own answers."""
    cfg = rules.products.get(update.product)
    if cfg is None:
        return state, []
    lead = state.leads.get(update.product, LeadTime())
    # An order dropped from the queue by hand never reports back: forget it in time.
    pending = {k: t for k, t in lead.pending if now - t < _PENDING_KEPT}
    if update.state is OrderState.ACCEPTED and update.key not in pending:
        pending[update.key] = now
        changed = replace(lead, pending=tuple(pending.items()))
    elif update.key in pending:
        accepted = pending.pop(update.key)
        changed = replace(lead, pending=tuple(pending.items()))
        if update.state is OrderState.DELIVERED:
            changed = changed.learn(now - accepted, default=cfg.lead_time)
    else:
        return state, []
    return replace(state, leads={**state.leads, update.product: changed}), [
        SaveLearned("lead", update.product, changed)
    ]


# --------------------------------------------------------------------------- ticks, updates


def _tick(state: State, now: float, rules: Rules) -> Decision:
    actions: list[Action] = []
    for name, sensor in rules.sensors.items():
        episode = state.episodes.get(name)
        if episode is None or episode.last_seen is None:
            continue
        if now - episode.last_seen > sensor.stale_after and not episode.stale_reported:
            stale = replace(episode, stale_reported=True)
            state = _with_episode(state, name, stale)
            age = now - episode.last_seen
            actions.append(SaveEpisode(name, stale))
            actions.append(
                Report(
                    Outcome.SENSOR_STALE,
                    name,
                    now,
                    sensor.product,
                    detail=f"no reading for {age:.0f}s (stale_after {sensor.stale_after:g}s)",
                )
            )
            continue
        state, more = _maybe_settled(state, sensor, now, rules)
        actions.extend(more)
    state, released = _release_held(state, now, rules)
    actions.extend(released)
    if state.intervals:
        state, due = _due_soon(state, now, rules)
        actions.extend(due)
    recent = {k: t for k, t in state.recent.items() if now - t < rules.dedupe_window}
    placed = tuple(p for p in state.placed if now - p.at < DAY)
    if len(recent) != len(state.recent) or len(placed) != len(state.placed):
        state = replace(state, recent=recent, placed=placed)
    return state, actions


def _release_held(state: State, now: float, rules: Rules) -> Decision:
    """Held orders whose confirm window is over go to the sender (a cancel inside the
    window has already removed them); those that waited for a confirmation in vain
    are dropped instead."""
    due = [
        o
        for o in state.open_orders
        if o.state is OrderState.HELD and not o.cancel_requested and hold_ended(o.hold_until, now)
    ]
    if not due:
        return state, []
    expired = {o.key for o in due if _needs_consent(o, rules)}
    released = {o.key for o in due} - expired
    open_orders = tuple(
        replace(o, state=OrderState.QUEUED)
        if o.key in released
        else replace(o, cancel_requested=True)
        if o.key in expired
        else o
        for o in state.open_orders
    )
    actions: list[Action] = []
    for o in due:
        if o.key in released:
            actions.append(ReleaseHeld(o.key))
            continue
        waited = now - o.created_at
        detail = f"not confirmed within {waited / 3600:.3g} h: dropped, nothing was ordered"
        actions.append(CancelOrder(o.key, o.product, o.device))
        actions.append(
            Report(Outcome.EXPIRED, o.device, now, o.product, order_key=o.key, detail=detail)
        )
    return replace(state, open_orders=open_orders), actions


def _needs_consent(order: OpenOrder, rules: Rules) -> bool:
    cfg = rules.products.get(order.product)
    return cfg is not None and cfg.confirm


def _awaiting_consent(state: State, product: str) -> OpenOrder | None:
    waiting = [
        o
        for o in state.open_orders
        if o.product == product and o.state is OrderState.HELD and not o.cancel_requested
    ]
    return max(waiting, key=lambda o: o.created_at) if waiting else None


def _confirm_product(state: State, event: ConfirmProduct, now: float) -> Decision:
    """A yes for the newest order of a product that waits for one."""
    waiting = _awaiting_consent(state, event.product)
    if waiting is None:
        detail = f"nothing to confirm via {event.via}: no {event.product} order waits for a yes"
        return state, [Report(Outcome.IGNORED, event.via, now, event.product, detail=detail)]
    return _confirm(state, waiting.key, event.via, now)


def _confirm(state: State, key: str, via: str, now: float) -> Decision:
    """A yes for a held order: it goes to the sender now (a confirm_window order too,
    without waiting for its window). Anything else has nothing left to confirm."""
    order = next((o for o in state.open_orders if o.key == key), None)
    if order is None or order.state is not OrderState.HELD or order.cancel_requested:
        detail = f"nothing to confirm via {via}: the order is no longer waiting"
        device = order.device if order is not None else "?"
        product = order.product if order is not None else None
        return state, [Report(Outcome.IGNORED, device, now, product, order_key=key, detail=detail)]
    open_orders = tuple(
        replace(o, state=OrderState.QUEUED) if o.key == key else o for o in state.open_orders
    )
    report = Report(
        Outcome.CONFIRMED,
        order.device,
        now,
        order.product,
        order_key=key,
        state=OrderState.QUEUED,
        detail=f"confirmed via {via}",
    )
    return replace(state, open_orders=open_orders), [
        ReleaseHeld(key),
        report,
        Feedback(order.device, LedPattern.RECEIVED),
    ]


_UPDATE_PATTERNS = {
    OrderState.ACCEPTED: LedPattern.ACCEPTED,
    OrderState.REJECTED: LedPattern.REJECTED,
    OrderState.BLOCKED: LedPattern.BLOCKED,
    OrderState.CANCELLED: LedPattern.CANCELLED,
}


def _order_update(state: State, update: OrderUpdate, now: float, rules: Rules) -> Decision:
    if update.state.is_final:
        open_orders = tuple(o for o in state.open_orders if o.key != update.key)
    else:
        # A cancel the shop refused (too late) frees the order for the next long press.
        open_orders = tuple(
            replace(
                o,
                state=update.state,
                cancel_requested=o.cancel_requested and not update.cancel_refused,
                shop_order_id=update.shop_order_id or o.shop_order_id,
            )
            if o.key == update.key
            else o
            for o in state.open_orders
        )
    placed = state.placed
    if not update.state.was_bought:
        # Nothing was (or will be) bought: it no longer counts towards the caps.
        placed = tuple(p for p in placed if p.key != update.key)
    state = replace(state, open_orders=open_orders, placed=placed)
    status = Report(
        Outcome.ORDER_STATUS,
        update.device,
        now,
        update.product,
        order_key=update.key,
        state=update.state,
        detail=update.reason,
        price=update.price,
    )
    known = dict(state.leads.get(update.product, LeadTime()).pending)
    state, learned = _learn_lead(state, update, now, rules)
    first_accept = update.state is OrderState.ACCEPTED and update.key not in known
    if first_accept and update.product in rules.products and not _has_sensor(update.product, rules):
        # The shop took it: one more interval of a button-only product (a cancelled
        # order never gets here, so it does not count).
        state, interval = _learn_interval(state, update.product, now)
        learned.append(interval)
    actions: list[Action] = [status, *learned]
    pattern = LedPattern.QUEUED if update.unreachable else _UPDATE_PATTERNS.get(update.state)
    if pattern is not None:
        actions.append(Feedback(update.device, pattern))
    return state, actions


def next_due(state: State, now: float, rules: Rules) -> float | None:
    """When the core next needs a Tick (a settling sensor, a stale check, the end of a
    confirm window), or None."""
    due: list[float] = []
    for name, sensor in rules.sensors.items():
        episode = state.episodes.get(name)
        if episode is None or episode.last_seen is None:
            continue
        if episode.phase == "settling" and episode.below_since is not None:
            due.append(episode.below_since + sensor.settle)
        if not episode.stale_reported:
            due.append(episode.last_seen + sensor.stale_after + 0.001)
    due.extend(
        o.hold_until
        for o in state.open_orders
        if o.state is OrderState.HELD and not o.cancel_requested and o.hold_until is not None
    )
    for name, interval in state.intervals.items():
        cfg = rules.products.get(name)
        if cfg is not None and not _has_sensor(name, rules):
            at = _due_soon_at(interval, cfg, state.leads, name)
            if at is not None:
                due.append(max(at, now))
    return min(due) if due else None
