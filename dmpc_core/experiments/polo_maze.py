"""POLO exploration in a reward-free point-mass world (POLO Sec. 3.1, Fig. 2).

    dmpc train polo-maze --config config/polo_maze.yaml --out runs/polo_maze/polo_s0 --seed 0 \
        [--variant polo|greedy|random] [--steps N] [--resume]
    dmpc eval polo-maze --runs runs/polo_maze --out docs/results/polo_maze.png [--title T]

Variants: ``polo`` (MPPI with H from the config and the learned optimistic ensemble),
``greedy`` (same ensemble and learning, H = 1), ``random`` (u ~ U[-1, 1]^2 i.i.d. per step).
Each run writes ``scalars.csv`` (``train/coverage``, ``critic/...``, ``perf/...``),
``summary.json`` (coverage curve, timings, MPPI throughput), ``checkpoint.pt`` (every
``run.checkpoint_every`` steps, right after a value update, so ``--resume`` continues the same
run) and ``value_map.npy`` / ``visited.npy`` (final aggregate value and visited cells).
"""
from __future__ import annotations

import glob
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List

import numpy as np

from dmpc_core.agents.polo import PoloAgent, PoloSettings
from dmpc_core.experiments._common import (RunLogger, resume_run, save_run, base_parser, load_config, progress,
                                           write_json)
from dmpc_core.settings import from_dict
from dmpc_core.tasks.point_mass_worlds import ARENA, PointMassWorld, PointMassWorldSettings

DEFAULT_CONFIG = "config/polo_maze.yaml"
VARIANTS = ("polo", "greedy", "random")


@dataclass
class PoloRunSettings:
    """Attributes:
    steps: world steps of the run (POLO Fig. 2: 1000).
    curve_every: coverage sample period [steps].
    checkpoint_every: checkpoint period [steps] (rounded up to a multiple of agent.update_every).
    """

    steps: int = 1000
    curve_every: int = 10
    checkpoint_every: int = 256


def build(cfg: Dict, where: str):
    world = from_dict(PointMassWorldSettings, cfg.get("world"), f"{where}:world")
    agent = from_dict(PoloSettings, cfg.get("agent"), f"{where}:agent")
    run = from_dict(PoloRunSettings, cfg.get("run"), f"{where}:run")
    return world, agent, run


def train_main(argv: List[str], default_config: str = DEFAULT_CONFIG, name: str = "polo-maze") -> int:
    p = base_parser(f"dmpc train {name}", default_config)
    p.add_argument("--variant", choices=VARIANTS, default="polo")
    p.add_argument("--steps", type=int, default=0, help="override run.steps")
    args = p.parse_args(argv)
    world_s, agent_s, run_s = build(load_config(args.config), args.config)
    if args.steps > 0:
        run_s.steps = args.steps
    if args.variant == "greedy":
        agent_s.mppi.horizon = 1
    out = Path(args.out)
    logger = RunLogger(out, args.resume)
    world = PointMassWorld(world_s)
    t_wall = time.perf_counter()
    if args.variant == "random":
        rng = np.random.default_rng(args.seed)
        curve = [world.coverage()]
        for t in range(1, run_s.steps + 1):
            world.step(rng.uniform(-world_s.u_max, world_s.u_max, size=2))
            if t % run_s.curve_every == 0:
                curve.append(world.coverage())
                logger.log(t, {"train/coverage": curve[-1]})
        np.save(out / "visited.npy", world.visited)
        write_json(out / "summary.json", {"variant": "random", "seed": args.seed, "world": world_s.world,
                                          "curve_every": run_s.curve_every, "coverage": curve,
                                          "final_coverage": curve[-1], "wall_s": time.perf_counter() - t_wall})
        logger.close()
        print(f"random: final coverage {curve[-1]:.3f}")
        return 0

    agent = PoloAgent(world, agent_s, seed=args.seed)
    z = agent_s.update_every
    ckpt_every = max(z, int(np.ceil(run_s.checkpoint_every / z)) * z)
    ckpt = out / "checkpoint.pt"
    curve = [world.coverage()]
    wall_before = 0.0
    if args.resume and ckpt.exists():
        curve, wall_before = resume_run(ckpt, agent)
        print(f"resumed at step {agent.t}")
    bar = progress(run_s.steps, agent.t, f"{name} {args.variant} s{args.seed}", args.no_progress)
    while agent.t < run_s.steps:
        stats = agent.step()
        bar.update(1)
        if agent.t % run_s.curve_every == 0:
            curve.append(world.coverage())
            stats = dict(stats)
            stats["train/coverage"] = curve[-1]
        if stats:
            logger.log(agent.t, stats)
        if agent.t % ckpt_every == 0 and agent.t < run_s.steps:
            save_run(ckpt, agent, curve, wall_before + time.perf_counter() - t_wall)
    bar.close()
    wall = wall_before + time.perf_counter() - t_wall
    tm = agent.timing
    s = agent_s.mppi
    perf = {
        "perf/mppi_ms_per_call": 1e3 * tm["mppi_s"] / max(1, tm["mppi_calls"]),
        "perf/mppi_state_steps_per_s": tm["mppi_calls"] * s.num_samples * s.horizon / max(tm["mppi_s"], 1e-9),
        "perf/target_ms_per_solve": 1e3 * tm["target_s"] / max(1, tm["target_solves"]),
        "perf/target_state_steps_per_s": tm["target_solves"] * agent_s.target_samples * agent_s.target_horizon
        * agent_s.target_iterations / max(tm["target_s"], 1e-9),
        "perf/learn_s_total": tm["learn_s"],
        "perf/wall_s": wall,
    }
    logger.log(agent.t, perf)
    xs = np.linspace(-ARENA, ARENA, 61)
    np.save(out / "value_map.npy", agent.value_map(xs, xs))
    np.save(out / "visited.npy", world.visited)
    write_json(out / "summary.json", {"variant": args.variant, "seed": args.seed, "world": world_s.world,
                                      "horizon": s.horizon, "curve_every": run_s.curve_every, "coverage": curve,
                                      "final_coverage": curve[-1], **{k.split("/")[1]: v for k, v in perf.items()}})
    save_run(ckpt, agent, curve, wall)
    logger.close()
    print(f"{args.variant}: final coverage {curve[-1]:.3f}, wall {wall:.1f} s, "
          f"MPPI {perf['perf/mppi_ms_per_call']:.2f} ms/call")
    return 0


def eval_main(argv: List[str], name: str = "polo-maze") -> int:
    """Aggregate ``<runs>/*/summary.json`` by variant: coverage curves (mean +- std) as a PNG."""
    import argparse

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    p = argparse.ArgumentParser(prog=f"dmpc eval {name}")
    p.add_argument("--runs", required=True)
    p.add_argument("--out", required=True, help="PNG path")
    p.add_argument("--title", default="")
    args = p.parse_args(argv)
    groups: Dict[str, List[dict]] = {}
    for f in sorted(glob.glob(str(Path(args.runs) / "*" / "summary.json"))):
        d = json.loads(Path(f).read_text())
        groups.setdefault(d["variant"], []).append(d)
    if not groups:
        raise SystemExit(f"no summary.json under {args.runs}")
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    colors = {"polo": "C0", "greedy": "C1", "random": "C2"}
    print("| variant | seeds | final coverage (mean +- std) | MPPI ms/call | wall s/run |")
    print("|---|---|---|---|---|")
    for v in VARIANTS:
        if v not in groups:
            continue
        runs = groups[v]
        n = min(len(r["coverage"]) for r in runs)
        c = np.array([r["coverage"][:n] for r in runs])
        steps = np.arange(n) * runs[0]["curve_every"]
        label = v if v != "polo" else f"POLO H={runs[0].get('horizon')}"
        if v == "greedy":
            label = "greedy H=1 (same ensemble)"
        if v == "random":
            label = "random per-step exploration"
        axes[0].plot(steps, 100 * c.mean(0), color=colors[v], label=f"{label} (n={len(runs)})")
        axes[0].fill_between(steps, 100 * (c.mean(0) - c.std(0)), 100 * (c.mean(0) + c.std(0)), color=colors[v], alpha=0.2)
        ms = np.mean([r.get("mppi_ms_per_call", np.nan) for r in runs])
        wall = np.mean([r.get("wall_s", np.nan) for r in runs])
        print(f"| {label} | {len(runs)} | {100 * c[:, -1].mean():.1f} +- {100 * c[:, -1].std():.1f} % | {ms:.2f} | {wall:.1f} |")
    axes[0].set_xlabel("world steps")
    axes[0].set_ylabel("occupancy grid coverage [%]")
    axes[0].legend(loc="lower right", fontsize=8)
    axes[0].set_title(args.title or name)
    # value map + visited cells of the first POLO run
    first = sorted(glob.glob(str(Path(args.runs) / "*" / "summary.json")))
    shown = False
    for f in first:
        d = json.loads(Path(f).read_text())
        vm = Path(f).parent / "value_map.npy"
        if d["variant"] == "polo" and vm.exists():
            im = axes[1].imshow(np.load(vm).T, origin="lower", extent=[-ARENA, ARENA, -ARENA, ARENA], cmap="coolwarm_r")
            vis = np.load(Path(f).parent / "visited.npy")
            n = vis.shape[0]
            cs = np.linspace(-ARENA, ARENA, n + 1)
            cc = 0.5 * (cs[:-1] + cs[1:])
            ii, jj = np.nonzero(vis)
            axes[1].scatter(cc[ii], cc[jj], s=4, c="k", marker="s", label="visited cells")
            from dmpc_core.tasks.point_mass_worlds import obstacles

            for xmin, xmax, ymin, ymax in obstacles(d["world"]):
                axes[1].add_patch(plt.Rectangle((xmin, ymin), xmax - xmin, ymax - ymin, color="0.3"))
            plt.colorbar(im, ax=axes[1], label="optimistic value V (cost-to-go; red = low = attractive)")
            axes[1].set_title(f"POLO seed {d['seed']}: final value and visited cells")
            shown = True
            break
    if not shown:
        axes[1].axis("off")
    fig.tight_layout()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")
    return 0
