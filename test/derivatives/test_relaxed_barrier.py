"""Relaxed log-barrier box cost (dmpc_core.costs.BoxBarrierCost): C^2 junction, zero and minimal
at the origin, analytic derivatives vs central finite differences, agreement with the vectorised
reference, use inside SumCost/SLQ through the C++ trampoline."""
from __future__ import annotations

import numpy as np
import pytest

from dmpc_core import _core
from dmpc_core.costs import BoxBarrierCost, relaxed_log_barrier


def test_barrier_is_c2_at_the_relaxation_point_and_convex():
    mu, delta = 0.3, 0.1
    eps = 1e-7
    lo = relaxed_log_barrier(delta - eps, mu, delta)
    hi = relaxed_log_barrier(delta + eps, mu, delta)
    for a, b in zip(lo, hi):
        assert float(a) == pytest.approx(float(b), rel=1e-5, abs=1e-5)
    h = np.linspace(-1.0, 2.0, 301)
    v, d1, d2 = relaxed_log_barrier(h, mu, delta)
    assert np.all(np.isfinite(v)) and np.all(d2 > 0)
    np.testing.assert_allclose(np.gradient(v, h)[1:-1], d1[1:-1], rtol=1e-2, atol=1e-3)
    assert v[h >= delta] == pytest.approx(-mu * np.log(h[h >= delta]))


def test_box_barrier_zero_at_origin_and_grows_towards_the_limits():
    c = BoxBarrierCost(10, 3, [3, 4], [0.3, 0.3], [0, 1, 2], [30.0] * 3, mu=0.1, delta=0.015)
    x, u = np.zeros(10), np.zeros(3)
    assert c.value(0.0, x, u) == 0.0
    vals = []
    for p in (0.0, 0.1, 0.2, 0.29, 0.31, 0.5):
        x[3] = p
        vals.append(c.value(0.0, x, u))
    assert all(b > a for a, b in zip(vals, vals[1:]))
    x[3] = -0.29
    assert c.value(0.0, x, u) == pytest.approx(vals[3])  # symmetric
    x[:] = 0.0
    x[[0, 1, 5, 6]] = 5.0  # unbounded entries do not matter
    assert c.value(0.0, x, u) == 0.0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_box_barrier_derivatives_match_finite_differences(seed):
    rng = np.random.default_rng(seed)
    c = BoxBarrierCost(10, 3, [3, 4], [0.3, 0.25], [0, 2], [30.0, 20.0], mu=0.2, delta=0.05)
    x = rng.normal(0, 0.2, 10)
    x[3], x[4] = 0.27, -0.3  # one entry in the log branch near the limit, one in the quadratic
    u = np.array([29.97, -5.0, -19.5])
    d = c.create_data()
    c.calc_diff(d, 0.0, x, u)
    assert d.value == pytest.approx(c.value(0.0, x, u))
    h = 1e-6
    fx = np.array([(c.value(0.0, x + h * e, u) - c.value(0.0, x - h * e, u)) / (2 * h) for e in np.eye(10)])
    fu = np.array([(c.value(0.0, x, u + h * e) - c.value(0.0, x, u - h * e)) / (2 * h) for e in np.eye(3)])
    np.testing.assert_allclose(d.lx, fx, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(d.lu, fu, rtol=1e-5, atol=1e-6)
    g = lambda xx: (lambda dd: (c.calc_diff(dd, 0.0, xx, u), np.array(dd.lx))[1])(c.create_data())
    gu = lambda uu: (lambda dd: (c.calc_diff(dd, 0.0, x, uu), np.array(dd.lu))[1])(c.create_data())
    hxx = np.array([(g(x + h * e) - g(x - h * e)) / (2 * h) for e in np.eye(10)])
    huu = np.array([(gu(u + h * e) - gu(u - h * e)) / (2 * h) for e in np.eye(3)])
    np.testing.assert_allclose(d.lxx, hxx, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(d.luu, huu, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(d.lux, np.zeros((3, 10)))
    # scalar implementation vs the vectorised reference
    ref = sum(float(relaxed_log_barrier(lim - z, 0.2, 0.05)[0] + relaxed_log_barrier(lim + z, 0.2, 0.05)[0]
                    - 2 * relaxed_log_barrier(lim, 0.2, 0.05)[0])
              for z, lim in ((x[3], 0.3), (x[4], 0.25), (u[0], 30.0), (u[2], 20.0)))
    assert d.value == pytest.approx(ref, rel=1e-12)


def test_box_barrier_rejects_bad_arguments():
    with pytest.raises(ValueError):
        BoxBarrierCost(10, 3, [3], [0.3, 0.3])
    with pytest.raises(ValueError):
        BoxBarrierCost(10, 3, [10], [0.3])
    with pytest.raises(ValueError):
        BoxBarrierCost(10, 3, [3], [0.01], delta=0.05)


def test_box_barrier_in_sum_cost_keeps_slq_inside_the_tilt_limit():
    """Ballbot, SLQ pulled by a linear cost on pitch towards a large lean: with the barrier the
    planned pitch stays inside the limit, without it the plan leans beyond."""
    from dmpc_core.tasks import ballbot

    model = _core.BallbotDynamics()
    R = 0.2 * np.eye(3)

    def plan(with_barrier):
        run = _core.SumCost(10, 3)
        run.add("upright", _core.UprightCost(10, 3, 3, 4, 8, 9, 20.0, 5.0))
        q = np.zeros(10)
        q[3] = 1.0
        x_ref = np.zeros(10)
        x_ref[3] = 1.0  # 1/2 (pitch - 1)^2 * 50 pulls the lean towards 1 rad
        run.add("pull", _core.QuadraticCost(50.0 * np.diag(q), np.zeros((3, 3)), x_ref, np.zeros(3)))
        if with_barrier:
            run.add("barrier", BoxBarrierCost(10, 3, [3, 4], [0.3, 0.3], mu=1.0, delta=0.03))
        term = _core.QuadraticCost(np.zeros((10, 10)), np.zeros((3, 3)), np.zeros(10), np.zeros(3))
        prob = _core.Problem(model, run, term, 20, 0.05, "rk4", R)
        from dmpc_core.mpc import MpcController, MpcSettings

        mpc = MpcController(prob, MpcSettings(horizon=20, dt=0.05, iterations_per_update=1, initial_iterations=15),
                            initial_policy=ballbot.lqr_policy(prob, (0.0, 0.0)))
        mpc.update(0.0, np.zeros(10))
        return np.abs(np.asarray(mpc.policy.x_nom)[:, 3]).max()

    free, bounded = plan(False), plan(True)
    assert free > 0.35, free
    assert bounded < 0.32, bounded  # relaxed: slightly beyond the limit is allowed, at a quadratic cost
