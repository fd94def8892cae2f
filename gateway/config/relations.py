"""Mistakes no single value shows: how the values of the installer's YAML relate.

Products that exist, pins used once, unique names, a wired *or* a wireless
button, and the options a device profile needs. Called by
:func:`gateway.config.load.load_config` after every value has been validated.
"""

from __future__ import annotations

from typing import Any

from gateway.config.models import ProductConfig
from gateway.config.positions import KeyPath
from gateway.config.report import ConfigReport
from gateway.config.suggest import suggest
from gateway.core.events import DEFAULT_SHOP

# ProfileOptions field -> the config key that sets it, and what to write there.
_OPTION_KEYS = {
    "action_path": ("action", "the dotted path to the action word, e.g. action: action"),
    "value_path": ("value", "the dotted path to the number, e.g. value: weight_g"),
    "event_id_path": ("event_id", "the dotted path to a message id, e.g. event_id: msg_id"),
    "button_index": ("button_index", "the device's button number, e.g. button_index: 1"),
}
# What a profile needs per role, beyond Profile.required_options (which is role-blind):
# a generic JSON device is only useful once told where its action or number is.
_ROLE_OPTIONS: dict[tuple[str, str], tuple[str, ...]] = {
    ("json", "button"): ("action_path",),
    ("json", "sensor"): ("value_path",),
}


def _entries(data: dict[str, Any], section: str) -> list[tuple[int, dict[str, Any]]]:
    items = data.get(section)
    if not isinstance(items, list):
        return []
    return [(index, item) for index, item in enumerate(items) if isinstance(item, dict)]


def check_product_fields(report: ConfigReport, data: dict[str, Any]) -> None:
    """A product's fields indented one level too little become products of their own
    (``sku``, ``quantity``): say so at each, once, instead of "expected a mapping".

    Runs before validation: the keys it reports (and the product above them, left
    empty by the same slip) are not reported again as invalid products.
    """
    products = data.get("products")
    if not isinstance(products, dict):
        return
    fields = set(ProductConfig.model_fields)
    owner: str | None = None
    emptied: str | None = None
    for name, value in products.items():
        if name in fields and not isinstance(value, dict):
            where = f"indent under '{owner}'?" if owner else "indent under a product name?"
            report.key_error(
                ("products", name),
                f"looks like a field of a product, not a product — {where} (a product's "
                "fields go one level deeper than its name)",
            )
            report.reported.add(("products", name))
            if emptied is not None:
                report.reported.add(("products", emptied))
            continue
        owner = str(name)
        emptied = owner if value is None else None


def check_relations(report: ConfigReport, data: dict[str, Any]) -> None:
    """Mistakes no single value shows: they are about how values relate."""
    products = data.get("products")
    product_names = sorted(map(str, products)) if isinstance(products, dict) else None
    names: dict[str, tuple[str, int]] = {}
    pins: list[tuple[tuple[int, int], int, KeyPath, str]] = []
    for section, role in (("buttons", "button"), ("sensors", "sensor")):
        for index, entry in _entries(data, section):
            base: KeyPath = (section, index)
            name = entry.get("name")
            label = f"{role} '{name}'" if isinstance(name, str) else f"{role} {index}"
            if isinstance(name, str):
                line = report.doc.value_at((*base, "name"))[0]
                if name in names:
                    other, other_line = names[name]
                    report.value_error(
                        (*base, "name"),
                        f"'{name}' is already the name of the {other} on line {other_line} — "
                        "names appear in MQTT topics and state keys, so each must be unique",
                    )
                else:
                    names[name] = (role, line)
            _check_product(report, entry, base, product_names)
            if role == "button":
                _check_wiring(report, entry, base)
                for key in ("gpio", "led"):
                    pin = entry.get(key)
                    if isinstance(pin, int) and not isinstance(pin, bool):
                        what = label if key == "gpio" else f"the LED of {label}"
                        pins.append((report.doc.value_at((*base, key)), pin, (*base, key), what))
            _check_profile(report, entry, base, role)
            if role == "button":
                check_button_options(report, entry, base)
            else:
                check_sensor_units(report, entry, base)
    _check_pins(report, pins)
    check_shops(report, data)
    _check_order_when_due(report, data)


def _check_product(
    report: ConfigReport, entry: dict[str, Any], base: KeyPath, product_names: list[str] | None
) -> None:
    product = entry.get("product")
    if not isinstance(product, str) or product_names is None or product in product_names:
        return
    listed = ", ".join(product_names)
    hint = suggest(
        product,
        product_names,
        listing=f"products: {listed}",
        otherwise=f"define it under products:, or use one of: {listed}",
    )
    report.value_error((*base, "product"), f"unknown product '{product}' — {hint}")


def _check_wiring(report: ConfigReport, entry: dict[str, Any], base: KeyPath) -> None:
    wired, wireless = entry.get("gpio") is not None, entry.get("mqtt") is not None
    doc = report.doc
    if wired and wireless:
        report.error_at(
            *doc.key_at((*base, "mqtt")),
            base,
            "has both gpio: and mqtt: — a button is either wired to a pin or a wireless "
            "device; keep one of them",
        )
    elif not wired and not wireless:
        report.error_at(
            *doc.key_at(base),
            base,
            "has neither gpio: nor mqtt: — add gpio: PIN for a wired button, "
            "or mqtt: TOPIC with profile: for a wireless one",
        )
    elif wireless and entry.get("profile") is None:
        report.error_at(
            *doc.key_at((*base, "mqtt")),
            (*base, "profile"),
            f"is required with mqtt: — add profile: one of {', '.join(_profile_names())}",
        )
    elif wired and entry.get("profile") is not None:
        report.key_error(
            (*base, "profile"),
            "only applies to MQTT buttons — remove it, or replace gpio: with mqtt:",
        )


def _profile_names() -> list[str]:
    # Imported lazily, as in gateway.config.models.check_profile_name.
    from devices import profile_names

    return profile_names()


def _check_profile(report: ConfigReport, entry: dict[str, Any], base: KeyPath, role: str) -> None:
    from devices import PROFILES

    name = entry.get("profile", "json" if role == "sensor" else None)
    profile = PROFILES.get(name) if isinstance(name, str) else None
    if profile is None:
        return
    where = (*base, "profile") if "profile" in entry else base
    if profile.kind not in (role, "both"):
        usable = [p.name for p in PROFILES.values() if p.kind in (role, "both")]
        report.value_error(
            where,
            f"profile '{profile.name}' is for {profile.kind}s — a {role} can use: "
            f"{', '.join(sorted(usable))}",
        )
        return
    for option in (*profile.required_options, *_ROLE_OPTIONS.get((profile.name, role), ())):
        key, hint = _OPTION_KEYS[option]
        if entry.get(key) in (None, ""):
            line, col = report.doc.value_at(where)
            report.error_at(
                line, col, (*base, key), f"is required by profile '{profile.name}' — add {hint}"
            )


def _check_pins(
    report: ConfigReport, pins: list[tuple[tuple[int, int], int, KeyPath, str]]
) -> None:
    first: dict[int, tuple[str, int]] = {}
    for (line, _col), pin, path, what in sorted(pins):
        if pin in first:
            other, other_line = first[pin]
            report.value_error(
                path,
                f"GPIO {pin} is already used by {other} on line {other_line} — "
                "give each button and LED its own pin",
            )
        else:
            first[pin] = (what, line)


def check_shops(report: ConfigReport, data: dict[str, Any]) -> None:
    """Each product's shop exists; with several shops, each product names one.

    A single ``commerce:`` section is the shop "default" (a product may name it).
    """
    products = data.get("products")
    if not isinstance(products, dict):
        return
    shops = data.get("shops")
    if isinstance(shops, dict) and shops:
        names = sorted(map(str, shops))
    elif isinstance(data.get("commerce"), dict):
        names = [DEFAULT_SHOP]
    else:
        return  # no shop at all: reported where the sections are validated
    listed = ", ".join(names)
    for product, entry in products.items():
        if not isinstance(entry, dict):
            continue
        base: KeyPath = ("products", product)
        shop = entry.get("shop")
        if shop is None:
            if len(names) > 1:
                report.error_at(
                    *report.doc.key_at(base),
                    (*base, "shop"),
                    f"names no shop, and there are several — add shop: one of {listed}",
                )
            continue
        if not isinstance(shop, str) or shop in names:
            continue
        hint = suggest(
            shop,
            names,
            listing=f"shops: {listed}",
            otherwise=f"define it under shops:, or use one of: {listed}",
        )
        report.value_error((*base, "shop"), f"unknown shop '{shop}' — {hint}")


def _check_order_when_due(report: ConfigReport, data: dict[str, Any]) -> None:
    """``order_when_due`` is for products with only a button: a sensor's product is
    ordered by its threshold and forecast."""
    products = data.get("products")
    if not isinstance(products, dict):
        return
    sensed = {
        e["product"]: e.get("name")
        for _, e in _entries(data, "sensors")
        if isinstance(e.get("product"), str)
    }
    for name, product in products.items():
        if isinstance(product, dict) and product.get("order_when_due") is True and name in sensed:
            report.value_error(
                ("products", name, "order_when_due"),
                f"'{name}' has the sensor '{sensed[name]}', which orders it by its threshold "
                "and forecast — remove order_when_due, or add forecast: to the sensor",
            )


# Button options and the profiles they belong to.
_OPTION_PROFILES: dict[str, tuple[str, ...]] = {
    "model": ("zigbee2mqtt",),
    "button": ("zigbee2mqtt",),
    "actions": ("zigbee2mqtt", "esphome"),
    "component": ("shelly",),
    "gateway_timed": ("esphome",),
}


def check_button_options(report: ConfigReport, entry: dict[str, Any], base: KeyPath) -> None:
    """model / button / actions / component / gateway_timed: each only where its
    profile reads it, and model with actions is one too many."""
    profile = entry.get("profile")
    for key, profiles in _OPTION_PROFILES.items():
        if key not in entry or entry[key] in (None, False) or profile is None:
            continue
        if profile not in profiles:
            report.key_error(
                (*base, key),
                f"only applies to profile {' or '.join(profiles)}, not '{profile}' — remove it",
            )
    if profile != "zigbee2mqtt":
        return
    if entry.get("model") is not None and entry.get("actions") is not None:
        report.key_error(
            (*base, "actions"),
            "and model: both say which words order — keep model: for a known device, "
            "or actions: for words of your own",
        )
    elif entry.get("button") is not None and entry.get("model") is None:
        report.key_error(
            (*base, "button"),
            "needs model: to know which words that button sends — add model: (e.g. TS0044)",
        )


def check_sensor_units(report: ConfigReport, entry: dict[str, Any], base: KeyPath) -> None:
    """Raw counts need scale: (and offset:); a declared unit must be one the
    profile's unit converts into."""
    from devices import PROFILES
    from devices.units import RAW_COUNTS, convertible

    profile = PROFILES.get(str(entry.get("profile", "json")))
    if profile is None:
        return
    path = entry.get("value")
    reported = profile.reading_unit(path if isinstance(path, str) else None)
    unit = entry.get("unit")
    if reported == RAW_COUNTS:
        if entry.get("scale") is None:
            where = (*base, "value") if "value" in entry else base
            report.error_at(
                *report.doc.value_at(where),
                (*base, "scale"),
                "is required: this value is raw ADC counts — add scale: (the unit per count) "
                "and offset: (the reading of the empty scale, in the unit), e.g. "
                "scale: 0.0042, offset: -120, unit: g",
            )
        return
    if reported is not None and isinstance(unit, str) and not convertible(reported, unit):
        report.value_error(
            (*base, "unit"),
            f"'{unit}' cannot hold what this sensor reports ({reported}) — write a unit "
            f"of the same kind, e.g. unit: {reported}",
        )
