"""The main job: the ROS node graph learns while reaching goals, headless, with a summary.

    python -m dmpc_ros.main_job --config config/ballbot_sim.yaml --episodes 8 --eval-episodes 4 --out runs/main

Starts sim, controller and learner as separate processes (dmpc_ros.launcher) and drives episodes
from an observer node: reset the simulator to a random start, publish a goal on ``goal_pose``,
watch the JointStates until the robot is at the goal (dmpc_core.control.reach_mpc.reach_status: 10 cm,
upright within 5 deg, slower than 0.2 m/s, held 0.5 s), falls (tilt > 30 deg) or the episode
times out. Three phases:

1. ``before``: ``--eval-episodes`` goals with critic pushing paused (controller without critic;
   the learner already collects transitions);
2. ``learn``: ``--episodes`` goals with the learner pushing critics (hot-swapped in the controller);
3. ``after``: the same goals as ``before`` with pushing paused again (the last critic stays).

Writes ``summary.json``, ``episodes.csv`` and PNGs to ``--out``; prints progress and a summary.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import random
import shutil
import time
from pathlib import Path

import numpy as np

from dmpc_core.control.reach_mpc import reach_status
from dmpc_core.tasks import ballbot


def run_episode(probe, goal, timeout: float, hold: float = 0.5) -> dict:
    # the controller first: a fall latches its ERROR state until ~/reset (then the simulator
    # puts the robot back upright at a new start)
    resp = probe.call_trigger(f"/{probe.controller}/reset", 10.0)
    if resp is None or not resp.success:
        raise RuntimeError("controller reset failed")
    resp = probe.call_trigger(f"/{probe.sim}/reset", 10.0)
    if resp is None or not resp.success:
        raise RuntimeError("simulator reset failed")
    time.sleep(0.05)
    t0 = time.monotonic()
    probe.send_goal(goal)
    reached_at, since, fallen = None, None, False
    while time.monotonic() - t0 < timeout:
        time.sleep(0.02)
        x = probe.latest_state()
        if x is None:
            continue
        at, fallen = reach_status(x, goal)
        if fallen:
            break
        if at:
            since = since or time.monotonic()
            if time.monotonic() - since >= hold:
                reached_at = since - t0
                break
        else:
            since = None
    traj = np.array([x for t, x in list(probe.states) if t >= t0])
    return {"goal": list(goal), "success": reached_at is not None, "time_to_goal": reached_at, "fallen": fallen,
            "traj": traj, "duration": time.monotonic() - t0}


def diag_series(probe, node, key):
    out = []
    for t, name, _, _, vals in list(probe.diags):
        if name == f"dmpc/{node}" and key in vals:
            try:
                out.append((t, float(vals[key])))
            except ValueError:
                pass
    return np.array(out).reshape(-1, 2)


def plot(out: Path, phases: dict, probe, t_start: float) -> list:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    fig, axes = plt.subplots(1, len(phases), figsize=(5 * len(phases), 4.5), squeeze=False)
    for ax, (name, eps) in zip(axes[0], phases.items()):
        for e in eps:
            if len(e["traj"]):
                ax.plot(e["traj"][:, 0], e["traj"][:, 1], lw=1.2, color="tab:green" if e["success"] else "tab:red")
            ax.plot(*e["goal"], "kx")
        ok = sum(e["success"] for e in eps)
        ax.set(title=f"{name}: {ok}/{len(eps)} reached", xlabel="x [m]", ylabel="y [m]", aspect="equal")
    fig.tight_layout()
    fig.savefig(out / "trajectories.png", dpi=100)
    plt.close(fig)
    files.append("trajectories.png")

    fig, ax = plt.subplots(1, 3, figsize=(15, 4))
    for key, a in (("tracking_rate_hz", ax[0]), ("mpc_rate_hz", ax[1]), ("critic_version", ax[2])):
        s = diag_series(probe, probe.controller, key)
        if len(s):
            a.plot(s[:, 0] - t_start, s[:, 1])
        a.set(xlabel="t [s]", title=key)
    fig.tight_layout()
    fig.savefig(out / "controller_rates.png", dpi=100)
    plt.close(fig)
    files.append("controller_rates.png")
    return files


def summarize(eps) -> dict:
    ttg = [e["time_to_goal"] for e in eps if e["success"]]
    return {"episodes": len(eps), "success": sum(e["success"] for e in eps), "fallen": sum(e["fallen"] for e in eps),
            "success_rate": sum(e["success"] for e in eps) / max(1, len(eps)),
            "mean_time_to_goal_s": float(np.mean(ttg)) if ttg else None}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default=str(Path(__file__).resolve().parents[1] / "config" / "ballbot_sim.yaml"))
    ap.add_argument("--episodes", type=int, default=8, help="learning episodes")
    ap.add_argument("--eval-episodes", type=int, default=4, help="episodes before and after learning")
    ap.add_argument("--out", default="runs/main")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--radius", type=float, nargs=2, default=(0.8, 1.5), help="goal distance range [m]")
    ap.add_argument("--learner", choices=["on", "off"], default="on")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--keep-learner", action="store_true",
                    help="let the learner resume from OUT/learner (default: every run learns from scratch; an "
                         "earlier OUT/learner is moved to OUT/learner.previous)")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    learner_dir = out / "learner"
    if learner_dir.exists() and not args.keep_learner and not any(s.startswith("nodes.learner.parameters.checkpoint_dir=")
                                                                  for s in args.set):
        # "before" and "after" must bracket THIS run's learning: the learner node resumes from its
        # checkpoint folder, so an earlier run's critic and replay would carry over.
        previous = out / "learner.previous"
        if previous.exists():
            shutil.rmtree(previous)
        learner_dir.rename(previous)
        print(f"[main] moved the previous learner state to {previous} (this run learns from scratch; "
              f"--keep-learner resumes it)", flush=True)
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    os.environ.setdefault("ROS_DOMAIN_ID", str(random.Random(os.getpid()).randint(1, 100)))

    import rclpy

    from dmpc_core.settings import parse_overrides
    from dmpc_ros.graph import build_graph, load_config
    from dmpc_ros.launcher import Launcher
    from dmpc_ros.probe import GraphProbe

    overrides = parse_overrides(args.set)
    overrides["learner"] = args.learner == "on"
    overrides.setdefault("nodes.learner.parameters.checkpoint_dir", str(out / "learner"))
    overrides.setdefault("nodes.learner.parameters.push_critics", False)
    cfg = load_config(args.config, overrides)
    specs = build_graph(args.config, overrides)
    names = {s.key: s.name for s in specs}
    episode_length = float(cfg["nodes"]["controller"]["parameters"].get("reach", {}).get("episode_length", 8.0))
    rng = np.random.default_rng(args.seed)

    def goals(n):
        r = rng.uniform(*args.radius, n)
        a = rng.uniform(-np.pi, np.pi, n)
        return [(float(ri * np.cos(ai)), float(ri * np.sin(ai))) for ri, ai in zip(r, a)]

    eval_goals = goals(args.eval_episodes)
    learn_goals = goals(args.episodes)
    rclpy.init()
    t_start = time.monotonic()
    phases = {}
    print(f"[main] ROS_DOMAIN_ID={os.environ['ROS_DOMAIN_ID']} starting {', '.join(s.name for s in specs)}", flush=True)
    with Launcher(specs, str(out / "logs")) as launcher:
        launcher.start(supervise=True)  # respawn rules of the YAML (the learner)
        probe = GraphProbe(cfg["topics"], controller=names.get("controller", "ballbot_controller"),
                           sim=names.get("sim", "ballbot_sim"), learner=names.get("learner", "dmpc_learner"))
        try:
            ok = probe.wait_for(lambda: (d := probe.last_diag(probe.controller)) and d[3] == "OK", 120)
            if not ok:
                print(f"[main] controller did not come up; see {out / 'logs'}", flush=True)
                return 1
            print(f"[main] graph up after {time.monotonic() - t_start:.1f} s", flush=True)
            plan = [("before", eval_goals, False), ("learn", learn_goals, True), ("after", eval_goals, False)]
            for phase, gl, push in plan:
                if args.learner == "on":
                    probe.set_parameter(probe.learner, "push_critics", push)
                eps = []
                for i, g in enumerate(gl):
                    e = run_episode(probe, g, episode_length)
                    d = probe.last_diag(probe.controller)
                    e["critic_version"] = int(d[4].get("critic_version", 0)) if d else 0
                    eps.append(e)
                    print(f"[main] {phase} {i + 1}/{len(gl)} goal ({g[0]:+.2f}, {g[1]:+.2f}): "
                          f"{'reached in %.2f s' % e['time_to_goal'] if e['success'] else ('FELL' if e['fallen'] else 'timeout')}"
                          f"  critic v{e['critic_version']}", flush=True)
                    if launcher.dead():
                        print(f"[main] node(s) died: {launcher.dead()}", flush=True)
                        return 1
                phases[phase] = eps
            rates = {k: diag_series(probe, probe.controller, k) for k in ("tracking_rate_hz", "mpc_rate_hz", "solve_time_ms")}
            d = probe.last_diag(probe.controller)
            dl = probe.last_diag(probe.learner)
            summary = {
                "before": summarize(phases["before"]), "learn": summarize(phases["learn"]),
                "after": summarize(phases["after"]),
                "critic_swaps": int(d[4]["critic_swaps"]), "critic_version_final": int(d[4]["critic_version"]),
                "critics_rejected": int(d[4]["critics_rejected"]),
                "solver": d[4].get("solver", "slq"),
                "learner": dl[4] if dl else None,
                "tracking_rate_hz_median": float(np.median(rates["tracking_rate_hz"][:, 1])) if len(rates["tracking_rate_hz"]) else None,
                "mpc_rate_hz_median": float(np.median(rates["mpc_rate_hz"][:, 1])) if len(rates["mpc_rate_hz"]) else None,
                "solve_time_ms_median": float(np.nanmedian(rates["solve_time_ms"][:, 1])) if len(rates["solve_time_ms"]) else None,
                "wall_time_s": time.monotonic() - t_start,
            }
            summary["figures"] = plot(out, phases, probe, t_start)
        finally:
            probe.close()
    rclpy.try_shutdown()
    with open(out / "episodes.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["phase", "goal_x", "goal_y", "success", "fallen", "time_to_goal_s", "critic_version"])
        for ph, eps in phases.items():
            for e in eps:
                w.writerow([ph, *e["goal"], e["success"], e["fallen"], e["time_to_goal"], e["critic_version"]])
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    print("\n== dmpc main job (ROS 2 graph: sim, controller, learner) ==")
    for ph in ("before", "learn", "after"):
        s = summary[ph]
        print(f"  {ph:>6}: {s['success']}/{s['episodes']} reached, {s['fallen']} fell, mean time to goal "
              f"{s['mean_time_to_goal_s'] if s['mean_time_to_goal_s'] is None else round(s['mean_time_to_goal_s'], 2)} s")
    print(f"  critic swaps {summary['critic_swaps']} (final v{summary['critic_version_final']}), rejected {summary['critics_rejected']}")
    def num(v, fmt):
        return "n/a" if v is None else format(v, fmt)

    print(f"  tracking rate {num(summary['tracking_rate_hz_median'], '.1f')} Hz (target 400), "
          f"MPC rate {num(summary['mpc_rate_hz_median'], '.1f')} Hz, "
          f"{summary['solver'].upper()} solve {num(summary['solve_time_ms_median'], '.2f')} ms (medians)")
    print(f"  wall time {summary['wall_time_s']:.0f} s; figures and summary.json in {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
