"""Shop backends behind one small interface (:class:`CommerceBackend`), one module
per kind of shop, and the registry that builds them from the config.

>>> from gateway.config.models import CommerceSection
>>> backend = make_backend(CommerceSection(base_url="https://shop.example/api/v1", token="t"))
>>> backend.guarantee.value
'native idempotency keys'
>>> backend.close()
"""

from __future__ import annotations

from gateway.commerce.base import (
    Accepted,
    Blocked,
    Cancelled,
    CancelResult,
    CommerceBackend,
    Guarantee,
    PlaceResult,
    Rejected,
    Retry,
    Status,
    StatusResult,
    TooLate,
    Unclear,
    build_body,
)
from gateway.commerce.home_assistant import HomeAssistantCommerce
from gateway.commerce.http import HttpCommerce
from gateway.commerce.vendure import VendureCommerce
from gateway.commerce.webhook import WebhookCommerce
from gateway.config.models import (
    AnyShopSection,
    Config,
    HomeAssistantShopSection,
    VendureSection,
    WebhookSection,
)
from gateway.core.events import DEFAULT_SHOP
from gateway.errors import CommerceConfigError, CommerceError

__all__ = [
    "GUARANTEES",
    "Accepted",
    "Blocked",
    "CancelResult",
    "Cancelled",
    "CommerceBackend",
    "CommerceConfigError",
    "CommerceError",
    "Guarantee",
    "HomeAssistantCommerce",
    "HttpCommerce",
    "PlaceResult",
    "Rejected",
    "Retry",
    "Status",
    "StatusResult",
    "TooLate",
    "Unclear",
    "VendureCommerce",
    "WebhookCommerce",
    "build_body",
    "make_backend",
    "make_backends",
]

GUARANTEES: dict[str, Guarantee] = {
    "http": HttpCommerce.guarantee,
    "webhook": WebhookCommerce.guarantee,
    "vendure": VendureCommerce.guarantee,
    "home_assistant": HomeAssistantCommerce.guarantee,
}
"""What each ``adapter`` promises, for ``check`` (which builds no backend)."""


def make_backend(settings: AnyShopSection, name: str = DEFAULT_SHOP) -> CommerceBackend:
    """The backend for one shop section (raises CommerceConfigError).

    ``name`` is the shop's name under ``shops:``; messages name the setting to fix.
    """
    setting = "commerce" if name == DEFAULT_SHOP else f"shops.{name}"
    if isinstance(settings, WebhookSection):
        return WebhookCommerce(settings, setting=setting)
    if isinstance(settings, VendureSection):
        return VendureCommerce(settings, setting=setting)
    if isinstance(settings, HomeAssistantShopSection):
        return HomeAssistantCommerce(settings, setting=setting)
    if settings.adapter == "http":
        return HttpCommerce(settings, setting=setting)
    raise CommerceConfigError(f"unknown {setting}.adapter {settings.adapter!r}")


def make_backends(config: Config) -> dict[str, CommerceBackend]:
    """One backend per configured shop, by name; all closed again if one fails."""
    built: dict[str, CommerceBackend] = {}
    try:
        for name, settings in config.all_shops.items():
            built[name] = make_backend(settings, name)
    except BaseException:
        for backend in built.values():
            backend.close()
        raise
    return built
