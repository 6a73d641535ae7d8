"""Upper bound for the Deep Value MPC actor on the Ballbot walls task: how far does the actor get
in one episode when its critic is (nearly) right?

    python tools/ballbot_oracle_critic.py [--config config/ballbot_walls.yaml] [--set KEY=VALUE ...]

Fits the critic network (same architecture, normalisation and export path as training) by
regression to a hand-made value without walls, V(x, tau) = tau * |p + lead * v - goal| (the
time-to-go times the distance of a short-term prediction of the position), then runs the actor
from the 8 evaluation starts on the arena WITHOUT its interior wall and prints the outcome, final
distance and maximum tilt per start. If the actor cannot reach the target in the episode time even
with this value, no learned value will make it succeed: the actor's cost weights (tilt terms, R)
bound its speed. Used for docs/results/ballbot.md.
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


def fit_oracle(agent: DeepValueMpc, lead: float, steps: int, seed: int = 0) -> float:
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
    y = tau * np.linalg.norm(X[:, :2] + lead * X[:, 5:7] - g, axis=1)
    model = agent.learner.trainer.model
    Xt, Gt = torch.tensor(X), torch.tensor(np.tile(g, (n, 1)))
    Tt, yt = torch.tensor(tau.reshape(-1, 1)), torch.tensor(y)
    with torch.no_grad():
        for layer in model.layers:
            layer.reset_parameters()
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    for _ in range(steps):
        idx = torch.randint(0, n, (512,))
        loss = ((model(Xt[idx], Gt[idx], Tt[idx]) - yt[idx]) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    agent.learner.trainer.target.load_state_dict(model.state_dict())
    agent.actor.set_critic_bundle(agent.learner.export())
    return float(loss.detach())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default=None)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--lead", type=float, default=0.3, help="[s] velocity lead in the oracle value")
    ap.add_argument("--steps", type=int, default=1500, help="regression steps")
    args = ap.parse_args(argv)
    overrides = parse_sets(args.set)
    overrides.setdefault("task.walls", [])
    cfg = load_config(args.config, overrides)
    agent = DeepValueMpc(cfg)
    loss = fit_oracle(agent, args.lead, args.steps)
    task = agent.task
    goal = np.asarray(task.settings.target, float)
    plant = Plant(agent.actor.model, np.zeros(ballbot.NX), task.plant_settings(1))
    print(f"oracle fit mse {loss:.4f}; mode {cfg.actor.mode}, H {cfg.actor.horizon_time} s, walls {cfg.task.walls}")
    print("| start | outcome | start distance [m] | final distance [m] | max tilt [rad] |")
    print("|---|---|---|---|---|")
    finals = []
    for st in task.settings.eval_starts:
        ep = run_episode(task, agent.actor, st, goal, plant)
        finals.append(ep.final_distance)
        print(f"| {tuple(st)} | {ep.outcome} | {np.hypot(*(np.asarray(st) - goal)):.2f} | "
              f"{ep.final_distance:.2f} | {ballbot.tilt(ep.xs).max():.2f} |")
    print(f"oracle_mean_final_distance={np.mean(finals):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
