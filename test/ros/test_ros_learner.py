"""The critic learner node: lifecycle transitions and parameter validation (in one process), and
a SIGINT in the middle of a critic update (a real node process over DDS on loopback)."""
from __future__ import annotations

import os
import random
import signal
import time

import numpy as np
import pytest

import rclpy
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.parameter import Parameter

from dmpc_core.control.reach_mpc import field_widths
from dmpc_core.critics.signing import verify
from dmpc_core.settings import ConfigError
from dmpc_ros.messages import transitions_msg

pytestmark = pytest.mark.ros
timing_sensitive = pytest.mark.flaky(reruns=2, reruns_delay=2)
NX, NG = 10, 2
KEY = b"learner-test-key-0123456789"
CONFIG = os.path.join(os.path.dirname(__file__), "..", "..", "config", "ballbot_sim.yaml")


def _rows(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        r = {k: rng.normal(size=w) * 0.1 for k, w in field_widths(NX, NG).items() if w > 1}
        r.update(time_to_go=float(rng.uniform(0, 8)), cost=float(abs(rng.normal()) * 0.1),
                 next_time_to_go=float(rng.uniform(0, 8)), done=0.0)
        out.append(r)
    return out


def _wait(cond, timeout: float, feed=None) -> bool:
    """Poll ``cond``; ``feed`` (a node): hand it a batch of transitions every 0.1 s meanwhile (the
    learner updates while transitions keep arriving)."""
    end = time.monotonic() + timeout
    i = 100
    while time.monotonic() < end:
        if cond():
            return True
        if feed is not None:
            i += 1
            feed.on_transitions(transitions_msg(_rows(20, i), NX, NG))
        time.sleep(0.1)
    return False


@pytest.fixture
def context():
    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=random.randint(101, 200))
    yield ctx
    rclpy.try_shutdown(context=ctx)


def _key_file(tmp_path):
    key = tmp_path / "key"
    key.write_bytes(KEY)
    key.chmod(0o600)
    return str(key)


def test_learner_lifecycle_and_validated_parameters(context, tmp_path):
    """configure builds the learner, activate starts collecting and pushing signed critics,
    deactivate stops both and writes the checkpoint; a parameter set that fails validation (or
    touches a read-only parameter) is refused with the reason; invalid start parameters refuse
    to build the node."""
    from dmpc_ros.learner_node import LearnerNode

    with pytest.raises(ConfigError, match="update_period"):
        LearnerNode(context=context, parameter_overrides=[Parameter("update_period", value=-1.0)])
    params = [Parameter("checkpoint_dir", value=str(tmp_path / "ckpt")), Parameter("critic_hmac_key_file", value=_key_file(tmp_path)),
              Parameter("update_period", value=0.05), Parameter("push_every", value=1), Parameter("task", value="reach"),
              Parameter("learner.min_transitions", value=64), Parameter("learner.fit_normalization_at", value=64)]
    node = LearnerNode(context=context, parameter_overrides=params)
    try:
        assert node.learner is None and node.cfg.push_every == 1 and node.cfg.learner.min_transitions == 64
        bad = node.set_parameters([Parameter("push_critics", value="yes")])[0]
        assert not bad.successful and "push_critics must be a bool" in bad.reason
        assert not node.set_parameters([Parameter("update_period", value=0.1)])[0].successful  # read-only
        assert node.cfg.push_critics is True and node.cfg.update_period == 0.05
        assert node.set_parameters([Parameter("push_critics", value=False)])[0].successful and node.cfg.push_critics is False
        assert node.set_parameters([Parameter("push_critics", value=True)])[0].successful

        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        assert node.learner is not None
        node.on_transitions(transitions_msg(_rows(200), NX, NG))
        time.sleep(0.2)
        assert len(node.learner.buffer) == 0 and node.pending == []  # configured, not collecting
        sent = []
        node.pub.publish = sent.append
        assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
        node.on_transitions(transitions_msg(_rows(200, 1), NX, NG))
        assert _wait(lambda: node.pushes >= 2, 60, feed=node), (node.updates, node.pushes)
        v = verify(bytes(sent[-1].data), KEY)
        assert v.header.learner == node.get_fully_qualified_name() and (v.header.robot, v.header.task) == ("ballbot", "reach")
        assert v.header.version == node.learner.trainer.exports

        assert node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
        assert (tmp_path / "ckpt" / "learner.pt").is_file()
        pushes, n = node.pushes, len(node.learner.buffer)
        node.on_transitions(transitions_msg(_rows(50, 2), NX, NG))
        time.sleep(0.5)
        assert node.pushes == pushes and len(node.learner.buffer) == n  # neither pushing nor collecting
        assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS  # and back
        assert _wait(lambda: node.pushes > pushes, 60, feed=node)
    finally:
        node.destroy_node()


def test_updates_go_on_between_batches_and_stop_when_the_stream_does(context, tmp_path):
    """A controller sends a batch about once a second: the learner keeps its update rate
    between batches for ``idle_timeout`` seconds and then stops updating (no overfitting of an
    idle buffer). Loose bounds: this checks the rule, not the timing."""
    from dmpc_ros.learner_node import LearnerNode

    params = [Parameter("checkpoint_dir", value=str(tmp_path / "ckpt")), Parameter("critic_hmac_key_file", value=_key_file(tmp_path)),
              Parameter("update_period", value=0.05), Parameter("idle_timeout", value=1.0), Parameter("push_every", value=1000),
              Parameter("learner.min_transitions", value=64), Parameter("learner.fit_normalization_at", value=64)]
    node = LearnerNode(context=context, parameter_overrides=params)
    try:
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
        node.on_transitions(transitions_msg(_rows(200, 1), NX, NG))  # one batch, then nothing
        time.sleep(0.8)
        assert node.updates >= 3, node.updates  # not only the update that took the batch in
        time.sleep(1.5)  # past idle_timeout
        n = node.updates
        time.sleep(1.0)
        assert node.updates == n, (n, node.updates)
        node.on_transitions(transitions_msg(_rows(20, 2), NX, NG))
        assert _wait(lambda: node.updates > n, 10), n
    finally:
        node.destroy_node()


@timing_sensitive
def test_sigint_mid_update_exits_within_2_s_with_its_checkpoint(tmp_path, monkeypatch):
    """A real learner process whose updates take seconds (K = 400 minibatches) gets SIGINT in
    the middle of one. It must exit with code 0 within 2 s and leave a checkpoint (written at
    exit) whose gradient step count is not a multiple of K: the update was cut short at a
    minibatch boundary, not run to its end. The 2 s bound is a correctness bound on shutdown
    (the issue's requirement for every node; measured about 1 s here, the update alone would
    take several), not a speed benchmark."""
    from std_msgs.msg import Float64MultiArray

    from dmpc_core.critics.learner import CriticLearner, LearnerSettings
    from dmpc_core.critics.training import CriticTrainerSettings
    from dmpc_ros.graph import build_graph
    from dmpc_ros.launcher import Launcher
    from dmpc_ros.qos import QOS_TRANSITIONS

    k = 400
    overrides = {"variant": "tracking",  # one-step targets of a full-state critic, no initial push
                 "nodes.learner.parameters.checkpoint_dir": str(tmp_path / "ckpt"),
                 "nodes.learner.parameters.critic_hmac_key_file": _key_file(tmp_path),
                 "nodes.learner.parameters.update_period": 0.01,
                 "nodes.learner.parameters.checkpoint_every": 1000,  # only the exit writes one
                 "nodes.learner.parameters.learner.min_transitions": 64,
                 "nodes.learner.parameters.learner.fit_normalization_at": 64,
                 "nodes.learner.parameters.learner.trainer.batches_per_update": k}
    specs = [s for s in build_graph(CONFIG, overrides) if s.executable == "learner_node"]
    domain = random.randint(101, 200)
    env = {"ROS_DOMAIN_ID": str(domain), "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}
    for name, v in env.items():  # the same discovery settings in this process as in the node's
        monkeypatch.setenv(name, v)
    ctx = rclpy.Context()
    rclpy.init(context=ctx)  # domain and discovery range from the environment, as the node's
    feeder = rclpy.create_node("transitions_feeder", context=ctx)
    pub = feeder.create_publisher(Float64MultiArray, "/dmpc/transitions", QOS_TRANSITIONS)
    ckpt = tmp_path / "ckpt" / "learner.pt"
    try:
        with Launcher(specs, str(tmp_path / "logs"), env) as launcher:
            proc = launcher.start_node(specs[0])
            # transitions until the first bundle is exported (after update 2: push_every 2); the
            # thread then runs update after update
            first = tmp_path / "ckpt" / "critic_v1.onnx"
            for i in range(1200):  # 2 min at most
                if first.exists() or proc.poll() is not None:
                    break
                pub.publish(transitions_msg(_rows(100, i), NX, NG))
                time.sleep(0.1)
            assert first.exists(), f"no update within the feeding time; log in {tmp_path / 'logs'}"
            time.sleep(1.0)  # past the export, inside the next update (seconds long)
            start = time.monotonic()
            code = launcher.stop_node(specs[0].name, grace=2.0, sig=signal.SIGINT)
            took = time.monotonic() - start
            assert code == 0, f"exit code {code} after {took:.2f} s"
    finally:
        feeder.destroy_node()
        rclpy.try_shutdown(context=ctx)
    learner = CriticLearner(LearnerSettings(trainer=CriticTrainerSettings(batches_per_update=k)), NX, NG, "ballbot")
    extra = learner.load(ckpt)
    steps = learner.trainer.gradient_steps
    assert extra["updates"] >= 2 and steps % k != 0, (extra, steps)
