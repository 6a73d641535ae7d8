"""Property tests of the controller's message handlers (no DDS): generated JointStates, goals,
paths (as serialised bytes, valid and mangled), time budgets, transitions and critic blobs go
through the same translation and core calls as in the node. Over 10 000 inputs in all:
no exception escapes a handler, and every command is finite and within the effort limits."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dmpc_core.control.core import ControllerCore, CoreSettings
from dmpc_core.control.critic_source import CriticWorker
from dmpc_core.control.reach_mpc import ReachSettings
from dmpc_core.control.robot import BallbotRobot
from dmpc_core.critics.gate import GateSettings, ProbeSet
from dmpc_core.mpc import MpcSettings
from dmpc_core.tasks import ballbot

pytestmark = pytest.mark.ros
FUZZ = settings(max_examples=2500, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
floats = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.floats(-10, 10))
frames = st.sampled_from(["world", "", "map", "odom", "world\x00", "wörld"])


@pytest.fixture(scope="module")
def core():
    robot = BallbotRobot(ReachSettings(mpc=MpcSettings(horizon=20, dt=0.02, initial_iterations=5)), u_max=30.0)
    c = ControllerCore(robot, CoreSettings(max_path_poses=50), (0.0, 0.0))
    c.accept_state(np.zeros(ballbot.NX))
    c.solve_step(0.0)
    return c


def check_command(core, t=0.1):
    x, age = core.latest()
    u, status = core.command(t, x, min(age, 0.0))
    assert u.shape == (core.robot.nu,) and np.all(np.isfinite(u)), (u, status)
    assert np.all(np.abs(u) <= core.robot.effort_limits + 1e-12)


@FUZZ
@given(names=st.lists(st.sampled_from(list(ballbot.JOINT_NAMES) + ["x", ""]), max_size=7),
       pos=st.lists(floats, max_size=7), vel=st.lists(floats, max_size=7))
def test_joint_states(core, names, pos, vel):
    from sensor_msgs.msg import JointState

    from dmpc_ros.messages import joint_state_to_x

    msg = JointState(name=names, position=pos, velocity=vel)
    x, reason = joint_state_to_x(msg, core.robot.joint_names)
    if x is None:
        core.reject_state(reason)
    else:
        core.accept_state(x)
    check_command(core)
    core.accept_state(np.zeros(ballbot.NX))  # the next example starts upright
    core.request_reset()


@FUZZ
@given(p=st.tuples(floats, floats, floats), frame=frames, budget=floats)
def test_goals_and_time_budgets(core, p, frame, budget):
    core.request_point(p, frame)
    core.request_time_budget(budget)
    core.apply_pending(0.0)
    assert np.all(np.isfinite(core.goal)) and np.isfinite(core.episode_length) and core.episode_length > 0
    check_command(core)


def _path_bytes(points, frame, stamps):
    from geometry_msgs.msg import PoseStamped
    from nav_msgs.msg import Path
    from rclpy.serialization import serialize_message

    msg = Path()
    msg.header.frame_id = frame
    for (x, y), (sec, nsec) in zip(points, stamps):
        ps = PoseStamped()
        ps.header.stamp.sec, ps.header.stamp.nanosec = sec, nsec
        ps.header.frame_id = "p" * (sec % 7)  # varying string lengths move the alignment
        ps.pose.position.x, ps.pose.position.y = x, y
        msg.poses.append(ps)
    return serialize_message(msg)


@FUZZ
@given(points=st.lists(st.tuples(floats, floats), max_size=60), frame=frames,
       stamps=st.lists(st.tuples(st.integers(0, 2**31 - 1), st.integers(0, 999_999_999)), min_size=60, max_size=60),
       flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(1, 255)), max_size=3),
       cut=st.integers(0, 10**6))
def test_paths_from_serialised_bytes(core, points, frame, stamps, flips, cut):
    from dmpc_ros.messages import PathTooLong, parse_path

    raw = _path_bytes(points, frame, stamps)
    got_frame, pts, st_ = parse_path(raw, 10**6)  # the reader agrees with rclpy's serialiser
    assert got_frame == frame.split("\x00")[0] and pts.shape == (len(points), 3)  # a string ends at NUL
    assert np.array_equal(pts[:, :2], np.asarray(points, float).reshape(-1, 2), equal_nan=True)
    buf = bytearray(raw)
    for pos, v in flips:  # then mangled: flipped bytes and a truncation
        buf[pos % len(buf)] ^= v
    buf = bytes(buf[: max(4, len(buf) - cut % max(1, len(buf)))])
    try:
        f, pts, st_ = parse_path(buf, core.settings.max_path_poses)
    except (PathTooLong, ValueError):
        pass
    else:
        core.request_path(pts, f, st_)
    core.apply_pending(0.0)
    check_command(core)


@FUZZ
@given(labels=st.lists(st.text(max_size=80), min_size=0, max_size=3), sizes=st.lists(st.integers(-5, 100), max_size=3),
       data=st.lists(floats, max_size=80))
def test_transitions(labels, sizes, data):
    from dmpc_core.control import transitions

    dims = list(zip(labels, sizes))
    try:
        out = transitions.decode(dims, data, ballbot.NX, 2)
    except ValueError:
        return
    assert all(np.all(np.isfinite(v)) for v in out.values())


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(blob=st.binary(max_size=2000))
def test_critic_blobs_never_escape_the_worker(blob):
    w = CriticWorker(b"k" * 16, "ballbot", "reach", ballbot.NX, 2, ProbeSet.uniform([1.0] * 10, [1.0] * 2, 1.0, 4, 0),
                     GateSettings(num_probes=4), install=lambda cand: None)
    ok, msg = w.handle("bytes", blob)
    assert not ok and msg
