"""Panda reach MPC of the ROS controller (dmpc_core.control.panda_reach), without ROS: closed loop
on the MuJoCo plant (an engine independent of the MPC's pinocchio model), goal checks, torque
conventions."""
from __future__ import annotations

import numpy as np
import pytest

import mujoco  # noqa: F401  (pinned in requirements.txt: a missing package must fail, not skip)

from dmpc_core import _core  # noqa: E402
from dmpc_core.control.panda_reach import (NG, NQ, PandaReachMpc, PandaReachSettings, check_goal,  # noqa: E402
                                          check_joint_goal, tcp_error)
from dmpc_core.models.panda import Q_READY  # noqa: E402
from dmpc_core.sim.panda import PandaSimSettings, make_panda_plant, random_start  # noqa: E402
from dmpc_core.sim.plant import simulate_closed_loop  # noqa: E402


class _Loop:
    """simulate_closed_loop adapter: re-plan at mpc_rate, evaluate the policy at tracking_rate."""

    def __init__(self, reach):
        self.reach, self.settings, self.statuses = reach, reach.settings.mpc, []

    def update(self, t, x):
        res = self.reach.mpc.update(t, x)
        self.statuses.append(res.status)
        return res

    def control(self, t, x):
        return self.reach.mpc.control(t, x)


@pytest.mark.parametrize("goal, seed", [((0.4, 0.3, 0.5), 0), ((0.3, -0.4, 0.3), 1)])
def test_closed_loop_on_mujoco_reaches_the_goal(goal, seed):
    """Real-time iteration SLQ (1 iteration per 10 ms re-plan, 400 Hz policy evaluation) from a
    random start, MuJoCo physics at 1 kHz: the TCP starts > 0.3 m away and is within 1 cm of the
    goal after 2.5 s with finite torques. The MPC is unconstrained: its torques exceed the wrist
    limits (12 N m) during the first fast motion and the plant clips them (as the robot would)."""
    reach = PandaReachMpc(PandaReachSettings(), goal)
    x0 = random_start(np.random.default_rng(seed), 0.2)
    plant = make_panda_plant(PandaSimSettings(backend="mujoco"), x0)
    loop = _Loop(reach)
    assert tcp_error(reach.model, x0, goal) > 0.3
    log = simulate_closed_loop(plant, loop, 2.5).arrays()
    assert set(loop.statuses) <= {"converged", "max_iterations"}
    assert tcp_error(reach.model, log["x"][-1], goal) < 0.01
    assert np.all(np.isfinite(log["u"]))
    # settled: the TCP is nearly still (the joints may still drift slowly in the arm's null space)
    tcp_speed = np.linalg.norm(reach.tcp_path(log["x"][-1:])[0] - reach.tcp_path(log["x"][-11:])[0]) / (log["t"][-1] - log["t"][-11])
    assert tcp_speed < 0.02


def test_goal_checks():
    s = PandaReachSettings()
    assert check_goal((0.4, 0.3, 0.5), s) is None
    assert "not a finite" in check_goal((np.nan, 0.0, 0.5), s)
    assert "not a finite" in check_goal((0.4, 0.3), s)
    assert "workspace radius" in check_goal((1.5, 0.0, 0.4), s)
    assert "below min_height" in check_goal((0.5, 0.0, 0.0), s)
    model = _core.PandaDynamics(s.urdf_path())
    assert check_joint_goal(Q_READY, model) is None
    q = Q_READY.copy()
    q[3] = 0.5  # joint 4 must stay negative
    assert "panda_joint4" in check_joint_goal(q, model)
    assert "finite" in check_joint_goal(np.full(6, 0.1), model)


def test_command_conventions_and_joint_goal():
    reach = PandaReachMpc(PandaReachSettings(), (0.4, 0.3, 0.5))
    x = np.concatenate([Q_READY + 0.1, np.zeros(NQ)])
    g = reach.model.gravity(x[:NQ])
    u = np.arange(NQ, dtype=float)
    np.testing.assert_allclose(reach.safe_command(x), g)
    np.testing.assert_allclose(reach.command(u, x), u)
    np.testing.assert_array_equal(reach.safe_command(None), np.zeros(NQ))
    hw = PandaReachMpc(PandaReachSettings(subtract_gravity=True), (0.4, 0.3, 0.5))
    np.testing.assert_array_equal(hw.safe_command(x), np.zeros(NQ))
    np.testing.assert_allclose(hw.command(u, x), u - g)
    goal = reach.set_joint_goal(Q_READY + 0.2)
    assert goal.shape == (NG,)
    np.testing.assert_allclose(goal, reach.model.frame_position(Q_READY + 0.2))
    np.testing.assert_allclose(reach.x_ref[:NQ], Q_READY + 0.2)
    with pytest.raises(ValueError, match="no critic"):
        PandaReachMpc(PandaReachSettings(), critic=object())
    with pytest.raises(ValueError, match="workspace_radius"):
        PandaReachMpc(PandaReachSettings(workspace_radius=0.0))


def test_joint_trajectory_is_followed_in_time_on_mujoco():
    """A 3-point JointTrajectory (joints in another order, points due at 1, 2 and 3 s) through the
    controller core, MuJoCo physics: the joints stay within 0.06 rad of the interpolated reference
    all along, the reported error is that measured here, and the arm ends at the last point. A new TCP goal ends the trajectory."""
    from dmpc_core.control.core import ControllerCore, CoreSettings
    from dmpc_core.control.robot import make_robot
    from dmpc_core.models.panda import JOINT_NAMES

    settings = PandaReachSettings(joint_damping=1.0)
    robot = make_robot("panda", settings)
    now = [0.0]
    core = ControllerCore(robot, CoreSettings(transitions_batch=0), robot.ready_goal(), clock=lambda: now[0])
    plant = make_panda_plant(PandaSimSettings(backend="mujoco", joint_damping=1.0), np.concatenate([Q_READY, np.zeros(NQ)]))
    Q = Q_READY + np.array([[0.3, 0.2, -0.2, 0.3, 0.2, -0.2, 0.3], [0.6, -0.1, 0.0, 0.5, -0.2, 0.2, 0.0],
                            [0.2, -0.3, 0.2, 0.2, 0.0, 0.3, -0.3]])
    order = [6, 0, 5, 1, 4, 2, 3]
    core.accept_state(plant.x)
    core.solve_step(0.0)
    assert core.request_joint_trajectory([JOINT_NAMES[i] for i in order], Q[:, order], [1.0, 2.0, 3.0]) is None
    errors, reported = [], []
    for k in range(1, 401):
        now[0] = t = 0.01 * k
        core.accept_state(plant.x)
        core.solve_step(t)
        if k == 1:
            traj, knots = core.joint_traj
            np.testing.assert_allclose(knots[0], [0.01, 1.01, 2.01, 3.01])
        errors.append(traj.error(t, plant.x, knots))
        reported.append(core.trajectory_error()[0])
        for j in range(4):
            u, st = core.command(t + 0.0025 * j, plant.x, 0.0)
            assert not st.safe
            plant.step(u, 0.0025)
    errors = np.array(errors)
    assert np.max(errors) < 0.06, np.max(errors)
    np.testing.assert_allclose(reported, errors, atol=1e-12)
    assert core.trajectory_error()[1] == pytest.approx(np.max(errors))
    assert np.abs(plant.x[:NQ] - Q[-1]).max() < 0.01
    np.testing.assert_allclose(core.goal, core.reach.model.frame_position(Q[-1]), atol=1e-12)
    # a TCP goal ends the trajectory (TCP terms back on, tracking terms off)
    assert core.request_goal((0.4, 0.3, 0.5), "world") is None
    core.solve_step(4.01)
    assert core.joint_traj is None and np.isnan(core.trajectory_error()[0])
    assert core.reach.running.weight("trajectory") == 0.0 and core.reach.running.weight("goal") == 1.0
