"""Every file the configuration names, read or loaded while loading it, as ``run`` will.

Secret files (``commerce.token_file``, ``mqtt.password_file``) are read into the
secret itself; CA, certificate and key files are loaded with the very functions
the connections use (:mod:`gateway.config.tls`). So ``check`` refuses what ``run``
could not use, each problem at its line, and ``run`` never meets it as a crash.
Each file's key is rewritten to where the file was found (``~`` expanded, a
secret file inside ``$CREDENTIALS_DIRECTORY``), so that whatever reads it again
later reads the same file.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from gateway.config.broker import parse_broker_url
from gateway.config.models import (
    AnyShopSection,
    CommerceSection,
    HomeAssistantShopSection,
    MqttSection,
    VendureSection,
    WebhookSection,
    WebSection,
)
from gateway.config.positions import KeyPath
from gateway.config.report import ConfigReport
from gateway.config.secrets import locate_secret_file, read_secret_file, readable_by_others
from gateway.config.tls import mqtt_tls_context, shop_tls_context, web_tls_context
from gateway.errors import BrokerUrlError, SecretFileError, TlsFileError

__all__ = ["load_tls_files", "read_secret_files"]

# (section, secret, the key naming the file it may come from)
_SECRET_FILES: tuple[tuple[str, str, str], ...] = (
    ("commerce", "token", "token_file"),
    ("mqtt", "password", "password_file"),
    ("notify", "urls", "urls_file"),
)
# Per shop adapter under shops: (the secret, the key naming the file it may come from)
_SHOP_SECRETS = {
    "http": ("token", "token_file"),
    "webhook": ("secret", "secret_file"),
    "vendure": ("admin_password", "admin_password_file"),
    "home_assistant": ("token", "token_file"),
}
_Section = TypeVar("_Section", bound=BaseModel)
_MQTT_TLS_KEYS = ("ca_file", "cert_file", "key_file")
_TLS_FILES: tuple[KeyPath, ...] = (
    *(("mqtt", key) for key in _MQTT_TLS_KEYS),
    ("commerce", "ca_file"),
    ("web", "certificate"),
    ("web", "private_key"),
)


def _section(data: dict[str, Any], name: str) -> dict[str, Any] | None:
    section = data.get(name)
    return section if isinstance(section, dict) else None


def read_secret_files(
    report: ConfigReport,
    data: dict[str, Any],
    env: Mapping[str, str],
    config_dir: Path | None = None,
) -> None:
    """Read ``*_file`` secrets into the secret itself, so consumers only read ``.token``.

    Relative names are looked for as :func:`~gateway.config.secrets.secret_file_candidates`
    says, ``config_dir`` being the directory of the config file."""
    for section_name, secret, file_key in _SECRET_FILES:
        section = _section(data, section_name)
        if section is not None:
            _read_secret_file(report, (section_name,), section, (secret, file_key), env, config_dir)
    for name, shop in _shops(data):
        keys = _SHOP_SECRETS.get(str(shop.get("adapter", "http")), _SHOP_SECRETS["http"])
        _read_secret_file(report, ("shops", name), shop, keys, env, config_dir)


def _read_secret_file(
    report: ConfigReport,
    where: KeyPath,
    section: dict[str, Any],
    keys: tuple[str, str],
    env: Mapping[str, str],
    config_dir: Path | None,
) -> None:
    secret, file_key = keys
    if not isinstance(section.get(file_key), str):
        return
    if section.get(secret) is not None:
        report.key_error(
            (*where, file_key), f"both {secret} and {file_key} are set — keep only {file_key}"
        )
        return
    try:
        location = locate_secret_file(section[file_key], env, config_dir)
        section[secret] = read_secret_file(location)
    except SecretFileError as exc:
        report.value_error((*where, file_key), str(exc))
        return
    # The shop client re-reads the token file when it changes: the same file.
    section[file_key] = str(location)
    _warn_if_shared(report, (*where, file_key), location)


def _shops(data: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    shops = data.get("shops")
    if not isinstance(shops, dict):
        return []
    return [(str(name), shop) for name, shop in shops.items() if isinstance(shop, dict)]


def _warn_if_shared(report: ConfigReport, path: KeyPath, location: Path) -> None:
    mode = readable_by_others(location)
    if mode is not None:
        report.warn_value(
            path,
            f"{location} is readable by group/others (mode {mode:04o}) "
            f"— run 'chmod 600 {location}'",
        )


def load_tls_files(report: ConfigReport, data: dict[str, Any]) -> None:
    """Every CA, certificate and key file: present, and loadable where ``run`` loads it."""
    missing: set[KeyPath] = set()
    for path in _TLS_FILES:
        section_name, key = path
        section = _section(data, str(section_name))
        name = section.get(str(key)) if section else None
        if section is None or not isinstance(name, str):
            continue
        location = Path(name).expanduser()
        section[str(key)] = str(location)
        if not location.is_file():
            report.value_error(path, f"{location} does not exist — fix the path or remove the key")
            missing.add(path)
        elif path in (("mqtt", "key_file"), ("web", "private_key")):
            _warn_if_shared(report, path, location)
    mqtt = _valid(MqttSection, data.get("mqtt", {}))
    if mqtt is not None:
        _load_mqtt_tls(report, mqtt, missing)
    commerce = _valid(CommerceSection, data.get("commerce"))
    _load_shop_ca(report, ("commerce",), commerce, missing)
    for name, shop in _shops(data):
        _load_shop_tls(report, name, shop)
    web = _valid(WebSection, data.get("web") or {}) if "web" in data else None
    loadable = not any(("web", key) in missing for key in ("certificate", "private_key"))
    if web is not None and web.certificate is not None and web.private_key is not None and loadable:
        try:
            web_tls_context(web.certificate, web.private_key)
        except TlsFileError as exc:
            report.value_error(("web", exc.setting), str(exc))


def _load_shop_tls(report: ConfigReport, name: str, shop: dict[str, Any]) -> None:
    path: KeyPath = ("shops", name, "ca_file")
    ca_file = shop.get("ca_file")
    if not isinstance(ca_file, str):
        return
    location = Path(ca_file).expanduser()
    shop["ca_file"] = str(location)
    if not location.is_file():
        report.value_error(path, f"{location} does not exist — fix the path or remove the key")
        return
    adapter = shop.get("adapter")
    settings: AnyShopSection | None
    if adapter == "webhook":
        settings = _valid(WebhookSection, shop)
    elif adapter == "vendure":
        settings = _valid(VendureSection, shop)
    elif adapter == "home_assistant":
        settings = _valid(HomeAssistantShopSection, shop)
    else:
        settings = _valid(CommerceSection, shop)
    _load_shop_ca(report, ("shops", name), settings, set())


def _load_shop_ca(
    report: ConfigReport,
    where: KeyPath,
    shop: AnyShopSection | None,
    missing: set[KeyPath],
) -> None:
    # Without verification the shop client never loads the CA file; neither does this.
    if (
        shop is not None
        and shop.verify_tls
        and shop.ca_file is not None
        and (*where, "ca_file") not in missing
    ):
        try:
            shop_tls_context(shop.ca_file)
        except TlsFileError as exc:
            report.value_error((*where, "ca_file"), str(exc))


def _valid(model: type[_Section], section: Any) -> _Section | None:
    """The section as the gateway will read it; None when invalid (reported elsewhere)."""
    try:
        return model.model_validate(section)
    except ValidationError:
        return None


def _load_mqtt_tls(report: ConfigReport, mqtt: MqttSection, missing: set[KeyPath]) -> None:
    named = [key for key in _MQTT_TLS_KEYS if getattr(mqtt, key) is not None]
    if not named:
        return
    try:
        tls = parse_broker_url(mqtt.url).tls
    except BrokerUrlError:
        return  # reported where the URL is validated
    if not tls:
        report.key_error(
            ("mqtt", named[0]),
            f"is set but mqtt.url '{mqtt.url}' is plain MQTT — use mqtts://HOST:8883 for TLS, "
            f"or remove {', '.join('mqtt.' + key for key in named)}",
        )
        return
    if any(("mqtt", key) in missing for key in named):
        return
    if mqtt.key_file is not None and mqtt.cert_file is None:
        # The MQTT client ignores a key without a certificate; so does this, loudly.
        report.warn_value(
            ("mqtt", "key_file"),
            "is ignored without mqtt.cert_file — add the client certificate, or remove key_file",
        )
    try:
        mqtt_tls_context(mqtt.ca_file, mqtt.cert_file, mqtt.key_file)
    except TlsFileError as exc:
        report.value_error(("mqtt", exc.setting), str(exc))
