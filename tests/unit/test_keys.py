"""Idempotency and dedupe keys: stable, unambiguous, secret-dependent."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.core.keys import dedupe_key, order_key

SECRET = bytes(range(32))


def test_order_key_is_stable_and_shaped_for_the_header() -> None:
    first = order_key(SECRET, "pi", "laundry", "evt-1")
    assert first == order_key(SECRET, "pi", "laundry", "evt-1")
    assert re.fullmatch(r"rg1_[0-9a-f]{64}", first)
    assert len(first) <= 255


def test_order_key_depends_on_every_field_and_the_secret() -> None:
    base = order_key(SECRET, "pi", "laundry", "evt-1")
    assert base != order_key(SECRET, "pi2", "laundry", "evt-1")
    assert base != order_key(SECRET, "pi", "kitchen", "evt-1")
    assert base != order_key(SECRET, "pi", "laundry", "evt-2")
    assert base != order_key(bytes(32), "pi", "laundry", "evt-1")


def test_field_boundaries_cannot_be_shifted() -> None:
    # Naive joining with ":" would make these two identical.
    assert order_key(SECRET, "pi", "a:b", "c") != order_key(SECRET, "pi", "a", "b:c")
    assert dedupe_key("a:b", "c") != dedupe_key("a", "b:c")


def test_short_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 16 bytes"):
        order_key(b"short", "pi", "laundry", "evt-1")


@given(
    st.tuples(st.text(max_size=20), st.text(max_size=20)),
    st.tuples(st.text(max_size=20), st.text(max_size=20)),
)
def test_distinct_triggers_give_distinct_keys(a: tuple[str, str], b: tuple[str, str]) -> None:
    same = a == b
    assert (order_key(SECRET, "pi", *a) == order_key(SECRET, "pi", *b)) is same
    assert (dedupe_key(*a) == dedupe_key(*b)) is same


def test_dedupe_key_is_readable_and_bounded() -> None:
    assert dedupe_key("laundry", "evt-1") == "7:laundry:evt-1"
    long_key = dedupe_key("scale", "x" * 5000)
    assert len(long_key) < 100
    assert long_key != dedupe_key("scale", "x" * 4999)
