"""SLQ solver: exactness on LQ problems, nonlinear convergence, warm start, failure handling."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg as sl

from dmpc_core import _core
from factory import CubicPython


def lq_setup(integrator: str, dt: float = 0.05, N: int = 40):
    A = np.array([[0.0, 1.0, 0.0], [2.0, -0.1, 0.5], [0.0, 0.3, -1.0]])
    B = np.array([[0.0, 0.0], [1.0, 0.2], [0.0, 1.0]])
    Q = np.diag([3.0, 0.5, 1.0])
    R = np.diag([0.2, 0.4])
    dyn = _core.LinearDynamics(A, B)
    # The discrete map of the chosen integrator is linear: read it off with unit vectors.
    Ad = np.column_stack([_core.integrate(dyn, e, np.zeros(2), dt, integrator) for e in np.eye(3)])
    Bd = np.column_stack([_core.integrate(dyn, np.zeros(3), e, dt, integrator) for e in np.eye(2)])
    # Stage cost dt/2 (x'Qx + u'Ru): the value is x'Px/2 with P the DARE solution for (Q dt, R dt).
    P = sl.solve_discrete_are(Ad, Bd, Q * dt, R * dt)
    K = -np.linalg.solve(R * dt + Bd.T @ P @ Bd, Bd.T @ P @ Ad)
    prob = _core.Problem(dyn, _core.QuadraticCost(Q, R), _core.QuadraticCost(P, np.zeros((2, 2))), N, dt, integrator)
    return prob, P, K


@pytest.mark.parametrize("integrator", ["euler", "rk4"])
@pytest.mark.parametrize("threads", [1, 2])
def test_slq_equals_riccati_lqr_in_one_iteration(integrator, threads):
    prob, P, K = lq_setup(integrator)
    solver = _core.SlqSolver(prob, _core.SlqSettings(max_iterations=1, mu_init=0.0, num_threads=threads))
    x0 = np.array([1.0, -0.5, 0.3])
    res = solver.solve(x0)
    assert res.iterations == 1
    for G in solver.gains():
        np.testing.assert_allclose(G, K, atol=1e-6)
    X, U = solver.states(), solver.controls()
    for k in range(prob.horizon):  # the optimal trajectory is the LQR closed loop
        np.testing.assert_allclose(U[k], K @ X[k], atol=1e-6)
    assert res.cost == pytest.approx(0.5 * x0 @ P @ x0, rel=1e-6)
    # a second iteration finds nothing left to improve
    res2 = solver.solve(x0)
    assert res2.status == "converged"
    assert res2.cost == pytest.approx(res.cost, rel=1e-9)


def pendulum_swingup(N=60, dt=0.05, threads=1, max_iterations=200):
    dyn = _core.PendulumDynamics(1.0, 1.0, 0.05)
    run = _core.QuadraticCost(np.diag([1.0, 0.1]), np.array([[0.05]]))
    term = _core.QuadraticCost(np.diag([200.0, 20.0]), np.zeros((1, 1)))
    prob = _core.Problem(dyn, run, term, N, dt, "rk4")
    return prob, _core.SlqSolver(prob, _core.SlqSettings(max_iterations=max_iterations, num_threads=threads))


def test_slq_swings_up_pendulum_and_cost_decreases_monotonically():
    prob, solver = pendulum_swingup()
    x0 = np.array([np.pi - 0.01, 0.0])
    res = solver.solve(x0)
    assert res.status == "converged", res
    hist = np.array(res.cost_history)
    assert np.all(np.diff(hist) <= 1e-12)
    assert hist[-1] < 0.2 * res.initial_cost
    X = solver.states()
    assert abs(np.arctan2(np.sin(X[-1, 0]), np.cos(X[-1, 0]))) < 0.05  # upright at the end
    # the solution is a local optimum: open-loop cost of the controls equals the reported cost
    assert solver.evaluate(x0, solver.controls()) == pytest.approx(res.cost, rel=1e-9)


def test_slq_thread_count_does_not_change_the_result():
    x0 = np.array([np.pi - 0.01, 0.0])
    _, s1 = pendulum_swingup(threads=1)
    _, s2 = pendulum_swingup(threads=2)
    r1, r2 = s1.solve(x0), s2.solve(x0)
    assert r1.iterations == r2.iterations
    np.testing.assert_array_equal(s1.controls(), s2.controls())


def test_warm_start_after_shift_converges_fast():
    prob, solver = pendulum_swingup()
    x0 = np.array([np.pi - 0.01, 0.0])
    cold = solver.solve(x0)
    # advance one node along the optimal trajectory and re-solve warm
    x1 = solver.states()[1]
    solver.shift(prob.dt)
    warm = solver.solve(x1, prob.dt)
    assert warm.status == "converged"
    assert warm.iterations <= max(3, cold.iterations // 5)


def test_real_time_iteration_mode_improves_every_call():
    prob, solver = pendulum_swingup()
    solver.settings = _core.SlqSettings(max_iterations=1)
    x0 = np.array([np.pi - 0.01, 0.0])
    costs = [solver.solve(x0).cost for _ in range(8)]
    assert all(b <= a + 1e-12 for a, b in zip(costs, costs[1:]))
    assert costs[-1] < costs[0]


def test_policy_interpolation_and_feedback():
    prob, solver = pendulum_swingup()
    x0 = np.array([np.pi - 0.01, 0.0])
    solver.solve(x0)
    pol = solver.policy()
    k = 5
    t = k * prob.dt
    xk = pol.x_nom[k]
    np.testing.assert_allclose(pol.control(t, xk), pol.u_ff[k], atol=1e-12)
    dx = np.array([0.01, -0.02])
    np.testing.assert_allclose(pol.control(t, xk + dx), pol.u_ff[k] + pol.K[k] @ dx, atol=1e-12)
    tm = t + 0.5 * prob.dt
    np.testing.assert_allclose(pol.feedforward(tm), 0.5 * (pol.u_ff[k] + pol.u_ff[k + 1]), atol=1e-12)
    pol.interpolation = "zoh"
    np.testing.assert_allclose(pol.feedforward(tm), pol.u_ff[k], atol=1e-12)
    # beyond the horizon the last node is held
    np.testing.assert_allclose(pol.feedforward(100.0), pol.u_ff[-1], atol=1e-12)
    with pytest.raises(ValueError, match="size 3, expected 2"):
        pol.control(t, np.zeros(3))


class ExplodingDynamics(_core.DynamicsModel):
    """Returns NaN once |x0| exceeds a threshold: a model that 'diverges'."""

    def __init__(self):
        super().__init__(1, 1)

    def calc(self, data, x, u):
        data.xdot = np.array([np.nan if abs(x[0]) > 5 else x[0] + u[0]])

    def calc_diff(self, data, x, u):
        data.fx = np.array([[1.0]])
        data.fu = np.array([[1.0]])


def test_diverged_rollout_reports_status_and_keeps_last_good_policy():
    dyn = ExplodingDynamics()
    prob = _core.Problem(dyn, _core.QuadraticCost(np.eye(1), np.eye(1)), None, 20, 0.05)
    solver = _core.SlqSolver(prob)
    good = solver.solve(np.array([0.5]))
    assert good.status == "converged"
    before = solver.controls().copy()
    bad = solver.solve(np.array([50.0]))
    assert bad.status == "diverged"
    assert "policy kept" in bad.message
    np.testing.assert_array_equal(solver.controls(), before)


def test_python_defined_model_solves():
    dyn = CubicPython()
    prob = _core.Problem(dyn, _core.QuadraticCost(np.eye(2), 0.1 * np.eye(1)), _core.QuadraticCost(10 * np.eye(2), np.zeros((1, 1))), 30, 0.05)
    for threads in (1, 2):
        solver = _core.SlqSolver(prob, _core.SlqSettings(num_threads=threads))
        res = solver.solve(np.array([1.0, 0.0]))
        assert res.status == "converged"
        assert res.cost < res.initial_cost


def test_bad_inputs_raise_value_error_naming_the_size():
    prob, solver = pendulum_swingup()
    with pytest.raises(ValueError, match="x0 has size 3, expected 2"):
        solver.solve(np.zeros(3))
    with pytest.raises(ValueError, match="non-finite"):
        solver.solve(np.array([np.nan, 0.0]))
    with pytest.raises(ValueError, match="U has shape"):
        solver.set_controls(np.zeros((3, 1)))
    with pytest.raises(ValueError, match="max_iterations"):
        _core.SlqSettings(max_iterations=0)
    with pytest.raises(ValueError, match="no field"):
        _core.SlqSettings(max_iter=3)
    dyn = _core.PendulumDynamics()
    with pytest.raises(ValueError, match="expected \\(2, 1\\)"):
        _core.Problem(dyn, _core.QuadraticCost(np.eye(4), np.eye(2)), None, 10, 0.1)
    with pytest.raises(ValueError, match="horizon"):
        _core.Problem(dyn, None, None, 0, 0.1)
    with pytest.raises(ValueError, match="integrator"):
        _core.Problem(dyn, None, None, 10, 0.1, "rk45")
