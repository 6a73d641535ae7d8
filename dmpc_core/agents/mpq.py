"""MPQ: information-theoretic Model Predictive Q-learning (mpq-model-predictive-q-learning.txt,
Algorithm 1), on the pendulum swing-up with a biased model.

One readable loop (:meth:`MpqAgent.run_episode`):

    draw the model's (m, l) from U[0.9, 1.5] x true (Tables 1, 3; per episode, per run, per
    control step, or per rollout: ``bias_mode``); the plant keeps the true ones
    for t = 1..T:
        a_t <- infinite-horizon MPPI (Eqs. 16-18) in the biased model, path cost
               sum_{t<H-1} gamma^t c(s_t, a_t) + gamma^{H-1} Q(s_{H-1}, a_{H-1})  (+ Eq. 16 KL term)
        execute a_t on the true plant -> (c, s');  D <- D + (s, a, c, s')
    after every episode, M minibatches of K:
        y = c + gamma * F(s')          (Eq. 19: F = free energy of `target_iterations` MPPI
                                        iterations from s' in the biased model, Q as last cost)
        Adam step on (y - Q(s, a))^2   (no target network, as in MPQ; ``target_polyak`` adds one)

The Q network sees [cos theta, sin theta, theta_dot, u] (MPQ App. B). It is evaluated inside the
C++ rollouts (``_core.MlpEnsembleCost`` with K = 1) and put in place of the last running cost by
``_core.HorizonSwitchCost`` (the solver runs from t0 = 0, the switch is at (H - 1/2) dt), so the
path cost is exactly Eq. (16). Per-step costs are c (not c dt): the running costs carry 1/dt
because the solver multiplies them by dt. ``use_q=False`` gives plain MPPI (baselines), H = 1
with learning is soft Q-learning (MPQ Table 2).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Dict, Optional

import numpy as np
import torch

from dmpc_core import _core
from dmpc_core.agents.polo import MppiAgentSettings, q_to_native
from dmpc_core.critics.networks import QMLP, QMLPSettings
from dmpc_core.critics.replay import ReplayBuffer, ReplaySpec
from dmpc_core.critics.targets import one_step_q_targets
from dmpc_core.critics.training import CriticTrainer, CriticTrainerSettings
from dmpc_core.tasks.pendulum import (PendulumPlant, PendulumTaskSettings, random_initial_state,
                                      sample_biased_parameter_sets, sample_biased_parameters)

Q_FEATURES = [("cos", 0), ("sin", 0), ("id", 1)]
BIAS_MODES = ("episode", "run", "step", "rollout", "ensemble")


class AngleFeatureQMLP(QMLP):
    """QMLP on raw pendulum states: the input is [cos theta, sin theta, theta_dot, u] (MPQ App. B),
    computed inside, so replay buffers and trainers keep the raw state [theta, theta_dot]."""

    def _z(self, state, action, goal):
        feats = torch.stack([torch.cos(state[:, 0]), torch.sin(state[:, 0]), state[:, 1]], dim=-1)
        return super()._z(feats, action, goal)


def _mpq_mppi_defaults() -> MppiAgentSettings:
    # MPQ Table 3, pendulum: 24 samples, Sigma = 4, lambda = 0.15, alpha = 0.5, gamma = 0.9
    return MppiAgentSettings(horizon=8, num_samples=24, noise_std=2.0, lambda_=0.15, step_size=0.5, gamma=0.9,
                             control_cost_weight=1.0, num_iterations=1, smoothing=0.0, num_threads=1)


@dataclass
class MpqSettings:
    """Attributes:
    task: pendulum task (true parameters, bias range, limits, dt, episode length).
    mppi: acting planner (MPQ Table 3 defaults; horizon H).
    use_q: put the learned Q in place of the last running cost (False: plain MPPI).
    learn: train Q (False: frozen; with use_q=False nothing is learned).
    true_model: plan with the true (m, l) instead of a biased draw (the "true dynamics" baseline).
    hidden: Q network widths (MPQ: 2 x 100 tanh).
    learning_rate: Adam step size of the Q updates (MPQ App. B: 1e-3).
    minibatches: M per update; batch_size: K; update_every_episodes: N_update.
    target_iterations: MPPI iterations for the Eq. (19) free energy (MPQ: 3).
    target_samples: samples of that MPPI (default: mppi.num_samples).
    q_output_scale: output scale of the Q network (targets reach ~ 10 / (1 - gamma)).
    replay_capacity: transitions kept.
    bias_mode: when the model's (m, l) is drawn from the biased distribution (MPQ Table 1); the
        paper does not say (Sec. 4: the agent "is not provided with the true dynamics parameters,
        but a uniform distribution over them"; Algorithm 1 takes ONE approximate model as input).
        "run" (default): one draw per run (seed), fixed for all episodes and targets (Algorithm 1's
            input P-hat; docs/results/mpq.md: better than "episode" on the 3 table seeds, not on all 5).
        "episode": a new draw per episode, for acting and for that episode's Eq. (19) targets.
        "step": the planner samples the distribution: a new draw at every control step and for
            every Eq. (19) target minibatch.
        "rollout": every MPPI rollout samples the distribution (an ensemble / domain-randomised
            planner, ``MppiSolver.set_rollout_models``): K new (m, l) draws, one per sample, at
            every control step and for every Eq. (19) target solve (fixed over that solve's
            iterations); the solver's own model (used only for its nominal rollout) is the
            distribution's mean. Our reading of Sec. 4's "uniform distribution over them", not
            stated by the paper (docs/results/mpq.md).
        "ensemble": like "rollout" but risk-neutral: ``ensemble_size`` fresh draws per control step /
            target solve, every sample is rolled out in all of them and its path cost is the mean
            (``set_rollout_models(.., average=True)``; ensemble_size times the rollouts). Ours, not
            the paper's.
    ensemble_size: models per solve in bias_mode "ensemble".
    target_polyak: Polyak factor of a target Q network for the Eq. (19) targets (0: none, the
        targets use the online Q, as MPQ Sec. 4.2 "MPQ does not use a target network").
    """

    task: PendulumTaskSettings = field(default_factory=PendulumTaskSettings)
    mppi: MppiAgentSettings = field(default_factory=_mpq_mppi_defaults)
    use_q: bool = True
    learn: bool = True
    true_model: bool = False
    hidden: tuple = (100, 100)
    learning_rate: float = 1e-3
    minibatches: int = 100
    batch_size: int = 64
    update_every_episodes: int = 1
    target_iterations: int = 3
    target_samples: int = 0
    q_output_scale: float = 10.0
    replay_capacity: int = 100_000
    bias_mode: str = "run"
    target_polyak: float = 0.0
    ensemble_size: int = 4

    def validate(self) -> None:
        self.task.validate()
        if self.bias_mode not in BIAS_MODES:
            raise ValueError(f"bias_mode must be one of {BIAS_MODES}, got {self.bias_mode!r}")
        if not 0.0 <= self.target_polyak < 1.0:
            raise ValueError(f"target_polyak must be in [0, 1), got {self.target_polyak}")
        if self.ensemble_size < 1:
            raise ValueError(f"ensemble_size must be >= 1, got {self.ensemble_size}")
        if self.mppi.horizon < 1 or self.minibatches < 0 or self.batch_size < 1 or self.target_iterations < 1:
            raise ValueError("horizon, batch_size, target_iterations must be >= 1 and minibatches >= 0")
        if self.learn and not self.use_q:
            raise ValueError("learn=True needs use_q=True")


class MpqAgent:
    """MPQ (or a plain-MPPI baseline) on the pendulum swing-up.

    Args:
        settings: :class:`MpqSettings`.
        seed: seeds torch, the initial states, the model draws, the sampler and the MPPI noise.
    """

    def __init__(self, settings: MpqSettings, seed: int = 0) -> None:
        settings.validate()
        self.settings, self.seed = settings, int(seed)
        s = settings
        self.dt, self.u_max = s.task.dt, s.task.u_max
        self.plant = PendulumPlant(s.task)
        self.rng = np.random.default_rng(self.seed)
        torch.manual_seed(self.seed)
        self.q = AngleFeatureQMLP(QMLPSettings(nx=3, nu=1, hidden=tuple(s.hidden)))
        self.q.set_input_normalization([0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 4.0, max(1.0, s.task.u_max)])
        self.q.set_output_affine(s.q_output_scale, 0.0)
        tset = CriticTrainerSettings(learning_rate=s.learning_rate, weight_decay=0.0, polyak=s.target_polyak, grad_clip_norm=100.0,
                                     batches_per_update=max(1, s.minibatches), batch_size=s.batch_size,
                                     discount=s.mppi.gamma, seed=self.seed, torch_threads=1)
        self.trainer = CriticTrainer(self.q, tset, target_fn=one_step_q_targets(s.mppi.gamma, self._free_energy_targets))
        self.buffer = ReplayBuffer(ReplaySpec(capacity=s.replay_capacity, nx=2, nu=1))
        self.stage_cost = _core.PendulumSwingUpCost(1, s.task.w_rate, 1.0 / self.dt)
        self.episodes = 0
        self.model_params = (s.task.mass, s.task.length)
        # "step" mode draws from its own stream, so the per-episode stream (self.rng) is unchanged
        self.step_rng = np.random.default_rng([self.seed, 0x5EED])
        # "rollout" mode: per-rollout draws from a third stream (the others stay unchanged)
        self.rollout_rng = np.random.default_rng([self.seed, 0xE05E])
        self.per_rollout = not s.true_model and s.bias_mode in ("rollout", "ensemble")
        if not s.true_model and s.bias_mode == "run":
            self.model_params = sample_biased_parameters(s.task, self.rng)
        if self.per_rollout:
            mid = 0.5 * (s.task.bias_low + s.task.bias_high)
            self.model_params = (s.task.mass * mid, s.task.length * mid)
        self.last_rollout_params: Optional[np.ndarray] = None
        self.timing = {"mppi_s": 0.0, "mppi_calls": 0, "learn_s": 0.0, "target_solves": 0, "target_s": 0.0}

    # -- planner ---------------------------------------------------------------------------
    def _running_cost(self, horizon: int, q: Optional[QMLP]):
        if not self.settings.use_q:
            return self.stage_cost
        last = q_to_native(q if q is not None else self.q, Q_FEATURES, scale=1.0 / self.dt)
        return _core.HorizonSwitchCost(self.stage_cost, last, (horizon - 1.5) * self.dt)

    def _solver(self, seed: int, horizon: int, num_samples: int, num_iterations: int, q: Optional[QMLP] = None):
        m, l = self.model_params
        dyn = _core.PendulumDynamics(m, l, self.settings.task.damping)
        cfg = self.settings.mppi.to_core(self.dt, self.u_max, 1, seed=seed, horizon=horizon, num_samples=num_samples,
                                         num_iterations=num_iterations)
        return _core.MppiSolver(dyn, self._running_cost(horizon, q), None, cfg)

    def _draw_rollout_models(self, solver) -> np.ndarray:
        """bias_mode "rollout": one fresh (m, l) per sample of ``solver`` (sample k uses row k);
        "ensemble": ``ensemble_size`` fresh draws, every sample rolled out in all (mean cost)."""
        s = self.settings
        ens = s.bias_mode == "ensemble"
        n = s.ensemble_size if ens else solver.settings.num_samples
        P = sample_biased_parameter_sets(s.task, self.rollout_rng, n)
        solver.set_rollout_models([_core.PendulumDynamics(float(m), float(l), s.task.damping) for m, l in P],
                                  average=ens)
        self.last_rollout_params = P
        return P

    # -- Eq. (19) ----------------------------------------------------------------------------
    def _free_energy_targets(self, next_state, goal, target_q) -> np.ndarray:
        s = self.settings
        t0 = time.perf_counter()
        H = s.mppi.horizon
        if not s.true_model and s.bias_mode == "step":
            self.model_params = sample_biased_parameters(s.task, self.step_rng)
        solver = self._solver(self.seed * 7919 + self.trainer.gradient_steps + 1, H,
                              s.target_samples or s.mppi.num_samples, s.target_iterations, q=target_q)
        zero = np.zeros((H, 1))
        out = np.empty(next_state.shape[0])
        for i, x in enumerate(next_state):
            if self.per_rollout:
                self._draw_rollout_models(solver)
            solver.set_plan(zero)
            solver.set_state(x, 0.0)
            out[i] = solver.optimize().free_energy
        self.timing["target_solves"] += len(out)
        self.timing["target_s"] += time.perf_counter() - t0
        return out

    # -- Algorithm 1 -----------------------------------------------------------------------
    def run_episode(self, x0: Optional[np.ndarray] = None) -> Dict[str, float]:
        """One episode on the true plant (model drawn per ``bias_mode``), then maybe an update."""
        s = self.settings
        per_step = not s.true_model and s.bias_mode == "step"
        if not s.true_model and s.bias_mode == "episode":
            self.model_params = sample_biased_parameters(s.task, self.rng)
        x = self.plant.reset(random_initial_state(self.rng) if x0 is None else x0)
        solver = self._solver(self.seed * 100_003 + self.episodes, s.mppi.horizon, s.mppi.num_samples,
                              s.mppi.num_iterations)
        total, upright = 0.0, 0
        m_sum, l_sum = 0.0, 0.0
        T = s.task.episode_steps
        for k in range(T):
            t0 = time.perf_counter()
            if per_step:
                # a fresh model from the distribution; the warm-started plan carries over
                self.model_params = sample_biased_parameters(s.task, self.step_rng)
                plan = np.array(solver.plan)
                solver = self._solver((self.seed * 100_003 + self.episodes) * 1009 + k, s.mppi.horizon,
                                      s.mppi.num_samples, s.mppi.num_iterations)
                solver.set_plan(plan)
            if self.per_rollout:
                P = self._draw_rollout_models(solver)
                m_sum += float(P[:, 0].mean())
                l_sum += float(P[:, 1].mean())
            else:
                m_sum += self.model_params[0]
                l_sum += self.model_params[1]
            solver.set_state(x, 0.0)
            solver.optimize()
            u = np.array(solver.action_from_policy())
            self.timing["mppi_s"] += time.perf_counter() - t0
            self.timing["mppi_calls"] += 1
            c, x_next = self.plant.step(u)
            if s.learn:
                self.buffer.add(state=x, goal=np.zeros(0), time_to_go=0.0, cost=c, next_state=x_next,
                                next_time_to_go=0.0, done=0.0, action=np.clip(u, -self.u_max, self.u_max))
            total += c
            upright += int(abs(np.arctan2(np.sin(x[0]), np.cos(x[0]))) < 0.3)
            x = x_next
            solver.shift(1)
        self.episodes += 1
        stats = {"train/episode_cost": total, "train/mean_step_cost": total / T, "train/upright_fraction": upright / T,
                 "train/model_mass": m_sum / T, "train/model_length": l_sum / T}
        if s.learn and self.episodes % s.update_every_episodes == 0 and s.minibatches > 0:
            t0 = time.perf_counter()
            stats.update(self.trainer.update(self.buffer))
            self.timing["learn_s"] += time.perf_counter() - t0
        return stats

    def state_dict(self) -> Dict:
        return {"episodes": self.episodes, "rng": self.rng.bit_generator.state, "timing": dict(self.timing),
                "step_rng": self.step_rng.bit_generator.state, "model_params": tuple(self.model_params),
                "rollout_rng": self.rollout_rng.bit_generator.state}

    def load_state_dict(self, d: Dict) -> None:
        self.episodes = int(d["episodes"])
        self.rng.bit_generator.state = d["rng"]
        if "step_rng" in d:
            self.step_rng.bit_generator.state = d["step_rng"]
            self.model_params = tuple(float(v) for v in d["model_params"])
        if "rollout_rng" in d:
            self.rollout_rng.bit_generator.state = d["rollout_rng"]
        self.timing.update(d["timing"])


__all__ = ["BIAS_MODES", "MpqSettings", "MpqAgent", "Q_FEATURES", "AngleFeatureQMLP"]
