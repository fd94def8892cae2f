"""The baseline for sensor throughput: a bare paho subscriber that only parses JSON.

Like the gateway it keeps a persistent session, so messages published while it is
away wait at the broker and are drained when it comes back:

    python bench/bare_subscriber.py mqtt://127.0.0.1:PORT bench/scale prepare
    ... publish b"start: ...", N readings, b"end: ..." ...
    python bench/bare_subscriber.py mqtt://127.0.0.1:PORT bench/scale drain
    {"messages": 10001, "seconds": 0.41}

``seconds`` runs from the start marker to the end marker, as for the gateway;
``messages`` counts the readings and the end marker.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

CLIENT_ID = "bench-bare-subscriber"


def main(argv: list[str]) -> int:
    url, topic, mode = argv
    parts = urlsplit(url)
    done = threading.Event()
    subscribed = threading.Event()
    seen = {"count": 0, "first": 0.0, "last": 0.0}

    def on_connect(client: paho.Client, *_args: Any) -> None:
        if mode == "prepare":
            client.subscribe(topic, qos=1)

    def on_message(_client: paho.Client, _userdata: Any, msg: paho.MQTTMessage) -> None:
        now = time.perf_counter()
        try:
            json.loads(msg.payload)
        except ValueError:  # a marker: start the clock, or stop it
            if msg.payload.startswith(b"start"):
                seen["first"], seen["count"] = now, 0
                return
            seen["last"] = now
            seen["count"] += 1
            done.set()
            return
        seen["count"] += 1

    client = paho.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=CLIENT_ID,
        protocol=MQTTProtocolVersion.MQTTv5,
    )
    client.on_connect = on_connect
    client.on_subscribe = lambda *_a: subscribed.set()
    client.on_message = on_message
    properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    properties.SessionExpiryInterval = 3600
    client.connect(
        parts.hostname or "127.0.0.1",
        parts.port or 1883,
        keepalive=30,
        clean_start=mode == "prepare",
        properties=properties,
    )
    client.loop_start()
    waited = subscribed if mode == "prepare" else done
    if not waited.wait(120):
        print(json.dumps({"error": f"{mode} timed out", "messages": seen["count"]}))
        return 1
    client.disconnect()
    client.loop_stop()
    if mode == "drain":
        elapsed = seen["last"] - seen["first"]
        print(json.dumps({"messages": seen["count"], "seconds": elapsed}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
