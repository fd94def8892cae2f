"""The web page's tests start the gateway and shop as the end-to-end tests do."""

from tests.e2e.conftest import make_gateway, make_shop

__all__ = ["make_gateway", "make_shop"]
