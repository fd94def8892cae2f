"""Shop backends behind one small interface (:class:`CommerceBackend`).

>>> from gateway.config.models import CommerceSection
>>> backend = make_backend(CommerceSection(base_url="https://shop.example/api/v1", token="t"))
>>> backend.close()
"""

from __future__ import annotations

from gateway.commerce.base import (
    Accepted,
    Blocked,
    Cancelled,
    CancelResult,
    CommerceBackend,
    PlaceResult,
    Rejected,
    Retry,
    Status,
    StatusResult,
    TooLate,
    Unclear,
    build_body,
)
from gateway.commerce.http import HttpCommerce
from gateway.config.models import CommerceSection
from gateway.errors import CommerceConfigError, CommerceError

__all__ = [
    "Accepted",
    "Blocked",
    "CancelResult",
    "Cancelled",
    "CommerceBackend",
    "CommerceConfigError",
    "CommerceError",
    "HttpCommerce",
    "PlaceResult",
    "Rejected",
    "Retry",
    "Status",
    "StatusResult",
    "TooLate",
    "Unclear",
    "build_body",
    "make_backend",
]


def make_backend(settings: CommerceSection) -> CommerceBackend:
    """The backend named by ``commerce.adapter`` (raises CommerceConfigError)."""
    if settings.adapter == "http":
        return HttpCommerce(settings)
    raise CommerceConfigError(f"unknown commerce.adapter {settings.adapter!r}")
