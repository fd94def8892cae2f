"""Loaded by the gateway process only when ``bench/trace_press.py`` starts it (this
directory first on PYTHONPATH, ``RG_TRACE`` set): wraps the functions one press passes
through and stamps ``time.perf_counter()`` on entry (``>``) and return (``<``). The
stamps are written to ``RG_TRACE`` at exit. perf_counter is CLOCK_MONOTONIC on Linux,
so they compare with the bench's own stamps. Never used by the gateway itself.
"""

import atexit
import functools
import os
import threading
import time

OUT = os.environ.get("RG_TRACE")
STAMPS: list[tuple[float, str, str]] = []


def _stamp(label: str) -> None:
    STAMPS.append((time.perf_counter(), threading.current_thread().name, label))


def _wrap(owner: object, name: str, label: str) -> None:
    original = getattr(owner, name)

    @functools.wraps(original)
    def traced(*args: object, **kwargs: object) -> object:
        _stamp(label + ">")
        try:
            return original(*args, **kwargs)
        finally:
            _stamp(label + "<")

    setattr(owner, name, traced)


def _dump() -> None:
    assert OUT is not None
    with open(OUT, "w", encoding="utf-8") as handle:
        for at, thread, label in STAMPS:
            handle.write(f"{at:.6f} {thread.split('-')[0]} {label}\n")


if OUT:
    import httpcore._backends.sync as httpcore_sync
    import paho.mqtt.client as paho

    from gateway.commerce import http
    from gateway.engine import decider, sender
    from gateway.inputs import mqtt
    from gateway.outbox import store

    for owner, name, label in (
        (mqtt.MqttLink, "_handle_message", "on_message"),
        (decider.Core, "process", "core_process"),
        (store.Store, "commit", "commit"),
        (mqtt.MqttLink, "ack", "ack"),
        (mqtt.MqttLink, "publish", "publish"),
        (sender.Sender, "wake", "wake"),
        (sender.Sender, "_dispatch", "dispatch"),
        (http.HttpCommerce, "place_order", "place_order"),
        (httpcore_sync.SyncStream, "write", "http_write"),
        (paho.Client, "_sock_send", "mqtt_send"),
    ):
        _wrap(owner, name, label)
    atexit.register(_dump)
