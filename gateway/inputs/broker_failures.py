"""Why a connection to the broker failed, in words, and a log of failures a person can read.

paho's ``on_connect_fail`` is called without the exception, and a refused CONNACK
arrives as a bare reason code; :func:`describe_connect_error` and
:func:`describe_refusal` turn either into one short reason with what to check.

>>> describe_connect_error(ConnectionRefusedError(111, "Connection refused"), "h:1883")
'connection refused: nothing accepts connections on h:1883 (is the broker running, on this port?)'
>>> describe_refusal(134)[:46]
'not authorised: wrong user name or password, o'
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
from collections.abc import Callable

# OpenSSL's X509_V_ERR_* codes for a certificate issued for another name or address.
_HOSTNAME_MISMATCH = 62
_IP_ADDRESS_MISMATCH = 64
_EXPIRED = 10
_NOT_YET_VALID = 9

_NOT_AUTHORISED = (134, 135)  # mosquitto answers a wrong password with 135, others with 134
_REFUSALS = {
    # MQTT v5 CONNACK reason codes (and the v3.1.1 return codes paho maps onto them).
    133: "the broker refuses the client id (is another gateway using the same gateway.id?)",
    136: "the broker is unavailable (it said so; it may be starting or overloaded)",
    137: "the broker is busy; it asked to try later",
    138: "the broker has banned this client",
    140: "the broker refuses the authentication method",
    132: "the broker does not speak MQTT v5 (mosquitto 1.6 or newer does)",
    159: "the broker refuses connections this fast (connection rate exceeded)",
}


def describe_refusal(reason_code: int, name: str = "", *, with_user: bool = True) -> str:
    """The reason for a CONNACK that refused the session, from its reason code.

    >>> describe_refusal(135, with_user=False)
    'not authorised: the broker wants a user name and password (set mqtt.username and the password)'
    >>> describe_refusal(151, "Quota exceeded")
    'the broker refused the connection: Quota exceeded'
    """
    if reason_code in _NOT_AUTHORISED:
        if not with_user:
            return (
                "not authorised: the broker wants a user name and password"
                " (set mqtt.username and the password)"
            )
        return (
            "not authorised: wrong user name or password, or the broker's ACL refuses"
            " this client (check mqtt.username and the password)"
        )
    return _REFUSALS.get(reason_code) or f"the broker refused the connection: {name or reason_code}"


def describe_connect_error(exc: BaseException, where: str, timeout: float | None = None) -> str:
    """The reason a socket connect or TLS handshake to ``where`` raised ``exc``.

    >>> describe_connect_error(TimeoutError("timed out"), "h:8883", 5.0)
    'timeout: no answer from h:8883 within 5 s (is the host up, and is a firewall dropping it?)'
    >>> describe_connect_error(socket.gaierror(-2, "Name or service not known"), "nohost:1883")
    "cannot resolve the broker's host name in nohost:1883: Name or service not known"
    """
    if isinstance(exc, ssl.SSLCertVerificationError):
        return _certificate_reason(exc)
    if isinstance(exc, ssl.SSLError):
        detail = exc.reason or exc.strerror or str(exc)
        if "WRONG_VERSION_NUMBER" in str(detail).upper():
            return (
                f"TLS handshake failed: {where} does not speak TLS"
                " (is this a plain MQTT port? use mqtt:// or the broker's TLS port)"
            )
        return f"TLS handshake failed: {detail}"
    if isinstance(exc, TimeoutError):
        within = f" within {timeout:g} s" if timeout else ""
        return (
            f"timeout: no answer from {where}{within}"
            " (is the host up, and is a firewall dropping it?)"
        )
    if isinstance(exc, ConnectionRefusedError):
        return (
            f"connection refused: nothing accepts connections on {where}"
            " (is the broker running, on this port?)"
        )
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve the broker's host name in {where}: {exc.strerror or exc}"
    if isinstance(exc, ConnectionResetError | BrokenPipeError):
        return (
            f"the broker closed the connection at once ({where}: mqtt:// to a TLS port or"
            " mqtts:// to a plain one? or a listener limit?)"
        )
    return f"{type(exc).__name__}: {exc.strerror or exc}" if isinstance(exc, OSError) else str(exc)


def _certificate_reason(exc: ssl.SSLCertVerificationError) -> str:
    message = exc.verify_message or exc.reason or str(exc)
    if exc.verify_code in (_HOSTNAME_MISMATCH, _IP_ADDRESS_MISMATCH):
        return (
            f"hostname mismatch: {message.rstrip('.')}"
            " (connect by a name the certificate lists, or reissue it)"
        )
    if exc.verify_code in (_EXPIRED, _NOT_YET_VALID):
        return (
            f"certificate not valid now: {message} (check the broker's certificate and the clock)"
        )
    return (
        f"certificate not trusted: {message}"
        " (set mqtt.ca_file to the CA that signed the broker's certificate)"
    )


class FailureLog:
    """Logs connection failures at a rate a person can read: the first one at WARNING
    with its reason, then at most one line per ``every`` seconds with the number of
    attempts since the last line; the link's "connected" line then says how many
    attempts failed (:meth:`connected`).

    >>> now = [0.0]
    >>> log = FailureLog(logging.getLogger("doc"), "mqtt://h", every=60.0, monotonic=lambda: now[0])
    >>> log.failed("connection refused"); now[0] = 30.0; log.failed("connection refused")
    >>> log.lines, log.attempts, log.reason
    (1, 2, 'connection refused')
    >>> now[0] = 61.0; log.failed("connection refused"); log.lines
    2
    >>> log.connected(), log.reason
    (' after 3 failed attempts in 61 s', None)
    """

    def __init__(
        self,
        logger: logging.Logger,
        where: str,
        *,
        every: float = 60.0,
        monotonic: Callable[[], float],
        retry: str = "1-30 s",
    ) -> None:
        self._logger = logger
        self._where = where
        self._every = every
        self._retry = retry
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self.reason: str | None = None  # the latest failure's, until the next session
        self.attempts = 0  # failed attempts since the last session
        self.lines = 0  # lines logged since the last session
        self._since = 0.0
        self._last_line = 0.0
        self._unreported = 0

    def failed(self, reason: str) -> None:
        now = self._monotonic()
        with self._lock:
            first = self.attempts == 0
            self.reason = reason
            self.attempts += 1
            self._unreported += 1
            if first:
                self._since = now
            elif now - self._last_line < self._every:
                return
            count, window = self._unreported, now - self._last_line
            self._unreported, self._last_line = 0, now
            self.lines += 1
            total, since = self.attempts, now - self._since
        if first:
            self._logger.warning(
                "MQTT: cannot connect to %s: %s; retrying every %s",
                self._where,
                reason,
                self._retry,
            )
        else:
            self._logger.warning(
                "MQTT: still cannot connect to %s: %s (%d attempts in the last %.0f s,"
                " %d in %.0f s in all)",
                self._where,
                reason,
                count,
                window,
                total,
                since,
            )

    def connected(self) -> str:
        """The session is up: start afresh. Returns what to add to the "connected" line,
        e.g. ``" after 12 failed attempts in 95 s"``, or ``""`` if nothing failed."""
        now = self._monotonic()
        with self._lock:
            attempts, since = self.attempts, now - self._since
            self.attempts, self.lines, self._unreported, self.reason = 0, 0, 0, None
        if not attempts:
            return ""
        return f" after {attempts} failed attempt{'s' if attempts > 1 else ''} in {since:.0f} s"
