"""Time-to-go of the Deep Value MPC costs (deep-value-mpc Eqs. 13-14) at the episode end.

The episode ends at t_goal; in its last H the horizon reaches past it. The costs clamp the
time-to-go at zero: a node at t >= t_goal sees V(0, x) -- the termination cost q_f of Eq. (4),
which the critic is trained to equal at tau = 0 -- and no tau dependence (V_tau = 0), so the
critic is never queried at tau < 0 where it has no data.
"""
from __future__ import annotations

import numpy as np

from dmpc_core import _core

A = np.array([[0.0, 1.0], [0.0, 0.0]])
B = np.array([[0.0], [1.0]])
R = np.array([[0.5]])


class RecordingValue(_core.CriticModel):
    """V(tau, x) = (1 + tau) 1/2 x'x + 3 tau; records every tau it is queried at."""

    def __init__(self):
        _core.CriticModel.__init__(self, 2, 0)
        self.taus = []

    def _fill(self, data, tau, x):
        self.taus.append(float(tau))
        data.V = (1.0 + tau) * 0.5 * x @ x + 3.0 * tau
        data.Vx = (1.0 + tau) * x
        data.Vxx = (1.0 + tau) * np.eye(2)
        data.Vtau = 0.5 * x @ x + 3.0
        data.Vtaux = x.copy()

    def calc(self, data, tau, x):
        self._fill(data, tau, x)

    def calc_diff(self, data, tau, x):
        self._fill(data, tau, x)

    def calc_third(self, data, tau, x, vx, vtau):
        self.taus.append(float(tau))
        data.Kv = vtau * np.eye(2)


def eq14(tau_clamped: float, x: np.ndarray, vtau: float) -> float:
    """-dV/dt - f'V_x + 1/2 V_x' g R^-1 g' V_x of RecordingValue on the double integrator."""
    Vx = (1.0 + tau_clamped) * x
    f = A @ x
    y = B.T @ Vx
    return float(vtau - f @ Vx + 0.5 * y @ np.linalg.solve(R, y))


def test_terminal_cost_beyond_the_episode_end_is_the_value_at_zero():
    critic = RecordingValue()
    term = _core.ValueTerminalCost(critic, 1.0, 1)
    x, u = np.array([0.4, -0.3]), np.zeros(1)
    assert np.isclose(term.value(0.25, x, u), 1.75 * 0.5 * x @ x + 3 * 0.75)  # before: tau = 0.75
    for t in (1.0, 1.3, 4.0):
        assert np.isclose(term.value(t, x, u), 0.5 * x @ x)  # V(0, x)
    assert min(critic.taus) >= 0.0


def test_running_cost_beyond_the_episode_end_has_no_time_derivative():
    critic = RecordingValue()
    dyn = _core.LinearDynamics(A, B)
    run = _core.ValueRunningCost(critic, dyn, R, 1.0, False, "auto")
    x, u = np.array([0.4, -0.3]), np.zeros(1)
    assert np.isclose(run.value(0.25, x, u), eq14(0.75, x, 0.5 * x @ x + 3.0))
    for t in (1.0, 1.5):
        assert np.isclose(run.value(t, x, u), eq14(0.0, x, 0.0))
    assert min(critic.taus) >= 0.0


def test_a_solve_whose_horizon_passes_the_episode_end_never_queries_negative_time_to_go():
    critic = RecordingValue()
    dyn = _core.LinearDynamics(A, B)
    t_goal, dt, N = 0.5, 0.05, 20  # the horizon [0, 1] s ends 0.5 s after the episode
    run = _core.ValueRunningCost(critic, dyn, R, t_goal, False, "auto")
    term = _core.ValueTerminalCost(critic, t_goal, 1)
    prob = _core.Problem(dyn, run, term, N, dt, integrator="rk4", control_weight=R, discount=1.0)
    solver = _core.SlqSolver(prob, _core.SlqSettings(max_iterations=3, mu_init=0.0))
    solver.solve(np.array([1.0, 0.0]))
    assert critic.taus, "the critic was not evaluated"
    assert min(critic.taus) >= 0.0
    assert np.isclose(max(critic.taus), t_goal)
