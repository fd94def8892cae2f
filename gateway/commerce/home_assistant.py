"""Home Assistant's shopping list as a "shop" (docs/shops/home_assistant.md).

Each order becomes one item on the list, named for the household and marked for
the gateway: ``coffee ×2 · rg:rg1_0123abcd``. Before every attempt the list is read
and the marker looked for: an item already there (open or ticked off) is the
order, and no second one is added. This is **key by lookup**.

What the item's fate means: ticked off → delivered (someone bought it); gone →
cancelled (someone removed it); open → accepted. A cancel removes the item while
it is open; a ticked-off item is too late to cancel.

The REST calls of Home Assistant 2024.3: ``GET /api/shopping_list``,
``POST /api/shopping_list/item`` ``{"name": ...}``; there is no DELETE view, so an
item is removed with the to-do service ``todo.remove_item`` by its uid.

>>> from gateway.config.models import HomeAssistantShopSection
>>> shop = HomeAssistantCommerce(HomeAssistantShopSection(adapter="home_assistant",
...     url="http://127.0.0.1:1", token="t"))
>>> shop.guarantee.value
'key by lookup'
>>> shop.close()
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable

import httpx

from gateway.clock import RealClock
from gateway.commerce.base import (
    Accepted,
    Cancelled,
    CancelResult,
    Guarantee,
    PlaceResult,
    Probe,
    Rejected,
    Status,
    StatusResult,
    TooLate,
)
from gateway.commerce.credentials import Credential
from gateway.commerce.wire import WIRE_ERRORS, classify, make_client, probe_outcome, send
from gateway.config.models import HomeAssistantShopSection
from gateway.core.events import OrderState, PlaceOrder
from gateway.core.keys import short_key
from gateway.errors import (
    RequestRefusedError,
    ShopBusyError,
    UnreadableResponseError,
)

__all__ = ["HomeAssistantCommerce", "item_name", "marker"]

_MAX_NAME = 255


def marker(key: str) -> str:
    """What the gateway writes into an item's name to know it again.

    >>> marker("rg1_0123456789abcdef")
    'rg:rg1_01234567'
    """
    return f"rg:{short_key(key)}"


def item_name(intent: PlaceOrder) -> str:
    """The item as the household reads it on the list.

    >>> from gateway.core.events import PlaceOrder
    >>> item_name(PlaceOrder(key="rg1_0123456789ab", product="coffee", sku="C-1",
    ...     quantity=2, device="kitchen", trigger="press", event_id="e1",
    ...     created_at=0.0, gateway="gw"))
    'coffee ×2 · rg:rg1_01234567'
    """
    amount = f" ×{intent.quantity}" if intent.quantity != 1 else ""
    return f"{intent.product}{amount} · {marker(intent.key)}"


class HomeAssistantCommerce:
    """Puts each order on Home Assistant's shopping list, once.

    The shop order id is the item's uid on the list; see the module docstring for
    how a retry finds the item it added.
    """

    guarantee = Guarantee.KEY_BY_LOOKUP

    def __init__(
        self,
        settings: HomeAssistantShopSection,
        *,
        transport: httpx.BaseTransport | None = None,
        wall_clock: Callable[[], float] | None = None,
        setting: str = "shops.home_assistant",
    ) -> None:
        self._base = settings.url.rstrip("/")
        self._entity = settings.entity
        self._setting = setting
        self._token = Credential(settings.token, settings.token_file, setting=setting, key="token")
        self._wall_clock = wall_clock or RealClock().now
        self._lock = threading.Lock()
        self._client = make_client(settings, setting, transport)

    def close(self) -> None:
        self._client.close()

    # ------------------------------------------------------------------ the interface

    def place_order(self, intent: PlaceOrder) -> PlaceResult:
        name = item_name(intent)
        if len(name) > _MAX_NAME:
            return Rejected(f"the item name is {len(name)} characters long — shorten the product")
        try:
            with self._lock:
                found = self._find_marked(marker(intent.key))
                if found is not None:
                    return Accepted(shop_order_id=found, replayed=True)
                added = self._object(self._call("POST", "/api/shopping_list/item", {"name": name}))
                uid = added.get("id")
                if not isinstance(uid, str) or not uid:
                    raise UnreadableResponseError("Home Assistant's new item has no id")
                return Accepted(shop_order_id=uid, replayed=False)
        except WIRE_ERRORS as exc:
            return classify(exc, url_setting=f"{self._setting}.url")

    def get_order(self, shop_order_id: str) -> StatusResult:
        try:
            item = self._item(shop_order_id)
        except WIRE_ERRORS as exc:
            return classify(exc, url_setting=f"{self._setting}.url")
        if item is None:
            # Removed from the list by a person: that order is off.
            return Status(shop_order_id=shop_order_id, state=OrderState.CANCELLED)
        state = OrderState.DELIVERED if item.get("complete") is True else OrderState.ACCEPTED
        return Status(shop_order_id=shop_order_id, state=state)

    def cancel_order(self, shop_order_id: str) -> CancelResult:
        try:
            with self._lock:
                item = self._item(shop_order_id)
                if item is None:
                    return Cancelled()
                if item.get("complete") is True:
                    return TooLate("the item is already ticked off the shopping list")
                # HA 2024.3 answers a 500 ("Unable to find To-do item") when a person
                # removed the item meanwhile: whatever the call's answer, the list read
                # below is what tells (and raises if Home Assistant is really down).
                with contextlib.suppress(RequestRefusedError, ShopBusyError):
                    self._call(
                        "POST",
                        "/api/services/todo/remove_item",
                        {"entity_id": self._entity, "item": [shop_order_id]},
                    )
                # A service call for an entity that does not exist does nothing and
                # still answers 200: only the list says whether the item went.
                left = self._item(shop_order_id)
                if left is None:
                    return Cancelled()
                if left.get("complete") is True:
                    return TooLate("the item was ticked off the shopping list meanwhile")
                return Rejected(
                    f"{self._entity} did not remove the item — set {self._setting}.entity "
                    "to the shopping list's to-do entity"
                )
        except WIRE_ERRORS as exc:
            return classify(exc, url_setting=f"{self._setting}.url")

    def probe(self) -> Probe:
        """``GET /api/`` with the token: Home Assistant's "API running." — nothing
        changes; a 401 says it is there but refuses the token."""
        return probe_outcome(lambda: self._call("GET", "/api/", None))

    # ------------------------------------------------------------------ the wire

    def _items(self) -> list[dict[str, object]]:
        response = self._call("GET", "/api/shopping_list", None)
        document = _json(response)
        if not isinstance(document, list) or not all(isinstance(i, dict) for i in document):
            raise UnreadableResponseError("Home Assistant's shopping list is not a list of items")
        return document

    def _item(self, uid: str) -> dict[str, object] | None:
        return next((item for item in self._items() if item.get("id") == uid), None)

    def _find_marked(self, mark: str) -> str | None:
        for item in self._items():
            name, uid = item.get("name"), item.get("id")
            if isinstance(name, str) and isinstance(uid, str) and name.endswith(mark):
                return uid
        return None

    def _object(self, response: httpx.Response) -> dict[str, object]:
        document = _json(response)
        if not isinstance(document, dict):
            raise UnreadableResponseError("Home Assistant answered with no JSON object")
        return document

    def _call(self, method: str, path: str, body: dict[str, object] | None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self._token.required()}"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        return send(
            self._client,
            method,
            self._base + path,
            path,
            headers=headers,
            body=json.dumps(body).encode() if body is not None else None,
            wall_clock=self._wall_clock,
        )


def _json(response: httpx.Response) -> object:
    try:
        return json.loads(response.content)
    except (ValueError, UnicodeDecodeError) as exc:
        kind = response.headers.get("Content-Type", "no content type")
        raise UnreadableResponseError(
            f"HTTP {response.status_code} from Home Assistant is not JSON ({kind})"
        ) from exc
