"""Secrets in the installer's YAML: ``${VAR}`` substitution, secret files, file modes.

Secrets reach the gateway three ways, from most to least preferred:

* a secret file (``commerce.token_file``, ``mqtt.password_file``); a relative
  name is looked up in ``$CREDENTIALS_DIRECTORY`` when systemd's
  ``LoadCredential=`` sets it, otherwise in the working directory and then in
  ``credentials/`` beside the config (:func:`secret_file_candidates`);
* the environment, written as ``${SHOP_TOKEN}`` or ``${SHOP_TOKEN:-default}``
  in any scalar value;
* literally in the config file, which then must not be readable by group/others.

Values are held as pydantic ``SecretStr`` and only :func:`secret_value` opens them.

>>> substitute("${HOST:-127.0.0.1}:1883", {})
Substituted(text='127.0.0.1:1883', literal=True)
>>> secret_value(SecretStr("s3cret"))
's3cret'
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from gateway.errors import SecretFileError, SubstitutionError

__all__ = [
    "SecretFileError",
    "Substituted",
    "SubstitutionError",
    "locate_secret_file",
    "read_secret_file",
    "readable_by_others",
    "secret_file_candidates",
    "secret_value",
    "substitute",
]

# ${NAME}, ${NAME:-default}; "$${" writes a literal "${".
_REFERENCE = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$\{")


@dataclass(frozen=True)
class Substituted:
    """Result of :func:`substitute`: the text, and whether any of it came from the file
    itself (literal text or a default) rather than from the environment."""

    text: str
    literal: bool


def secret_value(s: SecretStr | None) -> str | None:
    """The plain text of a secret, for the one place that sends it (never for logs).

    >>> secret_value(None) is None
    True
    """
    return None if s is None else s.get_secret_value()


def substitute(text: str, env: Mapping[str, str]) -> Substituted:
    """Fill ``${VAR}`` / ``${VAR:-default}`` from ``env``.

    As in the shell, the default is used when the variable is unset or empty.
    Raises :class:`SubstitutionError` naming the variable that is missing.
    """
    parts: list[str] = []
    literal = False
    end = 0
    for match in _REFERENCE.finditer(text):
        before = text[end : match.start()]
        literal = literal or bool(before.strip())
        parts.append(before)
        end = match.end()
        if match.group(0) == "$${":
            parts.append("${")
            literal = True
            continue
        name, default = match.group(1), match.group(2)
        if name is None:
            raise SubstitutionError(
                "'${' starts a variable reference that is not closed — write ${NAME} or "
                "${NAME:-default}, or $${ for a literal '${'"
            )
        value = env.get(name)
        if value:
            parts.append(value)
        elif default is not None:
            parts.append(default)
            literal = literal or bool(default)
        elif value is None:
            raise SubstitutionError(
                f"environment variable {name} is not set — export it or use ${{{name}:-default}}"
            )
        else:
            parts.append(value)
    rest = text[end:]
    literal = literal or bool(rest.strip())
    parts.append(rest)
    return Substituted("".join(parts), literal)


def secret_file_candidates(
    name: str, env: Mapping[str, str], config_dir: Path | None = None
) -> list[Path]:
    """Every place a secret file named in the config is looked for, in order.

    The one lookup rule for every command (``run``, ``check``, ``status``, ``queue``):

    * an absolute name (``~`` expanded) is used as written;
    * a relative name is looked up in ``$CREDENTIALS_DIRECTORY`` alone when it is
      set (systemd ``LoadCredential=``);
    * otherwise in the working directory, then in ``credentials/`` beside the
      config file (where ``install-service`` keeps the token).

    >>> [str(p) for p in secret_file_candidates("/etc/t", {})]
    ['/etc/t']
    >>> [str(p) for p in secret_file_candidates("t", {"CREDENTIALS_DIRECTORY": "/run/c"})]
    ['/run/c/t']
    """
    path = Path(name).expanduser()
    if path.is_absolute():
        return [path]
    credentials = env.get("CREDENTIALS_DIRECTORY")
    if credentials:
        return [Path(credentials) / path]
    places = [Path.cwd() / path]
    if config_dir is not None:
        # abspath: '..' folded away, so a message names the place plainly.
        beside = Path(os.path.abspath(config_dir)) / "credentials" / path
        if beside not in places:
            places.append(beside)
    return places


def locate_secret_file(name: str, env: Mapping[str, str], config_dir: Path | None = None) -> Path:
    """Where a secret file named in the config is (see :func:`secret_file_candidates`).

    Raises :class:`SecretFileError` naming every path tried when none exists.

    >>> str(locate_secret_file("shop-token", {"CREDENTIALS_DIRECTORY": "/run/credentials/rg"}))
    '/run/credentials/rg/shop-token'
    """
    places = secret_file_candidates(name, env, config_dir)
    if len(places) == 1:
        # read_secret_file names the one path if it is missing.
        return places[0]
    for place in places:
        if place.exists():
            return place
    raise SecretFileError(
        f"'{name}' was not found: tried {' and '.join(map(str, places))} — create it in one "
        "of them, or give its absolute path"
    )


def read_secret_file(path: Path) -> str:
    """The secret in ``path`` with one trailing newline removed (``echo`` adds one)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise SecretFileError(f"{path} does not exist — create it or fix the path") from exc
    except PermissionError as exc:
        raise SecretFileError(
            f"{path} is not readable by this user — give the service user read access"
        ) from exc
    except IsADirectoryError as exc:
        raise SecretFileError(f"{path} is a directory — name the file inside it") from exc
    except UnicodeDecodeError as exc:
        raise SecretFileError(f"{path} is not UTF-8 text — store the secret as text") from exc
    except OSError as exc:
        raise SecretFileError(f"{path} cannot be read ({exc.strerror}) — check the path") from exc
    if text.endswith("\n"):
        text = text[:-1]
        if text.endswith("\r"):
            text = text[:-1]
    if not text:
        raise SecretFileError(f"{path} is empty — write the secret into it")
    return text


def readable_by_others(path: Path) -> int | None:
    """The file's permission bits when group or others may read it, else None."""
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return None
    return mode if mode & (stat.S_IRGRP | stat.S_IROTH) else None
