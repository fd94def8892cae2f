"""Load the installer's YAML: every mistake at its line, secrets filled in, ``check``.

Loading runs in passes, and every pass collects instead of stopping, so that an
installer sees all mistakes at once, each as
``PATH:LINE:COL: key.path: what is wrong — how to fix it``:

1. read and compose the YAML, keeping positions (:mod:`gateway.config.positions`);
2. fill ``${VAR}`` references and secret files in (:mod:`gateway.config.secrets`), and
   load every CA, certificate and key file as the connections will
   (:mod:`gateway.config.files`);
3. validate each value with the pydantic models (:mod:`gateway.config.models`), turning
   pydantic's messages into plain installer English;
4. check how values relate: products that exist, pins used once, unique names,
   a wired *or* a wireless button, the options a device profile needs.

>>> loaded = load_config("config/demo.yaml", env={})       # doctest: +SKIP
>>> loaded.config.gateway.id                               # doctest: +SKIP
'demo'
"""

from __future__ import annotations

import os
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from pydantic import BaseModel, ValidationError

from gateway.config.files import load_tls_files, read_secret_files
from gateway.config.models import Config, config_path, is_shop_secret
from gateway.config.positions import KeyPath, parse_yaml
from gateway.config.relations import check_product_fields, check_relations
from gateway.config.report import ConfigReport, format_path
from gateway.config.secrets import readable_by_others, secret_value, substitute
from gateway.config.suggest import suggest
from gateway.config.summary import format_duration, summarize
from gateway.errors import ConfigError, SubstitutionError, YamlSyntaxError

__all__ = [
    "ConfigError",
    "LoadedConfig",
    "check_command",
    "format_duration",
    "format_path",
    "load_config",
    "secret_value",
    "summarize",
]

# Values never echoed in any message, whatever is wrong with them.
SECRET_PATHS: frozenset[KeyPath] = frozenset(
    {("commerce", "token"), ("mqtt", "password"), ("mqtt", "username")}
)
# Secrets whose presence as literal text makes the file itself sensitive.
_FILE_SECRETS: tuple[KeyPath, ...] = (("commerce", "token"), ("mqtt", "password"))


@dataclass(frozen=True)
class LoadedConfig:
    """A validated configuration, the file it came from, and warnings worth showing.

    >>> loaded = load_config("config/demo.yaml", env={})       # doctest: +SKIP
    >>> loaded.warnings                                        # doctest: +SKIP
    []
    """

    config: Config
    path: Path
    warnings: list[str] = field(default_factory=list)


def load_config(path: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> LoadedConfig:
    """Read, check and resolve the configuration at ``path``.

    ``env`` replaces ``os.environ`` for ``${VAR}`` references and
    ``$CREDENTIALS_DIRECTORY`` (tests pass their own). Raises
    :class:`ConfigError` listing every mistake found.
    """
    env = os.environ if env is None else env
    file = Path(path)
    name = os.fspath(path)
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{name}: cannot read: not UTF-8 text — save it as UTF-8"]) from exc
    except OSError as exc:
        raise ConfigError([f"{name}: cannot read: {exc.strerror or exc}"]) from exc

    report = ConfigReport(name)
    try:
        report.doc = parse_yaml(text)
    except YamlSyntaxError as exc:
        report.error_at(exc.problem.line, exc.problem.col, None, exc.problem.text)
        report.raise_if_errors()
    doc = report.doc
    if doc.data is None:
        report.error_at(1, 1, None, "the file is empty — start from config/gateway.example.yaml")
    elif not isinstance(doc.data, dict):
        report.error_at(
            *doc.value_at(()),
            None,
            f"the top level must be sections such as 'gateway:', 'commerce:' and "
            f"'products:', not {describe(doc.data)} — start from config/gateway.example.yaml",
        )
    report.raise_if_errors()
    for problem in doc.problems:
        report.error_at(problem.line, problem.col, problem.path, problem.text)

    literal_secrets = _substitute_all(report, doc.data, (), env)
    read_secret_files(report, doc.data, env, file.parent)
    load_tls_files(report, doc.data)
    check_product_fields(report, doc.data)
    config = _validate(report, doc.data)
    check_relations(report, doc.data)
    report.raise_if_errors()
    assert config is not None

    mode = readable_by_others(file)
    for secret in literal_secrets:
        if mode is not None:
            report.warn_value(
                secret,
                f"this file holds a secret and is readable by group/others (mode {mode:04o}) "
                f"— run 'chmod 600 {name}', or move the secret to a file or the environment",
            )
    warnings = [message for _, _, message in sorted(report.warnings)]
    return LoadedConfig(config=config, path=file, warnings=warnings)


def _substitute_all(
    report: ConfigReport, node: Any, path: KeyPath, env: Mapping[str, str]
) -> list[KeyPath]:
    """Fill ``${VAR}`` in every scalar, in place. Returns secrets written literally."""
    literal: list[KeyPath] = []
    if isinstance(node, dict | list):
        items = list(node.items()) if isinstance(node, dict) else list(enumerate(node))
        for key, child in items:
            child_path = (*path, key)
            if isinstance(child, str):
                try:
                    result = substitute(child, env)
                except SubstitutionError as exc:
                    report.value_error(child_path, str(exc))
                    report.reported.add(child_path)
                    continue
                node[key] = result.text
                secret = child_path in _FILE_SECRETS or is_shop_secret(child_path)
                if secret and result.literal and result.text:
                    literal.append(child_path)
            else:
                literal.extend(_substitute_all(report, child, child_path, env))
    return literal


def _validate(report: ConfigReport, data: dict[str, Any]) -> Config | None:
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            _translate(report, error)
    return None


def _translate(report: ConfigReport, error: Any) -> None:
    """One pydantic error -> one installer-English line at the right position."""
    loc: KeyPath = config_path(error["loc"])
    if loc in report.reported:
        return
    on_key = "[key]" in error["loc"]
    kind: str = error["type"]
    if kind == "missing":
        report.error_at(*report.doc.key_at(loc[:-1]), loc, _missing(loc))
        return
    if kind == "extra_forbidden":
        report.key_error(loc, _unknown_key(loc))
        return
    secret = any(loc[: len(s)] == s for s in SECRET_PATHS) or is_shop_secret(loc)
    text = describe_problem(kind, error, loc, secret)
    if on_key:
        report.key_error(loc, text)
    else:
        report.value_error(loc, text)


_EXAMPLES = {
    "gateway": "a 'gateway:' section with 'id: kitchen'",
    "commerce": "a 'commerce:' section with 'base_url: https://shop.example/api/v1'",
    "products": "a 'products:' section, e.g. 'coffee: {sku: LAVAZZA-1KG}'",
    "id": "id: kitchen",
    "base_url": "base_url: https://shop.example/api/v1",
    "sku": "sku: LAVAZZA-1KG",
    "name": "name: pantry",
    "product": "product: coffee (a name under products:)",
    "mqtt": "mqtt: sensors/coffee-scale/state",
    "reorder_below": "reorder_below: 250",
    "rearm_above": "rearm_above: 800",
}


def _missing(loc: KeyPath) -> str:
    key = str(loc[-1])
    return f"is required — add {_EXAMPLES.get(key, f'{key}:')}"


def _model_at(loc: KeyPath) -> type[BaseModel] | None:
    """The model class whose fields are valid at ``loc`` (for 'did you mean')."""
    current: Any = Config
    parts = list(loc)
    # Until the path is used up and the type unwrapped (``X | None``, ``Annotated``).
    while parts or typing.get_origin(current) in (typing.Union, types.UnionType, typing.Annotated):
        if isinstance(current, type) and issubclass(current, BaseModel):
            part = parts.pop(0)
            info = current.model_fields.get(str(part))
            if info is None:
                return None
            current = info.annotation
            continue
        origin = typing.get_origin(current)
        args = typing.get_args(current)
        if origin in (typing.Union, types.UnionType):
            current = next(a for a in args if a is not type(None))
        elif origin is typing.Annotated:
            current = args[0]
        elif origin in (list, dict):
            parts.pop(0)
            current = args[-1]
        else:
            return None
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _unknown_key(loc: KeyPath) -> str:
    key = str(loc[-1])
    model = _model_at(loc[:-1])
    valid = sorted(model.model_fields) if model else []
    hint = suggest(key, valid, otherwise="valid keys here: " + ", ".join(valid))
    return f"unknown key '{key}' — {hint}"


def describe_problem(kind: str, error: Any, loc: KeyPath, secret: bool) -> str:
    """Plain-English text for one pydantic error type (secrets are never echoed)."""
    ctx = error.get("ctx") or {}
    got = "" if secret else f", got {describe(error.get('input'))}"
    key = str(loc[-1]) if loc else ""
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return f"expected a whole number{got} — write e.g. {key}: 2"
    if kind in ("float_type", "float_parsing", "finite_number"):
        return f"expected a number{got} — write e.g. {key}: 250"
    if kind in ("bool_type", "bool_parsing"):
        return f"expected true or false{got} — write {key}: true or {key}: false"
    if kind == "string_type":
        if secret:
            return "expected text — put the secret in quotes"
        return f"expected text{got} — put the value in quotes"
    if kind == "string_too_short":
        return "must not be empty — write a value or remove the key"
    if kind == "string_too_long":
        return f"is too long — at most {ctx.get('max_length')} characters"
    if kind == "string_pattern_mismatch":
        return (
            f"'{error.get('input')}' is not a valid name — use up to 64 letters, digits, "
            "'-' or '_', starting with a letter or digit (names appear in MQTT topics)"
        )
    if kind in ("greater_than_equal", "greater_than"):
        bound = ctx.get("ge", ctx.get("gt"))
        word = "at least" if kind == "greater_than_equal" else "more than"
        return f"must be {word} {bound}{got}"
    if kind in ("less_than_equal", "less_than"):
        bound = ctx.get("le", ctx.get("lt"))
        word = "at most" if kind == "less_than_equal" else "less than"
        return f"must be {word} {bound}{got}"
    if kind == "literal_error":
        valid = str(ctx.get("expected", "")).replace("'", "")
        return f"unknown {key} '{error.get('input')}' — valid {key}s: {valid}"
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return f"expected a mapping of 'key: value' lines{got}"
    if kind == "list_type":
        return f"expected a list of entries starting with '- '{got}"
    if kind == "too_short":
        return f"needs at least one entry — add {_EXAMPLES.get(key, 'one')}"
    message = str(error["msg"])
    return (message[:1].lower() + message[1:]) if not secret else "is not valid"


def check_command(
    path: str, stdout: TextIO, stderr: TextIO, env: Mapping[str, str] | None = None
) -> int:
    """``reorder-gateway check``: warnings and a summary (0), or every error (2)."""
    try:
        loaded = load_config(path, env)
    except ConfigError as exc:
        for message in exc.messages:
            print(message, file=stderr)
        count = len(exc.messages)
        print(f"{path}: {count} problem{'s' if count != 1 else ''} found", file=stderr)
        return 2
    for warning in loaded.warnings:
        print(warning, file=stderr)
    print(summarize(loaded.config), file=stdout)
    print(f"{path}: configuration is valid", file=stdout)
    return 0


def describe(value: object) -> str:
    """A short, safe rendering of a (non-secret) value for messages."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "nothing (an empty value)"
    if isinstance(value, str):
        return repr(value if len(value) <= 40 else value[:37] + "...")
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__}"
