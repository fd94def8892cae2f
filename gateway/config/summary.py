"""The short, secret-free summary ``reorder-gateway check`` prints.

>>> format_duration(120.0)
'2m'
"""

from __future__ import annotations

from urllib.parse import urlsplit

from gateway.commerce import GUARANTEES
from gateway.config.broker import parse_broker_url
from gateway.config.models import AnyShopSection, Config, VendureSection, WebhookSection


def format_duration(seconds: float) -> str:
    """Seconds back into the unit an installer would write.

    >>> format_duration(600.0), format_duration(0.05), format_duration(90.0)
    ('10m', '50ms', '90s')
    """
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("m", 60.0), ("s", 1.0)):
        if seconds >= size and (seconds / size).is_integer():
            return f"{int(seconds / size)}{unit}"
    if seconds < 1.0 and (seconds * 1000).is_integer():
        return f"{int(seconds * 1000)}ms"
    return f"{seconds:g}s"


def plural(count: int, word: str) -> str:
    """``count`` and ``word``, with an 's' unless there is exactly one.

    >>> plural(1, "sensor"), plural(0, "sensor"), plural(2, "button")
    ('1 sensor', '0 sensors', '2 buttons')
    """
    return f"{count} {word}{'' if count == 1 else 's'}"


def inventory(config: Config) -> str:
    """What the gateway runs, counted: ``2 buttons, 1 sensor, 1 product``."""
    return ", ".join(
        (
            plural(len(config.buttons), "button"),
            plural(len(config.sensors), "sensor"),
            plural(len(config.products), "product"),
        )
    )


def _shop(name: str, shop: AnyShopSection, config: Config) -> list[str]:
    """One shop: where, whether its credential is there; then what it guarantees."""
    where = f"{_host_port(shop.location)} ({urlsplit(shop.location).scheme})"
    if isinstance(shop, WebhookSection):
        credential = f"secret {'set' if shop.secret is not None else 'NOT set'}"
    elif isinstance(shop, VendureSection):
        password = "set" if shop.admin_password is not None else "NOT set"
        credential = f"admin user {shop.admin_user}, password {password}"
    else:
        credential = f"token {'set' if shop.token is not None else 'NOT set'}"
    label = "commerce" if config.commerce is not None else f"shop {name}"
    return [
        f"{label}: {shop.adapter} shop at {where}, {credential}",
        f"  guarantee: {GUARANTEES[shop.adapter].explained}",
    ]


def _host_port(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or "?"
    host = f"[{host}]" if ":" in host else host
    return f"{host}:{parts.port}" if parts.port else host


def _web(config: Config) -> str:
    web = config.web
    if web is None:
        return "web page: off"
    scheme = "https" if web.https else "http"
    host = f"[{web.bind}]" if ":" in web.bind else web.bind
    reach = "this machine only" if web.bind.startswith("127.") or web.bind == "::1" else "the LAN"
    return (
        f"web page: {scheme}://{host}:{web.port}/ ({reach}), password hash in "
        f"{web.password_path(config.gateway.state_dir)}, sessions last "
        f"{format_duration(web.session_lifetime)}"
    )


def summarize(config: Config) -> str:
    """A short human summary for ``check``: what the gateway will do. No secrets.

    >>> print(summarize(load_config("config/demo.yaml", env={}).config))  # doctest: +SKIP
    gateway demo: state in ./demo-state, GPIO pin factory mock
    ...
    """
    g, m = config.gateway, config.mqtt
    broker = parse_broker_url(m.url)
    tls = "TLS" if broker.tls else "no TLS"
    login = "with login" if m.username is not None else "anonymous"
    pins = g.pin_factory or "from GPIOZERO_PIN_FACTORY or gpiozero's default"
    lines = [
        f"gateway {g.id}: state in {g.state_dir}, GPIO pin factory {pins}",
        f"mqtt: broker {broker.host}:{broker.port} ({tls}, {login}), "
        f"topics under {m.topic_prefix}/{g.id}/",
        *(line for name, shop in config.all_shops.items() for line in _shop(name, shop, config)),
        f"limits: at most {config.limits.max_orders_per_day} orders a day, "
        f"presses within {format_duration(config.limits.dedupe_window)} count once",
    ]
    if config.metrics.enabled:
        port = config.metrics.port or "<ephemeral port>"
        lines.append(f"metrics: http://{config.metrics.host}:{port}/metrics")
    else:
        lines.append("metrics: off")
    lines.append(_web(config))
    lines.append(f"products ({len(config.products)}):")
    for name, p in config.products.items():
        rules = ["one open order at a time"] if p.one_open_order else []
        if p.max_per_day is not None:
            rules.append(f"at most {p.max_per_day} a day")
        if p.cooldown:
            rules.append(f"cooldown {format_duration(p.cooldown)}")
        if p.confirm_window:
            rules.append(f"cancellable for {format_duration(p.confirm_window)}")
        shop = f" from {config.shop_of(name)}" if len(config.all_shops) > 1 else ""
        lines.append(
            f"  {name}: {p.sku} x{p.quantity}{shop}" + (f", {', '.join(rules)}" if rules else "")
        )
    lines.append(f"buttons ({len(config.buttons)}):")
    for b in config.buttons:
        source = f"GPIO {b.gpio}" if b.gpio is not None else f"MQTT {b.mqtt} ({b.profile})"
        led = f", LED on GPIO {b.led}" if b.led is not None else ""
        lines.append(f"  {b.name}: {source}{led} -> {b.product}")
    lines.append(f"sensors ({len(config.sensors)}):")
    for s in config.sensors:
        unit = f" {s.unit}" if s.unit else ""
        value = f", value {s.value}" if s.value else ""
        lines.append(
            f"  {s.name}: MQTT {s.mqtt} ({s.profile}{value}) -> {s.product}: order below "
            f"{s.reorder_below:g}{unit}, re-arm above {s.rearm_above:g}{unit}, "
            f"settle {format_duration(s.settle)}"
        )
    return "\n".join(lines)
