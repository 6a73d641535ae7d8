"""Feasibility check of the Ballbot reach layout: how fast can a converged MPC reach the target?

    python tools/ballbot_reach_feasibility.py [--config config/ballbot_reach.yaml] [--iterations 5]

From each evaluation start of the config, a goal-tracking SLQ-MPC with full knowledge of the goal
(``ReachMpc`` without a critic: quadratic position tracking, upright term, LQR tail; 1 s horizon,
``--iterations`` SLQ iterations per control step, 30 for the first solve) drives the same plant
as the experiment (torque limit, physics step, control step and tracking substeps of the task).
Printed per start: the first time after which the ball stays within ``success_tolerance`` of the
target, and whether it is there at T. T has margin when every start settles well before T.
This is the tracking cost, not the task's distance cost: it checks that the layout is reachable
in T by this robot and plant, not what an optimal controller of the task cost would do.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dmpc_core.control.reach_mpc import ReachMpc, ReachSettings  # noqa: E402
from dmpc_core.experiments.ballbot_reach import load_config  # noqa: E402
from dmpc_core.mpc import MpcSettings  # noqa: E402
from dmpc_core.sim.plant import Plant  # noqa: E402
from dmpc_core.tasks.ballbot_walls import WallsTask  # noqa: E402


def reach_times(config_path=None, iterations: int = 5, horizon_s: float = 1.0, dt: float = 0.05, t_max: float = 0.0):
    cfg = load_config(config_path)
    task = WallsTask(cfg.task)
    s = task.settings
    t_max = t_max or s.episode_time
    goal = np.asarray(s.target, float)
    out = []
    for start in s.eval_starts:
        reach = ReachMpc(ReachSettings(mpc=MpcSettings(horizon=int(round(horizon_s / dt)), dt=dt,
                                                       iterations_per_update=iterations, initial_iterations=30)), goal)
        x = task.initial_state(start)
        plant = Plant(reach.model, x, task.plant_settings(0))
        plant.reset(x)
        sub = s.control_dt / s.tracking_substeps
        settled, dist_T, fell = None, None, False
        for k in range(int(round(t_max / s.control_dt))):
            t = k * s.control_dt
            reach.update(t, x)
            for _ in range(s.tracking_substeps):
                plant.step(plant.clip(reach.mpc.control(plant.t, plant.x)), sub)
            x = plant.x.copy()
            if task.fallen(x):
                fell = True
                break
            d = float(np.hypot(*(x[:2] - goal)))
            settled = (settled if settled is not None else t + s.control_dt) if d < s.success_tolerance else None
            if abs(t + s.control_dt - s.episode_time) < 1e-9:
                dist_T = d
        out.append({"start": list(start), "settled_s": settled, "distance_at_T": dist_T, "fell": fell})
    return out, s.episode_time


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default=None)
    ap.add_argument("--iterations", type=int, default=5, help="SLQ iterations per control step")
    args = ap.parse_args(argv)
    res, T = reach_times(args.config, args.iterations, t_max=0.0)
    for r in res:
        print(json.dumps(r))
    ok = [r["distance_at_T"] is not None and r["distance_at_T"] < 0.25 and not r["fell"] for r in res]
    worst = max((r["settled_s"] or np.inf) for r in res)
    print(f"reached at T = {T} s: {sum(ok)}/{len(ok)}; slowest start settles at {worst:.2f} s "
          f"(margin {T - worst:.2f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
