"""The webhook backend on the wire (httpx.MockTransport: exact requests and answers a
real receiver would not produce on demand), its settings, and the shops: section."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from gateway.commerce import GUARANTEES, Guarantee, make_backends
from gateway.commerce.base import (
    Accepted,
    Blocked,
    Misconfigured,
    Rejected,
    Retry,
    Status,
    TooLate,
    Unclear,
)
from gateway.commerce.webhook import WebhookCommerce, signature, webhook_body
from gateway.config.load import ConfigError, load_config, summarize
from gateway.config.models import Config, WebhookSection
from gateway.core.events import OrderState, PlaceOrder, Price
from gateway.outbox.schema import DB_NAME
from gateway.outbox.store import Store
from gateway.wiring import core_rules
from tests.support.webhook import verify
from tests.unit.test_outbox import _V1_ORDERS

SECRET = "0123456789abcdef0123456789abcdef-webhook"
NOW = 1_767_225_600.0


def intent(key: str = "rg1_k1", event_id: str = "e1", quantity: int = 2) -> PlaceOrder:
    return PlaceOrder(
        key=key,
        product="soap",
        sku="SKU-SOAP",
        quantity=quantity,
        device="laundry",
        trigger="press",
        event_id=event_id,
        created_at=NOW - 5.25,
        gateway="kitchen",
        shop="family",
    )


def hook(handler: Any, **settings: Any) -> WebhookCommerce:
    section = WebhookSection.model_validate(
        {"adapter": "webhook", "url": "https://n8n.example/webhook/reorder", "secret": SECRET}
        | settings
    )
    return WebhookCommerce(
        section,
        transport=httpx.MockTransport(handler),
        wall_clock=lambda: NOW,
        setting="shops.family",
    )


def answer(status: int, body: object = None, **headers: str) -> Any:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        content = b"" if body is None else json.dumps(body).encode()
        return httpx.Response(status, content=content, headers=headers)

    handler.seen = seen  # type: ignore[attr-defined]
    return handler


# ---------------------------------------------------------------------- the request


def test_the_body_is_the_same_bytes_for_the_same_intent_and_names_the_order() -> None:
    assert webhook_body(intent()) == webhook_body(intent())
    assert webhook_body(intent()) != webhook_body(intent(key="rg1_k2"))
    document = json.loads(webhook_body(intent()))
    assert document == {
        "idempotency_key": "rg1_k1",
        "product": "soap",
        "sku": "SKU-SOAP",
        "quantity": 2,
        "source": {
            "gateway": "kitchen",
            "device": "laundry",
            "trigger": "press",
            "event_id": "e1",
        },
        "created_at": "2025-12-31T23:59:54.750Z",
    }


def test_a_post_carries_the_key_and_a_signature_a_receiver_can_verify() -> None:
    handler = answer(201, {"id": "wh_1"})
    with hook(handler) as backend:
        assert backend.place_order(intent()) == Accepted("wh_1")
    (request,) = handler.seen
    assert request.method == "POST"
    assert request.headers["Idempotency-Key"] == "rg1_k1"
    assert request.headers["Content-Type"] == "application/json"
    assert request.content == webhook_body(intent())
    header = request.headers["Reorder-Signature"]
    # Computed here from the documented recipe, not from the backend's own function.
    mac = hmac.new(SECRET.encode(), f"{int(NOW)}.".encode() + request.content, hashlib.sha256)
    assert header == f"t={int(NOW)},v1={mac.hexdigest()}"
    assert verify(SECRET.encode(), header, request.content, NOW) is None
    assert verify(b"another secret of 32 characters!!", header, request.content, NOW) is not None
    assert verify(SECRET.encode(), header, request.content, NOW + 301) == (
        "timestamp outside the window"
    )
    assert verify(SECRET.encode(), header, request.content + b" ", NOW) == "bad signature"


def test_the_signature_header_can_be_renamed() -> None:
    handler = answer(200)
    with hook(handler, signature_header="X-Hub-Signature") as backend:
        backend.place_order(intent())
    assert "X-Hub-Signature" in handler.seen[0].headers
    assert "Reorder-Signature" not in handler.seen[0].headers


def test_signature_matches_the_documented_format() -> None:
    value = signature(b"k" * 32, 1767225600, b"{}")
    expected = hmac.new(b"k" * 32, b"1767225600.{}", hashlib.sha256).hexdigest()
    assert value == f"t=1767225600,v1={expected}"


# ---------------------------------------------------------------------- the answers


def test_an_answer_without_a_body_is_accepted_under_the_key() -> None:
    with hook(answer(204)) as backend:
        assert backend.place_order(intent()) == Accepted("rg1_k1")
    with hook(answer(200, ["not", "an", "object"])) as backend:
        assert backend.place_order(intent()) == Accepted("rg1_k1")


def test_a_price_in_the_answer_is_carried() -> None:
    body = {"id": 17, "currency": "EUR", "total_cents": 998, "unit_price_cents": 499}
    with hook(answer(201, body, **{"Idempotent-Replayed": "true"})) as backend:
        result = backend.place_order(intent())
    assert result == Accepted("17", replayed=True, price=Price("EUR", 998, 499))
    assert isinstance(result, Accepted) and result.price is not None
    assert result.price.shown == "9.98 EUR"


@pytest.mark.parametrize(
    ("status", "kind"),
    [(503, Retry), (429, Retry), (401, Blocked), (403, Blocked), (400, Rejected), (422, Rejected)],
)
def test_failures_are_classified_as_for_every_shop(status: int, kind: type) -> None:
    with hook(answer(status, {"error": {"message": "nope"}})) as backend:
        assert isinstance(backend.place_order(intent()), kind)


def test_a_redirect_names_the_url_setting_to_fix() -> None:
    with hook(answer(302, None, Location="https://elsewhere.example/")) as backend:
        result = backend.place_order(intent())
    assert isinstance(result, Misconfigured)
    assert "shops.family.url" in result.reason


def test_an_absurd_receiver_id_is_unclear_and_retried() -> None:
    with hook(answer(201, {"id": "x" * 500})) as backend:
        assert isinstance(backend.place_order(intent()), Unclear)


def test_no_connection_is_unreachable() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with hook(refuse) as backend:
        result = backend.place_order(intent())
    assert isinstance(result, Retry) and result.unreachable


def test_status_is_handed_over_and_cancel_is_too_late() -> None:
    with hook(answer(500)) as backend:
        assert backend.get_order("wh_1") == Status("wh_1", OrderState.DELIVERED)
        assert isinstance(backend.cancel_order("wh_1"), TooLate)
        assert backend.guarantee is Guarantee.AT_LEAST_ONCE


def test_the_secret_file_is_reread_and_never_shown(tmp_path: Path) -> None:
    secret_file = tmp_path / "webhook-secret"
    secret_file.write_text(SECRET + "\n")
    handler = answer(201, {"id": "wh_1"})
    section = WebhookSection(
        adapter="webhook", url="https://n8n.example/hook", secret_file=str(secret_file)
    )
    with WebhookCommerce(
        section, transport=httpx.MockTransport(handler), wall_clock=lambda: NOW
    ) as backend:
        backend.place_order(intent())
        rotated = "f" * 40
        secret_file.write_text(rotated)
        os.utime(secret_file, ns=(1, 1))  # a new mtime, whatever the clock's resolution
        backend.place_order(intent())
        secret_file.unlink()
        missing = backend.place_order(intent())
    first, second = (r.headers["Reorder-Signature"] for r in handler.seen)
    assert verify(SECRET.encode(), first, handler.seen[0].content, NOW) is None
    assert verify(rotated.encode(), second, handler.seen[1].content, NOW) is None
    assert isinstance(missing, Blocked) and "secret_file" in missing.reason
    assert SECRET not in repr(section) and SECRET not in missing.reason


# ---------------------------------------------------------------------- the config


def write(tmp_path: Path, doc: dict[str, Any]) -> Path:
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    path.chmod(0o600)
    return path


def two_shops(tmp_path: Path, **products: Any) -> dict[str, Any]:
    secret = tmp_path / "webhook-secret"
    secret.write_text(SECRET)
    secret.chmod(0o600)
    return {
        "gateway": {"id": "kitchen", "state_dir": str(tmp_path / "state")},
        "shops": {
            "roaster": {"base_url": "https://roaster.example/api/v1", "token": "t"},
            "family": {
                "adapter": "webhook",
                "url": "https://n8n.example/webhook/reorder",
                "secret_file": str(secret),
            },
        },
        "products": products
        or {
            "coffee": {"sku": "LAVAZZA-1KG", "shop": "roaster"},
            "detergent": {"sku": "TIDE-PODS-42", "shop": "family"},
        },
    }


def problems(tmp_path: Path, doc: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, doc), env={})
    return caught.value.messages


def test_two_shops_load_and_check_states_each_guarantee(tmp_path: Path) -> None:
    loaded = load_config(write(tmp_path, two_shops(tmp_path)), env={})
    config = loaded.config
    assert sorted(config.all_shops) == ["family", "roaster"]
    family = config.all_shops["family"]
    assert isinstance(family, WebhookSection)
    assert family.secret is not None and family.secret.get_secret_value() == SECRET
    assert family.secret_file == str(tmp_path / "webhook-secret")
    rules = core_rules(config, b"s" * 32)
    assert rules.products["coffee"].shop == "roaster"
    assert rules.products["detergent"].shop == "family"
    text = summarize(config)
    assert "shop roaster: http shop at roaster.example (https), token set" in text
    assert "shop family: webhook shop at n8n.example (https), secret set" in text
    assert f"  guarantee: {Guarantee.NATIVE_KEYS.explained}" in text
    assert f"  guarantee: {Guarantee.AT_LEAST_ONCE.explained}" in text
    assert "  coffee: LAVAZZA-1KG x1 from roaster" in text
    assert SECRET not in text
    backends = make_backends(config)
    try:
        assert {n: b.guarantee for n, b in backends.items()} == {
            "roaster": GUARANTEES["http"],
            "family": GUARANTEES["webhook"],
        }
    finally:
        for backend in backends.values():
            backend.close()


def test_one_commerce_section_is_the_shop_named_default() -> None:
    config = Config.model_validate(
        {
            "gateway": {"id": "gw"},
            "commerce": {"base_url": "http://127.0.0.1/api"},
            "products": {"tea": {"sku": "T"}},
        }
    )
    assert list(config.all_shops) == ["default"]
    assert config.shop_of("tea") == "default"
    assert core_rules(config, b"s" * 32).products["tea"].shop == "default"


def test_a_misspelt_shop_gets_did_you_mean_and_a_missing_one_is_asked_for(
    tmp_path: Path,
) -> None:
    found = problems(
        tmp_path,
        two_shops(
            tmp_path,
            coffee={"sku": "LAVAZZA-1KG", "shop": "rooster"},
            detergent={"sku": "TIDE-PODS-42"},
        ),
    )
    assert any(
        "products.coffee.shop: unknown shop 'rooster' — did you mean 'roaster'?" in m for m in found
    ), found
    assert any(
        "products.detergent.shop: names no shop, and there are several" in m for m in found
    ), found


def test_commerce_and_shops_together_or_neither_are_refused(tmp_path: Path) -> None:
    both = two_shops(tmp_path) | {"commerce": {"base_url": "https://shop.example/api/v1"}}
    assert any("both 'commerce:' and 'shops:' are set" in m for m in problems(tmp_path, both))
    neither = two_shops(tmp_path)
    del neither["shops"]
    del neither["products"]["coffee"]["shop"], neither["products"]["detergent"]["shop"]
    assert any("no shop" in m for m in problems(tmp_path, neither))


def test_webhook_settings_are_checked_where_they_are_written(tmp_path: Path) -> None:
    doc = two_shops(tmp_path)
    family = doc["shops"]["family"]
    del family["secret_file"]
    family |= {"secret": "short-and-guessable", "url": "http://n8n.lan/hook", "sekret": 1}
    found = problems(tmp_path, doc)
    assert any("shops.family.secret: is shorter than 32 characters" in m for m in found), found
    assert any("shops.family.url: plain http://" in m for m in found), found
    assert any("shops.family.sekret: unknown key" in m for m in found), found
    assert not any("short-and-guessable" in m for m in found), found
    doc["shops"]["family"] = {"adapter": "carrier-pigeon"}
    assert any("shops.family: unknown adapter" in m for m in problems(tmp_path, doc))


def test_a_missing_secret_file_is_named(tmp_path: Path) -> None:
    doc = two_shops(tmp_path)
    doc["shops"]["family"]["secret_file"] = "nowhere"
    assert any("shops.family.secret_file" in m for m in problems(tmp_path, doc))


# ---------------------------------------------------------------------- the outbox


def test_the_intent_keeps_its_shop_and_its_price(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    try:
        store.commit([intent()])
        row = store.get("rg1_k1")
        assert row is not None and row.shop == "family" and row.intent == intent()
        assert row.price is None
        store.record_price("rg1_k1", Price("EUR", 998, 499))
        row = store.get("rg1_k1")
        assert row is not None and row.price == Price("EUR", 998, 499)
    finally:
        store.close()


def test_a_version_1_outbox_goes_to_the_shop_named_default(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / DB_NAME)
    db.executescript(_V1_ORDERS)
    db.execute(
        "INSERT INTO orders (key, product, sku, quantity, device, trigger, event_id, body, "
        "state, attempts, next_attempt_at, created_at, updated_at) "
        "VALUES ('rg1_old', 'soap', 'SKU-SOAP', 1, 'laundry', 'press', 'evt-1', '{}', "
        "'queued', 0, 0, 0, 0)"
    )
    db.commit()
    db.close()
    store = Store.open(tmp_path)
    try:
        row = store.get("rg1_old")
        assert row is not None and row.shop == "default" and row.intent.shop == "default"
    finally:
        store.close()


def test_a_literal_shop_secret_in_a_readable_file_is_warned_about(tmp_path: Path) -> None:
    doc = two_shops(tmp_path)
    del doc["shops"]["family"]["secret_file"]
    doc["shops"]["family"]["secret"] = SECRET
    path = write(tmp_path, doc)
    path.chmod(0o644)
    warnings = load_config(path, env={}).warnings
    assert any("shops.family.secret: this file holds a secret" in w for w in warnings), warnings
    assert any("shops.roaster.token: this file holds a secret" in w for w in warnings), warnings
    assert not any(SECRET in w for w in warnings)
