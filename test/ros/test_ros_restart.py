"""The learner survives a controller restart: real node processes over DDS on loopback.

A graph of its own (not the shared one of test_ros_graph.py): while no controller runs, the
simulated Ballbot falls, and the tests there assume it stands at their goal.
"""
from __future__ import annotations

import time

import numpy as np
import pytest

import rclpy  # noqa: F401  (pinned: a missing ROS install must fail, not skip)

from dmpc_core.tasks import ballbot
from test_ros_graph import CONFIG, CTRL, GOAL, learning_graph_overrides, timing_sensitive

pytestmark = pytest.mark.ros
LEARNER = "dmpc_learner"


@pytest.fixture(scope="module")
def graph(tmp_path_factory):
    from dmpc_ros.probe import running_graph

    tmp = tmp_path_factory.mktemp("rosrestart")
    with running_graph(CONFIG, learning_graph_overrides(tmp), log_dir=str(tmp / "logs"),
                       domain_ids=(1, 100)) as (launcher, probe, _):
        yield launcher, probe


def _at_goal(probe) -> bool:
    x = probe.latest_state()
    return x is not None and np.hypot(x[0] - GOAL[0], x[1] - GOAL[1]) < 0.1 and ballbot.tilt(x)[0] < np.deg2rad(5)


def _diag_since(probe, node: str, t: float, level_ok: bool = False) -> bool:
    d = probe.last_diag(node)
    return d is not None and d[0] > t and (not level_ok or d[3] == "OK")


@timing_sensitive
def test_learner_survives_a_controller_restart(graph):
    """The controller process is SIGKILLed and started again. The learner keeps running with its
    replay buffer; the new controller gets a critic from it (the latest bundle is transient-local
    on critic_bundle) and sends transitions again; after a simulator reset (the robot fell while
    no controller ran) it reaches the goal."""
    launcher, probe = graph
    # a controller with a learned critic, at its goal
    probe.call_trigger("/ballbot_sim/reset", 10.0)
    probe.send_goal(GOAL)
    assert probe.wait_for(lambda: _at_goal(probe), 40), f"did not reach {GOAL}: x = {probe.latest_state()}"
    assert probe.wait_for(lambda: int(probe.diag_value(CTRL, "critic_version") or 0) > 0, 60)
    n0 = int(probe.diag_value(LEARNER, "transitions"))

    launcher.kill_node(CTRL)
    t_kill = time.monotonic()
    launcher.start_node(launcher.spec(CTRL))
    # the new process is up (any status: the robot may have fallen meanwhile) ...
    assert probe.wait_for(lambda: _diag_since(probe, CTRL, t_kill + 0.5), 120), "restarted controller silent"
    # ... stand the robot up again; the new controller balances it and reports OK (a controller
    # that found the robot fallen holds the safe command until its ~/reset: armed here, cleared
    # at the first upright state after the simulator's reset)
    resp = probe.call_trigger(f"/{CTRL}/reset", 10.0)
    assert resp is not None and resp.success
    resp = probe.call_trigger("/ballbot_sim/reset", 10.0)
    assert resp is not None and resp.success
    t_reset = time.monotonic()
    assert probe.wait_for(lambda: _diag_since(probe, CTRL, t_reset, level_ok=True), 30), probe.last_diag(CTRL)
    assert LEARNER not in launcher.dead()
    assert probe.wait_for(lambda: int(probe.diag_value(CTRL, "critic_version") or 0) > 0, 60), \
        probe.diag_value(CTRL, "last_reject_reason")
    probe.send_goal(GOAL)
    assert probe.wait_for(lambda: _at_goal(probe), 40), f"did not reach {GOAL}: x = {probe.latest_state()}"
    assert probe.wait_for(lambda: int(probe.diag_value(LEARNER, "transitions")) > n0, 60)
    assert LEARNER not in launcher.dead()


@timing_sensitive
def test_a_replayed_old_critic_stays_stale_after_a_controller_restart(graph):
    """A signed critic captured from the topic is re-published to a restarted controller that has
    not installed any critic yet (the learner is down, so nothing newer arrives): the controller
    remembers the version it accepted before the restart (its version file) and refuses it as
    stale. A controller without that memory would install it. The learner, started again from its
    checkpoint, then pushes newer versions, which are accepted."""
    from std_msgs.msg import UInt8MultiArray

    from dmpc_core.critics.signing import verify
    from dmpc_ros.messages import bytes_msg
    from dmpc_ros.qos import QOS_CRITIC
    from test_ros_graph import KEY

    launcher, probe = graph
    caught = []
    sub = probe.create_subscription(UInt8MultiArray, probe.topics["critic_bundle"], lambda m: caught.append(bytes(m.data)),
                                    QOS_CRITIC)
    try:
        assert probe.wait_for(lambda: len(caught) >= 1, 60), "no critic on the topic"
        old = verify(caught[0], KEY).header.version
        assert probe.wait_for(lambda: int(probe.diag_value(CTRL, "critic_version_installed") or 0) > old, 120), \
            probe.diag_value(CTRL, "last_reject_reason")
    finally:
        probe.destroy_subscription(sub)
    assert launcher.stop_node(LEARNER, grace=10.0) == 0  # down: nothing newer reaches the new controller
    launcher.kill_node(CTRL)
    t_kill = time.monotonic()
    launcher.start_node(launcher.spec(CTRL))
    assert probe.wait_for(lambda: _diag_since(probe, CTRL, t_kill + 0.5), 120), "restarted controller silent"
    rejected = int(probe.diag_value(CTRL, "critics_rejected") or 0)
    probe.critic_pub.publish(bytes_msg(caught[0]))  # the replay
    assert probe.wait_for(lambda: int(probe.diag_value(CTRL, "critics_rejected") or 0) > rejected, 60)
    assert "stale" in probe.diag_value(CTRL, "last_reject_reason")
    assert int(probe.diag_value(CTRL, "critic_version_installed")) == 0
    # the robot may have fallen while no controller ran: stand it up, so transitions flow again
    assert probe.call_trigger(f"/{CTRL}/reset", 10.0).success
    assert probe.call_trigger("/ballbot_sim/reset", 10.0).success
    launcher.start_node(launcher.spec(LEARNER))
    assert probe.wait_for(lambda: int(probe.diag_value(CTRL, "critic_version_installed") or 0) > old, 180), \
        probe.diag_value(CTRL, "last_reject_reason")
