"""The home_assistant backend against a real Home Assistant 2024.3.3
(tests/support/homeassistant.py): one item per order, also when an answer is lost,
the item's fate read back as the order's state, cancel, and a wrong token.
"""

from __future__ import annotations

import uuid

import httpx

from gateway.commerce import (
    Accepted,
    Blocked,
    Cancelled,
    Rejected,
    Retry,
    Status,
    TooLate,
    Unclear,
)
from gateway.commerce.home_assistant import HomeAssistantCommerce, marker
from gateway.config.models import HomeAssistantShopSection
from gateway.core.events import OrderState, PlaceOrder
from tests.support.homeassistant import HomeAssistant


def intent(quantity: int = 2) -> PlaceOrder:
    n = uuid.uuid4().hex
    return PlaceOrder(
        key=f"rg1_{n}",
        product="coffee beans",
        sku="LAVAZZA-1KG",
        quantity=quantity,
        device="kitchen",
        trigger="press",
        event_id=f"ev-{n}",
        created_at=1767225600.0,
        gateway="test-gateway",
    )


def backend(
    ha: HomeAssistant, *, token: str | None = None, transport: httpx.BaseTransport | None = None
) -> HomeAssistantCommerce:
    settings = HomeAssistantShopSection(
        adapter="home_assistant", url=ha.url, token=token or ha.token, timeout="5s"
    )
    return HomeAssistantCommerce(settings, transport=transport, setting="shops.family")


def items_for(ha: HomeAssistant, order: PlaceOrder) -> list[dict[str, object]]:
    return [i for i in ha.shopping_list() if str(i["name"]).endswith(marker(order.key))]


class DropAnswerOf(httpx.BaseTransport):
    """The real transport, except that the answer to the first request matching
    ``method path`` is dropped after Home Assistant acted on it."""

    def __init__(self, method: str, path: str) -> None:
        self.method, self.path, self.dropped = method, path, 0
        self._real = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self._real.handle_request(request)
        if not self.dropped and (request.method, request.url.path) == (self.method, self.path):
            self.dropped += 1
            response.read()
            response.close()
            raise httpx.ReadTimeout("the answer was lost", request=request)
        return response

    def close(self) -> None:
        self._real.close()


def test_an_order_adds_one_marked_item_and_a_replay_adds_none(
    home_assistant: HomeAssistant,
) -> None:
    order = intent()
    with_ha = backend(home_assistant)
    try:
        first = with_ha.place_order(order)
        again = with_ha.place_order(order)
    finally:
        with_ha.close()
    assert isinstance(first, Accepted) and not first.replayed
    assert isinstance(again, Accepted) and again.replayed
    assert again.shop_order_id == first.shop_order_id
    [item] = items_for(home_assistant, order)
    assert item["id"] == first.shop_order_id
    assert item["name"] == f"coffee beans ×2 · {marker(order.key)}"
    assert item["complete"] is False


def test_a_lost_answer_is_retried_into_still_one_item(home_assistant: HomeAssistant) -> None:
    order = intent()
    dropping = DropAnswerOf("POST", "/api/shopping_list/item")
    with_ha = backend(home_assistant, transport=dropping)
    try:
        lost = with_ha.place_order(order)
        assert isinstance(lost, Retry) and lost.answer_lost
        assert len(items_for(home_assistant, order)) == 1  # HA did add it
        retried = with_ha.place_order(order)
    finally:
        with_ha.close()
    assert dropping.dropped == 1
    assert isinstance(retried, Accepted) and retried.replayed
    [item] = items_for(home_assistant, order)
    assert item["id"] == retried.shop_order_id


def test_the_item_ticked_off_is_delivered_and_too_late_to_cancel(
    home_assistant: HomeAssistant,
) -> None:
    order = intent(quantity=1)
    with_ha = backend(home_assistant)
    try:
        placed = with_ha.place_order(order)
        assert isinstance(placed, Accepted)
        uid = placed.shop_order_id
        assert with_ha.get_order(uid) == Status(shop_order_id=uid, state=OrderState.ACCEPTED)
        home_assistant.post(f"/api/shopping_list/item/{uid}", {"complete": True})
        assert with_ha.get_order(uid) == Status(shop_order_id=uid, state=OrderState.DELIVERED)
        assert isinstance(with_ha.cancel_order(uid), TooLate)
        # Ticked off, the item is still the order: a late retry adds no second one.
        replay = with_ha.place_order(order)
    finally:
        with_ha.close()
    assert isinstance(replay, Accepted) and replay.shop_order_id == uid
    [item] = items_for(home_assistant, order)
    assert item["name"] == f"coffee beans · {marker(order.key)}"
    assert item["complete"] is True


def test_cancel_removes_the_open_item(home_assistant: HomeAssistant) -> None:
    order = intent()
    other = intent()
    with_ha = backend(home_assistant)
    try:
        placed = with_ha.place_order(order)
        kept = with_ha.place_order(other)
        assert isinstance(placed, Accepted) and isinstance(kept, Accepted)
        assert isinstance(with_ha.cancel_order(placed.shop_order_id), Cancelled)
        assert items_for(home_assistant, order) == []
        assert len(items_for(home_assistant, other)) == 1  # only that one went
        gone = with_ha.get_order(placed.shop_order_id)
        # Removed (by the gateway or by a person): the order is off.
        assert gone == Status(shop_order_id=placed.shop_order_id, state=OrderState.CANCELLED)
        assert isinstance(with_ha.cancel_order(placed.shop_order_id), Cancelled)
    finally:
        with_ha.close()


def test_an_item_removed_between_the_look_and_the_removal_is_cancelled(
    home_assistant: HomeAssistant,
) -> None:
    # HA answers the removal of a missing item with a 500: the list read after it tells.
    order = intent()
    with_ha = backend(home_assistant)
    try:
        placed = with_ha.place_order(order)
        assert isinstance(placed, Accepted)
        uid = placed.shop_order_id

        class RemovedMeanwhile(httpx.HTTPTransport):
            def handle_request(self, request: httpx.Request) -> httpx.Response:
                if request.url.path == "/api/services/todo/remove_item":
                    home_assistant.clear_shopping_list()  # a person, just before us
                return super().handle_request(request)

        racing = backend(home_assistant, transport=RemovedMeanwhile())
        try:
            result = racing.cancel_order(uid)
        finally:
            racing.close()
    finally:
        with_ha.close()
    assert isinstance(result, Cancelled), result


def test_a_cancel_through_a_wrong_entity_is_rejected_and_the_item_kept(
    home_assistant: HomeAssistant,
) -> None:
    order = intent()
    with_ha = backend(home_assistant)
    settings = HomeAssistantShopSection(
        adapter="home_assistant", url=home_assistant.url, token=home_assistant.token,
        entity="todo.no_such_list",
    )  # fmt: skip
    wrong = HomeAssistantCommerce(settings, setting="shops.family")
    try:
        placed = with_ha.place_order(order)
        assert isinstance(placed, Accepted)
        refused = wrong.cancel_order(placed.shop_order_id)
    finally:
        with_ha.close()
        wrong.close()
    assert isinstance(refused, Rejected), refused
    assert "shops.family.entity" in refused.reason
    assert len(items_for(home_assistant, order)) == 1


def test_a_wrong_token_is_blocked_and_adds_nothing(home_assistant: HomeAssistant) -> None:
    order = intent()
    with_ha = backend(home_assistant, token="not-the-token")
    try:
        result = with_ha.place_order(order)
        status = with_ha.get_order("abc")
    finally:
        with_ha.close()
    assert isinstance(result, Blocked)
    assert "not-the-token" not in result.reason
    assert isinstance(status, Blocked)
    assert items_for(home_assistant, order) == []


def _answering(status: int, body: bytes, kind: str) -> HomeAssistantCommerce:
    # What a reverse proxy in front of Home Assistant may answer: a wire case the
    # real server does not produce.
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=body, headers={"Content-Type": kind})

    settings = HomeAssistantShopSection(
        adapter="home_assistant", url="http://127.0.0.1:9", token="t"
    )
    return HomeAssistantCommerce(settings, transport=httpx.MockTransport(answer))


def test_an_html_page_is_unclear_and_a_proxy_error_retried() -> None:
    html = _answering(200, b"<html><body>Sign in</body></html>", "text/html")
    busy = _answering(502, b"<html>Bad Gateway</html>", "text/html")
    try:
        assert isinstance(html.place_order(intent()), Unclear)
        assert isinstance(html.get_order("abc"), Unclear)
        assert isinstance(busy.place_order(intent()), Retry)
        assert isinstance(busy.cancel_order("abc"), Retry)
    finally:
        html.close()
        busy.close()


def test_the_probe_reads_the_api_root_and_tells_a_refused_token(
    home_assistant: HomeAssistant,
) -> None:
    good, bad = backend(home_assistant), backend(home_assistant, token="not-a-token")
    down = HomeAssistantCommerce(
        HomeAssistantShopSection(adapter="home_assistant", url="http://127.0.0.1:9", token="t"),
        setting="shops.family",
    )
    try:
        found, refused, gone = good.probe(), bad.probe(), down.probe()
    finally:
        good.close()
        bad.close()
        down.close()
    assert (found.reachable, found.refused) == (True, False), found
    assert (refused.reachable, refused.refused) == (True, True), refused
    assert "401" in refused.reason and "not-a-token" not in refused.reason
    assert gone.reachable is False, gone
