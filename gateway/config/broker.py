"""The one parser of ``mqtt.url``: the config's validator, ``check``'s summary and the
MQTT link all read the broker's address through :func:`parse_broker_url`, so a URL
``check`` accepts is never refused at start.

>>> parse_broker_url("mqtts://broker.lan")
BrokerAddress(host='broker.lan', port=8883, tls=True)
>>> str(parse_broker_url("mqtt://127.0.0.1"))
'mqtt://127.0.0.1:1883'
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from gateway.errors import BrokerUrlError

__all__ = ["BrokerAddress", "BrokerUrlError", "parse_broker_url"]

PLAIN_PORT = 1883
TLS_PORT = 8883


@dataclass(frozen=True)
class BrokerAddress:
    """Where the broker is, parsed from ``mqtt.url``.

    >>> BrokerAddress("broker.lan", 1883, tls=False)
    BrokerAddress(host='broker.lan', port=1883, tls=False)
    """

    host: str
    port: int
    tls: bool

    def __str__(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


def parse_broker_url(url: str) -> BrokerAddress:
    """Parse ``mqtt://host[:port]`` (1883) or ``mqtts://host[:port]`` (8883, TLS).

    Raises :class:`~gateway.errors.BrokerUrlError` (a ``ValueError``) saying how
    to write the URL; a password written into it is never echoed.

    >>> parse_broker_url("mqtt://gw:hunter2@broker.lan")
    Traceback (most recent call last):
    ...
    gateway.errors.BrokerUrlError: the URL carries credentials — put them in mqtt.username ...
    """
    # Checked first, so that no later message echoes a password written into the URL.
    if "@" in urlsplit(url).netloc:
        raise BrokerUrlError(
            "the URL carries credentials — put them in mqtt.username and mqtt.password_file"
        )
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in ("mqtt", "mqtts"):
        raise BrokerUrlError(
            f"'{url}' is not a broker URL — write mqtt://HOST:1883, or mqtts://HOST:8883 for TLS"
        )
    if not parts.hostname:
        raise BrokerUrlError(f"'{url}' names no host — write {scheme}://HOST:PORT")
    try:
        port = parts.port  # urlsplit checks the port only when asked
    except ValueError as exc:
        raise BrokerUrlError(
            f"'{url}' is not a broker URL: it has an invalid port — use a number 1-65535"
        ) from exc
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise BrokerUrlError(f"'{url}' must not have a path or query — write {scheme}://HOST:PORT")
    tls = scheme == "mqtts"
    return BrokerAddress(parts.hostname, port or (TLS_PORT if tls else PLAIN_PORT), tls)
