"""Vendure through its Admin API's draft orders (docs/shops/vendure.md).

Each order is a draft the gateway builds step by step and pays with a manual
payment; the gateway's key is written on it (the unique ``gatewayKey`` custom
field) right after it is created. Before every attempt the key is looked up: an
order left half-way is resumed at the first step it lacks, a finished one is
reported as it is, and a second is never made. This is **key by lookup**.

Draft orders, not a customer's active order in the Shop API: a customer has one
active order at a time, so a half-way order for one key would be the order the next
key lands in; drafts are separate orders, each found by its own key.

>>> from gateway.config.models import VendureSection
>>> shop = VendureCommerce(VendureSection(adapter="vendure",
...     admin_api_url="http://127.0.0.1:1/admin-api", channel_token="t",
...     admin_user="u", admin_password="p", customer_email="a@b.example"))
>>> shop.guarantee.value
'key by lookup'
>>> shop.close()
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import httpx

from gateway.clock import RealClock
from gateway.commerce.base import (
    Accepted,
    Blocked,
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
from gateway.commerce.wire import WIRE_ERRORS, classify, make_client, probe_outcome, send
from gateway.config.models import VendureSection
from gateway.core.events import OrderState, PlaceOrder, Price
from gateway.errors import (
    NotAuthorizedError,
    RequestRefusedError,
    ShopBusyError,
    ShopRefusedStepError,
    UnreadableResponseError,
)

__all__ = ["STATES", "VendureCommerce"]

STATES: dict[str, OrderState] = {
    "PaymentAuthorized": OrderState.ACCEPTED,
    "PaymentSettled": OrderState.ACCEPTED,
    "PartiallyShipped": OrderState.SHIPPED,
    "Shipped": OrderState.SHIPPED,
    "PartiallyDelivered": OrderState.SHIPPED,
    "Delivered": OrderState.DELIVERED,
    "Cancelled": OrderState.CANCELLED,
}
"""Vendure's order states as ours; any other (Draft, ArrangingPayment...) is accepted."""

_ORDER = """id code state currencyCode totalWithTax customFields { gatewayKey }
customer { id } shippingAddress { streetLine1 } shippingLines { id }
lines { quantity unitPriceWithTax productVariant { sku } }"""
_ERROR = "... on ErrorResult { errorCode message }"
_FIND = (
    "query($f: OrderFilterParameter) { orders(options: {filter: $f}) "
    f"{{ items {{ {_ORDER} }} }} }}"
)


class VendureCommerce:
    """Places, follows and cancels orders in one Vendure channel.

    See the module docstring for how a retry finds the order it started.
    """

    guarantee = Guarantee.KEY_BY_LOOKUP

    def __init__(
        self,
        settings: VendureSection,
        *,
        transport: httpx.BaseTransport | None = None,
        wall_clock: Callable[[], float] | None = None,
        setting: str = "shops.vendure",
    ) -> None:
        self._s = settings
        self._setting = setting
        self._wall_clock = wall_clock or RealClock().now
        self._token: str | None = None
        self._lock = threading.Lock()
        self._client = make_client(settings, setting, transport)

    def close(self) -> None:
        self._client.close()

    # ------------------------------------------------------------------ the interface

    def place_order(self, intent: PlaceOrder) -> PlaceResult:
        try:
            with self._lock:
                order = self._find({"gatewayKey": {"eq": intent.key}})
                resumed = order is not None
                if order is None:
                    order = self._create(intent.key)
                return self._finish(order, intent, resumed)
        except ShopRefusedStepError as exc:
            if exc.code == "FORBIDDEN":
                return Blocked(str(exc))
            return Rejected(str(exc))
        except WIRE_ERRORS as exc:
            return classify(exc, url_setting=f"{self._setting}.admin_api_url")

    def get_order(self, shop_order_id: str) -> StatusResult:
        try:
            with self._lock:
                order = self._find({"code": {"eq": shop_order_id}})
        except ShopRefusedStepError as exc:
            return Blocked(str(exc)) if exc.code == "FORBIDDEN" else Rejected(str(exc))
        except WIRE_ERRORS as exc:
            return classify(exc, url_setting=f"{self._setting}.admin_api_url")
        if order is None:
            return Rejected(f"Vendure has no order {shop_order_id}")
        state = STATES.get(str(order["state"]), OrderState.ACCEPTED)
        return Status(shop_order_id=shop_order_id, state=state)

    def cancel_order(self, shop_order_id: str) -> CancelResult:
        try:
            with self._lock:
                order = self._find({"code": {"eq": shop_order_id}})
                if order is None:
                    return Rejected(f"Vendure has no order {shop_order_id}")
                self._mutate(
                    "cancelOrder",
                    "mutation($i: CancelOrderInput!) { cancelOrder(input: $i) "
                    f"{{ __typename {_ERROR} }} }}",
                    {"i": {"orderId": order["id"], "reason": "cancelled at the gateway"}},
                )
                return Cancelled()
        except ShopRefusedStepError as exc:
            if exc.code == "FORBIDDEN":
                return Blocked(str(exc))
            return TooLate(str(exc))
        except WIRE_ERRORS as exc:
            return classify(exc, url_setting=f"{self._setting}.admin_api_url")

    def probe(self) -> Probe:
        """The smallest GraphQL query, ``{ __typename }``, on the channel: it needs no
        login (so the probe never logs in, nor changes anything) and says whether the
        Admin API answers. The credentials are tried by the first order."""
        return probe_outcome(lambda: _data(self._send("query { __typename }", {})))

    # ------------------------------------------------------------------ the steps

    def _create(self, key: str) -> dict[str, Any]:
        created = self._gql("mutation { createDraftOrder { id } }", {})["createDraftOrder"]
        # The key first: from here on a retry finds this order and goes on with it.
        self._gql(
            "mutation($i: UpdateOrderInput!) { setOrderCustomFields(input: $i) { id } }",
            {"i": {"id": created["id"], "customFields": {"gatewayKey": key}}},
        )
        order = self._find({"gatewayKey": {"eq": key}})
        if order is None:
            raise UnreadableResponseError("Vendure lost the draft order it just made")
        return order

    def _finish(self, order: dict[str, Any], intent: PlaceOrder, resumed: bool) -> Accepted:
        oid = order["id"]
        if order["state"] == "Draft":
            if not order["lines"]:
                variant = self._variant(intent.sku)
                self._mutate(
                    "addItemToDraftOrder",
                    "mutation($o: ID!, $i: AddItemToDraftOrderInput!) { "
                    f"addItemToDraftOrder(orderId: $o, input: $i) {{ __typename {_ERROR} }} }}",
                    {"o": oid, "i": {"productVariantId": variant, "quantity": intent.quantity}},
                )
            if order["customer"] is None:
                self._gql(
                    "mutation($o: ID!, $c: ID) { setCustomerForDraftOrder(orderId: $o, "
                    f"customerId: $c) {{ __typename {_ERROR} }} }}",
                    {"o": oid, "c": self._customer()},
                )
            if not (order["shippingAddress"] or {}).get("streetLine1"):
                self._gql(
                    "mutation($o: ID!, $i: CreateAddressInput!) { "
                    "setDraftOrderShippingAddress(orderId: $o, input: $i) { id } }",
                    {"o": oid, "i": self._s.address_input()},
                )
            if not order["shippingLines"]:
                self._mutate(
                    "setDraftOrderShippingMethod",
                    "mutation($o: ID!, $m: ID!) { setDraftOrderShippingMethod(orderId: $o, "
                    f"shippingMethodId: $m) {{ __typename {_ERROR} }} }}",
                    {"o": oid, "m": self._shipping_method(oid)},
                )
            self._transition(oid, "ArrangingPayment")
        if order["state"] in ("Draft", "ArrangingPayment"):
            self._mutate(
                "addManualPaymentToOrder",
                "mutation($i: ManualPaymentInput!) { addManualPaymentToOrder(input: $i) "
                f"{{ __typename {_ERROR} }} }}",
                {
                    "i": {
                        "orderId": oid,
                        "method": self._s.payment_method,
                        "transactionId": intent.key,
                        "metadata": {"event_id": intent.event_id, "gateway": intent.gateway},
                    }
                },
            )
            found = self._find({"gatewayKey": {"eq": intent.key}})
            order = found if found is not None else order
        return Accepted(shop_order_id=str(order["code"]), replayed=resumed, price=_price(order))

    def _transition(self, oid: str, state: str) -> None:
        self._mutate(
            "transitionOrderToState",
            "mutation($o: ID!, $s: String!) { transitionOrderToState(id: $o, state: $s) "
            "{ __typename ... on OrderStateTransitionError "
            "{ errorCode message transitionError } } }",
            {"o": oid, "s": state},
        )

    def _variant(self, sku: str) -> str:
        found = self._gql(
            "query($s: String!) { productVariants(options: {filter: {sku: {eq: $s}}}) "
            "{ items { id } } }",
            {"s": sku},
        )["productVariants"]["items"]
        if not found:
            raise ShopRefusedStepError("UNKNOWN_SKU", f"Vendure sells no variant with SKU {sku!r}")
        return str(found[0]["id"])

    def _customer(self) -> str:
        query = (
            "query($e: String!) { customers(options: {filter: {emailAddress: {eq: $e}}}) "
            "{ items { id } } }"
        )
        found = self._gql(query, {"e": self._s.customer_email})["customers"]["items"]
        if found:
            return str(found[0]["id"])
        created = self._gql(
            "mutation($i: CreateCustomerInput!) { createCustomer(input: $i) "
            f"{{ __typename ... on Customer {{ id }} {_ERROR} }} }}",
            {"i": self._s.customer_input()},
        )["createCustomer"]
        if "id" not in created:
            raise ShopRefusedStepError(str(created.get("errorCode")), str(created.get("message")))
        return str(created["id"])

    def _shipping_method(self, oid: str) -> str:
        methods = self._gql(
            "query($o: ID!) { eligibleShippingMethodsForDraftOrder(orderId: $o) { id code } }",
            {"o": oid},
        )["eligibleShippingMethodsForDraftOrder"]
        for method in methods:
            if method["code"] == self._s.shipping_method:
                return str(method["id"])
        offered = ", ".join(m["code"] for m in methods) or "none"
        raise ShopRefusedStepError(
            "SHIPPING_METHOD",
            f"shipping method {self._s.shipping_method!r} is not offered "
            f"(offered: {offered}) — fix {self._setting}.shipping_method",
        )

    def _find(self, where: dict[str, object]) -> dict[str, Any] | None:
        items = self._gql(_FIND, {"f": where})["orders"]["items"]
        return items[0] if items else None

    # ------------------------------------------------------------------ the wire

    def _mutate(self, name: str, query: str, variables: dict[str, object]) -> dict[str, Any]:
        result = self._gql(query, variables)[name]
        if isinstance(result, dict) and "errorCode" in result:
            raise ShopRefusedStepError(str(result["errorCode"]), str(result.get("message")))
        return result  # type: ignore[no-any-return]

    def _gql(self, query: str, variables: dict[str, object]) -> dict[str, Any]:
        if self._token is None:
            self._login()
        try:
            return self._post(query, variables)
        except NotAuthorizedError:
            # A token expired or revoked: log in once more, then the answer stands.
            self._login()
            return self._post(query, variables)

    def _login(self) -> None:
        self._token = None
        response = self._send(
            "mutation($u: String!, $p: String!) { login(username: $u, password: $p) "
            f"{{ __typename {_ERROR} }} }}",
            {"u": self._s.admin_user, "p": self._s.admin_password_value()},
        )
        data = _data(response)["login"]
        if data.get("__typename") != "CurrentUser":
            raise NotAuthorizedError(403, f"Vendure refused the login: {data.get('errorCode')}")
        self._token = response.headers.get("vendure-auth-token")
        if not self._token:
            raise UnreadableResponseError("Vendure's login answer has no vendure-auth-token")

    def _post(self, query: str, variables: dict[str, object]) -> dict[str, Any]:
        return _data(self._send(query, variables))

    def _send(self, query: str, variables: dict[str, object]) -> httpx.Response:
        headers = {"Content-Type": "application/json", "vendure-token": self._s.channel_token}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        body = json.dumps({"query": query, "variables": variables}).encode()
        return send(
            self._client,
            "POST",
            self._s.admin_api_url,
            "admin-api",
            headers=headers,
            body=body,
            wall_clock=self._wall_clock,
        )


def _data(response: httpx.Response) -> dict[str, Any]:
    try:
        document = json.loads(response.content)
    except (ValueError, UnicodeDecodeError) as exc:
        raise UnreadableResponseError("Vendure answered with something that is not JSON") from exc
    errors = document.get("errors") if isinstance(document, dict) else None
    if errors:
        first = errors[0] if isinstance(errors[0], dict) else {}
        code = str((first.get("extensions") or {}).get("code", ""))
        message = str(first.get("message", "GraphQL error"))
        if code == "FORBIDDEN":
            raise NotAuthorizedError(403, message, code)
        if code == "INTERNAL_SERVER_ERROR":
            # Vendure's own fault (a database lock, a crash mid-request): try again.
            raise ShopBusyError(500, message, code, None)
        raise RequestRefusedError(400, message, code or None)
    data = document.get("data") if isinstance(document, dict) else None
    if not isinstance(data, dict):
        raise UnreadableResponseError("Vendure's answer has no data")
    return data


def _price(order: dict[str, Any]) -> Price | None:
    total, currency = order.get("totalWithTax"), order.get("currencyCode")
    if not isinstance(total, int) or not isinstance(currency, str):
        return None
    lines = order.get("lines") or []
    unit = lines[0].get("unitPriceWithTax") if lines else None
    return Price(currency, total, unit if isinstance(unit, int) else None)
