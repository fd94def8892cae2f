"""Log lines dated by the clock the process runs on.

Under a scaled clock (``--time-scale``, as the demo runs the gateway and the
reference shop) a log line stamped with the machine's time would contradict
everything else the process writes — events, orders, the status file — which is
dated by the scaled clock. :func:`stamp_logs_with` makes every text log line carry
that clock's date and time instead, labelled ``sim`` and in UTC, like the
simulator's lines and the demo's story.

>>> import logging, io
>>> from gateway.clock import ScaledClock
>>> handler = logging.StreamHandler(io.StringIO())
>>> handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
>>> stamp_logs_with(ScaledClock(600.0, start=0.0), [handler])
>>> handler.formatter.formatTime(logging.makeLogRecord({}), handler.formatter.datefmt)[:14]
'sim 1970-01-01'
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from gateway.clock import Clock, RealClock
from gateway.ops.logs import JsonFormatter

SIM_LOG_TIME = "sim %Y-%m-%d %H:%M:%S"


def stamp_logs_with(clock: Clock, handlers: Iterable[logging.Handler] | None = None) -> None:
    """Date the text lines of ``handlers`` (default: the root logger's) by ``clock``;
    nothing changes on the machine's own clock (scale 1). JSON lines keep their real
    ``ts``: log shippers order by it."""
    if clock.scale == 1.0:
        return
    wall = RealClock()

    def to_clock(created: float | None) -> time.struct_time:
        real = wall.now() if created is None else created
        return time.gmtime(clock.now() - (wall.now() - real) * clock.scale)

    for handler in logging.getLogger().handlers if handlers is None else handlers:
        formatter = handler.formatter
        if formatter is None or isinstance(formatter, JsonFormatter):
            continue
        formatter.converter = to_clock
        formatter.datefmt = SIM_LOG_TIME
