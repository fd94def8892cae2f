"""Composition: the installer's config turned into the parts that run.

>>> from gateway.config.models import Config
>>> cfg = Config.model_validate({
...     "gateway": {"id": "gw"}, "commerce": {"base_url": "http://127.0.0.1/api"},
...     "products": {"tea": {"sku": "TEA", "cooldown": "1h"}}})
>>> rules_from_config(cfg, b"s" * 32).products["tea"].cooldown
3600.0
"""

from __future__ import annotations

from gateway.config.models import Config
from gateway.core.rules import ProductRules, Rules, SensorRules


def rules_from_config(config: Config, secret: bytes) -> Rules:
    """The core's rules: plain data, so that the core never sees the config models."""
    return Rules(
        gateway_id=config.gateway.id,
        secret=secret,
        products={
            name: ProductRules(
                sku=p.sku,
                quantity=p.quantity,
                one_open_order=p.one_open_order,
                max_per_day=p.max_per_day,
                cooldown=p.cooldown,
                confirm_window=p.confirm_window,
            )
            for name, p in config.products.items()
        },
        button_products={b.name: b.product for b in config.buttons},
        sensors={
            s.name: SensorRules(
                name=s.name,
                product=s.product,
                reorder_below=s.reorder_below,
                rearm_above=s.rearm_above,
                settle=s.settle,
                stale_after=s.stale_after,
            )
            for s in config.sensors
        },
        max_orders_per_day=config.limits.max_orders_per_day,
        dedupe_window=config.limits.dedupe_window,
    )
