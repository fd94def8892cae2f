"""A real Vendure server (firmware_sim/vendure) for the vendure backend's tests.

    def test_x(vendure: VendureServer) -> None:
        backend = VendureCommerce(vendure.section())
        ...
        assert vendure.orders_by_key()["rg1_x"] == 1

Starting and asking the test bed is :mod:`firmware_sim.vendure_bed`, shared with
``./scripts/demo --vendure``; this adds the backend's config section and the fixture.
A missing installation fails the test (it does not skip it).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from firmware_sim.vendure_bed import ADMIN_PASSWORD, CHANNEL, VendureBed, VendureBedError
from gateway.config.models import VendureSection

__all__ = ["ADMIN_PASSWORD", "VendureServer", "vendure"]


class VendureServer(VendureBed):
    """The test bed, plus the ``vendure`` section pointing at it."""

    def __init__(self, workdir: Path) -> None:
        try:
            super().__init__(workdir)
        except VendureBedError as exc:
            pytest.fail(str(exc))

    def section(self, **overrides: Any) -> VendureSection:
        values: dict[str, Any] = {
            "adapter": "vendure",
            "admin_api_url": self.admin_url,
            "channel_token": CHANNEL,
            "admin_user": self.admin_user,
            "admin_password": self.admin_password,
            "customer_email": "household@example.org",
            "timeout": "10s",
        }
        values.update(overrides)
        return VendureSection.model_validate(values)


@pytest.fixture(scope="session")
def vendure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VendureServer]:
    server = VendureServer(tmp_path_factory.mktemp("vendure")).start()
    try:
        yield server
    finally:
        server.stop()
