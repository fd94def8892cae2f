"""Helpers shared by the device parsers: decoding, dotted paths, numbers, words.

Every helper raises :class:`~devices.base.ParseError` with a short reason and
nothing else, so a parser built from them keeps the "only ParseError" promise.
Reasons never echo more than a few dozen characters of device input: they end
up in logs and metrics labels.

>>> decode_object(b'{"a": [{"b": "523.4"}]}')
{'a': [{'b': '523.4'}]}
>>> as_number(lookup({"a": [{"b": "523.4"}]}, "a.0.b"), "a.0.b")
523.4
"""

from __future__ import annotations

import functools
import json
import math
import re

from devices.base import CanonicalAction, ParseError

# The MQTT layer caps payloads far lower; this bound keeps parse() cheap even
# when it is called directly (tests, the CLI's "check a payload" command).
MAX_PAYLOAD_BYTES = 64 * 1024
MAX_WORD_CHARS = 64
MAX_EVENT_ID_CHARS = 128
_MAX_NUMBER_CHARS = 64

# ASCII only: float() also accepts "1_000", "infinity" and non-Latin digits,
# none of which a scale or level sensor publishes.
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)

_PRESS_WORDS = frozenset({"press", "single", "click", "on"})
_HOLD_WORDS = frozenset({"hold", "long"})


def short(value: object, limit: int = 40) -> str:
    """``repr(value)`` cut to ``limit`` characters, for error messages."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def decode_text(payload: bytes) -> str:
    """Strict UTF-8 text of a payload."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise ParseError(f"payload too large: {len(payload)} bytes > {MAX_PAYLOAD_BYTES}")
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ParseError(f"not UTF-8: {exc.reason} at byte {exc.start}") from exc


def _reject_constant(name: str) -> object:
    # NaN and Infinity are not JSON; Python accepts them unless told otherwise.
    raise ValueError(f"{name} is not allowed")


def decode_json(payload: bytes) -> object:
    """Parse a payload as strict JSON (no NaN/Infinity)."""
    text = decode_text(payload)
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise ParseError(f"not JSON: {exc.msg} at char {exc.pos}") from exc
    except RecursionError as exc:
        raise ParseError("not JSON we accept: nested too deeply") from exc
    except ValueError as exc:
        # Integers beyond Python's digit limit and the constants rejected above.
        raise ParseError(f"not JSON we accept: {str(exc)[:60]}") from exc


def decode_object(payload: bytes) -> dict[str, object]:
    """Parse a payload that must be a JSON object."""
    data = decode_json(payload)
    if not isinstance(data, dict):
        raise ParseError(f"expected a JSON object, got {type(data).__name__}")
    return data


@functools.lru_cache(maxsize=256)
def split_path(path: str) -> tuple[str, ...]:
    """Segments of a dotted path; empty segments are a configuration mistake.

    Cached: the same few configured paths are split for every message.
    """
    segments = tuple(path.split("."))
    if not path or any(not segment for segment in segments):
        raise ParseError(f"bad path {short(path)}: use names and list indices like 'a.b.0.c'")
    return segments


def lookup(data: object, path: str) -> object:
    """Follow a dotted path through objects and lists (``a.b.0.c``).

    A segment is a key in an object, or a non-negative index in a list.
    """
    node = data
    for segment in split_path(path):
        if isinstance(node, dict) and segment in node:
            node = node[segment]
        elif isinstance(node, list) and segment.isdecimal() and segment.isascii():
            index = int(segment)
            if index >= len(node):
                raise ParseError(f"missing {short(path)}: list has {len(node)} items")
            node = node[index]
        else:
            raise ParseError(f"missing {short(path)}")
    return node


def require(data: dict[str, object], key: str) -> object:
    """``data[key]``, or a ParseError naming the missing key."""
    if key not in data:
        raise ParseError(f"missing {key!r}")
    return data[key]


def as_number(value: object, what: str) -> float:
    """A finite float from a JSON number or a string holding one.

    Booleans, NaN, infinities and numbers too big for a float are rejected.
    """
    if isinstance(value, bool):
        raise ParseError(f"{what} must be a number, got a boolean")
    if isinstance(value, int):
        try:
            number = float(value)
        except OverflowError as exc:
            raise ParseError(f"{what} is too large") from exc
    elif isinstance(value, float):
        number = value
    elif isinstance(value, str):
        text = value.strip(" \t\r\n")
        if len(text) > _MAX_NUMBER_CHARS or not _NUMBER.fullmatch(text):
            raise ParseError(f"{what} is not a number: {short(value)}")
        number = float(text)
    else:
        raise ParseError(f"{what} must be a number, got {type(value).__name__}")
    if not math.isfinite(number):
        raise ParseError(f"{what} is not finite: {short(value)}")
    return number


def as_word(value: object, what: str) -> str:
    """A device's own action word: a printable string of 1..64 characters."""
    if not isinstance(value, str):
        raise ParseError(f"{what} must be a string, got {type(value).__name__}")
    if not 1 <= len(value) <= MAX_WORD_CHARS or not value.isprintable():
        raise ParseError(f"{what} must be 1..{MAX_WORD_CHARS} printable characters")
    return value


def as_event_id(value: object, what: str) -> str:
    """An event id: a printable string of 1..128 characters, or an integer >= 0."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0 or value >= 10**30:
            raise ParseError(f"{what} must be an integer >= 0 of at most 30 digits")
        return str(value)
    if not isinstance(value, str):
        raise ParseError(f"{what} must be a string, got {type(value).__name__}")
    if not 1 <= len(value) <= MAX_EVENT_ID_CHARS or not value.isprintable():
        raise ParseError(f"{what} must be 1..{MAX_EVENT_ID_CHARS} printable characters")
    return value


def canonical(word: str) -> CanonicalAction:
    """The generic mapping used by ``json`` and ``esphome`` event words.

    >>> canonical("Single"), canonical("long"), canonical("double")
    ('press', 'hold', 'other')
    """
    if not word.isascii():
        # str.lower() folds some non-ASCII look-alikes onto ASCII letters.
        return "other"
    lowered = word.lower()
    if lowered in _PRESS_WORDS:
        return "press"
    if lowered in _HOLD_WORDS:
        return "hold"
    return "other"
