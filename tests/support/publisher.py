"""A plain MQTT client for tests: publish like a device, watch like Home Assistant.

    with Publisher(broker.url) as pub:
        pub.subscribe("reorder/+/status")
        pub.publish("zigbee2mqtt/laundry", b'{"action": "single"}', qos=1)
        pub.wait_for_message("reorder/kitchen/status", b"online")

A long-lived watcher (the end-to-end tests' view of a gateway) is the same
client told what to ``watch``: it connects in the background (the broker may
not exist yet), subscribes again on every connect, and hands each message to
``on_message`` as well::

    watcher = Publisher(url, "watcher", persistent=True, wait=False,
                        watch=("reorder/kitchen/events",), on_message=print)
    watcher.watching.wait(5)

:class:`Collector` is the thread-safe list behind it; use it for anything a
callback produces (``on_message=collector.append``) and wait with ``wait_for``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

T = TypeVar("T")


class Collector(Generic[T]):
    """Items appended from any thread; ``wait_for`` blocks until a predicate holds.

    >>> c: Collector[int] = Collector()
    >>> c.append(3)
    >>> c.wait_for(lambda items: 3 in items, timeout=1)
    [3]
    """

    def __init__(self) -> None:
        self._items: list[T] = []
        self._cond = threading.Condition()

    def append(self, item: T) -> None:
        with self._cond:
            self._items.append(item)
            self._cond.notify_all()

    @property
    def items(self) -> list[T]:
        with self._cond:
            return list(self._items)

    def clear(self) -> None:
        with self._cond:
            self._items.clear()

    def wait_for(self, predicate: Callable[[list[T]], bool], timeout: float = 10.0) -> list[T]:
        """Return a copy of the items once ``predicate(items)`` is true; fail the test otherwise."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self._items):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"condition not met within {timeout}s; collected: {self._items!r}"
                    )
                self._cond.wait(remaining)
            return list(self._items)


def wait_until(condition: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
    """Poll ``condition`` (every 10 ms) for state that has no callback to wait on."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what or 'condition'} not met within {timeout}s")
        time.sleep(0.01)


@dataclass(frozen=True)
class Received:
    topic: str
    payload: bytes
    qos: int
    retain: bool
    dup: bool


class Publisher:
    """A paho MQTT v5 client that records what it receives.

    ``client_id`` + ``persistent=True`` keep a broker session across reconnects and
    broker restarts, so its QoS 1 publishes survive them (paho resends them).
    With ``wait`` (the default) the constructor returns once connected; ``watch``
    filters are subscribed on every connect and ``watching`` is set at the first
    SUBACK for them; ``on_message`` sees every message after it is recorded.
    """

    def __init__(
        self,
        url: str,
        client_id: str = "",
        *,
        persistent: bool = False,
        timeout: float = 10.0,
        wait: bool = True,
        watch: tuple[str, ...] = (),
        on_message: Callable[[Received], None] | None = None,
        keepalive: int = 30,
        max_reconnect_delay: int = 2,
        ca_file: Path | None = None,
        auth: tuple[str, str] | None = None,
    ) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 1883
        self.timeout = timeout
        self.received: Collector[Received] = Collector()
        self.watch = watch
        self.watching = threading.Event()
        self._listener = on_message
        self._watch_mid: int | None = None
        self._connected = threading.Event()
        self._acks: dict[int, threading.Event] = {}
        self._lock = threading.Lock()
        self.client = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        self.client.reconnect_delay_set(1, max_reconnect_delay)
        if ca_file is not None:  # for an mqtts:// test broker with its own CA
            self.client.tls_set(ca_certs=str(ca_file))
        if auth is not None:
            self.client.username_pw_set(*auth)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        properties = None
        if persistent:
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = 3600
        self.client.connect_async(
            self.host,
            self.port,
            keepalive=keepalive,
            clean_start=not persistent,
            properties=properties,
        )
        self.client.loop_start()
        if wait:
            self.wait_connected()

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def wait_connected(self) -> None:
        if not self._connected.wait(self.timeout):
            raise AssertionError(f"test client did not connect to {self.host}:{self.port}")

    def publish(
        self,
        topic: str,
        payload: bytes | str,
        *,
        qos: int = 1,
        retain: bool = False,
        wait: bool = True,
    ) -> paho.MQTTMessageInfo:
        """Publish; with ``wait`` (the default) block until the broker acknowledged QoS 1/2."""
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        if wait and qos > 0:
            info.wait_for_publish(self.timeout)
            if not info.is_published():
                raise AssertionError(f"broker did not acknowledge the publish to {topic}")
        return info

    def clear_retained(self, topic: str) -> None:
        self.publish(topic, b"", qos=1, retain=True)

    def subscribe(self, topic_filter: str, qos: int = 1) -> None:
        """Subscribe and wait for the SUBACK, so nothing published afterwards is missed."""
        done = threading.Event()
        with self._lock:
            rc, mid = self.client.subscribe([(topic_filter, SubscribeOptions(qos=qos))])
            assert rc == MQTTErrorCode.MQTT_ERR_SUCCESS and mid is not None, paho.error_string(rc)
            self._acks[mid] = done
        if not done.wait(self.timeout):
            raise AssertionError(f"no SUBACK for {topic_filter}")

    def messages(self, topic_filter: str = "#") -> list[Received]:
        return [m for m in self.received.items if paho.topic_matches_sub(topic_filter, m.topic)]

    def wait_for(
        self, predicate: Callable[[list[Received]], bool], timeout: float | None = None
    ) -> list[Received]:
        return self.received.wait_for(predicate, self.timeout if timeout is None else timeout)

    def wait_for_message(
        self, topic: str, payload: bytes | None = None, timeout: float | None = None
    ) -> Received:
        """The first message on ``topic`` (with ``payload``, if given)."""

        def match(m: Received) -> bool:
            return m.topic == topic and (payload is None or m.payload == payload)

        items = self.wait_for(lambda ms: any(match(m) for m in ms), timeout)
        return next(m for m in items if match(m))

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    # paho's thread

    def _on_connect(
        self, client: paho.Client, userdata: Any, flags: Any, rc: Any, props: Any
    ) -> None:
        if rc.is_failure:
            return
        if self.watch:
            # Not subscribe(): that waits for the SUBACK, which this thread delivers.
            _, mid = client.subscribe([(topic, SubscribeOptions(qos=1)) for topic in self.watch])
            with self._lock:
                self._watch_mid = mid
        self._connected.set()

    def _on_disconnect(
        self, client: paho.Client, userdata: Any, flags: Any, rc: Any, props: Any
    ) -> None:
        self._connected.clear()

    def _on_subscribe(
        self, client: paho.Client, userdata: Any, mid: int, rcs: Any, props: Any
    ) -> None:
        with self._lock:
            done = self._acks.pop(mid, None)
            watched = mid == self._watch_mid
        if done is not None:
            done.set()
        if watched:
            self.watching.set()

    def _on_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        received = Received(msg.topic, bytes(msg.payload), msg.qos, bool(msg.retain), bool(msg.dup))
        self.received.append(received)
        if self._listener is not None:
            self._listener(received)
