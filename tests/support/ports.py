"""Free loopback ports for test servers."""

from __future__ import annotations

import socket
import time

from firmware_sim.demo import free_port

__all__ = ["free_port", "wait_for_port"]


def wait_for_port(port: int, timeout: float = 10.0, host: str = "127.0.0.1") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError(f"nothing listening on {host}:{port} after {timeout}s")
