"""The rules the core decides by: plain data, built from the config by the wiring.

The core never sees the installer's YAML or its validation library; it sees these
frozen dataclasses (:func:`gateway.wiring.core_rules` makes them).

>>> rules = Rules(gateway_id="gw", secret=b"s" * 32, products={"tea": ProductRules(sku="TEA")})
>>> rules.products["tea"].one_open_order, rules.max_orders_per_day
(True, 10)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from gateway.core.events import DEFAULT_SHOP
from gateway.core.forecast import ForecastRules


@dataclass(frozen=True)
class ProductRules:
    """What may be ordered of one product, and how often."""

    sku: str
    quantity: int = 1
    one_open_order: bool = True  # the Dash rule
    max_per_day: int | None = None  # quantity per rolling 24 h; None = no product cap
    cooldown: float = 0.0  # seconds after an order in which another is absorbed
    confirm_window: float = 0.0  # seconds an order is held, cancellable, before it is sent
    shop: str = DEFAULT_SHOP  # the configured shop that sells it
    lead_time: float = 2 * 86_400.0  # accepted -> delivered until the shop's history says
    order_when_due: bool = False  # a button-only product orders itself when it is due
    confirm: bool = False  # held until the household confirms; never sent on its own
    confirm_expires: float = 86_400.0  # an unconfirmed order is dropped after this


@dataclass(frozen=True)
class SensorRules:
    """When a level sensor orders: below ``reorder_below`` for ``settle`` seconds, once
    per depletion episode; re-armed only above ``rearm_above``."""

    name: str
    product: str
    reorder_below: float
    rearm_above: float
    settle: float = 60.0
    stale_after: float = 3600.0
    forecast: ForecastRules | None = None  # None: the threshold alone orders
    unit: str | None = None


@dataclass(frozen=True)
class Rules:
    """Everything the core needs to decide, plus the installation's key secret."""

    gateway_id: str
    secret: bytes
    products: Mapping[str, ProductRules]
    button_products: Mapping[str, str] = field(default_factory=dict)
    sensors: Mapping[str, SensorRules] = field(default_factory=dict)
    max_orders_per_day: int = 10
    dedupe_window: float = 2.0
