"""Load the CA, certificate and key files the configuration names, as the gateway's
connections will: ``check`` and a (re)load run these, so that a file ``run`` cannot
use is a located configuration error, not a crash at the first connect.

:func:`shop_tls_context` *is* the context the shop client verifies the shop with;
:func:`mqtt_tls_context` loads the broker's files the way paho's ``tls_set`` does.
Every failure is a :class:`~gateway.errors.TlsFileError` naming the setting.

>>> shop_tls_context("/nonexistent/ca.pem")
Traceback (most recent call last):
...
gateway.errors.TlsFileError: /nonexistent/ca.pem does not exist — fix the path or remove the key
"""

from __future__ import annotations

import ssl

from gateway.errors import TlsFileError

__all__ = ["mqtt_tls_context", "shop_tls_context", "web_tls_context"]

_PEM_CERTIFICATE = "a PEM file starting with -----BEGIN CERTIFICATE-----"


def shop_tls_context(ca_file: str) -> ssl.SSLContext:
    """The system's default client context, trusting the private CA in ``ca_file``."""
    return _verifying_context("ca_file", ca_file, "the CA certificate")


def mqtt_tls_context(
    ca_file: str | None, cert_file: str | None, key_file: str | None
) -> ssl.SSLContext:
    """The broker's files loaded as ``tls_set(ca_certs, certfile, keyfile)`` loads them.

    As there, ``key_file`` only counts with a ``cert_file`` (which may hold the key too).
    """
    if ca_file is not None:
        context = _verifying_context("ca_file", ca_file, "the CA certificate")
    else:
        context = ssl.create_default_context()
    if cert_file is not None:
        # The certificate alone first, so that a bad file is told apart from a bad key.
        _verifying_context("cert_file", cert_file, "the client certificate")
        _load_chain(context, cert_file, key_file)
    return context


def web_tls_context(certificate: str, private_key: str) -> ssl.SSLContext:
    """The web page's server context: TLS 1.2 at least, the certificate and its key."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # The certificate alone first, so that a bad file is told apart from a bad key.
    _verifying_context("certificate", certificate, "the page's certificate")
    names = ("certificate", "private_key")
    _load_chain(context, certificate, private_key, names=names, section="web")
    return context


def _verifying_context(setting: str, path: str, what: str) -> ssl.SSLContext:
    try:
        return ssl.create_default_context(cafile=path)
    except ssl.SSLError as exc:
        raise TlsFileError(
            setting, f"{path} holds no PEM certificate — give {what} as {_PEM_CERTIFICATE}"
        ) from exc
    except OSError as exc:
        raise TlsFileError(setting, _unreadable(path, exc)) from exc


def _load_chain(
    context: ssl.SSLContext,
    cert_file: str,
    key_file: str | None,
    names: tuple[str, str] = ("cert_file", "key_file"),
    section: str = "mqtt",
) -> None:
    asked_for_passphrase = False
    cert_setting, key_setting = names

    def no_passphrase() -> bytes:
        # Never OpenSSL's prompt: the gateway starts unattended, and `check` must not hang.
        nonlocal asked_for_passphrase
        asked_for_passphrase = True
        return b""

    setting, key = (key_setting, key_file) if key_file is not None else (cert_setting, cert_file)
    try:
        context.load_cert_chain(cert_file, key_file, password=no_passphrase)
    except ssl.SSLError as exc:
        if asked_for_passphrase:
            message = (
                f"{key} holds a key protected by a passphrase — the gateway starts unattended: "
                f"store the key without one (openssl pkey -in {key} -out PLAIN.key)"
            )
        elif exc.reason == "KEY_VALUES_MISMATCH":
            message = (
                f"{key} does not match the certificate in {cert_file} — give the private key "
                "that certificate was issued for"
            )
        elif key_file is None:
            message = f"{cert_file} holds no private key — add {section}.{key_setting} with the key"
        else:
            message = (
                f"{key_file} holds no PEM private key — give the certificate's key as a PEM "
                "file starting with -----BEGIN PRIVATE KEY-----"
            )
        raise TlsFileError(setting, message) from exc
    except OSError as exc:
        raise TlsFileError(setting, _unreadable(key, exc)) from exc


def _unreadable(path: str, exc: OSError) -> str:
    if isinstance(exc, FileNotFoundError):
        return f"{path} does not exist — fix the path or remove the key"
    if isinstance(exc, PermissionError):
        return f"{path} is not readable by this user — give the service user read access"
    if isinstance(exc, IsADirectoryError):
        return f"{path} is a directory — name the file inside it"
    return f"{path} cannot be read ({exc.strerror or exc}) — check the path"
