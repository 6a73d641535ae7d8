"""The MPPI rollout hot path (cpp_ext/include/dmpc/rollout.hpp, DynamicsModel::calc_xdot) and the
MPPI noise generator (cpp_ext/include/dmpc/random.hpp) against independent references:

* the generated Ballbot forward-dynamics function dmpc_ballbot_fwd (one CasADi function with an
  unrolled LDL^T solve) against the previous path, M, h, S^T from dmpc_ballbot_dyn and a dense
  solve, in CasADi/numpy and in C++ (values to 1e-12);
* integrate_forward against integrate() for every integrator (bitwise where the model's
  calc_xdot is the same arithmetic as calc());
* the ziggurat normal sampler: moments, quantiles (Kolmogorov-Smirnov), tail mass, determinism;
* MPPI on the Ballbot: costs of the saved rollouts reproduced from integrate() and the cost
  models, and identical results for 1 and 2 threads.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from dmpc_core import _core
from tool_module import load_tool

derive = load_tool("derive_ballbot")


def random_states(n, seed=0, angle=0.7, rate=2.0):
    rng = np.random.default_rng(seed)
    xs = np.concatenate([rng.uniform(-1.0, 1.0, (n, 2)), rng.uniform(-angle, angle, (n, 3)),
                         rng.uniform(-rate, rate, (n, 5))], axis=1)
    us = rng.uniform(-10.0, 10.0, (n, 3))
    return xs, us


def other_params():
    p = _core.BallbotParameters()
    p.ball_radius = 0.11
    p.ball_mass = 3.1
    p.ball_inertia = 0.021
    p.base_mass = 15.0
    p.base_com = np.array([0.01, -0.02, 0.25])
    p.base_inertia = np.array([1.2, 1.5, 0.3])
    p.wheel_radius = 0.05
    p.wheel_zenith_angle = math.radians(50.0)
    p.gravity = 9.7
    return p


def param_vector(p):
    return np.array([p.ball_radius, p.ball_mass, p.ball_inertia, p.base_mass, *p.base_com,
                     *p.base_inertia, p.wheel_radius, p.wheel_zenith_angle, p.gravity])


def xdot_via_calc(model, x, u):
    data = model.create_data()
    model.calc(data, x, u)
    return np.array(data.xdot)


@pytest.mark.parametrize("use_default", [True, False])
def test_generated_forward_function_matches_mass_matrix_solve(use_default):
    """CasADi fwd(trig(q), v, tau, [p; cos a; sin a; 1/r_b]) == M^-1 (S^T tau - h) from the dyn
    function (the previous forward path)."""
    fns = derive.build_functions()
    p = derive.default_params() if use_default else param_vector(other_params())
    pc = np.concatenate([p, [math.cos(p[11]), math.sin(p[11]), 1.0 / p[0]]])
    xs, us = random_states(50, seed=1, angle=1.2, rate=4.0)
    for x, u in zip(xs, us):
        M, h, ST = (np.array(o) for o in fns["dyn"](x[:5], x[5:], p))
        ref = np.linalg.solve(M, ST @ u - h.ravel())
        trig = [f(x[i]) for i in (2, 3, 4) for f in (math.cos, math.sin)]
        a = np.array(fns["fwd"](trig, x[5:], u, pc)).ravel()
        np.testing.assert_allclose(a, ref, rtol=1e-12, atol=1e-12 * np.abs(ref).max())


@pytest.mark.parametrize("use_default", [True, False])
def test_cpp_calc_xdot_matches_calc(use_default):
    """C++: generated forward-only path == calc() (dyn function + hand Cholesky) to 1e-12."""
    model = _core.BallbotDynamics() if use_default else _core.BallbotDynamics(other_params())
    xs, us = random_states(200, seed=2, angle=1.2, rate=4.0)
    for x, u in zip(xs, us):
        ref = xdot_via_calc(model, x, u)
        fast = _core.calc_xdot(model, x, u)
        np.testing.assert_array_equal(fast[:5], x[5:])
        np.testing.assert_allclose(fast, ref, rtol=1e-12, atol=1e-12 * np.abs(ref).max())


def test_default_calc_xdot_is_calc_for_other_models():
    """Models without an override (LinearDynamics) and the pendulum's override are exact."""
    lin = _core.LinearDynamics(np.array([[0.0, 1.0], [-2.0, -0.3]]), np.array([[0.0], [1.5]]))
    pend = _core.PendulumDynamics(1.3, 0.8, 0.1, 9.81)
    rng = np.random.default_rng(3)
    for model in (lin, pend):
        for _ in range(20):
            x, u = rng.normal(size=2), rng.normal(size=1)
            np.testing.assert_array_equal(_core.calc_xdot(model, x, u), xdot_via_calc(model, x, u))


@pytest.mark.parametrize("integrator", ["euler", "semi_implicit_euler", "rk4"])
def test_integrate_forward_matches_integrate(integrator):
    bb = _core.BallbotDynamics()
    xs, us = random_states(50, seed=4)
    for x, u in zip(xs, us):
        ref = _core.integrate(bb, x, u, 0.02, integrator)
        out = _core.integrate_forward(bb, x, u, 0.02, integrator)
        np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-13)
        # one step moves the state: the comparison is not between two copies of x
        assert np.abs(out - x).max() > 1e-4
    pend = _core.PendulumDynamics()
    for x, u in zip(np.random.default_rng(5).normal(size=(20, 2)), np.random.default_rng(6).normal(size=(20, 1))):
        np.testing.assert_array_equal(_core.integrate_forward(pend, x, u, 0.05, integrator),
                                      _core.integrate(pend, x, u, 0.05, integrator))


def test_python_model_uses_default_calc_xdot_in_mppi():
    """A Python DynamicsModel subclass goes through the default calc_xdot (its calc via the
    trampoline) in integrate_forward and in MPPI rollouts, from 1 and 2 threads."""
    from factory import CubicPython

    model = CubicPython()
    rng = np.random.default_rng(10)
    for _ in range(10):
        x, u = rng.normal(size=2), rng.normal(size=1)
        for integ in ("euler", "rk4"):
            np.testing.assert_array_equal(_core.integrate_forward(model, x, u, 0.05, integ),
                                          _core.integrate(model, x, u, 0.05, integ))
    plans = []
    for threads in (1, 2):
        s = _core.MppiSettings(num_samples=24, horizon=8, dt=0.05, num_threads=threads, seed=4,
                               integrator="rk4", num_saved_trajectories=2)
        solver = _core.MppiSolver(model, _core.QuadraticCost(np.eye(2), np.eye(1)), None, s)
        solver.set_state([0.5, 0.0], 0.0)
        r = solver.optimize()
        xs = solver.weighted_trajectories().states[0]
        vs = solver.weighted_trajectories().controls[0]
        x = np.array([0.5, 0.0])
        for t in range(8):
            x = _core.integrate(model, x, vs[t], 0.05, "rk4")
        np.testing.assert_array_equal(xs[-1], x)
        plans.append(r.plan.copy())
    np.testing.assert_array_equal(plans[0], plans[1])


def test_integrate_forward_argument_checks():
    lin = _core.LinearDynamics(np.eye(2), np.ones((2, 1)))
    with pytest.raises(ValueError, match="second-order"):
        _core.integrate_forward(lin, np.zeros(2), np.zeros(1), 0.1, "semi_implicit_euler")
    bb = _core.BallbotDynamics()
    with pytest.raises(ValueError, match="expected 10"):
        _core.integrate_forward(bb, np.zeros(9), np.zeros(3), 0.1)
    with pytest.raises(ValueError, match="expected 3"):
        _core.calc_xdot(bb, np.zeros(10), np.zeros(2))
    with pytest.raises(ValueError, match="unknown integrator"):
        _core.integrate_forward(bb, np.zeros(10), np.zeros(3), 0.1, "rk5")


# ---------------------------------------------------------------- noise
def test_ziggurat_normal_distribution():
    from scipy import stats

    n = 2_000_000
    z = _core.ziggurat_normal_samples(12345, n)
    assert z.shape == (n,) and np.all(np.isfinite(z))
    se = 1.0 / math.sqrt(n)
    assert abs(z.mean()) < 5 * se
    assert abs(z.var() - 1.0) < 5 * math.sqrt(2.0) * se
    assert abs(stats.skew(z)) < 5 * math.sqrt(6.0) * se
    assert abs(stats.kurtosis(z)) < 5 * math.sqrt(24.0) * se
    ks = stats.kstest(z[:200_000], "norm")
    assert ks.pvalue > 1e-3, ks
    # the tail beyond the base layer (r = 3.654) is sampled separately: its mass is 2 Phi(-r)
    r = 3.6541528853610088
    expected = n * 2.0 * stats.norm.sf(r)
    count = np.sum(np.abs(z) > r)
    assert abs(count - expected) < 5 * math.sqrt(expected), (count, expected)
    far = np.sum(np.abs(z) > 4.5)  # deep tail, beyond the rectangles
    exp_far = n * 2.0 * stats.norm.sf(4.5)
    assert abs(far - exp_far) < 5 * math.sqrt(exp_far) + 1, (far, exp_far)
    # wedges: frequencies of 40 equiprobable bins
    edges = stats.norm.ppf(np.linspace(0, 1, 41))
    counts, _ = np.histogram(z, bins=edges)
    chi2 = ((counts - n / 40) ** 2 / (n / 40)).sum()
    assert stats.chi2.sf(chi2, 39) > 1e-4, chi2


def test_ziggurat_deterministic_and_seed_dependent():
    a = _core.ziggurat_normal_samples(7, 1000)
    np.testing.assert_array_equal(a, _core.ziggurat_normal_samples(7, 1000))
    b = _core.ziggurat_normal_samples(8, 1000)
    assert not np.any(a == b)
    assert abs(np.corrcoef(a, b)[0, 1]) < 0.15


# ---------------------------------------------------------------- MPPI on the Ballbot
def ballbot_solver(threads, integrator, K=64, H=20, seed=3, iterations=2):
    dyn = _core.BallbotDynamics()
    Q = np.diag([5.0, 5.0, 0.5, 20.0, 20.0, 1.0, 1.0, 0.1, 2.0, 2.0])
    R = 0.05 * np.eye(3)
    x_ref = np.zeros(10)
    x_ref[0] = 1.0
    running = _core.SumCost(10, 3)
    running.add("track", _core.QuadraticCost(Q, R, x_ref, np.zeros(3)))
    running.add("upright", _core.UprightCost(10, 3, 3, 4, 8, 9, 10.0, 0.5), 2.0)
    terminal = _core.QuadraticCost(10 * Q, np.zeros((0, 0)), x_ref, np.zeros(0))
    s = _core.MppiSettings(num_samples=K, horizon=H, dt=0.02, noise_sigma=np.diag([4.0, 2.0, 3.0]),
                           lambda_=1.0, gamma=0.97, num_iterations=iterations, num_threads=threads, seed=seed,
                           integrator=integrator, u_min=[-20.0] * 3, u_max=[20.0] * 3,
                           num_saved_trajectories=K, smoothing=0.2)
    return _core.MppiSolver(dyn, running, terminal, s), dyn, running, terminal


@pytest.mark.parametrize("integrator", ["semi_implicit_euler", "rk4"])
def test_ballbot_rollouts_reproduced_from_integrate(integrator):
    solver, dyn, running, terminal = ballbot_solver(1, integrator, iterations=1)
    x0 = np.array([0.1, -0.2, 0.3, 0.05, -0.04, 0.2, 0.1, -0.3, 0.2, 0.1])
    solver.set_state(x0, 0.4)
    U0 = np.random.default_rng(9).uniform(-2.0, 2.0, (20, 3))
    solver.set_plan(U0)
    sigma_inv = np.linalg.inv(np.diag([4.0, 2.0, 3.0]))
    r = solver.optimize()
    tr = solver.weighted_trajectories()
    dt, gamma, H = 0.02, 0.97, 20
    rd, td = running.create_data(), terminal.create_data()
    for i in range(8):
        xs, vs = tr.states[i], tr.controls[i]
        x = x0.copy()
        task = 0.0
        for t in range(H):
            np.testing.assert_allclose(xs[t], x, rtol=1e-10, atol=1e-12)
            running.calc(rd, 0.4 + t * dt, x, vs[t])
            task += gamma**t * rd.value * dt
            x = _core.integrate(dyn, x, vs[t], dt, integrator)
        np.testing.assert_allclose(xs[H], x, rtol=1e-10, atol=1e-12)
        terminal.calc(td, 0.4 + H * dt, x, np.zeros(0))
        task += gamma**H * td.value
        # plus the Eq. (16) term lambda (1/2 u' Sigma^-1 u + eps' Sigma^-1 u), eps = v - u
        kl = sum(0.5 * U0[t] @ sigma_inv @ U0[t] + (vs[t] - U0[t]) @ sigma_inv @ U0[t] for t in range(H))
        assert abs(kl) > 1.0
        assert tr.costs[i] == pytest.approx(task + kl, rel=1e-10)
    # nominal rollout of the updated plan: task cost only, reproducible exactly from integrate()
    x = x0.copy()
    task = 0.0
    for t in range(H):
        running.calc(rd, 0.4 + t * dt, x, r.plan[t])
        task += gamma**t * rd.value * dt
        x = _core.integrate(dyn, x, r.plan[t], dt, integrator)
    terminal.calc(td, 0.4 + H * dt, x, np.zeros(0))
    task += gamma**H * td.value
    np.testing.assert_allclose(r.nominal_states[-1], x, rtol=1e-10, atol=1e-12)
    assert r.nominal_cost == pytest.approx(task, rel=1e-10)


def test_ballbot_mppi_identical_for_one_and_two_threads():
    out = []
    for threads in (1, 2):
        solver, *_ = ballbot_solver(threads, "semi_implicit_euler", K=50)
        solver.set_state(np.array([0.0, 0.0, 0.1, 0.05, -0.05, 0.0, 0.0, 0.0, 0.1, 0.0]), 0.0)
        r = solver.optimize()
        out.append((r.plan.copy(), r.costs.copy(), r.weights.copy(), r.free_energy))
    for a, b in zip(*out):
        np.testing.assert_array_equal(a, b)
    assert np.all(np.isfinite(out[0][1]))
    assert np.std(out[0][1]) > 0  # the samples differ
