"""Reproduce deep-value-mpc Fig. 2a, Fig. 2b and Fig. 3 on the Ballbot walls task.

    python tools/reproduce_ballbot.py --out docs/results --runs runs/repro \
        --iterations 30 --seeds 0 1 2 --horizons 0.5 1.0 --modes terminal running+terminal --jobs 2

trains every (mode, horizon, seed) with ``dmpc_core.experiments.ballbot_walls.train``
(``--jobs N`` runs N of them in parallel processes; each run resumes from its checkpoint if the
script is restarted), then:

* ``ballbot_layout.png``: arena, walls, target and the 8 evaluation starts;
* ``ballbot_fig2b[_reduced].png``: evaluation cost and success rate on the 8 fixed starts vs
  learning iteration, mean and min/max over seeds, for each (mode, horizon);
* ``ballbot_fig2a[_reduced].png``: top-down trajectories from the 8 starts with the final critic
  of the first seed of the DMPC long-horizon run;
* ``ballbot_fig3[_reduced].png``: the Eq. (14) running cost over x-y at three times along two
  of those trajectories (state other than px, py taken from the trajectory);
* ``ballbot_summary[_reduced].json``: final numbers and wall time per iteration.
``--reduced`` only changes the file suffix and the figure titles (it marks a reduced budget).
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dmpc_core import _core  # noqa: E402
from dmpc_core.agents.deep_value_mpc import Actor, evaluate  # noqa: E402
from dmpc_core.experiments._common import read_scalars  # noqa: E402
from dmpc_core.experiments.ballbot_walls import load_config, train  # noqa: E402
from dmpc_core.tasks.ballbot_walls import WallsTask  # noqa: E402


def draw_arena(ax, task: WallsTask) -> None:
    s = task.settings
    for w in task.segments:
        ax.plot([w[0], w[2]], [w[1], w[3]], color="k", lw=4 * s.wall_half_thickness / 0.05, solid_capstyle="round")
    ax.plot(*s.target, "x", color="red", ms=12, mew=3)
    st = np.asarray(s.eval_starts)
    ax.plot(st[:, 0], st[:, 1], "o", color="tab:blue", ms=6)
    a = s.arena_half_size
    ax.set_xlim(-a - 0.1, a + 0.1)
    ax.set_ylim(-a - 0.1, a + 0.1)
    ax.set_aspect("equal")
    ax.set_xlabel("x [m]")
    ax.set_ylabel("y [m]")


def read_metrics(run: Path):
    """(iteration, eval mean cost, eval success) rows and the iteration times of a run directory:
    ``scalars.csv`` (the experiments' logger) or, for runs written before it, ``metrics.csv``."""
    if (run / "scalars.csv").is_file():
        sc = read_scalars(run / "scalars.csv")
        cost, succ = dict(sc["eval/mean_cost"].tolist()), dict(sc["eval/success_rate"].tolist())
        ev = [(int(k), cost[k], succ[k]) for k in sorted(cost) if k in succ]
        times = sc["time/iteration_s"][:, 1].tolist() if "time/iteration_s" in sc else []
        return np.asarray(ev), times
    with open(run / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    ev = [(int(float(r["iteration"])), float(r["eval/mean_cost"]), float(r["eval/success_rate"]))
          for r in rows if r.get("eval/mean_cost") not in (None, "")]
    times = [float(r["time/iteration_s"]) for r in rows if r.get("time/iteration_s") not in (None, "")]
    return np.asarray(ev), times


def running_cost_map(actor: Actor, goal, t: float, x: np.ndarray, task: WallsTask, n: int = 60):
    """Eq. (14) cost over a grid of (px, py), other state entries from ``x``."""
    critic = actor.critic
    critic.set_goal(np.asarray(goal, float))
    cost = _core.ValueRunningCost(critic, actor.model, np.asfortranarray(actor.R), task.settings.episode_time,
                                  True, "drop")
    a = task.settings.arena_half_size
    g = np.linspace(-a, a, n)
    Z = np.zeros((n, n))
    u = np.zeros(3)
    for i, py in enumerate(g):
        for j, px in enumerate(g):
            xx = x.copy()
            xx[0], xx[1] = px, py
            Z[i, j] = cost.value(t, xx, u)
    return g, Z


def _train_one(config, runs, iterations, eval_every, mode, h, seed):
    """One training run (resumed if its checkpoint exists); returns (name, result)."""
    name = f"{mode.replace('+', '_')}_H{h:g}_s{seed}"
    cfg = load_config(config, {"training.seed": seed, "training.iterations": iterations,
                               "training.eval_every": eval_every, "actor.mode": mode, "actor.horizon_time": h})
    run = Path(runs) / name
    t0 = time.time()
    train(cfg, run, resume=(run / "checkpoint.pt").exists(), progress=False, tensorboard=True)
    ev, times = read_metrics(run)
    res = {"mode": mode, "horizon": h, "seed": seed, "eval": ev.tolist(),
           "s_per_iteration": float(np.mean(times)) if times else None, "wall_s_this_call": time.time() - t0}
    print(f"{name}: final eval cost {ev[-1, 1]:.2f} success {ev[-1, 2]:.2f} "
          f"({res['s_per_iteration']:.1f} s/iteration)", flush=True)
    return name, res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default=None)
    ap.add_argument("--out", default="docs/results")
    ap.add_argument("--runs", default="runs/repro")
    ap.add_argument("--iterations", type=int, default=40)
    ap.add_argument("--eval-every", type=int, default=5)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--horizons", type=float, nargs="+", default=[0.5, 1.0])
    ap.add_argument("--modes", nargs="+", default=["terminal", "running+terminal"])
    ap.add_argument("--reduced", action="store_true", help="label outputs as a REDUCED budget")
    ap.add_argument("--jobs", type=int, default=1, help="training runs in parallel processes")
    args = ap.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out, runs = Path(args.out), Path(args.runs)
    out.mkdir(parents=True, exist_ok=True)
    sfx = "_reduced" if args.reduced else ""
    label = " (REDUCED budget)" if args.reduced else ""
    t_start = time.time()
    jobs = [(mode, h, seed) for mode in args.modes for h in args.horizons for seed in args.seeds]
    results = {}
    if args.jobs > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            futures = [pool.submit(_train_one, args.config, str(runs), args.iterations, args.eval_every, *j)
                       for j in jobs]
            for f in futures:
                name, res = f.result()
                results[name] = res
    else:
        for j in jobs:
            name, res = _train_one(args.config, str(runs), args.iterations, args.eval_every, *j)
            results[name] = res

    cfg0 = load_config(args.config)
    task = WallsTask(cfg0.task)
    # layout
    fig, ax = plt.subplots(figsize=(5, 5))
    draw_arena(ax, task)
    for st in cfg0.task.eval_starts:
        ax.plot([st[0], cfg0.task.target[0]], [st[1], cfg0.task.target[1]], ":", color="gray", lw=0.8)
    ax.set_title("Walls task: arena, walls, target (x), 8 eval starts")
    fig.tight_layout()
    fig.savefig(out / "ballbot_layout.png", dpi=110)
    plt.close(fig)

    # Fig. 2b
    fig, axs = plt.subplots(1, 2, figsize=(11, 4))
    for mode in args.modes:
        for h in args.horizons:
            evs = [np.asarray(r["eval"]) for r in results.values() if r["mode"] == mode and r["horizon"] == h]
            n = min(len(e) for e in evs)
            it = evs[0][:n, 0]
            for k, ax in zip((1, 2), axs):
                v = np.stack([e[:n, k] for e in evs])
                line, = ax.plot(it, v.mean(0), "-o", ms=3, label=f"{mode}, H={h:g}s")
                ax.fill_between(it, v.min(0), v.max(0), color=line.get_color(), alpha=0.2)
    axs[0].set_ylabel("eval cost (mean over 8 starts)")
    axs[1].set_ylabel("success rate (8 starts)")
    for ax in axs:
        ax.set_xlabel("learning iteration")
        ax.grid(alpha=0.3)
    axs[0].legend(fontsize=8)
    fig.suptitle(f"Fig. 2b: performance vs iteration, mean and min-max over seeds {args.seeds}{label}")
    fig.tight_layout()
    fig.savefig(out / f"ballbot_fig2b{sfx}.png", dpi=110)
    plt.close(fig)

    # Fig. 2a and Fig. 3 from the first seed of the DMPC long-horizon run (or the last config run)
    mode = "running+terminal" if "running+terminal" in args.modes else args.modes[-1]
    h = max(args.horizons)
    name = f"{mode.replace('+', '_')}_H{h:g}_s{args.seeds[0]}"
    cfg = load_config(args.config, {"actor.mode": mode, "actor.horizon_time": h})
    actor = Actor(task, cfg.actor)
    actor.set_critic_bundle((runs / name / "critic.onnx").read_bytes())
    res = evaluate(task, actor)
    eps = res["episodes"]
    fig, ax = plt.subplots(figsize=(5.5, 5.5))
    draw_arena(ax, task)
    for e in eps:
        ax.plot(e.xs[:, 0], e.xs[:, 1], "-", lw=1.5, label=e.outcome)
        if e.outcome != "timeout":
            ax.plot(e.xs[-1, 0], e.xs[-1, 1], "k*", ms=8)
    ax.set_title(f"Fig. 2a: {name}, success {res['eval/success_rate']:.2f}{label}", fontsize=9)
    fig.tight_layout()
    fig.savefig(out / f"ballbot_fig2a{sfx}.png", dpi=110)
    plt.close(fig)

    fig, axs = plt.subplots(2, 3, figsize=(12, 8))
    for row, e in zip(axs, (eps[1], eps[-2])):
        n = len(e.costs)
        for ax, k in zip(row, (0, n // 3, (2 * n) // 3)):
            t = k * task.settings.control_dt
            g, Z = running_cost_map(actor, task.settings.target, t, e.xs[k], task)
            lo, hi = np.percentile(Z, [2, 98])
            ax.pcolormesh(g, g, Z, cmap="rainbow", vmin=lo, vmax=hi, shading="auto")
            for w in task.segments:
                ax.plot([w[0], w[2]], [w[1], w[3]], color="k", lw=3)
            ax.plot(e.xs[k, 0], e.xs[k, 1], "o", color="white", mec="k", ms=9)
            ax.plot(*task.settings.target, "x", color="white", ms=12, mew=3)
            ax.set_aspect("equal")
            ax.set_title(f"t = {t:.2f} s", fontsize=9)
    fig.suptitle(f"Fig. 3: Eq. (14) running cost over x-y along two trajectories ({name}){label}")
    fig.tight_layout()
    fig.savefig(out / f"ballbot_fig3{sfx}.png", dpi=100)
    plt.close(fig)

    summary = {
        "command": " ".join(sys.argv),
        "total_wall_s": time.time() - t_start,
        "runs": {k: {kk: vv for kk, vv in v.items() if kk != "eval"} | {
            "final_eval_cost": v["eval"][-1][1], "final_success": v["eval"][-1][2],
            "initial_eval_cost": v["eval"][0][1]} for k, v in results.items()},
        "fig2a": {k: v for k, v in res.items() if k != "episodes"} | {"outcomes": [e.outcome for e in eps]},
    }
    (out / f"ballbot_summary{sfx}.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps({k: v for k, v in summary.items() if k != "runs"}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
