"""Wire-level cases of the Reorder API client that the real shop cannot easily
produce: HTTP-date and oversized Retry-After, odd status codes, headers sent.

Everything the reference shop *can* do (5xx, 429, garbage bodies, dropped
connections, timeouts) is tested against it in test_sender_shop.py.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

import httpx
import pytest

from gateway import __version__
from gateway.commerce.base import (
    Accepted,
    Blocked,
    Misconfigured,
    Rejected,
    Retry,
    Status,
    TooLate,
    Unclear,
    build_body,
)
from gateway.commerce.http import MAX_RETRY_AFTER, HttpCommerce, parse_retry_after
from gateway.config.models import CommerceSection
from gateway.core.events import OrderState, PlaceOrder
from gateway.errors import CommerceConfigError

NOW = 1_800_000_000.0
TOKEN = "s3cret-token-value"


def backend(handler: Callable[[httpx.Request], httpx.Response], **knobs: object) -> HttpCommerce:
    settings = CommerceSection(base_url="https://shop.test/api/v1", token=TOKEN, **knobs)
    return HttpCommerce(settings, transport=httpx.MockTransport(handler), wall_clock=lambda: NOW)


def answer(status: int, **kwargs: object) -> Callable[[httpx.Request], httpx.Response]:
    return lambda request: httpx.Response(status, **kwargs)  # type: ignore[arg-type]


def intent(key: str) -> PlaceOrder:
    return PlaceOrder(key, "soap", "SKU-1", 1, "laundry", "press", "e1", NOW, gateway="kitchen-pi")


def http_date(t: float) -> str:
    return format_datetime(datetime.fromtimestamp(t, UTC), usegmt=True)


def test_request_carries_key_token_body_and_user_agent() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201, json={"id": "ord_1", "status": "accepted"})

    with backend(handler) as shop:
        assert shop.place_order(intent("rg1_abc")) == Accepted("ord_1")
    (request,) = seen
    assert request.method == "POST"
    assert str(request.url) == "https://shop.test/api/v1/orders"
    assert request.headers["Idempotency-Key"] == "rg1_abc"
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["User-Agent"] == f"reorder-gateway/{__version__}"
    assert request.content == build_body(intent("rg1_abc"))


def test_replay_is_marked() -> None:
    handler = answer(200, json={"id": "ord_7"}, headers={"Idempotent-Replayed": "true"})
    with backend(handler) as shop:
        assert shop.place_order(intent("k")) == Accepted("ord_7", replayed=True)


def test_retry_after_as_http_date_is_measured_against_the_server_date() -> None:
    server_now = NOW + 3600  # the shop's clock is an hour ahead of ours
    headers = {"Retry-After": http_date(server_now + 90), "Date": http_date(server_now)}
    with backend(answer(429, headers=headers)) as shop:
        result = shop.place_order(intent("k"))
    assert isinstance(result, Retry)
    assert result.after == 90.0
    assert not result.unreachable


def test_retry_after_http_date_without_server_date_uses_our_clock() -> None:
    with backend(answer(503, headers={"Retry-After": http_date(NOW + 45)})) as shop:
        result = shop.place_order(intent("k"))
    assert isinstance(result, Retry) and result.after == 45.0


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("86400", MAX_RETRY_AFTER),
        ("-5", 0.0),
        ("2.5", 2.5),
        ("soon", None),
        ("nan", None),
        ("", None),
        (http_date(NOW + 10 * 86400), MAX_RETRY_AFTER),
        (http_date(NOW - 60), 0.0),
    ],
)
def test_retry_after_is_clamped(header: str, expected: float | None) -> None:
    assert parse_retry_after(header, now=NOW) == expected


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (408, Retry),
        (409, Retry),
        (425, Retry),
        (500, Retry),
        (502, Retry),
        (599, Retry),
        (301, Misconfigured),
        (401, Blocked),
        (403, Blocked),
        (400, Rejected),
        (404, Rejected),
        (410, Rejected),
        (418, Rejected),
        (422, Rejected),
        (202, Unclear),
        (204, Unclear),
    ],
)
def test_status_codes_are_classified(status: int, kind: type) -> None:
    body = {"error": {"code": "x", "message": "the shop says no"}} if status >= 300 else {}
    with backend(answer(status, json=body, headers={"Location": "/elsewhere"})) as shop:
        result = shop.place_order(intent("k"))
    assert isinstance(result, kind), result
    if kind is Rejected:
        assert "the shop says no" in result.reason  # type: ignore[attr-defined]
    if status == 301:
        assert "check commerce.base_url" in result.reason  # type: ignore[attr-defined]


def test_html_error_page_is_summarised_not_dumped() -> None:
    page = "<html><body>" + "x" * 5000 + "</body></html>"
    with backend(answer(400, text=page)) as shop:
        result = shop.place_order(intent("k"))
    assert isinstance(result, Rejected)
    assert result.reason == "HTTP 400: Bad Request"


def test_status_and_cancel_answers() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/cancel"):
            if "ord_2" in request.url.path:
                return httpx.Response(409, json={"error": {"code": "c", "message": "shipped"}})
            return httpx.Response(200, json={"id": "ord_1", "status": "cancelled"})
        if "ord_3" in request.url.path:
            return httpx.Response(200, json={"id": "ord_3", "status": "lost-in-space"})
        return httpx.Response(200, json={"id": "ord_1", "status": "shipped"})

    with backend(handler) as shop:
        assert shop.get_order("ord_1") == Status("ord_1", OrderState.SHIPPED)
        assert isinstance(shop.get_order("ord_3"), Unclear)
        assert shop.cancel_order("ord_1").__class__.__name__ == "Cancelled"
        assert shop.cancel_order("ord_2") == TooLate("shipped")
        # An id from the shop cannot steer the request to another path.
        assert isinstance(shop.get_order("../admin"), Unclear)


def test_token_never_reaches_the_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with backend(answer(403, json={"error": {"code": "f", "message": "bad token"}})) as shop:
        shop.place_order(intent("k"))
    assert TOKEN not in caplog.text
    assert TOKEN not in repr(shop.__dict__)


def test_unreadable_token_file_blocks(tmp_path: Path) -> None:
    settings = CommerceSection(
        base_url="https://shop.test/api/v1", token_file=str(tmp_path / "missing")
    )
    with HttpCommerce(settings, transport=httpx.MockTransport(answer(201))) as shop:
        result = shop.place_order(intent("k"))
    assert isinstance(result, Blocked)
    assert "token_file" in result.reason


def test_bad_settings_are_refused_clearly(tmp_path: Path) -> None:
    # The config model refuses this too; the adapter does not rely on it.
    unchecked = CommerceSection.model_construct(base_url="ftp://shop.test")
    with pytest.raises(CommerceConfigError, match="must be an http"):
        HttpCommerce(unchecked)
    bad_ca = tmp_path / "ca.pem"
    bad_ca.write_text("not a certificate")
    with pytest.raises(CommerceConfigError, match="ca_file"):
        HttpCommerce(CommerceSection(base_url="https://shop.test", ca_file=str(bad_ca)))
