"""Generated requests to the reference shop's ``POST /orders`` over loopback.

The property: the shop never answers 5xx, and an order is created only by a
request that is valid in every part — credentials, ``Idempotency-Key`` (new),
``Content-Type`` and body. Which requests are valid is known by construction:
each one is built from a valid order with zero or more *labelled* defects, so
the expectation does not come from the shop's own checks.

1,300 generated requests in all: 800 built from valid orders and their
defects (each new order is then replayed with its key), 300 bodies of random
bytes or JSON, and 200 raw requests with broken header lines sent over a
socket (httpx refuses to send them).
"""

from __future__ import annotations

import contextlib
import errno
import json
import secrets
import socket
import string
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from firmware_sim.shop.catalog import DEFAULT_CATALOG, load_catalog
from firmware_sim.shop.server import ShopServer

SKUS = sorted(load_catalog(DEFAULT_CATALOG))
TRIGGERS = ("press", "threshold", "forecast", "manual")
FUZZ = settings(
    deadline=None,
    database=None,  # the shop's database is shared by all examples: replays make no sense
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ShopServer]:
    # One shop for all examples: a fresh one per example would cost more than the test.
    path = tmp_path_factory.mktemp("shop-fuzz") / "shop.db"
    server = ShopServer(path, token=secrets.token_urlsafe(16)).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def client(shop: ShopServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=shop.url, timeout=10.0) as c:
        yield c


def order_count(shop: ShopServer) -> int:
    return int(shop.stats()["orders"])


# ------------------------------------------------------------------ valid orders

# Any text but lone surrogates (which JSON can carry but UTF-8 cannot: a defect below).
_texts = st.text(alphabet=st.characters(exclude_categories=["Cs"]), min_size=1, max_size=40).filter(
    lambda s: bool(s.strip())
)
_times = st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat())


@st.composite
def valid_orders(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "sku": draw(st.sampled_from(SKUS)),
        "quantity": draw(st.integers(min_value=1, max_value=100)),
        "source": {
            "gateway": draw(_texts),
            "device": draw(_texts),
            "trigger": draw(st.sampled_from(TRIGGERS)),
            # Unique per example, so each valid request is a new order.
            "event_id": f"fz-{secrets.token_hex(6)}-{draw(_texts)}",
        },
        "created_at": draw(st.one_of(_times, st.just("2026-01-02T03:04:05Z"))),
    }


# ------------------------------------------------------------------ labelled defects

_not_text = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.lists(st.integers())
)
_blank = st.sampled_from(["", " ", "\t", "\n  "])
_too_long = st.integers(min_value=256, max_value=400).map(lambda n: "x" * n)
_bad_text = st.one_of(_not_text, _blank, _too_long, st.just("ok\ud800"))
_bad_quantity = st.one_of(
    st.integers(max_value=0),
    st.integers(min_value=101),
    st.sampled_from([True, False, 1.5, 2.0, "1", None, [1], float("nan")]),
)
_bad_times = st.one_of(
    st.datetimes().map(lambda d: d.isoformat()),  # no zone
    st.dates().map(lambda d: d.isoformat()),
    st.sampled_from(["2026-01-02 03:04:05Z", "yesterday", "2026-13-01T00:00:00Z", "T", "Z"]),
    _bad_text,
)
_bad_trigger = st.one_of(st.text(max_size=10).filter(lambda t: t not in TRIGGERS), _not_text)
_TOP = ("sku", "quantity", "source", "created_at")
_SOURCE = ("gateway", "device", "trigger", "event_id")


@st.composite
def body_defect(draw: st.DrawFn, order: dict[str, Any]) -> tuple[str, bytes]:
    """One labelled defect applied to ``order``; returns (label, body bytes)."""
    kind = draw(
        st.sampled_from(
            [
                "missing", "missing-source", "extra", "extra-source", "sku", "quantity",
                "source-type", "source-text", "trigger", "created_at", "not-object",
                "not-json", "not-utf8",
            ]
        )
    )  # fmt: skip
    src = order["source"]
    if kind == "missing":
        del order[draw(st.sampled_from(_TOP))]
    elif kind == "missing-source":
        del src[draw(st.sampled_from(_SOURCE))]
    elif kind == "extra":
        order[draw(st.text(max_size=8).filter(lambda k: k not in _TOP))] = draw(_not_text)
    elif kind == "extra-source":
        src[draw(st.text(max_size=8).filter(lambda k: k not in _SOURCE))] = draw(_not_text)
    elif kind == "sku":
        order["sku"] = draw(_bad_text)
    elif kind == "quantity":
        order["quantity"] = draw(_bad_quantity)
    elif kind == "source-type":
        order["source"] = draw(_not_text | st.text(max_size=10))
    elif kind == "source-text":
        src[draw(st.sampled_from(_SOURCE))] = draw(_bad_text)
    elif kind == "trigger":
        src["trigger"] = draw(_bad_trigger)
    elif kind == "created_at":
        order["created_at"] = draw(_bad_times)
    elif kind == "not-object":
        return kind, json.dumps(draw(st.lists(st.integers()) | _not_text)).encode()
    text = json.dumps(order)
    if kind == "not-json":
        cut = draw(st.integers(min_value=0, max_value=len(text) - 1))
        return kind, (text[:cut] + draw(st.sampled_from(["", ",", "}", "]", "'", "\\"]))).encode()
    if kind == "not-utf8":
        return kind, text.encode().replace(b'"sku"', b'"sku\xff"', 1)
    return kind, text.encode()


# ------------------------------------------------------------------ requests


@dataclass
class Call:
    """One request and why it must (not) order."""

    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    defects: list[str] = field(default_factory=list)
    unknown_sku: bool = False


_printable_key = st.text(
    alphabet=st.sampled_from([c for c in string.printable if " " <= c <= "~"]),
    min_size=1,
    max_size=255,
)
_bad_key = st.one_of(
    st.just(""),
    st.integers(min_value=256, max_value=600).map(lambda n: "k" * n),
    st.text(alphabet=st.characters(min_codepoint=0x80, max_codepoint=0xFF), min_size=1).map(
        lambda k: f"k{k}k"
    ),
)
_bad_content_type = st.sampled_from(
    ["text/plain", "application/x-www-form-urlencoded", "application/jsonx", "json", ""]
)
_good_content_type = st.sampled_from(
    ["application/json", "application/json; charset=utf-8", "Application/JSON"]
)


@st.composite
def calls(draw: st.DrawFn, token: str) -> Call:
    order = draw(valid_orders())
    call = Call(body=b"")
    headers: dict[str, str] = {}
    # Credentials
    # Mostly one defect at a time, so each is met on its own and not always hidden
    # behind an earlier check; sometimes two.
    areas = ["none"] * 3 + ["auth", "key", "content-type"] + ["body"] * 4
    broken = {draw(st.sampled_from(areas)), draw(st.sampled_from(["none"] * 9 + areas))}
    auth = draw(st.sampled_from(["missing", "wrong", "basic"])) if "auth" in broken else "ok"
    if auth == "ok":
        headers["Authorization"] = f"Bearer {token}"
    else:
        call.defects.append(f"auth-{auth}")
        if auth != "missing":
            scheme, suffix = ("Bearer", "x") if auth == "wrong" else ("Basic", "")
            headers["Authorization"] = f"{scheme} {token}{suffix}"
    if "key" not in broken:
        # HTTP strips a header value's outer spaces (and httpx refuses them).
        key = f"{secrets.token_hex(8)}{draw(_printable_key)}"[:255].rstrip()
        headers["Idempotency-Key"] = key
    elif draw(st.booleans()):
        headers["Idempotency-Key"] = draw(_bad_key)
        call.defects.append("key-bad")
    else:
        call.defects.append("key-missing")
    if "content-type" not in broken:
        headers["Content-Type"] = draw(_good_content_type)
    elif draw(st.booleans()):
        headers["Content-Type"] = draw(_bad_content_type)
        call.defects.append("content-type")
    else:
        call.defects.append("content-type-missing")
    if "body" in broken:
        label, call.body = draw(body_defect(order))
        call.defects.append(f"body-{label}")
    else:
        if draw(st.integers(min_value=0, max_value=9)) == 0:
            order["sku"] = draw(_texts.filter(lambda s: s not in SKUS))
            call.unknown_sku = True
        call.body = json.dumps(order, ensure_ascii=draw(st.booleans())).encode()
    call.headers = headers
    return call


def _send(client: httpx.Client, call: Call) -> httpx.Response:
    # Header values outside ASCII go as latin-1 bytes, as a careless client would.
    headers = [(k.encode(), v.encode("latin-1")) for k, v in call.headers.items()]
    return client.post("/orders", content=call.body, headers=headers)


def _check_error_body(response: httpx.Response) -> None:
    error = response.json()["error"]
    assert error["code"] and error["message"], response.text


# ------------------------------------------------------------------ the properties


@settings(FUZZ, max_examples=800)
@given(data=st.data())
def test_only_fully_valid_requests_order_and_nothing_is_5xx(
    shop: ShopServer, client: httpx.Client, data: st.DataObject
) -> None:
    call = data.draw(calls(shop.token), label="request")
    event(
        call.defects[0] if call.defects else ("valid, unknown sku" if call.unknown_sku else "valid")
    )
    before = order_count(shop)
    response = _send(client, call)
    after = order_count(shop)
    assert response.status_code < 500, (response.status_code, response.text, call)
    if call.defects:
        assert 400 <= response.status_code < 500, (response.status_code, call)
        _check_error_body(response)
        assert after == before, f"an invalid request ordered: {call}"
        return
    if call.unknown_sku:
        assert response.status_code == 404, response.text
        assert after == before
        return
    assert response.status_code == 201, (response.text, call)
    assert after == before + 1
    sent = json.loads(call.body)
    placed = response.json()
    assert placed["source"] == sent["source"] and placed["quantity"] == sent["quantity"]
    # The same key again: a replay with the same body, a refusal with another; no order.
    other = json.dumps({**sent, "quantity": sent["quantity"] % 100 + 1}).encode()
    again = _send(client, Call(body=data.draw(st.sampled_from([call.body, other])),
                               headers=call.headers))  # fmt: skip
    assert again.status_code in ((200,) if again.request.content == call.body else (422,))
    assert order_count(shop) == after


_random_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=10,
)


@settings(FUZZ, max_examples=300)
@given(body=st.one_of(st.binary(max_size=300), _random_json.map(lambda v: json.dumps(v).encode())))
def test_random_bodies_never_order(shop: ShopServer, client: httpx.Client, body: bytes) -> None:
    before = order_count(shop)
    response = client.post(
        "/orders",
        content=body,
        headers={
            "Authorization": f"Bearer {shop.token}",
            "Idempotency-Key": secrets.token_hex(12),
            "Content-Type": "application/json",
        },
    )
    assert response.status_code == 400, response.text
    _check_error_body(response)
    assert order_count(shop) == before


# ------------------------------------------------------------------ raw HTTP


class OversizedLine(bytes):
    """A header line past any server's limit, shown by its size.

    Hypothesis puts the repr of the strategies and of a failing example in its
    report; at 70 kB it warns "overly large repr" instead (an error under
    filterwarnings = error), and that hides the failure it was reporting.
    """

    def __repr__(self) -> str:
        return f"OversizedLine(b'X' * {len(self)})"


_OVERSIZED = 70_000
_header_junk = st.one_of(
    st.binary(max_size=60).map(lambda b: b.replace(b"\r\n", b"")),
    # None stands for the oversized line, made when drawn: written out here it would
    # put 70 kB into the strategy's repr too.
    st.sampled_from(
        [
            b"Content-Length: -1", b"Content-Length: abc", b"Content-Length: 99999999",
            b"Content-Length: 1e3", b"Transfer-Encoding: chunked", b"Idempotency-Key:",
            b"Idempotency-Key: \x01\x02", b"Authorization: Bearer", b": no-name",
            b"Content-Type: application/json\x00", None, b"Host",
        ]
    ).map(lambda line: OversizedLine(b"X" * _OVERSIZED) if line is None else line),
)  # fmt: skip
_junk_lines = st.lists(_header_junk, min_size=1, max_size=3)


# The server hung up: before all was sent (EPIPE, ENOTCONN), or with bytes unread (ECONNRESET).
_HUNG_UP = (errno.EPIPE, errno.ECONNRESET, errno.ENOTCONN)


def _raw_exchange(port: int, request: bytes) -> bytes:
    """Send ``request`` and read the answer until the server closes.

    A server may answer an oversized header line and hang up before it has read the
    rest (a 140 kB request is not read to its end): that is an answer too, so
    hanging up is not an error here; what it said before counts.
    """
    chunks = []
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        try:
            sock.sendall(request)
            sock.shutdown(socket.SHUT_WR)  # no more bytes: the server must answer or close
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except OSError as exc:
            if exc.errno not in _HUNG_UP:
                raise
            with contextlib.suppress(OSError):
                while chunk := sock.recv(65536):
                    chunks.append(chunk)
    return b"".join(chunks)


@settings(FUZZ, max_examples=200)
@given(
    order=valid_orders(),
    junk=_junk_lines,
    junk_last=st.booleans(),
)
def test_broken_headers_never_5xx_and_order_only_with_201(
    shop: ShopServer, order: dict[str, Any], junk: list[bytes], junk_last: bool
) -> None:
    body = json.dumps(order).encode()
    # A valid request plus broken header lines, before or after the good ones (the
    # last of two same-named headers wins): whatever the shop makes of it, it
    # must answer below 500 or hang up, and have ordered exactly when it says 201.
    good = [
        f"Authorization: Bearer {shop.token}".encode(),
        f"Idempotency-Key: {secrets.token_hex(12)}".encode(),
        b"Content-Type: application/json",
        f"Content-Length: {len(body)}".encode(),
    ]
    headers = [*good, *junk] if junk_last else [*junk, *good]
    lines = [b"POST /api/v1/orders HTTP/1.1", b"Host: 127.0.0.1", *headers, b"Connection: close"]
    before = order_count(shop)
    answer = _raw_exchange(shop.port, b"\r\n".join(lines) + b"\r\n\r\n" + body)
    status = 0
    if answer:
        status_line = answer.split(b"\r\n", 1)[0]
        assert status_line.startswith(b"HTTP/1."), answer[:200]
        status = int(status_line.split()[1])
        assert status < 500, answer[:400]
    event(str(status or "closed without an answer"))
    assert order_count(shop) - before == (1 if status == 201 else 0), answer[:400]


def test_every_strategy_here_has_a_small_repr() -> None:
    """hypothesis shows a strategy's repr in its reports; one over 30 kB raises its
    "overly large repr" warning, and so fails a run only when a report is made."""
    strategies = {
        name: value for name, value in globals().items() if isinstance(value, SearchStrategy)
    }
    assert "_junk_lines" in strategies and "_header_junk" in strategies
    for name, strategy in strategies.items():
        assert len(repr(strategy)) < 2_000, name


@settings(max_examples=200, database=None)
@given(junk=_junk_lines)
def test_generated_header_lines_have_small_reprs(junk: list[bytes]) -> None:
    # What hypothesis prints for a failing example of the raw-HTTP test.
    assert len(repr(junk)) < 2_000


def test_the_oversized_line_is_the_bytes_it_stands_for() -> None:
    line = OversizedLine(b"X" * _OVERSIZED)
    assert line == b"X" * _OVERSIZED and b"\r\n".join([b"a", line]).endswith(b"XXX")
    assert repr(line) == "OversizedLine(b'X' * 70000)"
