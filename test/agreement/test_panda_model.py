"""Franka Panda model: the project URDF vs example-robot-data, the C++ PandaDynamics and
FrameTranslationCost vs pinocchio (Python) and finite differences, energy conservation, error
handling, and the crocoddyl FDDP reaching baseline."""
from __future__ import annotations

import time

import numpy as np
import pytest

import pinocchio as pin

from dmpc_core import _core  # noqa: E402
from dmpc_core.models.panda import (  # noqa: E402
    JOINT_NAMES,
    Q_READY,
    TCP_FRAME,
    default_urdf_path,
    example_robot_data_urdf_path,
)

NQ = 7
NX = 14


@pytest.fixture(scope="module")
def urdf() -> str:
    return str(default_urdf_path())


@pytest.fixture(scope="module")
def pin_model(urdf):
    return pin.buildModelFromUrdf(urdf)


@pytest.fixture(scope="module")
def panda(urdf):
    return _core.PandaDynamics(urdf)


def random_q(rng, model) -> np.ndarray:
    return rng.uniform(model.lowerPositionLimit, model.upperPositionLimit)


def random_x(rng, model) -> np.ndarray:
    return np.concatenate([random_q(rng, model), rng.uniform(-1.5, 1.5, NQ)])


def full_mass_matrix(model, data, q) -> np.ndarray:
    M = pin.crba(model, data, q)
    return np.triu(M) + np.triu(M, 1).T


# ------------------------------------------------------------------------------------------
# (a) our URDF vs example-robot-data (fingers locked)
# ------------------------------------------------------------------------------------------

def test_urdf_structure(pin_model):
    assert pin_model.nq == NQ and pin_model.nv == NQ
    assert tuple(pin_model.names[1:]) == JOINT_NAMES
    assert pin_model.existFrame(TCP_FRAME)
    # Franka's published limits (see the URDF header).
    np.testing.assert_allclose(pin_model.upperPositionLimit,
                               [2.8973, 1.7628, 2.8973, -0.0698, 2.8973, 3.7525, 2.8973])
    np.testing.assert_allclose(pin_model.lowerPositionLimit,
                               [-2.8973, -1.7628, -2.8973, -3.0718, -2.8973, -0.0175, -2.8973])
    np.testing.assert_allclose(pin_model.velocityLimit, [2.175] * 4 + [2.61] * 3)
    np.testing.assert_allclose(pin_model.effortLimit, [87.0] * 4 + [12.0] * 3)
    # Total moving mass: links 1..7 + hand 0.73 + 2 fingers of 0.015 kg.
    moving = sum(pin_model.inertias[i].mass for i in range(1, pin_model.njoints))
    assert moving == pytest.approx(4.970684 + 0.646926 + 3.228604 + 3.587895 + 1.225946
                                   + 1.666555 + 0.735522 + 0.73 + 0.03, abs=1e-9)


def test_urdf_matches_example_robot_data(pin_model):
    """Mass matrix, gravity and TCP position agree with example-robot-data's Panda with the
    finger joints locked at 0 (pinocchio.buildReducedModel): max abs error < 1e-10 on 20 random
    configurations within the joint limits (observed: ~1e-14, i.e. round-off)."""
    full = pin.buildModelFromUrdf(str(example_robot_data_urdf_path()))
    assert full.nq == 9
    locked = [full.getJointId(n) for n in ("panda_finger_joint1", "panda_finger_joint2")]
    ref = pin.buildReducedModel(full, locked, pin.neutral(full))
    assert tuple(ref.names[1:]) == JOINT_NAMES
    d, dr = pin_model.createData(), ref.createData()
    fid, fid_ref = pin_model.getFrameId(TCP_FRAME), ref.getFrameId("panda_hand_tcp")
    rng = np.random.default_rng(1)
    for _ in range(20):
        q = random_q(rng, pin_model)
        M, Mr = full_mass_matrix(pin_model, d, q), full_mass_matrix(ref, dr, q)
        np.testing.assert_allclose(M, Mr, rtol=0, atol=1e-10)
        g = pin.computeGeneralizedGravity(pin_model, d, q)
        gr = pin.computeGeneralizedGravity(ref, dr, q)
        np.testing.assert_allclose(g, gr, rtol=0, atol=1e-10)
        pin.framesForwardKinematics(pin_model, d, q)
        pin.framesForwardKinematics(ref, dr, q)
        np.testing.assert_allclose(d.oMf[fid].homogeneous, dr.oMf[fid_ref].homogeneous, atol=1e-12)
        assert np.abs(g).max() > 1.0  # gravity is not trivially zero


def test_dh_kinematics(pin_model):
    """Flange position at q = 0 from Franka's DH table: x = a4 - a5 + a7 = 0.088,
    z = d1 + d3 + d5 - d_flange = 0.333 + 0.316 + 0.384 - 0.107 = 0.926."""
    d = pin_model.createData()
    pin.framesForwardKinematics(pin_model, d, np.zeros(NQ))
    p = d.oMf[pin_model.getFrameId("panda_link8")].translation
    np.testing.assert_allclose(p, [0.088, 0.0, 0.926], atol=1e-12)
    p_tcp = d.oMf[pin_model.getFrameId(TCP_FRAME)].translation
    np.testing.assert_allclose(p_tcp, [0.088, 0.0, 0.926 - 0.1034], atol=1e-12)


# ------------------------------------------------------------------------------------------
# (b) C++ PandaDynamics vs pinocchio Python
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("damping", [0.0, 0.7])
def test_xdot_matches_pinocchio_aba(urdf, pin_model, damping):
    panda = _core.PandaDynamics(urdf, damping)
    assert (panda.nx, panda.nu, panda.nq) == (NX, NQ, NQ)
    d = pin_model.createData()
    rng = np.random.default_rng(2)
    data = panda.create_data()
    for _ in range(20):
        x = random_x(rng, pin_model)
        u = rng.uniform(-20, 20, NQ)
        q, v = x[:NQ], x[NQ:]
        a_ref = pin.aba(pin_model, d, q, v, u - damping * v)
        panda.calc(data, x, u)
        np.testing.assert_allclose(data.xdot[:NQ], v, rtol=0, atol=0)
        np.testing.assert_allclose(data.xdot[NQ:], a_ref, rtol=1e-10, atol=1e-9)
        # calc_diff fills the same xdot
        data.xdot = np.zeros(NX)
        panda.calc_diff(data, x, u)
        np.testing.assert_allclose(data.xdot[NQ:], a_ref, rtol=1e-10, atol=1e-9)


def test_helpers_match_pinocchio(panda, pin_model):
    d = pin_model.createData()
    rng = np.random.default_rng(3)
    fid = pin_model.getFrameId(TCP_FRAME)
    for _ in range(5):
        x = random_x(rng, pin_model)
        q, v = x[:NQ], x[NQ:]
        np.testing.assert_allclose(panda.mass_matrix(q), full_mass_matrix(pin_model, d, q), atol=1e-12)
        np.testing.assert_allclose(panda.gravity(q), pin.computeGeneralizedGravity(pin_model, d, q),
                                   atol=1e-11)
        pin.framesForwardKinematics(pin_model, d, q)
        np.testing.assert_allclose(panda.frame_position(q, TCP_FRAME), d.oMf[fid].translation, atol=1e-14)
        J = pin.computeFrameJacobian(pin_model, d, q, fid, pin.LOCAL_WORLD_ALIGNED)[:3]
        np.testing.assert_allclose(panda.frame_jacobian(q, TCP_FRAME), J, atol=1e-13)
        M = panda.mass_matrix(q)
        e_ref = 0.5 * v @ M @ v + pin.computePotentialEnergy(pin_model, d, q)
        assert panda.energy(x) == pytest.approx(e_ref, rel=1e-12, abs=1e-12)
    assert panda.joint_names == list(JOINT_NAMES)
    np.testing.assert_allclose(panda.effort_limit, [87.0] * 4 + [12.0] * 3)
    assert TCP_FRAME in panda.frame_names and panda.has_frame(TCP_FRAME)


# ------------------------------------------------------------------------------------------
# (c) analytic Jacobians vs central finite differences
# ------------------------------------------------------------------------------------------

def fd_jacobians(model, x, u, eps=1e-5):
    fx = np.zeros((NX, NX))
    fu = np.zeros((NX, NQ))
    for i in range(NX):
        e = np.zeros(NX)
        e[i] = eps
        fx[:, i] = (model.xdot(x + e, u) - model.xdot(x - e, u)) / (2 * eps)
    for i in range(NQ):
        e = np.zeros(NQ)
        e[i] = eps
        fu[:, i] = (model.xdot(x, u + e) - model.xdot(x, u - e)) / (2 * eps)
    return fx, fu


@pytest.mark.parametrize("damping", [0.0, 0.7])
def test_jacobians_vs_finite_differences(urdf, pin_model, damping):
    """fx, fu agree with central differences (eps = 1e-5): every entry within
    1e-6 relative plus 1e-7 of the largest entry of the Jacobian (observed: ~1e-9 of it; the
    entries reach ~2e3 because joint 7 is light)."""
    panda = _core.PandaDynamics(urdf, damping)
    rng = np.random.default_rng(4)
    for _ in range(5):
        x = random_x(rng, pin_model)
        u = rng.uniform(-20, 20, NQ)
        fx, fu = panda.jacobians(x, u)
        fx_fd, fu_fd = fd_jacobians(panda, x, u)
        np.testing.assert_allclose(fx, fx_fd, rtol=1e-6, atol=1e-7 * np.abs(fx_fd).max())
        np.testing.assert_allclose(fu, fu_fd, rtol=1e-6, atol=1e-7 * np.abs(fu_fd).max())
        np.testing.assert_array_equal(fx[:NQ], np.hstack([np.zeros((NQ, NQ)), np.eye(NQ)]))
        np.testing.assert_allclose(fu[NQ:], np.linalg.inv(panda.mass_matrix(x[:NQ])), rtol=1e-9, atol=1e-9)
        # control-affine: xdot(x, u) = f(x) + g(x) u with g = fu independent of u
        np.testing.assert_allclose(panda.xdot(x, u), panda.xdot(x, 0 * u) + fu @ u, rtol=1e-12, atol=1e-9)
        np.testing.assert_allclose(panda.jacobians(x, 3 * u + 1)[1], fu, rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------------------------------
# (d) passive simulation: energy
# ------------------------------------------------------------------------------------------

def simulate_energy(panda, x0, dt=1e-3, steps=1000):
    u = np.zeros(NQ)
    x = x0.copy()
    energies = [panda.energy(x)]
    speeds = [x[NQ:] @ x[NQ:]]
    states = [x]
    for _ in range(steps):
        x = _core.integrate(panda, x, u, dt, "rk4")
        energies.append(panda.energy(x))
        speeds.append(x[NQ:] @ x[NQ:])
        states.append(x)
    return np.array(energies), np.array(speeds), np.array(states)


def test_passive_energy_conservation(panda, pin_model):
    """Zero torque, no damping, RK4 at dt = 1 ms for 1 s from rest at a random pose: the arm
    falls (kinetic energy of several J) while |E(t) - E(0)| stays below 1e-6 of the
    peak kinetic energy (RK4's error is O(dt^4); observed 8e-9: 3e-7 J of 37 J)."""
    rng = np.random.default_rng(5)
    x0 = np.concatenate([random_q(rng, pin_model), np.zeros(NQ)])
    E, _, xs = simulate_energy(panda, x0)
    assert np.all(np.isfinite(E))
    # Kinetic energy: E minus the potential V(q) = energy([q; 0]).
    kinetic = np.array([e - panda.energy(np.concatenate([x[:NQ], np.zeros(NQ)])) for e, x in zip(E, xs)])
    ke_peak = kinetic.max()
    assert ke_peak > 1.0, "the arm should gain kinetic energy while falling"
    drift = np.max(np.abs(E - E[0]))
    assert drift < 1e-6 * ke_peak, f"energy drift {drift:.3e} J vs peak kinetic energy {ke_peak:.3f} J"


def test_damped_energy_dissipation(urdf, pin_model):
    """With joint damping b, dE/dt = -b ||v||^2: E decreases monotonically and
    E(T) - E(0) matches -b * integral ||v||^2 dt (trapezoid) to 1e-5 relative (observed 2e-7)."""
    b = 0.5
    panda = _core.PandaDynamics(urdf, b)
    rng = np.random.default_rng(6)
    x0 = np.concatenate([random_q(rng, pin_model), np.zeros(NQ)])
    E, speed2, _ = simulate_energy(panda, x0)
    assert np.all(np.diff(E) <= 1e-9)
    dissipated = b * np.trapezoid(speed2, dx=1e-3)
    assert dissipated > 0.1
    assert E[-1] - E[0] == pytest.approx(-dissipated, rel=1e-5)


# ------------------------------------------------------------------------------------------
# (e) FrameTranslationCost
# ------------------------------------------------------------------------------------------

def test_frame_translation_cost(panda, pin_model):
    """Value and position vs pinocchio Python, lx vs central differences of the value,
    lxx = Gauss-Newton w J^T J (J from pinocchio Python), u-derivatives zero."""
    rng = np.random.default_rng(7)
    p_ref = np.array([0.4, -0.1, 0.5])
    w = 3.0
    cost = _core.FrameTranslationCost(panda, TCP_FRAME, p_ref, w)
    assert (cost.nx, cost.nu) == (NX, NQ)
    d = pin_model.createData()
    fid = pin_model.getFrameId(TCP_FRAME)
    data = cost.create_data()
    for _ in range(5):
        x = random_x(rng, pin_model)
        u = rng.normal(size=NQ)
        q = x[:NQ]
        pin.framesForwardKinematics(pin_model, d, q)
        p = d.oMf[fid].translation
        cost.calc_diff(data, 0.0, x, u)
        np.testing.assert_allclose(data.residual, p - p_ref, atol=1e-14)
        assert data.value == pytest.approx(0.5 * w * np.sum((p - p_ref) ** 2), rel=1e-13)
        assert cost.value(0.0, x, u) == pytest.approx(data.value, rel=1e-14)
        eps = 1e-6
        g_fd = np.array([(cost.value(0.0, x + eps * e, u) - cost.value(0.0, x - eps * e, u)) / (2 * eps)
                         for e in np.eye(NX)])
        np.testing.assert_allclose(data.lx, g_fd, rtol=1e-6, atol=1e-8)
        assert np.all(data.lx[NQ:] == 0)
        J = pin.computeFrameJacobian(pin_model, d, q, fid, pin.LOCAL_WORLD_ALIGNED)[:3]
        H = np.zeros((NX, NX))
        H[:NQ, :NQ] = w * J.T @ J
        np.testing.assert_allclose(data.lxx, H, atol=1e-12)
        assert np.all(data.lu == 0) and np.all(data.luu == 0) and np.all(data.lux == 0)
    # The reference is settable.
    cost.p_ref = np.zeros(3)
    np.testing.assert_array_equal(cost.p_ref, np.zeros(3))
    x = np.concatenate([Q_READY, np.zeros(NQ)])
    p = panda.frame_position(Q_READY, TCP_FRAME)
    assert cost.value(0.0, x, np.zeros(NQ)) == pytest.approx(0.5 * w * p @ p, rel=1e-13)
    cost.set_reference(p)
    assert cost.value(0.0, x, np.zeros(NQ)) == pytest.approx(0.0, abs=1e-28)


# ------------------------------------------------------------------------------------------
# (f) errors
# ------------------------------------------------------------------------------------------

def test_errors(panda, tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        _core.PandaDynamics(str(tmp_path / "missing.urdf"))
    bad = tmp_path / "bad.urdf"
    bad.write_text("<robot name='x'><link name='a'></robot>")
    with pytest.raises(ValueError, match="cannot parse URDF"):
        _core.PandaDynamics(str(bad))
    with pytest.raises(ValueError, match="nq = 9"):
        _core.PandaDynamics(str(example_robot_data_urdf_path()))
    with pytest.raises(ValueError, match="damping"):
        _core.PandaDynamics(str(default_urdf_path()), -1.0)
    with pytest.raises(ValueError, match="expected 14"):
        panda.xdot(np.zeros(13), np.zeros(NQ))
    with pytest.raises(ValueError, match="expected 7"):
        panda.jacobians(np.zeros(NX), np.zeros(6))
    with pytest.raises(ValueError, match="non-finite"):
        panda.xdot(np.full(NX, np.nan), np.zeros(NQ))
    with pytest.raises(ValueError, match="expected 7"):
        panda.mass_matrix(np.zeros(8))
    with pytest.raises(ValueError, match="expected 14"):
        panda.energy(np.zeros(7))
    with pytest.raises(ValueError, match="not found"):
        panda.frame_position(np.zeros(NQ), "no_such_frame")
    with pytest.raises(ValueError, match="not found"):
        _core.FrameTranslationCost(panda, "no_such_frame", np.zeros(3), 1.0)
    with pytest.raises(ValueError, match="expected 3"):
        _core.FrameTranslationCost(panda, TCP_FRAME, np.zeros(2), 1.0)
    with pytest.raises(ValueError, match="weight"):
        _core.FrameTranslationCost(panda, TCP_FRAME, np.zeros(3), -1.0)
    cost = _core.FrameTranslationCost(panda, TCP_FRAME, np.zeros(3), 1.0)
    with pytest.raises(ValueError, match="expected 3"):
        cost.p_ref = np.zeros(4)
    # Data from another model is rejected, not misused.
    other = _core.PendulumDynamics()
    with pytest.raises(ValueError, match="create_data"):
        panda.calc(other.create_data(), np.zeros(NX), np.zeros(NQ))


# ------------------------------------------------------------------------------------------
# crocoddyl FDDP baseline
# ------------------------------------------------------------------------------------------

def test_crocoddyl_fddp_reaching():
    """FDDP converges on the default reaching problem and the final TCP is within 1 cm of
    p_ref; the total cost equals sum_k dt * l(x_k, u_k) + l_N(x_N) recomputed independently
    (the dmpc convention), and the trajectory is a rollout of our C++ model with
    semi-implicit Euler."""
    import crocoddyl
    from dmpc_core.baselines.crocoddyl_panda import (  # noqa: PLC0415
        build_crocoddyl_problem,
        resolve_setup,
        solve_fddp,
    )

    s = resolve_setup()
    problem, solver = build_crocoddyl_problem(s, nthreads=1)
    assert isinstance(problem, crocoddyl.ShootingProblem) and problem.T == 100
    t0 = time.perf_counter()
    converged = solve_fddp(problem, solver, maxiter=200)
    elapsed = time.perf_counter() - t0
    assert converged, f"FDDP stopped after {solver.iter} iterations, stop = {solver.stop:.3e}"
    assert solver.isFeasible
    xs, us = np.array(solver.xs), np.array(solver.us)
    panda = _core.PandaDynamics(s["urdf"])
    p_end = panda.frame_position(xs[-1][:NQ], s["frame"])
    assert np.linalg.norm(p_end - s["p_ref"]) < 0.01, p_end
    p_start = panda.frame_position(s["x0"][:NQ], s["frame"])
    assert np.linalg.norm(p_start - s["p_ref"]) > 0.2  # the task is a real move

    # Same cost, recomputed from the documented formula.
    def stage(x, u, w_x, w_u, w_goal, with_u):
        dx = x - s["x_ref"]
        val = 0.5 * dx @ (w_x * dx)
        if with_u:
            du = u - s["u_ref"]
            val += 0.5 * w_u * du @ du
        r = panda.frame_position(x[:NQ], s["frame"]) - s["p_ref"]
        return val + 0.5 * w_goal * r @ r

    total = sum(s["dt"] * stage(xs[k], us[k], s["w_x"], s["w_u"], s["w_goal"], True)
                for k in range(problem.T))
    total += stage(xs[-1], None, s["w_x_terminal"], 0.0, s["w_goal_terminal"], False)
    assert solver.cost == pytest.approx(total, rel=1e-9)

    # The trajectory is a rollout of our C++ model under semi-implicit Euler.
    for k in range(0, problem.T, 10):
        x_next = _core.integrate(panda, xs[k], us[k], s["dt"], "semi_implicit_euler")
        np.testing.assert_allclose(x_next, xs[k + 1], atol=1e-9)
    print(f"FDDP: {solver.iter} iterations, {elapsed / max(solver.iter, 1) * 1e3:.2f} ms/iter, "
          f"cost {solver.cost:.6f}, TCP error {np.linalg.norm(p_end - s['p_ref']) * 1e3:.2f} mm")


# ------------------------------------------------------------------------------------------
# URDF lookup
# ------------------------------------------------------------------------------------------

def test_default_urdf_path_source_and_installed(tmp_path, monkeypatch):
    """In the source tree the URDF is <repo>/urdf/panda.urdf; installed, it is found in
    <prefix>/share/dmpc_ros/urdf next to <prefix>/lib/pythonX.Y/site-packages/dmpc_core."""
    import importlib.util  # noqa: PLC0415
    import shutil  # noqa: PLC0415

    import dmpc_core.models.panda as panda_module  # noqa: PLC0415

    repo_urdf = default_urdf_path()
    assert repo_urdf.name == "panda.urdf" and repo_urdf.parent.name == "urdf"

    prefix = tmp_path / "prefix"
    pkg = prefix / "lib" / "python3.11" / "site-packages" / "dmpc_core" / "models"
    pkg.mkdir(parents=True)
    shutil.copy(panda_module.__file__, pkg / "panda.py")
    share = prefix / "share" / "dmpc_ros" / "urdf"
    share.mkdir(parents=True)
    shutil.copy(repo_urdf, share / "panda.urdf")
    monkeypatch.delenv("AMENT_PREFIX_PATH", raising=False)
    spec = importlib.util.spec_from_file_location("installed_panda", pkg / "panda.py")
    installed = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(installed)
    assert installed.default_urdf_path() == share / "panda.urdf"
    (share / "panda.urdf").unlink()
    if not any(c.is_file() for c in installed._candidate_urdf_paths()):
        with pytest.raises(FileNotFoundError, match="searched"):
            installed.default_urdf_path()
