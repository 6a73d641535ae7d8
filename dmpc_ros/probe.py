"""An observer/driver node for the main job, the ROS tests and the latency benchmark.

``GraphProbe`` spins in a background thread and records what the graph publishes (JointState,
command_info, diagnostics, rosout) with receive times; it publishes goals and JointStates and
calls the sim/controller services and the parameter services.
"""
from __future__ import annotations

import contextlib
import os
import random
import threading
import time
from collections import deque
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PointStamped, PoseStamped
from rcl_interfaces.msg import Log
from rcl_interfaces.srv import SetParameters
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter as RclpyParameter
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray, UInt8MultiArray
from std_srvs.srv import Trigger

from dmpc_core.tasks import ballbot
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

from dmpc_ros.messages import bytes_msg, joint_state_to_x, wall_time_msg, x_to_joint_state
from dmpc_ros.qos import QOS_CRITIC, QOS_RELIABLE
from dmpc_ros.realtime import StreamReader

QOS_DEEP = QoSProfile(depth=20000, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)


class GraphProbe(Node):
    def __init__(self, topics: Dict[str, str], controller: str = "ballbot_controller", sim: str = "ballbot_sim",
                 learner: str = "dmpc_learner", keep: int = 200_000, joint_names=None, record_states: bool = True):
        super().__init__("dmpc_probe")
        self.topics, self.controller, self.sim, self.learner = topics, controller, sim, learner
        #: joints of the recorded / published JointStates (default: the Ballbot's)
        self.joint_names = tuple(joint_names or ballbot.JOINT_NAMES)
        self.lock = threading.Lock()
        self.states: deque = deque(maxlen=keep)       # (recv_time, x)
        self.infos: deque = deque(maxlen=keep)        # (recv_time, array)
        self.commands: deque = deque(maxlen=keep)     # (recv_time, array)
        self.diags: deque = deque(maxlen=10_000)      # (recv_time, name, level, message, values)
        self.logs: deque = deque(maxlen=10_000)       # (name, level, msg)
        # record_states=False: no JointState subscription (the latency benchmark does not need
        # the 400 Hz stream in its own process); command_info (400 Hz) has a reader thread of its
        # own instead of this probe's executor, which keeps the probe's CPU share small
        if record_states:
            self.create_subscription(JointState, topics["joint_states"], self._on_state, QOS_RELIABLE)
        self.info_reader = StreamReader(self, Float64MultiArray, f"/{controller}/command_info", QOS_DEEP,
                                        self._on_info, "dmpc_probe_info_io").start()
        self.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, 50)
        self.create_subscription(Log, "/rosout", self._on_log, 200)
        self.goal_pub = self.create_publisher(PoseStamped, topics["goal_pose"], 10)
        self.point_pub = self.create_publisher(PointStamped, topics["clicked_point"], 10)
        # created on first use: an extra publisher on the state topic shows in the controller's
        # diagnostics (several publishers on joint_states)
        self.state_pub = None
        # (configs without a learner, e.g. the Franka's, have no critic_bundle topic)
        self.critic_pub = (self.create_publisher(UInt8MultiArray, topics["critic_bundle"], QOS_CRITIC)
                           if "critic_bundle" in topics else None)
        self.executor_ = SingleThreadedExecutor()
        self.executor_.add_node(self)
        self.thread = threading.Thread(target=self._spin, daemon=True)
        self.thread.start()

    def _spin(self) -> None:
        try:
            self.executor_.spin()
        except Exception:  # shutdown races
            pass

    # -- recorders ------------------------------------------------------------------------------
    def _on_state(self, msg: JointState) -> None:
        x, _ = joint_state_to_x(msg, self.joint_names)
        if x is not None:
            self.states.append((time.monotonic(), x))

    def _on_info(self, msg) -> None:
        self.infos.append((time.monotonic(), np.asarray(msg.data, float)))

    def _on_cmd(self, msg) -> None:
        self.commands.append((time.monotonic(), np.asarray(msg.data, float)))

    def _on_diag(self, msg: DiagnosticArray) -> None:
        now = time.monotonic()
        for st in msg.status:
            self.diags.append((now, st.name, int.from_bytes(st.level, "little") if isinstance(st.level, bytes) else int(st.level),
                               st.message, {kv.key: kv.value for kv in st.values}))

    def _on_log(self, msg: Log) -> None:
        self.logs.append((msg.name, msg.level, msg.msg))

    # -- queries --------------------------------------------------------------------------------
    def latest_state(self) -> Optional[np.ndarray]:
        return self.states[-1][1] if self.states else None

    def last_diag(self, node: str) -> Optional[tuple]:
        for d in reversed(list(self.diags)):  # a snapshot: the executor thread appends meanwhile
            if d[1] == f"dmpc/{node}":
                return d
        return None

    def info_rows(self, since: float = 0.0) -> np.ndarray:
        """``~/command_info`` rows received at or after ``since`` (monotonic), one per tick."""
        rows = [a for t, a in list(self.infos) if t >= since]
        return np.array(rows) if rows else np.zeros((0, 0))

    def diag_value(self, node: str, key: str):
        """A key of the last diagnostics status of ``node`` (None before the first one)."""
        d = self.last_diag(node)
        return d[4].get(key) if d else None

    def wait_for(self, cond: Callable[[], Any], timeout: float, period: float = 0.05):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            v = cond()
            if v:
                return v
            time.sleep(period)
        return cond()

    # -- actions --------------------------------------------------------------------------------
    def send_goal(self, xy) -> None:
        """PoseStamped goal: (x, y) or (x, y, z)."""
        msg = PoseStamped()
        msg.header.frame_id = "world"
        msg.pose.position.x, msg.pose.position.y = float(xy[0]), float(xy[1])
        if len(xy) > 2:
            msg.pose.position.z = float(xy[2])
        msg.pose.orientation.w = 1.0
        self.goal_pub.publish(msg)

    def send_point(self, xy) -> None:
        """PointStamped goal: (x, y) or (x, y, z)."""
        msg = PointStamped()
        msg.header.frame_id = "world"
        msg.point.x, msg.point.y = float(xy[0]), float(xy[1])
        if len(xy) > 2:
            msg.point.z = float(xy[2])
        self.point_pub.publish(msg)

    def publish_state(self, x, names=None, stamp: float | None = None) -> float:
        """Publish a JointState (``x`` = positions then velocities); returns its stamp."""
        stamp = time.time() if stamp is None else stamp
        if self.state_pub is None:
            self.state_pub = self.create_publisher(JointState, self.topics["joint_states"], QOS_RELIABLE)
        self.state_pub.publish(x_to_joint_state(np.asarray(x, float), names or self.joint_names, wall_time_msg(stamp)))
        return stamp

    def push_critic(self, blob: bytes) -> None:
        self.critic_pub.publish(bytes_msg(blob))

    def call_trigger(self, service: str, timeout: float = 30.0) -> Optional[Trigger.Response]:
        cli = self.create_client(Trigger, service)
        try:
            if not cli.wait_for_service(timeout_sec=timeout):
                return None
            fut = cli.call_async(Trigger.Request())
            end = time.monotonic() + timeout
            while not fut.done() and time.monotonic() < end:
                time.sleep(0.02)
            return fut.result() if fut.done() else None
        finally:
            self.destroy_client(cli)

    def set_parameter(self, node: str, name: str, value, timeout: float = 10.0):
        """Set one parameter through the node's rcl_interfaces/SetParameters service."""
        cli = self.create_client(SetParameters, f"/{node}/set_parameters")
        try:
            if not cli.wait_for_service(timeout_sec=timeout):
                return None
            req = SetParameters.Request(parameters=[RclpyParameter(name, value=value).to_parameter_msg()])
            fut = cli.call_async(req)
            end = time.monotonic() + timeout
            while not fut.done() and time.monotonic() < end:
                time.sleep(0.02)
            return fut.result().results[0] if fut.done() else None
        finally:
            self.destroy_client(cli)

    def close(self) -> None:
        self.info_reader.stop()
        self.executor_.shutdown(timeout_sec=1.0)
        self.destroy_node()


@contextlib.contextmanager
def running_graph(config, overrides: Optional[dict] = None, log_dir: str = "/tmp/dmpc_graph_logs",
                  domain_ids: Tuple[int, int] = (1, 100), ready_timeout: float = 90.0,
                  executables: Optional[List[str]] = None, on_start: Optional[Callable[["GraphProbe"], None]] = None,
                  **probe_kwargs) -> Iterator[tuple]:
    """Start the node graph of ``config`` as real processes on a random ROS_DOMAIN_ID in
    ``domain_ids`` with localhost-only discovery, plus a :class:`GraphProbe`; wait until the
    controller reports OK; yield ``(launcher, probe, config_dict)``; tear everything down and
    restore the environment. ``executables`` keeps only those nodes (e.g. the controller alone);
    ``on_start(probe)`` runs before the wait (e.g. to start feeding states to a lone controller).
    Used by the ROS end-to-end tests and the latency benchmark. Raises RuntimeError (naming the
    log folder) when the controller does not come up."""
    from dmpc_ros.graph import build_graph, load_config
    from dmpc_ros.launcher import Launcher

    specs = build_graph(config, overrides or {})
    if executables is not None:
        specs = [s for s in specs if s.executable in executables]
    cfg = load_config(config, overrides or {})
    names = {s.key: s.name for s in specs}
    probe_kwargs.setdefault("controller", names.get("controller", "ballbot_controller"))
    saved = {k: os.environ.get(k) for k in ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE")}
    os.environ["ROS_DOMAIN_ID"] = str(random.randint(*domain_ids))
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    launcher = probe = None
    try:
        rclpy.init()
        launcher = Launcher(specs, log_dir)
        launcher.start(supervise=True)  # the respawn rules apply, as under `dmpc launch`
        probe = GraphProbe(cfg["topics"], **probe_kwargs)
        if on_start is not None:
            on_start(probe)
        if not probe.wait_for(lambda: (d := probe.last_diag(probe.controller)) and d[3] == "OK", ready_timeout):
            raise RuntimeError(f"controller never reported OK (last: {probe.last_diag(probe.controller)}); "
                               f"logs in {log_dir}")
        yield launcher, probe, cfg
    finally:
        if probe is not None:
            probe.close()
        if launcher is not None:
            launcher.shutdown()
        rclpy.try_shutdown()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
