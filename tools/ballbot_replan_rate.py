"""Does a critic that scores well in ``dmpc eval`` depend on how the node executes the actor?

    python tools/ballbot_replan_rate.py CRITIC.onnx [CRITIC.onnx ...] [--config config/ballbot_reach.yaml]

The node graph runs the Deep Value MPC actor of ``dmpc train ballbot-reach`` but not the way the
training loop does: the MPC re-plans as often as it can (60-70 Hz with one SLQ iteration per
solve, before ``reach.mpc.mpc_rate`` was set to 20 Hz), its states are a few milliseconds old,
and the goals lie in every direction. This script runs the same actor and critic on the same
plant (``dmpc_core.sim.plant.Plant`` at 5 ms) from 8 starts 1.5 m from the goal in 8 directions
(the main job's evaluation layout), once per execution setting:

* re-planning period 0.05 s (the actor's grid step, as in training) or 1/60 s;
* the state given to each solve delayed by 0 or 15 ms (the tracking loop always uses the
  current state, as the node's 400 Hz loop does).

Printed per setting: reached within 0.25 m at T, falls (tilt > the task's ``max_tilt``), the
largest tilt and the final distances. Critics: the learner node writes every exported critic to
``<checkpoint_dir>/critic_v<N>.onnx`` (``runs/main/learner/`` after ``make run``).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dmpc_core.agents.deep_value_mpc import Actor  # noqa: E402
from dmpc_core.experiments.ballbot_reach import load_config  # noqa: E402
from dmpc_core.sim.plant import Plant  # noqa: E402
from dmpc_core.tasks import ballbot  # noqa: E402
from dmpc_core.tasks.ballbot_walls import WallsTask  # noqa: E402

SETTINGS = [("0.05 s (training), no delay", 0.05, 0.0), ("0.05 s, 15 ms delay", 0.05, 0.015),
            ("1/60 s, no delay", 1 / 60, 0.0), ("1/60 s, 15 ms delay", 1 / 60, 0.015)]


def tilt(x: np.ndarray) -> float:
    return float(np.arccos(np.clip(np.cos(x[ballbot.PITCH]) * np.cos(x[ballbot.ROLL]), -1, 1)))


def episode(task: WallsTask, actor: Actor, plant: Plant, start, goal, replan: float, delay: float,
            step: float = 0.005):
    """One episode of T seconds: (reached, fell, largest tilt [rad], final distance [m])."""
    s = task.settings
    x = task.initial_state(start)
    plant.reset(x)
    mpc = actor.controller(goal, x)
    history = [(0.0, x.copy())]
    t, next_plan, top = 0.0, 0.0, 0.0
    end = task.steps * s.control_dt
    while t < end - 1e-9:
        if t >= next_plan - 1e-9:
            seen = max(0.0, t - delay)
            mpc.update(seen, [xx for tt, xx in history if tt <= seen + 1e-9][-1])
            next_plan += replan
        plant.step(plant.clip(mpc.control(plant.t, plant.x)), step)
        t += step
        history = (history + [(t, plant.x.copy())])[-40:]
        if not np.all(np.isfinite(plant.x)):
            return False, True, float("nan"), float("nan")
        top = max(top, tilt(plant.x))
        if top > s.max_tilt:
            return False, True, top, float(np.hypot(*(plant.x[:2] - goal)))
    d = float(np.hypot(*(plant.x[:2] - goal)))
    return d < s.success_tolerance, False, top, d


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("critics", nargs="+")
    ap.add_argument("--config", default=None)
    args = ap.parse_args(argv)
    cfg = load_config(args.config)
    task = WallsTask(cfg.task)
    goal = np.zeros(2)
    angles = np.arange(8) * 2 * np.pi / 8 + np.arctan2(0.29, 1.47)
    starts = [(-1.5 * np.cos(a), -1.5 * np.sin(a)) for a in angles]
    print("| critic | re-planning period, state delay | reached | falls | largest tilt [deg] | final distance [m] |")
    print("|---|---|---|---|---|---|")
    for path in args.critics:
        actor = Actor(task, cfg.actor)
        actor.set_critic_bundle(Path(path).read_bytes())
        plant = Plant(actor.model, np.zeros(ballbot.NX), task.plant_settings(12345))
        for name, replan, delay in SETTINGS:
            res = [episode(task, actor, plant, st, goal, replan, delay) for st in starts]
            tops = [np.rad2deg(r[2]) for r in res]
            print(f"| {Path(path).parent.parent.name}/{Path(path).name} | {name} | {sum(r[0] for r in res)}/8 | "
                  f"{sum(r[1] for r in res)} | {np.nanmax(tops):.1f} | "
                  f"{', '.join(f'{r[3]:.2f}' for r in res)} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
