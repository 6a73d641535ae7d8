"""Ensemble disagreement of finished POLO runs (docs/results/polo.md).

    python -m dmpc_core.experiments.polo_diagnostics --config config/polo_maze.yaml runs/polo_maze/polo_s* \
        [--greedy] [--plot disagreement.png]

Loads each run's checkpoint and prints :meth:`PoloAgent.disagreement` (mean member std, optimism =
member mean - soft-min aggregate, and aggregate value over the visited / unvisited free cells at
v = 0; the unvisited optimism weighted by gamma^H in units of the acting lambda) next to the
coverage. ``--plot`` draws, per run, the member std on the coverage grid with the visited cells.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import List, Optional

import numpy as np

from dmpc_core.agents.polo import PoloAgent
from dmpc_core.experiments._common import load_config, resume_run
from dmpc_core.experiments.polo_maze import build
from dmpc_core.tasks.point_mass_worlds import ARENA, PointMassWorld, obstacles


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m dmpc_core.experiments.polo_diagnostics")
    p.add_argument("--config", required=True, help="the config the runs were trained with")
    p.add_argument("--greedy", action="store_true", help="the runs are greedy (H = 1) runs")
    p.add_argument("--plot", default=None, help="PNG of the member std maps with the visited cells")
    p.add_argument("runs", nargs="+", help="run directories holding checkpoint.pt")
    args = p.parse_args(argv)
    print("| run | coverage [%] | member std visited / unvisited (ratio) | optimism visited / unvisited "
          "| unvisited optimism x gamma^H / lambda | aggregate V visited / unvisited |")
    print("|---|---|---|---|---|---|")
    maps = []
    for run in args.runs:
        world_s, agent_s, _ = build(load_config(args.config), args.config)
        if args.greedy:
            agent_s.mppi.horizon = 1
        agent = PoloAgent(PointMassWorld(world_s), agent_s, seed=0)
        resume_run(Path(run) / "checkpoint.pt", agent)
        d = agent.disagreement()
        print(f"| {run} | {100 * agent.world.coverage():.1f} | {d['member_std_visited']:.2f} / "
              f"{d['member_std_unvisited']:.2f} ({d['std_ratio']:.2f}) | {d['optimism_visited']:.2f} / "
              f"{d['optimism_unvisited']:.2f} | {d['optimism_steer_unvisited']:.0f} | "
              f"{d['value_visited']:.2f} / {d['value_unvisited']:.2f} |")
        if args.plot:
            maps.append((Path(run).name, agent.member_std_map(), agent.world.visited.copy(), agent.world.coverage(),
                         d, world_s.world))
    if args.plot:
        plot(args.plot, maps)
    return 0


def plot(path: str, maps) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(maps)
    cols = min(n, 5)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.3 * rows), squeeze=False)
    vmax = max(float(m[1].max()) for m in maps)
    for ax, (name, std, vis, cov, d, world) in zip(axes.ravel(), maps):
        im = ax.imshow(std.T, origin="lower", extent=[-ARENA, ARENA, -ARENA, ARENA], cmap="viridis", vmin=0, vmax=vmax)
        g = vis.shape[0]
        edges = np.linspace(-ARENA, ARENA, g + 1)
        cc = 0.5 * (edges[:-1] + edges[1:])
        ii, jj = np.nonzero(vis)
        ax.scatter(cc[ii], cc[jj], s=2, c="w", marker="s")
        for xmin, xmax, ymin, ymax in obstacles(world):
            ax.add_patch(plt.Rectangle((xmin, ymin), xmax - xmin, ymax - ymin, color="0.6"))
        ax.set_title(f"{name}: cov {100 * cov:.1f} %\nstd visited {d['member_std_visited']:.2f} / "
                     f"unvisited {d['member_std_unvisited']:.2f}", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    fig.colorbar(im, ax=axes.ravel().tolist(), fraction=0.02, label="member std of V (white: visited cells)")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print(f"wrote {path}")


if __name__ == "__main__":
    raise SystemExit(main())
