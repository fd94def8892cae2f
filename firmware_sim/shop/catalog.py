"""The shop's catalog: which SKUs exist, with names and prices in cents.

>>> from pathlib import Path
>>> catalog = load_catalog(DEFAULT_CATALOG)
>>> catalog["TIDE-PODS-42"].price_cents > 0
True
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

DEFAULT_CATALOG = Path(__file__).with_name("catalog.yaml")
_SKU = re.compile(r"^[A-Z0-9][A-Z0-9_-]{0,63}$")


class CatalogError(ValueError):
    """The catalog file is missing or not shaped like ``products: {SKU: {name, price_cents}}``."""


@dataclass(frozen=True)
class Product:
    sku: str
    name: str
    price_cents: int


def load_catalog(path: Path) -> dict[str, Product]:
    """Read and check a catalog file; every problem is reported with the file name."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise CatalogError(f"{path}: cannot read the catalog ({exc.strerror})") from exc
    except yaml.YAMLError as exc:
        raise CatalogError(f"{path}: not valid YAML ({exc})") from exc
    products = data.get("products") if isinstance(data, dict) else None
    if not isinstance(products, dict) or not products:
        raise CatalogError(f"{path}: expected a non-empty 'products:' mapping of SKU to details")
    catalog: dict[str, Product] = {}
    for sku, details in products.items():
        where = f"{path}: products.{sku}"
        if not isinstance(sku, str) or not _SKU.match(sku):
            raise CatalogError(f"{where}: a SKU is upper-case letters, digits, '-' or '_'")
        if not isinstance(details, dict):
            raise CatalogError(f"{where}: expected 'name' and 'price_cents'")
        name, price = details.get("name"), details.get("price_cents")
        if not isinstance(name, str) or not name.strip():
            raise CatalogError(f"{where}.name: expected a product name")
        if isinstance(price, bool) or not isinstance(price, int) or price < 0:
            raise CatalogError(f"{where}.price_cents: expected whole cents, e.g. 1399")
        catalog[sku] = Product(sku=sku, name=name.strip(), price_cents=price)
    return catalog
