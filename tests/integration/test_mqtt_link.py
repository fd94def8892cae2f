"""The MQTT link against a real mosquitto: sessions, manual acks, availability, TLS."""

from __future__ import annotations

import logging
import re
import socket
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest

from gateway.config.broker import BrokerAddress, BrokerUrlError, parse_broker_url
from gateway.config.models import MqttSection
from gateway.errors import TlsSetupError, TopicFilterError
from gateway.inputs.messages import InboundMessage
from gateway.inputs.mqtt import MqttLink, check_topic_filter
from gateway.ops.status import Liveness, render_status, status_document
from tests.support.broker import Broker, TestCA
from tests.support.ports import free_port
from tests.support.publisher import Collector, Publisher, wait_until

ROOT = Path(__file__).resolve().parents[2]
GW = "kitchen"
STATUS = f"reorder/{GW}/status"


LinkFactory = Callable[..., tuple[MqttLink, Collector[InboundMessage], Collector[bool]]]


@pytest.fixture
def make_link() -> Iterator[LinkFactory]:
    """Start links that are stopped at teardown; returns (link, messages, connection states)."""
    links: list[MqttLink] = []

    def make(
        url: str,
        subscriptions: tuple[str, ...] = ("buttons/#",),
        on_message: Callable[[InboundMessage], None] | None = None,
        start: bool = True,
        receive_maximum: int = 100,
        link_options: dict[str, Any] | None = None,
        **settings: object,
    ) -> tuple[MqttLink, Collector[InboundMessage], Collector[bool]]:
        inbox: Collector[InboundMessage] = Collector()
        states: Collector[bool] = Collector()
        link = MqttLink(
            MqttSection.model_validate({"url": url, **settings}),
            GW,
            subscriptions=list(subscriptions),
            on_message=on_message or inbox.append,
            on_connection=states.append,
            receive_maximum=receive_maximum,
            **(link_options or {}),
        )
        links.append(link)
        if start:
            link.start()
        return link, inbox, states

    yield make
    for link in links:
        link.stop()


def connected(states: Collector[bool]) -> None:
    states.wait_for(lambda s: bool(s) and s[-1])


def payloads(messages: list[InboundMessage]) -> list[bytes]:
    return [m.payload for m in messages]


# --------------------------------------------------------------------------- availability


def test_online_is_retained_and_stop_publishes_offline(
    broker: Broker, make_link: LinkFactory
) -> None:
    with Publisher(broker.url) as watcher:
        watcher.subscribe(STATUS)
        link, _, states = make_link(broker.url)
        connected(states)
        assert watcher.wait_for_message(STATUS, b"online")
        assert link.connected
        link.stop()
        watcher.wait_for_message(STATUS, b"offline")
        assert not link.connected
    with Publisher(broker.url) as late:  # a Home Assistant that starts later still knows
        late.subscribe(STATUS)
        status = late.wait_for_message(STATUS)
        assert (status.payload, status.retain) == (b"offline", True)


def test_last_will_says_offline_when_the_gateway_dies(broker: Broker) -> None:
    script = textwrap.dedent(
        f"""
        import sys, threading
        from gateway.config.models import MqttSection
        from gateway.inputs.mqtt import MqttLink
        up = threading.Event()
        link = MqttLink(MqttSection(url={broker.url!r}), {GW!r}, subscriptions=[],
                        on_message=lambda m: None, on_connection=lambda ok: ok and up.set())
        link.start()
        up.wait(10)
        print("up", flush=True)
        threading.Event().wait()
        """
    )
    with Publisher(broker.url) as watcher:
        watcher.subscribe(STATUS)
        with subprocess.Popen(
            [sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, text=True
        ) as proc:
            try:
                assert proc.stdout is not None and proc.stdout.readline().strip() == "up"
                watcher.wait_for_message(STATUS, b"online")
            finally:
                proc.kill()  # SIGKILL: no DISCONNECT, only the will can tell
        offline = watcher.wait_for_message(STATUS, b"offline")
        assert offline.qos == 1


# --------------------------------------------------------------------------- sessions


def test_messages_published_while_stopped_arrive_after_start(
    broker: Broker, make_link: LinkFactory
) -> None:
    first, _, states = make_link(broker.url)
    connected(states)
    first.stop()
    with Publisher(broker.url) as device:
        for i in range(5):
            device.publish("buttons/laundry", f"press-{i}", qos=1)
    second, inbox, _ = make_link(broker.url)
    got = inbox.wait_for(lambda ms: len(ms) >= 5)
    assert payloads(got) == [f"press-{i}".encode() for i in range(5)]
    assert all(m.qos == 1 and not m.retain for m in got)
    assert second.counters.messages_in == 5


def test_unacked_message_is_redelivered_with_dup_and_acked_one_is_not(
    broker: Broker, make_link: LinkFactory
) -> None:
    with Publisher(broker.url) as device:
        a, inbox_a, states_a = make_link(broker.url)
        connected(states_a)
        device.publish("buttons/laundry", b"one", qos=1)
        device.publish("buttons/laundry", b"two", qos=1)
        one, two = inbox_a.wait_for(lambda ms: len(ms) == 2)
        assert (one.dup, two.dup) == (False, False)
        a.ack(two.mid, two.qos)  # "two" was committed; the gateway dies before "one" was
        a.stop()

        b, inbox_b, states_b = make_link(broker.url)
        connected(states_b)
        device.publish("buttons/laundry", b"marker-b", qos=1)
        got = inbox_b.wait_for(lambda ms: b"marker-b" in payloads(ms))
        assert payloads(got) == [b"one", b"marker-b"]
        assert got[0].dup is True and got[1].dup is False
        for m in got:
            b.ack(m.mid, m.qos)
        b.ack(got[0].mid, got[0].qos)  # a second ack of the same mid is harmless
        b.stop()

        _, inbox_c, states_c = make_link(broker.url)
        connected(states_c)
        device.publish("buttons/laundry", b"marker-c", qos=1)
        assert payloads(inbox_c.wait_for(lambda ms: len(ms) >= 1)) == [b"marker-c"]


def test_receive_maximum_bounds_unacked_messages_in_flight(
    broker: Broker, make_link: LinkFactory
) -> None:
    link, inbox, states = make_link(broker.url, receive_maximum=5)
    connected(states)
    with Publisher(broker.url) as device:
        for i in range(20):
            device.publish("buttons/b", str(i), qos=1)
        # QoS 0 is outside the Receive Maximum quota, so this overtakes the held-back
        # QoS 1 messages and shows what the broker had sent us by then.
        device.publish("buttons/b", b"probe", qos=0)
        seen = inbox.wait_for(lambda ms: b"probe" in payloads(ms))
        assert payloads(seen) == [b"0", b"1", b"2", b"3", b"4", b"probe"]
        acked = 0
        while acked < 21:
            items = inbox.wait_for(lambda ms: len(ms) > acked)  # noqa: B023 (used at once)
            for m in items[acked:]:
                link.ack(m.mid, m.qos)
            acked = len(items)
    assert payloads(inbox.items)[6:] == [str(i).encode() for i in range(5, 20)]


def test_broker_restart_mid_stream_loses_nothing(tmp_path: Path, make_link: LinkFactory) -> None:
    broker = Broker(tmp_path / "durable").start()
    link: MqttLink | None = None

    def ack_at_once(m: InboundMessage) -> None:
        inbox.append(m)
        assert link is not None
        link.ack(m.mid, m.qos)

    inbox: Collector[InboundMessage] = Collector()
    link, _, states = make_link(broker.url, on_message=ack_at_once)
    connected(states)
    device = Publisher(broker.url, "test-device", persistent=True)
    try:
        for i in range(30):
            device.publish("buttons/b", str(i), qos=1, wait=False)
        broker.restart()
        for i in range(30, 60):
            device.publish("buttons/b", str(i), qos=1, wait=False)
        expected = {str(i).encode() for i in range(60)}
        inbox.wait_for(lambda ms: set(payloads(ms)) >= expected, timeout=20)
        states.wait_for(lambda s: s == [True, False, True])  # resumed sessions deliver early
        assert link.connected
        assert link.counters.reconnects == 1
    finally:
        device.close()
        broker.kill()


def test_resubscribes_when_the_broker_lost_the_session(
    tmp_path: Path, make_link: LinkFactory
) -> None:
    forgetful = Broker(tmp_path / "forgetful", persistence=False).start()
    try:
        link, inbox, states = make_link(forgetful.url)
        connected(states)
        forgetful.restart()  # no persistence: the session and its subscriptions are gone
        states.wait_for(lambda s: s.count(True) >= 2, timeout=15)
        with Publisher(forgetful.url) as device:
            device.subscribe(STATUS)
            device.wait_for_message(STATUS, b"online")  # sent after the resubscribe
            device.publish("buttons/hall", b"after-restart", qos=1)
            assert payloads(inbox.wait_for(lambda ms: len(ms) >= 1)) == [b"after-restart"]
        assert link.counters.reconnects == 1
    finally:
        forgetful.kill()


def test_link_started_before_the_broker_connects_when_it_appears(
    tmp_path: Path, make_link: LinkFactory
) -> None:
    late = Broker(tmp_path / "late")
    try:
        link, inbox, states = make_link(late.url)
        assert not link.connected
        link.publish("reorder/kitchen/events", b"{}", qos=0)  # nowhere to go: counted
        assert link.counters.dropped_publishes == 1
        late.start()
        connected(states)
        with Publisher(late.url) as device:
            device.publish("buttons/hall", b"hello", qos=1)
            assert payloads(inbox.wait_for(lambda ms: len(ms) >= 1)) == [b"hello"]
        assert link.counters.connect_failures >= 1
    finally:
        late.kill()


# --------------------------------------------------------------------------- bad input


def test_oversized_payload_is_dropped_counted_and_acked(
    broker: Broker, make_link: LinkFactory
) -> None:
    with Publisher(broker.url) as device:
        link, inbox, states = make_link(broker.url, max_payload=64)
        connected(states)
        device.publish("buttons/b", b"x" * 65, qos=1)
        device.publish("buttons/b", b"small", qos=1)
        (small,) = inbox.wait_for(lambda ms: len(ms) >= 1)
        assert small.payload == b"small"
        link.ack(small.mid, small.qos)
        assert link.counters.oversized == 1
        assert link.counters.messages_in == 2
        link.stop()

        again, inbox2, states2 = make_link(broker.url, max_payload=64)
        connected(states2)
        device.publish("buttons/b", b"marker", qos=1)
        assert payloads(inbox2.wait_for(lambda ms: len(ms) >= 1)) == [b"marker"]
        assert again.counters.oversized == 0  # it was acknowledged, not redelivered


def test_a_raising_callback_is_counted_and_the_loop_keeps_running(
    broker: Broker, make_link: LinkFactory, caplog: pytest.LogCaptureFixture
) -> None:
    inbox: Collector[InboundMessage] = Collector()

    def fragile(m: InboundMessage) -> None:
        if m.payload == b"boom":
            raise RuntimeError("queue on fire")
        inbox.append(m)

    link, _, states = make_link(broker.url, on_message=fragile)
    connected(states)
    with (
        caplog.at_level(logging.ERROR, logger="gateway.inputs.mqtt"),
        Publisher(broker.url) as device,
    ):
        device.publish("buttons/b", b"boom", qos=1)
        device.publish("buttons/b", b"fine", qos=1)
        assert payloads(inbox.wait_for(lambda ms: len(ms) >= 1)) == [b"fine"]
    assert link.counters.callback_errors == 1
    assert link.connected
    assert "RuntimeError: queue on fire" in caplog.text


def test_retained_messages_arrive_flagged_and_live_ones_do_not(
    broker: Broker, make_link: LinkFactory
) -> None:
    with Publisher(broker.url) as device:
        device.publish("buttons/hall", b"old-press", qos=1, retain=True)
        _, inbox, _ = make_link(broker.url)
        old = inbox.wait_for(lambda ms: len(ms) >= 1)[0]
        assert (old.payload, old.retain) == (b"old-press", True)
        device.publish("buttons/hall", b"new-press", qos=1, retain=True)
        new = inbox.wait_for(lambda ms: len(ms) >= 2)[1]
        assert (new.payload, new.retain) == (b"new-press", False)


def test_set_subscriptions_adds_and_removes_filters(broker: Broker, make_link: LinkFactory) -> None:
    with Publisher(broker.url) as device:
        device.subscribe("sync")
        link, inbox, states = make_link(broker.url, subscriptions=("old/+",))
        connected(states)
        link.set_subscriptions(["new/+"])
        # The broker handles one connection's packets in order: once "sync" is
        # out, the SUBSCRIBE and UNSUBSCRIBE before it are in effect.
        link.publish("sync", b"1", qos=1)
        device.wait_for_message("sync")
        device.publish("old/a", b"to-old", qos=1)
        device.publish("new/a", b"to-new", qos=1)
        got = inbox.wait_for(lambda ms: b"to-new" in payloads(ms))
        assert payloads(got) == [b"to-new"]
        assert link.subscriptions == ("new/+",)


def test_publish_never_raises_and_counts_what_it_drops(
    broker: Broker, make_link: LinkFactory
) -> None:
    link, _, states = make_link(broker.url, start=False)
    link.publish("reorder/kitchen/events", b"{}")  # not started
    link.start()
    connected(states)
    link.publish("reorder/+/events", b"{}")  # wildcards cannot be published to
    assert link.counters.dropped_publishes == 2


def test_the_password_is_never_logged(
    broker: Broker, make_link: LinkFactory, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        link, _, states = make_link(broker.url, username="gw", password="hunter2-secret")
        connected(states)
        link.stop()
    assert "MQTT: connected" in caplog.text
    assert "hunter2" not in caplog.text


# --------------------------------------------------------------------------- configuration


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mqtt://broker.lan", BrokerAddress("broker.lan", 1883, False)),
        ("mqtts://broker.lan", BrokerAddress("broker.lan", 8883, True)),
        ("MQTTS://10.0.0.2:8884/", BrokerAddress("10.0.0.2", 8884, True)),
    ],
)
def test_broker_urls(url: str, expected: BrokerAddress) -> None:
    assert parse_broker_url(url) == expected


@pytest.mark.parametrize(
    ("url", "hint"),
    [
        ("tcp://broker.lan", "mqtt://"),
        ("broker.lan:1883", "mqtt://"),
        ("mqtt://", "no host"),
        ("mqtt://u:pw@broker.lan", "password_file"),
        ("mqtt://broker.lan:99999", "not a broker URL"),
        ("mqtt://broker.lan/x", "path"),
    ],
)
def test_bad_broker_urls_say_how_to_fix_them(url: str, hint: str) -> None:
    with pytest.raises(BrokerUrlError, match=hint) as err:
        parse_broker_url(url)
    assert "pw" not in str(err.value) or "password_file" in str(err.value)


@pytest.mark.parametrize("bad", ["", "a/#/b", "a/b#", "a/x+/c"])
def test_bad_topic_filters_are_refused(bad: str) -> None:
    with pytest.raises(TopicFilterError):
        check_topic_filter(bad)
    with pytest.raises(TopicFilterError):
        MqttLink(MqttSection(), GW, subscriptions=[bad], on_message=lambda m: None)


def test_tls_files_with_a_plain_url_are_refused() -> None:
    with pytest.raises(BrokerUrlError, match="mqtts://"):
        MqttLink(
            MqttSection(url="mqtt://broker.lan", ca_file="/etc/ca.pem"),
            GW,
            subscriptions=[],
            on_message=lambda m: None,
        )


def test_missing_ca_file_is_a_clear_error(tmp_path: Path) -> None:
    link = MqttLink(
        MqttSection(url="mqtts://127.0.0.1:1", ca_file=str(tmp_path / "nope.pem")),
        GW,
        subscriptions=[],
        on_message=lambda m: None,
    )
    with pytest.raises(TlsSetupError, match=r"ca_file"):
        link.start()
    assert not link.connected


# --------------------------------------------------------------------------- TLS


@pytest.fixture
def tls_broker(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """mosquitto with a TLS listener and a certificate for 127.0.0.1 from a private CA."""
    ca = TestCA(tmp_path / "tls")
    broker = Broker(tmp_path / "tls-broker", tls=ca.issue("srv", "IP:127.0.0.1")).start()
    try:
        yield broker.url, ca.cert
    finally:
        broker.kill()


# paho's _ssl_wrap_socket does not close the socket when the handshake fails;
# CPython closes it as soon as the exception is dropped, leaving only this warning.
@pytest.mark.filterwarnings(
    r"ignore:Exception ignored in. <ssl\.SSLSocket:pytest.PytestUnraisableExceptionWarning"
)
def test_tls_connects_with_the_right_ca_and_verifies_the_certificate(
    tls_broker: tuple[str, Path], make_link: LinkFactory
) -> None:
    url, ca = tls_broker
    trusted, _, states = make_link(url, ca_file=str(ca))
    connected(states)
    assert trusted.connected
    # Without our CA the system store does not know this certificate: no session, ever.
    untrusted, _, _ = make_link(url)
    wait_until(lambda: untrusted.counters.connect_failures >= 1)
    assert not untrusted.connected


def test_an_ack_for_a_stale_copy_does_not_acknowledge_a_newer_message() -> None:
    """The broker reuses a packet id once it has its PUBACK; only the latest copy's
    ack may acknowledge it (white-box: no broker can stage this order of events)."""
    handed: list[InboundMessage] = []
    link = MqttLink(MqttSection(), GW, subscriptions=["b/#"], on_message=handed.append)
    first = paho.MQTTMessage(mid=5, topic=b"b/x")
    first.qos, first.payload = 1, b"{}"
    again = paho.MQTTMessage(mid=5, topic=b"b/x")
    again.qos, again.payload, again.dup = 1, b"{}", True
    link._handle_message(link._make_client(), None, first)
    link._handle_message(link._make_client(), None, again)
    stale, latest = handed
    assert stale.delivery != latest.delivery
    link.ack(stale.mid, stale.qos, stale.delivery)
    assert link._pending == {5: latest.delivery}, "the stale copy's ack went through"
    link.ack(latest.mid, latest.qos, latest.delivery)
    assert link._pending == {}


def test_the_link_turns_nagle_off_on_its_own_connection(
    broker: Broker, make_link: LinkFactory
) -> None:
    """With Nagle on, a publish right after a PUBACK waits for the broker's delayed
    ACK (40 ms; measured in bench/README.md). White-box: the timing is the bench's."""
    link, _, states = make_link(broker.url)
    connected(states)
    sock = link._sock
    assert sock is not None
    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


# --------------------------------------------------------------------------- failures say why

# paho leaves the socket of a failed TLS handshake to the garbage collector.
_UNCLOSED_TLS_SOCKET = pytest.mark.filterwarnings(
    r"ignore:Exception ignored in. <ssl\.SSLSocket:pytest.PytestUnraisableExceptionWarning"
)


def _failures(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "gateway.inputs.mqtt" and r.levelno >= logging.WARNING
    ]


def _first_problem(link: MqttLink) -> str:
    wait_until(lambda: link.problem is not None, timeout=15)
    assert not link.connected
    return link.problem or ""


@_UNCLOSED_TLS_SOCKET
def test_a_certificate_from_another_ca_is_reported_as_not_trusted(
    tmp_path: Path, make_link: LinkFactory, caplog: pytest.LogCaptureFixture
) -> None:
    theirs, ours = TestCA(tmp_path / "theirs", "their ca"), TestCA(tmp_path / "ours", "our ca")
    broker = Broker(tmp_path / "b", tls=theirs.issue("srv", "IP:127.0.0.1")).start()
    try:
        caplog.set_level(logging.INFO, "gateway.inputs.mqtt")
        link, _, _ = make_link(broker.url, ca_file=str(ours.cert))
        problem = _first_problem(link)
        assert problem.startswith("certificate not trusted:"), problem
        assert "mqtt.ca_file" in problem
        assert any(problem in line for line in _failures(caplog))
    finally:
        broker.kill()


@_UNCLOSED_TLS_SOCKET
def test_a_certificate_for_another_host_is_reported_as_a_hostname_mismatch(
    tmp_path: Path, make_link: LinkFactory, caplog: pytest.LogCaptureFixture
) -> None:
    ca = TestCA(tmp_path / "ca")
    broker = Broker(tmp_path / "b", tls=ca.issue("srv", "DNS:broker.example")).start()
    try:
        caplog.set_level(logging.INFO, "gateway.inputs.mqtt")
        link, _, _ = make_link(broker.url, ca_file=str(ca.cert))
        problem = _first_problem(link)
        assert problem.startswith("hostname mismatch:"), problem
        assert "127.0.0.1" in problem
        assert any(problem in line for line in _failures(caplog))
    finally:
        broker.kill()


def test_a_port_nobody_listens_on_is_reported_as_refused(
    make_link: LinkFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "gateway.inputs.mqtt")
    link, _, _ = make_link(f"mqtt://127.0.0.1:{free_port()}")
    problem = _first_problem(link)
    assert problem.startswith("connection refused:"), problem
    assert _failures(caplog) == [
        f"MQTT: cannot connect to {link._address}: {problem}; retrying every 1-30 s"
    ]


@_UNCLOSED_TLS_SOCKET
def test_a_broker_that_never_answers_is_reported_as_a_timeout(
    make_link: LinkFactory, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts, never speaks TLS
        port = silent.getsockname()[1]
        link, _, _ = make_link(f"mqtts://127.0.0.1:{port}", link_options={"connect_timeout": 0.5})
        problem = _first_problem(link)
    assert problem.startswith("timeout: no answer from 127.0.0.1:"), problem
    assert "within 0.5 s" in problem


def test_a_wrong_password_is_not_authorised_and_no_protocol_error(
    tmp_path: Path, make_link: LinkFactory, caplog: pytest.LogCaptureFixture
) -> None:
    broker = Broker(tmp_path / "b", users={"gateway": "right"}).start()
    try:
        caplog.set_level(logging.DEBUG, "gateway.inputs.mqtt")
        link, _, _ = make_link(broker.url, username="gateway", password="wrong")
        problem = _first_problem(link)
        wait_until(lambda: link.counters.connect_failures >= 2, timeout=10)
        assert problem.startswith("not authorised:"), problem
        assert "mqtt.username" in problem and "password" in problem, problem
        messages = [r.getMessage() for r in caplog.records]
        assert not [m for m in messages if "Protocol error" in m], messages
        assert not [m for m in messages if "lost the connection" in m], messages
        # the right password connects, and the failure is gone
        good, _, states = make_link(broker.url, username="gateway", password="right")
        connected(states)
        assert good.problem is None
    finally:
        broker.kill()


def test_failed_attempts_are_logged_first_then_summarised_then_the_reconnect(
    tmp_path: Path, make_link: LinkFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "gateway.inputs.mqtt")
    late = Broker(tmp_path / "late")  # a port, nothing listening yet
    link, _, states = make_link(late.url, link_options={"retry_delay": (1, 1), "report_every": 3.0})
    # paho waits at least 1 s between attempts: by the 4th, 3 s have passed, so the
    # first attempt is logged and exactly one later one summarises those since.
    wait_until(lambda: link.counters.connect_failures >= 4, timeout=15)
    lines = _failures(caplog)
    assert len(lines) == 2, lines
    first, summary = lines
    assert first.startswith(f"MQTT: cannot connect to {late.url}: connection refused")
    assert summary.startswith(f"MQTT: still cannot connect to {late.url}: connection refused")
    counts = re.search(r"\((\d+) attempts in the last \d+ s, (\d+) in \d+ s in all\)$", summary)
    assert counts, summary
    since_first, in_all = int(counts[1]), int(counts[2])
    assert since_first >= 2 and in_all == since_first + 1, summary
    late.start()
    try:
        connected(states)
        back = [r.getMessage() for r in caplog.records if "MQTT: connected to" in r.getMessage()]
        assert len(back) == 1 and " after " in back[0] and "failed attempts in" in back[0], back
        assert link.problem is None
    finally:
        late.kill()


def test_status_names_why_the_broker_is_not_connected() -> None:
    live = Liveness(
        pid=1,
        running=True,
        started_at=0.0,
        updated_at=10.0,
        mqtt_url="mqtts://broker.lan:8883",
        mqtt_connected=False,
        shop_url="http://shop",
        shop_reachable=True,
        last_send_seconds=None,
        metrics_url=None,
        last_events=(),
        mqtt_problem="hostname mismatch: IP address mismatch",
    )
    doc = status_document("kitchen", None, live)
    assert doc["mqtt"]["problem"] == "hostname mismatch: IP address mismatch"
    assert "NOT connected: hostname mismatch: IP address mismatch" in render_status(doc, 10.0)
