"""The gateway's memory with the household's page on, while it is used. Prints figures.

    .venv/bin/python bench/bench_web.py [--seconds 30] [--streams 4] [--press-every 0.5]

Real processes: a private mosquitto, the reference shop, ``python -m gateway run`` with
``web:`` on. It logs in, keeps ``--streams`` ``/events`` streams open, polls every page
in a loop and presses a button every ``--press-every`` seconds for ``--seconds``; then
prints the gateway process's VmHWM (peak resident) and VmRSS from /proc/<pid>/status,
before the load and after it, with how many pages, presses and live changes it saw.
No goal is checked: these are figures to compare runs with (on a loaded machine they
are noisy).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402

from gateway.web.auth import write_password_file  # noqa: E402
from tests.support.broker import Broker  # noqa: E402
from tests.support.gateway import GatewayProcess, press_payload  # noqa: E402
from tests.support.ports import free_port, wait_for_port  # noqa: E402
from tests.support.publisher import Publisher  # noqa: E402
from tests.support.shop import ShopProcess  # noqa: E402

PASSWORD = "bench password, not a secret"
PAGES = ("/", "/history", "/devices", "/health")


def memory(pid: int) -> dict[str, int]:
    """VmHWM and VmRSS of ``pid`` in kB."""
    figures: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmHWM", "VmRSS"):
            figures[name + "_kB"] = int(value.split()[0])
    return figures


def _stream(base: str, cookies: httpx.Cookies, stop: threading.Event, seen: list[int]) -> None:
    """One live client: reads ``/events`` until ``stop``, counting the changes."""
    timeout = httpx.Timeout(5.0, read=20.0)
    with (
        httpx.Client(base_url=base, cookies=cookies, timeout=timeout) as c,
        c.stream("GET", "/events") as answer,
    ):
        answer.raise_for_status()
        for line in answer.iter_lines():
            if line.startswith("event: change"):
                seen[0] += 1
            if stop.is_set():
                return


def run(workdir: Path, seconds: float, streams: int, press_every: float) -> dict[str, object]:
    with ExitStack() as stack:
        broker = Broker(workdir / "broker").start()
        stack.callback(broker.kill)
        shop = ShopProcess(workdir / "shop").start()
        stack.callback(shop.kill)
        port = free_port()
        password_file = workdir / "web-password"
        write_password_file(password_file, PASSWORD)
        gw = GatewayProcess(
            workdir / "gw",
            {
                "web": {"port": port, "password_file": str(password_file)},
                "limits": {"max_orders_per_day": 100000},
            },
            broker_url=broker.url,
            shop_url=shop.url,
            shop_token=shop.token,
        )
        stack.callback(gw.close)
        gw.start().wait_ready()
        wait_for_port(port)
        base = f"http://127.0.0.1:{port}"
        client = stack.enter_context(httpx.Client(base_url=base, timeout=10.0))
        login = client.post("/login", data={"password": PASSWORD})
        if login.status_code != 303:
            raise SystemExit(f"login failed: {login.status_code} {login.text[:200]}")
        before = memory(gw.pid)
        stop = threading.Event()
        seen = [[0] for _ in range(streams)]
        threads = [
            threading.Thread(target=_stream, args=(base, client.cookies, stop, s), daemon=True)
            for s in seen
        ]
        for t in threads:
            t.start()
        pages = presses = 0
        started = time.monotonic()
        next_press = started
        with Publisher(broker.url, client_id="bench-web-button") as button:
            while time.monotonic() - started < seconds:
                if time.monotonic() >= next_press:
                    button.publish(gw.button_topic, press_payload(f"web-{presses:05d}", presses))
                    presses += 1
                    next_press += press_every
                for page in PAGES:
                    client.get(page).raise_for_status()
                    pages += 1
        time.sleep(1.0)  # the last presses' changes reach the streams
        after = memory(gw.pid)
        stop.set()
        return {
            "seconds": seconds,
            "streams": streams,
            "presses": presses,
            "pages_served": pages,
            "changes_per_stream": [s[0] for s in seen],
            "shop_orders": len(shop.orders()),
            "before": before,
            "after": after,
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--streams", type=int, default=4)
    parser.add_argument("--press-every", type=float, default=0.5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rg-web-") as tmp:
        figures = run(Path(tmp), args.seconds, args.streams, args.press_every)
    print(json.dumps(figures, indent=2))
    before, after = figures["before"], figures["after"]
    assert isinstance(before, dict) and isinstance(after, dict)
    print(
        f"gateway with the page on: VmRSS {before['VmRSS_kB']} kB before, "
        f"{after['VmRSS_kB']} kB after {figures['pages_served']} pages, "
        f"{figures['presses']} presses and {args.streams} live streams; "
        f"VmHWM {after['VmHWM_kB']} kB"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
