"""Franka Panda simulators: MuJoCo compiled from our URDF vs the pinocchio model of the core.

MuJoCo is an independent rigid-body engine, so agreement of the mass matrix, the bias and gravity
torques and of torque rollouts checks the URDF import on both sides (joint axes, frames, inertias)
and the core's dynamics. Tolerances are round-off level because both use the same inertial data
and MuJoCo's damping/armature/friction loss are zero (asserted).
"""
from __future__ import annotations

import numpy as np
import pytest

import mujoco

from dmpc_core import _core  # noqa: E402
from dmpc_core.models.panda import JOINT_NAMES, Q_READY, TCP_FRAME, default_urdf_path  # noqa: E402
from dmpc_core.sim.panda import (  # noqa: E402
    MujocoPandaPlant, PandaSimSettings, make_panda_plant, mujoco_model_from_urdf, random_start)

NQ = 7


@pytest.fixture(scope="module")
def panda():
    return _core.PandaDynamics(str(default_urdf_path()))


def _random_x(rng, panda, vmax=1.5):
    q = rng.uniform(panda.lower_position_limit, panda.upper_position_limit)
    return np.concatenate([q, rng.uniform(-vmax, vmax, NQ)])


def test_mujoco_model_structure():
    m = mujoco_model_from_urdf()
    assert tuple(m.joint(i).name for i in range(m.njnt)) == JOINT_NAMES
    assert m.nq == m.nv == NQ and m.nu == 0
    np.testing.assert_array_equal(m.dof_damping, 0.0)
    np.testing.assert_array_equal(m.dof_armature, 0.0)
    np.testing.assert_array_equal(m.dof_frictionloss, 0.0)
    np.testing.assert_allclose(m.opt.gravity, [0, 0, -9.81])
    assert m.opt.timestep == 1e-3
    assert m.opt.disableflags & mujoco.mjtDisableBit.mjDSBL_CONTACT
    with pytest.raises(ValueError, match="integrator"):
        mujoco_model_from_urdf(integrator="Leapfrog")


def test_mass_matrix_bias_and_gravity_agree_with_pinocchio(panda):
    """30 random states within the joint limits: |M_mj - M_pin|, |b_mj - b_pin|, |g_mj - g_pin|
    below 1e-9 (observed ~1e-14). b_pin = -M a0 with a0 the core's acceleration at zero torque
    (b = C(q, v) v + g(q))."""
    m = mujoco_model_from_urdf()
    d = mujoco.MjData(m)
    rng = np.random.default_rng(0)
    M = np.zeros((NQ, NQ))
    for _ in range(30):
        x = _random_x(rng, panda)
        q, v = x[:NQ], x[NQ:]
        d.qpos[:], d.qvel[:] = q, v
        mujoco.mj_forward(m, d)
        mujoco.mj_fullM(m, d, M)
        Mp = panda.mass_matrix(q)
        np.testing.assert_allclose(M, Mp, rtol=0, atol=1e-9)
        a0 = panda.xdot(x, np.zeros(NQ))[NQ:]
        np.testing.assert_allclose(d.qfrc_bias, -Mp @ a0, rtol=0, atol=1e-9)
        d.qvel[:] = 0.0
        mujoco.mj_forward(m, d)
        np.testing.assert_allclose(d.qfrc_bias, panda.gravity(q), rtol=0, atol=1e-9)
        assert np.abs(panda.gravity(q)).max() > 1.0  # the comparison is not trivially 0 = 0
        np.testing.assert_allclose(d.body(TCP_FRAME).xpos, panda.frame_position(q, TCP_FRAME), atol=1e-12)


@pytest.mark.parametrize("mj_integrator, core_integrator", [("RK4", "rk4"), ("Euler", "semi_implicit_euler")])
def test_torque_rollout_agrees_with_core_integrator(panda, mj_integrator, core_integrator):
    """0.5 s of gravity compensation plus sinusoidal torques at 1 kHz: MuJoCo's RK4 matches the
    core's RK4 (and MuJoCo's semi-implicit Euler the core's semi-implicit Euler) within 1e-9 on
    the state (observed ~1e-14) while the arm moves by more than 1 rad, and the TCP within 1e-9 m."""
    plant = MujocoPandaPlant(settings=PandaSimSettings(mujoco_integrator=mj_integrator, joint_limits=False))
    x = plant.x.copy()
    x0 = x.copy()
    amp = np.array([2.0, 2.0, 2.0, 2.0, 0.2, 0.2, 0.2])
    for k in range(500):
        u = panda.gravity(x[:NQ]) + np.sin(0.01 * k) * amp
        xm = plant.step(u, 1e-3)
        x = _core.integrate(panda, x, u, 1e-3, core_integrator)
    assert plant.t == pytest.approx(0.5)
    assert np.abs(x - x0).max() > 1.0
    np.testing.assert_allclose(xm, x, rtol=0, atol=1e-9)
    np.testing.assert_allclose(plant.frame_position(), panda.frame_position(x[:NQ]), atol=1e-9)


def test_damped_rollout_agrees_with_damped_core_model():
    """joint_damping d enters MuJoCo as dof_damping and the core as PandaDynamics(urdf, d)
    (tau - d v): the RK4 rollouts agree within 1e-9 and differ from the undamped one by > 0.1 rad."""
    d = 1.0
    panda_d = _core.PandaDynamics(str(default_urdf_path()), d)
    plant = MujocoPandaPlant(settings=PandaSimSettings(joint_damping=d, joint_limits=False))
    np.testing.assert_array_equal(plant.model.dof_damping, d)
    core = make_panda_plant(PandaSimSettings(backend="core", joint_damping=d))
    assert core.model.damping == d
    x = plant.x.copy()
    free = x.copy()
    panda0 = _core.PandaDynamics(str(default_urdf_path()))
    for k in range(500):
        u = np.sin(0.01 * k) * np.array([2.0, 2.0, 2.0, 2.0, 0.2, 0.2, 0.2]) + panda_d.gravity(x[:NQ])
        xm = plant.step(u, 1e-3)
        x = _core.integrate(panda_d, x, u, 1e-3, "rk4")
        free = _core.integrate(panda0, free, u, 1e-3, "rk4")
    np.testing.assert_allclose(xm, x, rtol=0, atol=1e-9)
    assert np.abs(free - x).max() > 0.1


def test_backends_at_400_hz_calls_on_1_khz_physics(panda):
    """The sim node's pattern: step(u, 1/400) on 1 kHz physics. MuJoCo runs 2 or 3 fixed steps per
    call and its clock stays within one step of the requested time; holding the gravity torque of
    the start keeps both backends at rest; torques beyond the effort limits are clipped."""
    x0 = random_start(np.random.default_rng(3), 0.3)
    mj = make_panda_plant(PandaSimSettings(backend="mujoco"), x0)
    core = make_panda_plant(PandaSimSettings(backend="core"), x0)
    g = panda.gravity(x0[:NQ])
    for k in range(400):
        a, b = mj.step(g, 1 / 400), core.step(g, 1 / 400)
        assert abs(mj.t - (k + 1) / 400) <= 1e-3 + 1e-12
    assert mj.t == pytest.approx(1.0) and core.t == pytest.approx(1.0)
    np.testing.assert_allclose(a, x0, atol=1e-8)
    np.testing.assert_allclose(b, x0, atol=1e-8)
    np.testing.assert_allclose(mj.clip(np.full(NQ, 1e3)), [87.0] * 4 + [12.0] * 3)
    with pytest.raises(ValueError, match="size 7"):
        mj.step(np.zeros(6), 0.01)
    with pytest.raises(ValueError, match="size 7"):
        mj.step(np.full(NQ, np.nan), 0.01)
    with pytest.raises(ValueError, match="size 14"):
        mj.reset(np.zeros(13))


def test_random_start_is_at_rest_inside_the_limits(panda):
    rng = np.random.default_rng(0)
    xs = np.array([random_start(rng, 0.5) for _ in range(200)])
    assert np.all(xs[:, NQ:] == 0.0)
    assert np.all(xs[:, :NQ] >= panda.lower_position_limit + 0.1 - 1e-12)
    assert np.all(xs[:, :NQ] <= panda.upper_position_limit - 0.1 + 1e-12)
    assert np.abs(xs[:, :NQ] - Q_READY).max() > 0.3  # actually randomised
