"""The reference shop over loopback: idempotency, auth, validation, statuses,
cancel, every fault knob, persistence across restarts, concurrency, the CLI."""

from __future__ import annotations

import json
import logging
import os
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from firmware_sim.shop.server import ShopServer
from tests.support.shop import (  # noqa: F401  (fixtures "shop" and "shop_process")
    REPO,
    ShopProcess,
    order_body,
    shop_client,
    shop_fixture,
    shop_process_fixture,
)


class ManualClock:
    """The clock seam, moved by hand: status boundaries without waiting."""

    scale = 1.0

    def __init__(self, start: float) -> None:
        self.t = start

    def now(self) -> float:
        return self.t

    def wait(self, event: threading.Event, timeout: float | None) -> bool:
        return event.is_set()

    def sleep(self, seconds: float) -> None:
        self.t += seconds


@pytest.fixture
def client(shop: ShopServer) -> Iterator[httpx.Client]:
    with shop_client(shop.url, shop.token) as c:
        yield c


def post(client: httpx.Client, key: str | None, body: Any, **headers: str) -> httpx.Response:
    if key is not None:
        headers["Idempotency-Key"] = key
    return client.post("/orders", json=body, headers=headers)


def wait_until(predicate: Any, timeout: float = 10.0) -> None:
    """Poll for a condition another thread brings about (a bound, not a threshold)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.01)


# ---------------------------------------------------------------------- idempotency


def test_new_order_is_201_and_a_retry_replays_the_same_body(
    shop: ShopServer, client: httpx.Client
) -> None:
    first = post(client, "k-1", order_body("evt-1"))
    assert first.status_code == 201
    assert "Idempotent-Replayed" not in first.headers
    body = first.json()
    assert body["id"].startswith("ord_")
    assert body["status"] == "accepted"
    assert body["source"]["event_id"] == "evt-1"
    assert set(body) == {
        "id",
        "status",
        "sku",
        "quantity",
        "source",
        "created_at",
        "currency",
        "unit_price_cents",
        "total_cents",
    }
    # The catalog's price: the gateway shows the household what the order cost.
    assert body["currency"] == "EUR"
    assert body["total_cents"] == body["unit_price_cents"] * body["quantity"] > 0

    again = post(client, "k-1", order_body("evt-1"))
    assert again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == body
    assert len(shop.orders()) == 1
    assert shop.stats()["replays"] == 1


def test_same_json_in_another_key_order_counts_as_the_same_body(client: httpx.Client) -> None:
    body = order_body("evt-1")
    assert post(client, "k-1", body).status_code == 201
    reordered = json.dumps(dict(reversed(list(body.items()))), indent=2)
    replay = client.post(
        "/orders",
        content=reordered,
        headers={"Idempotency-Key": "k-1", "Content-Type": "application/json"},
    )
    assert replay.status_code == 200


def test_same_key_with_a_different_body_is_422_and_orders_nothing(
    shop: ShopServer, client: httpx.Client
) -> None:
    assert post(client, "k-1", order_body("evt-1")).status_code == 201
    reused = post(client, "k-1", order_body("evt-1", quantity=2))
    assert reused.status_code == 422
    assert reused.json()["error"]["code"] == "idempotency_key_reused"
    assert len(shop.orders()) == 1
    assert shop.stats()["mismatches_422"] == 1


def test_a_second_request_while_the_first_is_in_progress_gets_409(
    shop: ShopServer, client: httpx.Client
) -> None:
    shop.set_faults(slow_rate=1.0, slow_seconds=300.0)
    results: list[httpx.Response] = []
    first = threading.Thread(target=lambda: results.append(post(client, "k-1", order_body("e"))))
    first.start()
    wait_until(lambda: shop.stats()["in_flight"] == 1)
    shop.set_faults(slow_rate=0.0)  # only the first request is held

    second = post(client, "k-1", order_body("e"))
    assert second.status_code == 409
    assert second.json()["error"]["code"] == "request_in_progress"
    assert second.headers["Retry-After"] == "1"

    shop.set_faults(slow_seconds=0.0)  # releases the held request
    first.join(timeout=10)
    assert [r.status_code for r in results] == [201]
    third = post(client, "k-1", order_body("e"))
    assert third.status_code == 200
    assert third.json() == results[0].json()
    assert shop.stats()["conflicts_409"] == 1
    assert len(shop.orders()) == 1


@pytest.mark.parametrize(
    ("key", "code"),
    [
        (None, "missing_idempotency_key"),
        ("", "missing_idempotency_key"),
        ("k" * 256, "invalid_idempotency_key"),
        ("tab\there", "invalid_idempotency_key"),
    ],
)
def test_missing_or_invalid_key_is_400_and_orders_nothing(
    shop: ShopServer, client: httpx.Client, key: str | None, code: str
) -> None:
    response = post(client, key, order_body("e"))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == code
    assert shop.orders() == []
    stats = shop.stats()
    assert stats["post_attempts"] == 1
    assert stats["posts_without_key"] == (1 if not key else 0)


def test_a_key_of_255_characters_is_accepted(client: httpx.Client) -> None:
    assert post(client, "k" * 255, order_body("e")).status_code == 201


def test_unknown_sku_is_404_stored_and_replayed(shop: ShopServer, client: httpx.Client) -> None:
    first = post(client, "k-1", order_body("e", sku="NOPE-1"))
    assert first.status_code == 404
    assert first.json()["error"]["code"] == "unknown_sku"
    replay = post(client, "k-1", order_body("e", sku="NOPE-1"))
    assert replay.status_code == 404
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == first.json()
    # The key is spent on the 404: a corrected body needs a new key.
    assert post(client, "k-1", order_body("e")).status_code == 422
    assert shop.orders() == []


def test_twenty_threads_with_one_key_make_exactly_one_order(
    shop: ShopServer, client: httpx.Client
) -> None:
    barrier = threading.Barrier(20)
    responses: list[httpx.Response] = []
    lock = threading.Lock()

    def send() -> None:
        with shop_client(shop.url, shop.token) as own:
            barrier.wait()
            response = post(own, "same-key", order_body("evt-20"))
        with lock:
            responses.append(response)

    threads = [threading.Thread(target=send) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)

    codes = sorted(r.status_code for r in responses)
    assert len(codes) == 20
    assert codes.count(201) == 1
    assert set(codes) <= {200, 201, 409}
    created = next(r for r in responses if r.status_code == 201).json()
    assert all(r.json() == created for r in responses if r.status_code == 200)
    assert [o["id"] for o in shop.orders()] == [created["id"]]


# ---------------------------------------------------------------------- auth and validation


@pytest.mark.parametrize(
    ("authorization", "status"),
    [(None, 401), ("Basic dXNlcjpwYXNz", 401), ("Bearer", 401), ("Bearer wrong", 403)],
)
def test_bad_credentials_are_refused_and_not_stored(
    shop: ShopServer, authorization: str | None, status: int
) -> None:
    headers = {"Idempotency-Key": "k-1"}
    if authorization is not None:
        headers["Authorization"] = authorization
    response = httpx.post(f"{shop.url}/orders", json=order_body("e"), headers=headers)
    assert response.status_code == status
    assert response.json()["error"]["code"] in {"unauthorized", "forbidden"}
    if status == 401:
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    # Not stored: the same key with the right token still places the order.
    with shop_client(shop.url, shop.token) as client:
        assert post(client, "k-1", order_body("e")).status_code == 201


def test_the_token_never_reaches_the_log(
    shop: ShopServer, client: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="reorder_shop")
    post(client, "k-1", order_body("e"))
    post(client, "k-1", order_body("e"))
    # The server thread logs after it has answered: give it a moment to do so.
    deadline = time.monotonic() + 5
    while "replayed" not in caplog.text and time.monotonic() < deadline:
        time.sleep(0.01)
    text = caplog.text
    assert "POST /api/v1/orders 201" in text
    assert "POST /api/v1/orders 200 replayed" in text
    assert shop.token not in text


def _bad_bodies() -> list[tuple[str, bytes]]:
    good = order_body("e")
    cases: list[tuple[str, Any]] = [
        ("missing field(s): created_at", {k: v for k, v in good.items() if k != "created_at"}),
        ("'quantity' must be a whole number", {**good, "quantity": "1"}),
        ("'quantity' must be a whole number", {**good, "quantity": True}),
        ("'quantity' must be between", {**good, "quantity": 0}),
        ("'sku' must be a non-empty string", {**good, "sku": ""}),
        ("'source.trigger' must be one of", {**good, "source": {**good["source"], "trigger": "x"}}),
        (
            "missing field(s): source.event_id",
            {**good, "source": {"gateway": "g"} | {"device": "d", "trigger": "press"}},
        ),
        ("'created_at' must be an RFC 3339 time", {**good, "created_at": "yesterday"}),
        ("with a zone", {**good, "created_at": "2026-01-02T03:04:05"}),
        ("unknown field(s): colour", {**good, "colour": "red"}),
        ("must be a JSON object", [good]),
    ]
    encoded = [(why, json.dumps(body).encode()) for why, body in cases]
    return [*encoded, ("not valid JSON", b"{nope"), ("not UTF-8", b"\xff\xfe")]


@pytest.mark.parametrize(("why", "raw"), _bad_bodies())
def test_bad_bodies_are_400_with_a_message_naming_the_problem(
    shop: ShopServer, client: httpx.Client, why: str, raw: bytes
) -> None:
    headers = {"Idempotency-Key": "k-1", "Content-Type": "application/json"}
    response = client.post("/orders", content=raw, headers=headers)
    assert response.status_code == 400
    assert why in response.json()["error"]["message"]
    # 400s are not stored: the key is still free for a correct request.
    assert post(client, "k-1", order_body("e")).status_code == 201
    assert len(shop.orders()) == 1


def test_a_body_over_64_kib_is_400_and_the_connection_stays_usable(
    client: httpx.Client,
) -> None:
    huge = json.dumps({**order_body("e"), "pad": "x" * 70_000}).encode()
    headers = {"Idempotency-Key": "k-1", "Content-Type": "application/json"}
    response = client.post("/orders", content=huge, headers=headers)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "body_too_large"
    assert post(client, "k-1", order_body("e")).status_code == 201


def test_a_body_that_is_not_declared_json_is_400(client: httpx.Client) -> None:
    raw = json.dumps(order_body("e"))
    response = client.post(
        "/orders", content=raw, headers={"Idempotency-Key": "k-1", "Content-Type": "text/plain"}
    )
    assert response.status_code == 400
    assert "application/json" in response.json()["error"]["message"]


def test_unknown_paths_methods_and_broken_http_get_json_errors(shop: ShopServer) -> None:
    root = shop.url.removesuffix("/api/v1")
    assert httpx.get(f"{root}/nothing").json()["error"]["code"] == "not_found"
    wrong = httpx.delete(f"{shop.url}/orders", headers={"Authorization": f"Bearer {shop.token}"})
    assert wrong.status_code == 405
    assert wrong.headers["Allow"] == "GET, POST"
    with socket.create_connection(("127.0.0.1", shop.port), timeout=5) as raw:
        raw.sendall(b"NONSENSE\r\n\r\n")
        chunks = []
        while chunk := raw.recv(4096):  # the shop closes after a protocol error
            chunks.append(chunk)
    reply = b"".join(chunks).decode()
    assert reply.startswith("HTTP/1.1 400")
    assert '"error"' in reply


# ---------------------------------------------------------------------- status and cancel


@pytest.fixture
def clocked(tmp_path: Path) -> Iterator[tuple[ShopServer, ManualClock, httpx.Client]]:
    clock = ManualClock(start=1_800_000_000.0)
    server = ShopServer(
        tmp_path / "shop.db", token="t0k", clock=clock, ship_after="2h", deliver_after="1d"
    ).start()
    with shop_client(server.url, server.token) as c:
        yield server, clock, c
    server.stop()


def test_status_advances_at_ship_after_then_deliver_after(
    clocked: tuple[ShopServer, ManualClock, httpx.Client],
) -> None:
    _, clock, client = clocked
    order_id = post(client, "k-1", order_body("e")).json()["id"]
    clock.sleep(2 * 3600 - 1)
    assert client.get(f"/orders/{order_id}").json()["status"] == "accepted"
    clock.sleep(1)
    shipped = client.get(f"/orders/{order_id}").json()
    assert shipped["status"] == "shipped"
    assert shipped["updated_at"] == "2027-01-15T10:00:00.000Z"  # start + 2 h, not "now"
    clock.sleep(86400)
    assert client.get(f"/orders/{order_id}").json()["status"] == "delivered"
    listed = client.get("/orders").json()["orders"]
    assert [(o["id"], o["status"]) for o in listed] == [(order_id, "delivered")]


def test_a_reported_status_never_goes_back_when_a_clock_restarts_earlier(
    clocked: tuple[ShopServer, ManualClock, httpx.Client],
) -> None:
    _, clock, client = clocked
    order_id = post(client, "k-1", order_body("e")).json()["id"]
    clock.sleep(3 * 86400)
    assert client.get(f"/orders/{order_id}").json()["status"] == "delivered"
    clock.t -= 3 * 86400  # e.g. a restarted --time-scale clock
    assert client.get(f"/orders/{order_id}").json()["status"] == "delivered"


def test_cancel_rules(clocked: tuple[ShopServer, ManualClock, httpx.Client]) -> None:
    _, clock, client = clocked
    early = post(client, "k-1", order_body("e1")).json()["id"]
    late = post(client, "k-2", order_body("e2")).json()["id"]

    cancelled = client.post(f"/orders/{early}/cancel")
    assert cancelled.status_code == 200
    assert cancelled.json() == {"id": early, "status": "cancelled"}
    assert client.post(f"/orders/{early}/cancel").status_code == 200  # idempotent

    clock.sleep(3 * 3600)
    too_late = client.post(f"/orders/{late}/cancel")
    assert too_late.status_code == 409
    assert too_late.json()["error"]["code"] == "not_cancellable"
    assert client.get(f"/orders/{late}").json()["status"] == "shipped"
    # A cancelled order stays cancelled while time passes.
    assert client.get(f"/orders/{early}").json()["status"] == "cancelled"
    assert client.post("/orders/ord_999/cancel").status_code == 404
    assert client.get("/orders/not-an-id").status_code == 404


def test_list_filters_by_sku(shop: ShopServer, client: httpx.Client) -> None:
    post(client, "k-1", order_body("e1", sku="LAVAZZA-1KG"))
    post(client, "k-2", order_body("e2", sku="OAT-MILK-6"))
    listed = client.get("/orders", params={"sku": "OAT-MILK-6"}).json()["orders"]
    assert [o["source"]["event_id"] for o in listed] == ["e2"]
    assert len(shop.orders()) == 2


# ---------------------------------------------------------------------- fault knobs


def test_error_rate_answers_503_before_ordering(shop: ShopServer, client: httpx.Client) -> None:
    shop.set_faults(error_rate=1.0)
    response = post(client, "k-1", order_body("e"))
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "unavailable"
    assert client.get("/orders/ord_1").status_code == 503
    assert shop.orders() == []
    assert shop.stats()["faults"]["error"] == 2
    shop.set_faults(error_rate=0.0)
    assert post(client, "k-1", order_body("e")).status_code == 201  # 503 was not stored


def test_faults_never_touch_the_list_health_or_admin(shop: ShopServer) -> None:
    root = shop.url.removesuffix("/api/v1")
    auth = {"Authorization": f"Bearer {shop.token}"}
    shop.set_faults(error_rate=1.0, rate_limit_rate=1.0, drop_after_commit_rate=1.0)
    assert httpx.get(f"{root}/_health").json() == {"status": "ok"}
    assert httpx.get(f"{shop.url}/orders", headers=auth).status_code == 200
    assert httpx.get(f"{root}/_admin/stats", headers=auth).status_code == 200
    assert httpx.get(f"{root}/_admin/faults", headers=auth).json()["error_rate"] == 1.0


def test_rate_limit_answers_429_with_retry_after(shop: ShopServer, client: httpx.Client) -> None:
    shop.set_faults(rate_limit_rate=1.0, retry_after=7)
    response = post(client, "k-1", order_body("e"))
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "7"
    assert shop.orders() == []


def test_drop_after_commit_keeps_the_order_and_a_retry_gets_the_replay(
    shop: ShopServer, client: httpx.Client
) -> None:
    shop.set_faults(drop_after_commit_rate=1.0)
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        post(client, "k-1", order_body("e"))
    [order] = shop.orders()
    shop.set_faults(drop_after_commit_rate=0.0)
    retry = post(client, "k-1", order_body("e"))
    assert retry.status_code == 200
    assert retry.json()["id"] == order["id"]
    assert shop.stats()["faults"]["drop_after_commit"] == 1


def test_garbage_html_is_a_201_page_with_the_order_committed(
    shop: ShopServer, client: httpx.Client
) -> None:
    shop.set_faults(garbage_rate=1.0, garbage_kind="html")
    response = post(client, "k-1", order_body("e"))
    assert response.status_code == 201
    assert response.headers["Content-Type"].startswith("text/html")
    with pytest.raises(json.JSONDecodeError):
        response.json()
    assert len(shop.orders()) == 1
    shop.set_faults(garbage_rate=0.0)
    assert post(client, "k-1", order_body("e")).json()["id"] == shop.orders()[0]["id"]


def test_garbage_truncated_cuts_the_body_short(shop: ShopServer, client: httpx.Client) -> None:
    shop.set_faults(garbage_rate=1.0, garbage_kind="truncated")
    with pytest.raises(httpx.RemoteProtocolError, match="complete message body"):
        post(client, "k-1", order_body("e"))
    assert len(shop.orders()) == 1


def test_garbage_no_id_is_a_201_json_without_id(shop: ShopServer, client: httpx.Client) -> None:
    shop.set_faults(garbage_rate=1.0, garbage_kind="no_id")
    response = post(client, "k-1", order_body("e"))
    assert response.status_code == 201
    assert "id" not in response.json()
    assert response.json()["status"] == "accepted"
    assert len(shop.orders()) == 1


def test_slow_holds_the_answer_until_released(shop: ShopServer) -> None:
    shop.set_faults(slow_rate=1.0, slow_seconds=300.0)
    with (
        shop_client(shop.url, shop.token, timeout=0.3) as impatient,
        pytest.raises(httpx.ReadTimeout),
    ):
        impatient.get("/orders/ord_1")
    assert shop.stats()["faults"]["slow"] == 1
    shop.set_faults(slow_rate=0.0, slow_seconds=0.0)


def test_a_seed_replays_the_same_fault_sequence(shop: ShopServer, client: httpx.Client) -> None:
    def pattern() -> list[int]:
        return [client.get("/orders/ord_1").status_code for _ in range(16)]

    shop.set_faults(error_rate=0.5, seed=42)
    first = pattern()
    shop.set_faults(seed=42)
    assert pattern() == first
    assert set(first) == {503, 404}


def test_admin_refuses_unknown_or_impossible_knobs_and_strangers(shop: ShopServer) -> None:
    url = shop.url.removesuffix("/api/v1") + "/_admin/faults"
    auth = {"Authorization": f"Bearer {shop.token}"}
    unknown = httpx.post(url, json={"eror_rate": 1}, headers=auth)
    assert unknown.status_code == 400
    assert "unknown fault knob" in unknown.json()["error"]["message"]
    assert httpx.post(url, json={"error_rate": 2}, headers=auth).status_code == 400
    assert httpx.post(url, json={"garbage_kind": "xml"}, headers=auth).status_code == 400
    assert httpx.post(url, json={"error_rate": 1}).status_code == 401
    assert shop.faults()["error_rate"] == 0.0


# ---------------------------------------------------------------------- the process


def test_orders_and_keys_survive_a_clean_restart_and_a_kill(shop_process: ShopProcess) -> None:
    with shop_process.client() as client:
        created = post(client, "k-1", order_body("e1")).json()
    assert shop_process.stop() == 0  # SIGTERM: clean exit
    shop_process.start()
    with shop_process.client() as client:
        assert client.get(f"/orders/{created['id']}").json()["status"] == "accepted"
        replay = post(client, "k-1", order_body("e1"))
        assert (replay.status_code, replay.json()) == (200, created)
        assert post(client, "k-1", order_body("other")).status_code == 422
        second = post(client, "k-2", order_body("e2")).json()
    shop_process.kill()  # SIGKILL right after the 201: synchronous=FULL kept it
    shop_process.start()
    ids = [o["id"] for o in shop_process.orders()]
    assert ids == [created["id"], second["id"]]
    assert shop_process.stats()["post_attempts"] == 4  # counters persist too


def test_state_files_are_private(shop_process: ShopProcess) -> None:
    assert stat.S_IMODE(os.stat(shop_process.db).st_mode) == 0o600
    created_dir = shop_process.workdir / "fresh" / "state"
    ShopServer(created_dir / "shop.db", token="t").stop()
    assert stat.S_IMODE(os.stat(created_dir).st_mode) == 0o700


def test_the_cli_time_scale_moves_statuses_and_flags_set_faults(tmp_path: Path) -> None:
    proc = ShopProcess(
        tmp_path,
        time_scale=600,
        ship_after="60s",
        deliver_after="120s",
        faults={"retry_after": 3},
    ).start()
    try:
        assert proc.set_faults()["retry_after"] == 3
        with proc.client() as client:
            order_id = post(client, "k-1", order_body("e")).json()["id"]
            seen: set[str] = set()

            def delivered() -> bool:
                seen.add(client.get(f"/orders/{order_id}").json()["status"])
                return "delivered" in seen

            wait_until(delivered)  # 0.3 real seconds at 600x
    finally:
        assert proc.stop() == 0
    log = proc.log.read_text()
    assert f"GET /api/v1/orders/{order_id} 200" in log
    assert proc.token not in log


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--db", "x.db"], "a bearer token is required"),
        (["--db", "x.db", "--token", "t", "--ship-after", "90"], "'90' is not a duration"),
        (["--db", "x.db", "--token", "t", "--error-rate", "3"], "between 0.0 and 1.0"),
        (["--db", "x.db", "--token", "t", "--catalog", "missing.yaml"], "cannot read the catalog"),
    ],
)
def test_cli_mistakes_give_one_clear_line_and_exit_2(
    tmp_path: Path, args: list[str], message: str
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "SHOP_TOKEN"}
    done = subprocess.run(
        [sys.executable, "-m", "firmware_sim.shop", "--port", "0", *args],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_the_openapi_document_matches_what_the_shop_answers(client: httpx.Client) -> None:
    spec = yaml.safe_load((REPO / "docs" / "openapi.yaml").read_text())
    schemas = spec["components"]["schemas"]
    created = post(client, "k-1", order_body("e")).json()
    assert set(created) == set(schemas["OrderCreated"]["required"])
    order = client.get(f"/orders/{created['id']}").json()
    assert set(order) == set(schemas["Order"]["required"])
    assert set(order_body("e")) == set(schemas["OrderRequest"]["required"])
    assert set(order["source"]) == set(schemas["Source"]["required"])
    assert set(spec["paths"]["/orders"]["post"]["responses"]) >= {
        "200",
        "201",
        "400",
        "401",
        "403",
        "404",
        "409",
        "422",
        "429",
    }
