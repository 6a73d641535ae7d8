"""Feasibility of the Deep Value MPC actor with a known-good value on Ballbot reach.

    python tools/ballbot_reach_known_value.py [--config config/ballbot_reach.yaml] [--lead 0.6]
        [--scale 1.0] [--offset 2.0] [--modes running+terminal terminal]

Learning can only be as good as the actor is with a good value. This script fits the
experiment's own critic (``LearnerSettings.critic``, e.g. a lead-point critic, exported and
evaluated natively exactly as in training) to a hand-made value

    V(tau, x) = scale * (tau + offset) * sqrt(||p + lead v - g||^2 + 0.05^2)

(a cone in that lead point whose slope grows with the time-to-go; offset = terminal_weight makes
V(0, x) the Eq. (4) termination cost) and runs the Algorithm 1 actor with it from the 8
evaluation starts, in each actor mode. Printed per mode: success, falls, mean final distance and
the first time each start is within the success tolerance.

``--lead`` overrides both ``learner.lead`` and ``task.terminal_lead``. What it showed
(docs/log/2026-12-07-ballbot-reach.md): with lead 0.3 s the running + terminal actor tracks the
cone's greedy input, arrives in ~1.9 s and overshoots (0/8); with lead 0.6 s it reaches 8/8 in
1.65-1.75 s, faster than terminal-only (8/8 in 2.6-2.85 s).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dmpc_core.agents.deep_value_mpc import DeepValueMpc, evaluate  # noqa: E402
from dmpc_core.experiments.ballbot_reach import load_config  # noqa: E402


def fit_known_value(agent: DeepValueMpc, lead: float, scale: float, offset: float, seed: int = 0,
                    samples: int = 20000, steps: int = 3000) -> float:
    """Fit the agent's critic (model and target) to the cone above; returns the last minibatch MSE."""
    import torch

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    ts = agent.task.settings
    g = np.tile(np.asarray(ts.target, float), (samples, 1))
    x = np.zeros((samples, 10))
    x[:, :2] = g + rng.uniform(-2.5, 2.5, (samples, 2))
    x[:, 5:7] = rng.normal(0.0, 0.8, (samples, 2))
    tau = rng.uniform(0.0, ts.episode_time, samples)
    e = x[:, :2] + lead * x[:, 5:7] - g
    y = scale * (tau + offset) * np.sqrt((e ** 2).sum(1) + 0.05 ** 2)
    X, G, T, Y = (torch.from_numpy(a) for a in (x, g, tau, y))
    net = agent.learner.trainer.model
    opt = torch.optim.Adam(net.parameters(), 1e-2)
    for it in range(steps):
        if it == 2 * steps // 3:
            for group in opt.param_groups:
                group["lr"] = 2e-3
        i = torch.randint(0, samples, (512,))
        loss = ((net(X[i], G[i], T[i]).squeeze(-1) - Y[i]) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    agent.learner.trainer.target.load_state_dict(net.state_dict())
    agent.bundle = agent.learner.export()
    agent.actor.set_critic_bundle(agent.bundle)
    return float(loss.detach())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default=None)
    ap.add_argument("--lead", type=float, default=None, help="[s] learner.lead and task.terminal_lead (default: the config's)")
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--offset", type=float, default=None, help="[s] default: task.terminal_weight")
    ap.add_argument("--modes", nargs="+", default=["running+terminal", "terminal"])
    args = ap.parse_args(argv)
    overrides = {} if args.lead is None else {"learner.lead": args.lead, "task.terminal_lead": args.lead}
    cfg = load_config(args.config, overrides)
    lead = cfg.learner.lead
    offset = cfg.task.terminal_weight if args.offset is None else args.offset
    agent = DeepValueMpc(cfg)
    loss = fit_known_value(agent, lead, args.scale, offset)
    goal = np.asarray(cfg.task.target, float)
    tol = cfg.task.success_tolerance
    report = {"lead": lead, "scale": args.scale, "offset": offset, "fit_mse": loss, "modes": {}}
    for mode in args.modes:
        agent.actor.settings.mode = mode
        res = evaluate(agent.task, agent.actor)
        first = []
        for ep in res["episodes"]:
            d = np.hypot(ep.xs[:, 0] - goal[0], ep.xs[:, 1] - goal[1])
            first.append(round(float(np.argmax(d < tol)) * cfg.task.control_dt, 2) if np.any(d < tol) else None)
        report["modes"][mode] = {"success": res["eval/success_rate"], "falls": res["eval/falls"],
                                 "final_distance": round(res["eval/final_distance"], 3), "first_within_tol_s": first}
        print(f"{mode:18s} success {res['eval/success_rate']:.3f}  falls {res['eval/falls']:.0f}  "
              f"final distance {res['eval/final_distance']:.3f} m  first within {tol} m [s]: {first}", flush=True)
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
