"""Every registered device profile keeps its own promises (names, examples, kind)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import devices
from devices import (
    PROFILES,
    DeviceAction,
    DeviceReading,
    Profile,
    get_profile,
    profile_names,
    registry,
)

ALL = [PROFILES[name] for name in profile_names()]
IDS = [profile.name for profile in ALL]


def test_names_are_unique_and_sorted() -> None:
    assert len(PROFILES) == len(registry._ALL)
    assert profile_names() == sorted({p.name for p in registry._ALL})
    assert all(name == profile.name for name, profile in PROFILES.items())


def test_every_device_module_is_registered() -> None:
    modules = [
        importlib.import_module(f"devices.{info.name}")
        for info in pkgutil.iter_modules(devices.__path__)
        if not info.name.startswith("_") and info.name not in ("base", "registry")
    ]
    declared = {module.PROFILE.name for module in modules}
    assert declared == set(PROFILES)


def test_duplicate_names_are_refused() -> None:
    twice = (PROFILES["json"], PROFILES["json"])
    with pytest.raises(registry.DuplicateProfileError, match="'json' is defined twice"):
        registry._index(twice)


def test_unknown_profile_names_the_valid_ones() -> None:
    with pytest.raises(KeyError) as info:
        get_profile("tasmotta")
    message = str(info.value)
    assert "did you mean 'tasmota'?" in message
    for name in profile_names():
        assert name in message


@pytest.mark.parametrize("profile", ALL, ids=IDS)
def test_profile_is_described(profile: Profile) -> None:
    assert profile.description.strip()
    assert profile.examples
    assert get_profile(profile.name) is profile


@pytest.mark.parametrize("profile", ALL, ids=IDS)
def test_every_example_parses_to_its_expected_output(profile: Profile) -> None:
    for example in profile.examples:
        got = profile.parse(example.topic, example.payload, example.options)
        assert tuple(got) == example.expected, (example.topic, example.payload)


@pytest.mark.parametrize("profile", ALL, ids=IDS)
def test_kind_matches_the_examples(profile: Profile) -> None:
    items = [item for example in profile.examples for item in example.expected]
    has_actions = any(isinstance(item, DeviceAction) for item in items)
    has_readings = any(isinstance(item, DeviceReading) for item in items)
    expected_kinds = {"button": (True, False), "sensor": (False, True), "both": (True, True)}
    assert (has_actions, has_readings) == expected_kinds[profile.kind]
    if profile.kind != "sensor":
        # A button family must document how a press and a hold look.
        actions = {item.action for item in items if isinstance(item, DeviceAction)}
        assert {"press", "hold"} <= actions


@pytest.mark.parametrize("profile", ALL, ids=IDS)
def test_event_id_promise_matches_the_examples(profile: Profile) -> None:
    items = [item for example in profile.examples for item in example.expected]
    if profile.has_event_ids:
        assert all(item.event_id for item in items)
    else:
        # Declaring False means the gateway must cope without ids: show such a case.
        assert any(item.event_id is None for item in items)


@pytest.mark.parametrize("profile", ALL, ids=IDS)
def test_subtopics_are_relative_topic_levels(profile: Profile) -> None:
    for subtopic in profile.subtopics:
        assert subtopic and not subtopic.startswith("/") and "#" not in subtopic
        assert "+" not in subtopic


def test_module_docstring_examples_hold() -> None:
    names = [info.name for info in pkgutil.iter_modules(devices.__path__)]
    modules = [devices] + [importlib.import_module(f"devices.{name}") for name in names]
    attempted = 0
    for module in modules:
        result = doctest.testmod(module, raise_on_error=False, verbose=False)
        assert result.failed == 0, module.__name__
        attempted += result.attempted
    assert attempted >= len(PROFILES)
