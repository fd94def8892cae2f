"""The running gateway: signals, the main loop, reload.

``run`` builds the parts (:mod:`gateway.wiring`), starts them and then sleeps on
one event until something is asked of it or its next duty is due:

* SIGTERM or SIGINT: stop. Input first, then the batch in hand is committed, the
  sender gets what is left of a 4 s budget for its request (an abandoned one is
  re-sent with the same key on the next start), the database closes last — within
  the 5 s the service promises.
* SIGHUP: reload the config; an invalid one is logged and the running one stays.
* the MQTT link (re)connected: announce Home Assistant's entities again (and, when
  ``homeassistant.json`` was unreadable, end the sweep that rebuilds it when due:
  :func:`~gateway.wiring.run_sweep`).
* due: the status file and systemd's status line (every 2 s), the systemd watchdog
  (fed only while the core thread's heartbeat is fresh, so a hung core gets the
  service restarted) — :meth:`~gateway.ops.observability.Observability.run_due`.
"""

from __future__ import annotations

import logging
import signal
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from gateway.clock import Clock
from gateway.config.load import ConfigError, LoadedConfig, load_config
from gateway.errors import GpioError
from gateway.inputs.gpio import GpioButtons
from gateway.outputs.log_clock import stamp_logs_with
from gateway.wiring import (
    BuildOptions,
    Parts,
    announce,
    build,
    reconfigure,
    run_sweep,
    start,
    stop,
)

log = logging.getLogger(__name__)

SHUTDOWN_BUDGET = 4.0  # seconds; systemd's TimeoutStopSec is larger


@dataclass(frozen=True)
class RunOptions:
    config_path: Path  # read again on SIGHUP
    clock: Clock
    demo: bool = False  # allows the simulator to drive mock GPIO pins


class Gateway:
    """One gateway, built from a loaded config. ``run()`` blocks until stopped;
    tests call ``start()`` and ``shutdown()`` themselves.

    >>> Gateway.__name__
    'Gateway'
    """

    def __init__(self, loaded: LoadedConfig, options: RunOptions) -> None:
        self.config_path = options.config_path
        self.parts: Parts = build(loaded.config, BuildOptions(options.clock, options.demo))
        self.requests = self.parts.requests
        self.ready = self.requests.connected

    @property
    def gpio(self) -> GpioButtons:
        return self.parts.gpio

    def start(self) -> None:
        start(self.parts)

    def shutdown(self) -> None:
        stop(self.parts, SHUTDOWN_BUDGET)

    def stop(self) -> None:
        self.requests.ask(self.requests.stop)

    def run(self) -> int:
        self._install_signals()
        requests = self.requests
        try:
            self.start()
            self.parts.notifier.ready(self.parts.observability.status_line())
            while True:
                # Cleared before the flags are read: a flag raised from here on wakes
                # the next wait at once.
                requests.wake.clear()
                if requests.stop.is_set():
                    break
                if requests.take(requests.reload):
                    self.reload()
                if requests.take(requests.announce):
                    announce(self.parts)
                due = min(self.parts.observability.run_due(), run_sweep(self.parts))
                requests.wake.wait(due)
        finally:
            self.shutdown()
        return 0

    def reload(self) -> None:
        """A valid new config replaces rules, routes and GPIO; an invalid one is logged
        and the running config stays."""
        try:
            fresh = load_config(self.config_path)
        except ConfigError as exc:
            log.error("reload refused, keeping the running config:\n%s", "\n".join(exc.messages))
            return
        new, old = fresh.config, self.parts.config
        if new.gateway != old.gateway or new.mqtt != old.mqtt or new.all_shops != old.all_shops:
            log.warning("gateway, mqtt and commerce/shops changes take effect after a restart")
        if new.web != old.web:
            # The page itself follows the reload (products, buttons, sensors); its
            # address, port and certificate are bound at start.
            log.warning("web: changes take effect after a restart")
        merged = new.model_copy(
            update={
                "gateway": old.gateway,
                "mqtt": old.mqtt,
                "commerce": old.commerce,
                "shops": old.shops,
                "web": old.web,
            }
        )
        try:
            reconfigure(self.parts, merged)
        except GpioError as exc:
            log.error(
                "reloaded, but the GPIO buttons stay off until the next reload or restart: %s",
                exc,
            )
            return
        for warning in fresh.warnings:
            log.warning("%s", warning)
        log.info("configuration reloaded from %s", self.config_path)

    def _install_signals(self) -> None:
        requests = self.requests

        def on_stop(signum: int, _frame: FrameType | None) -> None:
            requests.ask(requests.stop)

        def on_hup(signum: int, _frame: FrameType | None) -> None:
            requests.ask(requests.reload)

        signal.signal(signal.SIGTERM, on_stop)
        signal.signal(signal.SIGINT, on_stop)
        signal.signal(signal.SIGHUP, on_hup)


def run_gateway(config_path: Path, clock: Clock, *, demo: bool = False) -> int:
    """Load, validate and run. Returns the process exit code."""
    stamp_logs_with(clock)
    loaded = load_config(config_path)
    for warning in loaded.warnings:
        log.warning("%s", warning)
    return Gateway(loaded, RunOptions(config_path, clock, demo)).run()
