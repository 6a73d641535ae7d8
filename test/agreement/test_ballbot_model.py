"""Ballbot dynamics (cpp_ext/src/models/ballbot.cpp): derivatives, agreement with independent
references (CasADi Lagrangian form, pinocchio chain, numpy wheel kinematics), energy
conservation, open-loop instability, torque-map structure, ball rolling inertia, input checks."""
from __future__ import annotations

import math

import numpy as np
import pytest

from dmpc_core import _core
from tool_module import load_tool

derive = load_tool("derive_ballbot")


@pytest.fixture(scope="module")
def model():
    return _core.BallbotDynamics()


@pytest.fixture(scope="module")
def lagrange():
    """Reference CasADi functions from the energy (Lagrangian) form; the C code uses the Jacobian form."""
    return derive.build_functions("lagrange")


def random_states(n, seed=0, angle=0.7, rate=2.0):
    rng = np.random.default_rng(seed)
    xs = np.concatenate([rng.uniform(-1.0, 1.0, (n, 2)), rng.uniform(-angle, angle, (n, 3)),
                         rng.uniform(-rate, rate, (n, 5))], axis=1)
    us = rng.uniform(-3.0, 3.0, (n, 3))
    return xs, us


def rk4(model, x, u, dt):
    k1 = model.xdot(x, u)
    k2 = model.xdot(x + 0.5 * dt * k1, u)
    k3 = model.xdot(x + 0.5 * dt * k2, u)
    k4 = model.xdot(x + dt * k3, u)
    return x + dt / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)


def tilt_deg(x):
    """Angle between the base z axis and the vertical."""
    return math.degrees(math.acos(np.clip(math.cos(x[3]) * math.cos(x[4]), -1.0, 1.0)))


def nonstandard_params():
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


# (a) analytic Jacobians vs central finite differences ------------------------------------------
def test_jacobians_match_finite_differences(model):
    xs, us = random_states(8, seed=1)
    eps = 1e-6
    for x, u in zip(xs, us):
        data = model.create_data()
        model.calc_diff(data, x, u)
        np.testing.assert_allclose(data.xdot, model.xdot(x, u), rtol=0, atol=1e-12)
        fx_fd = np.empty((10, 10))
        for j in range(10):
            e = np.zeros(10)
            e[j] = eps
            fx_fd[:, j] = (model.xdot(x + e, u) - model.xdot(x - e, u)) / (2 * eps)
        fu_fd = np.empty((10, 3))
        for j in range(3):
            e = np.zeros(3)
            e[j] = eps
            fu_fd[:, j] = (model.xdot(x, u + e) - model.xdot(x, u - e)) / (2 * eps)
        scale = 1.0 + np.abs(fx_fd).max()
        np.testing.assert_allclose(data.fx, fx_fd, rtol=0, atol=1e-6 * scale)
        np.testing.assert_allclose(data.fu, fu_fd, rtol=0, atol=1e-6 * (1.0 + np.abs(fu_fd).max()))
        # control-affine: fu independent of u, xdot(u) = xdot(0) + fu u
        np.testing.assert_allclose(model.xdot(x, u), model.xdot(x, 0 * u) + data.fu @ u, atol=1e-10)


def test_calc_diff_without_prior_calc_and_data_reuse(model):
    xs, us = random_states(2, seed=2)
    d1, d2 = model.create_data(), model.create_data()
    model.calc(d1, xs[1], us[1])          # stale data from another point
    model.calc_diff(d1, xs[0], us[0])
    model.calc(d2, xs[0], us[0])
    model.calc_diff(d2, xs[0], us[0])
    np.testing.assert_array_equal(d1.fx, d2.fx)
    np.testing.assert_array_equal(d1.fu, d2.fu)


# (b) agreement with independent references -------------------------------------------------------
@pytest.mark.parametrize("use_default", [True, False])
def test_cpp_matches_casadi_lagrangian(model, lagrange, use_default):
    params = _core.BallbotParameters() if use_default else nonstandard_params()
    m = model if use_default else _core.BallbotDynamics(params)
    p = params.to_vector()
    xs, us = random_states(10, seed=3)
    for x, u in zip(xs, us):
        q, v = x[:5], x[5:]
        M, h, ST = (np.array(o) for o in lagrange["dyn"](q, v, p))
        h = h.ravel()
        np.testing.assert_allclose(m.mass_matrix(q), M, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(m.bias(q, v), h, rtol=1e-11, atol=1e-11)
        np.testing.assert_allclose(m.actuation_map(q), ST, rtol=1e-12, atol=1e-12)
        a = np.linalg.solve(M, ST @ u - h)
        np.testing.assert_allclose(m.xdot(x, u), np.concatenate([v, a]), rtol=1e-10, atol=1e-10)
        T, V = (float(o) for o in lagrange["energy"](q, v, p))
        assert m.energy(x) == pytest.approx(T + V, rel=1e-13, abs=1e-12)
        # inverse-dynamics Jacobians of the C code (Jacobian form) vs the Lagrangian form
        data = m.create_data()
        m.calc_diff(data, x, u)
        dq, dv = (np.array(o) for o in lagrange["id_jac"](q, v, a, u, p))
        np.testing.assert_allclose(data.fx[5:, :5], -np.linalg.solve(M, dq), rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(data.fx[5:, 5:], -np.linalg.solve(M, dv), rtol=1e-9, atol=1e-9)
    if use_default:
        np.testing.assert_allclose(derive.forward_dynamics(xs[0], us[0]), model.xdot(xs[0], us[0]),
                                   atol=1e-10)


def test_mass_matrix_and_bias_match_pinocchio():
    """Independent rigid-body reference: pinocchio chain px -> py -> Rz -> Ry -> Rx carrying the
    base; the ball (with its rolling inertia as extra mass I_b / r_b^2) rides on the py joint."""
    import pinocchio as pin
    params = nonstandard_params()
    m = _core.BallbotDynamics(params)
    r_b = params.ball_radius
    pm = pin.Model()
    pm.gravity.linear = np.array([0.0, 0.0, -params.gravity])
    j = pm.addJoint(0, pin.JointModelPX(), pin.SE3(np.eye(3), np.array([0.0, 0.0, r_b])), "px")
    j = pm.addJoint(j, pin.JointModelPY(), pin.SE3.Identity(), "py")
    pm.appendBodyToJoint(j, pin.Inertia(params.ball_mass + params.ball_inertia / r_b**2, np.zeros(3),
                                        np.zeros((3, 3))), pin.SE3.Identity())
    j = pm.addJoint(j, pin.JointModelRZ(), pin.SE3.Identity(), "yaw")
    j = pm.addJoint(j, pin.JointModelRY(), pin.SE3.Identity(), "pitch")
    j = pm.addJoint(j, pin.JointModelRX(), pin.SE3.Identity(), "roll")
    pm.appendBodyToJoint(j, pin.Inertia(params.base_mass, np.asarray(params.base_com),
                                        np.diag(params.base_inertia)), pin.SE3.Identity())
    pd = pm.createData()
    xs, _ = random_states(10, seed=4, angle=1.2, rate=3.0)
    for x in xs:
        q, v = x[:5], x[5:]
        Mp = pin.crba(pm, pd, q)
        Mp = np.triu(Mp) + np.triu(Mp, 1).T
        np.testing.assert_allclose(m.mass_matrix(q), Mp, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(m.bias(q, v), pin.rnea(pm, pd, q, v, np.zeros(5)), rtol=1e-11, atol=1e-11)
        # potential energy: m_B g z_com, z_com from pinocchio's COM of the base
        pin.forwardKinematics(pm, pd, q)
        z_com = (pd.oMi[5].act(np.asarray(params.base_com)))[2]
        assert m.potential_energy(x) == pytest.approx(params.base_mass * params.gravity * z_com, rel=1e-12)


def _rot_zyx(yaw, pitch, roll):
    cz, sz, cy, sy, cx, sx = (math.cos(yaw), math.sin(yaw), math.cos(pitch), math.sin(pitch),
                              math.cos(roll), math.sin(roll))
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    return rz @ ry @ rx


def _wheel_rates_numpy(x, params):
    """Independent wheel kinematics in the world frame: base angular velocity from a finite
    difference of R(q(t)), contact points and drive directions built from the geometry, and the
    relative surface velocity (w_ball - w_base) x (r_b d_i) projected on the drive direction."""
    q, v = x[:5], x[5:]
    r_b, r_w, alpha = params.ball_radius, params.wheel_radius, params.wheel_zenith_angle
    R = _rot_zyx(*q[2:5])
    dt = 1e-7
    Rdot = (_rot_zyx(*(q[2:5] + dt * v[2:5])) - _rot_zyx(*(q[2:5] - dt * v[2:5]))) / (2 * dt)
    W = Rdot @ R.T
    w_base = np.array([W[2, 1], W[0, 2], W[1, 0]])
    w_ball = np.array([-v[1] / r_b, v[0] / r_b, 0.0])  # rolling, no spin about the vertical
    rates = []
    for beta in (0.0, 2 * math.pi / 3, 4 * math.pi / 3):
        d = R @ np.array([math.sin(alpha) * math.cos(beta), math.sin(alpha) * math.sin(beta), math.cos(alpha)])
        t = R @ np.array([-math.sin(beta), math.cos(beta), 0.0])
        rates.append(np.cross(w_ball - w_base, r_b * d) @ t / r_w)
    return np.array(rates)


@pytest.mark.parametrize("use_default", [True, False])
def test_wheel_rates_and_actuation_map_vs_numpy_kinematics(use_default):
    params = _core.BallbotParameters() if use_default else nonstandard_params()
    m = _core.BallbotDynamics(params)
    xs, us = random_states(6, seed=5, angle=1.0)
    for x, u in zip(xs, us):
        np.testing.assert_allclose(m.wheel_rates(x), _wheel_rates_numpy(x, params), rtol=1e-7, atol=1e-7)
        # S = d w / d v (columns by unit rates), S^T = actuation map
        S = np.stack([_wheel_rates_numpy(np.concatenate([x[:5], e]), params) for e in np.eye(5)], axis=1)
        np.testing.assert_allclose(m.actuation_map(x[:5]), S.T, rtol=1e-7, atol=1e-7)
        # virtual power: generalized force . v == wheel torque . wheel rate
        assert (m.actuation_map(x[:5]) @ u) @ x[5:] == pytest.approx(u @ m.wheel_rates(x), rel=1e-12, abs=1e-12)


# (c) passive energy conservation ---------------------------------------------------------------
@pytest.mark.parametrize("x0", [
    np.array([0, 0, 0, 0, math.radians(5.0), 0, 0, 0, 0, 0.0]),          # falls through large angles
    np.array([0.2, -0.1, 0.3, 0.1, math.pi - 0.2, 0.5, 0, 0.4, 0, 0.0]),  # hanging, swinging
])
def test_passive_energy_conservation(model, x0):
    dt, steps = 1e-3, 2000
    u = np.zeros(3)
    x = x0.copy()
    e0 = model.energy(x)
    drift = 0.0
    travelled = 0.0
    for _ in range(steps):
        x_new = _core.integrate(model, x, u, dt, "rk4")
        travelled += np.abs(x_new[2:5] - x[2:5]).sum()
        x = x_new
        drift = max(drift, abs(model.energy(x) - e0))
    assert travelled > 0.5  # it really moved
    assert abs(x[3]) < math.radians(85)  # away from the ZYX singularity
    assert drift < 1e-6 * (1.0 + abs(e0))
    # the C++ RK4 step agrees with a Python RK4 over the model's xdot
    np.testing.assert_allclose(_core.integrate(model, x0, u, dt, "rk4"), rk4(model, x0, u, dt), atol=1e-14)


def test_energy_changes_by_wheel_work(model):
    """With torques, dE/dt = tau . wheel_rates (the power delivered by the motors)."""
    xs, us = random_states(5, seed=6)
    for x, u in zip(xs, us):
        xdot = model.xdot(x, u)
        eps = 1e-6
        dE = (model.energy(x + eps * xdot) - model.energy(x - eps * xdot)) / (2 * eps)
        assert dE == pytest.approx(u @ model.wheel_rates(x), rel=1e-6, abs=1e-6)


# (d) open-loop instability ---------------------------------------------------------------------
@pytest.mark.parametrize("axis", [3, 4])
def test_falls_without_control(model, axis):
    x = np.zeros(10)
    x[axis] = math.radians(1.0)
    t_cross = None
    for k in range(2000):
        x = _core.integrate(model, x, np.zeros(3), 1e-3, "rk4")
        if tilt_deg(x) > 20.0:
            t_cross = (k + 1) * 1e-3
            break
    assert t_cross is not None and t_cross < 2.0
    # and upright is an unstable equilibrium of the linearisation (eigenvalue with Re > 0)
    fx, _ = model.jacobians(np.zeros(10), np.zeros(3))
    assert np.linalg.eigvals(fx).real.max() > 1.0


# (e) torque-map structure ----------------------------------------------------------------------
def test_actuation_map_structure_upright(model):
    p = model.params
    ST = model.actuation_map(np.zeros(5))
    # equal torques: no net force on px / py, no pitch / roll torque, pure yaw torque
    f = ST @ np.ones(3)
    np.testing.assert_allclose(f[[0, 1, 3, 4]], 0.0, atol=1e-14)
    assert f[2] == pytest.approx(-3 * p.ball_radius / p.wheel_radius * math.sin(p.wheel_zenith_angle))
    # OCS2's roll row: [2, -1, -1] sqrt(2) r_b / (4 r_w) (alpha = 45 deg)
    np.testing.assert_allclose(ST[4], np.array([2.0, -1.0, -1.0]) * math.sqrt(2) * p.ball_radius / (4 * p.wheel_radius),
                               rtol=1e-14)
    # pitch row: [0, 1, -1] sqrt(6) r_b / (4 r_w); ball rows = -(1/r_b) x (pitch, -roll) rows
    np.testing.assert_allclose(ST[3], np.array([0.0, 1.0, -1.0]) * math.sqrt(6) * p.ball_radius / (4 * p.wheel_radius),
                               rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(ST[0], -ST[3] / p.ball_radius, rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(ST[1], ST[4] / p.ball_radius, rtol=1e-14, atol=1e-15)
    # 120 deg symmetry: permuting the wheels rotates the (pitch, roll) torque by 120 deg
    c, s = math.cos(2 * math.pi / 3), math.sin(2 * math.pi / 3)
    rot = np.array([[c, -s], [s, c]])
    tau = np.array([0.3, -1.1, 0.7])
    pr = lambda t: np.array([ST[4] @ t, ST[3] @ t])  # (x, y) components of the body torque
    np.testing.assert_allclose(pr(np.roll(tau, 1)), rot @ pr(tau), atol=1e-12)
    assert np.linalg.matrix_rank(ST) == 3


def test_actuation_map_depends_on_tilt_not_position(model):
    q = np.array([0.0, 0.0, 0.3, 0.2, -0.1])
    q_shift = q + np.array([1.5, -2.0, 0, 0, 0])
    np.testing.assert_array_equal(model.actuation_map(q), model.actuation_map(q_shift))
    assert not np.allclose(model.actuation_map(q), model.actuation_map(np.zeros(5)))


# (f) ball rolling inertia ----------------------------------------------------------------------
def test_ball_rolling_inertia_in_mass_matrix(model):
    p = model.params
    M = model.mass_matrix(np.zeros(5))
    expected = p.ball_mass + p.base_mass + p.ball_inertia / p.ball_radius**2
    assert M[0, 0] == pytest.approx(expected, rel=1e-14)
    assert M[1, 1] == pytest.approx(expected, rel=1e-14)
    # removing the ball inertia changes exactly those two entries
    p0 = _core.BallbotParameters()
    p0.ball_inertia = 0.0
    M0 = _core.BallbotDynamics(p0).mass_matrix(np.array([0.4, 0.1, 0.7, -0.3, 0.2]))
    M1 = model.mass_matrix(np.array([0.4, 0.1, 0.7, -0.3, 0.2]))
    diff = M1 - M0
    np.testing.assert_allclose(diff, np.diag([1, 1, 0, 0, 0]) * p.ball_inertia / p.ball_radius**2, atol=1e-13)
    # kinetic energy of a pure rolling motion: 1/2 (m_b + I_b / r^2 + m_B) v^2 at upright
    x = np.zeros(10)
    x[5] = 0.8
    assert model.kinetic_energy(x) == pytest.approx(0.5 * expected * 0.64, rel=1e-14)
    assert np.all(np.linalg.eigvalsh(M1) > 0)


# (g) input validation --------------------------------------------------------------------------
def test_wrong_sizes_and_bad_inputs_raise(model):
    with pytest.raises(ValueError, match="expected 10"):
        model.xdot(np.zeros(9), np.zeros(3))
    with pytest.raises(ValueError, match="expected 3"):
        model.xdot(np.zeros(10), np.zeros(4))
    with pytest.raises(ValueError):
        model.calc(model.create_data(), np.full(10, np.nan), np.zeros(3))
    with pytest.raises(ValueError, match="expected 5"):
        model.mass_matrix(np.zeros(4))
    with pytest.raises(ValueError, match="expected 5"):
        model.bias(np.zeros(5), np.zeros(6))
    with pytest.raises(ValueError, match="expected 5"):
        model.actuation_map(np.zeros(10))
    with pytest.raises(ValueError, match="expected 10"):
        model.energy(np.zeros(5))
    with pytest.raises(ValueError, match="create_data"):
        model.calc(_core.DynamicsData(10, 3), np.zeros(10), np.zeros(3))
    bad = _core.BallbotParameters()
    bad.ball_radius = -1.0
    with pytest.raises(ValueError, match="ball_radius"):
        _core.BallbotDynamics(bad)
    bad = _core.BallbotParameters()
    bad.wheel_zenith_angle = 2.0
    with pytest.raises(ValueError, match="zenith"):
        _core.BallbotDynamics(bad)


def test_parameters_roundtrip_and_dimensions(model):
    assert (model.nx, model.nu, model.nq) == (10, 3, 5)
    assert model.name == "BallbotDynamics"
    p = nonstandard_params()
    np.testing.assert_allclose(_core.BallbotDynamics(p).params.to_vector(), p.to_vector())
    np.testing.assert_allclose(_core.BallbotParameters().to_vector(), derive.default_params(), rtol=1e-15)
    assert len(derive.PARAM_NAMES) == p.to_vector().size


def test_timing_helper_reports_positive_times(model):
    t = model.time_evaluations(np.zeros(10), np.zeros(3), 10)
    assert set(t) == {"calc_cpu", "calc_and_diff_cpu", "calc_wall", "calc_and_diff_wall"}
    assert all(v > 0 and math.isfinite(v) for v in t.values())
    with pytest.raises(ValueError):
        model.time_evaluations(np.zeros(10), np.zeros(3), 0)
