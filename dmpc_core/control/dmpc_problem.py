"""The Deep Value MPC problem (deep-value-mpc Eq. 10 with Eq. 13 and Eq. 14) for any robot that
gives its dynamics and its nominal running terms: :func:`build_dmpc_problem`, and the Franka
Panda's actor on it, :class:`PandaDmpcActor`.

    min_u  int_t^{t+H} [ l_nom(x, u) + w * l_V(t, x) + 1/2 u'Ru ] dt + V(tau(t + H), x(t + H))

* l_V: Eq. (14), ``_core.ValueRunningCost`` (mode "running+terminal"; none in mode "terminal");
  it needs g(x) and its x-derivatives contracted with V_x (``DynamicsModel.input_jacobians``;
  the Panda's g(x) = [0; M^-1(q)] from pinocchio's ABA derivatives);
* the terminal term: Eq. (13), ``_core.ValueTerminalCost``;
* tau = max(t_goal - t, 0) (the costs clamp the time-to-go: V(0, x) is the termination cost).

The builder is the one of the Ballbot actor (:class:`dmpc_core.control.dmpc_actor.DmpcActor`)
written against a small robot interface (:class:`ActorRobot`): sizes, the dynamics model and
the nominal terms.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional, Protocol, Tuple

import numpy as np

from dmpc_core import _core

MODES = ("terminal", "running+terminal")


class ActorRobot(Protocol):
    """What :func:`build_dmpc_problem` needs from a robot.

    Attributes:
        nx, nu: state and input sizes.
        model: the ``_core.DynamicsModel`` of the problem (control-affine).
    """

    nx: int
    nu: int
    model: object

    def nominal_terms(self) -> List[Tuple[str, object]]:
        """[(name, cost)] of the running terms other than the value and 1/2 u'Ru."""


def build_dmpc_problem(robot: ActorRobot, critic, goal, t_goal: float, R: np.ndarray, mode: str, horizon: int,
                       dt: float, integrator: str, running_weight: float = 1.0, value_weight: float = 1.0,
                       project_psd: bool = True, third_order: str = "drop"):
    """The DMPC problem (module doc) for ``critic`` (its goal set to ``goal``) and an episode that
    ends at absolute time ``t_goal``. Returns (problem, terminal value term, running value term
    or None); the value terms expose ``t_goal`` for later changes."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}")
    if horizon < 1 or not dt > 0:
        raise ValueError("horizon must be >= 1 and dt > 0")
    if critic.nx != robot.nx:
        raise ValueError(f"critic has nx={critic.nx}; the robot has {robot.nx}")
    R = np.asarray(R, float)
    if R.shape != (robot.nu, robot.nu):
        raise ValueError(f"R must be ({robot.nu}, {robot.nu})")
    critic.set_goal(np.asarray(goal, dtype=float))
    running = _core.SumCost(robot.nx, robot.nu)
    for name, term in robot.nominal_terms():
        running.add(name, term)
    value_running = None
    if mode == "running+terminal":
        value_running = _core.ValueRunningCost(critic, robot.model, np.asfortranarray(R), float(t_goal),
                                               project_psd, third_order)
        running.add("value", value_running, running_weight * value_weight)
    value_terminal = _core.ValueTerminalCost(critic, float(t_goal), robot.nu)
    terminal = value_terminal
    if value_weight != 1.0:
        terminal = _core.SumCost(robot.nx, robot.nu)
        terminal.add("value", value_terminal, value_weight)
    problem = _core.Problem(robot.model, running, terminal, horizon, dt, integrator, R)
    return problem, value_terminal, value_running


class InputOffsetCost(_core.CostModel):
    """l(x, u) = 1/2 u_ref' R u_ref - u_ref' R u: added to the problem's own 1/2 u'Ru it makes the
    control cost 1/2 (u - u_ref)' R (u - u_ref) without changing the R of Eq. (14). The Panda's
    actor centres its torques on the gravity torque u_ref = g(q0) of the episode's start (with
    1/2 u'Ru alone, holding the arm against gravity costs ~0.5 r (30 N m)^2 per second and a
    value-free actor lets the arm sag). lu = -R u_ref; the other derivatives are zero."""

    def __init__(self, R: np.ndarray, u_ref: np.ndarray, nx: int):
        R = np.asarray(R, float)
        super().__init__(nx, R.shape[0])
        self.R = R
        self.set_reference(u_ref)

    def set_reference(self, u_ref) -> None:
        u_ref = np.asarray(u_ref, float)
        if u_ref.shape != (self.nu,) or not np.all(np.isfinite(u_ref)):
            raise ValueError(f"u_ref must be {self.nu} finite numbers")
        self.u_ref, self._Ru = u_ref.copy(), self.R @ u_ref
        self._c = 0.5 * float(u_ref @ self._Ru)

    def calc(self, data, t, x, u):
        data.value = self._c - float(self._Ru @ u)

    def calc_diff(self, data, t, x, u):
        data.value = self._c - float(self._Ru @ u)
        data.lx, data.lxx = np.zeros(self.nx), np.zeros((self.nx, self.nx))
        data.lu, data.luu, data.lux = -self._Ru, np.zeros((self.nu, self.nu)), np.zeros((self.nu, self.nx))


@dataclass
class PandaActorSettings:
    """The Panda's DMPC actor.

    Attributes:
        mode: "terminal" or "running+terminal" (Eq. 14 too).
        horizon_time: H [s]; node_dt: node spacing [s]. Semi-implicit Euler is stable while
            node_dt * d * max eig M^-1(q) < 2 (d the joint damping; max eig M^-1 ~ 154 /(kg m^2)
            at the ready pose, the light wrist): 0.02 s with d = 0.1 (the obstacle task), at most
            0.01 s with d = 1 (the ROS simulator's).
        integrator: the problem's integrator.
        r: weight of the control cost 1/2 (u - g(q0))' R (u - g(q0)), see ``control_metric``.
        control_metric: "torque": R = r I (joint torques); "acceleration": R = r M(q0)^-2, i.e.
            1/2 r |M(q0)^-1 (u - g(q0))|^2, the joint accelerations the torque gives at the
            episode's start q0 (R is rebuilt by :meth:`PandaDmpcActor.set_start`). The greedy
            input of Eq. 14 is then u* - g = -(1/r) M(q0)^2 M^-1(q) V_v ~ -(1/r) M V_v: joint
            accelerations ~ -V_v / r on every joint. With "torque" they are -(1/r) M^-2 V_v and
            the light wrist (max eig M^-1 ~ 154) is driven ~10^4 times harder than the base by
            the same value slope.
        w_q / w_v: nominal joint regularisation 1/2 (w_q |q - q_posture|^2 + w_v |v|^2).
        posture: q of the regularisation ([] = Franka's ready pose).
        running_weight: scale of the Eq. 14 term.
        third_order / project_psd: ValueRunningCost options.
    """

    mode: str = "running+terminal"
    horizon_time: float = 0.6
    node_dt: float = 0.02
    integrator: str = "semi_implicit_euler"
    r: float = 1e-3
    control_metric: str = "torque"
    w_q: float = 1e-2
    w_v: float = 1e-1
    posture: list = field(default_factory=list)
    running_weight: float = 1.0
    third_order: str = "drop"
    project_psd: bool = True

    def validate(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        n = self.horizon_time / self.node_dt
        if n < 1 or abs(n - round(n)) > 1e-6:
            raise ValueError("horizon_time must be a positive multiple of node_dt")
        if not self.r > 0 or self.w_q < 0 or self.w_v < 0:
            raise ValueError("r must be > 0, w_q and w_v >= 0")
        if self.control_metric not in ("torque", "acceleration"):
            raise ValueError(f"control_metric must be 'torque' or 'acceleration', got {self.control_metric!r}")
        if self.posture and len(self.posture) != 7:
            raise ValueError("posture must list 7 joint angles (or be empty)")

    @property
    def horizon(self) -> int:
        return int(round(self.horizon_time / self.node_dt))


class PandaDmpcActor:
    """The Franka Panda as an :class:`ActorRobot`: x = [q; v] (14), u = joint torques (7), the
    critic V(tau, q, v; goal = TCP target (3)).

    Args:
        settings: actor settings.
        model: ``_core.PandaDynamics`` (with the plant's joint damping).
    """

    nx, nu, ng = 14, 7, 3

    def __init__(self, settings: PandaActorSettings, model):
        settings.validate()
        self.settings, self.model = settings, model
        from dmpc_core.models.panda import Q_READY  # noqa: PLC0415

        self.posture = np.asarray(settings.posture or Q_READY, float)
        self.R = self.control_weight(self.posture)
        self.torque_offset = InputOffsetCost(self.R, model.gravity(self.posture), self.nx)

    def control_weight(self, q0) -> np.ndarray:
        """R at the start configuration q0 (``PandaActorSettings.control_metric``)."""
        s = self.settings
        if s.control_metric == "torque":
            return s.r * np.eye(self.nu)
        Minv = np.linalg.inv(np.asarray(self.model.mass_matrix(np.asarray(q0, float)), float))
        R = s.r * Minv @ Minv
        return 0.5 * (R + R.T)

    def nominal_terms(self) -> List[Tuple[str, object]]:
        s = self.settings
        Q = np.diag(np.r_[np.full(7, s.w_q), np.full(7, s.w_v)])
        return [("posture", _core.QuadraticCost(Q, np.zeros((7, 7)), np.r_[self.posture, np.zeros(7)], np.zeros(7))),
                ("torque_offset", self.torque_offset)]

    def set_start(self, x0) -> None:
        """Centre the control cost on the gravity torque at the start configuration (and, with the
        "acceleration" metric, rebuild R there); takes effect in problems made afterwards."""
        q0 = np.asarray(x0, float)[:7]
        if self.settings.control_metric == "torque":
            self.torque_offset.set_reference(self.model.gravity(q0))
        else:
            self.R = self.control_weight(q0)
            self.torque_offset = InputOffsetCost(self.R, self.model.gravity(q0), self.nx)

    def make_problem(self, critic, goal, t_goal: float, horizon: Optional[int] = None, dt: Optional[float] = None,
                     value_weight: float = 1.0):
        s = self.settings
        return build_dmpc_problem(self, critic, goal, t_goal, self.R, s.mode, s.horizon if horizon is None else horizon,
                                  s.node_dt if dt is None else dt, s.integrator, s.running_weight, value_weight,
                                  s.project_psd, s.third_order)

    def gravity_policy(self, x0, t0: float = 0.0, horizon: Optional[int] = None, omega: float = 10.0):
        """Initial guess: gravity compensation at q0 plus a critically damped joint PD toward x0."""
        s = self.settings
        n = s.horizon if horizon is None else horizon
        q0 = np.asarray(x0, float)[:7]
        x_ref = np.r_[q0, np.zeros(7)]
        M = np.asarray(self.model.mass_matrix(q0), float)
        pol = _core.Policy()
        pol.t0, pol.dt = float(t0), s.node_dt
        pol.u_ff = np.tile(np.asarray(self.model.gravity(q0), float), (n, 1))
        pol.x_nom = np.tile(x_ref, (n + 1, 1))
        pol.K = [-np.hstack([omega ** 2 * M, 2.0 * omega * M])] * n
        return pol

    def greedy_input(self, values_dx: np.ndarray, states: np.ndarray) -> np.ndarray:
        """u* = -R^-1 g(x)' dV/dx = -R^-1 M^-1(q) dV/dv per row ((n, 14) each); (n, 7)."""
        Rinv = np.linalg.inv(self.R)
        out = np.empty((len(states), self.nu))
        for i, (x, p) in enumerate(zip(np.asarray(states, float), np.asarray(values_dx, float))):
            _, y = self.model.drift_input_projection(x, p)
            out[i] = -Rinv @ y
        return out
