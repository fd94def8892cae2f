"""Every mistake in the installer's YAML, collected as ``PATH:LINE:COL: key: what — fix``.

Each loading pass (:mod:`gateway.config.load`, :mod:`gateway.config.relations`)
adds to one :class:`ConfigReport` instead of stopping at the first mistake, so
that the installer sees them all at once, in file order.

>>> from gateway.config.positions import parse_yaml
>>> report = ConfigReport("gw.yaml", parse_yaml("gateway:\\n  id: 7\\n"))
>>> report.value_error(("gateway", "id"), "expected text — put the value in quotes")
>>> report.raise_if_errors()
Traceback (most recent call last):
...
gateway.errors.ConfigError: gw.yaml:2:7: gateway.id: expected text — put the value in quotes
"""

from __future__ import annotations

from gateway.config.positions import KeyPath, YamlDocument
from gateway.errors import ConfigError

__all__ = ["ConfigReport", "format_path"]


def format_path(path: KeyPath) -> str:
    """``("buttons", 1, "gpio")`` -> ``buttons[1].gpio``.

    >>> format_path(("products", "coffee", "quantity"))
    'products.coffee.quantity'
    """
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


class ConfigReport:
    """Collects errors and warnings about one file as formatted, located lines.

    >>> report = ConfigReport("gw.yaml")
    >>> report.error_at(1, 1, None, "the file is empty — start from config/gateway.example.yaml")
    >>> report.errors[0][2]
    'gw.yaml:1:1: the file is empty — start from config/gateway.example.yaml'
    """

    def __init__(self, name: str, doc: YamlDocument | None = None) -> None:
        self.name = name
        self.doc = doc if doc is not None else YamlDocument(data=None)
        self.errors: list[tuple[int, int, str]] = []
        self.warnings: list[tuple[int, int, str]] = []
        # Values already reported (e.g. an unset ${VAR}): validating their raw text
        # would only add a second, misleading error at the same spot.
        self.reported: set[KeyPath] = set()

    def error_at(self, line: int, col: int, path: KeyPath | None, text: str) -> None:
        where = f"{format_path(path)}: " if path else ""
        self.errors.append((line, col, f"{self.name}:{line}:{col}: {where}{text}"))

    def key_error(self, path: KeyPath, text: str) -> None:
        self.error_at(*self.doc.key_at(path), path, text)

    def value_error(self, path: KeyPath, text: str) -> None:
        self.error_at(*self.doc.value_at(path), path, text)

    def warn_value(self, path: KeyPath, text: str) -> None:
        line, col = self.doc.value_at(path)
        message = f"{self.name}:{line}:{col}: warning: {format_path(path)}: {text}"
        self.warnings.append((line, col, message))

    def raise_if_errors(self) -> None:
        """Raise :class:`~gateway.errors.ConfigError` with every error, in file order."""
        if self.errors:
            ordered = sorted(set(self.errors))
            raise ConfigError([message for _, _, message in ordered])
