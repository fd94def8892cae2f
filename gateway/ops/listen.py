"""``reorder-gateway listen``: what the gateway would make of each message, live.

For installers wiring a button or a scale. It connects to the configured broker
(same URL, credentials and TLS as the daemon, under its own throw-away client id,
with a clean session and no will, so the running gateway is not disturbed),
subscribes to the configured device topics or to the filters given, and for each
message says which configured device it belongs to and what the gateway would
decide — ``press: would order coffee``, ``reading 412 g``, ``ignored:
'brightness_stop' ...``. A message on a topic no device is configured on gets a
guess: the profile that reads it, and the YAML lines that would make it work.

It places no order: it opens no outbox and publishes nothing. The pure part,
:class:`Interpreter`, is what the tests drive; :func:`listen` is the paho loop.

>>> from gateway.config.models import Config
>>> cfg = Config.model_validate({
...     "gateway": {"id": "gw"}, "commerce": {"base_url": "http://127.0.0.1/api"},
...     "products": {"coffee": {"sku": "C"}},
...     "buttons": [{"name": "pantry", "product": "coffee", "mqtt": "zigbee2mqtt/pantry",
...                  "profile": "zigbee2mqtt", "model": "E1743"}]})
>>> Interpreter(cfg).explain("zigbee2mqtt/pantry", b'{"action": "on"}', retain=False, now=0.0)
['pantry (zigbee2mqtt): press — would order coffee']
>>> print("\\n".join(Interpreter(cfg).explain(
...     "zigbee2mqtt/hall", b'{"action": "single"}', retain=False, now=0.0)))
not configured: profile zigbee2mqtt reads a press; to use it, add under buttons:
    - name: hall
      product: coffee
      mqtt: zigbee2mqtt/hall
      profile: zigbee2mqtt
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Sequence
from typing import TextIO

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.reasoncodes import ReasonCode

from devices import (
    DeviceAction,
    ParseError,
    ProfileOptions,
)
from gateway.clock import RealClock
from gateway.config.models import Config
from gateway.config.secrets import secret_value
from gateway.core.events import (
    ButtonEvent,
    ConfirmProduct,
    CounterSeen,
    DeviceConnected,
    InvalidInput,
    SensorReading,
)
from gateway.errors import BrokerUnavailableError
from gateway.inputs.broker_client import broker_address, configure_client
from gateway.inputs.broker_failures import describe_connect_error, describe_refusal
from gateway.inputs.mqtt import check_topic_filter
from gateway.inputs.routing import DeviceVitals, Ignored, Routed, Router
from gateway.ops.suggest import device_name, model_note, suggest

_MAX_SHOWN_PAYLOAD = 160


class Interpreter:
    """The gateway's reading of messages, without the decisions' side effects."""

    def __init__(self, config: Config) -> None:
        self._config = config
        self._router = Router.from_config(config)
        self._products = {b.name: b.product for b in config.buttons}
        self._sensors = {s.name: s for s in config.sensors}
        # The name suggested for each unconfigured topic: one name per device, never
        # one already taken (the config's, or another suggestion's).
        self._names: dict[str, str] = {}

    @property
    def topics(self) -> list[str]:
        """What the gateway subscribes to for its devices (and its virtual topics)."""
        return self._router.topics

    def explain(self, topic: str, payload: bytes, *, retain: bool, now: float) -> list[str]:
        """One line per decision the gateway would take for this message."""
        if not self._router.knows(topic):
            return suggest(topic, payload, self._config, self._name_for)
        routed = self._router.events(topic, payload, mid=0, retain=retain, dup=False, now=now)
        # A counter since boot means something only against the gateway's memory.
        lines = [self._say(item, topic) for item in routed if not isinstance(item, CounterSeen)]
        return lines + self._model_hint(topic, payload, routed)

    def _name_for(self, base_topic: str) -> str:
        if base_topic not in self._names:
            taken = {*self._products, *self._sensors, *self._names.values()}
            name = wanted = device_name(base_topic)
            n = 2
            while name in taken:
                name, n = f"{wanted}-{n}", n + 1
            self._names[base_topic] = name
        return self._names[base_topic]

    def _model_hint(self, topic: str, payload: bytes, routed: list[Routed]) -> list[str]:
        """For a Zigbee2MQTT button without ``model:`` whose word is a model's press or
        cancel: which models say it (the generic words know only single and hold)."""
        route = self._router.route(topic)
        if route is None or route.profile is None or route.profile.name != "zigbee2mqtt":
            return []
        if route.options.model is not None or route.options.actions is not None:
            return []
        if not any(isinstance(r, Ignored) and not r.routine for r in routed):
            return []
        try:
            parsed = route.profile.parse(topic, payload, ProfileOptions())
        except ParseError:
            return []
        notes = [model_note(i.raw) for i in parsed if isinstance(i, DeviceAction)]
        return [f"  {note}" for note in notes if note][:1]

    def _say(self, item: Routed, topic: str) -> str:
        route = self._router.route(topic)
        profile = route.profile.name if route is not None and route.profile else None
        if route is not None and route.kind == "virtual":
            profile = "virtual"
        if isinstance(item, ButtonEvent):
            head = f"{item.device} ({profile})"
            product = self._products.get(item.device, "?")
            if item.retained:
                return f"{head}: ignored — the broker's retained copy, never a press"
            if item.action == "hold":
                return f"{head}: cancel — would cancel the newest open order of {product}"
            return f"{head}: press — would order {product}"
        if isinstance(item, SensorReading):
            sensor = self._sensors.get(item.device)
            unit = f" {sensor.unit}" if sensor is not None and sensor.unit else ""
            told = f"{item.device} ({profile}): reading {item.value:g}{unit}"
            if sensor is None:
                return told
            if item.value < sensor.reorder_below:
                return f"{told} — below {sensor.reorder_below:g}{unit}: low, orders if it stays"
            return f"{told} — orders below {sensor.reorder_below:g}{unit}"
        who = f"{getattr(item, 'device', '?')}" + (f" ({profile})" if profile else "")
        if isinstance(item, Ignored):
            return f"{who}: ignored — {item.detail}"
        if isinstance(item, InvalidInput):
            return f"{who}: invalid — {item.reason}"
        if isinstance(item, DeviceVitals):
            return f"{who}: {item.vitals.describe()}"
        if isinstance(item, DeviceConnected):
            return f"{item.device}: the device connected (after a restart if its count goes back)"
        if isinstance(item, ConfirmProduct):
            return f"{item.product}: confirm — would send the order that waits for a yes"
        return f"{type(item).__name__}"


# --------------------------------------------------------------------------- the loop


def listen(
    config: Config,
    filters: Sequence[str],
    out: TextIO,
    *,
    count: int | None = None,
    connect_timeout: float = 10.0,
) -> int:
    """Print what the gateway would decide for each message on ``filters`` (the
    configured topics when empty) until Ctrl-C, or ``count`` messages."""
    interpreter = Interpreter(config)
    clock = RealClock()
    topics = list(filters) or interpreter.topics
    if not topics:
        raise BrokerUnavailableError(
            "no device is configured to listen for: name the topics, e.g. "
            "reorder-gateway listen '#'"
        )
    for topic_filter in topics:
        check_topic_filter(topic_filter)
    address = broker_address(config.mqtt)
    # Messages, and notes on the connection, in the order they happened.
    inbox: queue.Queue[paho.MQTTMessage | str] = queue.Queue()
    connected = threading.Event()
    subscribed = threading.Event()
    failure: list[str] = []
    refused: list[str] = []

    client = paho.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=f"reorder-gateway-listen-{config.gateway.id}-{os.getpid()}",
        protocol=MQTTProtocolVersion.MQTTv5,
    )
    configure_client(client, config.mqtt, secret_value(config.mqtt.password))
    with_user = config.mqtt.username is not None

    def on_connect(
        c: paho.Client, userdata: object, flags: object, reason: ReasonCode, props: object
    ) -> None:
        if reason.is_failure:
            failure.append(describe_refusal(reason.value, str(reason), with_user=with_user))
            subscribed.set()
            return
        if connected.is_set():
            inbox.put(f"connected to {address} again")
        connected.set()
        c.subscribe([(t, 0) for t in topics])

    def on_disconnect(
        c: paho.Client, userdata: object, flags: object, reason: ReasonCode, props: object
    ) -> None:
        if subscribed.is_set():
            inbox.put(f"lost the broker at {address} ({reason}); reconnecting…")

    def on_subscribe(
        c: paho.Client, userdata: object, mid: int, codes: list[ReasonCode], p: object
    ) -> None:
        # A broker's ACL may refuse a filter (0x87): say so rather than stay silent.
        refused.extend(t for t, code in zip(topics, codes, strict=False) if code.is_failure)
        subscribed.set()

    def on_message(c: paho.Client, userdata: object, message: paho.MQTTMessage) -> None:
        inbox.put(message)

    client.on_connect = on_connect
    client.on_disconnect = on_disconnect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    client.connect_timeout = connect_timeout
    try:
        client.connect(address.host, address.port, keepalive=30, clean_start=True)
    except (OSError, ValueError) as exc:
        why = describe_connect_error(exc, str(address), connect_timeout)
        raise BrokerUnavailableError(why) from None
    client.loop_start()
    try:
        if not subscribed.wait(connect_timeout) or failure:
            if failure:
                why = f"the broker at {address} refused the connection: {failure[0]}"
            elif not connected.is_set():
                why = (
                    f"no MQTT answer from {address} within {connect_timeout:g} s"
                    " (is it an MQTT broker, on this port? mqtt:// or mqtts://?)"
                )
            else:
                why = f"the broker at {address} did not answer the subscription"
            raise BrokerUnavailableError(why)
        if len(refused) == len(topics):
            raise BrokerUnavailableError(
                f"the broker at {address} refused every subscription (its ACL?): "
                + ", ".join(refused)
            )
        if refused:
            print(f"the broker refused: {', '.join(refused)} (its ACL?)", file=out)
            topics = [t for t in topics if t not in refused]
        shown = ", ".join(topics) if filters or len(topics) <= 6 else "the configured devices"
        print(
            f"listening on {address} to {shown} — press your button now (Ctrl-C to stop)."
            " Nothing is ordered.",
            file=out,
            flush=True,
        )
        seen = 0
        while count is None or seen < count:
            try:
                item = inbox.get(timeout=0.5)
            except queue.Empty:
                continue
            if isinstance(item, str):
                print(f"{time.strftime('%H:%M:%S', time.localtime(clock.now()))} {item}", file=out)
                out.flush()
                continue
            seen += 1
            _show(interpreter, item, out, clock.now())
    except KeyboardInterrupt:
        pass
    finally:
        client.disconnect()
        client.loop_stop()
    return 0


def printable(text: str) -> str:
    """``text`` with control characters escaped: a payload must not drive the terminal.

    >>> printable("\\x1b[2Jred\\x00")
    '\\\\x1b[2Jred\\\\x00'
    """
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _show(interpreter: Interpreter, message: paho.MQTTMessage, out: TextIO, now: float) -> None:
    payload = bytes(message.payload)
    text = printable(payload.decode("utf-8", errors="replace"))
    if len(text) > _MAX_SHOWN_PAYLOAD:
        text = text[: _MAX_SHOWN_PAYLOAD - 1] + "…"
    retained = " (retained)" if message.retain else ""
    stamp = time.strftime("%H:%M:%S", time.localtime(now))
    print(f"{stamp} {printable(message.topic)}{retained}  {text}", file=out)
    for line in interpreter.explain(message.topic, payload, retain=bool(message.retain), now=now):
        print(f"         {printable(line)}", file=out)
    out.flush()


__all__ = ["Interpreter", "listen", "printable"]
