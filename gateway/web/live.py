"""What the page learns as the core commits: the SSE fan-out and recent decisions.

Fed on the decider thread from ``GatewayOutputs.deliver`` (after the commit), read
by the web threads. Each ``/events`` client has its own bounded queue: a client that
does not read is dropped from, never waited for, and each drop is counted and logged.

>>> feed = LiveFeed(queue_size=1)
>>> client = feed.subscribe()
>>> feed.note_reading("scale", at=10.0)
>>> feed.note_reading("scale", at=11.0)  # the queue is full: dropped and counted
>>> feed.dropped, client.get(timeout=0)
(1, '{"kind":"reading","device":"scale"}')
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from devices.base import Vitals
from gateway.core.events import Outcome, Report
from gateway.outputs.reports import describe
from gateway.web.journal import Decision, DecisionJournal

log = logging.getLogger(__name__)

QUEUE_SIZE = 32  # changes a client may be behind before its changes are dropped
MAX_CLIENTS = 16  # each stream holds a server thread: a household needs a few
RECENT_DECISIONS = 200
CLOSED = ""  # put on every client queue when the server stops


@dataclass(frozen=True)
class DeviceSeen:
    """The last message from one button or sensor, the last decision about it, and its
    battery and link as its last message that carried them said (kept in memory only:
    a device repeats them with its next report)."""

    last_message_at: float
    last_decision: Decision | None
    vitals: Vitals | None = None
    vitals_at: float | None = None


class LiveFeed:
    """Fan-out of committed changes to the page's live clients, and what was decided.

    >>> LiveFeed().recent(), LiveFeed().devices()
    ([], {})
    """

    def __init__(
        self,
        queue_size: int = QUEUE_SIZE,
        max_clients: int = MAX_CLIENTS,
        journal: DecisionJournal | None = None,
    ) -> None:
        self._lock = threading.Lock()
        self._queue_size = queue_size
        self._max_clients = max_clients
        self._clients: list[queue.Queue[str]] = []
        self._recent: deque[Decision] = deque(maxlen=RECENT_DECISIONS)
        self._devices: dict[str, DeviceSeen] = {}
        self._journal = journal
        self.dropped = 0
        if journal is not None:
            # The list and each device's last decision as they were before the start.
            for decision in journal.load(RECENT_DECISIONS):
                self._recent.append(decision)
                if _answers_a_message(decision):
                    self._devices[decision.device] = DeviceSeen(decision.at, decision)

    # ------------------------------------------------------------------ feeding

    def note_report(self, report: Report) -> None:
        decision = Decision(
            at=report.at,
            device=report.device,
            outcome=report.outcome.value,
            product=report.product,
            text=describe(report),
        )
        if self._journal is not None:
            self._journal.append(decision)
        with self._lock:
            self._recent.append(decision)
            if report.outcome.answers_a_message:
                # An order's later states are the shop's word, not a message from the
                # device: they are on Now and History, and leave its last decision alone.
                self._seen(report.device, report.at, last_decision=decision)
        self._broadcast({"kind": "decision", "device": report.device, "outcome": decision.outcome})

    def note_reading(self, device: str, at: float) -> None:
        with self._lock:
            self._seen(device, at)
        self._broadcast({"kind": "reading", "device": device})

    def note_vitals(self, device: str, vitals: Vitals, at: float) -> None:
        """A message from ``device`` said this of its battery or link."""
        with self._lock:
            self._seen(device, at, vitals=vitals, vitals_at=at)
        self._broadcast({"kind": "vitals", "device": device})

    def _seen(self, device: str, at: float, **changes: Any) -> None:
        """A message from ``device`` at ``at``, and what it changed (lock held)."""
        seen = self._devices.get(device) or DeviceSeen(at, None)
        self._devices[device] = replace(seen, last_message_at=at, **changes)

    def _broadcast(self, change: dict[str, str]) -> None:
        data = json.dumps(change, separators=(",", ":"))
        with self._lock:
            clients = list(self._clients)
        for client in clients:
            try:
                client.put_nowait(data)
            except queue.Full:
                with self._lock:
                    self.dropped += 1
                    dropped = self.dropped
                log.warning("web: a live client is behind; change dropped (%d so far)", dropped)

    # ------------------------------------------------------------------ reading

    def subscribe(self) -> queue.Queue[str] | None:
        """A new client's queue, or None when :data:`MAX_CLIENTS` are open already."""
        with self._lock:
            if len(self._clients) >= self._max_clients:
                return None
            client: queue.Queue[str] = queue.Queue(self._queue_size)
            self._clients.append(client)
            return client

    def unsubscribe(self, client: queue.Queue[str]) -> None:
        with self._lock:
            if client in self._clients:
                self._clients.remove(client)

    def close(self) -> None:
        """Ends every stream (their handler threads see :data:`CLOSED`)."""
        with self._lock:
            clients, self._clients = self._clients, []
        for client in clients:
            while True:
                try:
                    client.put_nowait(CLOSED)
                    break
                except queue.Full:
                    client.get_nowait()  # make room: the stream is ending anyway

    def clients(self) -> int:
        with self._lock:
            return len(self._clients)

    def collector(self) -> Collector:
        """``reorder_web_live_dropped_total`` and ``reorder_web_live_clients``."""
        return _LiveCollector(self)

    def recent(self) -> list[Decision]:
        """The last decisions, newest first."""
        with self._lock:
            return list(reversed(self._recent))

    def journal_failures(self) -> int:
        return 0 if self._journal is None else self._journal.failed

    def devices(self) -> dict[str, DeviceSeen]:
        with self._lock:
            return dict(self._devices)


class _LiveCollector(Collector):
    def __init__(self, feed: LiveFeed) -> None:
        self.feed = feed

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily(
            "reorder_web_live_dropped",
            "Changes not sent to a live page because it was behind",
            value=float(self.feed.dropped),
        )
        yield GaugeMetricFamily(
            "reorder_web_live_clients", "Open /events streams", value=float(self.feed.clients())
        )
        yield CounterMetricFamily(
            "reorder_web_decisions_not_kept",
            "Decisions the page could not write to decisions.jsonl (disk full, permissions)",
            value=float(self.feed.journal_failures()),
        )


def _answers_a_message(decision: Decision) -> bool:
    try:
        return Outcome(decision.outcome).answers_a_message
    except ValueError:  # an outcome of a later release, read back after a downgrade
        return False
