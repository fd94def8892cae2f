"""The MQTT link: one persistent paho-mqtt 2.x session to the broker.

What it guarantees, and why:

* **Persistent session** (MQTT v5, fixed client id ``reorder-gateway-<id>``,
  ``clean_start=False`` on every connect, Session Expiry of at least a day): QoS 1
  presses published while the gateway is down or rebooting wait at the broker.
* **Manual acknowledgement**: paho never sends PUBACK by itself. The daemon calls
  :meth:`MqttLink.ack` only after the event was committed to SQLite (or judged a
  duplicate / invalid). A crash before that means the broker redelivers (DUP set).
* **Flow control**: the Receive Maximum property caps how many unacknowledged
  QoS 1 messages the broker has in flight to us, so the daemon's bounded queue
  (at least that large) never has to drop one.
* **Availability**: ``online`` (retained, QoS 1) on ``<prefix>/<id>/status`` once
  the subscriptions of every (re)connect are acknowledged (``on_connection(True)``
  comes then, too); ``offline`` on a clean stop, and the same as the last will.
* **Failures say why**: every failed attempt has a reason (certificate not trusted,
  hostname mismatch, connection refused, not authorised, timeout, ...), kept in
  :attr:`MqttLink.problem` for ``status`` and logged at a readable rate (the first
  at WARNING, then at most one line a minute with a count; see
  :class:`~gateway.inputs.broker_failures.FailureLog`).
* **No Nagle stalls**: TCP_NODELAY on our socket, and an immediate ACK of each of the
  broker's PUBACKs (TCP_QUICKACK, Linux). Otherwise our publish right after a PUBACK
  waits for the broker's delayed ACK (40 ms), and mosquitto, which leaves Nagle on by
  default, holds the next press back until our kernel's delayed ACK of its last
  PUBACK (measured in bench/README.md).
* Callbacks run on paho's network thread: they only convert and hand over; they
  never block and never raise.

Messages that are dropped here are always *acknowledged*, counted and logged
(rate limited): oversized payloads (they can never parse; leaving them unacked
would get them redelivered on every reconnect and hold a Receive Maximum slot
forever) and messages on topics that no current filter matches (left over in the
persistent session from an older configuration). A message whose hand-over
raised is *not* acknowledged: the daemon never saw it, so the broker redelivers it
after the next reconnect.

>>> from gateway.config.models import MqttSection
>>> link = MqttLink(MqttSection(), "kitchen", subscriptions=["zigbee2mqtt/+"],
...                 on_message=print)
>>> link.status_topic
'reorder/kitchen/status'
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from gateway.clock import Clock, RealClock
from gateway.config.models import MqttSection
from gateway.errors import TopicFilterError
from gateway.inputs.broker_client import broker_address, configure_client
from gateway.inputs.broker_failures import FailureLog, describe_connect_error, describe_refusal
from gateway.inputs.messages import InboundMessage
from gateway.outputs.reports import RateLimitedLog
from gateway.outputs.topics import GatewayTopics

log = logging.getLogger(__name__)

MIN_SESSION_EXPIRY = 86400.0  # a day: a weekend trip must not lose a press
_MAX_SESSION_EXPIRY = 0xFFFFFFFF  # the wire field is four bytes; this value means "never"
_MAX_QUEUED_PUBLISHES = 1000  # QoS 1 publishes paho keeps while disconnected
_LOG_EVERY = 60.0  # seconds between repeats of a rate-limited warning
# Linux only; elsewhere the broker's delayed-ACK stall stays (set_tcp_nodelay on the broker).
_TCP_QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)


def check_topic_filter(topic_filter: str) -> None:
    """Raise :class:`TopicFilterError` unless ``topic_filter`` is a valid filter.

    >>> check_topic_filter("zigbee2mqtt/+/action")
    >>> check_topic_filter("a/#/b")
    Traceback (most recent call last):
    ...
    gateway.errors.TopicFilterError: 'a/#/b': '#' is allowed only as the whole last level
    """
    if not topic_filter:
        raise TopicFilterError("a topic filter must not be empty")
    if "\x00" in topic_filter or len(topic_filter.encode()) > 65535:
        raise TopicFilterError(f"{topic_filter!r}: contains NUL or is longer than 65535 bytes")
    levels = topic_filter.split("/")
    for i, level in enumerate(levels):
        if "#" in level and (level != "#" or i != len(levels) - 1):
            raise TopicFilterError(f"'{topic_filter}': '#' is allowed only as the whole last level")
        if "+" in level and level != "+":
            raise TopicFilterError(f"'{topic_filter}': '+' must be a whole level, e.g. a/+/b")


@dataclass(frozen=True)
class LinkCounters:
    """A snapshot of what the link counted since it was created."""

    messages_in: int = 0  # every message received, including the dropped ones
    oversized: int = 0  # payload > mqtt.max_payload: dropped and acknowledged
    unmatched: int = 0  # topic matches no current filter: dropped and acknowledged
    callback_errors: int = 0  # the hand-over raised: not acknowledged
    dropped_publishes: int = 0  # publish() could not send or queue the message
    reconnects: int = 0  # successful connects after the first
    connect_failures: int = 0  # attempts that did not reach a session


@dataclass(frozen=True)
class _Filters:
    """The subscriptions, split once for the per-message match: exact topics by a set
    lookup (paho's general matcher costs microseconds per filter), wildcards by paho."""

    exact: frozenset[str]
    wild: tuple[str, ...]

    @classmethod
    def of(cls, filters: Sequence[str]) -> _Filters:
        exact = frozenset(f for f in filters if "+" not in f and "#" not in f)
        return cls(exact, tuple(f for f in filters if f not in exact))

    def match(self, topic: str) -> bool:
        return topic in self.exact or any(paho.topic_matches_sub(f, topic) for f in self.wild)


class _Client(paho.Client):
    """paho's client, keeping the exception of a failed connect attempt: paho calls
    ``on_connect_fail`` without it, and the reason is what a person needs."""

    connect_error: OSError | None = None

    def reconnect(self) -> MQTTErrorCode:
        self.connect_error = None
        try:
            return super().reconnect()
        except OSError as exc:  # what paho's loop catches before calling on_connect_fail
            # Without the frames below, whatever paho left open there (the socket
            # of a failed TLS handshake) is released now rather than when this
            # exception is replaced at the next attempt.
            exc.__traceback__ = None
            self.connect_error = exc
            raise


class MqttLink:
    """A persistent MQTT v5 session that hands messages over and acks on request.

    >>> from gateway.config.models import MqttSection
    >>> inbox = []
    >>> link = MqttLink(MqttSection(url="mqtt://127.0.0.1:1883"), "hall",
    ...                 subscriptions=["buttons/#"], on_message=inbox.append)
    >>> link.connected
    False

    Then ``link.start()``; for each message the daemon commits, ``link.ack(m.mid, m.qos)``;
    ``link.publish("reorder/hall/events", b"{...}")``; finally ``link.stop()``.
    """

    def __init__(
        self,
        settings: MqttSection,
        gateway_id: str,
        *,
        subscriptions: Sequence[str],
        on_message: Callable[[InboundMessage], None],
        on_connection: Callable[[bool], None] | None = None,
        password: str | None = None,
        receive_maximum: int = 100,
        clock: Clock | None = None,
        retry_delay: tuple[int, int] = (1, 30),
        report_every: float = _LOG_EVERY,
        connect_timeout: float = 5.0,
    ) -> None:
        self._settings = settings
        self._address = broker_address(settings)
        if not 1 <= receive_maximum <= 65535:
            raise ValueError("receive_maximum must be between 1 and 65535")
        for topic_filter in subscriptions:
            check_topic_filter(topic_filter)
        self._client_id = f"reorder-gateway-{gateway_id}"
        self._status_topic = GatewayTopics(settings.topic_prefix, gateway_id).status
        self._subscriptions: tuple[str, ...] = tuple(dict.fromkeys(subscriptions))
        self._filters = _Filters.of(self._subscriptions)
        self._on_message = on_message
        self._on_connection = on_connection
        self._password = password
        self._receive_maximum = receive_maximum
        self._session_expiry = self._effective_session_expiry(settings.session_expiry)
        self._retry_delay = retry_delay
        self._connect_timeout = connect_timeout  # TCP connect and TLS handshake, each
        self._failures = FailureLog(
            log,
            str(self._address),
            every=report_every,
            monotonic=(clock or RealClock()).monotonic,
            retry=f"{retry_delay[0]}-{retry_delay[1]} s",
        )
        # This connection got a CONNACK that accepted the session (False until then,
        # so a disconnect before it is one more failed attempt, not a lost connection).
        self._session_up = False
        self._refused = False  # this connection's CONNACK refused the session
        self._sock: socket.socket | None = None

        self._lock = threading.Lock()
        self._client: paho.Client | None = None
        self._stopping = False
        self._ever_connected = False
        # "Connected" for the daemon means subscribed: set when the SUBACK for the
        # connect's SUBSCRIBE is in, so nothing published after it can be missed.
        self._ready = False
        self._ready_mid: int | None = None
        # mids handed over and not yet acknowledged. With a kept session the
        # broker keeps a mid reserved for its message across reconnects, so an
        # ack for an older connection's mid is still right; when the session is
        # lost the set is cleared, so a late ack can never hit a new message.
        self._pending: dict[int, int] = {}  # mid -> delivery token of its latest copy
        self._deliveries = 0
        self._sub_requests: dict[int, tuple[str, ...]] = {}
        self._counts = {f.name: 0 for f in fields(LinkCounters)}
        self._oversized_log = RateLimitedLog(log, _LOG_EVERY)
        self._unmatched_log = RateLimitedLog(log, _LOG_EVERY)
        self._drop_log = RateLimitedLog(log, _LOG_EVERY)

    # ------------------------------------------------------------------ public

    @property
    def status_topic(self) -> str:
        return self._status_topic

    @property
    def client_id(self) -> str:
        return self._client_id

    @property
    def connected(self) -> bool:
        client = self._client
        return self._ready and client is not None and client.is_connected()

    @property
    def problem(self) -> str | None:
        """Why the latest attempt to connect failed, until a session is up again."""
        return self._failures.reason

    @property
    def counters(self) -> LinkCounters:
        with self._lock:
            return LinkCounters(**self._counts)

    @property
    def subscriptions(self) -> tuple[str, ...]:
        with self._lock:
            return self._subscriptions

    def start(self) -> None:
        """Begin connecting in paho's network thread; returns at once, even with no broker."""
        if self._client is not None:
            raise RuntimeError("the MQTT link is already started")
        client = self._make_client()
        self._stopping = False
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = self._session_expiry
        properties.ReceiveMaximum = self._receive_maximum
        client.connect_async(
            self._address.host,
            self._address.port,
            keepalive=max(5, round(self._settings.keepalive)),
            clean_start=False,
            properties=properties,
        )
        self._client = client
        client.loop_start()
        log.info("MQTT: connecting to %s as %s", self._address, self._client_id)

    def stop(self, timeout: float = 2.0) -> None:
        """Publish ``offline`` (retained), disconnect cleanly and stop the network thread."""
        client = self._client
        if client is None:
            return
        self._stopping = True
        if client.is_connected():
            info = client.publish(self._status_topic, b"offline", qos=1, retain=True)
            try:
                info.wait_for_publish(timeout)
            except (ValueError, RuntimeError) as exc:
                log.warning("MQTT: could not publish offline status before stopping: %s", exc)
        # A normal DISCONNECT: the broker discards the will and keeps the session.
        client.disconnect()
        client.loop_stop()
        self._client = None

    def ack(self, mid: int, qos: int, delivery: int | None = None) -> None:
        """Send the PUBACK for a handed-over message. No-op for QoS 0, an unknown mid,
        or a ``delivery`` that is not the latest copy of ``mid`` (see InboundMessage)."""
        if qos == 0:
            return
        with self._lock:
            latest = self._pending.get(mid)
            if latest is None or (delivery is not None and delivery != latest):
                # Already acknowledged, from a session the broker lost, or a stale copy:
                # the latest copy is still queued and its own ack will follow.
                return
            del self._pending[mid]
        client = self._client
        if client is None:
            return  # the broker redelivers it after the next start; the core sees a duplicate
        # If the connection is down, paho discards the PUBACK; the broker
        # redelivers the message and the core acknowledges the duplicate.
        client.ack(mid, qos)

    def publish(
        self, topic: str, payload: bytes | str, *, qos: int = 0, retain: bool = False
    ) -> None:
        """Publish without blocking. Never raises; what cannot be sent or queued is counted.

        QoS 0 is dropped while disconnected; QoS 1/2 are queued by paho (up to
        1000 messages) and sent after the reconnect.
        """
        client = self._client
        if client is None:
            self._dropped(topic, "the link is not started")
            return
        try:
            info = client.publish(topic, payload, qos=qos, retain=retain)
        except (ValueError, TypeError) as exc:
            self._dropped(topic, str(exc))
            return
        if info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS:
            return
        if info.rc == MQTTErrorCode.MQTT_ERR_NO_CONN and qos > 0:
            return  # queued in paho; sent when the connection is back
        self._dropped(topic, paho.error_string(info.rc))

    def set_subscriptions(self, topics: Sequence[str]) -> None:
        """Replace the topic filters (config reload): subscribe new ones, unsubscribe removed."""
        for topic_filter in topics:
            check_topic_filter(topic_filter)
        new = tuple(dict.fromkeys(topics))
        with self._lock:
            old = self._subscriptions
            self._subscriptions = new
            self._filters = _Filters.of(new)
        added = [t for t in new if t not in old]
        removed = [t for t in old if t not in new]
        client = self._client
        if client is None or not client.is_connected():
            return  # the next on_connect subscribes everything current
        if added:
            self._subscribe(client, added)
        if removed:
            client.unsubscribe(removed)
            log.info("MQTT: unsubscribed %s", ", ".join(removed))

    # ------------------------------------------------------------------ set-up

    def _effective_session_expiry(self, configured: float) -> int:
        if configured < MIN_SESSION_EXPIRY:
            log.warning(
                "MQTT: session_expiry %.0fs is shorter than a day; using %.0fs so presses made"
                " while the gateway is down are not lost",
                configured,
                MIN_SESSION_EXPIRY,
            )
        return int(min(max(configured, MIN_SESSION_EXPIRY), _MAX_SESSION_EXPIRY))

    def _make_client(self) -> paho.Client:
        client = _Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=self._client_id,
            protocol=MQTTProtocolVersion.MQTTv5,
            manual_ack=True,
        )
        client.reconnect_delay_set(*self._retry_delay)
        client.connect_timeout = self._connect_timeout
        client.max_queued_messages_set(_MAX_QUEUED_PUBLISHES)
        client.will_set(self._status_topic, b"offline", qos=1, retain=True)
        configure_client(client, self._settings, self._password)
        client.on_socket_open = self._handle_socket_open
        client.on_socket_close = self._handle_socket_close
        client.on_publish = self._handle_puback
        client.on_connect = self._handle_connect
        client.on_connect_fail = self._handle_connect_fail
        client.on_disconnect = self._handle_disconnect
        client.on_message = self._handle_message
        client.on_subscribe = self._handle_subscribe
        return client

    def _subscribe(self, client: paho.Client, topics: Sequence[str]) -> int | None:
        # Under the lock, so that a SUBACK handled on paho's thread before this returns
        # (a reload's subscribe, from the main thread) still finds what it answers.
        with self._lock:
            rc, mid = client.subscribe([(t, SubscribeOptions(qos=1)) for t in topics])
            if rc == MQTTErrorCode.MQTT_ERR_SUCCESS and mid is not None:
                self._sub_requests[mid] = tuple(topics)
                return mid
        # The connection dropped meanwhile; the next on_connect subscribes again.
        log.warning("MQTT: could not subscribe now: %s", paho.error_string(rc))
        return None

    def _announce(self, client: paho.Client) -> None:
        client.publish(self._status_topic, b"online", qos=1, retain=True)
        self._ready = True
        self._notify(True)

    def _count(self, name: str) -> None:
        with self._lock:
            self._counts[name] += 1

    def _dropped(self, topic: str, why: str) -> None:
        self._count("dropped_publishes")
        self._drop_log.warning("MQTT: dropped a publish to %s: %s", topic, why)

    def _notify(self, up: bool) -> None:
        if self._on_connection is None:
            return
        try:
            self._on_connection(up)
        except Exception as exc:
            log.error("MQTT: the connection callback failed: %s: %s", type(exc).__name__, exc)

    # ------------------------------------------------------- paho's thread

    def _handle_socket_open(self, client: paho.Client, userdata: object, sock: object) -> None:
        if not isinstance(sock, socket.socket):  # an SSLSocket is one; a websocket is not
            return
        self._sock = sock
        try:
            # Each MQTT packet we write goes out at once instead of waiting for the
            # broker to ACK the previous one (measured: 40 ms on a default mosquitto).
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError as exc:
            log.debug("MQTT: cannot set TCP_NODELAY: %s", exc)

    def _handle_socket_close(self, client: paho.Client, userdata: object, sock: object) -> None:
        self._sock = None

    def _handle_puback(
        self,
        client: paho.Client,
        userdata: object,
        mid: int,
        reason_code: ReasonCode,
        properties: Properties,
    ) -> None:
        # Our kernel would ACK the broker's PUBACK only when its delayed-ACK timer runs
        # out; with Nagle on at the broker (its default) the next press waits behind
        # that ACK. TCP_QUICKACK sends the pending ACK now.
        sock = self._sock
        if sock is None or _TCP_QUICKACK is None:
            return
        try:
            sock.setsockopt(socket.IPPROTO_TCP, _TCP_QUICKACK, 1)
        except OSError:
            self._sock = None  # not a TCP socket after all: stop trying

    def _handle_connect(
        self,
        client: paho.Client,
        userdata: object,
        flags: paho.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            # The broker closes the connection next; that disconnect belongs to this
            # failure and is no lost connection (paho reports it as "Protocol error").
            with_user = self._settings.username is not None
            reason = describe_refusal(reason_code.value, str(reason_code), with_user=with_user)
            self._connect_failed(reason)
            return
        self._session_up = True
        with self._lock:
            if self._ever_connected:
                self._counts["reconnects"] += 1
            self._ever_connected = True
            if not flags.session_present:
                self._pending.clear()
            topics = self._subscriptions
        log.info(
            "MQTT: connected to %s (%s, session %s)%s",
            self._address,
            reason_code,
            "resumed" if flags.session_present else "new",
            self._failures.connected(),
        )
        if not topics:
            self._announce(client)
            return
        mid = self._subscribe(client, topics)
        with self._lock:
            self._ready_mid = mid

    def _handle_connect_fail(self, client: paho.Client, userdata: object) -> None:
        error = client.connect_error if isinstance(client, _Client) else None
        if error is None:
            self._connect_failed("the connection attempt failed (paho gave no reason)")
            return
        where = f"{self._address.host}:{self._address.port}"
        self._connect_failed(describe_connect_error(error, where, client.connect_timeout))

    def _connect_failed(self, reason: str) -> None:
        self._count("connect_failures")
        self._refused = True
        self._failures.failed(reason)

    def _handle_disconnect(
        self,
        client: paho.Client,
        userdata: object,
        flags: paho.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        was_ready, self._ready = self._ready, False
        had_session, self._session_up = self._session_up, False
        refused, self._refused = self._refused, False
        with self._lock:
            self._ready_mid = None
            # A SUBACK never comes for a request of a lost connection; every connect
            # subscribes anew.
            self._sub_requests.clear()
        if self._stopping:
            log.info("MQTT: disconnected from %s (%s)", self._address, reason_code)
        elif not had_session:
            if not refused:  # closed before any CONNACK: one more failed attempt
                self._connect_failed(
                    "the broker closed the connection before accepting the session"
                    f" ({reason_code}; is this the broker's MQTT port?)"
                )
            self._refused = False
        else:
            log.warning(
                "MQTT: lost the connection to %s (%s); reconnecting", self._address, reason_code
            )
        if was_ready:  # on_connection alternates: True, False, True, ...
            self._notify(False)

    def _handle_subscribe(
        self,
        client: paho.Client,
        userdata: object,
        mid: int,
        reason_codes: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        with self._lock:
            topics = self._sub_requests.pop(mid, ())
            answers_connect = mid == self._ready_mid
            if answers_connect:
                self._ready_mid = None
        for topic, code in zip(topics, reason_codes, strict=False):
            if code.is_failure:
                log.warning("MQTT: the broker refused the subscription %s: %s", topic, code)
            else:
                log.debug("MQTT: subscribed %s (%s)", topic, code)
        if answers_connect:
            self._announce(client)

    def _handle_message(self, client: paho.Client, userdata: object, msg: paho.MQTTMessage) -> None:
        try:
            with self._lock:
                self._counts["messages_in"] += 1
                self._deliveries += 1
                delivery = self._deliveries
                if msg.qos > 0:
                    self._pending[msg.mid] = delivery
                filters = self._filters
            topic = msg.topic
            if len(msg.payload) > self._settings.max_payload:
                self._count("oversized")
                self._oversized_log.warning(
                    "MQTT: dropped a %d-byte message on %s (mqtt.max_payload is %d)",
                    len(msg.payload),
                    topic,
                    self._settings.max_payload,
                )
                self.ack(msg.mid, msg.qos, delivery)
                return
            if not filters.match(topic):
                self._count("unmatched")
                self._unmatched_log.warning(
                    "MQTT: dropped a message on %s: no configured device listens there", topic
                )
                self.ack(msg.mid, msg.qos, delivery)
                return
            self._on_message(
                InboundMessage(
                    topic=topic,
                    payload=bytes(msg.payload),
                    mid=msg.mid,
                    qos=msg.qos,
                    retain=bool(msg.retain),
                    dup=bool(msg.dup),
                    delivery=delivery,
                )
            )
        except Exception as exc:
            # Never let paho's thread die: the broker redelivers after the next reconnect.
            self._count("callback_errors")
            log.error("MQTT: handing over a message failed: %s: %s", type(exc).__name__, exc)
