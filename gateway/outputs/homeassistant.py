"""Home Assistant: MQTT discovery, and the retained state topics its entities read.

Discovery follows Home Assistant's conventions: one retained JSON config per
entity on ``<prefix>/<component>/<gateway id>/<object id>/config``, all entities
in one device block, ``unique_id`` stable across restarts, and availability from
the gateway's own ``online``/``offline`` on ``<topic_prefix>/<id>/status`` (its
last will says ``offline`` if the gateway dies).

=====================  ===========================================================
per button             ``button`` "paid order of 2 × coffee" (presses
                       ``<topic_prefix>/<id>/<button>/press``) and ``sensor`` "last
                       decision" (about its messages; the order's later states are
                       the product's)
per product            ``sensor``: open order none/queued/accepted/shipped; attributes:
                       the shop's order id, the gateway's key, the last order's time
                       and total. ``confirm: true`` products: a ``button`` "confirm the
                       paid order" (``<topic_prefix>/<id>/product/<product>/confirm``)
per sensor             ``sensor`` reading (unit from the config), ``binary_sensor``
                       "running low" (below the threshold until refilled)
the gateway            ``binary_sensor`` broker and shop connectivity, ``sensor``
                       queue depth
=====================  ===========================================================

State is retained JSON on ``<topic_prefix>/<id>/state/{button,product,sensor}/<name>``
and ``.../state/gateway``. What was announced is remembered in
``<state_dir>/homeassistant.json``, so a restart or reload with a smaller config
clears the entities of removed devices (an empty retained payload).

When that file is unreadable (empty or torn after a power cut, or edited by hand),
the broker is asked instead: the bridge announces every current entity and, for a
few seconds, the link subscribes to the retained discovery configs under the
gateway's own node id and to its own state topics (:meth:`HomeAssistantBridge.sweep_filters`);
every retained one the current config does not have is cleared
(:meth:`HomeAssistantBridge.on_swept`), and the file is written anew at the end
(:meth:`HomeAssistantBridge.finish_sweep`). Until then the file stays as it was, so a
gateway stopped in the middle sweeps again at its next start.

>>> from gateway.config.models import Config
>>> cfg = Config.model_validate({"gateway": {"id": "kitchen"},
...     "commerce": {"base_url": "http://127.0.0.1/api"}, "products": {"tea": {"sku": "T"}},
...     "buttons": [{"name": "hall", "product": "tea"}]})
>>> sorted(discovery_configs(cfg))[0]
'homeassistant/binary_sensor/kitchen/gateway_broker/config'
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from gateway import __version__
from gateway.clock import rfc3339
from gateway.config.models import Config
from gateway.core.decide import State
from gateway.core.events import OrderState, Outcome, Report
from gateway.core.keys import short_key
from gateway.outputs.files import write_private
from gateway.outputs.reports import report_json
from gateway.outputs.topics import GatewayTopics

log = logging.getLogger(__name__)

ANNOUNCED_FILE = "homeassistant.json"
# Real seconds between clearing a removed entity's discovery config and its retained
# state (see HomeAssistantBridge._clear): Home Assistant drops the entity within
# milliseconds of the empty config; this leaves room for a busy one.
CLEAR_STATES_AFTER = 3.0
# The four product states; the outbox's finer ones fold into them.
_PRODUCT_STATE = {
    OrderState.HELD: "queued",
    OrderState.QUEUED: "queued",
    OrderState.SENDING: "queued",
    OrderState.BLOCKED: "queued",
    OrderState.ACCEPTED: "accepted",
    OrderState.SHIPPED: "shipped",
}
_PRODUCT_STATES = ["none", "queued", "accepted", "shipped"]
_RANK = {name: i for i, name in enumerate(_PRODUCT_STATES)}

Publish = Callable[[str, bytes], None]  # retained, QoS 1


def _own(config: Config) -> GatewayTopics:
    return GatewayTopics(config.mqtt.topic_prefix, config.gateway.id)


def state_topics(config: Config) -> dict[str, str]:
    """``kind/name`` -> the retained state topic it is published on."""
    own = _own(config)
    topics = {"gateway": own.state("gateway")}
    topics.update({f"button/{b.name}": own.state("button", b.name) for b in config.buttons})
    topics.update({f"product/{p}": own.state("product", p) for p in config.products})
    topics.update({f"sensor/{s.name}": own.state("sensor", s.name) for s in config.sensors})
    return topics


def discovery_configs(config: Config) -> dict[str, dict[str, object]]:
    """Topic -> discovery payload for every entity this config has."""
    gid = config.gateway.id
    prefix = config.homeassistant.prefix
    states = state_topics(config)
    device = {
        "identifiers": [f"reorder-gateway-{gid}"],
        "name": f"Reorder gateway {gid}",
        "manufacturer": "reorder-gateway",
        "model": "Reorder gateway",
        "sw_version": __version__,
    }
    common: dict[str, object] = {
        "availability_topic": _own(config).status,
        "payload_available": "online",
        "payload_not_available": "offline",
        "device": device,
        "origin": {"name": "reorder-gateway", "sw_version": __version__},
        "qos": 1,
    }
    out: dict[str, dict[str, object]] = {}

    def entity(component: str, object_id: str, name: str, **fields: object) -> None:
        payload = {"name": name, "unique_id": f"reorder-gateway_{gid}_{object_id}", **common}
        payload.update(fields)
        out[f"{prefix}/{component}/{gid}/{object_id}/config"] = payload

    for b in config.buttons:
        product = config.products.get(b.product)
        quantity = product.quantity if product is not None else 1
        entity(
            "button",
            f"button_{b.name}_press",
            # A press places a paid order (or asks for a yes first): the name says so.
            f"{b.name}: paid order of {quantity} × {b.product}",
            command_topic=_own(config).press(b.name),
            # The virtual press topic takes a JSON object (an "id" is optional).
            payload_press="{}",
            # The product's state: what its last order cost ("last_total").
            json_attributes_topic=states[f"product/{b.product}"],
            icon="mdi:cart-arrow-down",
        )
        topic = states[f"button/{b.name}"]
        entity(
            "sensor",
            f"button_{b.name}_decision",
            f"{b.name} last decision",
            state_topic=topic,
            value_template="{{ value_json.outcome }}",
            json_attributes_topic=topic,
            icon="mdi:gavel",
        )
    for p, product_config in config.products.items():
        topic = states[f"product/{p}"]
        if product_config.confirm:
            entity(
                "button",
                f"product_{p}_confirm",
                f"{p}: confirm the paid order of {product_config.quantity} × {p}",
                command_topic=_own(config).confirm(p),
                payload_press="{}",
                json_attributes_topic=topic,
                icon="mdi:cart-check",
            )
        entity(
            "sensor",
            f"product_{p}_order",
            f"{p} order",
            state_topic=topic,
            value_template="{{ value_json.state }}",
            json_attributes_topic=topic,
            # No device_class "enum" with "options": Home Assistant 2024.3's MQTT
            # sensor schema has no "options" and drops it, and an enum sensor
            # without options is refused. A plain text sensor shows the same states.
            icon="mdi:package-variant",
        )
    for s in config.sensors:
        topic = states[f"sensor/{s.name}"]
        fields: dict[str, object] = {"state_class": "measurement"}
        if s.unit:
            fields["unit_of_measurement"] = s.unit
        entity(
            "sensor",
            f"sensor_{s.name}_reading",
            f"{s.name} reading",
            state_topic=topic,
            value_template="{{ value_json.value }}",
            **fields,
        )
        if s.forecast is not None:
            entity(
                "sensor",
                f"sensor_{s.name}_runs_out",
                f"{s.name} runs out",
                state_topic=topic,
                value_template="{{ value_json.runs_out | default('unknown') }}",
                icon="mdi:calendar-alert",
            )
        entity(
            "binary_sensor",
            f"sensor_{s.name}_low",
            f"{s.name} running low",
            state_topic=topic,
            value_template="{{ 'ON' if value_json.low else 'OFF' }}",
            device_class="problem",
        )
    gateway = states["gateway"]
    for what in ("broker", "shop"):
        entity(
            "binary_sensor",
            f"gateway_{what}",
            f"{what} connection",
            state_topic=gateway,
            # null (not known yet) renders as None: Home Assistant shows "unknown".
            value_template=f"{{{{ value_json.{what} }}}}",
            device_class="connectivity",
            entity_category="diagnostic",
        )
    entity(
        "sensor",
        "gateway_queue",
        "queue depth",
        state_topic=gateway,
        value_template="{{ value_json.queue }}",
        state_class="measurement",
        unit_of_measurement="orders",
        entity_category="diagnostic",
        icon="mdi:tray-full",
    )
    return out


def _current_topics(config: Config, configs: dict[str, dict[str, object]]) -> set[str]:
    """Every retained topic the bridge publishes for ``config``."""
    return set(configs) | set(state_topics(config).values())


def _sweep_filters(config: Config) -> tuple[str, ...]:
    """The gateway's own retained topics at the broker: discovery configs under its
    node id, whatever the component and object, and its state topics."""
    gid = config.gateway.id
    return (
        f"{config.homeassistant.prefix}/+/{gid}/+/config",
        f"{_own(config).base}/state/#",
    )


def topic_matches(topic_filter: str, topic: str) -> bool:
    """MQTT topic matching, for the sweep's filters.

    >>> topic_matches("homeassistant/+/kitchen/+/config",
    ...               "homeassistant/sensor/kitchen/product_tea_order/config")
    True
    >>> topic_matches("reorder/kitchen/state/#", "reorder/kitchen/status")
    False
    """
    levels, parts = topic_filter.split("/"), topic.split("/")
    for i, level in enumerate(levels):
        if level == "#":
            return True
        if i >= len(parts) or (level != "+" and level != parts[i]):
            return False
    return len(levels) == len(parts)


def _is_empty(path: Path) -> bool:
    try:
        return path.stat().st_size == 0
    except OSError:
        return False


def _dumps(body: object) -> bytes:
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()


class HomeAssistantBridge:
    """Announces entities and publishes their state; callable from any thread.

    >>> cfg = Config.model_validate({"gateway": {"id": "kitchen"},
    ...     "commerce": {"base_url": "http://127.0.0.1/api"}, "products": {"tea": {"sku": "T"}}})
    >>> sent = []
    >>> bridge = HomeAssistantBridge(cfg, Path("."), lambda t, p: sent.append(t))
    >>> bridge.on_gateway(broker=True, shop=None, queue=0)
    >>> sent
    ['reorder/kitchen/state/gateway']
    """

    def __init__(self, config: Config, state_dir: Path, publish: Publish) -> None:
        self._config = config
        self._topics = state_topics(config)
        self._state_dir = state_dir
        self._publish = publish
        self._lock = threading.Lock()
        self._last: dict[str, bytes] = {}  # topic -> last payload (skip repeats)
        self._last_order: dict[str, float] = {}
        self._last_total: dict[str, str] = {}  # product -> what its last order cost
        self._readings: dict[str, tuple[float, float | None]] = {}  # name -> (value, at)
        self._low: dict[str, bool] = {}
        # While homeassistant.json is rebuilt from the broker: the filters the link
        # subscribes to, and the topics cleared so far.
        self._sweep: tuple[str, ...] = ()
        self._swept: set[str] = set()
        self._sweep_announced: set[str] = set()  # a reload may shrink it meanwhile
        self._runs_out: dict[str, str] = {}  # sensor -> weekday it is projected to run out
        self._later: set[str] = set()  # removed devices' state topics, cleared after configs

    # ------------------------------------------------------------------ discovery

    def reconfigure(self, config: Config) -> None:
        with self._lock:
            self._config = config
            self._topics = state_topics(config)

    def announce(self) -> list[str]:
        """Publish every config (retained) and clear what an older config announced.

        Returns the cleared topics. Called after every (re)connect and reload.
        """
        # The lock guards the bridge's own fields only: the file and the broker are
        # handled outside it, so the core thread's state updates never wait on disk I/O.
        with self._lock:
            config = self._config
        configs = discovery_configs(config) if config.homeassistant.discovery else {}
        current = _current_topics(config, configs)
        announced = self._load_announced()
        if announced is None:
            # Nothing to compare with: publish what is current, and let the broker
            # tell what else was announced (on_swept).
            for topic, payload in configs.items():
                self._publish(topic, _dumps(payload))
            with self._lock:
                self._sweep_announced |= current
            log.info("Home Assistant: announced %d entities", len(configs))
            return []
        removed = sorted(announced - current)
        for topic, payload in configs.items():
            self._publish(topic, _dumps(payload))
        self._clear(removed)
        self._save_announced(current)
        if removed:
            log.info("Home Assistant: cleared %d topics of removed devices", len(removed))
        log.info("Home Assistant: announced %d entities", len(configs))
        return removed

    def sweep_filters(self) -> tuple[str, ...]:
        """The topic filters the link subscribes to while ``homeassistant.json`` is
        rebuilt from the broker; empty otherwise."""
        with self._lock:
            return self._sweep

    def sweeps(self, topic: str) -> bool:
        """True if a message on ``topic`` is the sweep's (not a device's)."""
        return any(topic_matches(f, topic) for f in self.sweep_filters())

    def on_swept(self, topic: str, payload: bytes, *, retained: bool) -> None:
        """A message found under the sweep's filters: a retained one that the current
        config does not have is cleared. Live ones (the bridge's own publishes coming
        back) and empty ones (already cleared) are left alone."""
        if not retained or not payload:
            return
        with self._lock:
            config, sweeping = self._config, bool(self._sweep)
        configs = discovery_configs(config) if config.homeassistant.discovery else {}
        if not sweeping or topic in _current_topics(config, configs):
            return
        self._clear([topic])
        with self._lock:
            self._swept.add(topic)

    def finish_sweep(self) -> list[str]:
        """End the rebuild: write ``homeassistant.json`` for the current config and
        return the topics the sweep cleared (nothing if no sweep was running)."""
        with self._lock:
            sweeping, config = bool(self._sweep), self._config
            swept, announced = self._swept, self._sweep_announced
            self._sweep, self._swept, self._sweep_announced = (), set(), set()
        if not sweeping:
            return []
        configs = discovery_configs(config) if config.homeassistant.discovery else {}
        current = _current_topics(config, configs)
        # Announced during the sweep by a config that a reload has shrunk since.
        dropped = sorted(announced - current - swept)
        self._clear(dropped)
        cleared = sorted(swept | set(dropped))
        self._save_announced(current)
        log.info(
            "Home Assistant: rebuilt %s; cleared %d retained topics of removed devices "
            "found at the broker",
            ANNOUNCED_FILE,
            len(cleared),
        )
        return cleared

    def _clear(self, topics: list[str]) -> None:
        """Clear retained topics: discovery configs now, state topics later
        (:meth:`clear_states`). Home Assistant must have dropped an entity, and its
        subscription, before its state is emptied: read by a live entity, the empty
        payload is "Erroneous JSON" and its value template fails."""
        with self._lock:
            own_states = f"{_own(self._config).base}/state/"
            later = {t for t in topics if t.startswith(own_states)}
            self._later |= later
            for topic in topics:
                self._last.pop(topic, None)
        for topic in topics:
            if topic not in later:
                self._publish(topic, b"")

    def states_to_clear(self) -> bool:
        """True while removed devices' state topics wait for :meth:`clear_states`."""
        with self._lock:
            return bool(self._later)

    def clear_states(self) -> list[str]:
        """Clear the state topics :meth:`_clear` held back (call it a few seconds after,
        :data:`CLEAR_STATES_AFTER`); a device that a reload brought back meanwhile keeps
        its state. Returns the cleared topics."""
        with self._lock:
            config, later, sweeping = self._config, self._later, bool(self._sweep)
            self._later = set()
        configs = discovery_configs(config) if config.homeassistant.discovery else {}
        current = _current_topics(config, configs)
        cleared = sorted(later - current)
        for topic in cleared:
            self._publish(topic, b"")
        if not sweeping:
            # Until now the file listed them too: a stop in between clears them next start.
            self._save_announced(current)
        return cleared

    def _load_announced(self) -> set[str] | None:
        """What the file says was announced; ``None`` when it cannot say (then the
        sweep is started, and its start logged once)."""
        path = self._state_dir / ANNOUNCED_FILE
        try:
            loaded = json.loads(path.read_text(encoding="utf-8"))
            topics = loaded["topics"]
            if not isinstance(topics, list) or not all(isinstance(t, str) for t in topics):
                raise ValueError("'topics' is not a list of topic names")
        except FileNotFoundError:
            return set()
        except (OSError, ValueError, TypeError, KeyError) as exc:
            reason = "it is empty" if _is_empty(path) else f"{type(exc).__name__}: {exc}"
            self._start_sweep(path, reason)
            return None
        return set(topics)

    def _start_sweep(self, path: Path, reason: str) -> None:
        with self._lock:
            config = self._config
            started = not self._sweep
            self._sweep = _sweep_filters(config)
        if started:
            log.warning(
                "Home Assistant: %s is unreadable (%s); rebuilding it: every current entity "
                "is announced and the retained topics of removed devices are looked up at "
                "the broker and cleared",
                path,
                reason,
            )

    def _save_announced(self, topics: set[str]) -> None:
        with self._lock:
            # State topics still to be cleared stay on the list until they are.
            topics = topics | self._later
        body = json.dumps({"topics": sorted(topics)}, indent=1).encode()
        try:
            write_private(self._state_dir / ANNOUNCED_FILE, body)
        except OSError as exc:
            log.warning("Home Assistant: cannot save %s (%s)", ANNOUNCED_FILE, exc)

    # ------------------------------------------------------------------ state

    def _put(self, topic: str, body: object) -> None:
        payload = _dumps(body)
        if self._last.get(topic) == payload:
            return
        self._last[topic] = payload
        self._publish(topic, payload)

    def republish(self) -> None:
        """Send every known state again (after a reconnect the broker may have lost them)."""
        with self._lock:
            for topic, payload in self._last.items():
                self._publish(topic, payload)

    def seed_last_orders(self, last_orders: dict[str, float]) -> None:
        with self._lock:
            self._last_order.update(last_orders)

    def on_gateway(self, *, broker: bool, shop: bool | None, queue: int | None) -> None:
        """The gateway's own state. Nothing is published while the broker is away: paho
        would queue it and deliver a stale ``OFF`` after the reconnect, and Home
        Assistant learns of a lost gateway from its last will (``offline``) anyway."""
        topic = self._topics["gateway"]
        body = {
            "broker": "ON",
            "shop": None if shop is None else ("ON" if shop else "OFF"),
            "queue": queue,
        }
        with self._lock:
            if not broker:
                # Sent again, fresh, at the first call after the reconnect.
                self._last.pop(topic, None)
                return
            self._put(topic, body)

    def on_report(self, report: Report) -> None:
        with self._lock:
            if report.price is not None and report.product is not None:
                self._last_total[report.product] = report.price.shown
            if report.outcome is Outcome.FORECAST and report.value is not None:
                # "Thursday": the day the forecast says it runs out, in local time.
                self._runs_out[report.device] = datetime.fromtimestamp(report.value).strftime("%A")
                self._put_sensor(report.device)
            topic = self._topics.get(f"button/{report.device}")
            if topic is not None and report.outcome.answers_a_message:
                # The order's later states are the product's order sensor: here they
                # would overwrite "ordered" within milliseconds of the press.
                self._put(topic, report_json(report))

    def on_reading(self, name: str, value: float, at: float | None = None) -> None:
        """Remember the reading; it is published with the batch's state (on_state), so
        a flood of readings costs one retained message per sensor and batch."""
        with self._lock:
            self._readings[name] = (value, at)

    def on_state(self, state: State) -> None:
        with self._lock:
            config = self._config
            for placed in state.placed:
                if placed.at > self._last_order.get(placed.product, float("-inf")):
                    self._last_order[placed.product] = placed.at
            for name, episode in state.episodes.items():
                self._low[name] = episode.phase != "armed"
                if name not in self._readings and episode.last_value is not None:
                    self._readings[name] = (episode.last_value, episode.last_seen)
            for s in config.sensors:
                self._put_sensor(s.name)
            for product in config.products:
                shown, best = "none", None
                for order in state.open_orders:
                    if order.product != product:
                        continue
                    rank = _PRODUCT_STATE.get(order.state, "queued")
                    if _RANK[rank] >= _RANK[shown]:
                        shown, best = rank, order
                last = self._last_order.get(product)
                self._put(
                    state_topics(config)[f"product/{product}"],
                    {
                        "state": shown,
                        # The shop's order number is what the household can look up at
                        # the shop; the gateway's key is for the logs and the web page.
                        "order": None if best is None else best.shop_order_id,
                        "key": None if best is None else short_key(best.key),
                        "last_order": None if last is None else rfc3339(last),
                        "last_total": self._last_total.get(product),
                    },
                )

    def _put_sensor(self, name: str) -> None:
        topic = self._topics.get(f"sensor/{name}")
        if topic is None:
            return
        value, at = self._readings.get(name, (None, None))
        body = {
            "value": value,
            "low": self._low.get(name, False),
            "at": None if at is None else rfc3339(at),
        }
        if name in self._runs_out:
            body["runs_out"] = self._runs_out[name]
        self._put(topic, body)
