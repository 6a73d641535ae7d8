"""TrajectoryQuadraticCost (time-varying tracking reference) and the Ballbot path reference.

Derivatives against finite differences are checked with every other cost in test_derivatives.py
(case "trajectory_quadratic" of factory.py); here: the interpolation, the agreement with
QuadraticCost, input checks, and a closed loop that follows a path.
"""
from __future__ import annotations

import numpy as np
import pytest

from dmpc_core import _core
from dmpc_core.tasks import ballbot


def _cost(times, X):
    Q = np.diag([2.0, 1.0, 0.5])
    return _core.TrajectoryQuadraticCost(Q, 0.1 * np.eye(1), times, X)


def test_reference_is_piecewise_linear_and_held_outside_the_knots():
    times = np.array([0.0, 1.0, 3.0])
    X = np.array([[0.0, 0.0, 1.0], [1.0, 2.0, 1.0], [3.0, 2.0, -1.0]])
    c = _cost(times, X)
    np.testing.assert_allclose(c.reference(-5.0), X[0])
    np.testing.assert_allclose(c.reference(0.25), [0.25, 0.5, 1.0], atol=1e-15)
    np.testing.assert_allclose(c.reference(1.0), X[1], atol=1e-15)
    np.testing.assert_allclose(c.reference(2.0), [2.0, 2.0, 0.0], atol=1e-15)
    np.testing.assert_allclose(c.reference(3.0), X[2])
    np.testing.assert_allclose(c.reference(9.0), X[2])
    # the value is the quadratic form around r(t)
    x, u = np.array([0.3, -0.2, 0.4]), np.array([0.7])
    r = c.reference(2.0)
    assert c.value(2.0, x, u) == pytest.approx(0.5 * (x - r) @ c.Q @ (x - r) + 0.5 * 0.1 * 0.49, rel=1e-14)


def test_one_knot_equals_quadratic_cost():
    rng = np.random.default_rng(0)
    M = rng.standard_normal((3, 3))
    Q, R, xr, ur = M @ M.T, np.diag([0.5, 2.0]), rng.standard_normal(3), rng.standard_normal(2)
    a = _core.QuadraticCost(Q, R, xr, ur)
    b = _core.TrajectoryQuadraticCost(Q, R, [1.7], xr[None, :], ur)
    for _ in range(3):
        x, u, t = rng.standard_normal(3), rng.standard_normal(2), rng.uniform(-3, 3)
        da, db = a.derivatives(t, x, u), b.derivatives(t, x, u)
        for k in ("value", "lx", "lu", "lxx", "luu", "lux"):
            np.testing.assert_allclose(db[k], da[k], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("times, X, message", [
    ([], np.zeros((0, 3)), "at least one knot"),
    ([0.0, 0.0], np.zeros((2, 3)), "strictly increasing"),
    ([0.0, np.nan], np.zeros((2, 3)), "times"),
    ([0.0, 1.0], np.zeros((3, 3)), "X_ref"),
    ([0.0, 1.0], np.full((2, 3), np.inf), "X_ref"),
])
def test_bad_trajectories_are_rejected_and_the_old_one_kept(times, X, message):
    c = _cost([0.0, 1.0], np.array([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]]))
    with pytest.raises(ValueError, match=message):
        c.set_trajectory(np.asarray(times, float), np.asarray(X, float))
    np.testing.assert_allclose(c.reference(0.5), [0.5, 0.5, 0.5])


def test_path_reference_times_and_velocities():
    pts = [(0.0, 0.0), (1.0, 0.0), (1.0, 0.0), (1.0, 2.0)]  # a duplicate waypoint is dropped
    times, X = ballbot.path_reference(pts, t_start=2.0, speed=0.5)
    np.testing.assert_allclose(times, [2.0, 4.0, 8.0])
    np.testing.assert_allclose(X[:, [ballbot.PX, ballbot.PY]], [[0, 0], [1, 0], [1, 2]])
    np.testing.assert_allclose(X[:, 5:7], [[0, 0], [0.25, 0.25], [0, 0]])  # mean of 0.5 x and 0.5 y
    assert np.all(X[:, [2, 3, 4, 7, 8, 9]] == 0)
    times, _ = ballbot.path_reference(pts, t_start=1.0, stamps=[10.0, 11.0, 11.5, 13.0])
    np.testing.assert_allclose(times, [1.0, 2.0, 4.0])
    for kwargs, message in (({"stamps": [0.0, 1.0, 1.0, 0.5]}, "increasing"), ({"speed": 0.0}, "speed"),
                            ({"stamps": [0.0, 1.0]}, "finite times")):
        with pytest.raises(ValueError, match=message):
            ballbot.path_reference(pts, **kwargs)
    with pytest.raises(ValueError, match="finite"):
        ballbot.path_reference([(0.0, np.nan)])


def test_slq_mpc_follows_an_l_shaped_path_not_the_straight_line():
    """Closed loop on the Ballbot (SLQ-MPC, RK4 plant): following the path (0, 0) -> (1.2, 0) ->
    (1.2, 1.2) at 0.6 m/s, with the terminal LQR value on the same reference r(t + H), the robot
    passes 0.24 m from the corner (it lags the moving reference); sent straight to the end point
    (one knot) it passes 0.85 m from it. Both arrive within 1 cm."""
    from dmpc_core.mpc import MpcController, MpcSettings
    from dmpc_core.sim import Plant, PlantSettings

    model = _core.BallbotDynamics()
    s = ballbot.BallbotCostSettings()
    Q = np.diag(np.asarray(s.q_diag, float))
    N, dt = 100, 0.01
    problem, _, tail = ballbot.make_reach_problem((1.2, 1.2), N, dt, s, "rk4", model)
    times, X = ballbot.path_reference([(0.0, 0.0), (1.2, 0.0), (1.2, 1.2)], t_start=0.0, speed=0.6)
    track = _core.TrajectoryQuadraticCost(Q, np.zeros((3, 3)), times, X)
    running = _core.SumCost(ballbot.NX, ballbot.NU)
    running.add("track", track)
    running.add("upright", _core.UprightCost(ballbot.NX, ballbot.NU, ballbot.PITCH, ballbot.ROLL, 8, 9,
                                             s.w_tilt, s.w_tilt_rate))
    # the terminal LQR value tracks the same reference, at the end of the horizon r(t + N dt)
    terminal = _core.TrajectoryQuadraticCost(tail.Q, np.zeros((3, 3)), times, X)
    problem = _core.Problem(model, running, terminal, N, dt, "rk4", problem.control_weight)
    mpc = MpcController(problem, MpcSettings(horizon=N, dt=dt), initial_policy=ballbot.lqr_policy(problem, (0.0, 0.0)))
    plant = Plant(model, np.zeros(ballbot.NX), PlantSettings(physics_dt=1e-3))
    xs = []
    for k in range(int(6.0 / 0.02)):
        t = k * 0.02
        mpc.update(t, plant.x)
        for j in range(4):
            plant.step(mpc.control(plant.t, plant.x), 0.005)
        xs.append(plant.x.copy())
    xs = np.array(xs)
    corner_gap = np.hypot(xs[:, 0] - 1.2, xs[:, 1]).min()
    assert corner_gap < 0.4, corner_gap
    assert np.hypot(xs[-1, 0] - 1.2, xs[-1, 1] - 1.2) < 0.15
    assert np.all(ballbot.tilt(xs) < np.deg2rad(15))
