"""The decisions the page lists, kept across restarts: one JSON line each.

``<state_dir>/decisions.jsonl`` (0600, it names devices and products) gets a line per
decision, appended by the core thread after its commit: a ``write`` to the page
cache, no fsync, so a power cut may cost the last seconds of the list, never an
order (the orders are the outbox's). Past :data:`MAX_BYTES` the file becomes
``decisions.1.jsonl`` (replacing the one before) and a new one starts, so the list
stays bounded on an SD card. At start the newest :data:`~gateway.web.live.RECENT_DECISIONS`
are read back; a line cut short by a power cut is skipped, counted and logged.

>>> import tempfile
>>> from pathlib import Path
>>> journal = DecisionJournal(Path(tempfile.mkdtemp()))
>>> journal.append(Decision(1.0, "hall", "ordered", "tea", "hall: ordered (tea)"))
>>> [d.text for d in journal.load(10)]
['hall: ordered (tea)']
"""

from __future__ import annotations

import json
import logging
import os
from collections import deque
from dataclasses import asdict, dataclass
from pathlib import Path

log = logging.getLogger(__name__)

FILE = "decisions.jsonl"
OLD_FILE = "decisions.1.jsonl"
MAX_BYTES = 2 * 1024 * 1024  # ~10,000 decisions a file


@dataclass(frozen=True)
class Decision:
    """One decision as the page shows it: when, which device, what, and why."""

    at: float
    device: str
    outcome: str
    product: str | None
    text: str


class DecisionJournal:
    """Appends decisions to the journal file and reads the newest back (see the module
    docstring). Called from one thread (the core's); never raises for the disk."""

    def __init__(self, state_dir: Path, max_bytes: int = MAX_BYTES) -> None:
        self._path = Path(state_dir) / FILE
        self._old = Path(state_dir) / OLD_FILE
        self._max_bytes = max_bytes
        self.failed = 0  # decisions that could not be written (disk full, permissions)
        self.skipped = 0  # unreadable lines found at start (a torn last line)
        self._tail_checked = False

    def append(self, decision: Decision) -> None:
        line = json.dumps(asdict(decision), separators=(",", ":"), ensure_ascii=False) + "\n"
        try:
            if not self._tail_checked:
                # A line cut short by a power cut must not swallow the next one.
                self._tail_checked = True
                if not self._ends_with_newline():
                    line = "\n" + line
            if self._size() + len(line) > self._max_bytes:
                self._path.replace(self._old)
            fd = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            with os.fdopen(fd, "a", encoding="utf-8") as out:
                out.write(line)
        except OSError as exc:
            self.failed += 1
            if self.failed == 1 or self.failed % 100 == 0:
                log.warning(
                    "web: cannot keep a decision in %s (%s); %d not kept so far (the page "
                    "still shows them until the next start; no order is affected)",
                    self._path,
                    exc,
                    self.failed,
                )

    def load(self, most: int) -> list[Decision]:
        """The newest ``most`` decisions, oldest first."""
        newest: deque[Decision] = deque(maxlen=most)
        for path in (self._old, self._path):
            try:
                with path.open(encoding="utf-8", errors="replace") as lines:
                    for line in lines:
                        decision = self._read(line)
                        if decision is not None:
                            newest.append(decision)
            except FileNotFoundError:
                continue
            except OSError as exc:
                log.warning("web: cannot read the decisions kept in %s (%s)", path, exc)
        if self.skipped:
            log.warning(
                "web: skipped %d unreadable lines in %s (cut short by a power cut?)",
                self.skipped,
                self._path,
            )
        return list(newest)

    def _read(self, line: str) -> Decision | None:
        try:
            raw = json.loads(line)
            product = raw["product"]
            decision = Decision(
                at=float(raw["at"]),
                device=str(raw["device"]),
                outcome=str(raw["outcome"]),
                product=None if product is None else str(product),
                text=str(raw["text"]),
            )
        except (ValueError, TypeError, KeyError):
            self.skipped += 1
            return None
        return decision

    def _ends_with_newline(self) -> bool:
        try:
            with self._path.open("rb") as tail:
                tail.seek(0, os.SEEK_END)
                if tail.tell() == 0:
                    return True
                tail.seek(-1, os.SEEK_END)
                return tail.read(1) == b"\n"
        except FileNotFoundError:
            return True

    def _size(self) -> int:
        try:
            return self._path.stat().st_size
        except FileNotFoundError:
            return 0
