"""Buttons whose event ids are counters since their boot (Shelly Gen1 ``event_cnt``).

Such an id is not unique on its own: after a power cut the count starts again at
1. Each button has a :class:`~gateway.core.events.BootCount`: its boot number, the
last count seen, and whether it has said it connected since. A count lower than
the last after a connect is a boot, and the ids are then named by the new boot
number; the same or a higher count is only a reconnect. Pure functions of one
button's BootCount; :mod:`gateway.core.decide` keeps them in its state.

>>> after = counted(connected(BootCount(boot=0, last=12)), 0)
>>> after.boot, after.last
(1, 0)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from gateway.core.events import BootCount, ButtonEvent

CONNECTED = "the device connected: a count lower than its last one will mean it restarted"


def since_boot(boots: Mapping[str, BootCount], event: ButtonEvent) -> ButtonEvent:
    """The event with its id named by the device's boot when the id is a counter
    since boot: ``cnt-12`` of the third boot seen is ``b3-cnt-12``. Before any boot is
    seen the id is left as it is (ids remembered by earlier releases still match).

    >>> e = ButtonEvent("hall", "press", "cnt-12", "mqtt", counts_since_boot=True)
    >>> since_boot({"hall": BootCount(boot=3, last=12)}, e).event_id
    'b3-cnt-12'
    >>> since_boot({}, e).event_id
    'cnt-12'
    """
    boot = boots.get(event.device, BootCount()).boot
    if not event.counts_since_boot or event.event_id is None or boot == 0:
        return event
    return replace(event, event_id=f"b{boot}-{event.event_id}", counts_since_boot=False)


def connected(known: BootCount) -> BootCount:
    """The device said it (re)connected: its next count tells a boot from a reconnect."""
    return replace(known, connected=True)


def counted(known: BootCount, count: int) -> BootCount:
    """A count since boot: a new boot when it went back after the device connected.

    A count equal to the last is the same boot: a broker redelivery, or the device
    sending its last event again after a reconnect. Without a connect seen, a lower
    count is kept as it is (a reordered or replayed message must not start a boot);
    the highest count stays the mark, so the next connect tells a missed restart.
    """
    if known.connected and known.last is not None and count < known.last:
        return BootCount(boot=known.boot + 1, last=count)
    if known.connected or known.last is None:
        return BootCount(boot=known.boot, last=count)
    return replace(known, last=max(known.last, count))
