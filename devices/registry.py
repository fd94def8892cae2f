"""All device profiles by name.

Adding a device family = one module with ``PROFILE``, ``parse`` and ``encode``
plus one line in ``_ALL`` below; the registry test then checks that its
examples parse and that their meanings encode and parse back.

>>> profile_names()
['esphome', 'json', 'reorder-button', 'shelly', 'tasmota', 'zigbee2mqtt']
>>> get_profile("tasmota").has_event_ids
False
"""

from __future__ import annotations

import difflib

from devices import esphome, json_profile, reorder_button, shelly, tasmota, zigbee2mqtt
from devices.base import Profile

_ALL: tuple[Profile, ...] = (
    reorder_button.PROFILE,
    zigbee2mqtt.PROFILE,
    tasmota.PROFILE,
    shelly.PROFILE,
    esphome.PROFILE,
    json_profile.PROFILE,
)


class DuplicateProfileError(ValueError):
    """Two device modules claim the same profile name."""


def _index(profiles: tuple[Profile, ...]) -> dict[str, Profile]:
    by_name: dict[str, Profile] = {}
    for profile in profiles:
        if profile.name in by_name:
            raise DuplicateProfileError(f"device profile {profile.name!r} is defined twice")
        by_name[profile.name] = profile
    return by_name


PROFILES: dict[str, Profile] = _index(_ALL)


def profile_names() -> list[str]:
    """Every profile name, sorted."""
    return sorted(PROFILES)


def get_profile(name: str) -> Profile:
    """The profile called ``name``; KeyError naming the valid ones otherwise."""
    try:
        return PROFILES[name]
    except KeyError:
        close = difflib.get_close_matches(name, PROFILES, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        valid = ", ".join(profile_names())
        raise KeyError(f"unknown device profile {name!r}: {hint}valid profiles: {valid}") from None
