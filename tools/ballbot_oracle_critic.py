"""Upper bound for the Deep Value MPC actor on the Ballbot walls task: how far does the actor get
in one episode when its critic is (nearly) right?

    python tools/ballbot_oracle_critic.py [--config config/ballbot_walls.yaml] [--set KEY=VALUE ...]

Fits the critic network (same architecture, normalisation and export path as training) by
regression to a hand-made value V(x, tau) = tau * d(p + lead * v, goal) (the time-to-go times
the distance of a short-term prediction of the position), then runs the actor from the 8
evaluation starts and prints the outcome, final distance and maximum tilt per start.
Without ``--with-walls`` d is the Euclidean distance and the arena has NO interior wall; with
``--with-walls`` the interior walls stay and d is the geodesic distance around them
(``WallsTask.geodesic_distance``, clearance robot radius + ``--margin``): a wall-aware upper
bound, used to choose a layout that the actor can solve in the episode time. If the actor cannot reach the target in the episode time even
with this value, no learned value will make it succeed: the actor's cost weights (tilt terms, R)
bound its speed. Used for docs/log/2026-12-07-ballbot-walls-history.md.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dmpc_core.agents.deep_value_mpc import DeepValueMpc, run_episode  # noqa: E402
from dmpc_core.experiments.ballbot_walls import load_config  # noqa: E402
from dmpc_core.settings import parse_overrides as parse_sets  # noqa: E402
from dmpc_core.sim.plant import Plant  # noqa: E402
from dmpc_core.tasks import ballbot  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ballbot_walls_known_value import fit_critic  # noqa: E402


def oracle_value(task, X: np.ndarray, tau: np.ndarray, goal: np.ndarray, lead: float, geodesic: bool = False,
                 margin: float = 0.05, wall_weight: float = 0.0, wall_width: float = 0.05,
                 tau_offset: float = 0.0) -> np.ndarray:
    """The hand-made value: (tau + tau_offset) * d(q, goal) + wall_weight * sigmoid((r + margin - clearance(q)) / width),
    q = p + lead * v, d Euclidean or geodesic; the sigmoid is the wall penalty of an approach the
    robot cannot stop (every wall, the arena's boundary included)."""
    q = X[:, :2] + lead * X[:, 5:7]
    y = (tau + tau_offset) * (task.geodesic_distance(q, goal, margin) if geodesic else np.linalg.norm(q - goal, axis=1))
    if wall_weight > 0:
        z = (task.settings.robot_radius + margin - task.clearance(q[:, 0], q[:, 1])) / wall_width
        y = y + wall_weight / (1.0 + np.exp(-np.clip(z, -50, 50)))
    return y


def fit_oracle(agent: DeepValueMpc, lead: float, steps: int, seed: int = 0, geodesic: bool = False,
               margin: float = 0.05, wall_weight: float = 0.0, wall_width: float = 0.05,
               tau_offset: float = 0.0) -> float:
    import torch

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    task = agent.task
    g = np.asarray(task.settings.target, float)
    half = task.settings.arena_half_size
    n = 20000
    X = np.zeros((n, ballbot.NX))
    X[:, :2] = rng.uniform(-half, half, (n, 2))
    X[:, 5:7] = rng.normal(0.0, 0.7, (n, 2))
    X[:, 3:5] = rng.normal(0.0, 0.05, (n, 2))
    X[:, 8:10] = rng.normal(0.0, 0.3, (n, 2))
    tau = rng.uniform(0.0, task.settings.episode_time, n)
    y = oracle_value(task, X, tau, g, lead, geodesic, margin, wall_weight, wall_width, tau_offset)
    return fit_critic(agent, X, np.tile(g, (n, 1)), tau, y, steps)[0]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default=None)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--lead", type=float, default=0.3, help="[s] velocity lead in the oracle value")
    ap.add_argument("--steps", type=int, default=1500, help="regression steps")
    ap.add_argument("--with-walls", action="store_true",
                    help="keep the interior walls and use the geodesic (wall-aware) value")
    ap.add_argument("--margin", type=float, default=0.05, help="[m] geodesic clearance beyond the robot radius")
    ap.add_argument("--wall-weight", type=float, default=0.0,
                    help="height of the sigmoid wall term of the value (0 = none; the wall penalty is 10)")
    ap.add_argument("--wall-width", type=float, default=0.05, help="[m] width of the sigmoid wall term")
    ap.add_argument("--tau-offset", type=float, default=0.0,
                    help="[s] value (tau + offset) * d: keeps a pull to the target near the episode end")
    ap.add_argument("--fit-seed", type=int, default=0, help="seed of the regression (initial weights, samples)")
    ap.add_argument("--critic-cache", default=None, metavar="PATH",
                    help="save the fitted critic's state here, or load it if the file exists (the file is not keyed: the fit "
                         "depends only on the value options, the task and learner.hidden; reuse it only across "
                         "actor settings)")
    ap.add_argument("--trajectories", default=None, metavar="NPZ", help="save the 8 trajectories (xs) here")
    args = ap.parse_args(argv)
    overrides = parse_sets(args.set)
    if not args.with_walls:
        overrides.setdefault("task.walls", [])
    cfg = load_config(args.config, overrides)
    agent = DeepValueMpc(cfg)
    if args.critic_cache and Path(args.critic_cache).exists():
        import torch

        state = torch.load(args.critic_cache)
        agent.learner.trainer.model.load_state_dict(state["model"])
        agent.learner.trainer.target.load_state_dict(state["model"])
        agent.actor.set_critic_bundle(agent.learner.export())
        loss = float(state["loss"])
    else:
        loss = fit_oracle(agent, args.lead, args.steps, seed=args.fit_seed, geodesic=args.with_walls, margin=args.margin,
                          wall_weight=args.wall_weight, wall_width=args.wall_width, tau_offset=args.tau_offset)
        if args.critic_cache:
            import torch

            torch.save({"model": agent.learner.trainer.model.state_dict(), "loss": loss}, args.critic_cache)
    task = agent.task
    goal = np.asarray(task.settings.target, float)
    plant = Plant(agent.actor.model, np.zeros(ballbot.NX), task.plant_settings(1))
    print(f"oracle fit mse {loss:.4f}; mode {cfg.actor.mode}, H {cfg.actor.horizon_time} s, walls {cfg.task.walls}")
    print("| start | blocked | outcome | start distance [m] | final distance [m] | max tilt [rad] |")
    print("|---|---|---|---|---|---|")
    finals, outcomes, solve, steps, trajs = [], [], 0.0, 0, []
    for st in task.settings.eval_starts:
        ep = run_episode(task, agent.actor, st, goal, plant)
        finals.append(ep.final_distance)
        outcomes.append(ep.outcome)
        solve, steps = solve + ep.solve_time, steps + len(ep.costs)
        trajs.append(ep.xs)
        print(f"| {tuple(st)} | {task.blocks_straight_line(st, goal)} | {ep.outcome} | {np.hypot(*(np.asarray(st) - goal)):.2f} | "
              f"{ep.final_distance:.2f} | {ballbot.tilt(ep.xs).max():.2f} |")
    tol = task.settings.success_tolerance
    print(f"successes {sum(o == 'timeout' and f < tol for o, f in zip(outcomes, finals))}/{len(finals)} "
          f"(< {tol} m), max final distance {max(finals):.3f} m")
    print(f"walls {outcomes.count('wall')}, falls {outcomes.count('fall')}, "
          f"mean final distance {np.mean(finals):.3f} m, SLQ time per control step {1e3 * solve / max(steps, 1):.1f} ms")
    print(f"oracle_mean_final_distance={np.mean(finals):.3f}")
    if args.trajectories:
        np.savez(args.trajectories, *trajs, starts=np.asarray(task.settings.eval_starts, float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
