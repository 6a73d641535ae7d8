"""POLO: Plan Online, Learn Offline (polo-plan-online-learn-offline.txt, Algorithm 1).

One readable loop (:meth:`PoloAgent.step`):

    a_t  <- MPPI(H) from s_t, terminal value = optimistic ensemble value V(s_H) (Eq. 6)
    s_{t+1} <- world.step(a_t);   D <- D + {s_t}
    every Z steps, G times:
        sample n states from D
        y^k(s) = sum_{t<N} gamma^t c_t + gamma^N V_k(s_N)     (Eq. 7: N-step MPPI from s with the
                                                               aggregate as terminal value)
        regress member k + beta * prior_k on y^k (+ noise)     (Eq. 5, randomized priors)

Costs, not rewards (dmpc minimises): V is a cost-to-go and optimism is a SOFT-MIN over the
members (``ValueEnsemble`` docstring). The terminal value is evaluated inside the C++ rollouts by
``_core.MlpEnsembleCost`` (native, GIL released; rebuilt from the torch weights after each
update). Time-to-go is not used (the worlds are stationary): the value input tau is fixed at 0.
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

from dmpc_core import _core
from dmpc_core.critics.networks import NormalizedMLP, QMLP, ValueEnsemble, ValueEnsembleSettings, ValueMLPSettings
from dmpc_core.critics.replay import ReplayBuffer, ReplaySpec
from dmpc_core.critics.targets import TrajectoryOptimizationTargets, n_step_targets, value_of
from dmpc_core.critics.training import CriticTrainer, CriticTrainerSettings
from dmpc_core.tasks.point_mass_worlds import ARENA


# ---------------------------------------------------------------------------------------------
# torch -> native
def net_tuple(net: NormalizedMLP, coefficient: float = 1.0):
    """One net in the layout of ``_core.MlpEnsembleCost`` members (weights, biases, mean, std,
    output_scale, output_bias, coefficient); tanh only."""
    if net.activation != "tanh":
        raise ValueError("the native evaluator implements tanh networks only")
    with torch.no_grad():
        weights = [l.weight.detach().numpy().astype(np.float64).copy() for l in net.layers]
        biases = [l.bias.detach().numpy().astype(np.float64).copy() for l in net.layers]
        return (weights, biases, net.input_mean.numpy().copy(), net.input_std.numpy().copy(),
                float(net.output_scale), float(net.output_bias), float(coefficient))


def ensemble_to_native(ensemble: ValueEnsemble, scale: float = 1.0, members: Optional[Sequence[int]] = None,
                       kappa: Optional[float] = None) -> "_core.MlpEnsembleCost":
    """Terminal cost phi(x) = scale * softmin_kappa_k(V_theta_k(x, tau=0) + beta V_prior_k(x, 0)).

    Input z = [x; tau = 0] as in ``ValueMLP`` (ng must be 0). ``members`` selects a subset of the
    members (e.g. ``[k]``: member k alone, as in the per-member targets of Eq. 7); ``kappa``
    overrides the ensemble's optimism temperature (0: plain mean)."""
    if ensemble.ng != 0:
        raise ValueError("goal-conditioned ensembles are not supported here")
    beta = float(ensemble.prior_beta)
    idx = range(len(ensemble.members)) if members is None else list(members)
    if len(idx) == 0:
        raise ValueError("need at least one member")
    nets = [[net_tuple(ensemble.members[k], 1.0), net_tuple(ensemble.priors[k], beta)] for k in idx]
    feats = [("id", i) for i in range(ensemble.nx)]
    kap = float(ensemble.kappa) if kappa is None else float(kappa)
    return _core.MlpEnsembleCost(ensemble.nx, 0, feats, False, np.zeros(1), nets, kap, scale)


def q_to_native(q: QMLP, features: Sequence, scale: float = 1.0) -> "_core.MlpEnsembleCost":
    """Running cost l(x, u) = scale * Q(phi(x), u) (K = 1); ``features`` maps the model state
    to the Q network's state input (e.g. [("cos", 0), ("sin", 0), ("id", 1)])."""
    if q.ng != 0 or len(features) != q.nx:
        raise ValueError(f"need {q.nx} features and no goal")
    nx_model = max(int(i) for _, i in features) + 1
    return _core.MlpEnsembleCost(nx_model, q.nu, list(features), True, np.zeros(0), [[net_tuple(q)]], 0.0, scale)


@torch.no_grad()
def spread_first_layer_units(ensemble: ValueEnsemble, spread: float, rng: np.random.Generator) -> None:
    """Re-draw the first-layer biases of every member and prior so that unit j's boundary
    w_j . z + b_j = 0 passes through a position c_j ~ U([-spread, spread]^2) (z: normalised
    inputs, positions are the first two; the other inputs are taken at 0). The weights are kept."""
    for net in [*ensemble.members, *ensemble.priors]:
        layer = net.layers[0]
        w = layer.weight.numpy()  # [hidden, nz]
        mean, std = net.input_mean.numpy(), net.input_std.numpy()
        c = rng.uniform(-spread, spread, size=(w.shape[0], 2))
        zc = np.zeros((w.shape[0], w.shape[1]))
        zc[:, :2] = (c - mean[:2]) / std[:2]
        zc[:, 2:] = (0.0 - mean[2:]) / std[2:]
        layer.bias.copy_(torch.from_numpy(-(w * zc).sum(axis=1)))


TARGET_MODES = ("aggregate", "member", "mean", "shared")
VELOCITY_OFF_STD = 1e12  # input std that removes the velocities from the value (value_inputs="position")


# ---------------------------------------------------------------------------------------------
@dataclass
class MppiAgentSettings:
    """MPPI settings of an agent (see ``_core.MppiSettings``). noise_std: per-input std (Sigma =
    noise_std^2 I)."""

    horizon: int = 32
    num_samples: int = 120
    noise_std: float = 0.6
    lambda_: float = 0.02
    step_size: float = 1.0
    gamma: float = 0.99
    control_cost_weight: float = 0.0
    num_iterations: int = 1
    smoothing: float = 0.5
    num_threads: int = 1

    def to_core(self, dt: float, u_max: float, nu: int, seed: int, horizon: Optional[int] = None,
                num_samples: Optional[int] = None, num_iterations: Optional[int] = None):
        return _core.MppiSettings(
            num_samples=int(num_samples or self.num_samples), horizon=int(horizon or self.horizon), dt=dt,
            noise_sigma=np.eye(nu) * self.noise_std**2, lambda_=self.lambda_, step_size=self.step_size,
            gamma=self.gamma, control_cost_weight=self.control_cost_weight,
            num_iterations=int(num_iterations or self.num_iterations), num_threads=self.num_threads,
            seed=int(seed), smoothing=self.smoothing, u_min=-u_max * np.ones(nu), u_max=u_max * np.ones(nu),
            integrator="rk4", tail_fill="zero", num_saved_trajectories=0)


@dataclass
class PoloSettings:
    """Attributes:
    mppi: acting planner (H = mppi.horizon; H = 1 is the greedy baseline).
    num_members, hidden, prior_beta, kappa: ensemble (Eqs. 5-6).
    update_every: Z; gradient_steps: G; batch_size: n; learning_rate, weight_decay, target_noise_std.
    target_horizon: N of Eq. (7); target_samples / target_iterations: its MPPI.
    target_mode: how Eq. (7) is solved.
        "aggregate": one N-step MPPI per state with the optimistic soft-min aggregate (Eq. 6) as
            terminal value; every member is bootstrapped at that common s_N (cheap, but s_N is
            selected by the optimistic aggregate, a selection shared by all members).
        "member": the paper's Eq. (7) literally, y^k(s) = min_a [sum gamma^t c_t + gamma^N V_k(s_N)]:
            one N-step MPPI per state AND member with member k alone as terminal value (K times
            the solves of "aggregate").
        "mean": one MPPI per state with the plain member mean (kappa = 0) as terminal value,
            each member bootstrapped at that s_N (no optimistic selection in the targets).
        "shared": one MPPI per state with the aggregate as terminal value (as "aggregate"), and
            ONE target for all members, y(s) = sum gamma^t c_t + gamma^N mean_k V_k(s_N): the
            common data y_i of Eq. (5), which every member fits with its own prior (and noise).
            With per-member bootstrapping ("aggregate", "member", "mean") each member's target
            is its own value near s, so in a reward-free world the members keep disagreeing at
            visited states (only gamma^N contracts it); a shared target removes the
            disagreement where there is data, which is what makes the optimism point to
            unvisited states (docs/results/polo.md).
    value_inputs: "state" (positions and velocities, normalised by 1 m and 2 m/s) or "position"
        (the velocity inputs are divided by VELOCITY_OFF_STD = 1e12, i.e. the value is a function
        of the position only up to 1e-12 relative, in torch and natively alike; the coverage of
        POLO Fig. 2 is defined over positions).
    value_position_scale: input std of the positions [m]. It sets the length scale of the random
        prior functions (Eq. 5) and so how far the fit at visited states generalises: with 1 m
        (the arena half width) the 2 x 16 tanh priors are nearly planar over the maze.
    value_unit_spread: 0 (default: torch's initialisation) or a half width [m]: the first-layer
        biases of every member and prior are re-drawn so that each hidden unit's boundary
        (w . z + b = 0) passes through a point drawn uniformly from the square
        [-spread, spread]^2 of positions. With torch's small biases most boundaries pass within
        about one value_position_scale of the arena centre, so a prior with a short length scale
        is a fan of wedges around the centre, not a random function with local bumps everywhere
        (docs/log/2026-12-07-polo.md, 2026-11-22). A departure from POLO (which does not specify the
        initialisation); needs value_inputs "position".
    plan_starts: 0 (default, as POLO: the acting MPPI warm-starts from its shifted plan only) or
        D > 0 (multi-start, a departure from POLO): every step the acting MPPI is additionally solved
        from D straight full-throttle plans (u = u_max (cos 2 pi j / D, sin 2 pi j / D) over the whole
        horizon) and the plan with the lowest nominal cost (running + gamma^H terminal) is kept.
        MPPI is a local optimiser: in the open box its samples reach only ~0.3 m around a nominal
        that has come to rest, while the lowest optimistic values lie ~1 m away (docs/log/2026-12-07-polo.md,
        2026-11-22). Costs D + 1 solves per step; the greedy baseline (H = 1) gets the same starts.
    replay_capacity: states kept.
    learn: False freezes the ensemble (ablation).
    """

    mppi: MppiAgentSettings = field(default_factory=MppiAgentSettings)
    num_members: int = 6
    hidden: tuple = (16, 16)
    prior_beta: float = 1.0
    kappa: float = 10.0
    update_every: int = 16
    gradient_steps: int = 32
    batch_size: int = 32
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    target_noise_std: float = 0.0
    target_horizon: int = 8
    target_samples: int = 32
    target_iterations: int = 1
    target_mode: str = "aggregate"
    value_inputs: str = "state"
    value_position_scale: float = 1.0
    value_unit_spread: float = 0.0
    plan_starts: int = 0
    replay_capacity: int = 100_000
    learn: bool = True

    def validate(self) -> None:
        if self.num_members < 1 or self.update_every < 1 or self.gradient_steps < 0 or self.batch_size < 1:
            raise ValueError("num_members, update_every, batch_size must be >= 1, gradient_steps >= 0")
        if self.target_horizon < 1 or self.kappa < 0:
            raise ValueError("target_horizon must be >= 1 and kappa >= 0")
        if self.value_inputs not in ("state", "position"):
            raise ValueError(f"value_inputs must be 'state' or 'position', got {self.value_inputs!r}")
        if self.target_mode not in TARGET_MODES:
            raise ValueError(f"target_mode must be one of {TARGET_MODES}, got {self.target_mode!r}")
        if not self.value_position_scale > 0:
            raise ValueError("value_position_scale must be > 0")
        if self.plan_starts < 0:
            raise ValueError("plan_starts must be >= 0")
        if self.value_unit_spread < 0:
            raise ValueError("value_unit_spread must be >= 0")
        if self.value_unit_spread > 0 and self.value_inputs != "position":
            raise ValueError("value_unit_spread needs value_inputs 'position'")


class PoloAgent:
    """POLO on a world exposing ``state``, ``step(u)``, ``planner_model()``, ``settings.control_dt``,
    ``settings.u_max``, ``nx``, ``nu`` (e.g. :class:`~dmpc_core.tasks.point_mass_worlds.PointMassWorld`).

    Args:
        world: the plant (hard contacts) - the agent plans with ``world.planner_model()``.
        settings: :class:`PoloSettings`.
        seed: seeds torch (ensemble init), the trainer's sampler and the MPPI noise.
    """

    def __init__(self, world, settings: PoloSettings, seed: int = 0) -> None:
        settings.validate()
        self.world, self.settings, self.seed = world, settings, int(seed)
        self.nx, self.nu = world.nx, world.nu
        self.dt, self.u_max = world.settings.control_dt, world.settings.u_max
        torch.manual_seed(self.seed)
        ens = ValueEnsembleSettings(value=ValueMLPSettings(nx=self.nx, ng=0, hidden=tuple(settings.hidden)),
                                    num_members=settings.num_members, prior_beta=settings.prior_beta,
                                    kappa=settings.kappa)
        self.ensemble = ValueEnsemble(ens)
        # fixed input normalisation: positions in +-1.5 m, speeds of a few m/s (or switched off), tau = 0
        v_std = 2.0 if settings.value_inputs == "state" else VELOCITY_OFF_STD
        self.ensemble.set_input_normalization(np.zeros(self.nx + 1), np.r_[np.full(2, settings.value_position_scale), np.full(self.nx - 2, v_std), 1.0])
        if settings.value_unit_spread > 0:
            spread_first_layer_units(self.ensemble, settings.value_unit_spread, np.random.default_rng(self.seed + 77_777))
        tsettings = CriticTrainerSettings(
            learning_rate=settings.learning_rate, weight_decay=settings.weight_decay, polyak=0.0,
            grad_clip_norm=10.0, batches_per_update=max(1, settings.gradient_steps), batch_size=settings.batch_size,
            discount=settings.mppi.gamma, target_noise_std=settings.target_noise_std, seed=self.seed, torch_threads=1)
        if settings.target_mode == "member":
            self.targets = self._member_targets
        elif settings.target_mode == "shared":
            self.targets = self._shared_targets
        else:
            self.targets = TrajectoryOptimizationTargets(self._plan_targets, settings.mppi.gamma)
        self.trainer = CriticTrainer(self.ensemble, tsettings, target_fn=self.targets)
        self.buffer = ReplayBuffer(ReplaySpec(capacity=settings.replay_capacity, nx=self.nx))
        self.dynamics, self.running_cost = world.planner_model()
        self._running_data = self.running_cost.create_data()
        self.t = 0
        self.rebuilds = 0
        self.timing = {"mppi_s": 0.0, "mppi_calls": 0, "learn_s": 0.0, "target_solves": 0, "target_s": 0.0}
        self.solver = self._build_solver(None)

    # -- planner ---------------------------------------------------------------------------
    def terminal_cost(self, model: Optional[ValueEnsemble] = None):
        return ensemble_to_native(model if model is not None else self.trainer.target)

    def _build_solver(self, plan: Optional[np.ndarray]):
        s = self.settings.mppi
        cfg = s.to_core(self.dt, self.u_max, self.nu, seed=self.seed * 100_003 + self.rebuilds)
        self.rebuilds += 1
        solver = _core.MppiSolver(self.dynamics, self.running_cost, self.terminal_cost(), cfg)
        if plan is not None:
            solver.set_plan(plan)
        return solver

    def act(self, x: np.ndarray) -> np.ndarray:
        """One MPPI optimisation from x; returns the first control."""
        t0 = time.perf_counter()
        self.solver.set_state(x, 0.0)
        r = self.solver.optimize()
        if self.settings.plan_starts > 0:
            best_cost, best_plan = r.nominal_cost, np.array(r.plan)
            for plan in self.start_plans():
                self.solver.set_plan(plan)
                self.solver.set_state(x, 0.0)
                r = self.solver.optimize()
                if r.nominal_cost < best_cost:
                    best_cost, best_plan = r.nominal_cost, np.array(r.plan)
            self.solver.set_plan(best_plan)
        u = np.array(self.solver.action_from_policy())
        self.timing["mppi_s"] += time.perf_counter() - t0
        self.timing["mppi_calls"] += 1
        return u

    def start_plans(self) -> List[np.ndarray]:
        """The ``plan_starts`` straight full-throttle plans [H, 2] of the multi-start option."""
        d, h = self.settings.plan_starts, self.settings.mppi.horizon
        if self.nu != 2:
            raise ValueError("plan_starts needs a planar (nu = 2) world")
        return [np.tile(self.u_max * np.array([np.cos(a), np.sin(a)]), (h, 1))
                for a in 2 * np.pi * np.arange(d) / max(d, 1)]

    # -- Eq. (7) targets ---------------------------------------------------------------------
    def _target_solver(self, terminal):
        s = self.settings
        cfg = s.mppi.to_core(self.dt, self.u_max, self.nu,
                             seed=self.seed * 7919 + self.trainer.gradient_steps,
                             horizon=s.target_horizon, num_samples=s.target_samples,
                             num_iterations=s.target_iterations)
        return _core.MppiSolver(self.dynamics, self.running_cost, terminal, cfg)

    def _plan_targets(self, state, goal, time_to_go, terminal_value, terminal=None):
        """N-step MPPI from each replayed state with the target ensemble's aggregate (target_mode
        "aggregate"), its plain mean ("mean") or the given native ``terminal`` as terminal value;
        returns per-step running costs (l dt), s_N, tau_N = 0, dones = 0."""
        s = self.settings
        t0 = time.perf_counter()
        if terminal is None:
            kappa = 0.0 if s.target_mode == "mean" else None
            terminal = ensemble_to_native(self.trainer.target, kappa=kappa)
        solver = self._target_solver(terminal)
        b, n = state.shape[0], s.target_horizon
        costs = np.zeros((b, n))
        final = np.zeros((b, self.nx))
        zero_plan = np.zeros((n, self.nu))
        for i in range(b):
            solver.set_plan(zero_plan)
            solver.set_state(state[i], 0.0)
            r = solver.optimize()
            xs, us = r.nominal_states, r.plan
            for k in range(n):
                self.running_cost.calc(self._running_data, k * self.dt, xs[k], us[k])
                costs[i, k] = self._running_data.value * self.dt
            final[i] = xs[n]
        self.timing["target_solves"] += b
        self.timing["target_s"] += time.perf_counter() - t0
        return costs, final, np.zeros(b), np.zeros((b, n), dtype=bool)

    def _shared_targets(self, batch, target_model: ValueEnsemble) -> np.ndarray:
        """One Eq. (7) target per state for all members: N-step MPPI against the aggregate, then
        y(s) = sum_{t<N} gamma^t c_t + gamma^N mean_k V_k(s_N). Returns [B] (the trainer
        broadcasts it to the members and adds the Eq. 5 noise per member)."""
        costs, x_n, tau_n, dones = self._plan_targets(batch["state"], batch["goal"], batch["time_to_go"], None)
        v_n = value_of(target_model, x_n, batch["goal"], tau_n, per_member=True).mean(axis=1)
        return n_step_targets(costs, v_n, dones, self.settings.mppi.gamma)

    def _member_targets(self, batch, target_model: ValueEnsemble) -> np.ndarray:
        """Eq. (7) per member: y^k(s) = sum_{t<N} gamma^t c_t + gamma^N V_k(s_N^k), where the N-step
        plan from s is optimised by MPPI against member k's own value (no shared selection).
        Returns [B, K]."""
        k_members = len(target_model.members)
        out = np.zeros((batch["state"].shape[0], k_members))
        for k in range(k_members):
            term = ensemble_to_native(target_model, members=[k])
            costs, x_n, tau_n, dones = self._plan_targets(batch["state"], batch["goal"], batch["time_to_go"],
                                                          None, terminal=term)
            v_n = value_of(target_model, x_n, batch["goal"], tau_n, per_member=True)[:, k]
            out[:, k] = n_step_targets(costs, v_n, dones, self.settings.mppi.gamma)
        return out

    # -- Algorithm 1 -------------------------------------------------------------------------
    def step(self) -> Dict[str, float]:
        """One world step (plan, act, store, maybe learn). Returns namespaced stats."""
        x = np.array(self.world.state)
        u = self.act(x)
        self.world.step(u)
        self.solver.shift(1)
        self.buffer.add(state=x, goal=np.zeros(0), time_to_go=0.0, cost=0.0, next_state=x, next_time_to_go=0.0, done=0.0)
        self.t += 1
        stats: Dict[str, float] = {}
        if self.settings.learn and self.t % self.settings.update_every == 0 and self.settings.gradient_steps > 0:
            t0 = time.perf_counter()
            stats = self.trainer.update(self.buffer)
            self.timing["learn_s"] += time.perf_counter() - t0
            self.solver = self._build_solver(self.solver.plan)
        return stats

    @torch.no_grad()
    def value_map(self, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
        """Aggregate value V(px, py, v = 0) on a grid (for figures), shape [len(xs), len(ys)]."""
        px, py = np.meshgrid(xs, ys, indexing="ij")
        st = np.zeros((px.size, self.nx))
        st[:, 0], st[:, 1] = px.ravel(), py.ravel()
        v = self.trainer.target(torch.from_numpy(st), None, torch.zeros(px.size, 1))
        return v.numpy().reshape(px.shape)

    @torch.no_grad()
    def disagreement(self) -> Dict[str, float]:
        """Diagnostic of the Eq. (5)-(6) mechanism on the world's coverage grid (cell centres, v = 0):
        mean member std, mean optimism (member mean - soft-min aggregate, Eq. 6) and mean aggregate
        value over the visited and the unvisited free cells. POLO explores when the members agree
        where there is data (std ratio visited/unvisited << 1) and the optimism is large elsewhere;
        ``optimism_steer_unvisited`` is the unvisited optimism weighted as the acting MPPI weighs the
        terminal value (gamma^H) in units of its temperature lambda (below ~1 it cannot steer)."""
        w = self.world
        n = w.visited.shape[0]
        edges = np.linspace(-ARENA, ARENA, n + 1)
        cc = 0.5 * (edges[:-1] + edges[1:])
        out: Dict[str, float] = {}
        for name, mask in (("visited", w.visited & w.free_cells), ("unvisited", ~w.visited & w.free_cells)):
            ii, jj = np.nonzero(mask)
            st = np.zeros((len(ii), self.nx))
            st[:, 0], st[:, 1] = cc[ii], cc[jj]
            tau = torch.zeros(len(ii), 1)
            x = torch.from_numpy(st)
            members = self.trainer.target.member_values(x, None, tau)
            agg = self.trainer.target.aggregate(members)
            out[f"member_std_{name}"] = float(members.std(dim=1).mean())
            out[f"optimism_{name}"] = float((members.mean(dim=1) - agg).mean())
            out[f"value_{name}"] = float(agg.mean())
        out["std_ratio"] = out["member_std_visited"] / out["member_std_unvisited"]
        s = self.settings.mppi
        out["optimism_steer_unvisited"] = s.gamma**s.horizon * out["optimism_unvisited"] / s.lambda_
        return out

    @torch.no_grad()
    def member_std_map(self) -> np.ndarray:
        """Member std of V at the coverage-grid cell centres (v = 0), shape [n, n] (for figures)."""
        n = self.world.visited.shape[0]
        edges = np.linspace(-ARENA, ARENA, n + 1)
        cc = 0.5 * (edges[:-1] + edges[1:])
        px, py = np.meshgrid(cc, cc, indexing="ij")
        st = np.zeros((n * n, self.nx))
        st[:, 0], st[:, 1] = px.ravel(), py.ravel()
        v = self.trainer.target.member_values(torch.from_numpy(st), None, torch.zeros(n * n, 1))
        return v.std(dim=1).numpy().reshape(n, n)

    # -- state ---------------------------------------------------------------------------------
    def state_dict(self) -> Dict:
        return {"t": self.t, "rebuilds": self.rebuilds, "world_state": np.array(self.world.state),
                "visited": self.world.visited.copy(), "plan": np.array(self.solver.plan),
                "timing": dict(self.timing)}

    def load_state_dict(self, d: Dict) -> None:
        # rebuild the acting solver with the seed it had when saved (checkpoints are taken right
        # after an update, when the solver was just rebuilt): the resumed run is the same run
        self.t, self.rebuilds = int(d["t"]), int(d["rebuilds"]) - 1
        self.world.state = np.asarray(d["world_state"], dtype=float)
        self.world.visited[:] = np.asarray(d["visited"], dtype=bool)
        self.timing.update(d["timing"])
        self.solver = self._build_solver(np.asarray(d["plan"]))


__all__ = ["PoloSettings", "PoloAgent", "MppiAgentSettings", "ensemble_to_native", "q_to_native", "net_tuple",
           "spread_first_layer_units"]
