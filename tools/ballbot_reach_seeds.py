"""Multi-seed harness of ``dmpc train ballbot-reach``: DMPC vs terminal-only vs a short horizon.

    python tools/ballbot_reach_seeds.py --seeds 0 1 2 3 4 --iterations 30 --eval-every 5 --jobs 2 \
        --runs runs/reach_seeds --out docs/results

Trains every (variant, seed) in ``--jobs`` parallel processes (each run resumes from its
checkpoint if the script is restarted; ``--set KEY=VALUE`` applies to every run). Variants:

* ``dmpc_H1``: actor.mode running+terminal (Eq. 13 + Eq. 14), H = 1 s;
* ``terminal_H1``: actor.mode terminal (the value only as the terminal cost), H = 1 s;
* ``dmpc_H0.5``: running+terminal, H = 0.5 s.

Then, per variant and evaluation iteration: mean success on the 8 evaluation starts over seeds
with a 95 % Student-t interval; per run the mean success over all evaluations (equal budget) and
the first iteration with success >= 50 %. Writes ``ballbot_reach_curves.png`` (the three curves,
bands = 95 % t-interval), ``ballbot_reach_trajectories.png`` (the 8 evaluation episodes of the
untrained and of the last critic of the first seed's DMPC run, same starts) and
``ballbot_reach_summary.json`` to ``--out``.
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

VARIANTS = {
    "dmpc_H1": {"actor.mode": "running+terminal", "actor.horizon_time": 1.0},
    "terminal_H1": {"actor.mode": "terminal", "actor.horizon_time": 1.0},
    "dmpc_H0.5": {"actor.mode": "running+terminal", "actor.horizon_time": 0.5},
}


def read_eval(run: Path) -> np.ndarray:
    """(iteration, success) rows of a run directory."""
    return read_column(run, "eval/success_rate")


def read_column(run: Path, key: str) -> np.ndarray:
    """(iteration, value) rows of scalar ``key`` of a run directory: its ``scalars.csv`` (the
    experiments' logger) or, for runs written before it, its ``metrics.csv`` (one column a key)."""
    from dmpc_core.experiments._common import read_scalars

    if (run / "scalars.csv").is_file():
        return read_scalars(run / "scalars.csv").get(key, np.zeros((0, 2)))
    with open(run / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return np.asarray([(int(float(r["iteration"])), float(r[key])) for r in rows if r.get(key) not in (None, "")])


def t_interval(v: np.ndarray, axis: int = 0):
    """Mean and half width of the 95 % Student-t interval along ``axis``."""
    from scipy import stats

    v = np.asarray(v, float)
    n = v.shape[axis]
    mean = v.mean(axis)
    if n < 2:
        return mean, np.zeros_like(mean)
    half = stats.t.ppf(0.975, n - 1) * v.std(axis, ddof=1) / np.sqrt(n)
    return mean, half


def _train_one(config, runs, variant, seed, iterations, eval_every, sets):
    from dmpc_core.experiments.ballbot_reach import load_config, train
    from dmpc_core.settings import parse_overrides

    over = parse_overrides(sets)
    over.update(VARIANTS[variant])
    over.update({"training.seed": seed, "training.iterations": iterations, "training.eval_every": eval_every})
    cfg = load_config(config, over)
    run = Path(runs) / f"{variant}_s{seed}"
    t0 = time.time()
    train(cfg, run, resume=(run / "checkpoint.pt").exists(), progress=False, tensorboard=True)
    ev = read_eval(run)
    print(f"{run.name}: success {ev[:, 1].tolist()} ({time.time() - t0:.0f} s)", flush=True)
    return f"{variant}_s{seed}", str(run)


def first_at_least(ev: np.ndarray, level: float) -> float:
    hit = np.flatnonzero(ev[:, 1] >= level - 1e-9)
    return float(ev[hit[0], 0]) if len(hit) else float("nan")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default=None)
    ap.add_argument("--out", default="docs/results")
    ap.add_argument("--runs", default="runs/reach_seeds")
    ap.add_argument("--iterations", type=int, default=30)
    ap.add_argument("--eval-every", type=int, default=5)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--no-train", action="store_true", help="only summarise existing runs")
    args = ap.parse_args(argv)
    out, runs = Path(args.out), Path(args.runs)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.time()
    jobs = [(v, s) for s in args.seeds for v in args.variants]
    if not args.no_train:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            futs = [pool.submit(_train_one, args.config, str(runs), v, s, args.iterations, args.eval_every, args.set)
                    for v, s in jobs]
            for f in futs:
                f.result()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = {"command": " ".join(sys.argv), "seeds": args.seeds, "iterations": args.iterations,
               "wall_s": time.time() - t_start, "variants": {}}
    fig, axs = plt.subplots(1, 2, figsize=(12, 4.2))
    for v in args.variants:
        evs = [read_eval(runs / f"{v}_s{s}") for s in args.seeds]
        n = min(len(e) for e in evs)
        it = evs[0][:n, 0]
        S = np.stack([e[:n, 1] for e in evs])
        mean, half = t_interval(S)
        auc = S.mean(1)  # per seed: mean success over the evaluations (equal budget)
        auc_m, auc_h = t_interval(auc)
        fin_m, fin_h = t_interval(S[:, -1])
        t50 = [first_at_least(e[:n], 0.5) for e in evs]
        u = [read_column(runs / f"{v}_s{s}", "critic/greedy_u_max_ratio") for s in args.seeds]
        summary["variants"][v] = {
            "iterations": it.tolist(), "success_mean": mean.tolist(), "success_ci95": half.tolist(),
            "success_per_seed": S.tolist(), "final_mean": float(fin_m), "final_ci95": float(fin_h),
            "mean_over_iterations": float(auc_m), "mean_over_iterations_ci95": float(auc_h),
            "first_iteration_50pct_per_seed": t50,
            "greedy_u_max_ratio_max": float(max(x[:, 1].max() for x in u if len(x))) if any(len(x) for x in u) else None,
        }
        line, = axs[0].plot(it, mean, "-o", ms=3, label=f"{v} (final {fin_m:.2f} +- {fin_h:.2f})")
        axs[0].fill_between(it, np.clip(mean - half, 0, 1), np.clip(mean + half, 0, 1), color=line.get_color(), alpha=0.2)
        for x in u:
            if len(x):
                axs[1].plot(x[:, 0], x[:, 1], color=line.get_color(), lw=0.8, alpha=0.7)
    axs[0].set(xlabel="learning iteration", ylabel="success on the 8 evaluation starts", ylim=(-0.02, 1.02),
               title=f"success: mean and 95 % t-interval, {len(args.seeds)} seeds ({min(args.seeds)}-{max(args.seeds)})")
    axs[0].legend(fontsize=8, loc="lower right")
    axs[0].grid(alpha=0.3)
    axs[1].axhline(1.0, color="k", ls="--", lw=0.8)
    axs[1].set(xlabel="learning iteration", ylabel="max |u*| / torque limit",
               title="greedy input |R^-1 g' dV/dx|, training states (a line per run)")
    axs[1].grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "ballbot_reach_curves.png", dpi=110)
    plt.close(fig)

    # before vs after on the same starts (first seed, DMPC H = 1 s)
    from dmpc_core.agents.deep_value_mpc import Actor, DeepValueMpc, evaluate
    from dmpc_core.experiments.ballbot_reach import load_config
    from dmpc_core.settings import parse_overrides

    v = "dmpc_H1" if "dmpc_H1" in args.variants else args.variants[0]
    over = parse_overrides(args.set)
    over.update(VARIANTS[v])
    over["training.seed"] = args.seeds[0]
    cfg = load_config(args.config, over)
    agent = DeepValueMpc(cfg)  # the untrained critic of this seed
    before = evaluate(agent.task, agent.actor)
    actor = Actor(agent.task, cfg.actor)
    actor.set_critic_bundle((runs / f"{v}_s{args.seeds[0]}" / "critic.onnx").read_bytes())
    after = evaluate(agent.task, actor)
    fig, ax = plt.subplots(figsize=(6, 6))
    ts = agent.task.settings
    for res, color, name in ((before, "tab:red", "before (untrained critic)"), (after, "tab:green", "after (last critic)")):
        for k, e in enumerate(res["episodes"]):
            ax.plot(e.xs[:, 0], e.xs[:, 1], "-", color=color, lw=1.4,
                    label=f"{name}: {res['eval/success_rate'] * 8:.0f}/8" if k == 0 else None)
            ax.plot(e.xs[-1, 0], e.xs[-1, 1], ".", color=color, ms=7)
    st = np.asarray(ts.eval_starts)
    ax.plot(st[:, 0], st[:, 1], "o", color="tab:blue", ms=6, label="starts")
    ax.plot(*ts.target, "kx", ms=12, mew=3, label="goal")
    ax.add_patch(plt.Circle(ts.target, ts.success_tolerance, fill=False, ls="--", color="k"))
    ax.set(xlabel="x [m]", ylabel="y [m]", aspect="equal",
           title=f"Ballbot reach, T = {ts.episode_time:g} s, 8 evaluation starts\n"
                 f"before / after learning ({v}, seed {args.seeds[0]}, {args.iterations} iterations)")
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    fig.savefig(out / "ballbot_reach_trajectories.png", dpi=110)
    plt.close(fig)
    summary["before_after"] = {"variant": v, "seed": args.seeds[0], "before": before["eval/success_rate"],
                               "after": after["eval/success_rate"]}
    summary["wall_s"] = time.time() - t_start
    (out / "ballbot_reach_summary.json").write_text(json.dumps(summary, indent=1))
    for v, r in summary["variants"].items():
        print(f"{v}: final {r['final_mean']:.3f} +- {r['final_ci95']:.3f}, mean over iterations "
              f"{r['mean_over_iterations']:.3f} +- {r['mean_over_iterations_ci95']:.3f}, first >= 50 %: "
              f"{r['first_iteration_50pct_per_seed']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
