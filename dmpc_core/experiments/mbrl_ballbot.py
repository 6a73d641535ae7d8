"""Model-based RL on the Ballbot: SLQ MPC on a learned ensemble, data from the embedded simulator only.

    dmpc train mbrl-ballbot [--config config/mbrl_ballbot.yaml] [--out DIR] [--seed 0] [--set KEY=VALUE ...]

The lecture's version 1.5 on the Ballbot reach task (``control/reach_mpc.py``):
  1. random data: episodes from upright with a small random tilt and velocity, random torques
     held for one control step, cut when the tilt exceeds ``random_max_tilt`` (the robot falls
     within about a second without control); ``random_transitions`` transitions;
  2. fit the bootstrap ensemble (``models/learned.py``: x = [q; v], only vdot learned, phi(x) =
     [cos yaw, sin yaw, pitch, roll, v], through semi-implicit Euler at the control step);
  3. per iteration: one reach episode to a goal 1 m away (goals cycle through +-x, +-y) with
     ``ReachMpc(model = the ensemble mean)`` (the same costs, LQR initial guess and tail computed
     on the learned model) plus exploration noise on the command, on the simulator (1 kHz RK4
     of the analytic model: the only place it is used); the transitions are added, the model refitted;
  4. evaluation after every fit: reach (1, 0) from rest, no noise, with the learned model; once
     with the analytic model (the same controller): time to reach, max tilt, final error, cost.
``summary.json`` holds per fit the data count, the model error, the data episode's and the
evaluation's outcome, and the analytic controller's evaluation.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Dict, List

import numpy as np
import torch

from dmpc_core import _core
from dmpc_core.control.reach_mpc import ReachMpc, ReachSettings, reach_status
from dmpc_core.experiments._common import CONFIG_DIR, CliError, RunLogger, base_parser, load_config, run_dir, settings_from, write_json
from dmpc_core.models.learned import LearnedModelSettings, ensemble_to_native, fit_ensemble, make_ensemble
from dmpc_core.sim.plant import Plant, PlantSettings
from dmpc_core.tasks import ballbot

DEFAULT_CONFIG = CONFIG_DIR / "mbrl_ballbot.yaml"
NAME = "mbrl-ballbot"
FEATURES = [("cos", 2), ("sin", 2), ("id", 3), ("id", 4)] + [("id", i) for i in range(5, 10)]
GOALS = [(1.0, 0.0), (0.0, 1.0), (-1.0, 0.0), (0.0, -1.0)]


def _default_reach() -> ReachSettings:
    r = ReachSettings()
    r.mpc.integrator = "semi_implicit_euler"
    return r


@dataclass
class MbrlBallbotSettings:
    """Attributes:
    reach: the reach controller (its mpc.dt is the model's control step; integrator = the
        model's integrator).
    model: the learned ensemble and its training.
    random_transitions: random-torque transitions before the first fit.
    random_torque: |u_i| bound of the random torques [N m].
    random_max_tilt: a random episode ends above this tilt [rad].
    iterations: reach episodes (each followed by a refit).
    episode_seconds: length of a reach episode [s].
    exploration_std: std of the Gaussian noise added to the command during data episodes [N m].
    fall_tilt: an episode ends above this tilt [rad] (fallen).
    eval_seconds: length of the evaluation episodes [s].
    u_limit: actuator limit of the simulator [N m].
    """

    reach: ReachSettings = field(default_factory=_default_reach)
    model: LearnedModelSettings = field(default_factory=LearnedModelSettings)
    random_transitions: int = 1000
    random_torque: float = 5.0
    random_max_tilt: float = 0.3
    iterations: int = 3
    episode_seconds: float = 4.0
    exploration_std: float = 1.0
    fall_tilt: float = 0.6
    eval_seconds: float = 6.0
    u_limit: float = 30.0


class BallbotMbrl:
    def __init__(self, s: MbrlBallbotSettings, seed: int) -> None:
        if s.reach.mpc.integrator != s.model.integrator:
            raise ValueError(f"reach.mpc.integrator ({s.reach.mpc.integrator}) must be the model's integrator "
                             f"({s.model.integrator}): the model was fitted through it")
        self.s, self.seed = s, seed
        self.dt = s.reach.mpc.dt
        self.rng = np.random.default_rng([seed, 0xBB])
        torch.manual_seed(seed)
        self.truth = _core.BallbotDynamics()
        lim = [s.u_limit] * ballbot.NU
        self.plant = Plant(self.truth, np.zeros(ballbot.NX), PlantSettings(u_min=[-v for v in lim], u_max=lim))
        self.ens = make_ensemble(ballbot.NX, ballbot.NU, ballbot.NX // 2, FEATURES, s.model)
        self.X: List[np.ndarray] = []
        self.U: List[np.ndarray] = []
        self.Xn: List[np.ndarray] = []
        self.fits = 0
        self.mean = None

    def add(self, x, u, xn) -> None:
        self.X.append(x), self.U.append(u), self.Xn.append(xn)

    def collect_random(self, n: int) -> None:
        s = self.s
        while len(self.X) < n:
            x0 = np.zeros(ballbot.NX)
            x0[3:5] = self.rng.uniform(-0.05, 0.05, 2)
            x0[5:] = self.rng.normal(0.0, 0.2, 5)
            self.plant.reset(x0)
            x = x0
            for _ in range(int(1.0 / self.dt)):
                u = self.rng.uniform(-s.random_torque, s.random_torque, ballbot.NU)
                xn = self.plant.step(u, self.dt).copy()
                self.add(x, u, xn)
                x = xn
                if float(ballbot.tilt(x)[0]) > s.random_max_tilt or len(self.X) >= n:
                    break

    def refit(self) -> Dict[str, float]:
        st = fit_ensemble(self.ens, np.array(self.X), np.array(self.U), np.array(self.Xn), self.dt, self.s.model,
                          seed=self.seed * 1000 + self.fits)
        self.fits += 1
        _, self.mean = ensemble_to_native(self.ens)
        return st

    def episode(self, model, goal, seconds: float, noise: float, record: bool) -> Dict[str, float]:
        """A reach episode from rest at the origin with ReachMpc(model); ZOH commands at the control step."""
        s = self.s
        mpc = ReachMpc(s.reach, goal, model=model)
        self.plant.reset(np.zeros(ballbot.NX))
        x = np.zeros(ballbot.NX)
        t, cost, max_tilt, t_reach = 0.0, 0.0, 0.0, float("nan")
        for k in range(int(round(seconds / self.dt))):
            t = k * self.dt
            mpc.update(t, x)
            u = np.asarray(mpc.mpc.control(t, x), float)
            u_applied = np.clip(u + (self.rng.normal(0.0, noise, ballbot.NU) if noise > 0 else 0.0), -s.u_limit, s.u_limit)
            xn = self.plant.step(u_applied, self.dt).copy()
            if record:
                self.add(x, u_applied, xn)
            cost += mpc.stage_cost(t, x, u_applied, self.dt)
            x = xn
            tilt = float(ballbot.tilt(x)[0])
            max_tilt = max(max_tilt, tilt)
            at, _ = reach_status(x, goal)
            if at and np.isnan(t_reach):
                t_reach = t + self.dt
            if not np.all(np.isfinite(x)) or tilt > s.fall_tilt:
                return {"fell": 1.0, "max_tilt": max_tilt, "t_reach": t_reach, "final_error": float("nan"),
                        "cost": cost, "seconds": t + self.dt}
        return {"fell": 0.0, "max_tilt": max_tilt, "t_reach": t_reach,
                "final_error": float(np.hypot(x[0] - goal[0], x[1] - goal[1])), "cost": cost, "seconds": seconds}


#: the config file's section and the settings dataclass it fills (``dmpc train mbrl-ballbot --help``)
SETTINGS = {"agent": MbrlBallbotSettings}


def train_main(argv: List[str]) -> int:
    p = base_parser(f"dmpc train {NAME}", DEFAULT_CONFIG)
    args = p.parse_args(argv)
    if args.resume or args.stop_after is not None:
        raise CliError(f"{NAME} keeps no checkpoint: --resume / --stop-after are not supported")
    cfg = load_config(args.config, args.set, ("agent",))
    where = args.config + (" (with --set)" if args.set else "")
    s = settings_from(MbrlBallbotSettings, cfg.get("agent"), f"{where}:agent")
    out = run_dir(args.out, NAME, f"s{args.seed}")
    logger = RunLogger(out, False)
    t_wall = time.perf_counter()
    run = BallbotMbrl(s, args.seed)
    run.collect_random(s.random_transitions)
    goal = (1.0, 0.0)
    iters = []
    ep: Dict[str, float] = {}
    for i in range(s.iterations + 1):
        if i > 0:
            ep = run.episode(run.mean, GOALS[(i - 1) % len(GOALS)], s.episode_seconds, s.exploration_std, record=True)
        fit = run.refit()
        ev = run.episode(run.mean, goal, s.eval_seconds, 0.0, record=False)
        row = {"transitions": len(run.X), **fit, **{f"episode/{k}": v for k, v in ep.items()},
               **{f"eval/{k}": v for k, v in ev.items()}}
        iters.append(row)
        logger.log(i, {**row, "data/transitions": len(run.X)})
        print(f"fit {i}: data {len(run.X)}, one-step error {fit['model/one_step_error']:.3g}, data episode {ep}, "
              f"evaluation {ev}", flush=True)
    analytic = run.episode(run.truth, goal, s.eval_seconds, 0.0, record=False)
    print(f"analytic model, evaluation to {goal}: {analytic}")
    write_json(out / "summary.json", {"seed": args.seed, "transitions": len(run.X), "iterations": iters,
                                      "eval_goal": goal, "eval_analytic": analytic,
                                      "wall_s": time.perf_counter() - t_wall})
    logger.close()
    return 0


def eval_main(argv: List[str]) -> int:
    """Per fit (over seeds): transitions, evaluation outcome of the learned-model controller, and
    the analytic-model controller on the same goal; a PNG of the evaluation cost vs data."""
    import argparse
    import json
    from pathlib import Path

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from dmpc_core.experiments._common import RUNS_DIR
    from dmpc_core.experiments._common import t_interval

    p = argparse.ArgumentParser(prog=f"dmpc eval {NAME}")
    p.add_argument("--runs", default=str(RUNS_DIR / NAME))
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    files = sorted(Path(args.runs).glob("*/summary.json"))
    if not files:
        raise CliError(f"no run summaries (*/summary.json) under {args.runs}")
    runs = [json.loads(f.read_text()) for f in files]
    n_fit = min(len(r["iterations"]) for r in runs)
    ana = runs[0]["eval_analytic"]
    print(f"seeds: {sorted(r['seed'] for r in runs)}; goal {runs[0]['eval_goal']} from rest at the origin")
    print("| fit | transitions (mean) | fell | reached (within 0.1 m, 5 deg, 0.2 m/s) | time to reach [s] (reached runs) | "
          "episode cost (mean, 95 % t) | cost / analytic (runs that did not fall) | one-step error |")
    print("|---|---|---|---|---|---|---|---|")
    xs, ms, hs = [], [], []
    for i in range(n_fit):
        rows = [r["iterations"][i] for r in runs]
        ana_cost = {r["seed"]: r["eval_analytic"]["cost"] for r in runs}
        fell = sum(int(x["eval/fell"]) for x in rows)
        reached = [x["eval/t_reach"] for x in rows if x["eval/t_reach"] == x["eval/t_reach"]]
        m, h = t_interval([x["eval/cost"] for x in rows])
        ratio = [r["iterations"][i]["eval/cost"] / ana_cost[r["seed"]] for r in runs if not r["iterations"][i]["eval/fell"]]
        rm = f"{np.mean(ratio):.2f} (n={len(ratio)})" if ratio else "-"
        tr = f"{np.mean(reached):.2f}" if reached else "-"
        print(f"| {i} | {np.mean([x['transitions'] for x in rows]):.0f} | {fell}/{len(rows)} | {len(reached)}/{len(rows)} | {tr} | "
              f"{m:.1f} +- {h:.1f} | {rm} | {np.mean([x['model/one_step_error'] for x in rows]):.2e} |")
        xs.append(np.mean([x["transitions"] for x in rows]))
        ms.append(m)
        hs.append(0.0 if np.isnan(h) else h)
    print(f"| analytic model | - | {int(ana['fell'])} | - | {ana['t_reach']:.2f} | {ana['cost']:.1f} | 1 | - |")
    fig, ax = plt.subplots(figsize=(6.5, 4))
    ax.errorbar(xs, ms, yerr=hs, marker="o", capsize=3, label=f"SLQ on the learned ensemble (n={len(runs)})")
    ax.axhline(ana["cost"], color="0.4", ls="--", label="SLQ on the analytic model")
    ax.set_xlabel("transitions from the simulator")
    ax.set_ylabel("evaluation episode cost (reach 1 m)")
    ax.set_title("Model-based RL, Ballbot reach (mean, 95 % t-interval)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    out = args.out or str(Path(args.runs) / f"{NAME}.png")
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")
    return 0
