"""The household's page against a real gateway process, broker and reference shop,
spoken to over HTTP as a browser without JavaScript does (forms, cookies, redirects)."""

from __future__ import annotations

import json
import re
import signal
import ssl
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.web.auth import write_password_file
from tests.e2e.conftest import MakeGateway, MakeShop, assert_exactly_once
from tests.support.broker import TestCA
from tests.support.gateway import GatewayProcess, press_payload
from tests.support.ports import free_port, wait_for_port
from tests.support.publisher import Publisher, wait_until

pytestmark = pytest.mark.e2e
PASSWORD = "correct horse battery"
_FORM = re.compile(
    r'<form method=post action="/(\w+)"><input type=hidden name=csrf value="([^"]+)">'
    r'<input type=hidden name=key value="([^"]+)">'
)


def web_gateway(
    make_gateway: MakeGateway,
    make_shop: MakeShop,
    tmp_path: Path,
    products: dict[str, Any],
    extra: dict[str, Any] | None = None,
) -> tuple[GatewayProcess, httpx.Client, Any]:
    shop = make_shop()
    port = free_port()
    password_file = tmp_path / "web-password"
    write_password_file(password_file, PASSWORD)
    config = {
        "products": products,
        "web": {"port": port, "password_file": str(password_file)},
        **(extra or {}),
    }
    gw = make_gateway(config, shop=shop).start()
    gw.wait_ready()
    wait_for_port(port)
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10.0)
    return gw, client, shop


def log_in(client: httpx.Client) -> None:
    answer = client.post("/login", data={"password": PASSWORD})
    assert answer.status_code == 303, answer.text
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Secure" not in cookie


def forms(client: httpx.Client, page: str = "/") -> list[tuple[str, str, str]]:
    answer = client.get(page)
    assert answer.status_code == 200
    return [(m[0], m[1], m[2]) for m in _FORM.findall(answer.text)]


def test_login_press_cancel_and_the_cancel_reaches_the_shop(
    make_gateway: MakeGateway, make_shop: MakeShop, tmp_path: Path
) -> None:
    gw, client, shop = web_gateway(
        make_gateway, make_shop, tmp_path, {"detergent": {"sku": "TIDE-PODS-42"}}
    )
    with client:
        assert client.get("/").status_code == 303  # not logged in: to the login page
        log_in(client)
        assert "no open order" in client.get("/").text
        with Publisher(gw.broker_url) as button:
            button.publish(gw.button_topic, press_payload("w1", 1))
        assert_exactly_once(shop, gw, ["w1"], timeout=20.0)
        wait_until(lambda: "accepted" in client.get("/").text, 15.0, "the order shows accepted")
        [(_, csrf, key)] = [f for f in forms(client) if f[0] == "cancel"]
        refused = client.post("/cancel", data={"key": key})
        assert refused.status_code == 403
        refused = client.post("/cancel", data={"key": key, "csrf": "forged"})
        assert refused.status_code == 403
        assert client.post("/cancel", data={"key": key, "csrf": csrf}).status_code == 303
        wait_until(
            lambda: [o["status"] for o in shop.orders()] == ["cancelled"],
            15.0,
            "the cancel reaches the shop",
        )
        assert "cancel asked via web" in gw.log_text()
        assert "Traceback" not in gw.log_text()


def test_a_held_order_confirmed_on_the_page_reaches_the_shop(
    make_gateway: MakeGateway, make_shop: MakeShop, tmp_path: Path
) -> None:
    products = {"detergent": {"sku": "TIDE-PODS-42", "confirm": True, "confirm_expires": "1h"}}
    gw, client, shop = web_gateway(make_gateway, make_shop, tmp_path, products)
    with client:
        log_in(client)
        with Publisher(gw.broker_url) as button:
            button.publish(gw.button_topic, press_payload("h1", 1))
        wait_until(lambda: "held" in client.get("/").text, 15.0, "the held order shows")
        page = client.get("/").text
        assert "place this paid order" in page
        assert shop.orders() == []
        [(_, csrf, key)] = [f for f in forms(client) if f[0] == "confirm"]
        assert client.post("/confirm", data={"key": key, "csrf": csrf}).status_code == 303
        assert_exactly_once(shop, gw, ["h1"], timeout=20.0)
        assert "confirmed via web" in gw.log_text()
        history = client.get("/history").text
        assert "detergent" in history and "Health" in client.get("/health").text


def test_wrong_passwords_are_rate_limited(
    make_gateway: MakeGateway, make_shop: MakeShop, tmp_path: Path
) -> None:
    _, client, _ = web_gateway(make_gateway, make_shop, tmp_path, {"tea": {"sku": "TEA"}})
    with client:
        codes = [
            client.post("/login", data={"password": f"guess{i}"}).status_code for i in range(4)
        ]
        assert codes == [401, 401, 401, 401]
        limited = client.post("/login", data={"password": "guess5"})
        assert limited.status_code == 429 and 50 <= int(limited.headers["retry-after"]) <= 60
        # Even the right password waits until the minute is over.
        assert client.post("/login", data={"password": PASSWORD}).status_code == 429


def test_the_devices_page_shows_a_zigbee_buttons_battery_and_link(
    make_gateway: MakeGateway, make_shop: MakeShop, tmp_path: Path
) -> None:
    button = {"name": "hall", "product": "tea", "profile": "zigbee2mqtt"}
    button["mqtt"] = "zigbee2mqtt/hall"
    gw, client, _ = web_gateway(
        make_gateway, make_shop, tmp_path, {"tea": {"sku": "TEA"}}, {"buttons": [button]}
    )
    with client:
        log_in(client)
        assert "not reported" in client.get("/devices").text
        with Publisher(gw.broker_url) as z2m:
            # The IKEA E1743's state object as Z2M publishes it between presses
            # (tests/fixtures/devices/corpus.json), with a battery now running low.
            z2m.publish("zigbee2mqtt/hall", b'{"battery": 9, "linkquality": 54, "voltage": 2500}')
            wait_until(
                lambda: "battery 9 % (2.5 V) · link LQI 54" in client.get("/devices").text,
                15.0,
                "the Devices page shows the battery",
            )


def test_a_dead_letter_is_retried_from_the_health_page_through_the_core(
    make_gateway: MakeGateway, make_shop: MakeShop, tmp_path: Path
) -> None:
    gw, client, shop = web_gateway(
        make_gateway, make_shop, tmp_path, {"detergent": {"sku": "NO-SUCH-SKU"}}
    )
    with client:
        log_in(client)
        with Publisher(gw.broker_url) as button:
            button.publish(gw.button_topic, press_payload("d1", 1))
        wait_until(lambda: "rejected" in client.get("/health").text, 20.0, "a dead letter")
        [(_, csrf, key)] = [f for f in forms(client, "/health") if f[0] == "retry"]
        posts = shop.stats()["post_attempts"]
        assert client.post("/retry", data={"key": key}).status_code == 403
        assert client.post("/retry", data={"key": key, "csrf": csrf}).status_code == 303
        wait_until(lambda: "queued again via web" in gw.log_text(), 10.0, "the core re-queues it")
        # The shop is asked once more, with the same key, and refuses the unknown SKU again.
        wait_until(lambda: shop.stats()["post_attempts"] > posts, 10.0, "sent again")
        assert shop.orders() == []
        assert "Traceback" not in gw.log_text()


def test_over_https_the_live_stream_tells_a_press_and_a_reload_shows_a_new_product(
    make_gateway: MakeGateway, make_shop: MakeShop, tmp_path: Path
) -> None:
    """The page over HTTPS with its own certificate: a Secure cookie, the live stream
    through TLS; and after a reload (SIGHUP) the page shows the new config's products."""
    ca = TestCA(tmp_path / "ca")
    cert = ca.issue("web", "IP:127.0.0.1")
    shop = make_shop()
    port = free_port()
    password_file = tmp_path / "web-password"
    write_password_file(password_file, PASSWORD)
    web = {"port": port, "password_file": str(password_file), "certificate": str(cert.cert),
           "private_key": str(cert.key)}  # fmt: skip
    gw = make_gateway({"products": {"detergent": {"sku": "TIDE-PODS-42"}}, "web": web}, shop=shop)
    gw.start().wait_ready()
    wait_for_port(port)
    trust = ssl.create_default_context(cafile=str(ca.cert))
    with httpx.Client(base_url=f"https://127.0.0.1:{port}", verify=trust, timeout=10) as c:
        answer = c.post("/login", data={"password": PASSWORD})
        assert answer.status_code == 303 and "Secure" in answer.headers["set-cookie"]
        with c.stream("GET", "/events") as stream, Publisher(gw.broker_url) as button:
            assert stream.headers["content-type"].startswith("text/event-stream")
            button.publish(gw.button_topic, press_payload("s1", 1))
            for line in stream.iter_lines():
                if line.startswith("data:") and '"outcome":"ordered"' in line:
                    break
        assert_exactly_once(shop, gw, ["s1"], timeout=20.0)
        assert "<h2>tea</h2>" not in c.get("/").text
        gw.config["products"]["tea"] = {"sku": "TEA-EARL-GREY"}
        gw.config_path.write_text(json.dumps(gw.config))
        assert gw.proc is not None
        gw.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: "configuration reloaded" in gw.log_text(), 10.0, "reloaded")
        assert "<h2>tea</h2>" in c.get("/").text
    # After a restart, History still lists the decisions from before it.
    code, _ = gw.terminate()
    assert code == 0
    gw.start().wait_ready()
    wait_for_port(port)
    with httpx.Client(base_url=f"https://127.0.0.1:{port}", verify=trust, timeout=10) as c:
        assert c.post("/login", data={"password": PASSWORD}).status_code == 303
        assert "event s1" in c.get("/history").text
    # Without the CA the page's certificate is refused: TLS is real, not optional.
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(f"https://127.0.0.1:{port}/login", timeout=5)
