"""Model-based RL with learned dynamics (lecture-model-based-rl): versions 0.5, 1.0 and 1.5.

One readable loop per version (:meth:`MbrlAgent.run_episode`), on the MPQ pendulum swing-up
(``tasks/pendulum.py``: the same cost theta^2 + 0.1 theta_dot^2, |u| <= 2, dt = 0.05, 200 steps):

    version 0.5: collect ``random_transitions_v05`` transitions with a random policy, fit the
                 ensemble once; every episode: plan the whole episode once from x0 in the model
                 (``open_loop_planner``) and execute the plan open loop.
    version 1.0: collect ``random_transitions`` random transitions and fit; every episode: plan
                 open loop from x0, execute, add the episode's transitions, refit.
    version 1.5: as 1.0, but MPC: re-plan at every control step (the planner of ``solver``),
                 execute the first action; refit after each episode.
    version "true": MPC with the true model (the baseline of the claims).
    version "true_open_loop": the open-loop plan of versions 0.5/1.0 with the true model (what
                 open-loop execution costs with a perfect model and this planner).

Open-loop plans (versions 0.5, 1.0, true_open_loop), ``open_loop_planner``:
    "receding": the MPC planner (``mppi``) run inside the model for the whole episode: from x0,
        solve, take the first action, step the MODEL (not the plant), shift, repeat. The
        resulting action sequence is executed on the plant without feedback. With the true
        model it reproduces the MPC episode, so open-loop execution loses only what the model's
        errors cost.
    "mppi": one MPPI optimisation over the whole episode (H = episode, ``open_loop_iterations``
        iterations, the planner's discount gamma). Weak on the swing-up: with the true model its
        plan costs about 2.6x the MPC episode, which masks the model's role.

The model is a bootstrap ensemble of control-affine MLPs (``models/learned.py``), fitted through
the planner's integrator at the control step. Planning uses it natively:
    solver "mppi": ``MppiSolver`` whose own dynamics is the ensemble mean, with
        ``rollout_mode`` "ts" (sample k uses member k mod M for its whole rollout: PETS TS-inf),
        "average" (every sample in every member, mean path cost) or "mean" (the mean model only);
    solver "slq": ``SlqSolver`` on the ensemble mean (``_core.EnsembleMeanDynamics``), its
        feedforward clipped to the torque bound.
The ensemble's disagreement along the executed states is logged as ``model/disagreement``
(mean over the episode of ||std_k xdot_k(x, u)||). Receding open-loop episodes also log
``model/open_loop_departure_s``: the time at which the plant leaves the path the plan predicted
in the model (angle off by > 0.3 rad or rate by > 1 rad/s; the episode length if never).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import numpy as np
import torch

from dmpc_core import _core
from dmpc_core.agents.polo import MppiAgentSettings
from dmpc_core.models.learned import LearnedModelSettings, ensemble_to_native, fit_ensemble, make_ensemble
from dmpc_core.tasks.pendulum import PendulumPlant, PendulumTaskSettings, random_initial_state

VERSIONS = ("0.5", "1.0", "1.5", "true", "true_open_loop")
SOLVERS = ("mppi", "slq")
ROLLOUT_MODES = ("ts", "average", "mean")
OPEN_LOOP_PLANNERS = ("receding", "mppi")
#: phi(x) of the pendulum model: [cos theta, sin theta, theta_dot] (as MPQ's Q network)
PENDULUM_FEATURES = [("cos", 0), ("sin", 0), ("id", 1)]


def _mppi_long() -> MppiAgentSettings:
    # the "mppi_long" planner of docs/results/mpq.md (MPQ Table 3 with H = 64)
    return MppiAgentSettings(horizon=64, num_samples=24, noise_std=2.0, lambda_=0.15, step_size=0.5, gamma=0.9,
                             control_cost_weight=1.0, num_iterations=1, smoothing=0.0, num_threads=1)


@dataclass
class SlqAgentSettings:
    """SLQ MPC on the ensemble mean. Attributes: horizon (steps), iterations per control step,
    initial_iterations (first solve of an episode), control_weight r (R = r I), discount."""

    horizon: int = 64
    iterations: int = 2
    initial_iterations: int = 30
    control_weight: float = 0.02
    discount: float = 1.0


@dataclass
class MbrlSettings:
    """Attributes:
    task: the pendulum task (cost, limits, dt, episode length).
    version: "0.5", "1.0", "1.5", "true" or "true_open_loop" (see the module docstring).
    solver: MPC solver of versions 1.5/true: "mppi" or "slq".
    mppi: MPPI planner (default: MPQ's mppi_long, H 64, K 24, Sigma 4, lambda 0.15, alpha 0.5, gamma 0.9).
    slq: SLQ planner.
    rollout_mode: how MPPI uses the ensemble: "ts", "average" or "mean".
    model: the learned ensemble and its training.
    random_transitions: random-policy transitions before the first fit (versions 1.0, 1.5).
    random_transitions_v05: random-policy transitions of version 0.5 (its only data).
    random_rollout_steps: length of each random-policy rollout (from a random initial state).
    open_loop_planner: how versions 0.5/1.0 plan an episode open loop: "receding" or "mppi"
        (see the module docstring).
    open_loop_iterations: MPPI iterations of the "mppi" open-loop plan.
    true_integrator: integrator of the true-model planner (the learned model uses model.integrator).
    """

    task: PendulumTaskSettings = field(default_factory=PendulumTaskSettings)
    version: str = "1.5"
    solver: str = "mppi"
    mppi: MppiAgentSettings = field(default_factory=_mppi_long)
    slq: SlqAgentSettings = field(default_factory=SlqAgentSettings)
    rollout_mode: str = "ts"
    model: LearnedModelSettings = field(default_factory=LearnedModelSettings)
    random_transitions: int = 200
    random_transitions_v05: int = 2000
    random_rollout_steps: int = 20
    open_loop_planner: str = "receding"
    open_loop_iterations: int = 20
    true_integrator: str = "rk4"

    def validate(self) -> None:
        self.task.validate()
        self.model.validate()
        if self.version not in VERSIONS:
            raise ValueError(f"version must be one of {VERSIONS}, got {self.version!r}")
        if self.solver not in SOLVERS:
            raise ValueError(f"solver must be one of {SOLVERS}, got {self.solver!r}")
        if self.rollout_mode not in ROLLOUT_MODES:
            raise ValueError(f"rollout_mode must be one of {ROLLOUT_MODES}, got {self.rollout_mode!r}")
        if self.open_loop_planner not in OPEN_LOOP_PLANNERS:
            raise ValueError(f"open_loop_planner must be one of {OPEN_LOOP_PLANNERS}, got {self.open_loop_planner!r}")
        if min(self.random_transitions, self.random_transitions_v05, self.random_rollout_steps) < 1:
            raise ValueError("random_transitions, random_transitions_v05, random_rollout_steps must be >= 1")
        if self.open_loop_iterations < 1 or self.slq.horizon < 1 or self.mppi.horizon < 1:
            raise ValueError("open_loop_iterations and horizons must be >= 1")


#: the plant has left an imagined open-loop path when |angle difference| > 0.3 rad or |rate difference| > 1 rad/s
DEPARTURE_ANGLE, DEPARTURE_RATE = 0.3, 1.0


def _departed(x_real: np.ndarray, x_imagined: np.ndarray) -> bool:
    d = np.arctan2(np.sin(x_real[0] - x_imagined[0]), np.cos(x_real[0] - x_imagined[0]))
    return bool(abs(d) > DEPARTURE_ANGLE or abs(x_real[1] - x_imagined[1]) > DEPARTURE_RATE)


class MbrlAgent:
    """The lecture's model-based RL versions on the pendulum (see the module docstring).

    Args:
        settings: :class:`MbrlSettings`; seed: seeds torch, the random data, the fits and MPPI.
    """

    def __init__(self, settings: MbrlSettings, seed: int = 0) -> None:
        settings.validate()
        self.settings, self.seed = settings, int(seed)
        s = settings
        self.dt, self.u_max = s.task.dt, s.task.u_max
        self.plant = PendulumPlant(s.task)
        self.rng = np.random.default_rng([self.seed, 0x4D42])
        torch.manual_seed(self.seed)
        self.stage_cost = _core.PendulumSwingUpCost(1, s.task.w_rate, 1.0 / self.dt)
        self.ensemble = make_ensemble(2, 1, 1, PENDULUM_FEATURES, s.model)
        self.X: List[np.ndarray] = []
        self.U: List[np.ndarray] = []
        self.Xn: List[np.ndarray] = []
        self.members: Optional[list] = None
        self.mean_model = None
        self.fits = 0
        self.episodes = 0
        self.timing = {"fit_s": 0.0, "plan_s": 0.0, "plan_calls": 0}
        self.last_fit: Dict[str, float] = {}
        self.imagined: Optional[np.ndarray] = None  # (T + 1, nx) states of the last receding open-loop plan
        if not s.version.startswith("true"):
            n = s.random_transitions_v05 if s.version == "0.5" else s.random_transitions
            self.collect_random(n)
            self.refit()

    # -- data and model ----------------------------------------------------------------------
    @property
    def num_transitions(self) -> int:
        return len(self.X)

    def collect_random(self, n: int) -> None:
        """n transitions of a uniform random policy, in rollouts of random_rollout_steps from random states."""
        s = self.settings
        while len(self.X) < n + 0 and n > 0:
            x = self.plant.reset(random_initial_state(self.rng))
            for _ in range(s.random_rollout_steps):
                u = self.rng.uniform(-self.u_max, self.u_max, 1)
                _, xn = self.plant.step(u)
                self.X.append(x), self.U.append(u), self.Xn.append(xn)
                x = xn
                if len(self.X) >= n:
                    break

    def refit(self) -> Dict[str, float]:
        t0 = time.perf_counter()
        stats = fit_ensemble(self.ensemble, np.array(self.X), np.array(self.U), np.array(self.Xn), self.dt,
                             self.settings.model, seed=self.seed * 1000 + self.fits)
        self.fits += 1
        self.members, self.mean_model = ensemble_to_native(self.ensemble)
        self.timing["fit_s"] += time.perf_counter() - t0
        self.last_fit = stats
        return stats

    # -- planners ----------------------------------------------------------------------------
    def _mppi(self, seed: int, horizon: int, iterations: int):
        s = self.settings
        cfg = s.mppi.to_core(self.dt, self.u_max, 1, seed=seed, horizon=horizon, num_iterations=iterations)
        if s.version.startswith("true"):
            cfg.integrator = s.true_integrator
            dyn = _core.PendulumDynamics(s.task.mass, s.task.length, s.task.damping)
            return _core.MppiSolver(dyn, self.stage_cost, None, cfg)
        cfg.integrator = s.model.integrator
        solver = _core.MppiSolver(self.mean_model, self.stage_cost, None, cfg)
        if s.rollout_mode != "mean":
            solver.set_rollout_models(self.members, average=s.rollout_mode == "average")
        return solver

    def _slq(self):
        s = self.settings
        true = s.version.startswith("true")
        dyn = _core.PendulumDynamics(s.task.mass, s.task.length, s.task.damping) if true else self.mean_model
        integ = s.true_integrator if true else s.model.integrator
        prob = _core.Problem(dyn, self.stage_cost, None, s.slq.horizon, self.dt, integ,
                             np.eye(1) * s.slq.control_weight, s.slq.discount)
        return _core.SlqSolver(prob, _core.SlqSettings(max_iterations=s.slq.initial_iterations))

    def plan_open_loop(self, x0: np.ndarray, seed: int) -> np.ndarray:
        """The (T, 1) action sequence of an open-loop episode from x0, planned in the model only
        (the true model for "true_open_loop", else the ensemble); see ``open_loop_planner``."""
        s = self.settings
        T = s.task.episode_steps
        if s.open_loop_planner == "mppi":
            solver = self._mppi(seed, T, s.open_loop_iterations)
            solver.set_state(x0, 0.0)
            solver.optimize()
            return np.array(solver.plan).reshape(T, 1)
        true = s.version.startswith("true")
        model = _core.PendulumDynamics(s.task.mass, s.task.length, s.task.damping) if true else self.mean_model
        integ = s.true_integrator if true else s.model.integrator
        solver = self._mppi(seed, s.mppi.horizon, s.mppi.num_iterations)
        x = np.asarray(x0, dtype=float).copy()
        plan = np.empty((T, 1))
        self.imagined = np.empty((T + 1, x.size))
        self.imagined[0] = x
        for k in range(T):
            solver.set_state(x, 0.0)
            solver.optimize()
            u = np.clip(np.array(solver.action_from_policy(), dtype=float).reshape(1), -self.u_max, self.u_max)
            solver.shift(1)
            plan[k] = u
            x = np.asarray(_core.integrate(model, x, u, self.dt, integ), dtype=float)
            self.imagined[k + 1] = x
        return plan

    # -- one episode ---------------------------------------------------------------------------
    def run_episode(self, x0: np.ndarray, learn: bool = True) -> Dict[str, float]:
        """One 200-step episode from x0 on the true plant; with ``learn`` its transitions are added
        and the model refitted (versions 1.0 and 1.5; version 0.5 never adds data)."""
        s = self.settings
        T = s.task.episode_steps
        x = self.plant.reset(x0)
        total, upright, dis = 0.0, 0, []
        seed = self.seed * 100_003 + self.episodes
        open_loop = s.version in ("0.5", "1.0", "true_open_loop")
        t0 = time.perf_counter()
        self.imagined = None
        if open_loop:
            plan = self.plan_open_loop(x, seed)
            self.timing["plan_calls"] += 1
        elif s.solver == "mppi":
            solver = self._mppi(seed, s.mppi.horizon, s.mppi.num_iterations)
        else:
            solver = self._slq()
        self.timing["plan_s"] += time.perf_counter() - t0
        Xe, Ue, Xne = [], [], []
        departure = None  # first step where the plant leaves the imagined path (receding open-loop plans)
        for k in range(T):
            t0 = time.perf_counter()
            if open_loop:
                u = plan[k]
            elif s.solver == "mppi":
                solver.set_state(x, 0.0)
                solver.optimize()
                u = np.array(solver.action_from_policy())
                solver.shift(1)
            else:
                if k == 1:
                    solver.settings = _core.SlqSettings(max_iterations=s.slq.iterations)
                solver.solve(x, k * self.dt)
                u = np.array(solver.policy().control(k * self.dt, x))
                solver.shift((k + 1) * self.dt)
            self.timing["plan_s"] += time.perf_counter() - t0
            self.timing["plan_calls"] += int(not open_loop)
            u = np.clip(np.asarray(u, dtype=float).reshape(1), -self.u_max, self.u_max)
            if self.mean_model is not None:
                dis.append(float(np.linalg.norm(self.mean_model.disagreement(x, u))))
            c, xn = self.plant.step(u)
            if self.imagined is not None and departure is None and _departed(xn, self.imagined[k + 1]):
                departure = k + 1
            Xe.append(x), Ue.append(u), Xne.append(xn)
            total += c
            upright += int(abs(np.arctan2(np.sin(x[0]), np.cos(x[0]))) < 0.3)
            x = xn
        self.episodes += 1
        stats = {"train/episode_cost": total, "train/upright_fraction": upright / T,
                 "model/disagreement": float(np.mean(dis)) if dis else 0.0}
        if self.imagined is not None:
            stats["model/open_loop_departure_s"] = (T if departure is None else departure) * self.dt
        if learn and s.version in ("1.0", "1.5"):
            self.X += Xe
            self.U += Ue
            self.Xn += Xne
            stats.update(self.refit())
        stats["data/transitions"] = self.num_transitions
        return stats


__all__ = ["MbrlAgent", "MbrlSettings", "SlqAgentSettings", "VERSIONS", "SOLVERS", "ROLLOUT_MODES", "OPEN_LOOP_PLANNERS",
           "PENDULUM_FEATURES"]
