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

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from devices.base import CanonicalAction

Role = Literal["press", "cancel", "release", "ignore"]
ROLES: tuple[Role, ...] = ("press", "cancel", "release", "ignore")

_CANONICAL: dict[Role, CanonicalAction] = {
    "press": "press",
    "cancel": "hold",
    "release": "other",
    "ignore": "other",
}


class ActionMapError(ValueError):
    """An action map that cannot work: a word in two roles, no press, a bad word."""


@dataclass(frozen=True)
class ActionMap:
    """The words of one button, by what they mean to the gateway.

    The first press (and cancel) word is the one a simulated device sends.

    >>> ActionMap(press=("single",), cancel=("single",))
    Traceback (most recent call last):
    ...
    devices.actions.ActionMapError: 'single' is both a press and a cancel word
    """

    press: tuple[str, ...]
    cancel: tuple[str, ...] = ()
    release: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        problems = self.problems()
        if problems:
            raise ActionMapError(problems[0])

    def words(self, role: Role) -> tuple[str, ...]:
        return {
            "press": self.press,
            "cancel": self.cancel,
            "release": self.release,
            "ignore": self.ignore,
        }[role]

    def problems(self) -> list[str]:
        """Everything wrong with this map, each with how to fix it."""
        out: list[str] = []
        if not self.press:
            out.append("has no press word — list at least one under press:")
        seen: dict[str, Role] = {}
        for role in ROLES:
            for word in self.words(role):
                if not isinstance(word, str) or not 1 <= len(word) <= 64 or not word.isprintable():
                    out.append(f"{word!r} is not a device word (1..64 printable characters)")
                elif word in seen:
                    out.append(f"{word!r} is both a {seen[word]} and a {role} word")
                else:
                    seen[word] = role
        return out

    def role(self, word: str) -> Role | None:
        """What ``word`` is to this button; None for a word it does not list."""
        for role in ROLES:
            if word in self.words(role):
                return role
        return None

    def canonical(self, word: str) -> CanonicalAction:
        """``press``, ``hold`` (cancel) or ``other`` (release, ignored, unknown)."""
        role = self.role(word)
        return "other" if role is None else _CANONICAL[role]

    @classmethod
    def from_config(cls, data: Mapping[str, object]) -> ActionMap:
        """The YAML shape ``{press: [...], cancel: [...], release: [...], ignore: [...]}``.

        A single word may stand for a list of one. Unknown keys are refused.
        """
        unknown = sorted(set(data) - set(ROLES))
        if unknown:
            raise ActionMapError(
                f"unknown key {unknown[0]!r} — an action map has press, cancel, release, ignore"
            )
        lists: dict[str, tuple[str, ...]] = {}
        for role in ROLES:
            raw = data.get(role, ())
            items = (raw,) if isinstance(raw, str) else raw
            if not isinstance(items, list | tuple) or not all(isinstance(w, str) for w in items):
                raise ActionMapError(f"{role}: must be a word or a list of words")
            lists[role] = tuple(items)
        return cls(
            press=lists["press"],
            cancel=lists["cancel"],
            release=lists["release"],
            ignore=lists["ignore"],
        )


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
