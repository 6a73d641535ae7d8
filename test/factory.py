"""Factory of every dynamics model and cost model in the core, for the generic derivative tests.

Each entry builds a model and a sampler of points (x, u) where it is smooth. Add new models here:
the derivative tests in test_derivatives.py run over every entry, and test_factory_coverage.py fails
when a dynamics model or cost bound in ``dmpc_core._core`` has no entry.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from dmpc_core import _core


@dataclass
class Case:
    name: str
    build: Callable[[], object]
    sample: Callable[[np.random.Generator], tuple[np.ndarray, np.ndarray]]
    #: "exact", or "gauss_newton" for costs whose documented Hessian is J^T W J (its FD check is
    #: replaced by a check against the Gauss-Newton form in test_derivatives.py), or
    #: "drops_dynamics_curvature" for the Deep Value running cost on dynamics nonlinear in x
    #: (its lxx leaves out the dynamics' second derivatives, as documented in value_costs.hpp)
    hessian: str = "exact"


def _gauss(nx: int, nu: int, sx: float = 1.0, su: float = 1.0):
    return lambda rng: (sx * rng.standard_normal(nx), su * rng.standard_normal(nu))


class CubicPython(_core.DynamicsModel):
    """A Python-defined control-affine model with state-dependent g(x) (tests the trampoline)."""

    def __init__(self) -> None:
        super().__init__(2, 1)

    def calc(self, data, x, u):
        data.xdot = np.array([x[1], -x[0] ** 3 + np.cos(x[0]) * u[0]])

    def calc_diff(self, data, x, u):
        data.fx = np.array([[0.0, 1.0], [-3 * x[0] ** 2 - np.sin(x[0]) * u[0], 0.0]])
        data.fu = np.array([[0.0], [np.cos(x[0])]])


def _ballbot_sample(rng):
    """Away from the pitch = +-90 deg Euler singularity."""
    x = np.concatenate([rng.uniform(-2, 2, 2), rng.uniform(-np.pi, np.pi, 1), rng.uniform(-0.6, 0.6, 2), rng.standard_normal(5)])
    return x, 5.0 * rng.standard_normal(3)


def _panda():
    from dmpc_core.models.panda import default_urdf_path

    return _core.PandaDynamics(str(default_urdf_path()))


def _panda_damped():
    from dmpc_core.models.panda import default_urdf_path

    return _core.PandaDynamics(str(default_urdf_path()), 1.0)


def _panda_sample(rng):
    lo = np.array([-2.8, -1.7, -2.8, -3.0, -2.8, 0.0, -2.8])
    hi = np.array([2.8, 1.7, 2.8, -0.1, 2.8, 3.7, 2.8])
    return np.concatenate([rng.uniform(lo, hi), rng.standard_normal(7)]), 5.0 * rng.standard_normal(7)


def _frame_cost():
    return _core.FrameTranslationCost(_panda(), "panda_hand_tcp", np.array([0.5, 0.2, 0.35]), 10.0)


def random_learned_model(nx: int, nu: int, nq: int, features, hidden=(8, 8), seed: int = 0):
    """A native learned control-affine MLP with random weights and non-trivial normalisation."""
    rng = np.random.default_rng(seed)
    nl = nx - nq
    sizes = [len(features), *hidden, nl * (1 + nu)]
    W = [0.7 * rng.standard_normal((sizes[i + 1], sizes[i])) for i in range(len(sizes) - 1)]
    b = [0.3 * rng.standard_normal(sizes[i + 1]) for i in range(len(sizes) - 1)]
    return _core.ControlAffineMlpDynamics(nx, nu, nq, list(features), W, b, 0.2 * rng.standard_normal(sizes[0]),
                                          rng.uniform(0.5, 2.0, sizes[0]), rng.uniform(0.5, 3.0, sizes[-1]),
                                          0.5 * rng.standard_normal(sizes[-1]))


PENDULUM_LIKE_FEATURES = [("cos", 0), ("sin", 0), ("id", 1)]
FIRST_ORDER_FEATURES = [("id", 0), ("sin", 1), ("cos", 2), ("id", 2)]


def _learned_ensemble():
    return _core.EnsembleMeanDynamics([random_learned_model(2, 1, 1, PENDULUM_LIKE_FEATURES, seed=k) for k in range(3)])


def dynamics_cases() -> list[Case]:
    rng = np.random.default_rng(0)
    A = rng.standard_normal((3, 3))
    B = rng.standard_normal((3, 2))
    return [
        Case("linear", lambda: _core.LinearDynamics(A, B), _gauss(3, 2)),
        Case("pendulum", lambda: _core.PendulumDynamics(1.2, 0.8, 0.1), _gauss(2, 1, 2.0, 3.0)),
        Case("point_mass", lambda: _core.PointMass2D(1.5, 0.3), _gauss(4, 2)),
        Case("python_cubic", CubicPython, _gauss(2, 1)),
        Case("ballbot", _core.BallbotDynamics, _ballbot_sample),
        Case("panda", _panda, _panda_sample),
        # learned models: x = [q; v] (only vdot learned) and a first-order state (all rows learned)
        Case("learned_mlp", lambda: random_learned_model(2, 1, 1, PENDULUM_LIKE_FEATURES), _gauss(2, 1, 2.0, 3.0)),
        Case("learned_mlp_first_order", lambda: random_learned_model(3, 2, 0, FIRST_ORDER_FEATURES, hidden=(6, 5, 4)),
             _gauss(3, 2)),
        Case("learned_ensemble_mean", _learned_ensemble, _gauss(2, 1, 2.0, 3.0)),
    ]


class QuarticPythonCost(_core.CostModel):
    """A Python-defined cost l = sum x^4 + x0 u0^2 (tests the cost trampoline)."""

    def __init__(self) -> None:
        super().__init__(2, 1)

    def calc(self, data, t, x, u):
        data.value = float(np.sum(x**4) + x[0] * u[0] ** 2)

    def calc_diff(self, data, t, x, u):
        self.calc(data, t, x, u)
        data.lx = np.array([4 * x[0] ** 3 + u[0] ** 2, 4 * x[1] ** 3])
        data.lu = np.array([2 * x[0] * u[0]])
        data.lxx = np.diag(12 * x**2)
        data.luu = np.array([[2 * x[0]]])
        data.lux = np.array([[2 * u[0], 0.0]])


def _walls() -> list:
    return [_core.Wall(-1.0, 0.5, 1.0, 0.5, 0.05), _core.Wall(0.0, -1.0, 0.0, -0.2, 0.1)]


def _sum_cost():
    s = _core.SumCost(4, 2)
    s.add("track", _core.QuadraticCost(np.diag([1.0, 2.0, 0.1, 0.1]), 0.3 * np.eye(2), np.ones(4), np.zeros(2)), 2.0)
    s.add("walls", _core.WallPenalty(4, 2, 0, 1, _walls(), 0.3, 5.0, 15.0), 0.5)
    return s


def _small_critic(nx: int, ng: int = 2, hidden: tuple[int, ...] = (8, 8)):
    """A random native tanh-MLP critic V(tau, x; g) with a goal set."""
    rng = np.random.default_rng(2)
    sizes = [nx + ng + 1, *hidden, 1]
    W = [0.6 * rng.standard_normal((sizes[i + 1], sizes[i])) for i in range(len(sizes) - 1)]
    b = [0.3 * rng.standard_normal(sizes[i + 1]) for i in range(len(sizes) - 1)]
    critic = _core.CriticMLP(W, b, np.zeros(sizes[0]), np.ones(sizes[0]), 1.5, 0.2, nx, ng)
    critic.set_goal(rng.standard_normal(ng))
    return critic


def _mlp_ensemble_cost(fd_step: float = 1e-4):
    """A 2-member soft-min ensemble of small tanh MLPs over features (x0, x1, cos x2, sin x2),
    the action and one extra input (POLO Eqs. (5)-(6)); its derivatives are central differences
    of ``calc`` with step ``fd_step``, checked here against differences taken in Python."""
    rng = np.random.default_rng(5)
    features = [("id", 0), ("id", 1), ("cos", 2), ("sin", 2), ("id", 3)]
    nz = len(features) + 2 + 1
    members = []
    for _ in range(2):
        sizes = [nz, 6, 1]
        W = [0.5 * rng.standard_normal((sizes[i + 1], sizes[i])) for i in range(2)]
        b = [0.2 * rng.standard_normal(sizes[i + 1]) for i in range(2)]
        members.append([(W, b, 0.1 * rng.standard_normal(nz), 1.0 + 0.2 * rng.random(nz), 1.3, 0.1, 0.8)])
    return _core.MlpEnsembleCost(4, 2, features, True, np.array([0.3]), members, 1.5, 2.0, fd_step)


def _horizon_switch(t_switch: float):
    """Pendulum swing-up cost before ``t_switch``, a quadratic after it (the MPQ terminal Q slot);
    the derivative tests evaluate at t = 0.3."""
    last = _core.QuadraticCost(np.diag([2.0, 0.5]), np.array([[0.7]]), np.array([0.2, -0.1]), np.zeros(1))
    return _core.HorizonSwitchCost(_core.PendulumSwingUpCost(1, 0.1, 3.0), last, t_switch)


def _pendulum_sample(rng):
    """theta away from +-pi, where wrap(theta) jumps."""
    return np.array([rng.uniform(-2.8, 2.8), 2.0 * rng.standard_normal()]), rng.standard_normal(1)


def _board_cost():
    """The Franka obstacle task's board distance cost, with a board beside the ready pose's hand
    and a margin wide enough that several arm spheres are inside it (the hinge active)."""
    from dmpc_core.tasks.franka_obstacle import ArmSpheres, BoardDistanceCost

    return BoardDistanceCost(ArmSpheres(), [0.3, 0.25, 0.3], [0.2, 0.02, 0.2], weight=50.0, margin=0.3)


def _input_offset_cost():
    from dmpc_core.control.dmpc_problem import InputOffsetCost

    return InputOffsetCost(np.diag([0.5, 2.0]), np.array([1.5, -0.7]), 3)


def _near_ready_sample(rng):
    from dmpc_core.models.panda import Q_READY

    return np.concatenate([Q_READY + rng.uniform(-0.2, 0.2, 7), rng.standard_normal(7)]), rng.standard_normal(7)


def cost_cases() -> list[Case]:
    rng = np.random.default_rng(1)
    M = rng.standard_normal((4, 4))
    return [
        Case("quadratic", lambda: _core.QuadraticCost(M @ M.T, np.diag([1.0, 3.0]), rng.standard_normal(4), np.ones(2)), _gauss(4, 2)),
        Case("upright", lambda: _core.UprightCost(10, 3, 3, 4, 8, 9, 40.0, 2.0), _gauss(10, 3, 0.5)),
        Case("trajectory_quadratic",
             lambda: _core.TrajectoryQuadraticCost(M @ M.T, np.diag([1.0, 3.0]), [-0.5, 0.1, 0.4, 2.0],
                                                   rng.standard_normal((4, 4)), np.ones(2)), _gauss(4, 2)),
        Case("walls", lambda: _core.WallPenalty(4, 2, 0, 1, _walls(), 0.3, 5.0, 15.0),
             lambda g: (np.concatenate([g.uniform(-1.5, 1.5, 2), g.standard_normal(2)]), g.standard_normal(2))),
        Case("sum", _sum_cost, lambda g: (np.concatenate([g.uniform(-1.5, 1.5, 2), g.standard_normal(2)]), g.standard_normal(2))),
        Case("python_quartic", QuarticPythonCost, _gauss(2, 1)),
        Case("frame_translation", _frame_cost, _panda_sample, hessian="gauss_newton"),
        Case("board_distance", _board_cost, _near_ready_sample, hessian="gauss_newton"),
        Case("input_offset", _input_offset_cost, _gauss(3, 2)),
        # Deep Value MPC costs (Eqs. (13)-(14)); the running cost's lxx is exact for dynamics linear in x.
        Case("value_terminal", lambda: _core.ValueTerminalCost(_small_critic(4), 2.0, 2), _gauss(4, 2)),
        Case("value_running_point_mass",
             lambda: _core.ValueRunningCost(_small_critic(4), _core.PointMass2D(1.5, 0.3), np.diag([0.5, 2.0]), 2.0),
             _gauss(4, 2)),
        Case("pendulum_swing_up", lambda: _core.PendulumSwingUpCost(1, 0.1, 3.0), _pendulum_sample),
        Case("horizon_switch_stage", lambda: _horizon_switch(1.0), _pendulum_sample),
        Case("horizon_switch_last", lambda: _horizon_switch(0.1), _pendulum_sample),
        Case("mlp_ensemble", _mlp_ensemble_cost,
             lambda g: (np.array([*g.standard_normal(2), g.uniform(-np.pi, np.pi), g.standard_normal()]),
                        g.standard_normal(2))),
        # Eq. (14) with a learned model: g(x) and d g / dx come from the network's forward mode
        # Eq. (14) on the Franka Panda (g(x) = [0; M^-1(q)], its input Jacobians from
        # pinocchio's ABA derivatives), the critic V(tau, q, qdot; goal = TCP target (3))
        Case("value_running_panda",
             lambda: _core.ValueRunningCost(_small_critic(14, 3), _panda_damped(), np.diag(np.full(7, 0.5)), 2.0),
             _panda_sample, hessian="drops_dynamics_curvature"),
        Case("value_running_learned",
             lambda: _core.ValueRunningCost(_small_critic(2), random_learned_model(2, 1, 1, PENDULUM_LIKE_FEATURES),
                                            np.diag([0.5]), 2.0),
             _gauss(2, 1), hessian="drops_dynamics_curvature"),
    ]
