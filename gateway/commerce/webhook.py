"""The signed webhook: each order POSTed as JSON to any URL (n8n, Node-RED, a shop's
own endpoint), see docs/shops/webhook.md.

The body is the same bytes for the same intent. Every attempt carries the order's
``Idempotency-Key`` and a signature header over ``"<timestamp>.<body>"``::

    Reorder-Signature: t=1767225600,v1=<hex HMAC-SHA256 with the shared secret>

The timestamp is the attempt's, so a receiver can refuse a request older than its
window (a replayed capture) while a genuine retry, signed anew, still passes.

A receiver knows nothing of our retries: a lost answer makes the gateway send the
same order again under the same key. This is **at-least-once with a key**; the
receiver must act once per key.

>>> from gateway.config.models import WebhookSection
>>> hook = WebhookCommerce(WebhookSection(adapter="webhook",
...     url="http://127.0.0.1:1/hook", secret="s" * 32))
>>> hook.guarantee.value
'at-least-once with a key'
>>> hook.close()
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable

import httpx

from gateway.clock import RealClock
from gateway.commerce.base import (
    Accepted,
    CancelResult,
    Guarantee,
    PlaceResult,
    Probe,
    Status,
    StatusResult,
    TooLate,
    canonical_json,
    intent_document,
)
from gateway.commerce.credentials import Credential
from gateway.commerce.wire import (
    WIRE_ERRORS,
    classify,
    make_client,
    price_from,
    send,
)
from gateway.config.models import WebhookSection
from gateway.core.events import OrderState, PlaceOrder
from gateway.errors import UnreadableResponseError

__all__ = ["WebhookCommerce", "signature", "webhook_body"]

_MAX_ID = 200


def webhook_body(intent: PlaceOrder) -> bytes:
    """The order as the receiver gets it: compact JSON, sorted keys, so the same
    intent always gives the same bytes.

    >>> from gateway.core.events import PlaceOrder
    >>> intent = PlaceOrder(key="rg1_x", product="soap", sku="SKU-1", quantity=2,
    ...     device="laundry", trigger="press", event_id="e1", created_at=0.0, gateway="gw")
    >>> webhook_body(intent)[:32]
    b'{"created_at":"1970-01-01T00:00:'
    """
    document = intent_document(intent)
    document.update(idempotency_key=intent.key, product=intent.product)
    return canonical_json(document)


def signature(secret: bytes, timestamp: int, body: bytes) -> str:
    """The signature header's value: ``t=<unix seconds>,v1=<hex HMAC-SHA256>`` over
    ``b"<timestamp>." + body``.

    >>> signature(b"k" * 32, 1767225600, b"{}")[:13]
    't=1767225600,'
    """
    mac = hmac.new(secret, str(timestamp).encode("ascii") + b"." + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


class WebhookCommerce:
    """POSTs each order, signed, to ``url``. What the gateway does after a 2xx:

    * the order is **accepted**, with the receiver's ``id`` if its JSON answer has
      one (else the idempotency key), and its ``currency`` / ``total_cents`` if given;
    * a webhook has no status to ask: once ``delivered_after`` has passed the order
      counts as **delivered** (handed over), which frees ``one_open_order``;
    * a webhook cannot be asked to cancel: a cancel after the hand-over is refused
      (too late) — a held or queued order is still cancelled locally by the core.

    >>> from gateway.config.models import WebhookSection
    >>> s = WebhookSection(adapter="webhook", url="http://127.0.0.1:1/hook", secret="s" * 32)
    >>> with WebhookCommerce(s) as hook:
    ...     hook.get_order("ord_1").state.value
    'delivered'
    """

    guarantee = Guarantee.AT_LEAST_ONCE

    def __init__(
        self,
        settings: WebhookSection,
        *,
        transport: httpx.BaseTransport | None = None,
        wall_clock: Callable[[], float] | None = None,
        setting: str = "shops.webhook",
    ) -> None:
        self.url = settings.url
        self._setting = setting
        self._header = settings.signature_header
        self._secret = Credential(
            settings.secret, settings.secret_file, setting=setting, key="secret"
        )
        self._wall_clock = wall_clock or RealClock().now
        self._client = make_client(settings, setting, transport)

    def __enter__(self) -> WebhookCommerce:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def place_order(self, intent: PlaceOrder) -> PlaceResult:
        body = webhook_body(intent)
        try:
            headers = {
                "Content-Type": "application/json",
                "Idempotency-Key": intent.key,
                self._header: signature(
                    self._secret.required().encode(), int(self._wall_clock()), body
                ),
            }
            response = send(
                self._client,
                "POST",
                self.url,
                "webhook",
                headers=headers,
                body=body,
                wall_clock=self._wall_clock,
            )
            document = _optional_json(response)
            return Accepted(
                shop_order_id=_receiver_id(document) or intent.key,
                replayed=response.headers.get("Idempotent-Replayed", "").lower() == "true",
                price=price_from(document),
            )
        except WIRE_ERRORS as exc:
            return classify(exc, url_setting=f"{self._setting}.url")

    def get_order(self, shop_order_id: str) -> StatusResult:
        # Nothing to ask: the receiver took the order, and we see no further.
        return Status(shop_order_id=shop_order_id, state=OrderState.DELIVERED)

    def cancel_order(self, shop_order_id: str) -> CancelResult:
        return TooLate(
            "a webhook cannot recall an order it handed over — cancel it where the receiver put it"
        )

    def probe(self) -> Probe:
        """None: a webhook URL does whatever its receiver makes of a request (an n8n
        flow may act on a GET too), so there is no request that is safe to send for
        nothing. Reachability is known from the first order on."""
        return Probe(None, "a webhook has no safe probe")


def _optional_json(response: httpx.Response) -> dict[str, object]:
    """A receiver may answer with an empty body or plain text (n8n's default); only a
    JSON object can tell us an id or a price."""
    if not response.content:
        return {}
    try:
        document = json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        return {}
    return document if isinstance(document, dict) else {}


def _receiver_id(document: dict[str, object]) -> str | None:
    found = document.get("id")
    if isinstance(found, int) and not isinstance(found, bool):
        found = str(found)
    if not isinstance(found, str) or not found.strip():
        return None
    if len(found) > _MAX_ID:
        raise UnreadableResponseError(f"the receiver's order id is {len(found)} characters long")
    return found
