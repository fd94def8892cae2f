"""Every registered device profile keeps its own promises (names, examples, kind),
and speaks what it reads: each example's meaning, encoded, parses back to itself."""

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
    Example,
    Parsed,
    Profile,
    ProfileOptions,
    get_profile,
    profile_names,
    registry,
)

# Modules of devices/ that are shared parts, not device families.
NOT_FAMILIES = ("base", "registry", "actions", "z2m_models", "table", "units", "vitals")
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
        if not info.name.startswith("_") and info.name not in NOT_FAMILIES
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


def _base_topic(profile: Profile, topic: str) -> str:
    """The configured topic an example was published under (sub-topics removed)."""
    for subtopic in profile.subtopics:
        if topic.endswith("/" + subtopic):
            return topic.removesuffix("/" + subtopic)
    return topic


def _round_trip(
    profile: Profile, meaning: Parsed | None, topic: str, options: ProfileOptions
) -> None:
    messages = profile.encode(meaning, options, {})
    assert messages, (profile.name, meaning)
    expected = [] if meaning is None else [meaning]
    for message in messages:
        assert message.subtopic in ("", *profile.subtopics), message
        got = profile.parse(message.topic(topic), message.payload, options)
        assert got == expected, (profile.name, meaning, message)


@pytest.mark.parametrize("profile", ALL, ids=IDS)
def test_every_example_meaning_encodes_and_parses_back(profile: Profile) -> None:
    for example in profile.examples:
        topic = _base_topic(profile, example.topic)
        # An example that means nothing round-trips as ``None``: the family's own
        # message without an event (a state report, an idle input).
        for meaning in example.expected or (None,):
            _round_trip(profile, meaning, topic, example.options)


def _example_of(profile: Profile, action: str) -> tuple[Example, DeviceAction]:
    for example in profile.examples:
        for item in example.expected:
            if isinstance(item, DeviceAction) and item.action == action:
                return example, item
    raise AssertionError(f"{profile.name} documents no {action}")


BUTTONS = [profile for profile in ALL if profile.kind != "sensor"]


@pytest.mark.parametrize("profile", BUTTONS, ids=[profile.name for profile in BUTTONS])
@pytest.mark.parametrize("action", ["press", "hold"])
def test_the_family_words_for_press_and_hold_round_trip(profile: Profile, action: str) -> None:
    example, documented = _example_of(profile, action)
    assert action in ("press", "hold")
    meaning = profile.action("press" if action == "press" else "hold", documented.event_id)
    assert meaning.action == action
    _round_trip(profile, meaning, _base_topic(profile, example.topic), example.options)


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
