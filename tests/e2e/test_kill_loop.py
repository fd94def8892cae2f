"""Issue 7, scenario 1: kill -9 the gateway at random moments while presses arrive.

Every distinct press must become exactly one order at the shop: none lost (the
broker holds what the gateway never acknowledged, the outbox what it committed),
none doubled (the dedupe ids and the Idempotency-Key). One press in ten is
published twice, as a button re-sends when it misses the PUBACK.

The Dash rule and the daily caps are off in the harness's default config, so the
only thing allowed to absorb a press is its being a duplicate.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass

import pytest

from tests.e2e.conftest import MakeGateway, MakeShop, assert_exactly_once
from tests.support.broker import Broker
from tests.support.gateway import GatewayProcess, press_payload
from tests.support.publisher import Publisher

pytestmark = pytest.mark.e2e


@dataclass
class KillLog:
    kills: int = 0
    killed_before_ready: int = 0
    error: BaseException | None = None


def _killer(gw: GatewayProcess, stop: threading.Event, rng: random.Random, log: KillLog) -> None:
    """Kill at random moments: mostly while running, sometimes while still starting."""
    try:
        while not stop.is_set():
            if rng.random() < 0.25:
                # Before it is ready: mid-connect, mid-redelivery, mid-recovery.
                stop.wait(rng.uniform(0.0, 0.4))
                log.killed_before_ready += 1
            else:
                gw.wait_ready()
                stop.wait(rng.uniform(0.05, 0.8))
            gw.kill()
            log.kills += 1
            gw.start()
        gw.wait_ready()
    except BaseException as exc:  # handed to the test thread, which fails with it
        log.error = exc


def press_under_kills(
    gw: GatewayProcess,
    broker: Broker,
    ids: list[str],
    rng: random.Random,
    *,
    client_id: str,
    max_gap: float,
) -> KillLog:
    """One press per id, one in ten published twice at once (a button that got no
    PUBACK), ``max_gap`` apart at most, while :func:`_killer` kills and restarts
    ``gw``. Returns the kill log once the killer has stopped cleanly."""
    stop = threading.Event()
    log = KillLog()
    killer = threading.Thread(target=_killer, args=(gw, stop, rng, log), daemon=True)
    with Publisher(broker.url, client_id=client_id, persistent=True) as button:
        killer.start()
        try:
            for seq, event_id in enumerate(ids):
                button.publish(gw.button_topic, press_payload(event_id, seq), qos=1)
                if rng.random() < 0.1:
                    button.publish(gw.button_topic, press_payload(event_id, seq), qos=1)
                time.sleep(rng.uniform(0, max_gap))
        finally:
            stop.set()
            killer.join(timeout=60)
    assert not killer.is_alive(), "the killer thread hung"
    if log.error is not None:
        raise log.error
    return log


def run_kill_loop(
    broker: Broker, make_shop: MakeShop, make_gateway: MakeGateway, n: int, seconds: float
) -> None:
    rng = random.Random(f"kill-loop-{n}")
    shop = make_shop()
    gw = make_gateway(shop=shop)
    gw.start().wait_ready()
    ids = [f"press-{i:05d}" for i in range(n)]
    # Re-sends come a little later, as the button's own retry would.
    plan: list[tuple[str, int]] = []
    resend: list[tuple[str, int]] = []
    for seq, event_id in enumerate(ids):
        plan.append((event_id, seq))
        if rng.random() < 0.10:
            resend.append((event_id, seq))
        if resend and rng.random() < 0.3:
            plan.append(resend.pop(0))
    plan += resend
    resent = len(plan) - n

    stop = threading.Event()
    log = KillLog()
    killer = threading.Thread(target=_killer, args=(gw, stop, rng, log), daemon=True)
    pause = 2 * seconds / len(plan)
    with Publisher(broker.url, client_id="kill-loop-button", persistent=True) as button:
        killer.start()
        try:
            for event_id, seq in plan:
                button.publish(gw.button_topic, press_payload(event_id, seq), qos=1)
                time.sleep(rng.uniform(0, pause))
        finally:
            stop.set()
            killer.join(timeout=60)
    assert not killer.is_alive(), "the killer thread hung"
    if log.error is not None:
        raise log.error
    assert log.kills >= 3, log

    stats = assert_exactly_once(shop, gw, ids, timeout=max(60.0, n / 20))
    # Shown with -rA / on failure: how hard the run was.
    print(
        f"kill loop: {n} presses (+{resent} re-sent), {log.kills} SIGKILLs "
        f"({log.killed_before_ready} before ready), {gw.starts} starts, "
        f"{stats['post_attempts']} POSTs, {stats['replays']} replays"
    )
    # The re-sends reached the gateway and were recognised, not just lost somewhere.
    outcomes = [e.get("outcome") for e in gw.events.items]
    assert "duplicate" in outcomes


def test_kill_loop_every_press_one_order(
    broker: Broker, make_shop: MakeShop, make_gateway: MakeGateway
) -> None:
    run_kill_loop(broker, make_shop, make_gateway, n=200, seconds=8.0)


@pytest.mark.slow
def test_kill_loop_long(broker: Broker, make_shop: MakeShop, make_gateway: MakeGateway) -> None:
    run_kill_loop(broker, make_shop, make_gateway, n=5000, seconds=180.0)
