"""Every error the gateway raises on purpose, in one tree under :class:`GatewayError`.

Lower-level errors (PyYAML, ssl, OSError, sqlite3, httpx, paho, gpiozero) are
mapped to these where they happen, with ``raise ... from exc``, so that callers
catch ours alone and ``reorder-gateway`` catches the root once: a
``GatewayError`` is a problem with a message an installer can act on, never a
traceback. Where a built-in base helps callers, it is mixed in (a
``ConfigError`` is also a ``ValueError``).

Exception tree::

    GatewayError                        the root: the gateway cannot do what was asked
    ├── ConfigError (ValueError)        the configuration cannot be used; ``messages``
    │                                   holds one ``PATH:LINE:COL: key: what — fix`` each
    ├── YamlSyntaxError (ValueError)    the text is not YAML; ``problem`` has line and column
    ├── SubstitutionError (ValueError)  a ``${VAR}`` reference cannot be filled in
    ├── SecretFileError (ValueError)    a secret file cannot be read or is empty
    ├── PasswordFileError               the web page's password hash file is missing or bad
    ├── TlsFileError (ValueError)       a CA, certificate or key file cannot be loaded
    ├── MqttError                       the MQTT link
    │   ├── BrokerUrlError (ValueError) ``mqtt.url`` is not mqtt://host[:port] or mqtts://…
    │   ├── TopicFilterError (ValueError) a subscription is not a valid MQTT topic filter
    │   ├── TlsSetupError               the link's CA, certificate or key could not be loaded
    │   └── BrokerUnavailableError      ``listen`` cannot reach the broker, or it refused it
    ├── GpioError                       buttons and LEDs on the Pi's header
    │   ├── PinFactoryUnavailableError  the pin factory cannot load here (says how to fix it)
    │   ├── PinClaimError               a button or LED pin could not be claimed
    │   └── DriveRefusedError           demo driving of real pins, an unknown pin or action
    ├── CommerceError                   talking to the shop
    │   ├── CommerceConfigError         base_url, token file or CA file cannot be used
    │   ├── TransportError              no HTTP answer at all; the shop counts as unreachable
    │   │   ├── ShopUnreachableError    connection refused, DNS, TLS handshake, connect timeout
    │   │   ├── ShopTimeoutError        connected, but no (complete) answer in time
    │   │   └── ConnectionDroppedError  the connection broke mid-exchange (answer lost)
    │   ├── ShopStatusError             the shop answered with an error status
    │   │   ├── ShopBusyError           408, 409, 429, 5xx: try again later (retry_after)
    │   │   ├── NotAuthorizedError      401, 403: credentials are wrong; try again slowly
    │   │   ├── ShopRedirectError       3xx: base_url points elsewhere (never followed)
    │   │   └── RequestRefusedError     400, 404, 422 and other 4xx: never going to work
    │   ├── ShopRefusedStepError        a GraphQL shop's error result for one step
    │   └── UnreadableResponseError     a success status whose body we cannot use
    ├── OutboxError                     the state database (outbox) cannot be used
    │   ├── OutboxUnavailableError      it cannot be opened, read or written just now
    │   ├── OutboxMissingError          there is none in the state directory (never ran there)
    │   └── SchemaTooNewError           a newer gateway wrote it; its meaning is not guessed
    └── InstallError                    the systemd service could not be installed or removed

>>> issubclass(ShopTimeoutError, TransportError), issubclass(ConfigError, ValueError)
(True, True)
>>> str(ConfigError(["gw.yaml:3:5: gateway.id: is required — add it"]))
'gw.yaml:3:5: gateway.id: is required — add it'
"""

from __future__ import annotations

from typing import Protocol

__all__ = [
    "BrokerUnavailableError",
    "BrokerUrlError",
    "CommerceConfigError",
    "CommerceError",
    "ConfigError",
    "ConnectionDroppedError",
    "DriveRefusedError",
    "GatewayError",
    "GpioError",
    "InstallError",
    "MqttError",
    "NotAuthorizedError",
    "OutboxError",
    "OutboxMissingError",
    "OutboxUnavailableError",
    "PasswordFileError",
    "PinClaimError",
    "PinFactoryUnavailableError",
    "RequestRefusedError",
    "SchemaTooNewError",
    "SecretFileError",
    "ShopBusyError",
    "ShopRedirectError",
    "ShopRefusedStepError",
    "ShopStatusError",
    "ShopTimeoutError",
    "ShopUnreachableError",
    "SubstitutionError",
    "TlsFileError",
    "TlsSetupError",
    "TopicFilterError",
    "TransportError",
    "UnreadableResponseError",
    "YamlSyntaxError",
]


class GatewayError(Exception):
    """The root of every error the gateway raises on purpose.

    >>> try:
    ...     raise PinClaimError("buttons[0]: gpio 17: pin in use")
    ... except GatewayError as exc:
    ...     print(exc)
    buttons[0]: gpio 17: pin in use
    """


# --------------------------------------------------------------------------- configuration


class ConfigError(GatewayError, ValueError):
    """The configuration cannot be used. ``messages`` holds one formatted line per mistake.

    >>> ConfigError(["a.yaml:1:1: the file is empty", "a.yaml: 1 problem"]).messages[0]
    'a.yaml:1:1: the file is empty'
    """

    def __init__(self, messages: list[str]) -> None:
        super().__init__("\n".join(messages))
        self.messages = messages


class YamlPosition(Protocol):
    """Where in a YAML text something is wrong, and what (see ``config.positions.YamlProblem``)."""

    @property
    def line(self) -> int: ...

    @property
    def col(self) -> int: ...

    @property
    def text(self) -> str: ...


class YamlSyntaxError(GatewayError, ValueError):
    """The text is not YAML: ``problem`` has the position and a hint how to fix it."""

    def __init__(self, problem: YamlPosition) -> None:
        super().__init__(problem.text)
        self.problem = problem


class SubstitutionError(GatewayError, ValueError):
    """A ``${...}`` reference cannot be filled in."""


class SecretFileError(GatewayError, ValueError):
    """A secret file cannot be read or is empty."""


class PasswordFileError(GatewayError):
    """The web page's password file is missing, unreadable or holds no argon2 hash."""


class TlsFileError(GatewayError, ValueError):
    """A CA, certificate or key file cannot be loaded (missing, not PEM, key and cert differ).

    ``setting`` names the key that gave the file (``ca_file``, ``cert_file``, ``key_file``).

    >>> TlsFileError("ca_file", "ca.pem holds no PEM certificate").setting
    'ca_file'
    """

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(message)
        self.setting = setting


# --------------------------------------------------------------------------- MQTT


class MqttError(GatewayError):
    """Base class of the MQTT link's errors."""


class BrokerUrlError(MqttError, ValueError):
    """``mqtt.url`` is not ``mqtt://host[:port]`` or ``mqtts://host[:port]``."""


class TopicFilterError(MqttError, ValueError):
    """A subscription is not a valid MQTT topic filter."""


class TlsSetupError(MqttError):
    """The CA, certificate or key file could not be loaded."""


class BrokerUnavailableError(MqttError):
    """``reorder-gateway listen`` could not reach the broker, or the broker refused it
    (the daemon never gives up: it retries and reports instead)."""


# --------------------------------------------------------------------------- GPIO


class GpioError(GatewayError):
    """Base class of the GPIO buttons' and LEDs' errors."""


class PinFactoryUnavailableError(GpioError):
    """The requested gpiozero pin factory cannot be loaded on this machine."""


class PinClaimError(GpioError):
    """A configured button or LED pin could not be claimed."""


class DriveRefusedError(GpioError):
    """Demo driving was refused: real pins, an unknown pin, or an unknown action."""


# --------------------------------------------------------------------------- commerce


class CommerceError(GatewayError):
    """Something went wrong talking to the shop (base class).

    Adapters raise these where httpx, ssl or OSError fail, then classify them into
    results (:mod:`gateway.commerce.base`): the sender never sees an httpx exception.
    """


class CommerceConfigError(CommerceError):
    """The commerce settings cannot be used (missing token file, bad CA file...)."""


class TransportError(CommerceError):
    """No HTTP answer arrived."""


class ShopUnreachableError(TransportError):
    """The connection could not be made."""


class ShopTimeoutError(TransportError):
    """The shop did not answer within the configured timeout."""


class ConnectionDroppedError(TransportError):
    """The connection broke before the whole answer arrived."""


class ShopStatusError(CommerceError):
    """The shop answered with an error status.

    ``message`` is the shop's own ``error.message`` when it sent one.

    >>> busy = ShopBusyError(429, "slow down", retry_after=30.0)
    >>> str(busy), busy.retry_after
    ('HTTP 429: slow down', 30.0)
    """

    def __init__(
        self, status: int, message: str, code: str | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message
        self.code = code
        self.retry_after = retry_after


class ShopBusyError(ShopStatusError):
    """A temporary refusal: overloaded, rate limited, or the same key still in progress."""


class NotAuthorizedError(ShopStatusError):
    """The token was refused."""


class ShopRedirectError(ShopStatusError):
    """The shop redirected us: a configuration problem, never followed or retried fast."""


class RequestRefusedError(ShopStatusError):
    """The request itself is wrong (unknown SKU, invalid body, key reused)."""


class ShopRefusedStepError(CommerceError):
    """A GraphQL shop answered one step with an error result (``code``: its errorCode)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


class UnreadableResponseError(CommerceError):
    """A success status with a body we cannot read (HTML, truncated, no order id)."""


# --------------------------------------------------------------------------- outbox


class OutboxError(GatewayError):
    """The outbox cannot be used (base class)."""


class OutboxUnavailableError(OutboxError):
    """The outbox cannot be opened, read or written just now (disk, lock, corruption).

    ``sqlite3.Error`` is mapped to this inside the outbox and never leaks past it.
    """


class OutboxMissingError(OutboxError):
    """There is no outbox in the state directory (the gateway has not run there)."""


class SchemaTooNewError(OutboxError):
    """The database was written by a newer gateway; refusing to guess its meaning."""


# --------------------------------------------------------------------------- install


class InstallError(GatewayError):
    """The service could not be installed or removed."""
