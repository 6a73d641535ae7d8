"""ROS controller node timing: 400 Hz tracking jitter with the MPC running, state-in to
command-out latency over DDS, MPC rate inside the node vs the bare core.

    python benchmarks/ros_latency.py [--quick]

Starts controller_node alone (separate process, random ROS_DOMAIN_ID, loopback discovery) with
the MPC unthrottled (mpc_rate 1000 Hz, so its rate measures throughput), feeds it JointStates at
400 Hz from this process (the Ballbot balancing at the goal), and reads ``~/command_info``
(seq, tick wall time, stamp of the state used, ...). Anchor: the same MpcController.update in
this process without ROS. Prints a markdown table; the last line is ``ros_tracking_p99_jitter_ms=``.
"""
from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine_line, median_time, table  # noqa: E402


def bare_core_rate(repeats: int) -> float:
    from dmpc_core.agents.reach_mpc import ReachMpc, ReachSettings

    r = ReachMpc(ReachSettings(), (0.0, 0.0))
    x = np.zeros(10)
    r.mpc.update(0.0, x)
    k = [0]

    def step():
        k[0] += 1
        r.mpc.update(0.01 * k[0], x)

    return 1.0 / median_time(step, repeats, warmup=3)


def feed(probe, stop: threading.Event) -> None:
    """JointStates at 400 Hz on an absolute schedule (the Ballbot at rest at the goal)."""
    period, nxt = 1.0 / 400.0, time.monotonic()
    while not stop.is_set():
        probe.publish_state(np.zeros(10))
        nxt += period
        time.sleep(max(0.0, nxt - time.monotonic()))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    duration = 6.0 if args.quick else 30.0
    from dmpc_ros.probe import running_graph

    config = ROOT / "config" / "ballbot_sim.yaml"
    overrides = {"learner": False, "nodes.controller.parameters.reach.mpc.mpc_rate": 1000.0}
    stop = threading.Event()
    # the controller waits for a state before it reports OK: feed from the start
    with running_graph(config, overrides, log_dir="/tmp/dmpc_bench_logs", executables=["controller_node"],
                       ready_timeout=90, on_start=lambda probe: threading.Thread(
                           target=feed, args=(probe, stop), daemon=True).start()) as (_, probe, _cfg):
        time.sleep(1.0)
        t0 = time.monotonic()
        time.sleep(duration)
        rows = np.array([a for t, a in list(probe.infos) if t >= t0])
        mpc_rates = [float(d[4]["mpc_rate_hz"]) for d in list(probe.diags)
                     if d[0] >= t0 and d[1] == "dmpc/ballbot_controller"]
        stop.set()
    bare = bare_core_rate(20 if args.quick else 100)

    tick_wall = rows[:, 2]
    period = np.diff(tick_wall) * 1e3
    jitter = np.abs(period - 2.5)
    _, first = np.unique(rows[:, 3], return_index=True)  # first tick that used each state
    lat = (rows[first, 2] - rows[first, 3]) * 1e3
    lat = lat[rows[first, 3] > 0]
    seq_gaps = int(np.sum(np.diff(rows[:, 0]) != 1))
    slots = rows[:, 1]
    missed = int(np.sum(np.diff(slots) - 1 > 0))
    node_rate = float(np.median(mpc_rates)) if mpc_rates else float("nan")
    print(machine_line())
    print(f"{len(rows)} ticks over {duration:.0f} s ({len(rows) / duration:.1f} Hz achieved, target 400 Hz); "
          f"sequence gaps {seq_gaps}; late ticks (schedule slot skipped) {missed}; "
          f"safe-command ticks (watchdog) {int(np.sum(rows[:, 4] == 1))}")
    print(table(["quantity", "p50", "p99", "max"], [
        ["tracking period [ms] (target 2.5)", float(np.percentile(period, 50)), float(np.percentile(period, 99)), float(period.max())],
        ["tracking jitter abs(period - 2.5) [ms]", float(np.percentile(jitter, 50)), float(np.percentile(jitter, 99)), float(jitter.max())],
        ["state-in -> command-out latency [ms]", float(np.percentile(lat, 50)), float(np.percentile(lat, 99)), float(lat.max())],
    ]))
    print()
    print(table(["MPC (SLQ N=100, 1 RTI iteration)", "rate [Hz]", "ratio to bare core"], [
        ["bare core (this process, no ROS)", bare, 1.0],
        ["inside controller_node (unthrottled, tracking at 400 Hz)", node_rate, node_rate / bare],
    ]))
    print(f"ros_tracking_p99_jitter_ms={np.percentile(jitter, 99):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
