"""Who may use the household's page: the password, sessions, CSRF tokens, login limits.

The password is kept as an argon2id hash (argon2-cffi's ``PasswordHasher``) in a
0600 file written by ``reorder-gateway web-password``. A session is a random token
in an HttpOnly, SameSite=Strict cookie; each carries its own CSRF token that every
POST must send back. Failed logins are counted per client address: too many within
a minute and the client waits (HTTP 429 with ``Retry-After``).

Time comes in as arguments (``now``, monotonic seconds): nothing here reads the clock.

>>> sessions = Sessions(lifetime=60.0)
>>> s = sessions.open(now=0.0)
>>> sessions.get(s.token, now=30.0) is s, sessions.get(s.token, now=61.0)
(True, None)
"""

from __future__ import annotations

import hmac
import secrets
import threading
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from gateway.errors import PasswordFileError
from gateway.outputs.files import write_private

__all__ = ["LoginLimiter", "PasswordFileError", "Sessions", "hash_password"]

MIN_PASSWORD = 8
# argon2id at OWASP's low-memory setting (m = 7 MiB, t = 5, p = 1): as hard to guess
# as the library's default (m = 64 MiB, t = 3, p = 4), but each login no longer
# lifts the gateway's peak memory by 64 MiB on a Raspberry Pi (the 60 MB goal of
# bench/results.md). A stored hash keeps the costs it was made with.
_HASHER = PasswordHasher(time_cost=5, memory_cost=7168, parallelism=1)


def hash_password(password: str) -> str:
    """An argon2id hash of ``password``; refuses one too short to resist guessing.

    >>> hash_password("correct horse").startswith("$argon2id$")
    True
    """
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"the password needs at least {MIN_PASSWORD} characters")
    return _HASHER.hash(password)


def write_password_file(path: Path, password: str) -> None:
    """Store the hash (never the password), private to the service user (0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_private(path, (hash_password(password) + "\n").encode())


def read_password_file(path: Path) -> str:
    """The stored hash; a clear error with the fix when there is none."""
    try:
        stored = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise PasswordFileError(
            f"{path} does not exist — set the page's password: reorder-gateway web-password"
        ) from None
    except OSError as exc:
        raise PasswordFileError(f"{path} cannot be read ({exc.strerror or exc})") from exc
    if not stored.startswith("$argon2"):
        raise PasswordFileError(
            f"{path} holds no argon2 hash — write it anew with: reorder-gateway web-password"
        )
    return stored


def password_matches(stored_hash: str, password: str) -> bool:
    """True when ``password`` is the one hashed in ``stored_hash``.

    >>> h = hash_password("correct horse")
    >>> password_matches(h, "correct horse"), password_matches(h, "wrong horse")
    (True, False)
    """
    try:
        return _HASHER.verify(stored_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


@dataclass(frozen=True)
class Session:
    """One logged-in browser: its cookie token, its CSRF token, when it ends."""

    token: str
    csrf: str
    expires_at: float

    def csrf_ok(self, sent: str | None) -> bool:
        """Compared in constant time: a timing difference must not leak the token."""
        return sent is not None and hmac.compare_digest(sent.encode(), self.csrf.encode())


class Sessions:
    """Open sessions by cookie token, each ending ``lifetime`` seconds after login.

    Held in memory only: a restart of the gateway logs everyone out, which is the safe
    side. Called from the server's request threads, hence the lock.

    >>> sessions = Sessions(lifetime=60.0)
    >>> s = sessions.open(now=0.0)
    >>> sessions.close(s.token); sessions.get(s.token, now=1.0) is None
    True
    """

    MAX_OPEN = 64  # a household has a few phones; the oldest goes when more log in

    def __init__(self, lifetime: float) -> None:
        self._lifetime = lifetime
        self._open: dict[str, Session] = {}
        self._lock = threading.Lock()

    def open(self, now: float) -> Session:
        session = Session(
            token=secrets.token_urlsafe(32),
            csrf=secrets.token_urlsafe(32),
            expires_at=now + self._lifetime,
        )
        with self._lock:
            self._forget_expired(now)
            while len(self._open) >= self.MAX_OPEN:
                oldest = min(self._open.values(), key=lambda s: s.expires_at)
                del self._open[oldest.token]
            self._open[session.token] = session
        return session

    def get(self, token: str | None, now: float) -> Session | None:
        if not token:
            return None
        with self._lock:
            session = self._open.get(token)
            if session is None:
                return None
            if now >= session.expires_at:
                del self._open[token]
                return None
            return session

    def close(self, token: str | None) -> None:
        with self._lock:
            if token:
                self._open.pop(token, None)

    def _forget_expired(self, now: float) -> None:
        for token in [t for t, s in self._open.items() if now >= s.expires_at]:
            del self._open[token]


class LoginLimiter:
    """At most ``failures`` failed logins per client within ``window`` seconds.

    >>> limiter = LoginLimiter(failures=2, window=60.0)
    >>> limiter.failed("10.0.0.5", now=0.0); limiter.failed("10.0.0.5", now=1.0)
    >>> limiter.retry_after("10.0.0.5", now=2.0), limiter.retry_after("10.0.0.6", now=2.0)
    (58, None)
    """

    MAX_CLIENTS = 1024  # bounded memory whatever a scan of addresses does

    def __init__(self, failures: int = 5, window: float = 60.0) -> None:
        self._failures = failures
        self._window = window
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, client: str, now: float) -> int | None:
        """Whole seconds the client must wait before trying again, or None."""
        with self._lock:
            times = self._recent(client, now)
            if len(times) < self._failures:
                return None
            return max(1, int(times[0] + self._window - now + 0.999))

    def failed(self, client: str, now: float) -> None:
        with self._lock:
            if client not in self._seen and len(self._seen) >= self.MAX_CLIENTS:
                self._seen.pop(next(iter(self._seen)))
            times = self._seen.setdefault(client, deque(maxlen=self._failures))
            times.append(now)

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._seen.pop(client, None)

    def _recent(self, client: str, now: float) -> deque[float]:
        times = self._seen.get(client, deque())
        while times and now - times[0] >= self._window:
            times.popleft()
        return times
