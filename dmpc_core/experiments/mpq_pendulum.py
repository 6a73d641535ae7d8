"""MPQ on the pendulum swing-up with a biased model (MPQ Sec. 4, Fig. 2, PENDULUMSWINGUP).

    dmpc train mpq-pendulum [--config config/mpq_pendulum.yaml] [--out runs/mpq-pendulum/mpq_s0] [--seed 0] \
        [--variant mpq|mppi|mppi_long|softq] [--episodes N] [--set KEY=VALUE ...] [--resume] [--stop-after N]
    dmpc eval mpq-pendulum [--runs runs/mpq-pendulum] [--out runs/mpq-pendulum/mpq-pendulum.png]

Variants (same seeds -> same initial states and biased-model draws):
  mpq        MPPI(H) in the biased model + learned soft Q as the last cost, Q-learning (Eq. 19)
  mppi       MPPI(H) in the biased model, no Q (same short H)
  mppi_long  MPPI(run.long_horizon) with the TRUE model, no Q (MPQ's dashed grey line)
  softq      H = 1 with learning (soft Q-learning, MPQ Table 2 "H = 1")
Per episode ``train/episode_cost`` (sum over 200 steps of theta^2 + 0.1 theta_dot^2) is logged;
``summary.json`` holds the curve, the MPPI throughput and the wall time; ``checkpoint.pt`` is
written every ``run.checkpoint_every`` episodes and at the end. The default run directory is
``runs/mpq-pendulum/<variant>_s<seed>``; ``--resume`` needs its checkpoint (an error otherwise) and
refuses a checkpoint of another variant or seed.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import List

import numpy as np

from dmpc_core.agents.mpq import MpqAgent, MpqSettings
from dmpc_core.experiments._common import (CONFIG_DIR, RUNS_DIR, RunLogger, base_parser, check_resume, load_config,
                                           progress, read_summaries, resume_run, run_dir, save_run, settings_from,
                                           stop_requested, write_json)
from dmpc_core.tasks.pendulum import random_initial_state

DEFAULT_CONFIG = CONFIG_DIR / "mpq_pendulum.yaml"
NAME = "mpq-pendulum"
VARIANTS = ("mpq", "mppi", "mppi_long", "softq")


@dataclass
class MpqRunSettings:
    """Attributes:
    episodes: training episodes (10 s each).
    long_horizon: H of the mppi_long baseline.
    checkpoint_every: episodes between checkpoints.
    """

    episodes: int = 30
    long_horizon: int = 64
    checkpoint_every: int = 5


#: the config file's sections and the settings dataclass each fills (``dmpc train mpq-pendulum --help``)
SETTINGS = {"agent": MpqSettings, "run": MpqRunSettings}


def settings_for(variant: str, agent: MpqSettings, run: MpqRunSettings) -> MpqSettings:
    if variant == "mppi":
        agent.use_q, agent.learn = False, False
    elif variant == "mppi_long":
        agent.use_q, agent.learn, agent.true_model = False, False, True
        agent.mppi.horizon = run.long_horizon
    elif variant == "softq":
        agent.mppi.horizon = 1
    return agent


def initial_states(seed: int, n: int) -> np.ndarray:
    """The episode start states of a seed (shared by all variants)."""
    rng = np.random.default_rng(10_000 + seed)
    return np.array([random_initial_state(rng) for _ in range(n)])


def train_main(argv: List[str]) -> int:
    p = base_parser(f"dmpc train {NAME}", DEFAULT_CONFIG)
    p.add_argument("--variant", choices=VARIANTS, default="mpq")
    p.add_argument("--episodes", type=int, default=0, help="override run.episodes")
    args = p.parse_args(argv)
    cfg = load_config(args.config, args.set, tuple(SETTINGS))
    where = args.config + (" (with --set)" if args.set else "")
    agent_s = settings_from(MpqSettings, cfg.get("agent"), f"{where}:agent")
    run_s = settings_from(MpqRunSettings, cfg.get("run"), f"{where}:run")
    if args.episodes > 0:
        run_s.episodes = args.episodes
    agent_s = settings_for(args.variant, agent_s, run_s)
    out = run_dir(args.out, NAME, f"{args.variant}_s{args.seed}")
    ckpt = check_resume(out, args.resume)
    meta = {"experiment": NAME, "variant": args.variant, "seed": args.seed}
    agent = MpqAgent(agent_s, seed=args.seed)
    x0s = initial_states(args.seed, run_s.episodes)
    curve: List[float] = []
    t_wall = time.perf_counter()
    wall_before = 0.0
    if args.resume:
        curve, wall_before = resume_run(ckpt, agent, meta)
        print(f"resumed at episode {agent.episodes}")
    logger = RunLogger(out, args.resume)
    bar = progress(run_s.episodes, agent.episodes, f"{NAME} {args.variant} s{args.seed}", args.no_progress)
    done_here = 0
    while agent.episodes < run_s.episodes:
        if stop_requested(args.stop_after, done_here, f"episode {agent.episodes}", bar, logger):
            return 0
        stats = agent.run_episode(x0s[agent.episodes])
        done_here += 1
        curve.append(stats["train/episode_cost"])
        logger.log(agent.episodes, stats)
        bar.update(1)
        bar.set_postfix(cost=f"{curve[-1]:.0f}")
        if agent.episodes % run_s.checkpoint_every == 0:
            save_run(ckpt, agent, curve, wall_before + time.perf_counter() - t_wall, meta)
    bar.close()
    wall = wall_before + time.perf_counter() - t_wall
    tm = agent.timing
    m = agent_s.mppi
    perf = {
        "perf/mppi_ms_per_call": 1e3 * tm["mppi_s"] / max(1, tm["mppi_calls"]),
        "perf/mppi_state_steps_per_s": tm["mppi_calls"] * m.num_samples * m.horizon * m.num_iterations / max(tm["mppi_s"], 1e-9),
        "perf/target_ms_per_solve": 1e3 * tm["target_s"] / max(1, tm["target_solves"]),
        "perf/learn_s_total": tm["learn_s"],
        "perf/wall_s": wall,
    }
    logger.log(agent.episodes, perf)
    write_json(out / "summary.json", {"variant": args.variant, "seed": args.seed, "horizon": m.horizon,
                                      "episode_cost": curve, **{k.split("/")[1]: v for k, v in perf.items()}})
    save_run(ckpt, agent, curve, wall, meta)
    logger.close()
    print(f"{args.variant}: last-5 mean episode cost {np.mean(curve[-5:]):.1f}, wall {wall:.1f} s")
    return 0


def eval_main(argv: List[str]) -> int:
    """Aggregate ``<runs>/*/summary.json`` by variant: episode-cost curves (mean +- std) as a PNG."""
    import argparse

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    p = argparse.ArgumentParser(prog=f"dmpc eval {NAME}")
    p.add_argument("--runs", default=str(RUNS_DIR / NAME), help=f"folder of run directories (default runs/{NAME})")
    p.add_argument("--out", default=None, help=f"PNG path (default RUNS/{NAME}.png)")
    p.add_argument("--title", default="")
    p.add_argument("--last", type=int, default=5, help="episodes averaged for the table")
    args = p.parse_args(argv)
    if args.out is None:
        args.out = str(Path(args.runs) / f"{NAME}.png")
    groups = read_summaries(args.runs)
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    style = {"mpq": ("C0", "-"), "mppi": ("C1", "-"), "mppi_long": ("0.4", "--"), "softq": ("C2", "-")}
    print(f"| variant | H | seeds | mean episode cost, last {args.last} episodes (mean +- std over seeds) | MPPI ms/call | MPPI state-steps/s | wall s/run |")
    print("|---|---|---|---|---|---|---|")
    for v in VARIANTS:
        if v not in groups:
            continue
        runs = groups[v]
        n = min(len(r["episode_cost"]) for r in runs)
        c = np.array([r["episode_cost"][:n] for r in runs])
        h = runs[0]["horizon"]
        label = {"mpq": f"MPQ H={h}", "mppi": f"MPPI H={h} (biased model)",
                 "mppi_long": f"MPPI H={h}, true model", "softq": "soft Q-learning (H=1)"}[v]
        ep = np.arange(1, n + 1)
        col, ls = style[v]
        ax.plot(ep, c.mean(0), color=col, ls=ls, label=f"{label} (n={len(runs)})")
        ax.fill_between(ep, c.mean(0) - c.std(0), c.mean(0) + c.std(0), color=col, alpha=0.15)
        last = c[:, -args.last:].mean(1)
        print(f"| {label} | {h} | {len(runs)} | {last.mean():.1f} +- {last.std():.1f} | "
              f"{np.mean([r['mppi_ms_per_call'] for r in runs]):.3f} | {np.mean([r['mppi_state_steps_per_s'] for r in runs]):.3g} | "
              f"{np.mean([r['wall_s'] for r in runs]):.1f} |")
    ax.set_xlabel("training episode (10 s each)")
    ax.set_ylabel("episode cost  sum theta^2 + 0.1 theta_dot^2")
    ax.set_title(args.title or "MPQ pendulum swing-up")
    ax.legend(fontsize=8)
    fig.tight_layout()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")
    return 0
