"""Device profiles: one module per device family, each a declarative
:class:`~devices.base.Profile` with a pure ``parse(topic, payload, options)``
and its inverse ``encode(meaning, options, extra)`` (the simulator's devices
publish what ``encode`` gives).

>>> from devices import get_profile
>>> get_profile("reorder-button").name
'reorder-button'
"""

from devices.base import (
    ActionMap,
    ActionMapError,
    ActionWords,
    DeviceAction,
    DeviceReading,
    EncodeError,
    Example,
    Message,
    Parsed,
    ParseError,
    Profile,
    ProfileOptions,
)
from devices.registry import PROFILES, get_profile, profile_names

__all__ = [
    "PROFILES",
    "ActionMap",
    "ActionMapError",
    "ActionWords",
    "DeviceAction",
    "DeviceReading",
    "EncodeError",
    "Example",
    "Message",
    "ParseError",
    "Parsed",
    "Profile",
    "ProfileOptions",
    "get_profile",
    "profile_names",
]
