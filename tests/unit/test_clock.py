import threading

from gateway.clock import RealClock, ScaledClock, make_clock


def test_scaled_clock_runs_faster_than_real_time() -> None:
    clock = ScaledClock(scale=1000.0, start=0.0)
    before = clock.now()
    clock.sleep(100.0)  # 0.1 real seconds
    assert clock.now() - before >= 100.0


def test_scaled_wait_returns_false_on_timeout_and_true_when_set() -> None:
    clock = ScaledClock(scale=1000.0)
    ev = threading.Event()
    assert clock.wait(ev, 10.0) is False
    ev.set()
    assert clock.wait(ev, 10.0) is True


def test_make_clock_picks_real_clock_for_scale_one() -> None:
    assert isinstance(make_clock(None), RealClock)
    assert isinstance(make_clock(1.0), RealClock)
    assert isinstance(make_clock(60.0), ScaledClock)


def test_clocks_with_one_origin_share_a_timeline(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import time

    origin = time.time() - 10.0
    monkeypatch.setenv("RG_TIME_ORIGIN", str(origin))
    first = make_clock(600.0)
    time.sleep(0.05)
    second = make_clock(600.0)
    # Both are about 10 real seconds * 600 past the origin, whenever they were made.
    assert abs(first.now() - second.now()) < 0.05 * 600 * 4
    assert first.now() - origin > 5_000


def test_nothing_in_the_gateway_reads_time_but_the_clock() -> None:
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "gateway"
    modules = [p for p in sorted(root.rglob("*.py")) if p != root / "clock.py"]
    readers = {"time", "monotonic", "perf_counter", "time_ns", "monotonic_ns"}
    offenders = []
    for path in modules:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module == "time":
                offenders += [f"{path.name}: from time import {a.name}" for a in node.names]
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "time"
                and node.attr in readers
            ):
                offenders.append(f"{path.relative_to(root)}:{node.lineno}: time.{node.attr}")
    assert len(modules) > 50
    assert offenders == []
