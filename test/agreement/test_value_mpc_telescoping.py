"""Why the Deep Value MPC critic must see the states the inputs act on (deep-value-mpc Eq. 14).

Along any trajectory of xdot = f + g u,
    l_d + 1/2 u'Ru = -dV/dt + 1/2 |R^1/2 u + R^-1/2 g' V_x|^2,
so the DMPC objective (18) with heuristic phi = V telescopes to
    V(t, x0) + int 1/2 |R^1/2 (u - u*)|^2 dt,   u* = -R^-1 g' V_x.
If V depends only on states with no input in their rows (g' V_x = 0: e.g. a Ballbot or point-mass
value of the position alone), u* = 0 and the objective is V(x0) + int 1/2 u'Ru: the optimiser
ignores the value altogether and the actor does not move, whatever was learned. The terminal-only
actor (phi = V, no Eq. 14) does move. On a double integrator with V = 1/2 k p^2, SLQ's first
control in DMPC mode is zero up to the O(dt) discretisation error of the telescoping sum, while
terminal-only pushes towards p = 0. This is why dmpc_core.agents.deep_value_mpc must not hide the
velocities from the critic (``training.critic_ignored_states``).
"""
from __future__ import annotations

import numpy as np
import pytest

from dmpc_core import _core
from test_value_mpc_prop1 import QuadraticValue  # V = 1/2 x'Px with its exact derivatives

A = np.array([[0.0, 1.0], [0.0, 0.0]])
B = np.array([[0.0], [1.0]])
R = np.array([[0.5]])


def PositionValue(k: float):
    """V = 1/2 k p^2 (no velocity dependence), time-invariant."""
    return QuadraticValue(np.diag([k, 0.0]))


def first_control(mode: str, dt: float, horizon_s: float = 1.0, k: float = 4.0) -> float:
    dyn = _core.LinearDynamics(A, B)
    critic = PositionValue(k)
    term = _core.ValueTerminalCost(critic, 10.0, 1)
    if mode == "running+terminal":
        run = _core.ValueRunningCost(critic, dyn, R, 10.0, False, "auto")
    else:
        run = _core.QuadraticCost(np.zeros((2, 2)), np.zeros((1, 1)), np.zeros(2), np.zeros(1))
    N = int(round(horizon_s / dt))
    prob = _core.Problem(dyn, run, term, N, dt, integrator="rk4", control_weight=R, discount=1.0)
    solver = _core.SlqSolver(prob, _core.SlqSettings(max_iterations=30, mu_init=0.0))
    solver.solve(np.array([1.0, 0.0]))
    return float(solver.controls()[0][0])


def test_position_only_value_cancels_in_dmpc_objective():
    u_term = first_control("terminal", 0.02)
    u_dmpc = first_control("running+terminal", 0.02)
    assert u_term < -0.5  # the heuristic alone drives p towards 0
    assert abs(u_dmpc) < 0.05 * abs(u_term)  # Eq. (14) cancels it: the actor stays put


def test_residual_is_discretisation_error():
    u1 = first_control("running+terminal", 0.02)
    u2 = first_control("running+terminal", 0.01)
    assert abs(u2) < 0.6 * abs(u1) + 1e-9  # first order in dt
