"""What the reference shop answers: routing, auth, idempotency and injected faults.

Transport-free: :class:`ShopApp` turns a :class:`Request` into a :class:`Response`;
:mod:`firmware_sim.shop.server` carries them over HTTP. ``Response.delivery`` tells the
transport to misbehave on purpose (hang up, or cut the body short).

>>> Response.json(200, {"status": "ok"}).body
b'{"status":"ok"}'
"""

from __future__ import annotations

import hmac
import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from firmware_sim.shop.catalog import Product
from firmware_sim.shop.faults import FaultInjector, FaultPlan, FaultSettingError
from firmware_sim.shop.requests import (
    ApiError,
    OrderRequest,
    bad_request,
    check_idempotency_key,
    parse_json,
    parse_order,
)
from firmware_sim.shop.store import ShopStore, StoreClosedError, StoredResponse
from gateway.clock import Clock

API = "/api/v1"
_ORDER = re.compile(rf"^{API}/orders/([^/]+)$")
_CANCEL = re.compile(rf"^{API}/orders/([^/]+)/cancel$")
_ORDER_ID = re.compile(r"^ord_([1-9][0-9]{0,17})$")
_GARBAGE_HTML = (
    b"<!DOCTYPE html>\n<html><head><title>Welcome</title></head>"
    b"<body><h1>Please sign in to continue</h1></body></html>\n"
)

Delivery = Literal["normal", "drop", "truncate"]


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]  # lower-case names
    body: bytes = b""
    body_error: ApiError | None = None  # set by the transport: too large, bad length


@dataclass
class Response:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    delivery: Delivery = "normal"
    replayed: bool = False
    note: str = ""

    @classmethod
    def json(cls, status: int, document: Any, **kwargs: Any) -> Response:
        body = json.dumps(document, separators=(",", ":")).encode("utf-8")
        return cls(status, body, **kwargs)

    @classmethod
    def error(cls, exc: ApiError) -> Response:
        document = {"error": {"code": exc.code, "message": exc.message}}
        return cls.json(exc.status, document, headers=dict(exc.headers))


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


class ShopApp:
    """The Reorder API's behaviour, independent of sockets.

    >>> # app = ShopApp(store, catalog, token, clock, injector); app.handle(request)
    """

    def __init__(
        self,
        store: ShopStore,
        catalog: Mapping[str, Product],
        token: str,
        clock: Clock,
        injector: FaultInjector,
    ) -> None:
        self.store = store
        self.catalog = dict(catalog)
        self._token = token.encode("utf-8")
        self.clock = clock
        self.injector = injector

    def __repr__(self) -> str:  # never show the token
        return f"ShopApp(db={self.store.path}, skus={len(self.catalog)})"

    def handle(self, request: Request) -> Response:
        try:
            return self._route(request)
        except ApiError as exc:
            return Response.error(exc)
        except StoreClosedError:
            return Response.error(ApiError(503, "shutting_down", "the shop is shutting down"))

    # ------------------------------------------------------------------ routing

    def _route(self, r: Request) -> Response:
        path = r.path
        if path == "/_health":
            self._allow(r, "GET")
            return Response.json(200, {"status": "ok"})
        if path == "/_admin/faults":
            self._allow(r, "GET", "POST")
            self._authorize(r)
            return self._faults(r)
        if path == "/_admin/stats":
            self._allow(r, "GET")
            self._authorize(r)
            return Response.json(200, self.stats())
        if path == f"{API}/orders":
            self._allow(r, "GET", "POST")
            if r.method == "POST":
                return self._post_order(r)
            self._authorize(r)
            sku = r.query.get("sku", [None])[-1]
            return Response.json(200, {"orders": self.store.list_orders(self.clock.now(), sku)})
        if match := _CANCEL.match(path):
            self._allow(r, "POST")
            return self._cancel(r, match.group(1))
        if match := _ORDER.match(path):
            self._allow(r, "GET")
            return self._get_order(r, match.group(1))
        raise ApiError(404, "not_found", f"no such endpoint: {path} (the API is under {API})")

    @staticmethod
    def _allow(r: Request, *methods: str) -> None:
        if r.method not in methods:
            raise ApiError(
                405,
                "method_not_allowed",
                f"{r.method} is not allowed here; use {' or '.join(methods)}",
                {"Allow": ", ".join(methods)},
            )

    def _authorize(self, r: Request) -> None:
        header = r.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(
                401,
                "unauthorized",
                "send the shop's token as 'Authorization: Bearer <token>'",
                {"WWW-Authenticate": 'Bearer realm="reorder-shop"'},
            )
        if not hmac.compare_digest(token.strip().encode("utf-8"), self._token):
            raise ApiError(403, "forbidden", "this token is not valid for this shop")

    # ------------------------------------------------------------------ faults

    def _before(self, r: Request) -> FaultPlan:
        """Draw this request's faults; answer 503 / 429 before doing anything."""
        plan = self.injector.draw()
        if plan.error:
            self.injector.count("error")
            raise ApiError(503, "unavailable", "the shop is temporarily unavailable; retry later")
        if plan.rate_limited:
            self.injector.count("rate_limit")
            retry_after = self.injector.faults.retry_after
            raise ApiError(
                429,
                "rate_limited",
                f"too many requests; retry after {retry_after} s",
                {"Retry-After": str(retry_after)},
            )
        return plan

    def _slow(self, plan: FaultPlan) -> None:
        if plan.slow:
            self.injector.count("slow")
            self.injector.sleep(time.monotonic())

    def _deliver(self, plan: FaultPlan, response: Response) -> Response:
        """Apply after-commit faults to a successful answer."""
        if response.status >= 300:
            return response
        if plan.drop_after_commit:
            self.injector.count("drop_after_commit")
            response.delivery, response.note = "drop", "dropped (fault drop_after_commit)"
        elif plan.garbage == "html":
            self.injector.count("garbage")
            response.body, response.content_type = _GARBAGE_HTML, "text/html; charset=utf-8"
            response.note = "garbage html"
        elif plan.garbage == "truncated":
            self.injector.count("garbage")
            response.delivery, response.note = "truncate", "garbage truncated"
        elif plan.garbage == "no_id":
            self.injector.count("garbage")
            document = json.loads(response.body)
            document.pop("id", None)
            response.body = json.dumps(document, separators=(",", ":")).encode("utf-8")
            response.note = "garbage no_id"
        return response

    def _faults(self, r: Request) -> Response:
        if r.method == "POST":
            if r.body_error:
                raise r.body_error
            changes = parse_json(r.body)
            if not isinstance(changes, dict):
                raise bad_request('send a JSON object of fault knobs, e.g. {"error_rate": 0.5}')
            try:
                self.injector.update(changes)
            except FaultSettingError as exc:
                raise bad_request(str(exc), "invalid_fault") from exc
        return Response.json(200, self.injector.faults.as_dict())

    def stats(self) -> dict[str, Any]:
        counters = self.store.counters()
        return {
            "post_attempts": counters.get("post_attempts", 0),
            "posts_without_key": counters.get("posts_without_key", 0),
            "orders": self.store.count_orders(),
            "replays": counters.get("replays", 0),
            "conflicts_409": counters.get("conflicts_409", 0),
            "mismatches_422": counters.get("mismatches_422", 0),
            "in_flight": self.store.in_flight(),
            "faults": self.injector.counts(),
        }

    # ------------------------------------------------------------------ orders

    def _post_order(self, r: Request) -> Response:
        # Counted before anything can fail, so tests see every attempt.
        self.store.bump("post_attempts")
        key_header = r.headers.get("idempotency-key")
        if not key_header:
            self.store.bump("posts_without_key")
        plan = self._before(r)
        self._authorize(r)
        if r.body_error:
            raise r.body_error
        key = check_idempotency_key(key_header)
        content_type = r.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != "application/json":
            raise bad_request("the body must be sent as Content-Type: application/json")
        order = parse_order(r.body)
        try:
            stored = self.store.begin(key, order.fingerprint)
        except ApiError as exc:
            self.store.bump("conflicts_409" if exc.status == 409 else "mismatches_422")
            raise
        if stored is not None:
            self.store.bump("replays")
            status = 200 if stored.status == 201 else stored.status
            replay = Response.json(status, stored.body, replayed=True)
            replay.headers["Idempotent-Replayed"] = "true"
            return self._deliver(plan, replay)
        return self._deliver(plan, self._place(key, order, plan))

    def _place(self, key: str, order: OrderRequest, plan: FaultPlan) -> Response:
        """Carry out a claimed request; the claim is always given up or stored."""
        try:
            self._slow(plan)
            now = self.clock.now()
            if order.sku not in self.catalog:
                message = f"the shop does not sell {order.sku!r}; check the product's sku"
                answer = StoredResponse(404, error_body("unknown_sku", message))
                answer = self.store.store_answer(key, order.fingerprint, answer, now)
            else:
                price = self.catalog[order.sku].price_cents
                answer = self.store.create_order(key, order, now, unit_price_cents=price)
        except BaseException:
            self.store.release(key)
            raise
        return Response.json(answer.status, answer.body)

    def _seq(self, order_id: str) -> int:
        match = _ORDER_ID.match(order_id)
        if not match:
            raise ApiError(404, "unknown_order", f"there is no order {order_id!r}")
        return int(match.group(1))

    def _get_order(self, r: Request, order_id: str) -> Response:
        plan = self._before(r)
        self._authorize(r)
        self._slow(plan)
        order = self.store.get_order(self._seq(order_id), self.clock.now())
        if order is None:
            raise ApiError(404, "unknown_order", f"there is no order {order_id!r}")
        return self._deliver(plan, Response.json(200, order))

    def _cancel(self, r: Request, order_id: str) -> Response:
        plan = self._before(r)
        self._authorize(r)
        self._slow(plan)
        order, cancelled = self.store.cancel(self._seq(order_id), self.clock.now())
        if order is None:
            raise ApiError(404, "unknown_order", f"there is no order {order_id!r}")
        if not cancelled:
            raise ApiError(
                409,
                "not_cancellable",
                f"order {order_id} is already {order['status']} and can no longer be cancelled",
            )
        return self._deliver(plan, Response.json(200, {"id": order["id"], "status": "cancelled"}))
