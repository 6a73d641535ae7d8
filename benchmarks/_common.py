"""Shared helpers of the benchmark scripts: timing, tables, the final `name=value` line."""
from __future__ import annotations

import os
import platform
import statistics
import time
from typing import Callable


def median_time(fn: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    """Median wall time [s] of ``fn()`` over ``repeats`` calls after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def machine_line() -> str:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, load average {load:.2f}"


def table(headers: list[str], rows: list[list[object]]) -> str:
    """A markdown table."""
    def fmt(v: object) -> str:
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(fmt(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)


def reach_mpc_rate(settings=None, goal=(0.0, 0.0), repeats: int = 50) -> tuple:
    """(updates per second, median solve_time [ms]) of a Ballbot ``ReachMpc``'s controller
    updated back to back from the upright state at rest (the bare core, no ROS)."""
    import numpy as np

    from dmpc_core.control.reach_mpc import ReachMpc, ReachSettings

    r = ReachMpc(settings or ReachSettings(), goal)
    x = np.zeros(10)
    r.mpc.update(0.0, x)
    k = [0]
    solve = []

    def step():
        k[0] += 1
        solve.append(r.mpc.update(0.01 * k[0], x).solve_time)

    return 1.0 / median_time(step, repeats, warmup=3), 1e3 * float(statistics.median(solve))
