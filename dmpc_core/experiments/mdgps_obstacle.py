"""MDGPS on the 2-D obstacle course (MDGPS Fig. 1, left).

    dmpc train mdgps-obstacle [--config config/mdgps_obstacle.yaml] [--variant off_global] [--seed 0] \
        [--iterations N] [--out runs/mdgps-obstacle/off_global_s0] [--set KEY=VALUE ...] [--resume] [--stop-after N]
    dmpc eval mdgps-obstacle [--runs runs/mdgps-obstacle] [--out runs/mdgps-obstacle/mdgps_obstacle.png] [--iteration N]

Variants: off_classic, off_global, on_classic, on_global (sampling from the local controllers =
off-policy, or from the global policy = on-policy; classic or global step rule, Sec. 4.2) and
local_only (trajectory-centric RL: KL to the previous local controller, no global policy).
Per iteration the noise-free global policy (local_only: the local mean controllers) is rolled out
once per condition; ``eval/global_final_distance`` and ``eval/global_mean_distance`` (final-step and
time-averaged distance to the target, mean over the 5 conditions) are logged with the C-step
diagnostics (KL / epsilon, eta, step_mult, the Sec. 4.2 cost terms) to scalars.csv / TensorBoard.
``summary.json`` holds the curves and the per-component wall times; ``checkpoint.pt`` is written
every ``run.checkpoint_every`` iterations. ``--resume`` refits the GMM priors on their stored data.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List

import numpy as np

from dmpc_core.agents.mdgps import MdgpsAgent, MdgpsSettings
from dmpc_core.experiments._common import (CONFIG_DIR, RUNS_DIR, RunLogger, base_parser, check_resume, load_config,
                                           progress, read_summaries, resume_run, run_dir, save_run, settings_from,
                                           stop_requested, t_interval, write_json)
from dmpc_core.tasks.obstacle_course import ObstacleCourse, ObstacleCourseSettings

DEFAULT_CONFIG = CONFIG_DIR / "mdgps_obstacle.yaml"
NAME = "mdgps-obstacle"
VARIANTS = {
    "off_classic": ("local", "classic", "global"),
    "off_global": ("local", "global", "global"),
    "on_classic": ("global", "classic", "global"),
    "on_global": ("global", "global", "global"),
    "local_only": ("local", "classic", "local"),
}


@dataclass
class MdgpsRunSettings:
    """Attributes:
    iterations: MDGPS iterations.
    checkpoint_every: iterations between checkpoints.
    """

    iterations: int = 15
    checkpoint_every: int = 1


#: the config file's sections and the settings dataclass each fills (``dmpc train mdgps-obstacle --help``)
SETTINGS = {"agent": MdgpsSettings, "task": ObstacleCourseSettings, "run": MdgpsRunSettings}


def build(argv: List[str]):
    p = base_parser(f"dmpc train {NAME}", DEFAULT_CONFIG)
    p.add_argument("--variant", choices=sorted(VARIANTS), default="off_global")
    p.add_argument("--iterations", type=int, default=0, help="override run.iterations")
    args = p.parse_args(argv)
    cfg = load_config(args.config, args.set, ("agent", "task", "run"))
    where = args.config + (" (with --set)" if args.set else "")
    agent_s = settings_from(MdgpsSettings, cfg.get("agent"), f"{where}:agent")
    task_s = settings_from(ObstacleCourseSettings, cfg.get("task"), f"{where}:task")
    run_s = settings_from(MdgpsRunSettings, cfg.get("run"), f"{where}:run")
    if args.iterations > 0:
        run_s.iterations = args.iterations
    agent_s.sampling, agent_s.step_rule, agent_s.reference = VARIANTS[args.variant]
    return args, agent_s, task_s, run_s


def train_main(argv: List[str]) -> int:
    import torch

    torch.set_num_threads(1)  # small networks and matrices: threads only add overhead on a shared machine
    args, agent_s, task_s, run_s = build(argv)
    try:
        agent_s.validate()
        task_s.validate()
    except ValueError as e:
        from dmpc_core.settings import ConfigError

        raise ConfigError(f"{args.config}: {e}") from None
    leaf = f"{args.variant}_s{args.seed}" + ("" if agent_s.kl_step == 2.0 else f"_kl{agent_s.kl_step:g}")
    out = run_dir(args.out, NAME, leaf)
    ckpt = check_resume(out, args.resume)
    meta = {"experiment": NAME, "variant": args.variant, "seed": args.seed, "kl_step": agent_s.kl_step}
    task = ObstacleCourse(task_s)
    agent = MdgpsAgent(task, agent_s, seed=args.seed)
    curves: Dict[str, List[float]] = {}
    t_wall = time.perf_counter()
    wall_before = 0.0
    if args.resume:
        flat, wall_before = resume_run(ckpt, agent, meta)
        n = agent.iteration + 1  # the curves start with the evaluation before the first iteration
        curves = {k: flat[i * n:(i + 1) * n] for i, k in enumerate(("final", "mean", "cost"))}
        print(f"resumed at iteration {agent.iteration}")
    key = "local" if args.variant == "local_only" else "global"
    if not args.resume:
        ev = agent.evaluate()
        curves = {"final": [ev[f"eval/{key}_final_distance"]], "mean": [ev[f"eval/{key}_mean_distance"]],
                  "cost": [ev["eval/global_cost"]]}
    logger = RunLogger(out, args.resume)
    bar = progress(run_s.iterations, agent.iteration, f"{NAME} {args.variant} s{args.seed}", args.no_progress)
    done_here = 0
    while agent.iteration < run_s.iterations:
        if stop_requested(args.stop_after, done_here, f"iteration {agent.iteration}", bar, logger):
            return 0
        stats = agent.run_iteration()
        done_here += 1
        curves["final"].append(stats[f"eval/{key}_final_distance"])
        curves["mean"].append(stats[f"eval/{key}_mean_distance"])
        curves["cost"].append(stats["eval/global_cost"])
        logger.log(agent.iteration, stats)
        bar.update(1)
        bar.set_postfix(dist=f"{curves['final'][-1]:.3f}")
        if agent.iteration % run_s.checkpoint_every == 0:
            flat = curves["final"] + curves["mean"] + curves["cost"]
            save_run(ckpt, agent, flat, wall_before + time.perf_counter() - t_wall, meta)
    bar.close()
    wall = wall_before + time.perf_counter() - t_wall
    tm = agent.timing
    perf = {"perf/wall_s": wall, "perf/sample_s": tm["sample_s"], "perf/dynamics_s": tm["dynamics_s"],
            "perf/policy_fit_s": tm["policy_fit_s"], "perf/cstep_s": tm["cstep_s"], "perf/sstep_s": tm["sstep_s"],
            "perf/cstep_tries_per_call": tm["cstep_tries"] / max(1, tm["cstep_calls"]),
            "perf/cstep_failures": tm["cstep_failures"]}
    logger.log(agent.iteration, perf)
    write_json(out / "summary.json", {"variant": args.variant, "seed": args.seed, "kl_step": agent_s.kl_step,
                                      "sstep_iterations": agent_s.policy.iterations,
                                      "final_distance": curves["final"], "mean_distance": curves["mean"],
                                      "global_cost": curves["cost"],
                                      **{k.split("/")[1]: v for k, v in perf.items()}})
    flat = curves["final"] + curves["mean"] + curves["cost"]
    save_run(ckpt, agent, flat, wall, meta)
    logger.close()
    print(f"{args.variant}: final distance {curves['final'][-1]:.3f} m, time-averaged {curves['mean'][-1]:.3f} m, "
          f"wall {wall:.1f} s")
    return 0


def eval_main(argv: List[str]) -> int:
    """Aggregate ``<runs>/*/summary.json``: distance curves (mean +- std over seeds) per variant and
    kl_step as a PNG, and the claims table (markdown) on stdout."""
    import argparse

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    p = argparse.ArgumentParser(prog=f"dmpc eval {NAME}")
    p.add_argument("--runs", default=str(RUNS_DIR / NAME), help=f"folder of run directories (default runs/{NAME})")
    p.add_argument("--out", default=None, help="PNG path (default RUNS/mdgps_obstacle.png)")
    p.add_argument("--iteration", type=int, default=0,
                   help="the table at this iteration (default: the last one all runs of a row reached)")
    args = p.parse_args(argv)
    out = Path(args.out) if args.out else Path(args.runs) / "mdgps_obstacle.png"
    groups = read_summaries(args.runs)
    by: Dict[str, List[dict]] = {}
    for v, runs in groups.items():
        for r in runs:
            by.setdefault(v if r.get("kl_step", 2.0) == 2.0 else f"{v} kl_step {r['kl_step']:g}", []).append(r)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    print(f"| variant | seeds | final distance at iteration {args.iteration or 'last'} [m], mean +- std | 95 % "
          "t-interval | time-averaged distance [m] | increases of the seed-mean final-distance curve | wall s/run |")
    print("|---|---|---|---|---|---|---|")
    for i, name in enumerate(sorted(by)):
        runs = by[name]
        n = min(len(r["final_distance"]) for r in runs)
        for ax, key in zip(axes, ("final_distance", "mean_distance")):
            c = np.array([r[key][:n] for r in runs])
            it = np.arange(n)
            ax.plot(it, c.mean(0), color=f"C{i}", label=f"{name} (n={len(runs)})")
            ax.fill_between(it, c.mean(0) - c.std(0), c.mean(0) + c.std(0), color=f"C{i}", alpha=0.15)
        if args.iteration > 0:
            if args.iteration >= n:
                raise SystemExit(f"dmpc eval {NAME}: --iteration {args.iteration}: the runs of {name} stop at "
                                 f"iteration {n - 1}")
            n = args.iteration + 1
        f = np.array([r["final_distance"][:n] for r in runs])
        m = np.array([r["mean_distance"][:n] for r in runs])
        incr = int(np.sum(np.diff(f.mean(0)) > 0))
        half = t_interval(f[:, -1])[1]
        print(f"| {name} | {len(runs)} | {f[:, -1].mean():.3f} +- {f[:, -1].std():.3f} | "
              f"[{f[:, -1].mean() - half:.3f}, {f[:, -1].mean() + half:.3f}] | "
              f"{m[:, -1].mean():.3f} +- {m[:, -1].std():.3f} | {incr} | {np.mean([r['wall_s'] for r in runs]):.0f} |")
    for ax, t in zip(axes, ("final-step distance to the target", "time-averaged distance to the target")):
        ax.set_xlabel("iteration")
        ax.set_ylabel(f"{t} [m]")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle("MDGPS obstacle course: global policy (local_only: local controllers), mean +- std over seeds")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")
    return 0
