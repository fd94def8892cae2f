"""Helpers shared by the device parsers and encoders: decoding, dotted paths,
numbers, words, and their way back to bytes.

Every parsing helper raises :class:`~devices.base.ParseError` with a short
reason and nothing else, so a parser built from them keeps the "only
ParseError" promise; the encoding helpers raise only
:class:`~devices.base.EncodeError`. Reasons never echo more than a few dozen
characters of device input: they end up in logs and metrics labels.

>>> decode_object(b'{"a": [{"b": "523.4"}]}')
{'a': [{'b': '523.4'}]}
>>> as_number(lookup({"a": [{"b": "523.4"}]}, "a.0.b"), "a.0.b")
523.4
>>> data: dict[str, object] = {}
>>> place(data, "a.1.b", 523.4)
>>> encode_json(data)
b'{"a":[null,{"b":523.4}]}'
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Mapping

from devices.base import CanonicalAction, EncodeError, ParseError

# The MQTT layer caps payloads far lower; this bound keeps parse() cheap even
# when it is called directly (tests, the CLI's "check a payload" command).
MAX_PAYLOAD_BYTES = 64 * 1024
MAX_WORD_CHARS = 64
MAX_EVENT_ID_CHARS = 128
_MAX_NUMBER_CHARS = 64
# A padded list this long is a configuration slip, not a device's message.
_MAX_PLACED_INDEX = 1000

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


# No device nests its JSON this deep. The limit is checked before parsing: left to
# Python's recursion limit, the same payload parses on one thread and not on
# another with a deeper stack (a test process and the gateway's core thread).
MAX_JSON_DEPTH = 32


def _nesting(text: str) -> int:
    """The deepest nesting of objects and lists in ``text`` (strings skipped)."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def decode_json(payload: bytes) -> object:
    """Parse a payload as strict JSON (no NaN/Infinity, at most :data:`MAX_JSON_DEPTH`
    levels of objects and lists).

    >>> decode_json(b'[' * 33 + b']' * 33)
    Traceback (most recent call last):
    ...
    devices.base.ParseError: not JSON we accept: nested deeper than 32 levels
    """
    text = decode_text(payload)
    if text.count("{") + text.count("[") > MAX_JSON_DEPTH and _nesting(text) > MAX_JSON_DEPTH:
        raise ParseError(f"not JSON we accept: nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise ParseError(f"not JSON: {exc.msg} at char {exc.pos}") from exc
    except RecursionError as exc:
        raise ParseError("not JSON we accept: nested too deeply") from exc
    except ValueError as exc:
        # Integers beyond Python's digit limit and the constants rejected above.
        raise ParseError(f"not JSON we accept: {str(exc)[:60]}") from exc


# Tasmota (and other small firmwares) print a failed float as a bare token.
_NON_FINITE = ("-Infinity", "Infinity", "NaN", "-nan", "nan", "-inf", "inf")
NON_FINITE_MARK = "\x00non-finite:"


def _quote_non_finite(text: str) -> str:
    """Bare ``nan``/``inf`` tokens outside strings become marked strings, so one
    failed sensor does not make the whole message unreadable."""
    out: list[str] = []
    i, in_string, n = 0, False, len(text)
    while i < n:
        ch = text[i]
        if in_string:
            out.append(ch)
            if ch == "\\" and i + 1 < n:
                out.append(text[i + 1])
                i += 1
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
            out.append(ch)
        else:
            token = next((t for t in _NON_FINITE if text.startswith(t, i)), None)
            if token is not None and not (text[i - 1 : i].isalnum() if i else False):
                out.append(json.dumps(NON_FINITE_MARK + token))
                i += len(token)
                continue
            out.append(ch)
        i += 1
    return "".join(out)


def decode_object_tolerant(payload: bytes) -> dict[str, object]:
    """Like :func:`decode_object`, but a bare ``nan``/``inf`` value reads as a marked
    string that :func:`as_number` refuses by name (``is not finite``).

    >>> data = decode_object_tolerant(b'{"DS18B20": {"Temperature": nan}, "HX711": {"W": 0.5}}')
    >>> data["HX711"]
    {'W': 0.5}
    >>> as_number(data["DS18B20"]["Temperature"], "t")
    Traceback (most recent call last):
    ...
    devices.base.ParseError: t is not finite: nan
    """
    text = decode_text(payload)
    if any(t in text for t in _NON_FINITE):
        text = _quote_non_finite(text)
    return decode_object(text.encode("utf-8"))


_JSON_TYPES: dict[type, str] = {
    type(None): "null",
    bool: "true/false",
    int: "a number",
    float: "a number",
    list: "a list",
    str: "a string",
    dict: "an object",
}


def json_type(value: object) -> str:
    """What JSON calls ``value``'s kind, for messages about device payloads.

    >>> json_type(None), json_type([1]), json_type("x")
    ('null', 'a list', 'a string')
    """
    return _JSON_TYPES.get(type(value), type(value).__name__)


def decode_object(payload: bytes) -> dict[str, object]:
    """Parse a payload that must be a JSON object."""
    data = decode_json(payload)
    if not isinstance(data, dict):
        raise ParseError(f"expected a JSON object, got {json_type(data)}")
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
    elif isinstance(value, str) and value.startswith(NON_FINITE_MARK):
        raise ParseError(f"{what} is not finite: {value[len(NON_FINITE_MARK) :]}")
    elif isinstance(value, str):
        text = value.strip(" \t\r\n")
        if len(text) > _MAX_NUMBER_CHARS or not _NUMBER.fullmatch(text):
            raise ParseError(f"{what} is not a number: {short(value)}")
        number = float(text)
    else:
        raise ParseError(f"{what} must be a number, got {json_type(value)}")
    if not math.isfinite(number):
        raise ParseError(f"{what} is not finite: {short(value)}")
    return number


def as_word(value: object, what: str) -> str:
    """A device's own action word: a printable string of 1..64 characters."""
    if not isinstance(value, str):
        raise ParseError(f"{what} must be a string, got {json_type(value)}")
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
        raise ParseError(f"{what} must be a string, got {json_type(value)}")
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


# --------------------------------------------------------------------------- encoding


def encode_json(data: object) -> bytes:
    """Compact JSON bytes, as small firmware writes them."""
    try:
        return json.dumps(data, separators=(",", ":"), allow_nan=False).encode()
    except (TypeError, ValueError) as exc:
        raise EncodeError(f"cannot be sent as JSON: {str(exc)[:60]}") from exc


def encode_object(
    fields: Mapping[str, object], extra: Mapping[str, object], reserved: tuple[str, ...] = ()
) -> bytes:
    """A JSON object of the event's ``fields`` followed by the ``extra`` keys.

    An extra key may not overwrite a field, nor be one of the ``reserved`` keys
    the parser reads (it would change what the message means).
    """
    clash = sorted((set(fields) | set(reserved)) & set(extra))
    if clash:
        raise EncodeError(f"extra key {clash[0]!r} would change what the message means")
    return encode_json({**fields, **extra})


def refuse_extra(family: str, extra: Mapping[str, object]) -> None:
    """For families whose payload is not a JSON object with room for more keys."""
    if extra:
        raise EncodeError(f"{family} messages have no room for extra keys ({sorted(extra)[0]!r})")


def refuse_event_id(family: str, event_id: str | None) -> None:
    """For families (or message kinds) that carry no event id."""
    if event_id is not None:
        raise EncodeError(f"{family} messages carry no event id (got {short(event_id)})")


def sendable_word(family: str, word: str) -> str:
    """A device word the parser will accept: 1..64 printable characters."""
    try:
        return as_word(word, "the action word")
    except ParseError as exc:
        raise EncodeError(f"{family}: {exc}") from None


def sendable_event_id(family: str, event_id: str) -> str:
    """An event id the parser will accept: 1..128 printable characters."""
    try:
        return as_event_id(event_id, "the event id")
    except ParseError as exc:
        raise EncodeError(f"{family}: {exc}") from None


def require_word(family: str, word: str, action: CanonicalAction, means: CanonicalAction) -> None:
    """The device word must mean the stated action, or the message would lie."""
    if action != means:
        raise EncodeError(f"{family}: {short(word)} means {means!r}, not {action!r}")


def number_text(value: float) -> str:
    """The shortest text that reads back as exactly ``value``."""
    if not math.isfinite(value):
        raise EncodeError(f"a reading must be finite, got {value!r}")
    return repr(float(value))


def place(data: dict[str, object], path: str, value: object) -> None:
    """Put ``value`` at a dotted path, creating objects (and lists for index segments).

    The inverse of :func:`lookup`: ``lookup(data, path)`` then returns ``value``.
    Lists are padded with ``null`` (a ``null`` list item counts as free); a path
    that runs into a value already placed is refused.
    """
    try:
        segments = split_path(path)
    except ParseError as exc:
        raise EncodeError(str(exc)) from None
    node: object = data
    for segment, following in zip(segments, [*segments[1:], None], strict=True):
        child: object = value if following is None else ([] if _is_index(following) else {})
        node = _step(node, segment, child, path, last=following is None)


def _is_index(segment: str) -> bool:
    return segment.isdecimal() and segment.isascii()


def _step(node: object, segment: str, child: object, path: str, *, last: bool) -> object:
    """Descend one segment of ``path``, creating ``child`` if nothing is there yet."""
    if isinstance(node, dict):
        if segment in node and (last or not isinstance(node[segment], dict | list)):
            raise EncodeError(f"path {short(path)} runs into a value already placed")
        existing = node.get(segment)
    elif isinstance(node, list) and _is_index(segment):
        index = int(segment)
        if index > _MAX_PLACED_INDEX:
            raise EncodeError(f"path {short(path)}: list index {index} is too large")
        node.extend([None] * (index + 1 - len(node)))
        existing = node[index]
    else:
        raise EncodeError(f"path {short(path)} runs into a value already placed")
    if existing is None:
        if isinstance(node, dict):
            node[segment] = child
        else:
            node[int(segment)] = child
        return child
    # Two paths may share objects on the way ("a.b", "a.c"), never an end point.
    if last or not isinstance(existing, dict | list):
        raise EncodeError(f"path {short(path)} runs into a value already placed")
    return existing
