"""urdf/ballbot.urdf: joint chain and ros2_control tags, inertials vs the C++ model (pinocchio),
and the omni-wheel joints' no-slip kinematics vs BallbotDynamics.wheel_rates."""
from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from dmpc_core import _core

URDF = Path(__file__).resolve().parents[2] / "urdf" / "ballbot.urdf"
CHAIN = [("px", "prismatic", (1, 0, 0)), ("py", "prismatic", (0, 1, 0)), ("yaw", "continuous", (0, 0, 1)),
         ("pitch", "revolute", (0, 1, 0)), ("roll", "revolute", (1, 0, 0))]
WHEELS = ["wheel_1_joint", "wheel_2_joint", "wheel_3_joint"]


@pytest.fixture(scope="module")
def root():
    return ET.parse(URDF).getroot()


def test_joint_chain_and_ros2_control(root):
    joints = {j.get("name"): j for j in root.findall("joint")}
    parent = "world"
    for name, jtype, axis in CHAIN:
        j = joints[name]
        assert j.get("type") == jtype
        assert j.find("parent").get("link") == parent
        np.testing.assert_allclose([float(a) for a in j.find("axis").get("xyz").split()], axis)
        parent = j.find("child").get("link")
    assert parent == "base"
    for w in WHEELS:
        assert joints[w].find("parent").get("link") == "base"
    rc = root.find("ros2_control")
    assert rc is not None and rc.get("type") == "system"
    rc_joints = {j.get("name"): j for j in rc.findall("joint")}
    for w in WHEELS:
        assert [c.get("name") for c in rc_joints[w].findall("command_interface")] == ["effort"]
    for name, _, _ in CHAIN:
        assert not rc_joints[name].findall("command_interface")
        assert sorted(s.get("name") for s in rc_joints[name].findall("state_interface")) == ["position", "velocity"]


def test_inertials_match_parameters(root):
    p = _core.BallbotParameters()
    links = {l.get("name"): l for l in root.findall("link")}
    ball, base = links["ball"].find("inertial"), links["base"].find("inertial")
    assert float(ball.find("mass").get("value")) == p.ball_mass
    assert float(ball.find("inertia").get("ixx")) == p.ball_inertia
    assert float(base.find("mass").get("value")) == p.base_mass
    np.testing.assert_allclose([float(c) for c in base.find("origin").get("xyz").split()], p.base_com)
    ine = base.find("inertia")
    np.testing.assert_allclose([float(ine.get(k)) for k in ("ixx", "iyy", "izz")], p.base_inertia)
    sphere = links["ball"].find("visual/geometry/sphere")
    assert float(sphere.get("radius")) == p.ball_radius


def _pin_q(pin, pm, q5):
    """pinocchio configuration (yaw is a continuous joint: cos, sin) with wheel angles zero."""
    q = pin.neutral(pm)
    q[0], q[1] = q5[0], q5[1]
    q[2], q[3] = math.cos(q5[2]), math.sin(q5[2])
    q[4], q[5] = q5[3], q5[4]
    return q


def test_urdf_dynamics_and_wheel_kinematics_match_model():
    import pinocchio as pin
    pm = pin.buildModelFromUrdf(str(URDF))
    pd = pm.createData()
    assert [pm.names[i] for i in range(1, 6)] == [c[0] for c in CHAIN]
    model = _core.BallbotDynamics()
    p = model.params
    rolling = p.ball_inertia / p.ball_radius**2
    rng = np.random.default_rng(0)
    for _ in range(6):
        x = np.concatenate([rng.uniform(-1, 1, 2), rng.uniform(-0.8, 0.8, 3), rng.uniform(-2, 2, 5)])
        q = _pin_q(pin, pm, x[:5])
        w = model.wheel_rates(x)
        v = np.concatenate([x[5:], w])
        # rigid-body chain of the URDF + the ball's rolling inertia == model
        M = pin.crba(pm, pd, q)
        M = np.triu(M) + np.triu(M, 1).T
        np.testing.assert_allclose(M[:5, :5] + np.diag([rolling, rolling, 0, 0, 0]),
                                   model.mass_matrix(x[:5]), atol=1e-12)
        h = pin.rnea(pm, pd, q, np.concatenate([x[5:], np.zeros(3)]), np.zeros(8))
        np.testing.assert_allclose(h[:5], model.bias(x[:5], x[5:]), atol=1e-11)
        # no slip: the wheel's rim and the ball's surface move together along the drive direction
        pin.forwardKinematics(pm, pd, q, v)
        R = pd.oMi[5].rotation
        ball_c = np.array([x[0], x[1], p.ball_radius])
        w_ball = np.array([-x[6] / p.ball_radius, x[5] / p.ball_radius, 0.0])
        a = p.wheel_zenith_angle
        for i, beta in enumerate((0.0, 2 * math.pi / 3, 4 * math.pi / 3)):
            jid = 6 + i
            d = np.array([math.sin(a) * math.cos(beta), math.sin(a) * math.sin(beta), math.cos(a)])
            t = np.array([-math.sin(beta), math.cos(beta), 0.0])
            centre_local = pd.oMi[5].actInv(pd.oMi[jid]).translation  # wheel centre in base frame
            np.testing.assert_allclose(centre_local, (p.ball_radius + p.wheel_radius) * d, atol=1e-6)
            contact_local = -p.wheel_radius * d  # contact point in the wheel joint frame (zero angle)
            vel = pd.v[jid]
            rim = pd.oMi[jid].rotation @ (vel.linear + np.cross(vel.angular, contact_local))
            contact_world = ball_c + R @ (p.ball_radius * d)
            surf = np.array([x[5], x[6], 0.0]) + np.cross(w_ball, contact_world - ball_c)
            assert rim @ (R @ t) == pytest.approx(surf @ (R @ t), abs=2e-6)
            assert rim @ (R @ d) == pytest.approx(surf @ (R @ d), abs=2e-6)
