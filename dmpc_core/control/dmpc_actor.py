"""The Deep Value MPC actor of the Ballbot: one builder of the DMPC problem (deep-value-mpc
Eq. 10 with Eq. 13 and Eq. 14), used by ``dmpc train`` (:mod:`dmpc_core.agents.deep_value_mpc`)
and by the controller node's :class:`dmpc_core.control.reach_mpc.ReachMpc` (``reach.critic_mode:
dmpc``, the shipped node graph, whose learner fits the same full-return targets from the
streamed transitions).

Given a native critic V(tau, x; g) (``_core.CriticModel``, e.g. ``CriticBundle.to_native()``),
a goal and the absolute time ``t_goal`` at which the episode ends, :meth:`DmpcActor.make_problem`
returns the SLQ problem

    min_u  int_t^{t+H} [ l_nom(x, u) + w * l_V(t, x) + 1/2 u'Ru ] dt + V(tau(t + H), x(t + H))

* l_V: Eq. (14), ``_core.ValueRunningCost`` (mode "running+terminal"; none in mode "terminal");
* the terminal term: Eq. (13), ``_core.ValueTerminalCost``;
* tau = max(t_goal - t, 0): nodes beyond the episode end see V(0, x), the termination cost
  q_f that the critic is trained to equal at tau = 0 (the costs clamp the time-to-go);
* l_nom: the nominal terms -- the upright term of App. B (``_core.UprightCost``), an optional
  quadratic tilt term, relaxed log barriers on tilt and torque (``BoxBarrierCost``) and an
  optional known-geometry wall term (a departure, off by default).

The Hessian of l_V is Gauss-Newton-like: the dynamics' second derivatives are dropped (and, with
``third_order: drop``, V's third derivatives as well); see ``value_costs.hpp``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence

import numpy as np

from dmpc_core import _core
from dmpc_core.control.dmpc_problem import MODES, build_dmpc_problem
from dmpc_core.costs import BoxBarrierCost
from dmpc_core.tasks import ballbot

@dataclass
class ActorSettings:
    """MPC actor (Eq. 10 with Eqs. 13-14).

    Attributes:
        mode: "terminal" (value as heuristic only: the vanilla/POLO baseline) or
            "running+terminal" (DMPC: Eq. 14 running cost too).
        horizon_time: H [s]; node_dt: SLQ node spacing [s] (H / node_dt nodes).
        r: control weight R = r I (also the R of Xi = g R^-1 g' in Eq. 14).
        w_tilt / w_tilt_rate: upright nominal term (Appendix B), ``_core.UprightCost``.
        w_tilt_quadratic: extra 1/2 w (pitch^2 + roll^2) nominal term. The upright term
            1 - cos(pitch) cos(roll) saturates, while the drift term -f' dV/dx of Eq. (14) (and a
            terminal value that rewards speed) grows with the tilt, so with a learned value the
            optimiser can buy speed by leaning until the robot falls; a quadratic keeps growing.
        running_weight: scale of the Eq. 14 term in the running cost.
        initial_iterations: SLQ iterations of the first solve of an episode (then 1 per step).
        third_order: ValueRunningCost third-order handling ('auto', 'fd', 'drop').
        project_psd: project the Eq. 14 Hessian to PSD (robust SLQ backward pass).
        tilt_limit: |pitch|, |roll| <= tilt_limit [rad] as a relaxed log barrier in the actor's
            running cost (``dmpc_core.costs.BoxBarrierCost``; 0 = none). SLQ has no hard bounds;
            the barrier keeps the plan out of unrecoverable leans that a learned value's drift
            term -f' dV/dx can otherwise buy.
        torque_limit: |u_i| <= torque_limit [N m] as a relaxed barrier (0 = none); set it to
            the plant's limit so that the plan does not count on torque the plant clips.
        barrier_mu / barrier_delta: barrier weight and relaxation margin (relative: the margin is
            barrier_delta * tilt_limit [rad] for both barriers; torques then switch to the
            quadratic branch only within that many N m of the limit).
        slq_iterations_per_step: SLQ iterations per control step after the first solve. 1 is
            Algorithm 1 (one real-time iteration per delta t); k > 1 is a departure (standard in
            OCS2-style MPC when the time allows): each step costs up to k times the solve time
            (SLQ stops earlier when it converges).
        wall_weight: > 0 adds a known-geometry wall term to the actor's running cost
            (``_core.WallPenalty`` on the ball position with the task's walls, boundary
            included): wall_weight * sum_j softplus_beta(d_safe - clearance_j)^2 with
            d_safe = robot_radius + wall_margin and beta = wall_beta [1/m]. A departure: the
            paper's actor sees the walls only through the value. 0 (default) = none.
        wall_margin: [m] clearance beyond the robot radius at which the wall term starts.
        wall_beta: [1/m] softness of the wall term (larger = sharper, ~0 beyond d_safe + 3/beta).
    """

    mode: str = "running+terminal"
    horizon_time: float = 1.0
    node_dt: float = 0.05
    r: float = 0.02
    w_tilt: float = 20.0
    w_tilt_rate: float = 5.0
    w_tilt_quadratic: float = 0.0
    running_weight: float = 1.0
    initial_iterations: int = 3
    third_order: str = "drop"
    project_psd: bool = True
    tilt_limit: float = 0.0
    torque_limit: float = 0.0
    barrier_mu: float = 0.1
    barrier_delta: float = 0.05
    slq_iterations_per_step: int = 1
    wall_weight: float = 0.0
    wall_margin: float = 0.1
    wall_beta: float = 50.0

    def validate(self) -> None:
        if self.slq_iterations_per_step < 1:
            raise ValueError("slq_iterations_per_step must be >= 1")
        if self.wall_weight < 0 or not self.wall_beta > 0:
            raise ValueError("wall_weight must be >= 0 and wall_beta > 0")
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        n = self.horizon_time / self.node_dt
        if n < 1 or abs(n - round(n)) > 1e-6:
            raise ValueError("horizon_time must be a positive multiple of node_dt")
        if not self.r > 0:
            raise ValueError("r must be > 0")
        if self.tilt_limit < 0 or self.torque_limit < 0:
            raise ValueError("tilt_limit and torque_limit must be >= 0 (0 = none)")
        if (self.tilt_limit > 0 or self.torque_limit > 0) and not (self.barrier_mu > 0 and 0 < self.barrier_delta < 1):
            raise ValueError("barrier_mu must be > 0 and barrier_delta in (0, 1)")

    @property
    def horizon(self) -> int:
        return int(round(self.horizon_time / self.node_dt))


class DmpcActor:
    """Builds the Ballbot DMPC problem from :class:`ActorSettings` and a native critic.

    Args:
        settings: actor settings (validated here).
        model: the Ballbot dynamics (a new one if None).
        walls: ``_core.Wall`` list for the optional known-geometry wall term (``wall_weight``).
        robot_radius: [m] used by the wall term.
    """

    nx, nu = ballbot.NX, ballbot.NU  # with model and nominal_terms: the robot of build_dmpc_problem

    def __init__(self, settings: ActorSettings, model=None, walls: Optional[Sequence] = None,
                 robot_radius: float = 0.15):
        settings.validate()
        self.settings = settings
        self.model = model or _core.BallbotDynamics()
        self.R = settings.r * np.eye(ballbot.NU)
        self.walls = list(walls or [])
        self.robot_radius = float(robot_radius)
        self._nominal = None
        self._lqr = None

    def nominal_terms(self) -> List:
        """[(name, cost)] of the actor's running terms other than the value: the upright term
        (App. B), the quadratic tilt term, the tilt / torque barriers and the wall term (as
        configured)."""
        s = self.settings
        terms = [("upright", _core.UprightCost(ballbot.NX, ballbot.NU, ballbot.PITCH, ballbot.ROLL, 8, 9,
                                               s.w_tilt, s.w_tilt_rate))]
        if s.w_tilt_quadratic > 0:
            q = np.zeros(ballbot.NX)
            q[[ballbot.PITCH, ballbot.ROLL]] = s.w_tilt_quadratic
            terms.append(("tilt", _core.QuadraticCost(np.diag(q), np.zeros((ballbot.NU, ballbot.NU)),
                                                      np.zeros(ballbot.NX), np.zeros(ballbot.NU))))
        if s.tilt_limit > 0 or s.torque_limit > 0:  # one term: each Python cost call costs ~20 us
            sx = [ballbot.PITCH, ballbot.ROLL] if s.tilt_limit > 0 else []
            su = list(range(ballbot.NU)) if s.torque_limit > 0 else []
            terms.append(("barrier", BoxBarrierCost(ballbot.NX, ballbot.NU, sx, [s.tilt_limit] * len(sx), su,
                                                    [s.torque_limit] * len(su), mu=s.barrier_mu,
                                                    delta=s.barrier_delta * max(s.tilt_limit, 1e-9))))
        if s.wall_weight > 0:  # departure: the walls' known geometry in the actor's cost
            if not self.walls:
                raise ValueError("wall_weight > 0 needs the task's walls")
            d_safe = self.robot_radius + s.wall_margin
            terms.append(("walls", _core.WallPenalty(ballbot.NX, ballbot.NU, ballbot.PX, ballbot.PY,
                                                     self.walls, d_safe, s.wall_weight, s.wall_beta)))
        return terms

    def nominal_cost(self, x: np.ndarray, u: np.ndarray) -> float:
        """The actor's own (non-value) running cost at (x, u): nominal terms + 1/2 u'Ru."""
        if self._nominal is None:
            self._nominal = [c for _, c in self.nominal_terms()]
        return float(sum(c.value(0.0, x, u) for c in self._nominal) + 0.5 * u @ self.R @ u)

    def make_problem(self, critic, goal, t_goal: float, integrator: str = "rk4", horizon: Optional[int] = None,
                     dt: Optional[float] = None, value_weight: float = 1.0):
        """The DMPC problem (module doc) for ``critic`` (its goal is set to ``goal``) and an
        episode that ends at absolute time ``t_goal``. ``horizon`` / ``dt`` override the
        settings' grid (the controller node uses its MPC grid); ``value_weight`` scales both
        value terms (1 = deep-value-mpc). Returns (problem, terminal value term, running value
        term or None); the value terms expose ``t_goal`` for later changes."""
        s = self.settings
        horizon = s.horizon if horizon is None else int(horizon)
        dt = s.node_dt if dt is None else float(dt)
        return build_dmpc_problem(self, critic, goal, t_goal, self.R, s.mode, horizon, dt, integrator,
                                  s.running_weight, value_weight, s.project_psd, s.third_order)

    def lqr_policy(self, problem, x0: np.ndarray, t0: float = 0.0):
        """``tasks.ballbot.lqr_policy`` stabilising at the start position (the Riccati gain is
        computed once per actor: it depends only on the model, R and the node dt)."""
        if self._lqr is None:
            self._lqr = ballbot.lqr_policy(problem, (0.0, 0.0))
        base = self._lqr
        pol = _core.Policy()
        pol.t0, pol.dt = float(t0), base.dt
        pol.u_ff = np.array(base.u_ff)
        x_ref = np.zeros(ballbot.NX)
        x_ref[:2] = np.asarray(x0, float)[:2]
        pol.x_nom = np.tile(x_ref, (problem.horizon + 1, 1))
        pol.K = list(base.K)
        return pol

    def greedy_input(self, values_dx: np.ndarray, states: np.ndarray) -> np.ndarray:
        """u* = -R^-1 g(x)' dV/dx for each row (the input the Eq. 14 running cost makes the
        actor track); ``values_dx`` and ``states`` are (n, nx). Returns (n, nu)."""
        Rinv = np.linalg.inv(self.R)
        out = np.empty((len(states), ballbot.NU))
        for i, (x, p) in enumerate(zip(np.asarray(states, float), np.asarray(values_dx, float))):
            _, y = self.model.drift_input_projection(x, p)
            out[i] = -Rinv @ y
        return out
