"""SLQ's optimum against CasADi + IPOPT on the identical discretised problem."""
from __future__ import annotations

import casadi as ca
import numpy as np
import pytest

from dmpc_core import _core
from dmpc_core.baselines.casadi_ocp import QuadraticTerm, UprightTerm, solve_ocp_ipopt


def test_slq_matches_ipopt_on_pendulum_swingup():
    m, l, b, g = 1.0, 1.0, 0.05, 9.81
    f = lambda x, u: ca.vertcat(x[1], (g / l) * ca.sin(x[0]) + (u[0] - b * x[1]) / (m * l * l))  # noqa: E731
    Q, R, QT = np.diag([1.0, 0.1]), np.array([[0.05]]), np.diag([200.0, 20.0])
    x0 = np.array([np.pi - 0.01, 0.0])
    N, dt = 60, 0.05
    ref = solve_ocp_ipopt(f, 2, 1, x0, N, dt, [QuadraticTerm(Q, R, np.zeros(2), np.zeros(1))],
                          [QuadraticTerm(QT, np.zeros((0, 0)), np.zeros(2), np.zeros(1))])
    assert ref.status == "Solve_Succeeded"
    prob = _core.Problem(_core.PendulumDynamics(m, l, b, g), _core.QuadraticCost(Q, R),
                         _core.QuadraticCost(QT, np.zeros((1, 1))), N, dt, "rk4")
    solver = _core.SlqSolver(prob, _core.SlqSettings(max_iterations=300))
    res = solver.solve(x0)
    assert res.status == "converged"
    assert res.cost == pytest.approx(ref.cost, rel=1e-6)
    # controls agree to 1e-3 of their magnitude (both solvers stop at their own tolerances)
    np.testing.assert_allclose(solver.controls(), ref.U, atol=1e-3 * np.abs(ref.U).max())


def test_upright_term_twins_agree():
    """The CasADi twin of UprightCost evaluates to the same number (used by the Ballbot benchmark)."""
    rng = np.random.default_rng(0)
    core = _core.UprightCost(10, 3, 3, 4, 8, 9, 40.0, 2.0)
    twin = UprightTerm(3, 4, 8, 9, 40.0, 2.0)
    for _ in range(5):
        x = rng.standard_normal(10)
        assert float(twin.expr(ca.DM(x), ca.DM.zeros(3))) == pytest.approx(core.value(0.0, x, np.zeros(3)), rel=1e-12)
