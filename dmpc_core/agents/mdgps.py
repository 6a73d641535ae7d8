"""Mirror descent guided policy search (MDGPS, Montgomery & Levine 2016, Alg. 4) on the compiled core.

One iteration k (per condition i = one start state):
  1. sample N trajectories from the local controller p_i (``sampling: local``, off-policy) or from
     the global policy pi_theta (``sampling: global``, on-policy);
  2. fit the local linear-Gaussian dynamics p_i(x'|x, u) (per-step NIW MAP fit with a GMM prior,
     ``_core.fit_dynamics``) on the control the plant applied (``dynamics_control: applied``: the
     command clipped to the actuator range; a fit on the command under-states the control
     authority when the controllers saturate);
  3. fit the linearised global policy pi_bar_i on the same samples (``_core.fit_policy_linearization``);
  4. adjust the step epsilon_i (Sec. 4.2, ``step_rule: classic | global``);
  5. C-step: p_i <- argmin E_p[sum l] s.t. KL(p_i || pi_bar_i) <= epsilon_i (``_core.kl_lqr_solve``);
  6. S-step: fit pi_theta to the new p_i at the sampled states (App. B.2).
Iteration 0 starts with an S-step on the initial controllers so that pi_bar exists. With
``reference: local`` the C-step constrains p_i against its previous self and there is no S-step
(trajectory-centric RL with local models and a KL trust region); the step rule is then the
classic one of the local controller.

Step rules (cbfinn/gps ``_set_new_mult``, per condition): with the expected costs ell (App. B.3,
analytic under the fitted linear-Gaussian dynamics, ``LinearGaussianPolicy.expected_cost``)
  predicted = ell^{k-1,pi}_{k-1} - ell^k_{k-1},
  actual    = ell^{k-1,pi}_{k-1} - ell^k_k        (classic),
  actual    = ell^{k-1,pi}_{k-1} - ell^{k,pi}_k   (global),
  step_mult <- clip(clip(predicted / (2 max(1e-4, predicted - actual)), 0.1, 5) step_mult,
                    min_step_mult, max_step_mult),
which is epsilon' = epsilon (ell^k_{k-1} - ell^{k-1,pi}_{k-1}) / 2 (ell^k_{k-1} - ell^k_k) of the
paper (ell^k_k -> ell^{k,pi}_k for the global rule). epsilon = kl_step * step_mult * T.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

import numpy as np

from dmpc_core import _core
from dmpc_core.policies.gaussian_mlp import GaussianMlpPolicy, GaussianMlpSettings

SAMPLING = ("local", "global")
STEP_RULES = ("classic", "global")
REFERENCES = ("global", "local")
DYNAMICS_CONTROLS = ("applied", "commanded")


@dataclass
class GmmPriorConfig:
    """GMM prior of the local fits (cbfinn DynamicsPriorGMM / PolicyPriorGMM).

    Attributes:
    max_clusters: upper bound on the number of clusters K.
    min_samples_per_cluster: K = max(2, min(max_clusters, floor(points / this))).
    max_samples: trajectories kept in the prior (the most recent).
    strength: scales the prior's pseudo-counts (0 = least squares).
    """

    max_clusters: int = 20
    min_samples_per_cluster: int = 20
    max_samples: int = 20
    strength: float = 1.0

    def make(self, seed: int) -> "_core.GmmPrior":
        return _core.GmmPrior(_core.GmmPriorSettings(self.max_clusters, self.min_samples_per_cluster,
                                                     self.max_samples, self.strength), seed)


@dataclass
class InitLqrSettings:
    """Initial controllers (cbfinn init_lqr): max-entropy LQR on a guessed double integrator
    x_pos' = x_pos + dt v + dt^2 u, v' = v + dt u, with a cost holding the start state.

    Attributes:
    init_var: scales the cost down (larger = more exploration noise).
    stiffness: position weight.
    stiffness_vel: velocity weight relative to stiffness.
    final_weight: weight of the last step.
    """

    init_var: float = 1.0
    stiffness: float = 10.0
    stiffness_vel: float = 10.0
    final_weight: float = 1.0


@dataclass
class MdgpsSettings:
    """Attributes:
    samples_per_condition: trajectories sampled per condition and iteration (N).
    sampling: "local" (off-policy: run p_i) or "global" (on-policy: run pi_theta).
    step_rule: "classic" or "global" (Sec. 4.2).
    reference: "global" (MDGPS) or "local" (trajectory-centric RL, no S-step).
    kl_step: base step; epsilon = kl_step * step_mult * T.
    min_step_mult: lower clip of step_mult.
    max_step_mult: upper clip of step_mult.
    init_eta: first dual variable of the C-step (later ones start at the previous eta).
    dynamics_control: the control the dynamics are fitted on: "applied" (the command as the plant
        applied it, ``task.applied_control(U)``: clipped to the actuator range) or "commanded" (the
        controller's output before the actuator clip, as the public reference records it). Under
        saturation a fit on the commanded control regresses x' on commands the plant did not apply
        and under-states the control authority (F_t's control columns shrink towards 0).
    dynamics_regularization: added to the (x, u) block of the joint covariance of the dynamics fit.
    dynamics_prior: GMM prior of the dynamics fit.
    policy_prior: GMM prior of the global policy's linearisation.
    init: initial controllers.
    policy: the global policy and its S-step.
    """

    samples_per_condition: int = 5
    sampling: str = "local"
    step_rule: str = "global"
    reference: str = "global"
    kl_step: float = 2.0
    min_step_mult: float = 0.001
    max_step_mult: float = 2.0
    init_eta: float = 1.0
    dynamics_control: str = "applied"
    dynamics_regularization: float = 1e-6
    dynamics_prior: GmmPriorConfig = field(default_factory=lambda: GmmPriorConfig(5, 40, 40, 1.0))
    policy_prior: GmmPriorConfig = field(default_factory=GmmPriorConfig)
    init: InitLqrSettings = field(default_factory=InitLqrSettings)
    policy: GaussianMlpSettings = field(default_factory=GaussianMlpSettings)

    def validate(self) -> None:
        if self.sampling not in SAMPLING:
            raise ValueError(f"MdgpsSettings.sampling must be one of {SAMPLING}, got {self.sampling!r}")
        if self.step_rule not in STEP_RULES:
            raise ValueError(f"MdgpsSettings.step_rule must be one of {STEP_RULES}, got {self.step_rule!r}")
        if self.reference not in REFERENCES:
            raise ValueError(f"MdgpsSettings.reference must be one of {REFERENCES}, got {self.reference!r}")
        if self.reference == "local" and self.sampling == "global":
            raise ValueError("MdgpsSettings: reference 'local' (no global policy) needs sampling 'local'")
        if self.dynamics_control not in DYNAMICS_CONTROLS:
            raise ValueError(f"MdgpsSettings.dynamics_control must be one of {DYNAMICS_CONTROLS}, "
                             f"got {self.dynamics_control!r}")
        if self.samples_per_condition < 2:
            raise ValueError("MdgpsSettings.samples_per_condition must be >= 2")
        if not (self.kl_step > 0 and 0 < self.min_step_mult <= 1.0 <= self.max_step_mult and self.init_eta > 0):
            raise ValueError("MdgpsSettings: need kl_step > 0, 0 < min_step_mult <= 1 <= max_step_mult, init_eta > 0")
        if not self.dynamics_regularization >= 0:
            raise ValueError("MdgpsSettings.dynamics_regularization must be >= 0")
        self.policy.validate()


def new_step_mult(predicted: float, actual: float, step_mult: float, lo: float, hi: float) -> float:
    """cbfinn _set_new_mult: the step that minimises the model I(eps) = b eps + a eps^2 fitted to
    the predicted and the actual improvement (Sec. 4.2)."""
    mult = predicted / (2.0 * max(1e-4, predicted - actual))
    mult = max(0.1, min(5.0, mult))
    return max(min(mult * step_mult, hi), lo)


def init_lqr(T: int, nx: int, nu: int, x0: np.ndarray, dt: float, s: InitLqrSettings) -> "_core.LinearGaussianPolicy":
    """cbfinn init_lqr: the max-entropy LQR (Sigma = Q_uu^-1) of a guessed double integrator (first
    nu state entries positions, next nu velocities) with a stiffness cost around x0."""
    if nx < 2 * nu:
        raise ValueError("init_lqr: the state must start with nu positions and nu velocities")
    F = np.zeros((nx, nx + nu))
    F[:nu, :nu] = np.eye(nu)
    F[:nu, nu:2 * nu] = dt * np.eye(nu)
    F[:nu, nx:] = dt ** 2 * np.eye(nu)
    F[nu:2 * nu, nu:2 * nu] = np.eye(nu)
    F[nu:2 * nu, nx:] = dt * np.eye(nu)
    dyn = _core.LinearGaussianDynamics([F] * (T - 1), np.zeros((T - 1, nx)), [np.zeros((nx, nx))] * (T - 1),
                                       np.asarray(x0, float), 1e-6 * np.eye(nx))
    L = np.diag(np.concatenate([s.stiffness * np.ones(nu), s.stiffness * s.stiffness_vel * np.ones(nu),
                                np.zeros(nx - 2 * nu), np.ones(nu)])) / s.init_var
    lv = -L @ np.concatenate([x0, np.zeros(nu)])
    Cm = [L] * (T - 1) + [s.final_weight * L]
    cv = np.array([lv] * (T - 1) + [s.final_weight * lv])
    cost = _core.LgQuadraticCost(Cm, cv, np.zeros(T))
    pol, _ = _core.kl_lqr_backward(dyn, cost, None, 1.0)
    return pol


def lg_sampler(pol: "_core.LinearGaussianPolicy", noise: bool = True) -> Callable:
    K, k, L = pol.K, pol.k, pol.chol

    def act(t, x, eps):
        u = K[t] @ x + k[t]
        return u + L[t] @ eps if noise else u

    return act


def lg_to_arrays(p: "_core.LinearGaussianPolicy") -> Dict[str, np.ndarray]:
    return {"K": np.array(p.K), "k": np.array(p.k), "cov": np.array(p.cov)}


def lg_from_arrays(d: Dict) -> "_core.LinearGaussianPolicy":
    return _core.LinearGaussianPolicy(list(np.asarray(d["K"])), np.asarray(d["k"]), list(np.asarray(d["cov"])))


def dyn_to_arrays(d: "_core.LinearGaussianDynamics") -> Dict[str, np.ndarray]:
    return {"F": np.array(d.F), "f": np.array(d.f), "W": np.array(d.W), "x0_mean": np.array(d.x0_mean),
            "x0_cov": np.array(d.x0_cov)}


def dyn_from_arrays(d: Dict) -> "_core.LinearGaussianDynamics":
    return _core.LinearGaussianDynamics(list(np.asarray(d["F"])), np.asarray(d["f"]), list(np.asarray(d["W"])),
                                        np.asarray(d["x0_mean"]), np.asarray(d["x0_cov"]))


class _Condition:
    """Per-condition state of the algorithm."""

    def __init__(self, traj, dyn_prior, pol_prior) -> None:
        self.traj = traj                  # local controller that generated (or would generate) the samples
        self.eta = 1.0
        self.step_mult = 1.0
        self.dyn_prior = dyn_prior
        self.pol_prior = pol_prior
        self.dyn_points: List[np.ndarray] = []   # prior data kept for checkpoints (rebuilt on resume)
        self.pol_points: List[np.ndarray] = []
        self.prev: Optional[Dict] = None  # dyn, pol_lin, traj, new_traj of the previous iteration


class MdgpsAgent:
    """MDGPS on a task with ``nx, nu, T, dt, num_conditions, x0(i), rollout(i, controller, rng, noise),
    cost(X, U), quadratic_cost(), distance(X)`` and an observation map ``obs(X)`` (default: the state)."""

    def __init__(self, task, settings: Optional[MdgpsSettings] = None, seed: int = 0,
                 obs_fn: Optional[Callable[[np.ndarray], np.ndarray]] = None) -> None:
        self.task = task
        self.s = settings or MdgpsSettings()
        self.s.validate()
        self.seed = int(seed)
        self.rng = np.random.default_rng(self.seed)
        self.obs_fn = obs_fn or (lambda X: X)
        if self.s.dynamics_control == "applied" and not hasattr(task, "applied_control"):
            raise ValueError("MdgpsSettings.dynamics_control 'applied' needs a task with applied_control(U)")
        obs_dim = int(np.asarray(self.obs_fn(np.zeros((1, task.nx)))).shape[-1])
        self.policy = GaussianMlpPolicy(obs_dim, task.nu, self.s.policy, seed=self.seed)
        self.trainer = self.policy  # checkpoint interface of experiments/_common.py
        self.buffer = None
        Cm, cv, cc = task.quadratic_cost()
        self.cost = _core.LgQuadraticCost(list(Cm), cv, cc)
        self.conds = []
        for i in range(task.num_conditions):
            traj = init_lqr(task.T, task.nx, task.nu, task.x0(i), task.dt, self.s.init)
            c = _Condition(traj, self.s.dynamics_prior.make(self.seed * 1000 + i),
                           self.s.policy_prior.make(self.seed * 1000 + 500 + i))
            c.eta = self.s.init_eta
            self.conds.append(c)
        self.iteration = 0
        self.timing = {"sample_s": 0.0, "dynamics_s": 0.0, "policy_fit_s": 0.0, "cstep_s": 0.0, "sstep_s": 0.0,
                       "cstep_tries": 0, "cstep_calls": 0, "cstep_failures": 0, "dynamics_calls": 0, "sstep_calls": 0}

    # ---- sampling and evaluation ----
    def global_sampler(self, noise: bool = True) -> Callable:
        std = np.sqrt(self.policy.var)

        def act(t, x, eps):
            u = self.policy.mean(self.obs_fn(x[None]))[0]
            return u + std * eps if noise else u

        return act

    def sample(self, i: int, use_global: bool) -> tuple:
        ctrl = self.global_sampler() if use_global else lg_sampler(self.conds[i].traj)
        X, U = [], []
        for _ in range(self.s.samples_per_condition):
            x, u = self.task.rollout(i, ctrl, self.rng, noise=True)
            X.append(x)
            U.append(u)
        return X, U

    def evaluate(self) -> Dict[str, float]:
        """Noise-free rollouts of the global policy and of the local mean controllers per condition."""
        out: Dict[str, float] = {}
        g_final, g_avg, g_cost, l_final, l_avg = [], [], [], [], []
        for i in range(self.task.num_conditions):
            X, U = self.task.rollout(i, self.global_sampler(noise=False), None, noise=False)
            f, a = self.task.distance(X)
            g_final.append(f)
            g_avg.append(a)
            g_cost.append(float(self.task.cost(X, U).sum()))
            X, _ = self.task.rollout(i, lg_sampler(self.conds[i].traj, noise=False), None, noise=False)
            f, a = self.task.distance(X)
            l_final.append(f)
            l_avg.append(a)
        out["eval/global_final_distance"] = float(np.mean(g_final))
        out["eval/global_mean_distance"] = float(np.mean(g_avg))
        out["eval/global_cost"] = float(np.mean(g_cost))
        out["eval/local_final_distance"] = float(np.mean(l_final))
        out["eval/local_mean_distance"] = float(np.mean(l_avg))
        return out

    def fit_controls(self, U: List[np.ndarray]) -> List[np.ndarray]:
        """The controls the dynamics are fitted on (``dynamics_control``)."""
        if self.s.dynamics_control == "applied":
            return [self.task.applied_control(u) for u in U]
        return list(U)

    def fit_dynamics(self, c: _Condition, X: List[np.ndarray], U: List[np.ndarray]) -> "_core.LinearGaussianDynamics":
        """Update condition c's GMM prior with the samples (X, U as commanded) and fit its local
        linear-Gaussian dynamics on the controls of ``fit_controls``."""
        U = self.fit_controls(U)
        pts = [_core.dynamics_points(x, u) for x, u in zip(X, U)]
        c.dyn_points = (c.dyn_points + pts)[-self.s.dynamics_prior.max_samples:]
        c.dyn_prior.update(pts)
        return _core.fit_dynamics(X, U, c.dyn_prior, self.s.dynamics_regularization)

    # ---- one iteration of Alg. 4 ----
    def _fit_policy(self, c: _Condition, X: List[np.ndarray]) -> "_core.LinearGaussianPolicy":
        MU = [self.policy.mean(self.obs_fn(x)) for x in X]
        pts = [np.hstack([x, mu]) for x, mu in zip(X, MU)]
        c.pol_points = (c.pol_points + pts)[-self.s.policy_prior.max_samples:]
        c.pol_prior.update(pts)
        return _core.fit_policy_linearization(X, MU, [self.policy.cov], c.pol_prior)

    def run_iteration(self) -> Dict[str, float]:
        s, task, T = self.s, self.task, self.task.T
        use_global = s.sampling == "global" and self.iteration > 0 and s.reference == "global"
        stats: Dict[str, float] = {}
        tic = time.perf_counter()
        samples = [self.sample(i, use_global) for i in range(task.num_conditions)]
        self.timing["sample_s"] += time.perf_counter() - tic
        stats["train/sample_cost"] = float(np.mean([task.cost(x, u).sum() for X, U in samples for x, u in zip(X, U)]))
        # 2. dynamics
        dyns = []
        tic = time.perf_counter()
        for c, (X, U) in zip(self.conds, samples):
            dyns.append(self.fit_dynamics(c, X, U))
            self.timing["dynamics_calls"] += 1
        self.timing["dynamics_s"] += time.perf_counter() - tic
        local_only = s.reference == "local"
        if self.iteration == 0 and not local_only:  # the global policy catches up with the initial controllers
            self._s_step(samples, [c.traj for c in self.conds])
        # 3. linearised global policy
        tic = time.perf_counter()
        pol_lins = [None if local_only else self._fit_policy(c, X) for c, (X, _) in zip(self.conds, samples)]
        self.timing["policy_fit_s"] += time.perf_counter() - tic
        # 4. step adjustment, 5. C-step
        new_trajs, kls, etas, mults = [], [], [], []
        for i, (c, dyn, lin) in enumerate(zip(self.conds, dyns, pol_lins)):
            if c.prev is not None:
                p = c.prev
                ref_prev = p["traj"] if local_only else p["pol_lin"]
                base = ref_prev.expected_cost(p["dyn"], self.cost)
                predicted = base - p["new_traj"].expected_cost(p["dyn"], self.cost)
                if s.step_rule == "global" and not local_only:
                    new_cost = lin.expected_cost(dyn, self.cost)
                else:
                    new_cost = c.traj.expected_cost(dyn, self.cost)
                actual = base - new_cost
                c.step_mult = new_step_mult(predicted, actual, c.step_mult, s.min_step_mult, s.max_step_mult)
                stats[f"step/c{i}_predicted"] = predicted
                stats[f"step/c{i}_actual"] = actual
            ref = c.traj if local_only else lin
            eps = s.kl_step * c.step_mult * T
            tic = time.perf_counter()
            try:
                res = _core.kl_lqr_solve(dyn, self.cost, ref, eps, c.eta)
            except RuntimeError:  # no eta gives a PD Q~_uu: keep the controller, shrink the step
                self.timing["cstep_s"] += time.perf_counter() - tic
                self.timing["cstep_failures"] += 1
                c.step_mult = max(s.min_step_mult, 0.5 * c.step_mult)
                new_trajs.append(c.traj)
                stats[f"cstep/c{i}_failed"] = 1.0
                continue
            self.timing["cstep_s"] += time.perf_counter() - tic
            self.timing["cstep_tries"] += res.tries
            self.timing["cstep_calls"] += 1
            c.eta = res.eta
            new_trajs.append(res.policy)
            kls.append(res.kl / eps)
            etas.append(res.eta)
            mults.append(c.step_mult)
            stats[f"cstep/c{i}_kl_over_eps"] = res.kl / eps
            stats[f"cstep/c{i}_eta"] = res.eta
            stats[f"cstep/c{i}_step_mult"] = c.step_mult
            stats[f"cost/c{i}_local_pred"] = res.policy.expected_cost(dyn, self.cost)
            if lin is not None:
                stats[f"cost/c{i}_global_lin"] = lin.expected_cost(dyn, self.cost)
        if kls:
            stats["cstep/kl_over_eps_max"] = float(np.max(kls))
            stats["cstep/eta_mean"] = float(np.mean(etas))
        stats["cstep/step_mult_mean"] = float(np.mean([c.step_mult for c in self.conds]))
        # 6. S-step
        if not local_only:
            stats.update(self._s_step(samples, new_trajs))
        for c, dyn, lin, new in zip(self.conds, dyns, pol_lins, new_trajs):
            c.prev = {"dyn": dyn, "pol_lin": lin, "traj": c.traj, "new_traj": new}
            c.traj = new
        self.iteration += 1
        stats.update(self.evaluate())
        return stats

    def _s_step(self, samples, trajs) -> Dict[str, float]:
        obs, mu, prc = [], [], []
        for (X, _), p in zip(samples, trajs):
            K, k, P = np.array(p.K), np.array(p.k), np.array(p.inv_cov)
            for x in X:
                obs.append(self.obs_fn(x))
                mu.append(np.einsum("tux,tx->tu", K, x) + k)
                prc.append(P)
        obs, mu, prc = np.concatenate(obs), np.concatenate(mu), np.concatenate(prc)
        tic = time.perf_counter()
        r = self.policy.train(obs, mu, prc)
        self.timing["sstep_s"] += time.perf_counter() - tic
        self.timing["sstep_calls"] += 1
        return {"sstep/loss_first": r["loss_first"], "sstep/loss_last": r["loss_last"]}

    # ---- checkpoints (the network is saved through ``trainer``) ----
    def state_dict(self) -> Dict:
        conds = []
        for c in self.conds:
            d = {"traj": lg_to_arrays(c.traj), "eta": c.eta, "step_mult": c.step_mult,
                 "dyn_points": list(c.dyn_points), "pol_points": list(c.pol_points), "prev": None}
            if c.prev is not None:
                d["prev"] = {"dyn": dyn_to_arrays(c.prev["dyn"]), "traj": lg_to_arrays(c.prev["traj"]),
                             "new_traj": lg_to_arrays(c.prev["new_traj"]),
                             "pol_lin": None if c.prev["pol_lin"] is None else lg_to_arrays(c.prev["pol_lin"])}
            conds.append(d)
        return {"iteration": self.iteration, "conds": conds, "rng": self.rng.bit_generator.state,
                "timing": dict(self.timing)}

    def load_state_dict(self, d: Dict) -> None:
        if len(d["conds"]) != len(self.conds):
            raise ValueError(f"checkpoint has {len(d['conds'])} conditions, the task has {len(self.conds)}")
        self.iteration = int(d["iteration"])
        self.rng.bit_generator.state = d["rng"]
        self.timing.update({k: float(v) for k, v in d["timing"].items()})
        for c, e in zip(self.conds, d["conds"]):
            c.traj = lg_from_arrays(e["traj"])
            c.eta, c.step_mult = float(e["eta"]), float(e["step_mult"])
            c.dyn_points = [np.asarray(p) for p in e["dyn_points"]]
            c.pol_points = [np.asarray(p) for p in e["pol_points"]]
            if c.dyn_points:  # the priors are refitted on their stored data (EM from a fresh start)
                c.dyn_prior.update(c.dyn_points)
            if c.pol_points:
                c.pol_prior.update(c.pol_points)
            p = e["prev"]
            c.prev = None if p is None else {
                "dyn": dyn_from_arrays(p["dyn"]), "traj": lg_from_arrays(p["traj"]),
                "new_traj": lg_from_arrays(p["new_traj"]),
                "pol_lin": None if p["pol_lin"] is None else lg_from_arrays(p["pol_lin"])}
