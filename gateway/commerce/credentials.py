"""A backend's credential (token, secret), from the config or from a file that is
re-read when it changes, so that fixing a wrong token on disk (or rotating a
secret) takes effect without a restart. Never logged; reading errors become
:class:`~gateway.errors.CommerceConfigError` naming the setting, not the value.

>>> from pathlib import Path
>>> import tempfile
>>> with tempfile.TemporaryDirectory() as d:
...     f = Path(d) / "token"
...     _ = f.write_text("first\\n")
...     token = Credential(None, str(f), setting="shops.family", key="token")
...     before = token.value()
...     _ = f.write_text("second, a longer one\\n")
...     before, token.value()
('first', 'second, a longer one')
"""

from __future__ import annotations

import threading
from pathlib import Path

from pydantic import SecretStr

from gateway.errors import CommerceConfigError

__all__ = ["Credential"]


class Credential:
    """``fixed`` from the YAML (or the environment), else ``file``; with
    ``required`` a missing one is a configuration error, else :meth:`value` is None."""

    def __init__(
        self,
        fixed: SecretStr | None,
        file: str | None,
        *,
        setting: str,
        key: str,
        required: bool = True,
    ) -> None:
        self._fixed = fixed.get_secret_value() if fixed else None
        self._file = Path(file) if file else None
        self._setting = setting
        self._key = key
        self._required = required
        self._cached: tuple[int, str] | None = None
        self._lock = threading.Lock()

    def value(self) -> str | None:
        if self._file is None:
            if not self._fixed and self._required:
                raise CommerceConfigError(
                    f"{self._setting} has no {self._key} — set {self._setting}.{self._key}_file"
                )
            return self._fixed
        with self._lock:
            try:
                mtime = self._file.stat().st_mtime_ns
                if self._cached is None or self._cached[0] != mtime:
                    self._cached = (mtime, self._file.read_text(encoding="utf-8").strip())
            except (OSError, UnicodeDecodeError) as exc:
                raise CommerceConfigError(
                    f"cannot read {self._setting}.{self._key}_file {self._file}: "
                    f"{exc.__class__.__name__}"
                ) from exc
            return self._cached[1]

    def required(self) -> str:
        """The value, which must exist (a required credential never gives None)."""
        value = self.value()
        if value is None:
            raise CommerceConfigError(
                f"{self._setting} has no {self._key} — set {self._setting}.{self._key}_file"
            )
        return value
