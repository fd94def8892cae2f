"""Action maps: which of a device's own words orders, cancels, or is ignored.

One :class:`ActionMap` says it for one button. The Zigbee2MQTT model
definitions (:mod:`devices.z2m_models`) are built from them, and so is an
installer's explicit map in the configuration (``actions: {press: [...],
cancel: [...]}``): :meth:`ActionMap.from_config` reads that shape and
:meth:`ActionMap.problems` says what is wrong with it.

A word is in at most one role. ``release`` and ``ignore`` both parse to the
canonical ``other`` (the gateway ignores them and names the word); they are
kept apart so that a listener can say "release" rather than "ignored".

>>> hue = ActionMap(press=("on_press_release",), cancel=("on_hold",),
...                 release=("on_hold_release",), ignore=("on_press",))
>>> hue.canonical("on_press_release"), hue.canonical("on_press"), hue.canonical("up_press")
('press', 'other', 'other')
>>> hue.role("on_hold_release"), hue.role("up_press") is None
('release', True)
>>> ActionMap.from_config({"press": ["single"], "cancel": "hold"}).cancel
('hold',)
"""

from __future__ import annotations

from devices.base import ROLES, ActionMap, ActionMapError, Role

__all__ = ["GENERIC_Z2M", "LEGACY_CLICK", "ROLES", "ActionMap", "ActionMapError", "Role"]

# Today's generic Zigbee2MQTT words, for a device whose model is not given.
GENERIC_Z2M = ActionMap(press=("single",), cancel=("hold", "long"))

# Zigbee2MQTT 1.x published the legacy ``click`` key (zigbee-herdsman-converters
# lib/legacy.js, WXKG01LM_click / WXKG11LM_click): single/double/triple/
# quadruple, and long then long_release for a long press.
LEGACY_CLICK = ActionMap(
    press=("single",),
    cancel=("long",),
    release=("long_release",),
    ignore=("double", "triple", "quadruple"),
)
