"""Feasibility of the Deep Value MPC actor with a known-good, wall-aware value on Ballbot walls.

    python tools/ballbot_walls_known_value.py [--config config/ballbot_walls.yaml] [--leads 0.3 0.6]
        [--times 3 4 5] [--offset 2] [--wall-weight 10] [--modes running+terminal terminal]
        [--fit-seeds 0] [--save-critic runs/walls_kv/L{lead}_T{T}_f{fit_seed}.pt] [--set KEY=VALUE ...]

Learning can only be as good as the actor is with a good value. For every look-ahead L
(``learner.lead`` and ``task.terminal_lead``) and episode time T (``task.episode_time``, the
critic's ``time_to_go_scale`` = T / 2) this script fits the experiment's own critic (exported and
evaluated natively exactly as in training) to the hand-made value

    V(tau, x) = (tau + offset) * geo(q) + wall_weight * sigmoid((r + margin - clearance(q)) / width),
    q = p + L v,

geo the length of the shortest path round the interior walls (``WallsTask.geodesic_distance``)
and the sigmoid a wall term as high as the wall penalty where the look-ahead point q is too close to
a wall (arena boundary included). offset = ``task.terminal_weight`` makes V(0, x) the Eq. (4)
termination cost where the goal is in sight. It then runs the unmodified Algorithm 1 actor (one
SLQ iteration per control step, no wall knowledge) from the 8 evaluation starts in each actor
mode and prints successes, wall contacts, falls, the mean final distance and the first time
each start is within the success tolerance. ``--save-critic`` writes the fitted critic state in
the format ``training.init_critic`` reads (the stability test starts Algorithm 1 from it).

The sibling of tools/ballbot_reach_known_value.py (the reach task: a cone in the look-ahead point,
no wall); results in docs/results/ballbot_walls.md.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dmpc_core.agents.deep_value_mpc import DeepValueMpc, evaluate  # noqa: E402
from dmpc_core.experiments.ballbot_walls import load_config  # noqa: E402
from dmpc_core.settings import parse_overrides  # noqa: E402
from dmpc_core.tasks import ballbot  # noqa: E402


def wall_aware_value(task, X: np.ndarray, tau: np.ndarray, lead: float, offset: float, wall_weight: float,
                     margin: float = 0.05, width: float = 0.05, distance: str = "geodesic") -> np.ndarray:
    """The hand-made value above for states X (n, nx) at time-to-go tau (n,), goal = task target.
    ``distance`` "euclid" replaces geo(q) by the straight-line distance ||q - g|| (the value of
    standing still, which knows nothing of the wall; the wall term still does)."""
    g = np.asarray(task.settings.target, float)
    q = X[:, :2] + lead * X[:, 5:7]
    if distance == "geodesic":
        dist = task.geodesic_distance(q, g, margin)
    elif distance == "euclid":
        dist = np.linalg.norm(q - g, axis=1)
    else:
        raise ValueError("distance must be 'geodesic' or 'euclid'")
    y = (tau + offset) * dist
    if wall_weight > 0:
        z = (task.settings.robot_radius + margin - task.clearance(q[:, 0], q[:, 1])) / width
        y = y + wall_weight / (1.0 + np.exp(-np.clip(z, -50, 50)))
    return y


def sample_states(task, rng: np.random.Generator, n: int) -> tuple:
    """Upright states spread over the arena (and a little beyond), velocities N(0, 0.8 m/s),
    time-to-go uniform in [0, T]."""
    half = task.settings.arena_half_size
    X = np.zeros((n, ballbot.NX))
    X[:, :2] = rng.uniform(-half - 0.2, half + 0.2, (n, 2))
    X[:, 5:7] = rng.normal(0.0, 0.8, (n, 2))
    tau = rng.uniform(0.0, task.settings.episode_time, n)
    return X, tau


def fit_value(agent: DeepValueMpc, lead: float, offset: float, wall_weight: float, seed: int = 0,
              samples: int = 20000, steps: int = 4000, distance: str = "geodesic") -> float:
    """Fit the agent's critic (model and target network, from fresh weights) to the wall-aware
    value; the actor gets the exported critic. Returns the MSE on the whole sample set."""
    import torch

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    task = agent.task
    X, tau = sample_states(task, rng, samples)
    y = wall_aware_value(task, X, tau, lead, offset, wall_weight, distance=distance)
    G = np.tile(np.asarray(task.settings.target, float), (samples, 1))
    return fit_critic(agent, X, G, tau, y, steps)[1]


def fit_critic(agent: DeepValueMpc, X: np.ndarray, G: np.ndarray, tau: np.ndarray, y: np.ndarray,
               steps: int) -> tuple:
    """Regress the agent's critic, from fresh weights (torch's RNG as seeded by the caller), on
    the values ``y`` at (state ``X``, goal ``G``, time-to-go ``tau``): Adam 1e-2 with a cosine
    decay to 1e-4, minibatches of 512. The target network gets the same weights, the actor the
    exported critic. Returns (last minibatch MSE, MSE on all samples)."""
    import torch

    Xt, Gt, Tt, Yt = (torch.from_numpy(np.asarray(a, float)) for a in (X, G, np.reshape(tau, -1), y))
    net = agent.learner.trainer.model
    with torch.no_grad():
        for layer in net.layers:
            layer.reset_parameters()
    opt = torch.optim.Adam(net.parameters(), 1e-2)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps, eta_min=1e-4)
    for _ in range(steps):
        i = torch.randint(0, len(Yt), (512,))
        loss = ((net(Xt[i], Gt[i], Tt[i]) - Yt[i]) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    with torch.no_grad():
        mse = float(((net(Xt, Gt, Tt) - Yt) ** 2).mean())
    agent.learner.trainer.target.load_state_dict(net.state_dict())
    agent.bundle = agent.learner.export()
    agent.actor.set_critic_bundle(agent.bundle)
    return float(loss.detach()), mse


def first_within(ep, goal, tol: float, dt: float):
    d = np.hypot(ep.xs[:, 0] - goal[0], ep.xs[:, 1] - goal[1])
    return round(float(np.argmax(d < tol)) * dt, 2) if np.any(d < tol) else None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default=None)
    ap.add_argument("--leads", type=float, nargs="+", default=[0.3, 0.6], help="[s] look-aheads L")
    ap.add_argument("--times", type=float, nargs="+", default=[3.0, 4.0, 5.0], help="[s] episode times T")
    ap.add_argument("--offset", type=float, default=None, help="[s] default: task.terminal_weight")
    ap.add_argument("--wall-weight", type=float, default=10.0, help="height of the wall term (the wall penalty is 10)")
    ap.add_argument("--distance", choices=["geodesic", "euclid"], default="geodesic",
                    help="geo(q) round the wall, or the straight-line distance (no wall knowledge but the wall term)")
    ap.add_argument("--modes", nargs="+", default=["running+terminal", "terminal"])
    ap.add_argument("--fit-seeds", type=int, nargs="+", default=[0], help="seeds of the regression")
    ap.add_argument("--steps", type=int, default=4000, help="regression steps")
    ap.add_argument("--save-critic", default=None, metavar="PATTERN",
                    help="write each fitted critic state here ({lead}, {T}, {fit_seed} are filled in)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--json", default=None, help="append one JSON line per setting to this file")
    args = ap.parse_args(argv)
    rows = []
    for T in args.times:
        for lead in args.leads:
            for fit_seed in args.fit_seeds:
                over = parse_overrides(args.set)
                over.update({"learner.lead": lead, "task.terminal_lead": lead, "task.episode_time": T,
                             "learner.time_to_go_scale": T / 2.0})
                cfg = load_config(args.config, over)
                if cfg.learner.critic != "lead":
                    raise SystemExit("this check fits the look-ahead-point critic (learner.critic: lead)")
                offset = cfg.task.terminal_weight if args.offset is None else args.offset
                t0 = time.time()
                agent = DeepValueMpc(cfg)
                mse = fit_value(agent, lead, offset, args.wall_weight, fit_seed, steps=args.steps, distance=args.distance)
                if args.save_critic:
                    import torch

                    path = Path(args.save_critic.format(lead=lead, T=T, fit_seed=fit_seed))
                    path.parent.mkdir(parents=True, exist_ok=True)
                    torch.save({"model": agent.learner.trainer.model.state_dict(), "loss": mse}, path)
                goal = np.asarray(cfg.task.target, float)
                tol = cfg.task.success_tolerance
                for mode in args.modes:
                    agent.actor.settings.mode = mode
                    res = evaluate(agent.task, agent.actor)
                    eps = res["episodes"]
                    row = {"T": T, "lead": lead, "fit_seed": fit_seed, "mode": mode, "distance": args.distance, "fit_mse": round(mse, 4),
                           "successes": int(round(res["eval/success_rate"] * len(eps))), "starts": len(eps),
                           "walls": int(res["eval/wall_hits"]), "falls": int(res["eval/falls"]),
                           "final_distance": round(res["eval/final_distance"], 3),
                           "first_within_s": [first_within(e, goal, tol, cfg.task.control_dt) for e in eps],
                           "outcomes": [e.outcome for e in eps], "wall_s": round(time.time() - t0, 1)}
                    rows.append(row)
                    print(f"T {T:.0f} s  L {lead:.1f} s  fit {fit_seed} (mse {mse:.3f})  {mode:16s}  "
                          f"{row['successes']}/{row['starts']}  walls {row['walls']}  falls {row['falls']}  "
                          f"final {row['final_distance']:.2f} m  first within {tol} m [s]: {row['first_within_s']}",
                          flush=True)
                    if args.json:
                        with open(args.json, "a") as f:
                            f.write(json.dumps(row) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
