"""Ensemble disagreement of finished POLO runs (docs/results/polo.md, issue 7).

    python -m dmpc_core.experiments.polo_diagnostics --config config/polo_maze.yaml runs/polo_maze/polo_s*

Loads each run's checkpoint and prints :meth:`PoloAgent.disagreement` (mean member std and
aggregate value over the visited / unvisited free cells at v = 0) next to the coverage.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import List, Optional

from dmpc_core.agents.polo import PoloAgent
from dmpc_core.experiments._common import load_config, resume_run
from dmpc_core.experiments.polo_maze import build
from dmpc_core.tasks.point_mass_worlds import PointMassWorld


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m dmpc_core.experiments.polo_diagnostics")
    p.add_argument("--config", required=True, help="the config the runs were trained with")
    p.add_argument("--greedy", action="store_true", help="the runs are greedy (H = 1) runs")
    p.add_argument("runs", nargs="+", help="run directories holding checkpoint.pt")
    args = p.parse_args(argv)
    print("| run | coverage [%] | member std visited / unvisited (ratio) | aggregate V visited / unvisited |")
    print("|---|---|---|---|")
    for run in args.runs:
        world_s, agent_s, _ = build(load_config(args.config), args.config)
        if args.greedy:
            agent_s.mppi.horizon = 1
        agent = PoloAgent(PointMassWorld(world_s), agent_s, seed=0)
        resume_run(Path(run) / "checkpoint.pt", agent)
        d = agent.disagreement()
        print(f"| {run} | {100 * agent.world.coverage():.1f} | {d['member_std_visited']:.2f} / "
              f"{d['member_std_unvisited']:.2f} ({d['std_ratio']:.2f}) | {d['value_visited']:.2f} / {d['value_unvisited']:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
