"""Model-based RL on the MPQ pendulum swing-up (lecture-model-based-rl, versions 0.5, 1.0, 1.5).

    dmpc train mbrl-pendulum [--config config/mbrl_pendulum.yaml] [--out DIR] [--seed 0] \
        [--variant v05|v10|v15|v15_slq|true|true_slq|true_ol] [--set KEY=VALUE ...]
    dmpc eval mbrl-pendulum [--runs runs/mbrl-pendulum] [--out runs/mbrl-pendulum/mbrl-pendulum.png]

Variants (same seed -> same episode and evaluation start states as ``mpq-pendulum``):
  v05       version 0.5: random data (agent.random_transitions_v05), fit once, open-loop plans
  v10       version 1.0: random data, then per episode an open-loop plan, aggregation, refit
  v15       version 1.5: random data, then MPC (MPPI on the ensemble) with a refit per episode
  v15_slq   version 1.5 with SLQ on the ensemble mean as the MPC solver
  true      MPPI MPC with the true model (the reference cost of the claims)
  true_slq  SLQ MPC with the true model
  true_ol   the open-loop plan of versions 0.5/1.0 with the true model (the open-loop floor)
Training runs until the agent holds ``run.transitions`` transitions (versions 1.0 / 1.5: one
episode of 200 adds 200); then every variant runs ``run.eval_episodes`` evaluation episodes from
start states shared by all variants of the seed, without adding data. ``summary.json`` holds the
training curve (episode cost vs transitions) and the evaluation costs.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import List

import numpy as np

from dmpc_core.agents.mbrl import MbrlAgent, MbrlSettings
from dmpc_core.experiments._common import (CONFIG_DIR, RUNS_DIR, CliError, RunLogger, base_parser, load_config,
                                           progress, read_summaries, run_dir, settings_from, t_interval,
                                           write_json)
from dmpc_core.experiments.mpq_pendulum import initial_states

DEFAULT_CONFIG = CONFIG_DIR / "mbrl_pendulum.yaml"
NAME = "mbrl-pendulum"
VARIANTS = {"v05": ("0.5", "mppi"), "v10": ("1.0", "mppi"), "v15": ("1.5", "mppi"), "v15_slq": ("1.5", "slq"),
            "true": ("true", "mppi"), "true_slq": ("true", "slq"), "true_ol": ("true_open_loop", "mppi")}
LABELS = {"v05": "version 0.5 (fit once, open loop)", "v10": "version 1.0 (aggregate, open loop)",
          "v15": "version 1.5 (MPPI MPC, refits)", "v15_slq": "version 1.5, SLQ on the ensemble mean",
          "true": "MPPI MPC, true model", "true_slq": "SLQ MPC, true model",
          "true_ol": "open-loop plan, true model"}


@dataclass
class MbrlRunSettings:
    """Attributes:
    transitions: data budget; versions 1.0/1.5 run episodes until they hold this many transitions.
    eval_episodes: evaluation episodes after training (no data added), from shared start states.
    """

    transitions: int = 2000
    eval_episodes: int = 3


#: the config file's sections and the settings dataclass each fills (``dmpc train mbrl-pendulum --help``)
SETTINGS = {"agent": MbrlSettings, "run": MbrlRunSettings}


def eval_states(seed: int, n: int) -> np.ndarray:
    """Evaluation start states of a seed (a stream separate from the training episodes)."""
    return initial_states(50_000 + seed, n)


def train_main(argv: List[str]) -> int:
    p = base_parser(f"dmpc train {NAME}", DEFAULT_CONFIG)
    p.add_argument("--variant", choices=tuple(VARIANTS), default="v15")
    args = p.parse_args(argv)
    if args.resume or args.stop_after is not None:
        raise CliError(f"{NAME} runs are short and keep no checkpoint: --resume / --stop-after are not supported")
    cfg = load_config(args.config, args.set, ("agent", "run"))
    where = args.config + (" (with --set)" if args.set else "")
    agent_s = settings_from(MbrlSettings, cfg.get("agent"), f"{where}:agent")
    run_s = settings_from(MbrlRunSettings, cfg.get("run"), f"{where}:run")
    agent_s.version, agent_s.solver = VARIANTS[args.variant]
    out = run_dir(args.out, NAME, f"{args.variant}_s{args.seed}")
    t_wall = time.perf_counter()
    agent = MbrlAgent(agent_s, seed=args.seed)
    logger = RunLogger(out, False)
    curve_cost: List[float] = []
    curve_data: List[int] = []
    x0s = initial_states(args.seed, 1000)
    learning = agent_s.version in ("1.0", "1.5")
    n_train = max(0, int(np.ceil((run_s.transitions - agent.num_transitions) / agent_s.task.episode_steps))) if learning else 0
    bar = progress(n_train + run_s.eval_episodes, 0, f"{NAME} {args.variant} s{args.seed}", args.no_progress)
    while learning and agent.num_transitions < run_s.transitions:
        stats = agent.run_episode(x0s[agent.episodes])
        curve_cost.append(stats["train/episode_cost"])
        curve_data.append(agent.num_transitions)
        logger.log(agent.episodes, stats)
        bar.update(1)
        bar.set_postfix(cost=f"{curve_cost[-1]:.0f}", data=agent.num_transitions)
    eval_cost, eval_dis, eval_up, eval_dep = [], [], [], []
    for x0 in eval_states(args.seed, run_s.eval_episodes):
        stats = agent.run_episode(x0, learn=False)
        eval_cost.append(stats["train/episode_cost"])
        eval_dis.append(stats["model/disagreement"])
        eval_up.append(stats["train/upright_fraction"])
        scalars = {"eval/episode_cost": stats["train/episode_cost"],
                   "eval/upright_fraction": stats["train/upright_fraction"],
                   "eval/disagreement": stats["model/disagreement"]}
        if "model/open_loop_departure_s" in stats:
            eval_dep.append(stats["model/open_loop_departure_s"])
            scalars["eval/open_loop_departure_s"] = eval_dep[-1]
        logger.log(agent.episodes, scalars)
        bar.update(1)
    bar.close()
    wall = time.perf_counter() - t_wall
    tm = agent.timing
    write_json(out / "summary.json", {
        "variant": args.variant, "seed": args.seed, "version": agent_s.version, "solver": agent_s.solver,
        "rollout_mode": agent_s.rollout_mode, "transitions": agent.num_transitions,
        "episode_cost": curve_cost, "episode_transitions": curve_data, "eval_cost": eval_cost,
        "eval_disagreement": eval_dis, "eval_upright_fraction": eval_up, "eval_open_loop_departure_s": eval_dep,
        "last_fit": agent.last_fit, "fit_s": tm["fit_s"], "plan_s": tm["plan_s"],
        "plan_calls": tm["plan_calls"], "wall_s": wall})
    logger.close()
    print(f"{args.variant} s{args.seed}: {agent.num_transitions} transitions, eval cost {np.mean(eval_cost):.1f} "
          f"({', '.join(f'{c:.0f}' for c in eval_cost)}), wall {wall:.0f} s")
    return 0


def eval_main(argv: List[str]) -> int:
    """Table of evaluation costs (mean and 95 % t-interval over seeds, ratio to the true-model
    MPPI cost) and a PNG of the training curves (mean and t-band) with the evaluation levels."""
    import argparse

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    p = argparse.ArgumentParser(prog=f"dmpc eval {NAME}")
    p.add_argument("--runs", default=str(RUNS_DIR / NAME), help=f"folder of run directories (default runs/{NAME})")
    p.add_argument("--out", default=None, help=f"PNG path (default RUNS/{NAME}.png)")
    args = p.parse_args(argv)
    if args.out is None:
        args.out = str(Path(args.runs) / f"{NAME}.png")
    groups = read_summaries(args.runs)
    ref = None
    if "true" in groups:
        ref = {r["seed"]: float(np.mean(r["eval_cost"])) for r in groups["true"]}
    print("| variant | seeds | transitions | eval cost (mean, 95 % t-interval) | ratio to true-model MPPI "
          "(per-seed ratio, mean, 95 % t) | eval disagreement | upright fraction | open-loop departure s | fit s | wall s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for i, (v, runs) in enumerate((v, groups[v]) for v in VARIANTS if v in groups):
        per_seed = np.array([np.mean(r["eval_cost"]) for r in runs])
        m, h = t_interval(per_seed)
        ratio = "-"
        if ref is not None and v != "true":
            rs = [np.mean(r["eval_cost"]) / ref[r["seed"]] for r in runs if r["seed"] in ref]
            if rs:
                rm, rh = t_interval(rs)
                ratio = f"{rm:.2f} +- {rh:.2f} (n={len(rs)})"
        dis = np.mean([np.mean(r["eval_disagreement"]) for r in runs])
        up = [np.mean(r["eval_upright_fraction"]) for r in runs if r.get("eval_upright_fraction")]
        dep = [np.mean(r["eval_open_loop_departure_s"]) for r in runs if r.get("eval_open_loop_departure_s")]
        up_s = f"{np.mean(up):.2f}" if up else "-"
        dep_s = "{:.2f} +- {:.2f}".format(*t_interval(dep)) if dep else "-"
        print(f"| {LABELS[v]} | {len(runs)} ({', '.join(str(r['seed']) for r in sorted(runs, key=lambda r: r['seed']))}) | "
              f"{runs[0]['transitions']} | {m:.1f} +- {h:.1f} | {ratio} | {dis:.3f} | {up_s} | {dep_s} | "
              f"{np.mean([r['fit_s'] for r in runs]):.0f} | {np.mean([r['wall_s'] for r in runs]):.0f} |")
        col = f"C{i}"
        if v.startswith("true"):  # no data: a level with its band
            ax.axhline(m, color=col, ls="--", lw=1, label=f"{LABELS[v]} (evaluation, n={len(runs)})")
            if not np.isnan(h):
                ax.axhspan(m - h, m + h, color=col, alpha=0.08)
            continue
        n = min(len(r["episode_cost"]) for r in runs)
        if n > 0:
            c = np.array([r["episode_cost"][:n] for r in runs])
            xs = np.array(runs[0]["episode_transitions"][:n])
            band = np.array([t_interval(c[:, j])[1] for j in range(n)]) if len(runs) > 1 else np.zeros(n)
            ax.plot(xs, c.mean(0), color=col, marker="o", ms=3, label=f"{LABELS[v]} (training, n={len(runs)})")
            ax.fill_between(xs, c.mean(0) - band, c.mean(0) + band, color=col, alpha=0.15)
        ax.errorbar([runs[0]["transitions"] + 40 * (i - 2)], [m], yerr=[0 if np.isnan(h) else h], color=col,
                    marker="s", capsize=3, ls="none", label=f"{LABELS[v]} (evaluation, n={len(runs)})")
    pairs = [("v15", "v10"), ("v10", "v05"), ("v15", "true"), ("v15_slq", "true"), ("v15_slq", "true_slq"), ("v10", "true_ol"),
             ("v05", "true_ol")]
    rows = []
    for a, b in pairs:
        if a in groups and b in groups:
            ca = {r["seed"]: np.mean(r["eval_cost"]) for r in groups[a]}
            cb = {r["seed"]: np.mean(r["eval_cost"]) for r in groups[b]}
            d = [ca[k] - cb[k] for k in sorted(set(ca) & set(cb))]
            if d:
                dm, dh = t_interval(d)
                rows.append(f"| {LABELS[a]} minus {LABELS[b]} | {len(d)} | {dm:.1f} +- {dh:.1f} | {sum(x < 0 for x in d)}/{len(d)} |")
    if rows:
        print("\n| paired difference of evaluation costs (same seeds, same start states) | seeds | mean, 95 % t-interval | seeds with a < b |")
        print("|---|---|---|---|")
        print("\n".join(rows))
    ax.set_xlabel("transitions collected on the plant")
    ax.set_ylabel("episode cost  sum theta^2 + 0.1 theta_dot^2")
    ax.set_ylim(bottom=0)
    ax.set_title("Model-based RL, pendulum swing-up (mean, 95 % t-interval over seeds)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")
    return 0
