"""The one-command demo, run as a person would (minus the set-up, which the suite's
own ``scripts/test`` already did): the orchestrator with the venv's Python.

``--seconds 30 --time-scale 1200`` plays the whole demo scenario (ten sim hours) against a
private mosquitto, the reference shop and the gateway; the summary's last line is
JSON, and it must show what the issue promises, with every time on the one
simulated clock. Then Ctrl-C mid-story must stop everything and exit 0. With
``--vendure`` the same story orders from a real local Vendure, and the summary
counts the orders Vendure has paid.
"""

from __future__ import annotations

import json
import os
import re
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
DECISION = re.compile(r"^\d\d:\d\d  gateway ")  # a story line telling a gateway decision


def start_demo(state_dir: Path, *args: str) -> subprocess.Popen[str]:
    # Its own process group, as a shell gives a foreground job: Ctrl-C goes to the group.
    return subprocess.Popen(
        [sys.executable, "-m", "firmware_sim.demo", "--state-dir", str(state_dir), *args],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def finish(proc: subprocess.Popen[str], timeout: float) -> str:
    """The rest of the output once the demo exits; killed (group and all) on overrun."""
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        raise AssertionError(f"the demo did not finish within {timeout}s:\n{out[-3000:]}") from None
    return out


def summary_of(output: str) -> dict[str, Any]:
    last = output.strip().splitlines()[-1]
    summary: dict[str, Any] = json.loads(last)
    return summary


def running(pid: int) -> bool:
    """True if ``pid`` is still one of the demo's components (not a recycled pid)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return b"mosquitto" in cmdline or b"firmware_sim" in cmdline or b"gateway" in cmdline


def assert_no_survivors(summary: dict[str, Any], shop: str = "shop") -> None:
    pids = summary["pids"]
    assert set(pids) == {"mosquitto", shop, "gateway", "sim"}, pids
    survivors = {name: pid for name, pid in pids.items() if running(pid)}
    assert not survivors, f"still running after the demo exited: {survivors}"


def run_demo(tmp_path: Path, *args: str, timeout: float) -> tuple[subprocess.Popen[str], str]:
    """Run the demo to its end (killed if it outlives ``timeout``); its output."""
    proc = start_demo(tmp_path, *args)
    try:
        output = finish(proc, timeout=timeout)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    return proc, output


def test_demo_for_thirty_seconds_tells_the_story_and_sums_it_up(tmp_path: Path) -> None:
    proc, output = run_demo(tmp_path, "--seconds", "30", "--time-scale", "1200", timeout=110)
    assert proc.returncode == 0, output[-3000:]
    summary = summary_of(output)
    assert summary["ok"] is True, summary

    # Orders from a wired button, a wireless (MQTT) button and a sensor, as the shop has them.
    assert summary["orders_by_source"]["gpio"] >= 1, summary
    assert summary["orders_by_source"]["mqtt"] >= 1, summary
    assert summary["orders_by_source"]["sensor"] >= 1, summary
    assert summary["repeated_event_ids"] == 0, summary
    # The re-sent hallway press and the Zigbee double publish were counted once...
    assert summary["duplicates_prevented"] >= 1, summary
    # ...and the second laundry press found its order still open.
    assert summary["absorbed"].get("one_open_order", 0) >= 1, summary
    assert summary["sim"]["presses"] >= 4, summary

    # The story a person reads says the same things in words.
    assert "pressed while an order is open → already ordered" in output
    assert "→ counted once" in output
    assert "coffee-scale below 250 g for 60 s → reorder coffee" in output
    assert "delivered" in output
    assert "Traceback" not in output
    run_dir = Path(summary["state_dir"])
    assert run_dir.parent == tmp_path
    assert (run_dir.stat().st_mode & 0o077) == 0, "the run directory must be private"
    assert_no_survivors(summary)
    assert_one_clock(output, run_dir)


SCENARIO_DAY = "2026-11-26"  # firmware_sim/scenarios/demo.yaml starts there at 06:00
STAMPED = re.compile(r"^(sim )?\d{2,4}[-:]\d\d")  # a log line that begins with a time
AGE = re.compile(r"^rg1_\S+\s+\S+\s+\S+\s+\S+\s+(\d+)([smhd])\s")


def assert_one_clock(output: str, run_dir: Path) -> None:
    """Every time the demo shows is on the one simulated clock, and says so: the
    story's, the logs', the status file's; and ``queue`` tells ages on it."""
    assert f"clock       simulated, x1200 from {SCENARIO_DAY} 06:00 UTC" in output
    for name in ("gateway.log", "shop.log"):
        lines = (run_dir / name).read_text().splitlines()
        stamped = [line for line in lines if STAMPED.match(line)]
        assert len(stamped) >= 3, (name, lines[:5])
        wrong = [line for line in stamped if not line.startswith(f"sim {SCENARIO_DAY} ")]
        assert not wrong, (name, wrong[:3])
    sim_lines = [line for line in (run_dir / "sim.log").read_text().splitlines() if line]
    assert all(
        line.startswith(f"[sim {SCENARIO_DAY} ") or line.startswith("{") for line in sim_lines
    ), sim_lines[:3]
    broker_lines = (run_dir / "mosquitto.log").read_text().splitlines()
    assert not any(STAMPED.match(line) for line in broker_lines), broker_lines[:3]

    status = json.loads((run_dir / "gateway" / "status.json").read_text())
    assert time.strftime("%Y-%m-%d", time.gmtime(status["clock"]["now"])) == SCENARIO_DAY
    assert status["clock"]["scale"] == 1200
    assert all(e["at"].startswith(SCENARIO_DAY) for e in status["last_events"]), status

    # The demo's own hint for looking into the queue, run as printed.
    listing = subprocess.run(
        [sys.executable, "-m", "gateway", "queue", "--config", "config/demo.yaml"],
        cwd=ROOT,
        env={**os.environ, "RG_STATE_DIR": str(run_dir / "gateway")},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert listing.returncode == 0, listing.stdout + listing.stderr
    ages = [AGE.match(line) for line in listing.stdout.splitlines()[1:]]
    assert ages and all(ages), listing.stdout
    hours = {"s": 1 / 3600, "m": 1 / 60, "h": 1.0, "d": 24.0}
    in_hours = [int(m.group(1)) * hours[m.group(2)] for m in ages if m]
    # The first order (laundry, 06:31) is hours old when the household's day ends.
    assert max(in_hours) >= 5, listing.stdout


def test_ctrl_c_stops_every_component_and_exits_zero(tmp_path: Path) -> None:
    proc = start_demo(tmp_path)
    seen: list[str] = []
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 40
        with selectors.DefaultSelector() as selector:
            selector.register(proc.stdout, selectors.EVENT_READ)
            # Wait until the household is under way: the gateway made its first decision.
            while not any(DECISION.match(line) for line in seen):
                remaining = deadline - time.monotonic()
                assert remaining > 0 and proc.poll() is None, "".join(seen)
                if selector.select(remaining):
                    line = proc.stdout.readline()
                    seen.append(line)
        os.killpg(proc.pid, signal.SIGINT)
        output = "".join(seen) + finish(proc, timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0, output[-3000:]
    summary = summary_of(output)
    assert summary["ok"] is True, summary
    assert summary["events"] >= 1, summary
    assert "Summary" in output
    assert_no_survivors(summary)


VENDURE_CODE = re.compile(r"gateway   order ([A-Z0-9]{16}) \((\w+), from ([\w-]+)\) accepted")


def test_demo_with_vendure_orders_at_vendure_and_counts_its_paid_orders(tmp_path: Path) -> None:
    proc, output = run_demo(
        tmp_path, "--vendure", "--seconds", "20", "--time-scale", "1200", timeout=90
    )
    assert proc.returncode == 0, output[-3000:]
    summary = summary_of(output)
    assert summary["ok"] is True, summary
    assert summary["shop"] == "vendure", summary
    assert "shop        Vendure 3.7.3 at http://127.0.0.1:" in output

    # The morning's laundry press and the coffee scale's dip, paid in Vendure; no
    # deliveries there, so the later presses find their orders still open.
    assert summary["orders_by_source"]["gpio"] >= 1, summary
    assert summary["orders_by_source"]["sensor"] >= 1, summary
    assert set(summary["orders_by_status"]) == {"PaymentSettled"}, summary
    assert summary["repeated_event_ids"] == 0, summary
    assert summary["duplicates_prevented"] >= 1, summary
    assert summary["absorbed"].get("one_open_order", 0) >= 1, summary
    # The story names each accepted order by Vendure's own order code.
    accepted = VENDURE_CODE.findall(output)
    assert len(accepted) == summary["orders"], (accepted, summary)
    assert {device for _code, _product, device in accepted} == set(summary["orders_by_device"]), (
        accepted,
        summary,
    )
    assert "Traceback" not in output

    # The gateway ran on a private copy of the config with a shops: section, its
    # password in a private file, never shown.
    run_dir = Path(summary["state_dir"])
    config = run_dir / "gateway-vendure.yaml"
    password = run_dir / "credentials" / "vendure-password"
    assert "adapter: vendure" in config.read_text()
    assert (config.stat().st_mode & 0o077) == 0
    assert (password.stat().st_mode & 0o077) == 0
    secret = password.read_text().strip()
    assert secret not in output
    assert secret not in (run_dir / "gateway.log").read_text()
    assert_no_survivors(summary, shop="vendure")
