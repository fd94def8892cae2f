"""Run every benchmark, print the figures and write ``bench/results.md``.

    ./scripts/bench                       # the whole set, a few minutes
    .venv/bin/python -m bench.run --quick # smaller counts, 10 s idle (not for results)

Each figure stands next to its baseline from the same run and its goal; a missed
goal is reported, never hidden, and the script still exits 0 (benchmarks judge
nothing: tests do).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import bench_drain, bench_gateway, bench_pipeline
from bench.common import REPO, machine, pct

RESULTS = REPO / "bench" / "results.md"


@dataclass(frozen=True)
class Row:
    measure: str
    figure: str
    baseline: str
    goal: str
    met: bool | None  # None: no goal, for information


def _verdict(met: bool | None) -> str:
    return "—" if met is None else ("met" if met else "**missed**")


def pipeline_rows(
    workdir: Path, orders: int, outage_orders: int
) -> tuple[list[Row], dict[str, Any]]:
    workdir.mkdir(parents=True, exist_ok=True)
    raw = bench_pipeline.raw_sqlite(workdir)
    samples = bench_pipeline.latency(workdir, orders)
    queued_in, first, total = bench_pipeline.outage(workdir, outage_orders)
    figures = {"raw": raw, "p50": statistics.median(samples), "p99": pct(samples, 0.99)}
    rows = [
        Row(
            "raw SQLite commits/s (WAL, synchronous=FULL, 200-byte rows)",
            f"{raw:.0f}/s",
            "—",
            "—",
            None,
        ),
        Row(
            f"in-process: intent committed → accepted ({len(samples)} orders, one at a time)",
            f"p50 {figures['p50'] * 1000:.1f} ms, p99 {figures['p99'] * 1000:.1f} ms",
            f"1 fsync = {1000 / raw:.2f} ms",
            "—",
            None,
        ),
        Row(
            f"in-process: {outage_orders} orders queued in an outage, drained",
            f"first {first:.2f} s, all {total:.2f} s",
            f"queued in {queued_in:.2f} s",
            "< 10 s",
            total < 10,
        ),
    ]
    return rows, figures


def gateway_rows(g: dict[str, Any]) -> list[Row]:
    s, i, p, r, o = g["start"], g["idle"], g["press"], g["sensor"], g["outage"]
    peak = max(p["peak_rss_mb"], r["peak_rss_mb"])
    return [
        Row(
            f"start → ready (`online` heard), {s['runs']} starts",
            f"median {s['ready_median_s']:.2f} s, max {s['ready_max_s']:.2f} s",
            f"imports alone {s['imports_median_s']:.2f} s",
            "< 1.5 s",
            s["ready_max_s"] < 1.5,
        ),
        Row(
            f"CPU at idle over {i['seconds']:.0f} s",
            f"{i['cpu_pct']:.3f} %",
            f"sleeping interpreter {i['sleeper_cpu_pct']:.3f} %, "
            f"mosquitto {i['broker_cpu_pct']:.3f} %",
            "< 1 %",
            i["cpu_pct"] < 1,
        ),
        Row(
            "resident memory at idle",
            f"{i['rss_mb']:.1f} MB",
            f"interpreter + same imports {i['sleeper_rss_mb']:.1f} MB",
            "≤ 60 MB",
            i["rss_mb"] <= 60,
        ),
        Row(
            "resident memory, peak under load (presses, then the sensor flood)",
            f"{peak:.1f} MB",
            f"interpreter + same imports {i['sleeper_rss_mb']:.1f} MB",
            "≤ 60 MB",
            peak <= 60,
        ),
        Row(
            f"press → order request leaving the gateway ({p['presses']} presses, "
            f"{p['gap_s'] * 1000:.0f} ms apart)",
            f"p50 {p['request_p50_ms']:.1f} ms, p99 {p['request_p99_ms']:.1f} ms",
            f"one MQTT hop p50 {p['mqtt_hop_p50_ms']:.1f} ms, p99 {p['mqtt_hop_p99_ms']:.1f} ms",
            "p99 < 20 ms",
            p["request_p99_ms"] < 20,
        ),
        Row(
            "press → shop's answer (accepted)",
            f"p50 {p['accepted_p50_ms']:.1f} ms, p99 {p['accepted_p99_ms']:.1f} ms "
            f"(shop {p['shop_p50_ms']:.1f} / {p['shop_p99_ms']:.1f} ms)",
            f"bare keep-alive POST p50 {p['bare_post_p50_ms']:.1f} ms, "
            f"p99 {p['bare_post_p99_ms']:.1f} ms",
            "—",
            None,
        ),
        *(
            Row(
                f"press → POST at the shop, presses {f['gap_s'] * 1000:.0f} ms apart, "
                f"default mosquitto ({f['presses']} presses each)",
                f"p50 {f['gateway_p50_ms']:.1f} ms, p99 {f['gateway_p99_ms']:.1f} ms "
                f"({f['ratio_p99']:.2f}× the relay's p99)",
                f"bare paho → httpx relay p50 {f['relay_p50_ms']:.1f} ms, "
                f"p99 {f['relay_p99_ms']:.1f} ms",
                "p99 ≤ 1.5× relay",
                f["ratio_p99"] <= 1.5,
            )
            for f in g["relay"]
        ),
        Row(
            f"sensor readings/s through the whole input path ({r['readings']} queued, "
            "each with a message id: dedupe + commit)",
            f"{r['gateway_per_s']:.0f}/s ({r['ratio_pct']:.0f} % of bare)",
            f"bare paho + json.loads {r['bare_per_s']:.0f}/s",
            "≥ 50 % of bare",
            r["ratio_pct"] >= 50,
        ),
        Row(
            f"{o['orders']} presses during a shop outage, then the shop returns",
            f"first order {o['first_s']:.2f} s, all {o['all_s']:.2f} s "
            f"({o['accepted']} at the shop)",
            f"{o['orders']} bare keep-alive POSTs {o['bare_s']:.2f} s; "
            f"committed in {o['queued_in_s']:.2f} s",
            "< 10 s",
            o["all_s"] < 10 and o["accepted"] == o["orders"],
        ),
        Row(
            "the same outage, from the first order out to the last (the wait for the next "
            "probe left out)",
            f"{o['all_s'] - o['first_s']:.2f} s "
            f"({(o['all_s'] - o['first_s']) / o['bare_s']:.1f}× the bare POSTs)",
            f"{o['orders']} bare keep-alive POSTs {o['bare_s']:.2f} s",
            "≤ 2× bare",
            o["all_s"] - o["first_s"] <= 2 * o["bare_s"],
        ),
    ]


def drain_rows(d: dict[str, Any]) -> list[Row]:
    injected = ", ".join(f"{n} {kind}" for kind, n in d["faults"].items() if n)
    return [
        Row(
            f"{d['presses']} presses into a flaky shop (15 % 503, 15 % dropped after commit, "
            "5 % slower than commerce.timeout, 10 % 429), until every one is exactly one order",
            f"settled in {d['settled_s']:.1f} s; {d['orders']} orders, "
            f"{d['duplicates']} duplicates; {d['post_attempts']} POSTs, {d['replays']} replays "
            f"({injected})",
            f"{d['presses']} bare keep-alive POSTs, no faults: {d['bare_s']:.2f} s",
            "≤ 60 s",
            0 <= d["settled_s"] <= 60 and d["duplicates"] == 0 and d["orders"] == d["presses"],
        )
    ]


def _kept_sections() -> str:
    """Sections other scripts own in results.md (bench/replenish.py --write), kept as
    they are: this script rewrites only its own table."""
    begin, end = "<!-- replenish: begin -->", "<!-- replenish: end -->"
    old = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else ""
    if begin not in old or end not in old:
        return ""
    return "\n" + old[old.index(begin) : old.index(end) + len(end)] + "\n"


def render(info: dict[str, str], rows: list[Row], notes: list[str]) -> str:
    lines = [
        "# Benchmark results",
        "",
        "Generated by `./scripts/bench` (bench/run.py); do not edit by hand. What each",
        "figure means and how it is taken: bench/README.md.",
        "",
        " · ".join(f"{k}: {v}" for k, v in info.items()),
        "",
        "| measure | figure | baseline (same run) | goal | |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row.measure} | {row.figure} | {row.baseline} | {row.goal} | {_verdict(row.met)} |"
        )
    if notes:
        lines += ["", *notes]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small counts; results not written")
    args = parser.parse_args(argv)
    presses, readings, idle = (50, 1800, 10.0) if args.quick else (300, 10_000, 60.0)
    info = machine()
    print(" · ".join(f"{k}: {v}" for k, v in info.items()), flush=True)
    with tempfile.TemporaryDirectory(prefix="rg-bench-") as tmp:
        workdir = Path(tmp)
        step: Callable[[str], None] = lambda what: print(f"==> {what}", flush=True)  # noqa: E731
        step("outbox -> sender -> shop, in process")
        rows, _ = pipeline_rows(workdir / "pipeline", 200, 1000)
        step("the gateway as a process (start, idle, presses, sensor flood, outage)")
        gateway = bench_gateway.run_all(
            workdir / "gateway", presses=presses, readings=readings, idle_seconds=idle
        )
        rows += gateway_rows(gateway)
        step("a flaky shop: presses under the fault mix, until settled")
        drain = bench_drain.settle(workdir / "drain", 40 if args.quick else 150, seed=7)
        rows += drain_rows(drain)
    print()
    for row in rows:
        print(
            f"{row.measure}: {row.figure}  [baseline: {row.baseline}; goal {row.goal}: "
            f"{_verdict(row.met)}]"
        )
    if not args.quick:
        RESULTS.write_text(render(info, rows, []) + _kept_sections())
        print(f"\nwritten to {RESULTS.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
