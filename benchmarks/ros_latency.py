"""ROS controller node timing: 400 Hz tracking jitter with the MPC running, state-in to
command-out latency over DDS, MPC rate inside the node vs the bare core.

    python benchmarks/ros_latency.py [--quick]
    python benchmarks/ros_latency.py --graph [--duration 60]    (simulator + controller + learner)
    python benchmarks/ros_latency.py --graph --trigger timer --mpc-process both   (worker vs thread)

Starts controller_node alone (separate process, random ROS_DOMAIN_ID, loopback discovery) with
the MPC unthrottled (mpc_rate 1000 Hz, so its rate measures throughput), once per
``tracking_trigger`` (timer: own 400 Hz schedule; state: a tick per arriving state), feeds it JointStates at
400 Hz from a separate feed process (benchmarks/_state_feed.py, SCHED_FIFO when allowed: a
stand-in for a robot driver; the Ballbot at rest at the goal), and reads ``~/command_info``
(seq, tick wall time, stamp of the state used, ...). Anchors: for the MPC rate, the same
MpcController.update in this process without ROS (timed before and after each node run); for the
jitter, the feed process's own SCHED_FIFO sleep-and-publish loop in the same time window (what a
bare Python real-time loop gets from this machine at that moment: on the shared VM it is itself
~1-5 ms at p99). Prints a markdown table; the last line is ``ros_tracking_p99_jitter_ms=``.

``--graph``: the whole shipped graph instead, in its ``tracking`` variant (simulator, controller
with the goal-tracking MPC unthrottled,
learner training and pushing signed critics that the controller swaps in), 60 s by default; the
states come from the simulator, and the anchor is the same SCHED_FIFO feed loop publishing to a
topic nobody reads, in the same window. Also reports the watchdog under that load: safe ticks,
and ticks that used a state beyond the 2-tick rule (must be 0). The load average is printed
(before, after, and at the start and end of every measured window).

``--mpc-process``: the controller's ``mpc_process`` setting(s) to measure: ``true`` (the MPC
solver in a worker process, the default of the shipped graph), ``false`` (an MPC thread in the
node's process) or ``both`` (one after the other, same run, same anchors). With the worker the
window starts once its spare worker is built (``mpc_worker_spare: ready``, up to 240 s), so
that the spare's one-off imports are not measured.
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine_line, reach_mpc_rate, table  # noqa: E402


def bare_core_rate(repeats: int) -> tuple:
    """(updates per second, median SLQ solve_time [ms]) of MpcController.update back to back."""
    return reach_mpc_rate(repeats=repeats)


def start_feed(probe, duration: float, stamps_out: str, topic: str = "") -> subprocess.Popen:
    """The state feed (benchmarks/_state_feed.py) as a process of its own on the probe's state
    topic (or ``topic``) and ROS domain (running_graph has set the environment when on_start runs)."""
    return subprocess.Popen([sys.executable, str(Path(__file__).resolve().parent / "_state_feed.py"),
                             "--topic", topic or probe.topics["joint_states"], "--rate", "400", "--duration", str(duration),
                             "--stamps-out", stamps_out],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=dict(os.environ))


def run_controller(trigger: str, duration: float, extra: dict | None = None, graph: bool = False,
                   mpc_process: bool = True):
    """One controller_node process with ``tracking_trigger`` = trigger; returns (info rows, MPC rates).
    ``graph``: the whole graph with the learner; the feed then publishes to an unread anchor topic."""
    from dmpc_ros.probe import running_graph

    config = ROOT / "config" / "ballbot_sim.yaml"
    overrides = {"learner": graph, "nodes.controller.parameters.reach.mpc.mpc_rate": 1000.0,
                 "nodes.controller.parameters.tracking_trigger": trigger,
                 "nodes.controller.parameters.mpc_process": mpc_process, **(extra or {})}
    if graph:  # the learner pushes from 64 transitions on, after every update
        # the tracking variant: its robot reaches the goal with or without critics, so the window
        # measures control, not a fallen robot's safe commands (the Deep Value MPC graph's critics
        # need the main job's episodes: pushed after a few updates on one goal they drove the
        # robot off the arena)
        overrides.update({"variant": "tracking", "nodes.learner.parameters.learner.min_transitions": 64,
                          "nodes.learner.parameters.learner.fit_normalization_at": 64,
                          "nodes.learner.parameters.update_period": 0.2, "nodes.learner.parameters.push_every": 1,
                          "nodes.learner.parameters.checkpoint_dir": f"/tmp/dmpc_bench_learner_{os.getpid()}"})
    feeds = []
    stamps = f"/tmp/dmpc_bench_feed_{os.getpid()}.npy"
    # the controller waits for a state before it reports OK: feed from the start (for at most the
    # 300 s start-up wait, up to 240 s for the spare worker, 1 s of settling and the measurement;
    # stopped right after it)
    try:
        with running_graph(config, overrides, log_dir="/tmp/dmpc_bench_logs",
                           executables=None if graph else ["controller_node"], ready_timeout=300, record_states=False,
                           on_start=lambda probe: feeds.append(start_feed(probe, 300 + 240 + duration + 5, stamps,
                                                                          "/dmpc_bench/anchor" if graph else ""))) as (_, probe, _cfg):
            spare = "not used"
            if mpc_process:  # measure in steady state: the spare worker's start-up (imports) is over
                probe.wait_for(lambda: probe.diag_value("ballbot_controller", "mpc_worker_spare") == "ready", 240)
                spare = probe.diag_value("ballbot_controller", "mpc_worker_spare")
            if graph:
                probe.send_goal((0.5, 0.3))
                time.sleep(3.0)
            time.sleep(1.0)
            t0 = time.monotonic()
            load_start = os.getloadavg()[0]
            time.sleep(duration)
            load_end = os.getloadavg()[0]
            rows = probe.info_rows(t0)
            mpc_rates = [float(d[4]["mpc_rate_hz"]) for d in list(probe.diags)
                         if d[0] >= t0 and d[1] == "dmpc/ballbot_controller"]
            solve_ms = [float(d[4]["solve_time_ms"]) for d in list(probe.diags)
                        if d[0] >= t0 and d[1] == "dmpc/ballbot_controller" and d[4].get("solve_time_ms", "nan") != "nan"]
            scheduler = probe.diag_value("ballbot_controller", "tracking_scheduler")
            scheduler += (f"; mpc_process {probe.diag_value('ballbot_controller', 'mpc_process')} (spare worker {spare}), worker restarts "
                          f"{probe.diag_value('ballbot_controller', 'mpc_worker_restarts')}, overruns "
                          f"{probe.diag_value('ballbot_controller', 'mpc_overruns')}; load average (1 min) "
                          f"{load_start:.2f} at the start of the window, {load_end:.2f} at its end")
            if graph:
                scheduler += (f"; critic swaps {probe.diag_value('ballbot_controller', 'critic_swaps')}, "
                              f"learner updates {probe.diag_value('dmpc_learner', 'updates')}")
            feeds[0].send_signal(signal.SIGINT)
    finally:  # the graph failed to start or the run ended: never leave the feed running
        for f in feeds:
            if f.poll() is None:
                f.send_signal(signal.SIGINT)
    feed_line = feeds[0].communicate(timeout=30)[0].strip().splitlines()
    feed_stamps = np.load(stamps) if os.path.exists(stamps) else np.zeros(0)
    if os.path.exists(stamps):
        os.remove(stamps)
    return (rows, mpc_rates, scheduler, feed_line[-1] if feed_line else "feed: no output", feed_stamps,
            float(np.median(solve_ms)) if solve_ms else float("nan"))


def summarize(rows: np.ndarray, duration: float) -> dict:
    period = np.diff(rows[:, 2]) * 1e3
    jitter = np.abs(period - 2.5)
    _, first = np.unique(rows[:, 3], return_index=True)  # first tick that used each state
    lat = (rows[first, 2] - rows[first, 3]) * 1e3
    lat = lat[rows[first, 3] > 0]
    return {"rate": len(rows) / duration, "period": period, "jitter": jitter, "latency": lat,
            "seq_gaps": int(np.sum(np.diff(rows[:, 0]) != 1)),
            "late": int(np.sum(np.diff(rows[:, 1]) - 1 > 0)), "safe": int(np.sum(rows[:, 4] == 1)),
            # the 2-tick rule: a command from a state more than 2 ticks AND 2 periods old
            "rule_violations": int(np.sum((rows[:, 4] == 0) & (rows[:, 6] > 2) & (rows[:, 7] > 2 * 2.5e-3)))}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--graph", action="store_true", help="whole graph with the learner (see above)")
    ap.add_argument("--duration", type=float, default=None, help="[s] per run (default 30, --graph 60, --quick 6)")
    ap.add_argument("--trigger", choices=["timer", "state", "both"], default="both",
                    help="controller tracking_trigger(s) to measure (default: both, one after the other)")
    ap.add_argument("--mpc-process", choices=["true", "false", "both"], default="true",
                    help="controller mpc_process setting(s) to measure (default: true, the worker process)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="graph override (YAML value), e.g. nodes.controller.parameters.mpc_cpu=1")
    args = ap.parse_args(argv)
    import yaml

    extra = {k: yaml.safe_load(v) for k, v in (item.split("=", 1) for item in args.set)}
    duration = args.duration or (6.0 if args.quick else 60.0 if args.graph else 30.0)
    triggers = ["timer", "state"] if args.trigger == "both" else [args.trigger]
    modes = [True, False] if args.mpc_process == "both" else [args.mpc_process == "true"]
    runs = [(trig, mode) for mode in modes for trig in triggers]
    load_before = os.getloadavg()
    results = {}
    # the bare-core anchor is timed before and after each node run (same load drift for both)
    reps = 20 if args.quick else 100
    bare_runs = [bare_core_rate(reps)]
    for trig, mode in runs:
        rows, rates, scheduler, feed_line, feed_stamps, solve_ms = run_controller(trig, duration, extra, args.graph, mode)
        window = feed_stamps[(feed_stamps >= rows[0, 2]) & (feed_stamps <= rows[-1, 2])]
        feed_jitter = np.abs(np.diff(window) * 1e3 - 2.5) if len(window) > 2 else np.full(1, np.nan)
        name = f"{trig}, {'worker process' if mode else 'MPC thread'}"
        results[name] = (summarize(rows, duration), float(np.median(rates)) if rates else float("nan"),
                         scheduler, feed_line, feed_jitter, solve_ms)
        bare_runs.append(bare_core_rate(reps))
    bare_rates = [b[0] for b in bare_runs]
    bare = float(np.mean(bare_rates))
    bare_solve = float(np.mean([b[1] for b in bare_runs]))

    print(machine_line() + (f"; overrides {extra}" if extra else ""))
    print(f"load average (1 min) before {load_before[0]:.2f}, after {os.getloadavg()[0]:.2f}; "
          f"{'whole graph: simulator + controller + learner' if args.graph else 'lone controller + 400 Hz state feed'}")
    lines, mpc_lines = [], [[f"bare core (this process, no ROS; mean of {len(bare_rates)}: "
                             f"{', '.join(f'{b:.0f}' for b in bare_rates)})", bare, 1.0, bare_solve]]
    for trig, (r, node_rate, scheduler, feed_line, feed_jitter, solve_ms) in results.items():
        print(f"tracking_trigger={trig}: tracking thread {scheduler}; {feed_line} (whole run incl. start-up)")
        print(f"tracking_trigger={trig}: {r['rate']:.1f} commands/s over {duration:.0f} s (state stream 400 Hz); "
              f"sequence gaps {r['seq_gaps']}; late ticks (schedule slot skipped) {r['late']}; "
              f"safe-command ticks (watchdog) {r['safe']}; commands from a state beyond the 2-tick rule {r['rule_violations']}")
        for name, key in (("command period [ms] (target 2.5)", "period"), ("jitter abs(period - 2.5) [ms]", "jitter"),
                          ("state-in -> command-out latency [ms]", "latency")):
            v = r[key]
            lines.append([f"{trig}: {name}", float(np.percentile(v, 50)), float(np.percentile(v, 99)), float(v.max())])
        lines.append([f"{trig}: anchor: feed process's own loop jitter, same window [ms]",
                      float(np.percentile(feed_jitter, 50)), float(np.percentile(feed_jitter, 99)),
                      float(np.max(feed_jitter))])
        mpc_lines.append([f"controller_node, {trig} (unthrottled)", node_rate, node_rate / bare, solve_ms])
    print(table(["quantity", "p50", "p99", "max"], lines))
    print()
    print(table(["MPC (SLQ N=100, 1 RTI iteration)", "rate [Hz]", "ratio to bare core",
                 "SLQ solve_time [ms] (median)"], mpc_lines))
    main_run = next(iter(results))
    print(f"ros_tracking_p99_jitter_ms={np.percentile(results[main_run][0]['jitter'], 99):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
