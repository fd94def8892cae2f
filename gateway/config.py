"""Configuration models (the installer's YAML).

The *shape* lives here as pydantic models. Loading with line numbers, the
``PATH:LINE:COL: key.path: what is wrong — how to fix it`` messages, secrets
and cross-field checks are in :mod:`gateway.configload`.

Durations are written with a unit (``50ms``, ``60s``, ``10m``, ``2h``, ``7d``)
and are held as float seconds.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: object) -> float:
    """``"60s"`` -> 60.0. A bare number is refused with a hint.

    >>> parse_duration("10m")
    600.0
    """
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 60s")
    if isinstance(value, int | float):
        raise ValueError(f"has no time unit, did you mean '{value}s'?")
    if not isinstance(value, str):
        raise ValueError("expected a duration such as 60s")
    match = _DURATION.match(value)
    if not match:
        raise ValueError(
            f"'{value}' is not a duration — write a number with a unit: ms, s, m, h or d (e.g. 60s)"
        )
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


Duration = Annotated[float, BeforeValidator(parse_duration)]
Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GatewaySection(_Model):
    id: Name
    state_dir: str = "/var/lib/reorder-gateway"
    # gpiozero pin factory ("lgpio", "rpigpio", "pigpio", "native", "mock").
    # Empty: GPIOZERO_PIN_FACTORY from the environment, else gpiozero's default.
    pin_factory: str | None = None


class MqttSection(_Model):
    url: str = "mqtt://127.0.0.1:1883"
    username: SecretStr | None = None
    password: SecretStr | None = None
    password_file: str | None = None
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    keepalive: Duration = 30.0
    session_expiry: Duration = 86400.0 * 7
    # Payloads above this size are dropped (counted and logged), never parsed.
    max_payload: int = Field(default=8192, ge=64, le=1_048_576)
    topic_prefix: str = "reorder"


class HomeAssistantSection(_Model):
    discovery: bool = True
    prefix: str = "homeassistant"


class CommerceSection(_Model):
    adapter: Literal["http"] = "http"
    base_url: str
    token: SecretStr | None = None
    token_file: str | None = None
    timeout: Duration = 10.0
    connect_timeout: Duration = 5.0
    expire_after: Duration = 7 * 86400.0
    poll_interval: Duration = 600.0
    verify_tls: bool = True
    ca_file: str | None = None


class LimitsSection(_Model):
    max_orders_per_day: int = Field(default=10, ge=0)
    dedupe_window: Duration = 2.0
    # How long event ids are remembered for deduplication.
    dedupe_retention: Duration = 30 * 86400.0
    # Delivered, cancelled and rejected orders are pruned after this long.
    history_retention: Duration = 90 * 86400.0


class MetricsSection(_Model):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=9464, ge=0, le=65535)


class ProductConfig(_Model):
    sku: str = Field(min_length=1, max_length=128)
    quantity: int = Field(default=1, ge=1, le=1000)
    one_open_order: bool = True
    # Maximum quantity ordered per rolling 24 hours; None = no product cap.
    max_per_day: int | None = Field(default=None, ge=1)
    cooldown: Duration = 0.0
    confirm_window: Duration = 0.0


class ButtonConfig(_Model):
    name: Name
    product: str
    gpio: int | None = Field(default=None, ge=0, le=53)
    led: int | None = Field(default=None, ge=0, le=53)
    led_pwm: bool = False
    bounce_time: Duration = 0.05
    hold_time: Duration = 2.0
    pull_up: bool = True
    mqtt: str | None = None
    profile: str | None = None
    # Profile options (json profile: dotted paths; tasmota/shelly: button index).
    action: str | None = None
    event_id: str | None = None
    button_index: int = Field(default=1, ge=1, le=8)


class SensorConfig(_Model):
    name: Name
    product: str
    mqtt: str
    profile: str = "json"
    value: str | None = None
    event_id: str | None = None
    reorder_below: float
    rearm_above: float
    settle: Duration = 60.0
    stale_after: Duration = 3600.0
    unit: str | None = None


class Config(_Model):
    gateway: GatewaySection
    mqtt: MqttSection = MqttSection()
    commerce: CommerceSection
    limits: LimitsSection = LimitsSection()
    metrics: MetricsSection = MetricsSection()
    homeassistant: HomeAssistantSection = HomeAssistantSection()
    products: dict[Name, ProductConfig] = Field(min_length=1)
    buttons: list[ButtonConfig] = []
    sensors: list[SensorConfig] = []
