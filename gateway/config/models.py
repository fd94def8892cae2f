"""Configuration models (the installer's YAML).

The *shape* lives here as pydantic models. Loading with line numbers, the
``PATH:LINE:COL: key.path: what is wrong — how to fix it`` messages, secrets
and cross-field checks are in :mod:`gateway.config.load`.

Durations are written with a unit (``50ms``, ``60s``, ``10m``, ``2h``, ``7d``)
and are held as float seconds.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    SecretStr,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)

from gateway.config.broker import parse_broker_url
from gateway.config.suggest import suggest
from gateway.core.events import DEFAULT_SHOP

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


class ShopLink(_Model):
    """What every shop backend's section has: how long to wait, when an order expires,
    and TLS (verification on unless the installer turns it off)."""

    timeout: Duration = 10.0
    connect_timeout: Duration = 5.0
    expire_after: Duration = 7 * 86400.0
    verify_tls: bool = True
    ca_file: str | None = None


class CommerceSection(ShopLink):
    adapter: Literal["http"] = "http"
    base_url: str
    token: SecretStr | None = None
    token_file: str | None = None
    poll_interval: Duration = 600.0

    @field_validator("base_url")
    @classmethod
    def _shop_url(cls, value: str) -> str:
        return check_shop_url(value)

    @property
    def location(self) -> str:
        """Where the gateway sends orders (shown by ``check`` and ``status``)."""
        return self.base_url


class WebhookSection(ShopLink):
    """A signed POST of each order to any URL (n8n, Node-RED, a shop's own endpoint).

    >>> WebhookSection(adapter="webhook", url="https://n8n.example/webhook/reorder",
    ...                secret="s" * 32).signature_header
    'Reorder-Signature'
    """

    adapter: Literal["webhook"]
    url: str
    # The shared HMAC secret; at least 32 characters (one is generated by
    # ``python -c "import secrets; print(secrets.token_hex(32))"``).
    secret: SecretStr | None = None
    secret_file: str | None = None
    signature_header: str = Field(default="Reorder-Signature", pattern=r"^[A-Za-z0-9-]{1,64}$")
    # A webhook has no status to ask: an accepted order counts as delivered (handed
    # over) this long after the receiver took it; until then one_open_order holds.
    delivered_after: Duration = 3600.0

    @property
    def poll_interval(self) -> float:
        """When the sender looks at an accepted order again: when it counts as delivered."""
        return self.delivered_after

    @field_validator("url")
    @classmethod
    def _receiver_url(cls, value: str) -> str:
        return check_shop_url(value)

    @property
    def location(self) -> str:
        """Where the gateway sends orders (shown by ``check`` and ``status``)."""
        return self.url

    @field_validator("secret")
    @classmethod
    def _long_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError(
                "is shorter than 32 characters — a guessable secret lets anyone forge "
                "orders; generate one with: python -c 'import secrets; "
                "print(secrets.token_hex(32))'"
            )
        return value


class VendureAddress(_Model):
    """Where a Vendure order is shipped (the household's address)."""

    full_name: str = Field(min_length=1)
    street_line1: str = Field(min_length=1)
    city: str = Field(min_length=1)
    postal_code: str = Field(min_length=1)
    country_code: str = Field(pattern=r"^[A-Z]{2}$")


class VendureSection(ShopLink):
    """A Vendure shop, ordered through its Admin API's draft orders (docs/shops/vendure.md).

    >>> VendureSection(adapter="vendure", admin_api_url="https://shop.example/admin-api",
    ...     channel_token="t", admin_user="gw", admin_password="p",
    ...     customer_email="home@example.org").shipping_method
    'standard-shipping'
    """

    adapter: Literal["vendure"]
    admin_api_url: str
    channel_token: str = Field(min_length=1)
    admin_user: str = Field(min_length=1)
    admin_password: SecretStr | None = None
    admin_password_file: str | None = None
    customer_email: str
    customer_first_name: str = "Reorder"
    customer_last_name: str = "Gateway"
    shipping_method: str = "standard-shipping"
    payment_method: str = "invoice"
    address: VendureAddress | None = None
    poll_interval: Duration = 600.0

    @field_validator("admin_api_url")
    @classmethod
    def _admin_url(cls, value: str) -> str:
        return check_shop_url(value)

    @field_validator("customer_email")
    @classmethod
    def _email(cls, value: str) -> str:
        if not re.fullmatch(r"[^@\s]+@[^@\s]+", value):
            raise ValueError(
                f"'{value}' is not an e-mail address — write the household's address in "
                "the shop, e.g. home@example.org"
            )
        return value

    @property
    def location(self) -> str:
        """Where the gateway sends orders (shown by ``check`` and ``status``)."""
        return self.admin_api_url

    def admin_password_value(self) -> str:
        return self.admin_password.get_secret_value() if self.admin_password else ""

    def address_input(self) -> dict[str, str]:
        """The shipping address as Vendure's CreateAddressInput."""
        a = self.address or VendureAddress(
            full_name=f"{self.customer_first_name} {self.customer_last_name}",
            street_line1="-",
            city="-",
            postal_code="-",
            country_code="DE",
        )
        return {
            "fullName": a.full_name,
            "streetLine1": a.street_line1,
            "city": a.city,
            "postalCode": a.postal_code,
            "countryCode": a.country_code,
        }

    def customer_input(self) -> dict[str, str]:
        """The customer the orders are for, as Vendure's CreateCustomerInput."""
        return {
            "emailAddress": self.customer_email,
            "firstName": self.customer_first_name,
            "lastName": self.customer_last_name,
        }


class HomeAssistantShopSection(ShopLink):
    """Home Assistant's shopping list as the shop (docs/shops/home_assistant.md).

    >>> HomeAssistantShopSection(adapter="home_assistant", url="http://127.0.0.1:8123",
    ...     token="t").entity
    'todo.shopping_list'
    """

    adapter: Literal["home_assistant"]
    url: str
    # A long-lived access token (the user's profile page in Home Assistant).
    token: SecretStr | None = None
    token_file: str | None = None
    # The shopping list integration's to-do entity: items are removed through it.
    entity: str = "todo.shopping_list"
    poll_interval: Duration = 600.0

    @field_validator("url")
    @classmethod
    def _ha_url(cls, value: str) -> str:
        return check_shop_url(value)

    @field_validator("entity")
    @classmethod
    def _todo_entity(cls, value: str) -> str:
        if not re.fullmatch(r"todo\.[a-z0-9_]{1,64}", value):
            raise ValueError(
                f"'{value}' is not a to-do entity id — write the shopping list's entity, "
                "e.g. todo.shopping_list (Settings → Entities in Home Assistant)"
            )
        return value

    @model_validator(mode="after")
    def _has_token(self) -> HomeAssistantShopSection:
        if self.token is None and self.token_file is None:
            raise ValueError(
                "no token — create a long-lived access token on your Home Assistant "
                "profile page and name its file in token_file"
            )
        return self

    @property
    def location(self) -> str:
        """Where the gateway sends orders (shown by ``check`` and ``status``)."""
        return self.url


def _adapter_of(value: Any) -> str:
    # ``adapter`` may be left out for the Reorder API, as in the single commerce: section.
    if isinstance(value, dict):
        return str(value.get("adapter", "http"))
    return str(getattr(value, "adapter", "http"))


ShopSection = Annotated[
    Annotated[CommerceSection, Tag("http")]
    | Annotated[WebhookSection, Tag("webhook")]
    | Annotated[VendureSection, Tag("vendure")]
    | Annotated[HomeAssistantShopSection, Tag("home_assistant")],
    Discriminator(
        _adapter_of,
        custom_error_type="unknown_adapter",
        custom_error_message=(
            "unknown adapter — valid adapters: http, webhook, vendure, home_assistant"
        ),
    ),
]
"""One entry of ``shops:``; its ``adapter`` says which backend speaks to it."""
AnyShopSection = CommerceSection | WebhookSection | VendureSection | HomeAssistantShopSection
"""Any shop section, as validated."""
SHOP_ADAPTERS = ("http", "webhook", "vendure", "home_assistant")


def config_path(loc: tuple[int | str, ...]) -> tuple[int | str, ...]:
    """A pydantic error location as a path into the YAML: without the dict-key marker
    and without the adapter tag pydantic puts after a shop's name.

    >>> config_path(("shops", "roaster", "webhook", "url"))
    ('shops', 'roaster', 'url')
    """
    parts = tuple(part for part in loc if part != "[key]")
    if len(parts) > 2 and parts[0] == "shops" and parts[2] in SHOP_ADAPTERS:
        return parts[:2] + parts[3:]
    return parts


def is_shop_secret(loc: tuple[int | str, ...]) -> bool:
    """A shop's token or webhook secret under shops: (never echoed in messages).

    >>> is_shop_secret(("shops", "family", "secret"))
    True
    """
    return len(loc) >= 3 and loc[0] == "shops" and loc[2] in ("token", "secret", "admin_password")


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

    @field_validator("profile")
    @classmethod
    def _known_profile(cls, value: str | None) -> str | None:
        return check_profile_name(value)

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
    reorder_below: float
    rearm_above: float
    settle: Duration = 60.0
    stale_after: Duration = 3600.0
    unit: str | None = None
    forecast: ForecastConfig | None = None

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
    shops: dict[Name, ShopSection] = {}
    limits: LimitsSection = LimitsSection()
    metrics: MetricsSection = MetricsSection()
    homeassistant: HomeAssistantSection = HomeAssistantSection()
    notify: NotifySection = NotifySection()
    # The household's web page: off unless the section is there.
    web: WebSection | None = None
    products: dict[Name, ProductConfig] = Field(min_length=1)
    buttons: list[ButtonConfig] = []
    sensors: list[SensorConfig] = []

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
