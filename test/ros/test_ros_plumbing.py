"""ROS plumbing of the controller's hot path, in one process over real DDS (fast): the state
stream reader thread, the reusable vector publisher and the SCHED_FIFO helper."""
from __future__ import annotations

import os
import random
import threading
import time

import numpy as np
import pytest

import rclpy
import rclpy.executors  # noqa: E402

from sensor_msgs.msg import JointState  # noqa: E402
from std_msgs.msg import Float64MultiArray  # noqa: E402

from dmpc_ros.messages import VectorPublisher, wall_time_msg, x_to_joint_state  # noqa: E402
from dmpc_ros.qos import QOS_LATEST, QOS_RELIABLE  # noqa: E402
from dmpc_ros.realtime import StreamReader, configure_thread, set_cpu_affinity, set_realtime_priority  # noqa: E402

pytestmark = pytest.mark.ros
NAMES = ("a", "b")


@pytest.fixture
def node():
    """A node on its own context and a random domain (no traffic from other tests' graphs)."""
    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=random.randint(101, 200))
    n = rclpy.create_node("glue_test", context=ctx)
    yield n
    n.destroy_node()
    rclpy.try_shutdown(context=ctx)


def _wait(cond, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.01)
    return False


def test_state_reader_delivers_in_its_own_thread_outside_the_executor(node):
    got, threads = [], []

    def handler(msg):
        got.append(msg.position[0])
        threads.append(threading.current_thread().name)

    reader = StreamReader(node, JointState, node.resolve_topic_name("states"), QOS_LATEST, handler, "glue_reader").start()
    pub = node.create_publisher(JointState, "states", QOS_RELIABLE)
    try:
        # the subscription is on the reader's private node: an executor spinning `node` never sees it
        assert not any(s.topic_name == "/states" for s in node.subscriptions)
        assert _wait(lambda: pub.get_subscription_count() == 1)
        for k in range(20):
            pub.publish(x_to_joint_state(np.array([float(k), 0.0, 0.0, 0.0]), NAMES, wall_time_msg(time.time())))
            time.sleep(0.005)
        assert _wait(lambda: got and got[-1] == 19.0), got
        assert set(threads) == {"glue_reader"}
        assert got == sorted(got) and reader.received == len(got) and reader.errors == 0
    finally:
        reader.stop()
    assert not reader.thread.is_alive()
    reader.stop()  # idempotent


def test_state_reader_survives_a_failing_handler(node):
    seen = []

    def handler(msg):
        seen.append(msg.position[0])
        if msg.position[0] < 0:
            raise RuntimeError("bad state")

    reader = StreamReader(node, JointState, "/states2", QOS_LATEST, handler, "glue_reader2").start()
    pub = node.create_publisher(JointState, "/states2", QOS_RELIABLE)
    try:
        assert _wait(lambda: pub.get_subscription_count() == 1)
        pub.publish(x_to_joint_state(np.array([-1.0, 0, 0, 0]), NAMES, wall_time_msg(time.time())))
        assert _wait(lambda: reader.errors == 1)
        assert isinstance(reader.error, RuntimeError)
        pub.publish(x_to_joint_state(np.array([2.0, 0, 0, 0]), NAMES, wall_time_msg(time.time())))
        assert _wait(lambda: seen and seen[-1] == 2.0), "the stream stopped after a handler exception"
        assert reader.thread.is_alive()
    finally:
        reader.stop()


def test_vector_publisher_reuses_its_labelled_message_and_checks_the_size(node):
    got = []
    node.create_subscription(Float64MultiArray, "vec", got.append, QOS_RELIABLE)
    vp = VectorPublisher(node, "vec", QOS_RELIABLE, "u0,u1,u2", 3)
    assert _wait(lambda: vp.pub.get_subscription_count() == 1)
    executor = rclpy.executors.SingleThreadedExecutor(context=node.context)
    executor.add_node(node)
    vp.publish([1.0, 2.0, 3.0])
    vp.publish(np.array([4.0, 5.0, 6.0]))
    end = time.monotonic() + 10
    while len(got) < 2 and time.monotonic() < end:
        executor.spin_once(timeout_sec=0.1)
    executor.remove_node(node)
    assert [list(m.data) for m in got] == [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
    assert got[0].layout.dim[0].label == "u0,u1,u2" and got[0].layout.dim[0].size == 3
    with pytest.raises(ValueError, match="2 values, layout says 3"):
        vp.publish([1.0, 2.0])


def test_set_realtime_priority_applies_fifo_or_says_why():
    assert set_realtime_priority(0) == ""
    with pytest.raises(ValueError, match="0 \\(off\\) or 1..99"):
        set_realtime_priority(120)
    out = {}

    def run():  # in a throw-away thread: the policy is per thread
        out["problem"] = set_realtime_priority(10)
        out["policy"] = os.sched_getscheduler(0)

    t = threading.Thread(target=run)
    t.start()
    t.join()
    if out["problem"]:
        assert "refused" in out["problem"] and out["policy"] == os.SCHED_OTHER
    else:
        assert out["policy"] == os.SCHED_FIFO
    assert os.sched_getscheduler(0) == os.SCHED_OTHER  # the calling thread is untouched


def test_set_cpu_affinity_pins_the_calling_thread_only():
    assert set_cpu_affinity(-1) == ""
    allowed = sorted(os.sched_getaffinity(0))
    assert "not available" in set_cpu_affinity(max(allowed) + 1000)
    out = {}

    def run():
        out["problem"] = set_cpu_affinity(allowed[-1])
        out["cpus"] = os.sched_getaffinity(0)

    t = threading.Thread(target=run)
    t.start()
    t.join()
    assert out["problem"] == "" and out["cpus"] == {allowed[-1]}
    assert sorted(os.sched_getaffinity(0)) == allowed


def test_configure_thread_reports_the_scheduler_and_logs_refusals():
    class Log:
        def __init__(self):
            self.lines = []

        def warn(self, text):
            self.lines.append(text)

    out, log = {}, Log()

    def run():
        out["normal"] = configure_thread(log, "t", 0, -1)
        out["pinned"] = configure_thread(log, "t", 0, max(os.sched_getaffinity(0)) + 1000)
        out["fifo"] = configure_thread(log, "t", 10)

    t = threading.Thread(target=run)
    t.start()
    t.join()
    assert out["normal"] == "normal" and out["pinned"] == "normal"
    assert log.lines[0].startswith("t: CPU ") and "not available" in log.lines[0]
    if len(log.lines) == 1:
        assert out["fifo"] == "SCHED_FIFO 10"
    else:
        assert "refused" in out["fifo"] and log.lines[1] == f"t: {out['fifo']}"
