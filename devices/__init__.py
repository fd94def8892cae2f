"""Device profiles: one module per device family, each a declarative
:class:`~devices.base.Profile` plus a pure ``parse(topic, payload, options)``.

>>> from devices import get_profile
>>> get_profile("reorder-button").name
'reorder-button'
"""

from devices.base import (
    DeviceAction,
    DeviceReading,
    Example,
    Parsed,
    ParseError,
    Profile,
    ProfileOptions,
)
from devices.registry import PROFILES, get_profile, profile_names

__all__ = [
    "PROFILES",
    "DeviceAction",
    "DeviceReading",
    "Example",
    "ParseError",
    "Parsed",
    "Profile",
    "ProfileOptions",
    "get_profile",
    "profile_names",
]
