"""The main job: Deep Value MPC (Algorithm 1) learns through the ROS node graph, headless.

    python -m dmpc_ros.main_job --config config/ballbot_sim.yaml --out runs/main

Starts sim, controller and learner as separate processes (dmpc_ros.launcher) and drives episodes
from an observer node: reset the controller and the simulator (a random start near the origin),
publish a goal on ``goal_pose`` and let the episode run for its time T (the controller's
``reach.episode_length``, 3 s). The controller runs the Deep Value MPC actor
(``reach.critic_mode: dmpc``) with the critic the learner pushes; it streams one transition per
control step with the task cost dt ||p - g|| and, at T, the termination cost q_f; the learner
turns each finished episode into full-return targets (``n_step``) and pushes critics back. Three
phases:

1. ``before``: ``--eval-episodes`` goals, 1.5 m away in evenly spread directions, with the
   learner's first (untrained) critic and pushing paused: the actor only balances;
2. ``learn``: ``--episodes`` goals with pushing on; goal distances grow from 0.3 m to 2.0 m over
   the first ``--curriculum-episodes`` (the start curriculum of ``dmpc train ballbot-reach``);
3. ``after``: the ``before`` goals again with pushing paused (the last critic stays).

Success, as in ``dmpc train ballbot-reach``: no fall and within 0.25 m of the goal at T. Writes
``summary.json``, ``episodes.csv``, ``trajectories.png`` (before against after, same starts and
goals) and ``controller_rates.png`` to ``--out``; prints progress and a summary.
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


def run_episode(probe, goal, episode_time: float, success_tol: float = 0.25) -> dict:
    """One episode of time ``episode_time`` to ``goal`` (module doc); returns its record."""
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
    fallen, within_at, at_t = False, None, None
    # a little past T: the controller ends the episode (termination cost) at its first solve after T
    while time.monotonic() - t0 < episode_time + 0.15:
        time.sleep(0.01)
        x = probe.latest_state()
        if x is None:
            continue
        _, fallen = reach_status(x, goal)
        if fallen:
            break
        d = float(np.hypot(x[0] - goal[0], x[1] - goal[1]))
        if within_at is None and d < success_tol:
            within_at = time.monotonic() - t0
        if at_t is None and time.monotonic() - t0 >= episode_time:
            at_t = d
    traj = np.array([x for t, x in list(probe.states) if t >= t0 and t - t0 <= episode_time])
    final = at_t if at_t is not None else (float(np.hypot(*(traj[-1, :2] - goal))) if len(traj) else float("nan"))
    return {"goal": list(goal), "success": (not fallen) and final < success_tol, "fallen": fallen,
            "final_distance": final, "time_within": within_at, "traj": traj,
            "start": traj[0, :2].tolist() if len(traj) else [float("nan")] * 2}


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
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.5), gridspec_kw={"width_ratios": [1.1, 1]})
    ax = axes[0]
    for name, style in (("before", dict(ls="--", lw=1.2)), ("after", dict(ls="-", lw=1.6))):
        for i, e in enumerate(phases.get(name, [])):
            if len(e["traj"]):
                ax.plot(e["traj"][:, 0], e["traj"][:, 1], color="tab:green" if e["success"] else "tab:red",
                        **style, label=f"{name}: {'reached' if e['success'] else 'missed'}")
                ax.plot(*e["traj"][0, :2], "o", color="0.3", ms=4, label="start")
            ax.plot(*e["goal"], "kx", ms=8, mew=2, label="goal")
            ax.add_patch(plt.Circle(e["goal"], 0.25, fill=False, color="0.6", lw=0.8))
    handles, labels = ax.get_legend_handles_labels()
    uniq = dict(zip(labels, handles))
    ax.legend(uniq.values(), uniq.keys(), loc="upper right", fontsize=8)
    sb = summarize(phases.get("before", []))
    sa = summarize(phases.get("after", []))
    ax.set(title=f"same goals: before {sb['success']}/{sb['episodes']} (dashed), after {sa['success']}/{sa['episodes']} "
                 f"(solid)\ncircles: 0.25 m success radius at T", xlabel="x [m]", ylabel="y [m]", aspect="equal")
    ax = axes[1]
    learn = phases.get("learn", [])
    if learn:
        k = np.arange(1, len(learn) + 1)
        d = np.array([e["final_distance"] for e in learn])
        g = np.array([np.hypot(*e["goal"]) for e in learn])
        ax.plot(k, g, color="0.6", lw=1, label="goal distance from the origin [m]")
        ax.plot(k, d, ".", color="tab:blue", label="distance to the goal at T [m]")
        win = min(8, len(learn))
        ax.plot(k[win - 1:], np.convolve(d, np.ones(win) / win, "valid"), color="tab:blue", lw=2,
                label=f"mean of the last {win}")
        ax.axhline(0.25, color="tab:green", ls=":", label="success radius")
        ax.legend(fontsize=8)
    ax.set(title="learning episodes", xlabel="episode", ylabel="[m]")
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


def summarize(eps, before=None) -> dict:
    """Success, falls and distance at T of a phase's episodes; with ``before`` (the last episode
    of the previous phase) also the controller's safe-command ticks and clipped ticks in the phase
    (its diagnostics counters are cumulative; diagnostics arrive at 2 Hz, so the split between
    phases is approximate)."""
    d = [e["final_distance"] for e in eps]
    out = {"episodes": len(eps), "success": int(sum(e["success"] for e in eps)),
           "fallen": int(sum(e["fallen"] for e in eps)),
           "success_rate": sum(e["success"] for e in eps) / max(1, len(eps)),
           "mean_final_distance_m": float(np.nanmean(d)) if d else None}
    if eps and "safe_ticks" in eps[-1]:
        base = before or {"safe_ticks": 0, "saturations": 0}
        out["safe_ticks"] = eps[-1]["safe_ticks"] - base.get("safe_ticks", 0)
        out["saturations"] = eps[-1]["saturations"] - base.get("saturations", 0)
    return out


def eval_goals(n: int, distance: float) -> list:
    """``n`` goals ``distance`` from the origin in evenly spread directions (fixed: the same goals
    before and after learning)."""
    a = 2 * np.pi * (np.arange(n) + 0.25) / max(1, n)
    return [(float(distance * np.cos(ai)), float(distance * np.sin(ai))) for ai in a]


def learn_goals(n: int, rng, d0: float, d1: float, curriculum: int) -> list:
    """Learning goals: uniform in a disc round the origin whose radius grows from ``d0`` to
    ``d1`` over the first ``curriculum`` episodes (``dmpc train ballbot-reach``'s start
    curriculum: the critic first learns the bottom of the value)."""
    out = []
    for i in range(n):
        bound = d0 + (d1 - d0) * min(1.0, i / max(1, curriculum))
        r = bound * np.sqrt(rng.uniform(0.02, 1.0))
        a = rng.uniform(-np.pi, np.pi)
        out.append((float(r * np.cos(a)), float(r * np.sin(a))))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default=str(Path(__file__).resolve().parents[1] / "config" / "ballbot_sim.yaml"))
    ap.add_argument("--episodes", type=int, default=96, help="learning episodes")
    ap.add_argument("--eval-episodes", type=int, default=8, help="episodes before and after learning")
    ap.add_argument("--eval-distance", type=float, default=1.5, help="distance of the evaluation goals [m]")
    ap.add_argument("--curriculum", type=float, nargs=2, default=(0.3, 2.0), metavar=("D0", "D1"),
                    help="learning-goal distance bound at the first episode and after the curriculum [m]")
    ap.add_argument("--curriculum-episodes", type=int, default=64)
    ap.add_argument("--out", default="runs/main")
    ap.add_argument("--seed", type=int, default=0)
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
    reach = cfg["nodes"]["controller"]["parameters"].get("reach", {})
    if reach.get("critic_mode") != "dmpc":
        print("[main] the main job runs Algorithm 1: it needs nodes.controller.parameters.reach.critic_mode=dmpc "
              f"(the config has {reach.get('critic_mode')!r})", flush=True)
        return 2
    episode_time = float(reach.get("episode_length", 3.0))
    rng = np.random.default_rng(args.seed)
    goals_eval = eval_goals(args.eval_episodes, args.eval_distance)
    goals_learn = learn_goals(args.episodes, rng, *args.curriculum, args.curriculum_episodes)
    rclpy.init()
    t_start = time.monotonic()
    phases = {}
    print(f"[main] ROS_DOMAIN_ID={os.environ['ROS_DOMAIN_ID']} starting {', '.join(s.name for s in specs)}", flush=True)
    with Launcher(specs, str(out / "logs")) as launcher:
        launcher.start(supervise=True)  # respawn rules of the YAML (the learner)
        probe = GraphProbe(cfg["topics"], controller=names.get("controller", "ballbot_controller"),
                           sim=names.get("sim", "ballbot_sim"), learner=names.get("learner", "dmpc_learner"))
        try:
            ok = probe.wait_for(lambda: (d := probe.last_diag(probe.controller)) and d[3] in ("OK", "WARN"), 120)
            if not ok:
                print(f"[main] controller did not come up; see {out / 'logs'}", flush=True)
                return 1
            if args.learner == "on":
                # Algorithm 1 starts from the learner's untrained critic (push_initial)
                if not probe.wait_for(lambda: int(probe.diag_value(probe.controller, "critic_version") or 0) >= 1, 60):
                    print(f"[main] no initial critic from the learner; see {out / 'logs'}", flush=True)
                    return 1
            print(f"[main] graph up after {time.monotonic() - t_start:.1f} s; episodes of T = {episode_time:g} s",
                  flush=True)
            plan = [("before", goals_eval, False), ("learn", goals_learn, True), ("after", goals_eval, False)]
            for phase, gl, push in plan:
                if args.learner == "on":
                    probe.set_parameter(probe.learner, "push_critics", push)
                    if not push:  # a push under way lands before the phase starts
                        time.sleep(1.0)
                eps = []
                for i, g in enumerate(gl):
                    e = run_episode(probe, g, episode_time)
                    d = probe.last_diag(probe.controller)
                    e["critic_version"] = int(d[4].get("critic_version", 0)) if d else 0
                    e["safe_ticks"] = int(d[4].get("safe_ticks", 0)) if d else 0  # cumulative, for the phase totals
                    e["saturations"] = int(d[4].get("saturations", 0)) if d else 0
                    eps.append(e)
                    last = eps[-8:]
                    print(f"[main] {phase} {i + 1}/{len(gl)} goal ({g[0]:+.2f}, {g[1]:+.2f}): "
                          f"{'FELL' if e['fallen'] else ('reached' if e['success'] else 'missed')}, "
                          f"{e['final_distance']:.2f} m from the goal at T  critic v{e['critic_version']}"
                          f"  (last {len(last)}: {sum(x['success'] for x in last)} reached)", flush=True)
                    if launcher.dead():
                        print(f"[main] node(s) died: {launcher.dead()}", flush=True)
                        return 1
                phases[phase] = eps
            rates = {k: diag_series(probe, probe.controller, k) for k in ("tracking_rate_hz", "mpc_rate_hz", "solve_time_ms")}
            d = probe.last_diag(probe.controller)
            dl = probe.last_diag(probe.learner)
            summary = {
                "before": summarize(phases["before"]),
                "learn": summarize(phases["learn"], (phases["before"] or [None])[-1]),
                "after": summarize(phases["after"], (phases["learn"] or phases["before"] or [None])[-1]),
                "critic_swaps": int(d[4]["critic_swaps"]), "critic_version_final": int(d[4]["critic_version"]),
                "critics_rejected": int(d[4]["critics_rejected"]),
                "solver": d[4].get("solver", "slq"),
                "learner": dl[4] if dl else None,
                "tracking_rate_hz_median": float(np.median(rates["tracking_rate_hz"][:, 1])) if len(rates["tracking_rate_hz"]) else None,
                "mpc_rate_hz_median": float(np.median(rates["mpc_rate_hz"][:, 1])) if len(rates["mpc_rate_hz"]) else None,
                "solve_time_ms_median": float(np.nanmedian(rates["solve_time_ms"][:, 1])) if len(rates["solve_time_ms"]) else None,
                "wall_time_s": time.monotonic() - t_start,
                "seed": args.seed, "learn_episodes": args.episodes, "eval_distance_m": args.eval_distance,
            }
            summary["figures"] = plot(out, phases, probe, t_start)
        finally:
            probe.close()
    rclpy.try_shutdown()
    with open(out / "episodes.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["phase", "start_x", "start_y", "goal_x", "goal_y", "success", "fallen", "final_distance_m",
                    "first_within_0.25m_s", "critic_version"])
        for ph, eps in phases.items():
            for e in eps:
                w.writerow([ph, *e["start"], *e["goal"], e["success"], e["fallen"], e["final_distance"],
                            e["time_within"], e["critic_version"]])
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    print("\n== dmpc main job: Deep Value MPC learning through the ROS 2 graph (sim, controller, learner) ==")
    for ph in ("before", "learn", "after"):
        s = summary[ph]
        if not s["episodes"]:
            print(f"  {ph:>6}: no episodes")
            continue
        print(f"  {ph:>6}: {s['success']}/{s['episodes']} within 0.25 m of the goal at T = {episode_time:g} s, "
              f"{s['fallen']} fell, mean distance at T {s['mean_final_distance_m']:.2f} m")
    ticks = [f"{ph} {summary[ph]['safe_ticks']} / {summary[ph]['saturations']}" for ph in ("before", "learn", "after")
             if "safe_ticks" in summary[ph]]
    if ticks:
        print("  safe-command ticks (watchdog on late states, falls) / clipped ticks: " + ", ".join(ticks))
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
