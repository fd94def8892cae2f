"""What a shop backend answers, classified: the vocabulary between commerce and core.

Every backend call returns one of these instead of raising, so the retry policy
(:mod:`gateway.core.retry`) is a plain ``match`` over a handful of cases, the same
for every shop:

============== ============================================ =========================
Result         When                                         Then
============== ============================================ =========================
Accepted       the shop has the order (new or replayed)     accepted, poll status
Retry          down, timeout, 408/409/429/5xx               try later (same key)
Blocked        401/403                                      blocked, slow retries
Rejected       400/404/422: will never work                 dead letter with reason
Unclear        2xx we cannot read (HTML, truncated, no id)  retry later; shop replays
Misconfigured  a redirect: base_url is wrong                blocked, logged as ERROR
============== ============================================ =========================

>>> Retry("HTTP 503", after=20.0).after
20.0
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.core.events import OrderState, Price


@dataclass(frozen=True)
class Accepted:
    """The shop has the order. ``replayed``: it was created by an earlier attempt.
    ``price``: what the shop said it costs, for shops that say."""

    shop_order_id: str
    replayed: bool = False
    price: Price | None = None


@dataclass(frozen=True)
class Retry:
    """Try again later. ``after``: the shop's Retry-After in seconds, if it gave one.

    ``unreachable``: no connection could be made (refused, DNS, TLS, connect timeout).
    ``answer_lost``: connected, but the answer never came whole (a read timeout, a
    dropped connection). One such loss says nothing about the shop's health — it may
    even have placed the order, which the same key then replays.
    """

    reason: str
    after: float | None = None
    unreachable: bool = False
    answer_lost: bool = False


@dataclass(frozen=True)
class Blocked:
    """The credentials were refused (401/403)."""

    reason: str


@dataclass(frozen=True)
class Rejected:
    """A permanent refusal, with the shop's message."""

    reason: str


@dataclass(frozen=True)
class Unclear:
    """A success status we could not read; retrying with the same key is safe."""

    reason: str


@dataclass(frozen=True)
class Status:
    """The shop's current view of an order."""

    shop_order_id: str
    state: OrderState


@dataclass(frozen=True)
class Cancelled:
    """The shop cancelled the order."""


@dataclass(frozen=True)
class TooLate:
    """The shop refused to cancel (already shipped)."""

    reason: str


@dataclass(frozen=True)
class Misconfigured:
    """The shop's answer says our settings are wrong, not the shop: a redirect means
    ``base_url`` points at the wrong place. Retrying cannot help until it is fixed."""

    reason: str


@dataclass(frozen=True)
class Probe:
    """What a cheap, side-effect-free look at the shop found (no order involved).

    ``reachable``: True when the shop answered at all (even 5xx), False when no answer
    came, None when the backend has no safe probe (a webhook: any request to an
    arbitrary URL may act). ``refused``: it answered but refused our credentials
    (401/403) — reachable, and the orders for it would be blocked.

    >>> Probe(True, refused=True, reason="HTTP 401").reachable
    True
    """

    reachable: bool | None
    reason: str = ""
    refused: bool = False


PlaceResult = Accepted | Retry | Blocked | Rejected | Unclear | Misconfigured
StatusResult = Status | Retry | Blocked | Rejected | Unclear | Misconfigured
CancelResult = Cancelled | TooLate | Retry | Blocked | Rejected | Unclear | Misconfigured
