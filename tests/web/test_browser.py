"""The page in a real headless browser: Debian's Chromium driven by Playwright.

A press appears on the Now page, is cancelled there, and the cancel reaches the shop;
every page is readable with JavaScript switched off. Screenshots of each page go to
build/screenshots/ (or ``$RG_SCREENSHOTS``) for review; the ones in docs/screenshots/
are copies of a run's, taken with ``RG_SCREENSHOTS=docs/screenshots``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.e2e.conftest import MakeGateway, MakeShop, assert_exactly_once
from tests.support.gateway import press_payload
from tests.support.publisher import Publisher, wait_until
from tests.web.test_page import PASSWORD, web_gateway

pytestmark = pytest.mark.e2e
SCREENSHOTS = Path(
    os.environ.get("RG_SCREENSHOTS")
    or Path(__file__).resolve().parents[2] / "build" / "screenshots"
)
CHROMIUM = os.environ.get("RG_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (scripts/test does)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield launched
        finally:
            launched.close()


def shoot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def log_in(page: Page, url: str) -> None:
    page.goto(url + "/login")
    shoot(page, "login")
    page.fill("input[name=password]", PASSWORD)
    page.click("text=Log in")
    page.wait_for_url(url + "/")


def test_a_press_shows_on_the_page_and_its_cancel_reaches_the_shop(
    browser: Browser, make_gateway: MakeGateway, make_shop: MakeShop, tmp_path: Path
) -> None:
    gw, client, shop = web_gateway(
        make_gateway, make_shop, tmp_path, {"detergent": {"sku": "TIDE-PODS-42"}}
    )
    url = str(client.base_url).rstrip("/")
    client.close()
    context = browser.new_context(viewport={"width": 390, "height": 844}, java_script_enabled=False)
    try:
        page = context.new_page()
        log_in(page, url)
        with Publisher(gw.broker_url) as button:
            button.publish(gw.button_topic, press_payload("b1", 1))
        assert_exactly_once(shop, gw, ["b1"], timeout=20.0)

        def shows_accepted() -> bool:
            page.reload()
            return "accepted" in page.inner_text("body")

        wait_until(shows_accepted, 15.0, "the order shows on the Now page")
        shoot(page, "now")
        page.click("text=Cancel this order")
        wait_until(
            lambda: [o["status"] for o in shop.orders()] == ["cancelled"],
            15.0,
            "the cancel reaches the shop",
        )
        page.goto(url + "/history")
        assert "detergent" in page.inner_text("body")
        shoot(page, "history")
        page.goto(url + "/health")
        assert "Dead letters" in page.inner_text("body")
        shoot(page, "health")
    finally:
        context.close()


def test_with_javascript_a_press_appears_without_a_reload(
    browser: Browser, make_gateway: MakeGateway, make_shop: MakeShop, tmp_path: Path
) -> None:
    gw, client, shop = web_gateway(
        make_gateway, make_shop, tmp_path, {"detergent": {"sku": "TIDE-PODS-42"}}
    )
    url = str(client.base_url).rstrip("/")
    with client:
        # The stream is the household's like every page: no session, no events.
        assert client.get("/events").status_code == 303
    context = browser.new_context(viewport={"width": 390, "height": 844}, java_script_enabled=True)
    try:
        page = context.new_page()
        navigations: list[str] = []
        page.on("framenavigated", lambda frame: navigations.append(frame.url))
        log_in(page, url)
        assert "no open order" in page.inner_text("#now")
        before = len(navigations)
        # The stream must be open before the press, or its change would go to nobody.
        page.wait_for_function("() => document.documentElement.dataset.live === 'open'")
        with Publisher(gw.broker_url) as button:
            button.publish(gw.button_topic, press_payload("j1", 1))
        assert_exactly_once(shop, gw, ["j1"], timeout=20.0)
        page.wait_for_selector("#now .order", timeout=15_000)
        page.wait_for_function(
            "() => document.querySelector('#now').innerText.includes('accepted')", timeout=15_000
        )
        assert len(navigations) == before, "the page reloaded instead of updating"
        assert int(page.evaluate("document.documentElement.dataset.liveUpdates")) >= 1
        shoot(page, "now-live")
        page.goto(url + "/devices")
        row = page.inner_text("tr[data-device=e2e-button]")
        # The decision about the press: the order's later states are on Now.
        assert "nothing yet" not in row and "ordered" in row and "accepted" not in row, row
        assert "limit_reached" in page.inner_text("body")  # the LED table
        shoot(page, "devices")
        page.goto(url + "/history")
        body = page.inner_text("body")
        assert "Spending this month" in body and "event j1" in body, body
        shoot(page, "history-live")
    finally:
        context.close()
