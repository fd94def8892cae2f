"""Phone notifications: each order, and each order that asks for a yes, on the
household's phones through apprise (ntfy, Telegram, e-mail, Home Assistant notify).

The core thread only hands reports over (:meth:`Notifications.on_report` never
blocks); one background thread composes and sends, retrying a failed send a few
times with growing pauses (tenacity). A notification that still fails is counted
and logged, and that is all: the order it speaks of was committed before it was
composed, and nothing here writes to the outbox.

============================  ====================================================
The core reports...           The phones get...
============================  ====================================================
held, ``confirm: true``       "Confirm: a paid order for 2 × coffee?" with how to
                              confirm (press again, or the link) and when it expires
held, ``confirm_window``      "Ordering soon" with how to cancel inside the window
accepted by the shop          "Ordered" with the price the shop gave
rejected / blocked            "Not ordered" / "Waiting" with the reason
expired (never confirmed)     "Not ordered: nobody confirmed"
============================  ====================================================

Each order is told at most once per kind (a blocked order retried every five
minutes is one notification). Apprise URLs carry tokens: they are never logged —
failures name the service (``ntfy``) only, and apprise's own log stays quiet.

>>> facts = {"coffee": ProductFacts(quantity=2, confirm=True, confirm_expires=86400.0)}
>>> report = Report(Outcome.HELD, "pantry", 0.0, "coffee", order_key="rg1_k",
...                 state=OrderState.HELD)
>>> message = compose(report, facts, "https://gw.local:8443")
>>> message.title
'Confirm: a paid order for 2 × coffee?'
>>> message.link
'https://gw.local:8443/orders/rg1_k'
"""

from __future__ import annotations

import importlib
import logging
import queue
import re
import threading
import warnings
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector
from tenacity import RetryCallState, Retrying, retry_if_result, stop_after_attempt, wait_exponential

from gateway.config.models import NotifySection, ProductConfig
from gateway.core.events import OrderState, Outcome, Report

log = logging.getLogger(__name__)

QUEUE_SIZE = 200  # notifications waiting to be sent; more are dropped (counted)
_TOLD_REMEMBERED = 2000  # (order, kind) pairs remembered so each is told once
_BACKOFF_CAP = 60.0


@dataclass(frozen=True)
class ProductFacts:
    """What a notification says of a product that its report does not carry."""

    quantity: int
    confirm: bool = False
    confirm_expires: float = 86_400.0
    confirm_window: float = 0.0


@dataclass(frozen=True)
class Message:
    """One notification, ready to send.

    >>> Message("Ordered: 1 × tea", "…", "rg1_k").kind
    'message'
    """

    title: str
    body: str
    order_key: str
    link: str | None = None
    kind: str = "message"


PAID = "This places a paid order at the shop."


def compose(
    report: Report, products: Mapping[str, ProductFacts], link_base: str | None
) -> Message | None:
    """The notification a report deserves, or None (most reports deserve none)."""
    if report.order_key is None or report.product is None:
        return None
    facts = products.get(report.product, ProductFacts(quantity=1))
    what = f"{facts.quantity} × {report.product}"
    key = report.order_key
    link = f"{link_base}/orders/{key}" if link_base else None
    price = report.price.shown if report.price is not None else None
    price_text = f"Price: {price}." if price else "Price: set by the shop when it accepts."
    by = f"Asked for by {report.device}."
    if report.outcome is Outcome.HELD and facts.confirm:
        how = "Confirm: press the button again" + (f", or open {link}" if link else "") + "."
        expires = f"Not confirmed within {_hours(facts.confirm_expires)}: nothing is ordered."
        return Message(
            f"Confirm: a paid order for {what}?",
            " ".join((by, PAID, price_text, how, expires)),
            key,
            link,
            "confirm",
        )
    if report.outcome is Outcome.HELD:
        window = f"in {facts.confirm_window:g} s" if facts.confirm_window else "soon"
        how = "Cancel: a long press" + (f", or open {link}" if link else "") + "."
        return Message(
            f"Ordering {what} {window}",
            " ".join((by, PAID, price_text, how)),
            key,
            link,
            "held",
        )
    if report.outcome is Outcome.EXPIRED:
        body = f"Nobody confirmed the order for {what} in time; nothing was ordered."
        return Message(f"Not ordered: {what}", body, key, link, "expired")
    if report.outcome is not Outcome.ORDER_STATUS:
        return None
    if report.state is OrderState.ACCEPTED:
        cancel = f" Cancel: open {link}." if link else ""
        shown = f" for {price}" if price else " (the shop named no price)"
        body = f"The shop accepted a paid order for {what}{shown}.{cancel}"
        return Message(f"Ordered: {what}" + (f", {price}" if price else ""), body, key, link, "ok")
    if report.state is OrderState.REJECTED:
        reason = report.detail or "no reason given"
        body = f"The shop refused the order for {what}: {reason}. Nothing was charged."
        return Message(f"Not ordered: {what}", body, key, link, "rejected")
    if report.state is OrderState.BLOCKED:
        body = (
            f"The order for {what} waits: the shop refused the gateway's credentials "
            f"({report.detail or 'refused'}). It is sent once they are renewed."
        )
        return Message(f"Waiting: {what}", body, key, link, "blocked")
    return None


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:g} h" if seconds >= 3600 else f"{seconds / 60:g} min"


# --------------------------------------------------------------------------- channels


class Channel(Protocol):
    """Where messages go. ``send`` returns whether every service took the message."""

    @property
    def services(self) -> tuple[str, ...]:
        """The services' names (URL schemes): safe to log, unlike the URLs."""
        ...

    def send(self, message: Message) -> bool: ...


# The apprise plugins the documented services need, loaded alone: adding any URL to
# apprise.Apprise imports all of its ~250 plugins (about 10 MB more resident memory
# on a Pi whose budget is 60 MB). Other schemes go through apprise.Apprise itself.
_PLUGINS: dict[str, tuple[str, str]] = {
    **dict.fromkeys(("ntfy", "ntfys"), ("ntfy", "NotifyNtfy")),
    **dict.fromkeys(("json", "jsons"), ("custom_json", "NotifyJSON")),
    **dict.fromkeys(("form", "forms"), ("custom_form", "NotifyForm")),
    **dict.fromkeys(("mailto", "mailtos"), ("email", "NotifyEmail")),
    **dict.fromkeys(("tgram",), ("telegram", "NotifyTelegram")),
    **dict.fromkeys(("hassio", "hassios"), ("home_assistant", "NotifyHomeAssistant")),
    **dict.fromkeys(("gotify", "gotifys"), ("gotify", "NotifyGotify")),
    **dict.fromkeys(("pover",), ("pushover", "NotifyPushover")),
    **dict.fromkeys(("signal", "signals"), ("signal_api", "NotifySignalAPI")),
}
_SCHEME = re.compile(r"^([a-z][a-z0-9+.-]*)://", re.IGNORECASE)


def split_urls(urls: str) -> list[str]:
    """Apprise URLs as written in the config: separated by spaces, commas or lines.

    >>> split_urls("ntfy://h/a, json://h/b\\n mailtos://u:p@h")
    ['ntfy://h/a', 'json://h/b', 'mailtos://u:p@h']
    """
    return [u for u in re.split(r"[\s,]+", urls) if u]


class AppriseChannel:
    """Apprise services built from URLs.

    >>> AppriseChannel("json://127.0.0.1:9/x").services
    ('json',)
    """

    def __init__(self, urls: str, timeout: float = 10.0) -> None:
        self._targets: list[tuple[str, Any]] = []
        for url in split_urls(urls):
            match = _SCHEME.match(url)
            scheme = match.group(1).lower() if match else "?"
            target = _instantiate(scheme, url, timeout)
            if target is None:
                # One unreadable URL must not silence the others, nor stop the gateway;
                # the scheme only, since the URL itself may hold a token.
                log.error(
                    "notify.urls: a '%s://' URL apprise cannot read — check it against "
                    "https://github.com/caronc/apprise/wiki; that service is left out",
                    scheme,
                )
                continue
            self._targets.append((scheme, target))

    @property
    def services(self) -> tuple[str, ...]:
        return tuple(scheme for scheme, _ in self._targets)

    def send(self, message: Message) -> bool:
        body = message.body
        ok = True
        for _scheme, target in self._targets:
            ok = bool(target.notify(body=body, title=message.title)) and ok
        return ok


def _instantiate(scheme: str, url: str, timeout: float) -> Any | None:
    _quiet_apprise()
    known = _PLUGINS.get(scheme)
    if known is not None:
        module, name = known
        plugin = getattr(importlib.import_module(f"apprise.plugins.{module}"), name)
        args = plugin.parse_url(url)
        if args:
            args.update(socket_connect_timeout=timeout, socket_read_timeout=timeout)
            return plugin(**args)
    # Every plugin, for a service outside the table above. Some of them import stdlib
    # modules Python deprecates (imghdr): nothing the gateway could act on.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import apprise

        every = apprise.Apprise()
        added = every.add(url)
    return every if added else None


def _quiet_apprise() -> None:
    # Apprise logs request lines and failures with hosts, paths and sometimes tokens;
    # our own log says which service failed, never how it was addressed.
    logger = logging.getLogger("apprise")
    logger.propagate = False
    if not logger.handlers:
        logger.addHandler(logging.NullHandler())


# --------------------------------------------------------------------------- the sender


@dataclass
class NotifyCounters:
    sent: int = 0
    failed: int = 0  # given up after every retry
    retries: int = 0
    dropped: int = 0  # the queue was full


class Notifications:
    """Sends each order's notification in the background; never blocks, never raises.

    >>> class Phone:
    ...     services = ("test",)
    ...     def __init__(self): self.got = []
    ...     def send(self, message): self.got.append(message.title); return True
    >>> phone = Phone()
    >>> n = Notifications(phone, {"tea": ProductFacts(quantity=1)}, link_base=None)
    >>> n.start()
    >>> n.on_report(Report(Outcome.ORDER_STATUS, "kettle", 0.0, "tea", order_key="rg1_k",
    ...                    state=OrderState.ACCEPTED))
    >>> n.close()
    >>> phone.got, n.counters.sent
    (['Ordered: 1 × tea'], 1)
    """

    enabled = True

    def __init__(
        self,
        channel: Channel,
        products: Mapping[str, ProductFacts],
        *,
        link_base: str | None,
        retries: int = 3,
        retry_wait: float = 2.0,
    ) -> None:
        self._channel = channel
        self._products = dict(products)
        self._link_base = link_base
        self._retries = retries
        self._retry_wait = retry_wait
        self._queue: queue.Queue[Message | None] = queue.Queue(maxsize=QUEUE_SIZE)
        self._told: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.counters = NotifyCounters()

    def reconfigure(self, products: Mapping[str, ProductFacts]) -> None:
        self._products = dict(products)

    def on_report(self, report: Report) -> None:
        """On the core thread, after the commit: queue what the phones should hear."""
        message = compose(report, self._products, self._link_base)
        if message is None:
            return
        told = (message.order_key, message.kind)
        if told in self._told:
            return
        self._told[told] = None
        if len(self._told) > _TOLD_REMEMBERED:
            self._told.popitem(last=False)
        try:
            self._queue.put_nowait(message)
        except queue.Full:
            self.counters.dropped += 1
            log.warning("notifications: %d waiting already; dropped one", QUEUE_SIZE)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="notify", daemon=True)
        self._thread.start()

    def close(self, timeout: float = 2.0) -> None:
        """Stop after the message in hand; pauses between retries end at once."""
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(timeout)
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            message = self._queue.get()
            if message is None:
                return
            try:
                self._deliver(message)
            except Exception:
                self.counters.failed += 1
                log.exception("notifications: sending %r failed", message.title)

    def _deliver(self, message: Message) -> None:
        services = ", ".join(self._channel.services)

        def before_sleep(state: RetryCallState) -> None:
            self.counters.retries += 1
            log.info(
                "notifications: %s did not take %r (try %d of %d); trying again",
                services,
                message.title,
                state.attempt_number,
                self._retries + 1,
            )

        retrying = Retrying(
            stop=stop_after_attempt(self._retries + 1),
            wait=wait_exponential(multiplier=self._retry_wait, max=_BACKOFF_CAP),
            retry=retry_if_result(lambda ok: not ok),
            before_sleep=before_sleep,
            sleep=self._pause,
            retry_error_callback=lambda _state: False,
        )
        if retrying(self._channel.send, message):
            self.counters.sent += 1
            return
        self.counters.failed += 1
        log.warning(
            "notifications: %s did not take %r after %d tries (the order is not affected)",
            services,
            message.title,
            self._retries + 1,
        )

    def _pause(self, seconds: float) -> None:
        self._stop.wait(seconds)  # close() ends a pause at once

    def collector(self) -> Collector:
        """The counters as Prometheus metrics (``reorder_notifications_total``)."""
        return _NotifyCollector(self.counters)


class NoNotifications:
    """The stand-in when ``notify:`` names no URLs: takes reports, tells nobody."""

    enabled = False

    def __init__(self) -> None:
        self.counters = NotifyCounters()

    def reconfigure(self, products: Mapping[str, ProductFacts]) -> None:
        return None

    def on_report(self, report: Report) -> None:
        return None

    def start(self) -> None:
        return None

    def close(self, timeout: float = 2.0) -> None:
        return None

    def collector(self) -> Collector:
        """The counters as Prometheus metrics (``reorder_notifications_total``)."""
        return _NotifyCollector(self.counters)


Notifier = Notifications | NoNotifications


class _NotifyCollector(Collector):
    def __init__(self, counters: NotifyCounters) -> None:
        self.counters = counters

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            "reorder_notifications",
            "Phone notifications by outcome (failed: given up after every retry)",
            labels=["outcome"],
        )
        c = self.counters
        for outcome, value in (
            ("sent", c.sent),
            ("failed", c.failed),
            ("retried", c.retries),
            ("dropped", c.dropped),
        ):
            family.add_metric([outcome], float(value))
        yield family


def product_facts(products: Mapping[str, ProductConfig]) -> dict[str, ProductFacts]:
    """What notifications need of each configured product."""
    return {
        name: ProductFacts(
            quantity=p.quantity,
            confirm=p.confirm,
            confirm_expires=p.confirm_expires,
            confirm_window=p.confirm_window,
        )
        for name, p in products.items()
    }


def make_notifications(section: NotifySection, products: Mapping[str, ProductConfig]) -> Notifier:
    """The real sender when ``notify:`` names URLs, else the stand-in."""
    if not section.enabled or section.urls is None:
        return NoNotifications()
    channel = AppriseChannel(section.urls.get_secret_value(), timeout=section.timeout)
    log.info("notifications: to %s", ", ".join(channel.services))
    return Notifications(
        channel,
        product_facts(products),
        link_base=section.link_base,
        retries=section.retries,
        retry_wait=section.retry_wait,
    )
