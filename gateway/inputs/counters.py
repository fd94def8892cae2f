"""Shelly Gen1 event counters, compared since the device's last boot.

A Gen1 ``input_event`` carries ``event_cnt``, which counts up from 0 after each
power-up. It is not an id for all time: after a power cut the same numbers come
again, and they are new presses. So a count is judged against the last count
seen from that device: the same count again is the same event (a repeat), any
other count a new one — higher while counting, lower after a reboot.

>>> counts = BootCounters()
>>> counts.judge("hall", 12), counts.judge("hall", 12), counts.judge("hall", 13)
('new', 'repeat', 'new')
>>> counts.judge("hall", 1)  # the device rebooted
'reboot'
"""

from __future__ import annotations

from typing import Literal

Judgement = Literal["new", "repeat", "reboot"]


class BootCounters:
    """The last ``event_cnt`` seen per device (since the gateway started)."""

    def __init__(self) -> None:
        self._last: dict[str, int] = {}

    def judge(self, device: str, count: int) -> Judgement:
        last = self._last.get(device)
        self._last[device] = count
        if last is None or count > last:
            return "new"
        return "repeat" if count == last else "reboot"
