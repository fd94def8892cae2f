"""The building blocks of the configuration models: durations and percentages with
their units, names, topics and shop URLs checked with a fix in the message, and the
strict base model (unknown keys are errors, values are frozen).

>>> parse_duration("90s"), parse_percent("99%")
(90.0, 0.99)
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
)

from gateway.config.suggest import suggest

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: object) -> float:
    """``"60s"`` -> 60.0. A bare number is refused with a hint.

    >>> parse_duration("10m")
    600.0
    """
    if isinstance(value, bool):
        raise ValueError("expected a duration — write a number with a unit, e.g. 60s")
    if isinstance(value, int | float):
        shown = int(value) if float(value).is_integer() else value
        raise ValueError(f"has no time unit — did you mean '{shown}s'?")
    if not isinstance(value, str):
        raise ValueError("expected a duration — write a number with a unit, e.g. 60s")
    match = _DURATION.match(value)
    if not match:
        raise ValueError(
            f"'{value}' is not a duration — write a number with a unit: ms, s, m, h or d (e.g. 60s)"
        )
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


_PERCENT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")


def parse_percent(value: object) -> float:
    """``"99%"`` -> 0.99; a fraction below 1 is taken as it is.

    >>> parse_percent("99.5%")
    0.995
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError("expected a percentage, e.g. 99%")
    if isinstance(value, str):
        match = _PERCENT.match(value)
        if not match:
            raise ValueError(f"'{value}' is not a percentage — write it like 99%")
        fraction = float(match.group(1)) / 100
    elif value >= 1:
        raise ValueError(f"has no % sign — did you mean '{value:g}%'?")
    else:
        fraction = float(value)
    if not 0.5 <= fraction < 1:
        raise ValueError(
            "must be at least 50% and below 100% — 100% would need infinite stock; "
            "95% to 99.5% is usual"
        )
    return fraction


def _has_credentials(url: str) -> bool:
    return "@" in urlsplit(url).netloc


def is_loopback_host(host: str) -> bool:
    """``localhost``, 127.0.0.0/8 and ::1: traffic that never leaves the machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_shop_url(url: str) -> str:
    """The shop is spoken to over https; plain http only on loopback (demos, tests).

    >>> check_shop_url("http://127.0.0.1:8080/api/v1")
    'http://127.0.0.1:8080/api/v1'
    """
    if _has_credentials(url):
        raise ValueError("the URL carries credentials — put the token in commerce.token_file")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"'{url}' is not a web address — write https://HOST/PATH")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise ValueError(
            f"plain http:// to '{parts.hostname}' would send the token unencrypted — use "
            "https:// (http:// is only allowed for loopback hosts 127.0.0.0/8, ::1, localhost)"
        )
    return url


def check_profile_name(name: str | None) -> str | None:
    """A device profile must be one the registry knows."""
    if name is None:
        return None
    # Imported here: devices imports nothing of ours, and config must stay importable
    # by tools that never touch device profiles.
    from devices import profile_names

    valid = sorted(profile_names())
    if name not in valid:
        listed = f"valid profiles: {', '.join(valid)}"
        raise ValueError(
            f"unknown profile '{name}' — {suggest(name, valid, listing=listed, otherwise=listed)}"
        )
    return name


def check_topic(topic: str) -> str:
    """One device's MQTT topic: no wildcards (they would mix several devices into one).

    >>> check_topic("zigbee2mqtt/pantry_button")
    'zigbee2mqtt/pantry_button'
    """
    if not topic.strip():
        raise ValueError("is empty — write the device's topic, e.g. zigbee2mqtt/pantry_button")
    if "+" in topic or "#" in topic:
        raise ValueError(
            f"'{topic}' contains an MQTT wildcard — name one device's topic; "
            "configure one entry per device"
        )
    if topic != topic.strip() or "\x00" in topic:
        raise ValueError(f"'{topic}' has surrounding spaces or a NUL — write the topic as-is")
    return topic


Duration = Annotated[float, BeforeValidator(parse_duration)]
Percent = Annotated[float, BeforeValidator(parse_percent)]
Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
