"""The baseline for press latency: the thinnest paho -> httpx relay.

A QoS 1 subscriber that POSTs each message's payload as an order on paho's own
thread, over one keep-alive httpx connection; paho acknowledges after the
callback. No outbox, no decision, no events topic: what is left of the gateway's
path when everything of its own is taken away. It prints ``ready`` once
subscribed and runs until its stdin closes:

    python bench/bare_relay.py mqtt://127.0.0.1:PORT bench/relay http://.../api/v1 TOKEN
"""

from __future__ import annotations

import json
import sys
import threading
from typing import Any
from urllib.parse import urlsplit

import httpx
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion


def main(argv: list[str]) -> int:
    url, topic, shop_url, token = argv
    parts = urlsplit(url)
    subscribed = threading.Event()
    http = httpx.Client(headers={"Authorization": f"Bearer {token}"})

    def on_connect(client: paho.Client, *_args: Any) -> None:
        client.subscribe(topic, qos=1)

    def on_message(_client: paho.Client, _userdata: Any, msg: paho.MQTTMessage) -> None:
        press = json.loads(msg.payload)
        key = f"relay-{press['id']}"
        body = {
            "sku": "TIDE-PODS-42",
            "quantity": 1,
            "source": {"gateway": "relay", "device": "relay", "trigger": "press", "event_id": key},
            "created_at": "2026-01-02T03:04:05Z",
        }
        http.post(f"{shop_url}/orders", json=body, headers={"Idempotency-Key": key})

    client = paho.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        protocol=MQTTProtocolVersion.MQTTv5,
    )
    client.on_connect = on_connect
    client.on_subscribe = lambda *_a: subscribed.set()
    client.on_message = on_message
    client.connect(parts.hostname or "127.0.0.1", parts.port or 1883, keepalive=30)
    client.loop_start()
    if not subscribed.wait(10):
        print("no SUBACK", file=sys.stderr)
        return 1
    print("ready", flush=True)
    sys.stdin.read()  # until the bench closes our stdin
    client.disconnect()
    client.loop_stop()
    http.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
