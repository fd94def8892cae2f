"""Configuration models (the installer's YAML).

The *shape* lives here as pydantic models. Loading with line numbers, the
``PATH:LINE:COL: key.path: what is wrong — how to fix it`` messages, secrets
and cross-field checks are in :mod:`gateway.config.load`.

Durations are written with a unit (``50ms``, ``60s``, ``10m``, ``2h``, ``7d``)
and are held as float seconds.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from pydantic import (
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from gateway.config.broker import parse_broker_url
from gateway.config.device_options import (
    check_action_map,
    check_button_of_model,
    check_model_name,
    check_threshold,
)
from gateway.config.fields import (
    Duration,
    Name,
    Percent,
    _Model,
    check_profile_name,
    check_shop_url,
    check_topic,
    is_loopback_host,
    parse_duration,
    parse_percent,
)
from gateway.config.shops import (
    SHOP_ADAPTERS,
    AnyShopSection,
    CommerceSection,
    HomeAssistantShopSection,
    ShopLink,
    ShopSection,
    VendureAddress,
    VendureSection,
    WebhookSection,
    config_path,
    is_shop_secret,
)
from gateway.core.events import DEFAULT_SHOP

# The building blocks and the shop sections live in their own modules; their names
# are re-exported here, where the rest of the gateway has always found them.
__all__ = [
    "SHOP_ADAPTERS",
    "AnyShopSection",
    "ButtonConfig",
    "CommerceSection",
    "Config",
    "Duration",
    "ForecastConfig",
    "GatewaySection",
    "HomeAssistantSection",
    "HomeAssistantShopSection",
    "LimitsSection",
    "MetricsSection",
    "MqttSection",
    "Name",
    "NotifySection",
    "Percent",
    "ProductConfig",
    "SensorConfig",
    "ShopLink",
    "ShopSection",
    "VendureAddress",
    "VendureSection",
    "WebSection",
    "WebhookSection",
    "check_profile_name",
    "check_shop_url",
    "check_topic",
    "config_path",
    "is_loopback_host",
    "is_shop_secret",
    "parse_duration",
    "parse_percent",
]


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

    @field_validator("url")
    @classmethod
    def _broker_url(cls, value: str) -> str:
        parse_broker_url(value)  # a BrokerUrlError is a ValueError: pydantic reports it
        return value


class HomeAssistantSection(_Model):
    discovery: bool = True
    prefix: str = "homeassistant"


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


class NotifySection(_Model):
    """Phone notifications through apprise (ntfy, Telegram, e-mail, Home Assistant...).

    ``urls`` holds one or more apprise URLs (separated by spaces, commas or lines);
    they carry tokens, so they are a secret: put them in ``urls_file`` or ``${VAR}``.

    >>> NotifySection().enabled, NotifySection(urls="ntfy://127.0.0.1/kitchen").enabled
    (False, True)
    """

    urls: SecretStr | None = None
    urls_file: str | None = None
    # Where the household's web page is reached, for the cancel/confirm link.
    link_base: str | None = None
    # Tries after the first failed one, with exponential backoff between them.
    retries: int = Field(default=3, ge=0, le=10)
    retry_wait: Duration = 2.0
    timeout: Duration = 10.0

    @property
    def enabled(self) -> bool:
        return self.urls is not None and bool(self.urls.get_secret_value().strip())

    @field_validator("link_base")
    @classmethod
    def _web_address(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                f"'{value}' is not a web address — write the page's address as a phone on "
                "the LAN opens it, e.g. https://gateway.local:8443"
            )
        return value.rstrip("/")


class WebSection(_Model):
    """The household's web page (:mod:`gateway.web`); present in the YAML = switched on.

    >>> WebSection().bind, WebSection().port, WebSection().https
    ('127.0.0.1', 8080, False)
    """

    # Loopback unless the installer opens it to the LAN on purpose (0.0.0.0 or an address).
    bind: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    # The password's hash (``reorder-gateway web-password``); default <state_dir>/web-password.
    password_file: str | None = None
    certificate: str | None = None
    private_key: str | None = None
    session_lifetime: Duration = 7 * 86400.0

    @property
    def https(self) -> bool:
        return self.certificate is not None

    @field_validator("bind")
    @classmethod
    def _address(cls, value: str) -> str:
        if value == "localhost":
            return "127.0.0.1"
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise ValueError(
                f"'{value}' is not an IP address — write 127.0.0.1 (this machine only), "
                "0.0.0.0 (every network) or one of the Pi's addresses"
            ) from None
        return value

    @field_validator("session_lifetime")
    @classmethod
    def _lifetime(cls, value: float) -> float:
        if not 60.0 <= value <= 90 * 86400.0:
            raise ValueError("must be between 1m and 90d — 7d is usual")
        return value

    @model_validator(mode="after")
    def _certificate_with_key(self) -> WebSection:
        if (self.certificate is None) != (self.private_key is None):
            missing = "private_key" if self.private_key is None else "certificate"
            raise ValueError(
                f"HTTPS needs both certificate and private_key — add web.{missing}, or remove "
                "the other for plain HTTP"
            )
        return self

    def password_path(self, state_dir: str) -> str:
        """Where the password hash is kept.

        >>> WebSection().password_path("/var/lib/rg")
        '/var/lib/rg/web-password'
        """
        if self.password_file is not None:
            return self.password_file
        return f"{state_dir.rstrip('/')}/web-password"


class ProductConfig(_Model):
    sku: str = Field(min_length=1, max_length=128)
    quantity: int = Field(default=1, ge=1, le=1000)
    one_open_order: bool = True
    # Maximum quantity ordered per rolling 24 hours; None = no product cap.
    max_per_day: int | None = Field(default=None, ge=1)
    cooldown: Duration = 0.0
    confirm_window: Duration = 0.0
    # The name of the shop under shops: that sells it; may be left out with one shop.
    shop: Name | None = None
    # Consent before paying: each order is held until the household confirms it (web
    # page, Home Assistant, or a second press), and dropped if nobody does in time.
    confirm: bool = False
    confirm_expires: Duration = Field(default=86400.0, gt=0)

    @model_validator(mode="after")
    def _one_kind_of_hold(self) -> ProductConfig:
        if self.confirm and self.confirm_window > 0:
            raise ValueError(
                "confirm: true and confirm_window are both set — confirm holds each order "
                "until someone says yes (confirm_expires says how long); remove "
                "confirm_window, or set confirm: false to send after the window"
            )
        return self

    # Accepted -> delivered until the shop's history says otherwise (forecasting).
    lead_time: Duration = 2 * 86400.0
    # A product with only a button orders itself when its usual interval is up.
    order_when_due: bool = False

    @field_validator("lead_time")
    @classmethod
    def _some_lead_time(cls, value: float) -> float:
        if value <= 0 or value > 60 * 86400.0:
            raise ValueError("must be more than 0s and at most 60d — e.g. lead_time: 3d")
        return value


class ForecastConfig(_Model):
    """``forecast:`` under a sensor: order before it runs out (docs/forecasting.md)."""

    service_level: Percent = 0.99
    # The level at which the household has run out (the empty jar's weight, a last spoon).
    empty_at: float = 0.0
    # Readings are grouped into windows this long; a lifted jar reads low inside one.
    lift_window: Duration = 1800.0
    # A rise bigger than this is a refill; a faster drop is held until confirmed.
    refill_jump: float = Field(default=50.0, gt=0)
    min_days: int = Field(default=3, ge=1, le=60)
    # Where the household's day begins, for the weekly rhythm (e.g. 1h for CET).
    utc_offset: Duration = 0.0


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
    # Which words order: a Zigbee2MQTT model (and one of its buttons), or the
    # words themselves (zigbee2mqtt, esphome events).
    model: str | None = None
    button: str | None = None
    actions: dict[str, list[str]] | None = None
    # Shelly Gen2+: the component whose events count (button:200, a BLU button).
    component: str | None = Field(default=None, pattern=r"^[a-z0-9_]{1,32}:[0-9]{1,4}$")
    # ESPHome binary sensor: the gateway times ON..OFF itself (short = press,
    # held for hold_time = cancel), like a wired button.
    gateway_timed: bool = False

    @field_validator("profile")
    @classmethod
    def _known_profile(cls, value: str | None) -> str | None:
        return check_profile_name(value)

    @field_validator("model")
    @classmethod
    def _known_model(cls, value: str | None) -> str | None:
        return check_model_name(value)

    @field_validator("button")
    @classmethod
    def _button_of_model(cls, value: str | None, info: ValidationInfo) -> str | None:
        return check_button_of_model(value, info.data.get("model"))

    @field_validator("actions", mode="before")
    @classmethod
    def _action_map(cls, value: object) -> dict[str, list[str]] | None:
        return check_action_map(value)

    @field_validator("mqtt")
    @classmethod
    def _one_topic(cls, value: str | None) -> str | None:
        return None if value is None else check_topic(value)


class SensorConfig(_Model):
    name: Name
    product: str
    mqtt: str
    profile: str = "json"
    value: str | None = None
    event_id: str | None = None
    # The unit the sensor decides (and is shown) in; its numbers are in it unless
    # the profile says otherwise (then converted), or scale/offset make them so.
    unit: str | None = Field(default=None, min_length=1, max_length=16)
    # Raw ADC counts -> unit: value = raw * scale + offset.
    scale: float | None = Field(default=None, allow_inf_nan=False)
    offset: float = Field(default=0.0, allow_inf_nan=False)
    reorder_below: float
    rearm_above: float
    settle: Duration = 60.0
    stale_after: Duration = 3600.0
    forecast: ForecastConfig | None = None

    @field_validator("reorder_below", "rearm_above", mode="before")
    @classmethod
    def _threshold_in_sensor_unit(cls, value: object, info: ValidationInfo) -> object:
        return check_threshold(value, info)

    @field_validator("mqtt")
    @classmethod
    def _one_topic(cls, value: str) -> str:
        return check_topic(value)

    @field_validator("profile")
    @classmethod
    def _known_profile(cls, value: str) -> str:
        checked = check_profile_name(value)
        assert checked is not None
        return checked

    @field_validator("rearm_above")
    @classmethod
    def _rearm_above_threshold(cls, value: float, info: ValidationInfo) -> float:
        # A gap between the two thresholds keeps a noisy scale from re-arming and
        # ordering again while it hovers around one value.
        below = info.data.get("reorder_below")
        if below is not None and value <= below:
            raise ValueError(
                f"must be above reorder_below ({below:g}) — the sensor re-arms only once "
                f"refilled past it, e.g. rearm_above: {below * 2 if below > 0 else below + 1:g}"
            )
        return value

    @field_validator("forecast")
    @classmethod
    def _empty_below_threshold(
        cls, value: ForecastConfig | None, info: ValidationInfo
    ) -> ForecastConfig | None:
        below = info.data.get("reorder_below")
        if value is not None and below is not None and value.empty_at >= below:
            raise ValueError(
                f"empty_at ({value.empty_at:g}) must be below reorder_below ({below:g}) — "
                "empty_at is where the household has run out, the threshold orders before it"
            )
        return value


class Config(_Model):
    gateway: GatewaySection
    mqtt: MqttSection = MqttSection()
    # One shop (named "default"), or several under shops: — exactly one of the two.
    commerce: CommerceSection | None = None
    shops: dict[Name, ShopSection] = Field(default_factory=dict)
    limits: LimitsSection = LimitsSection()
    metrics: MetricsSection = MetricsSection()
    homeassistant: HomeAssistantSection = HomeAssistantSection()
    notify: NotifySection = NotifySection()
    # The household's web page: off unless the section is there.
    web: WebSection | None = None
    products: dict[Name, ProductConfig] = Field(min_length=1)
    buttons: list[ButtonConfig] = Field(default_factory=list)
    sensors: list[SensorConfig] = Field(default_factory=list)

    @field_validator("web", mode="before")
    @classmethod
    def _bare_web_section(cls, value: object) -> object:
        # ``web:`` alone switches the page on with every default.
        return {} if value is None else value

    @model_validator(mode="after")
    def _one_shop_section(self) -> Config:
        if self.commerce is None and not self.shops:
            raise ValueError("no shop — add a 'commerce:' section or a 'shops:' section")
        if self.commerce is not None and self.shops:
            raise ValueError(
                "both 'commerce:' and 'shops:' are set — move the commerce: settings under "
                f"shops: as a shop named {DEFAULT_SHOP!r} (or any name), and remove commerce:"
            )
        return self

    @property
    def all_shops(self) -> dict[str, AnyShopSection]:
        """Every shop by name; a single ``commerce:`` section is the shop "default".

        >>> Config.model_validate({"gateway": {"id": "gw"},
        ...     "commerce": {"base_url": "http://127.0.0.1/api"},
        ...     "products": {"tea": {"sku": "T"}}}).all_shops["default"].adapter
        'http'
        """
        if self.commerce is not None:
            return {DEFAULT_SHOP: self.commerce}
        return dict(self.shops)

    def shop_of(self, product: str) -> str:
        """The name of the shop a product is ordered from (the only one, if unnamed)."""
        named = self.products[product].shop
        return named if named is not None else next(iter(self.all_shops))
