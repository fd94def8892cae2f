"""Files the gateway writes for itself: private, atomic, durable.

Every file the gateway keeps beside its database (``status.json``,
``homeassistant.json``) is written the same way, so a reader never sees half a
file, a power cut never leaves an empty one, and nobody but the gateway's user
can read it (it names open orders and devices).

>>> import tempfile
>>> from pathlib import Path
>>> path = Path(tempfile.mkdtemp()) / "status.json"
>>> write_private(path, b"{}")
>>> path.read_bytes(), oct(path.stat().st_mode & 0o777)
(b'{}', '0o600')
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def write_private(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``: a 0600 temporary file beside it, fsynced, renamed
    over ``path``, then the directory fsynced so the rename itself survives a power cut.

    Raises ``OSError`` (the directory is missing, not writable, the disk is full); the
    temporary file is removed then, and the old ``path`` stays as it was.
    """
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        # O_CREAT keeps the mode of a leftover temporary file: make sure of it.
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        tmp.replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
