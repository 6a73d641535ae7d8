"""Where the first critic update breaks the Deep Value MPC actor on Ballbot walls.

    python tools/ballbot_walls_first_update.py --init runs/walls_kv/geo_L0.3_T5.0_f0.pt \
        [--set training.critic_cost=task+actor ...] [--json out.json]

Starts Algorithm 1 (the experiment's settings, no curriculum) from a saved critic (the wall-aware
known value of tools/ballbot_walls_known_value.py --save-critic), runs the 8 evaluation episodes,
then ONE iteration (episodes + critic update + export) and compares, on the states of those
evaluation trajectories (with their velocities and time-to-go), the exported critic before and
after the update: the value V, and the greedy input u* = -R^-1 g(x)' dV/dx that the Eq. (14)
running cost makes the actor track (cosine of direction, ratio of magnitudes). Printed per
evaluation start and by the state's distance to the wall; the evaluation after the update shows
what the actor did with the new critic.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dmpc_core.agents.deep_value_mpc import DeepValueMpc  # noqa: E402
from dmpc_core.experiments.ballbot_walls import load_config  # noqa: E402
from dmpc_core.settings import parse_overrides  # noqa: E402


def critic_on(agent: DeepValueMpc, episodes) -> dict:
    """V and u* of the exported critic on every state of ``episodes`` (one array per episode)."""
    import torch

    T, dt = agent.task.settings.episode_time, agent.task.settings.control_dt
    out = []
    for e in episodes:
        xs = np.asarray(e.xs[:-1], float)
        taus = T - dt * np.arange(len(xs))
        g = np.tile(e.goal, (len(xs), 1))
        with torch.no_grad():
            d = agent.learner.trainer.target.value_and_derivatives(torch.from_numpy(xs), torch.from_numpy(g),
                                                                  torch.from_numpy(taus))
        out.append({"x": xs, "V": d["value"].numpy().reshape(-1),
                    "u": agent.actor.greedy_input(d["dvalue_dx"].numpy(), xs)})
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default=None)
    ap.add_argument("--init", required=True)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    over = parse_overrides(["training.curriculum_distance=[]", *args.set])
    over["training.init_critic"] = args.init
    agent = DeepValueMpc(load_config(args.config, over))
    before = agent.evaluate()
    c0 = critic_on(agent, before["episodes"])
    agent.run_iteration()
    c1 = critic_on(agent, before["episodes"])
    after = agent.evaluate()
    task = agent.task
    rows, allc = [], []
    for i, (e, a, b) in enumerate(zip(before["episodes"], c0, c1)):
        na, nb = np.linalg.norm(a["u"], axis=1), np.linalg.norm(b["u"], axis=1)
        cos = np.sum(a["u"] * b["u"], axis=1) / np.maximum(na * nb, 1e-12)
        clear = task.clearance(a["x"][:, 0], a["x"][:, 1])
        allc.append(np.c_[cos, nb / np.maximum(na, 1e-12), b["V"] / np.maximum(a["V"], 1e-9), clear])
        first = slice(0, 10)  # the first 0.5 s, where the actor commits to a side
        rows.append({"start": task.settings.eval_starts[i], "outcome_before": e.outcome,
                     "outcome_after": after["episodes"][i].outcome,
                     "final_distance_after": round(float(after["episodes"][i].final_distance), 2),
                     "final_xy_after": [round(float(v), 2) for v in after["episodes"][i].xs[-1][:2]],
                     "cos_median": round(float(np.median(cos)), 2), "cos_first_0.5s": round(float(np.median(cos[first])), 2),
                     "mag_ratio_median": round(float(np.median(nb / np.maximum(na, 1e-12))), 2),
                     "mag_ratio_first_0.5s": round(float(np.median((nb / np.maximum(na, 1e-12))[first])), 2),
                     "V_ratio_start": round(float(b["V"][0] / a["V"][0]), 2)})
        print(json.dumps(rows[-1]), flush=True)
    A = np.concatenate(allc)
    bands = [(0.0, 0.15), (0.15, 0.3), (0.3, 0.6), (0.6, 10.0)]
    by_clear = []
    for lo, hi in bands:
        m = (A[:, 3] >= lo) & (A[:, 3] < hi)
        if m.any():
            by_clear.append({"clearance_m": [lo, hi], "states": int(m.sum()), "cos_median": round(float(np.median(A[m, 0])), 2),
                             "mag_ratio_median": round(float(np.median(A[m, 1])), 2),
                             "V_ratio_median": round(float(np.median(A[m, 2])), 2)})
            print(json.dumps(by_clear[-1]), flush=True)
    print(f"successes before {before['eval/success_rate'] * 8:.0f}/8, after one update {after['eval/success_rate'] * 8:.0f}/8 "
          f"(walls {after['eval/wall_hits']:.0f}, falls {after['eval/falls']:.0f}, final {after['eval/final_distance']:.2f} m)")
    if args.json:
        Path(args.json).write_text(json.dumps({"sets": args.set, "starts": rows, "by_clearance": by_clear,
                                               "before": before["eval/success_rate"], "after": after["eval/success_rate"]},
                                              indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
