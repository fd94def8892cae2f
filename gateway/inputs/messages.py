"""What the MQTT link hands to the core thread: plain data, no paho.

The decider (gateway/engine/decider.py) takes these from its queue and
acknowledges each through the outputs after the commit; keeping the type here lets
it do so without importing the MQTT client library.

>>> InboundMessage("z/b", b"{}", mid=1, qos=1, retain=False, dup=False).delivery
0
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class InboundMessage:
    """One MQTT message, as handed to the core. Acknowledged after the commit with
    ``MqttLink.ack(mid, qos, delivery)``."""

    topic: str
    payload: bytes
    mid: int
    qos: int
    retain: bool  # from the broker's retained store: never a press
    dup: bool  # the broker sent this before (we did not acknowledge it)
    # Which delivery of ``mid`` this is. The broker reuses a packet id as soon as it
    # has its PUBACK, so an ack must name the delivery it is for, or the ack of a
    # stale copy could acknowledge a newer, uncommitted message with the same id.
    delivery: int = 0
