"""YAML with positions: python data plus where every key and value was written.

PyYAML's ``safe_load`` forgets positions and silently keeps the last of two
equal keys. Here the node tree is composed with :class:`yaml.SafeLoader`, the
python data is built from it by hand, and every key path is mapped to the
1-based ``(line, column)`` of its key and of its value, so that each later
complaint can point at the exact spot in the installer's file.

>>> doc = parse_yaml("gateway:\\n  id: demo\\n")
>>> doc.data
{'gateway': {'id': 'demo'}}
>>> doc.value_at(("gateway", "id"))
(2, 7)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from gateway.errors import YamlSyntaxError

__all__ = [
    "MAX_VALUES",
    "KeyPath",
    "Position",
    "YamlDocument",
    "YamlProblem",
    "YamlSyntaxError",
    "parse_yaml",
]

KeyPath = tuple[str | int, ...]
"""A path into the data: mapping keys and list indexes, e.g. ``("buttons", 1, "gpio")``."""

Position = tuple[int, int]
"""1-based ``(line, column)``."""

_MERGE_TAG = "tag:yaml.org,2002:merge"
_INT_TAG = "tag:yaml.org,2002:int"


@dataclass(frozen=True)
class YamlProblem:
    """Something wrong with the YAML itself, at a position (``path`` None: no key yet)."""

    line: int
    col: int
    path: KeyPath | None
    text: str


@dataclass
class YamlDocument:
    """The data of one YAML file and where each part of it was written."""

    data: Any
    keys: dict[KeyPath, Position] = field(default_factory=dict)
    values: dict[KeyPath, Position] = field(default_factory=dict)
    problems: list[YamlProblem] = field(default_factory=list)

    def key_at(self, path: KeyPath) -> Position:
        """Position of the key at ``path``, or of its nearest written ancestor."""
        return _nearest(self.keys, path)

    def value_at(self, path: KeyPath) -> Position:
        """Position of the value at ``path``, or of its nearest written ancestor."""
        return _nearest(self.values, path)

    def has(self, path: KeyPath) -> bool:
        return path in self.values


def _nearest(table: dict[KeyPath, Position], path: KeyPath) -> Position:
    for end in range(len(path), -1, -1):
        found = table.get(path[:end])
        if found is not None:
            return found
    return (1, 1)


def _pos(node: Node) -> Position:
    return (node.start_mark.line + 1, node.start_mark.column + 1)


# Common syntax mistakes and how an installer fixes them (the first match wins).
_SYNTAX_HINTS = (
    ("found character '\\t' that cannot start any token", "indent with spaces, not tabs"),
    (
        "that cannot start any token",
        "quote a value that starts with @ or ` (YAML reserves them): write 'value'",
    ),
    (
        "mapping values are not allowed",
        "put values containing ': ' in quotes, or fix the indentation",
    ),
    ("expected <block end>", "line up the keys of one section at the same indentation"),
    ("could not find expected ':'", "write 'key: value' with a space after the colon"),
    ("found unexpected end of stream", "close the quote or bracket that was opened"),
    ("expected a single document", "remove the '---' separator: one file holds one configuration"),
    ("found undefined alias", "define the &anchor before using *alias"),
    (
        "could not determine a constructor",
        "write ${VAR} or a *_file key instead: tags such as !secret or !include are not supported",
    ),
)

# Aliases can make a short file expand enormously ("billion laughs"); a real
# configuration has a few hundred values.
MAX_VALUES = 100_000


def _syntax_problem(exc: yaml.YAMLError, text: str | None = None) -> YamlProblem:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    what = f"{context}, {problem}" if context else str(problem)
    if text is not None:
        earlier = _key_without_colon(exc, text)
        if earlier is not None:
            return earlier
    hint = next((h for needle, h in _SYNTAX_HINTS if needle in what), None)
    hint = hint or "check the indentation and quoting on this line and the one above"
    return YamlProblem(line, col, None, f"YAML syntax error: {what} — {hint}")


def _key_without_colon(exc: yaml.YAMLError, text: str) -> YamlProblem | None:
    """A key written without its ':' is only noticed on a later line, where the
    scanner meets the next ':' (or the end of the block); point at the key itself.

    ``  coffee`` over ``    sku: A`` reads as the one scalar "coffee sku", and the
    ':' after it is "not allowed here"; ``quantity 2`` followed by a less indented
    key is "could not find expected ':'" on the next line.
    """
    problem = getattr(exc, "problem", None)
    mark = getattr(exc, "problem_mark", None)
    if mark is None:
        return None
    start: yaml.Mark | None = None
    if problem == "could not find expected ':'":
        start = getattr(exc, "context_mark", None)
    elif problem == "mapping values are not allowed here":
        start = _last_scalar_start(text)
    if start is None or start.line >= mark.line:
        return None
    lines = text.splitlines()
    written = lines[start.line]
    before = written[: start.column].strip()
    if before not in ("", "-"):
        # The scalar is the value of 'key: ' on an earlier line: the later line is
        # indented too deep and runs on from that value.
        later = lines[mark.line]
        key = before.removeprefix("- ").strip()
        return YamlProblem(
            mark.line + 1,
            len(later) - len(later.lstrip()) + 1,
            None,
            f"YAML syntax error: this line is indented deeper than '{key}' on line "
            f"{start.line + 1}, so it runs on from that value — line it up with '{key}' "
            "(or put a value containing ': ' in quotes)",
        )
    word = written[start.column :].strip()
    return YamlProblem(
        start.line + 1,
        start.column + 1,
        None,
        f"YAML syntax error: '{word}' has no ':' after it, so line {mark.line + 1} "
        f"runs on from it — write 'key: value' (e.g. '{word.split()[0]}:') with a space "
        "after the colon",
    )


def _last_scalar_start(text: str) -> yaml.Mark | None:
    """Where the last scalar before the scanner's error started."""
    last: yaml.Mark | None = None
    try:
        for token in yaml.scan(text, Loader=yaml.SafeLoader):
            if isinstance(token, yaml.ScalarToken) and token.plain:
                last = token.start_mark
            elif not isinstance(token, yaml.ValueToken | yaml.KeyToken):
                last = None
    except yaml.YAMLError:
        pass  # the error composing met: everything before it has been seen
    return last


def parse_yaml(text: str, *, clock_times_as_text: bool = False) -> YamlDocument:
    """Compose ``text`` safely and build data plus positions.

    Raises :class:`YamlSyntaxError` when the text is not YAML. Duplicate and
    non-text keys do not raise: they are collected in ``problems`` so that they
    are reported together with every other mistake. ``clock_times_as_text`` keeps
    an unquoted ``10:30`` as written (YAML 1.1 reads it as the number 630).
    """
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(_syntax_problem(exc, text)) from exc
    doc = YamlDocument(data=None)
    if root is None:
        return doc
    builder = _Builder(doc, clock_times_as_text)
    try:
        doc.data = builder.build(root, ())
    except yaml.YAMLError as exc:  # e.g. a malformed !!int scalar
        raise YamlSyntaxError(_syntax_problem(exc)) from exc
    return doc


class _Builder:
    """Turns composed nodes into plain dicts, lists and scalars, recording positions."""

    def __init__(self, doc: YamlDocument, clock_times_as_text: bool = False) -> None:
        self._doc = doc
        self._clock_times_as_text = clock_times_as_text
        self._scalars = SafeConstructor()
        self._open: set[int] = set()  # nodes being built: an alias back to one is a cycle
        self._built = 0

    def build(self, node: Node, path: KeyPath) -> Any:
        self._built += 1
        if self._built > MAX_VALUES:
            raise YamlSyntaxError(
                YamlProblem(
                    *_pos(node),
                    None,
                    f"the file expands to more than {MAX_VALUES} values through *aliases"
                    " — write the values out instead of nesting aliases",
                )
            )
        if id(node) in self._open:
            line, col = _pos(node)
            self._doc.problems.append(
                YamlProblem(
                    line,
                    col,
                    path,
                    "an *alias refers to a value that contains it — remove the alias",
                )
            )
            return None
        self._doc.values.setdefault(path, _pos(node))
        if isinstance(node, ScalarNode):
            if self._clock_times_as_text and node.tag == _INT_TAG and ":" in node.value:
                return node.value
            return self._scalars.construct_object(node, deep=True)
        self._open.add(id(node))
        try:
            if isinstance(node, MappingNode):
                return self._mapping(node, path)
            assert isinstance(node, SequenceNode)
            items = []
            for index, child in enumerate(node.value):
                self._doc.keys.setdefault((*path, index), _pos(child))
                items.append(self.build(child, (*path, index)))
            return items
        finally:
            self._open.discard(id(node))

    def _mapping(self, node: MappingNode, path: KeyPath) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        # "<<: *defaults" first, so that keys written in the mapping itself win,
        # as in YAML, together with their positions.
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                for source in self._merge_sources(value_node, path):
                    result.update(self._mapping(source, path))
        first_seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                continue
            key = self._key(key_node, path)
            if key is None:
                continue
            line, col = _pos(key_node)
            if key in first_seen:
                self._doc.problems.append(
                    YamlProblem(
                        line,
                        col,
                        (*path, key),
                        f"duplicate key '{key}' (first written on line {first_seen[key]})"
                        " — remove one of them; YAML would silently keep only the last",
                    )
                )
            first_seen[key] = line
            self._doc.keys[(*path, key)] = (line, col)
            self._doc.values[(*path, key)] = _pos(value_node)
            result[key] = self.build(value_node, (*path, key))
        return result

    def _merge_sources(self, node: Node, path: KeyPath) -> list[MappingNode]:
        if isinstance(node, MappingNode):
            return [node]
        if isinstance(node, SequenceNode):
            return [n for n in node.value if isinstance(n, MappingNode)]
        line, col = _pos(node)
        self._doc.problems.append(
            YamlProblem(line, col, path, "'<<' must name a mapping — write '<<: *anchor'")
        )
        return []

    def _key(self, node: Node, path: KeyPath) -> str | None:
        if isinstance(node, ScalarNode):
            value = self._scalars.construct_object(node)
            if isinstance(value, str):
                return value
            # A key written as 17 or true is still meant as the word the installer typed.
            if isinstance(value, int | float | bool) or value is None:
                return str(node.value)
        line, col = _pos(node)
        self._doc.problems.append(
            YamlProblem(line, col, path, "a key must be a plain word — write 'name: value'")
        )
        return None
