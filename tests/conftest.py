"""Shared fixtures: a private mosquitto per test that asks for one."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.broker import Broker
from tests.support.homeassistant import HomeAssistant
from tests.support.vendure import vendure  # noqa: F401  (the session-wide Vendure server)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow", action="store_true", help="run long opt-in tests")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-slow") or os.environ.get("RG_LONG") == "1":
        return
    skip = pytest.mark.skip(reason="long run: opt in with --run-slow or RG_LONG=1")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    b = Broker(tmp_path / "broker").start()
    try:
        yield b
    finally:
        b.kill()


@pytest.fixture(scope="session")
def ha_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """The mosquitto the session's Home Assistant is connected to."""
    b = Broker(tmp_path_factory.mktemp("ha-broker")).start()
    try:
        yield b
    finally:
        b.kill()


@pytest.fixture(scope="session")
def home_assistant(
    tmp_path_factory: pytest.TempPathFactory, ha_broker: Broker
) -> Iterator[HomeAssistant]:
    """One real Home Assistant for the whole session (its start-up takes seconds).
    Missing, it fails the tests that use it: ./scripts/test installs it."""
    ha = HomeAssistant(tmp_path_factory.mktemp("homeassistant"), broker_port=ha_broker.port)
    ha.start()
    try:
        yield ha
    finally:
        ha.stop()
