"""How a client of the configured broker connects: the address, credentials and
TLS (verification always on), shared by the gateway's link
(:class:`gateway.inputs.mqtt.MqttLink`) and ``reorder-gateway listen``.

>>> from gateway.config.models import MqttSection
>>> str(broker_address(MqttSection(url="mqtts://broker.lan")))
'mqtts://broker.lan:8883'
"""

from __future__ import annotations

import logging
import ssl

import paho.mqtt.client as paho

from gateway.config.broker import BrokerAddress, parse_broker_url
from gateway.config.models import MqttSection
from gateway.errors import BrokerUrlError, TlsSetupError

log = logging.getLogger("gateway.inputs.mqtt")


def broker_address(settings: MqttSection) -> BrokerAddress:
    """The configured broker; certificate files for a plain ``mqtt://`` URL are refused
    (they would be silently unused)."""
    address = parse_broker_url(settings.url)
    if not address.tls and (settings.ca_file or settings.cert_file or settings.key_file):
        raise BrokerUrlError(
            f"mqtt.ca_file/cert_file/key_file are set but '{settings.url}' is plain MQTT;"
            " use mqtts://"
        )
    return address


def configure_client(client: paho.Client, settings: MqttSection, password: str | None) -> None:
    """The configured broker's credentials and TLS on ``client``, for the gateway's link
    and for ``reorder-gateway listen`` alike. ``password`` is the one read from the
    environment or a credential file (config.secrets); without it, the config's."""
    username = settings.username.get_secret_value() if settings.username else None
    if password is None and settings.password is not None:
        password = settings.password.get_secret_value()
    if username is not None:
        client.username_pw_set(username, password)
    elif password is not None:
        log.warning("MQTT: a password is configured without mqtt.username; it is not sent")
    if broker_address(settings).tls:
        try:
            # Verification stays on: CERT_REQUIRED and hostname checking are
            # tls_set's defaults, and tls_insecure_set is never called.
            client.tls_set(
                ca_certs=settings.ca_file,
                certfile=settings.cert_file,
                keyfile=settings.key_file,
                cert_reqs=ssl.CERT_REQUIRED,
            )
        except (OSError, ssl.SSLError, ValueError) as exc:
            raise TlsSetupError(f"cannot load mqtt.ca_file/cert_file/key_file: {exc}") from exc
