"""POLO exploration in a reward-free point-mass world (POLO Sec. 3.1, Fig. 2).

    dmpc train polo-maze [--config config/polo_maze.yaml] [--out runs/polo-maze/polo_s0] [--seed 0] \
        [--variant polo|greedy|random] [--steps N] [--set KEY=VALUE ...] [--resume] [--stop-after N]
    dmpc eval polo-maze [--runs runs/polo-maze] [--out runs/polo-maze/polo-maze.png] [--title T]

The default run directory is ``runs/<name>/<variant>_s<seed>`` under the working directory, so
``dmpc eval`` with its defaults aggregates the runs ``dmpc train`` made with its defaults.
``--resume`` needs ``<out>/checkpoint.pt`` (an error otherwise) and refuses a checkpoint of
another variant or seed; the ``random`` variant keeps no checkpoint (it is cheap to rerun).

Variants: ``polo`` (MPPI with H from the config and the learned optimistic ensemble),
``greedy`` (same ensemble and learning, H = 1), ``random`` (u ~ U[-1, 1]^2 i.i.d. per step).
Each run writes ``scalars.csv`` (``train/coverage``, ``critic/...``, ``perf/...``),
``summary.json`` (coverage curve, timings, MPPI throughput), ``checkpoint.pt`` (every
``run.checkpoint_every`` steps, right after a value update, so ``--resume`` continues the same
run) and ``value_map.npy`` / ``visited.npy`` (final aggregate value and visited cells).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List

import numpy as np

from dmpc_core.agents.polo import PoloAgent, PoloSettings
from dmpc_core.experiments._common import (CONFIG_DIR, RUNS_DIR, CliError, RunLogger, base_parser, check_resume,
                                           load_config, progress, read_summaries, resume_run, run_dir, save_run,
                                           settings_from, stop_requested, write_json)
from dmpc_core.tasks.point_mass_worlds import ARENA, PointMassWorld, PointMassWorldSettings

DEFAULT_CONFIG = CONFIG_DIR / "polo_maze.yaml"
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


def maze_world() -> PointMassWorldSettings:
    """world.* of polo-maze: the maze, with the planner's wall penalty steep (weight 20000, beta
    100: with 200 / 30 the rollouts tunnel through walls to a lower value behind them) and
    starting at the wall surface (d_safe 0: with 0.12 the planner kept clear of ~20 % of the
    free cells). config/polo_maze.yaml gives the history of each value."""
    return PointMassWorldSettings(world="maze", wall_weight=20000.0, wall_beta=100.0, wall_d_safe=0.0)


def polo_agent() -> PoloSettings:
    """agent.* of polo-maze and polo-box (POLO Fig. 2 with the departures config/polo_maze.yaml
    explains): MPPI lambda 1e-3 and gamma 0.9, prior scale 10, optimism kappa 5, learning rate
    1e-2, one shared Eq. 7 target per state, position-only values with local random priors, and
    a multi-start acting MPPI (8 starts)."""
    s = PoloSettings()
    s.mppi.lambda_, s.mppi.gamma = 0.001, 0.9
    s.prior_beta, s.kappa, s.learning_rate = 10.0, 5.0, 0.01
    s.target_mode, s.value_inputs, s.value_position_scale, s.value_unit_spread = "shared", "position", 0.1, 1.5
    s.plan_starts = 8
    return s


#: the config file's sections and each one's defaults (``dmpc train polo-maze --help``)
SETTINGS = {"world": maze_world, "agent": polo_agent, "run": PoloRunSettings}
SECTIONS = tuple(SETTINGS)


def build(cfg: Dict, where: str, settings: Dict = SETTINGS):
    """(world, agent, run) settings from the config mapping ``cfg``; a key it leaves out takes
    the experiment's default (``settings``, a SETTINGS mapping)."""
    out = []
    for section in ("world", "agent", "run"):
        defaults = settings[section]()
        out.append(settings_from(type(defaults), cfg.get(section), f"{where}:{section}", defaults))
    return tuple(out)


def train_main(argv: List[str], default_config: str | Path = DEFAULT_CONFIG, name: str = "polo-maze",
               settings: Dict = SETTINGS) -> int:
    p = base_parser(f"dmpc train {name}", default_config)
    p.add_argument("--variant", choices=VARIANTS, default="polo")
    p.add_argument("--steps", type=int, default=0, help="override run.steps")
    args = p.parse_args(argv)
    where = args.config + (" (with --set)" if args.set else "")
    world_s, agent_s, run_s = build(load_config(args.config, args.set, SECTIONS), where, settings)
    if args.steps > 0:
        run_s.steps = args.steps
    if args.variant == "greedy":
        agent_s.mppi.horizon = 1
    out = run_dir(args.out, name, f"{args.variant}_s{args.seed}")
    if args.variant == "random":
        if args.resume:
            raise CliError("--resume: the random variant keeps no checkpoint (it is cheap: rerun it without --resume)")
        ckpt = None
    else:
        ckpt = check_resume(out, args.resume)
    meta = {"experiment": name, "variant": args.variant, "seed": args.seed}
    world = PointMassWorld(world_s)
    t_wall = time.perf_counter()
    if args.variant == "random":
        logger = RunLogger(out, False)
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
    curve = [world.coverage()]
    wall_before = 0.0
    if args.resume:
        curve, wall_before = resume_run(ckpt, agent, meta)
        print(f"resumed at step {agent.t}")
    logger = RunLogger(out, args.resume)
    bar = progress(run_s.steps, agent.t, f"{name} {args.variant} s{args.seed}", args.no_progress)
    done_here = 0
    while agent.t < run_s.steps:
        if stop_requested(args.stop_after, done_here, f"step {agent.t}", bar, logger):
            return 0
        stats = agent.step()
        done_here += 1
        bar.update(1)
        if agent.t % run_s.curve_every == 0:
            curve.append(world.coverage())
            stats = dict(stats)
            stats["train/coverage"] = curve[-1]
        if stats:
            logger.log(agent.t, stats)
        if agent.t % ckpt_every == 0 and agent.t < run_s.steps:
            save_run(ckpt, agent, curve, wall_before + time.perf_counter() - t_wall, meta)
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
    save_run(ckpt, agent, curve, wall, meta)
    logger.close()
    print(f"{args.variant}: final coverage {curve[-1]:.3f}, wall {wall:.1f} s, "
          f"MPPI {perf['perf/mppi_ms_per_call']:.2f} ms/call")
    return 0


def t_interval(x: np.ndarray, axis: int = 0):
    """Mean and half width of the 95 % Student-t interval of the mean along ``axis`` (0 for n = 1)."""
    from scipy import stats

    x = np.asarray(x, dtype=float)
    n = x.shape[axis]
    mean = x.mean(axis=axis)
    if n < 2:
        return mean, np.zeros_like(mean)
    half = stats.t.ppf(0.975, n - 1) * x.std(axis=axis, ddof=1) / np.sqrt(n)
    return mean, half


def eval_main(argv: List[str], name: str = "polo-maze") -> int:
    """Aggregate ``<runs>/*/summary.json`` by variant: coverage curves (mean and 95 % t-interval of
    the mean over the seeds, as a band) as a PNG, and a table with the per-seed final coverage."""
    import argparse

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    p = argparse.ArgumentParser(prog=f"dmpc eval {name}")
    p.add_argument("--runs", default=str(RUNS_DIR / name), help=f"folder of run directories (default runs/{name})")
    p.add_argument("--out", default=None, help=f"PNG path (default RUNS/{name}.png)")
    p.add_argument("--title", default="")
    args = p.parse_args(argv)
    if args.out is None:
        args.out = str(Path(args.runs) / f"{name}.png")
    groups = read_summaries(args.runs)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    colors = {"polo": "C0", "greedy": "C1", "random": "C2"}
    print("| variant | n | coverage @1000 [%] (mean, 95 % t-interval) | per seed [%] (seeds) | @200 / @500 [%] | MPPI ms/call | wall s/run |")
    print("|---|---|---|---|---|---|---|")
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
        mean, half = t_interval(c, axis=0)
        axes[0].plot(steps, 100 * mean, color=colors[v], label=f"{label} (n={len(runs)})")
        axes[0].fill_between(steps, 100 * (mean - half), 100 * (mean + half), color=colors[v], alpha=0.2)
        ms = np.mean([r.get("mppi_ms_per_call", np.nan) for r in runs])
        wall = np.mean([r.get("wall_s", np.nan) for r in runs])
        order = np.argsort([r["seed"] for r in runs])
        seeds = [runs[i]["seed"] for i in order]
        per_seed = " ".join(f"{100 * c[i, -1]:.1f}" for i in order)
        at = {k: 100 * c[:, min(k // runs[0]["curve_every"], n - 1)].mean() for k in (200, 500)}
        print(f"| {label} | {len(runs)} | {100 * mean[-1]:.1f} [{100 * (mean[-1] - half[-1]):.1f}, "
              f"{100 * (mean[-1] + half[-1]):.1f}] | {per_seed} ({seeds[0]}-{seeds[-1]}) | {at[200]:.1f} / {at[500]:.1f} "
              f"| {ms:.2f} | {wall:.0f} |")
    axes[0].set_xlabel("world steps")
    axes[0].set_ylabel("grid coverage [%], band: 95 % t-interval")
    axes[0].legend(loc="lower right", fontsize=8)
    axes[0].set_title(args.title or name)
    # value map + visited cells of the first POLO run
    shown = False
    for d in groups.get("polo", []):
        vm = Path(d["_dir"]) / "value_map.npy"
        if vm.exists():
            try:
                vm_data, vis = np.load(vm), np.load(Path(d["_dir"]) / "visited.npy")
            except (OSError, ValueError) as e:
                raise CliError(f"{vm.parent}: unreadable value_map.npy / visited.npy ({type(e).__name__}: {e})") from None
            im = axes[1].imshow(vm_data.T, origin="lower", extent=[-ARENA, ARENA, -ARENA, ARENA], cmap="coolwarm_r")
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
