"""Prometheus metrics, liveness and readiness on one small localhost HTTP server.

Most numbers are read from the live objects at scrape time (a custom collector
over a :class:`Snapshot` that :mod:`gateway.ops.observability` builds), so the hot
paths carry no metric code; only the send latency is a histogram fed by the
sender's ``on_send``. The registry is our own, never prometheus-client's global one.
With ``metrics.enabled: false`` a :class:`NoMetricsServer` stands in for the server.

===================  ===================================================
``/metrics``         Prometheus text format
``/healthz``         200 while the core loop turns, else 503
``/readyz``          200 when MQTT is connected and subscribed and the
                     database answers; else 503 with the reasons as JSON
===================  ===================================================

>>> m = Metrics(lambda: Snapshot())
>>> m.observe_send(0.2, "accepted")
>>> b"reorder_send_seconds_count{outcome=\\"accepted\\"} 1.0" in m.exposition()
True
"""

from __future__ import annotations

import json
import logging
import math
import socket
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Protocol

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector

from gateway import __version__
from gateway.core.events import DEFAULT_SHOP

log = logging.getLogger(__name__)

SEND_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@dataclass(frozen=True)
class Snapshot:
    """The gateway's numbers at one moment (built for each scrape)."""

    gateway: str = ""
    events_in: Mapping[tuple[str, str], int] = field(default_factory=dict)  # (device, kind)
    decisions: Mapping[str, int] = field(default_factory=dict)  # outcome -> count
    oversized: int = 0
    unmatched: int = 0
    core_queue_full: int = 0
    commit_failures: int = 0
    orders_by_state: Mapping[str, int] = field(default_factory=dict)
    queue_depth: int | None = None
    oldest_queued_age: float | None = None
    mqtt_connected: bool = False
    mqtt_reconnects: int = 0
    mqtt_dropped_publishes: int = 0
    shop_reachable: bool | None = None
    shops_reachable: Mapping[str, bool | None] = field(default_factory=dict)  # per shop


class GatewayCollector(Collector):
    """Turns a :class:`Snapshot` into metric families at scrape time."""

    def __init__(self, snapshot: Callable[[], Snapshot]) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        s = self._snapshot()
        info = GaugeMetricFamily(
            "reorder_gateway_info", "The gateway and its version", labels=["gateway", "version"]
        )
        info.add_metric([s.gateway, __version__], 1.0)
        yield info

        events = CounterMetricFamily(
            "reorder_events", "Inputs received, by device and kind", labels=["device", "kind"]
        )
        for (device, kind), n in sorted(s.events_in.items()):
            events.add_metric([device, kind], n)
        yield events

        decisions = CounterMetricFamily(
            "reorder_decisions", "Decisions taken by the core, by outcome", labels=["outcome"]
        )
        for outcome, n in sorted(s.decisions.items()):
            decisions.add_metric([outcome], n)
        yield decisions

        yield CounterMetricFamily(
            "reorder_duplicates_dropped",
            "Events recognised as already handled (redeliveries, double publishes)",
            value=s.decisions.get("duplicate", 0),
        )
        invalid = CounterMetricFamily(
            "reorder_invalid_payloads",
            "Messages that could not become an event, by reason",
            labels=["reason"],
        )
        invalid.add_metric(["unparsable"], s.decisions.get("invalid", 0))
        invalid.add_metric(["oversized"], s.oversized)
        invalid.add_metric(["unmatched_topic"], s.unmatched)
        yield invalid
        yield CounterMetricFamily(
            "reorder_core_queue_full",
            "Inputs dropped because the core's queue was full",
            value=s.core_queue_full,
        )
        yield CounterMetricFamily(
            "reorder_commit_failures",
            "Batches the database refused (retried)",
            value=s.commit_failures,
        )

        orders = GaugeMetricFamily(
            "reorder_orders", "Orders in the outbox, by state", labels=["state"]
        )
        for state, n in sorted(s.orders_by_state.items()):
            orders.add_metric([state], n)
        yield orders
        if s.queue_depth is not None:
            yield GaugeMetricFamily(
                "reorder_queue_depth", "Orders not yet at the shop", value=s.queue_depth
            )
        yield GaugeMetricFamily(
            "reorder_oldest_queued_age_seconds",
            "Age of the oldest order waiting to be sent (0 when none waits)",
            value=s.oldest_queued_age or 0.0,
        )
        yield GaugeMetricFamily(
            "reorder_mqtt_connected",
            "1 while connected to the broker and subscribed",
            value=1.0 if s.mqtt_connected else 0.0,
        )
        yield CounterMetricFamily(
            "reorder_mqtt_reconnects", "Reconnects to the broker", value=s.mqtt_reconnects
        )
        yield CounterMetricFamily(
            "reorder_mqtt_dropped_publishes",
            "Messages the gateway could not publish (disconnected, or its send queue full)",
            value=s.mqtt_dropped_publishes,
        )
        # One series per shop. NaN while not known (before its start-up probe; a webhook
        # until its first order): "not known yet" must not page anyone as "down".
        reachable = GaugeMetricFamily(
            "reorder_shop_reachable",
            "1 when the shop answered the last request or probe, 0 when it did not",
            labels=["shop"],
        )
        for shop, known in (s.shops_reachable or {DEFAULT_SHOP: s.shop_reachable}).items():
            reachable.add_metric([shop], math.nan if known is None else float(known))
        yield reachable


class Metrics:
    """The registry: the live collector plus the send-latency histogram.

    The histogram exists from the start (the sender is built early and feeds it);
    the collector can be given later with :meth:`collect_from`, once the parts it
    reads exist.
    """

    def __init__(self, snapshot: Callable[[], Snapshot] | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        if snapshot is not None:
            self.collect_from(snapshot)
        self._send = Histogram(
            "reorder_send_seconds",
            "Round trip of each place-order request, by outcome",
            ["outcome"],
            buckets=SEND_BUCKETS,
            registry=self.registry,
        )

    def collect_from(self, snapshot: Callable[[], Snapshot]) -> None:
        """Read the gateway's numbers from ``snapshot()`` at every scrape."""
        self.registry.register(GatewayCollector(snapshot))

    def observe_send(self, seconds: float, outcome: str) -> None:
        self._send.labels(outcome=outcome).observe(seconds)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


@dataclass(frozen=True)
class Health:
    """The server's questions about the gateway; each returns the reasons it is not OK."""

    live: Callable[[], list[str]]
    ready: Callable[[], list[str]]


class ObservabilityServer:
    """``/metrics``, ``/healthz`` and ``/readyz`` on ``host:port`` (port 0: ephemeral).

    >>> server = ObservabilityServer("127.0.0.1", 0, Metrics(Snapshot),
    ...                              Health(live=list, ready=list)).start()
    >>> server.port > 0
    True
    >>> server.stop()
    """

    def __init__(self, host: str, port: int, metrics: Metrics, health: Health) -> None:
        self._host, self._port = host, port
        self._metrics = metrics
        self._health = health
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self.port}"

    def start(self) -> ObservabilityServer:
        handler = _handler(self._metrics, self._health)
        server_class = _V6Server if ":" in self._host else ThreadingHTTPServer
        self._server = server_class((self._host, self._port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.5}, name="metrics"
        )
        self._thread.daemon = True
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


class MetricsEndpoint(Protocol):
    """What the gateway needs of its metrics server, running or disabled."""

    @property
    def url(self) -> str | None: ...

    def stop(self) -> None: ...


class NoMetricsServer:
    """Stands in for :class:`ObservabilityServer` when ``metrics.enabled`` is false.

    >>> NoMetricsServer().start().url is None
    True
    """

    url: str | None = None

    def start(self) -> NoMetricsServer:
        return self

    def stop(self) -> None:
        pass


class _V6Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6


def _handler(metrics: Metrics, health: Health) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "reorder-gateway"

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            try:
                if path == "/metrics":
                    self._send(200, CONTENT_TYPE_LATEST, metrics.exposition())
                elif path in ("/healthz", "/readyz"):
                    reasons = health.live() if path == "/healthz" else health.ready()
                    body = {"status": "fail" if reasons else "ok", "reasons": reasons}
                    self._send(503 if reasons else 200, "application/json", _json(body))
                else:
                    self._send(404, "text/plain", b"try /metrics, /healthz or /readyz\n")
            except Exception:
                log.exception("metrics: answering %s failed", path)
                self._send(500, "text/plain", b"internal error\n")

        def _send(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            log.debug("metrics: " + format, *args)

    return Handler


def _json(body: object) -> bytes:
    return json.dumps(body).encode() + b"\n"
