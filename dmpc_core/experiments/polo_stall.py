"""Why a POLO run stalls: one run with snapshots of the value and of the acting planner.

    python -m dmpc_core.experiments.polo_stall --config config/polo_maze.yaml --seed 5 \
        [--variant polo|greedy] [--steps 1000] [--snap 200,500,1000] [--set KEY=VALUE ...] --out DIR

Runs the agent exactly as ``dmpc train polo-maze`` does (same construction, same step loop) and, at
each snapshot step, measures without touching the run (fresh solvers, own seeds):

- value field on the free cells of the coverage grid (v = 0): member std at visited / unvisited
  cells, the optimism (member mean - soft-min aggregate) there, the spread (std) of the member
  mean and of the aggregate over the free cells, and the lowest aggregate among unvisited cells
  (where, and how far from the agent);
- acting planner: the acting MPPI re-solved 5 times from its own plan against the final value
  ("warm") and from D = 16 straight full-throttle plans ("best start"); their nominal costs, split
  into the running (wall) part and gamma^H V(s_H), and the gap in units of lambda; the effective
  sample size; the spread of gamma^H V(s_H) over the samples relative to lambda;
- the agent's speed and how many of the last 100 steps it stayed within 0.1 m of a wall.

Writes ``DIR/stall.json`` (all numbers, trajectory), ``DIR/stall.png`` (per snapshot: member std
map with visited cells and the trajectory; aggregate value map with the warm and best plans).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import torch

from dmpc_core import _core
from dmpc_core.agents.polo import PoloAgent, ensemble_to_native
from dmpc_core.experiments._common import load_config
from dmpc_core.experiments.polo_maze import SECTIONS, build
from dmpc_core.tasks.point_mass_worlds import ARENA, PointMassWorld, obstacles


@torch.no_grad()
def value_field(agent: PoloAgent) -> Dict[str, np.ndarray]:
    """Member values [n, n, K] and aggregate [n, n] at the coverage-grid cell centres (v = 0)."""
    w = agent.world
    n = w.visited.shape[0]
    edges = np.linspace(-ARENA, ARENA, n + 1)
    cc = 0.5 * (edges[:-1] + edges[1:])
    px, py = np.meshgrid(cc, cc, indexing="ij")
    st = np.zeros((n * n, agent.nx))
    st[:, 0], st[:, 1] = px.ravel(), py.ravel()
    x, tau = torch.from_numpy(st), torch.zeros(n * n, 1)
    members = agent.trainer.target.member_values(x, None, tau).numpy().reshape(n, n, -1)
    agg = agent.trainer.target(x, None, tau).numpy().reshape(n, n)
    return {"centres": cc, "members": members, "aggregate": agg}


def _probe_solver(agent: PoloAgent, seed: int):
    s = agent.settings.mppi
    cfg = s.to_core(agent.dt, agent.u_max, agent.nu, seed=seed)
    term = ensemble_to_native(agent.trainer.target)
    return _core.MppiSolver(agent.dynamics, agent.running_cost, term, cfg), term


def plan_split(agent: PoloAgent, term, r) -> Dict[str, float]:
    """Nominal cost of an MPPI result split into the discounted running (wall) part and gamma^H V(s_H)."""
    s = agent.settings.mppi
    d = term.create_data()
    xs = np.array(r.nominal_states)
    term.calc(d, 0.0, xs[-1], np.zeros(0))
    terminal = s.gamma ** s.horizon * d.value
    return {"cost": float(r.nominal_cost), "terminal": float(terminal), "running": float(r.nominal_cost - terminal),
            "V_end": float(d.value), "end": xs[-1, :2].tolist(), "ess": float(r.effective_sample_size),
            "cost_std": float(r.cost_std)}


def planner_probe(agent: PoloAgent, starts: int = 16, iters: int = 5) -> Dict:
    """Acting MPPI from its own plan vs from straight full-throttle plans (``starts`` directions)."""
    x = np.array(agent.world.state)
    lam = agent.settings.mppi.lambda_
    h = agent.settings.mppi.horizon
    solver, term = _probe_solver(agent, seed=991 + agent.t)
    solver.set_plan(np.array(agent.solver.plan))
    for _ in range(iters):
        solver.set_state(x, 0.0)
        r = solver.optimize()
    warm = plan_split(agent, term, r)
    warm["plan_xy"] = np.array(r.nominal_states)[:, :2].tolist()
    best: Optional[Dict] = None
    for a in 2 * np.pi * np.arange(starts) / starts:
        solver.set_plan(np.tile(agent.u_max * np.array([np.cos(a), np.sin(a)]), (h, 1)))
        for _ in range(iters):
            solver.set_state(x, 0.0)
            r = solver.optimize()
        cand = plan_split(agent, term, r)
        if best is None or cand["cost"] < best["cost"]:
            best = cand
            best["plan_xy"] = np.array(r.nominal_states)[:, :2].tolist()
    return {"warm": warm, "best_start": best, "gap_lambda": (warm["cost"] - best["cost"]) / lam,
            "terminal_weight": agent.settings.mppi.gamma ** h, "lambda": lam}


def snapshot(agent: PoloAgent, traj: np.ndarray) -> Dict:
    w = agent.world
    f = value_field(agent)
    m, agg = f["members"], f["aggregate"]
    free, vis = w.free_cells, w.visited & w.free_cells
    unv = free & ~w.visited
    std = m.std(axis=2)
    optimism = m.mean(axis=2) - agg
    out = {"t": agent.t, "coverage": w.coverage(), "pos": w.state[:2].tolist(),
           "speed_last100": float(np.mean(np.linalg.norm(np.diff(traj[-101:, :2], axis=0), axis=1)) / agent.dt),
           "member_std_visited": float(std[vis].mean()), "member_std_unvisited": float(std[unv].mean()) if unv.any() else 0.0,
           "optimism_visited": float(optimism[vis].mean()), "optimism_unvisited": float(optimism[unv].mean()) if unv.any() else 0.0,
           "mean_spread": float(m.mean(axis=2)[free].std()), "aggregate_spread": float(agg[free].std()),
           "aggregate_visited": float(agg[vis].mean()), "aggregate_unvisited": float(agg[unv].mean()) if unv.any() else 0.0,
           "beta": float(agent.ensemble.prior_beta), "kappa": float(agent.ensemble.kappa)}
    cc = f["centres"]
    if unv.any():
        ii, jj = np.nonzero(unv)
        k = int(np.argmin(agg[ii, jj]))
        out["best_unvisited"] = [float(cc[ii[k]]), float(cc[jj[k]])]
        out["best_unvisited_V"] = float(agg[ii[k], jj[k]])
        out["best_unvisited_dist"] = float(np.hypot(cc[ii[k]] - w.state[0], cc[jj[k]] - w.state[1]))
        near = np.hypot(cc[ii] - w.state[0], cc[jj] - w.state[1]) < 1.0
        out["best_unvisited_within_1m_V"] = float(agg[ii[near], jj[near]].min()) if near.any() else None
    i0, j0 = w.cell_of(*w.state[:2])
    out["V_here"] = float(agg[i0, j0])
    out["planner"] = planner_probe(agent)
    out["_maps"] = {"std": std, "aggregate": agg, "visited": w.visited.copy()}
    return out


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m dmpc_core.experiments.polo_stall")
    p.add_argument("--config", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--variant", choices=("polo", "greedy"), default="polo")
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--snap", default="200,500,1000", help="comma-separated snapshot steps")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    world_s, agent_s, _ = build(load_config(args.config, args.set, SECTIONS), args.config)
    if args.variant == "greedy":
        agent_s.mppi.horizon = 1
    snaps = sorted(int(s) for s in args.snap.split(","))
    world = PointMassWorld(world_s)
    agent = PoloAgent(world, agent_s, seed=args.seed)
    traj = [world.state.copy()]
    out_snaps = []
    while agent.t < args.steps:
        agent.step()
        traj.append(world.state.copy())
        if agent.t in snaps:
            out_snaps.append(snapshot(agent, np.array(traj)))
            s = out_snaps[-1]
            pl = s["planner"]
            print(f"t={s['t']} cov={100 * s['coverage']:.1f}% pos=({s['pos'][0]:.2f},{s['pos'][1]:.2f}) "
                  f"speed={s['speed_last100']:.2f} std vis/unv={s['member_std_visited']:.2f}/{s['member_std_unvisited']:.2f} "
                  f"opt vis/unv={s['optimism_visited']:.2f}/{s['optimism_unvisited']:.2f} spread={s['aggregate_spread']:.2f} "
                  f"V here={s['V_here']:.2f} best unv={s.get('best_unvisited_V', 0):.2f}@{s.get('best_unvisited_dist', 0):.2f}m "
                  f"gap={pl['gap_lambda']:.1f} lambda (warm run/term {pl['warm']['running']:.4f}/{pl['warm']['terminal']:.4f}, "
                  f"best {pl['best_start']['running']:.4f}/{pl['best_start']['terminal']:.4f}) ess={pl['warm']['ess']:.1f}",
                  flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    maps = [s.pop("_maps") for s in out_snaps]
    (out / "stall.json").write_text(json.dumps({"config": args.config, "seed": args.seed, "variant": args.variant,
                                                "set": args.set, "snapshots": out_snaps,
                                                "trajectory": np.array(traj)[:, :2].tolist()}, indent=1))
    np.savez(out / "stall_maps.npz", **{f"{k}_{s['t']}": v for s, m in zip(out_snaps, maps) for k, v in m.items()})
    plot(out / "stall.png", world_s.world, out_snaps, maps, np.array(traj), f"{args.variant} seed {args.seed}")
    return 0


def plot(path: Path, world: str, snaps: List[Dict], maps: List[Dict], traj: np.ndarray, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(snaps)
    fig, axes = plt.subplots(2, n, figsize=(4.2 * n, 7.6), squeeze=False)
    ext = [-ARENA, ARENA, -ARENA, ARENA]
    for c, (s, m) in enumerate(zip(snaps, maps)):
        vis = m["visited"]
        g = vis.shape[0]
        edges = np.linspace(-ARENA, ARENA, g + 1)
        cc = 0.5 * (edges[:-1] + edges[1:])
        ii, jj = np.nonzero(vis)
        for r, (key, cmap, label) in enumerate((("std", "viridis", "member std"),
                                                ("aggregate", "coolwarm_r", "aggregate V (low = attractive)"))):
            ax = axes[r, c]
            im = ax.imshow(m[key].T, origin="lower", extent=ext, cmap=cmap)
            plt.colorbar(im, ax=ax, fraction=0.046, label=label)
            ax.scatter(cc[ii], cc[jj], s=3, c="w" if r == 0 else "k", marker="s")
            for xmin, xmax, ymin, ymax in obstacles(world):
                ax.add_patch(plt.Rectangle((xmin, ymin), xmax - xmin, ymax - ymin, color="0.5"))
            if r == 0:
                ax.plot(traj[: s["t"] + 1, 0], traj[: s["t"] + 1, 1], "w-", lw=0.5)
                ax.set_title(f"{title}, t={s['t']}: cov {100 * s['coverage']:.1f} %\n"
                             f"std vis/unv {s['member_std_visited']:.2f}/{s['member_std_unvisited']:.2f}", fontsize=9)
            else:
                for key2, col in (("warm", "k"), ("best_start", "m")):
                    xy = np.array(s["planner"][key2]["plan_xy"])
                    ax.plot(xy[:, 0], xy[:, 1], "-", color=col, lw=1.2, label=key2)
                ax.legend(fontsize=7, loc="upper left")
                ax.set_title(f"plan gap {s['planner']['gap_lambda']:.1f} lambda", fontsize=9)
            ax.set_xlim(-ARENA, ARENA)
            ax.set_ylim(-ARENA, ARENA)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
