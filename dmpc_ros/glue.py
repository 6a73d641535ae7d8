"""Message <-> numpy and parameter <-> settings helpers shared by the dmpc nodes (ROS glue only).

Transition layout (``transitions`` topic, std_msgs/Float64MultiArray, row-major)::

    layout.dim[0]: label "transition", size n (rows in this message), stride n * W
    layout.dim[1]: label "state:10,goal:2,time_to_go:1,cost:1,next_state:10,next_time_to_go:1,done:1",
                   size W (= 26 for the Ballbot), stride W

The field order is ``dmpc_core.critics.learner.TRANSITION_FIELDS``; the label lists each field
with its width so a subscriber can check it matches what it expects.
"""
from __future__ import annotations

import array
import dataclasses
import threading
import time
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

import numpy as np
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray, MultiArrayDimension, UInt8MultiArray

from dmpc_core.control.reach_mpc import field_widths, pack_rows, unpack_rows
from dmpc_core.settings import from_dict, to_dict

#: RELIABLE, keep-last 10: commands and states (ros2_control forward controllers use reliable).
QOS_RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)
#: latest-value streams (state into the controller, commands into the plant): reliable, depth 1.
#: A consumer that falls behind skips to the newest sample instead of working through a backlog
#: (with depth 10 a lagging executor added up to 10 periods of queueing latency).
QOS_LATEST = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)
#: reliable deep queue for transitions (no batch lost while the learner is busy).
QOS_TRANSITIONS = QoSProfile(depth=200, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)
#: critic bundles: reliable + transient local (a controller started later still gets the latest).
QOS_CRITIC = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST,
                        durability=DurabilityPolicy.TRANSIENT_LOCAL)


# -- parameters <-> settings dataclasses ----------------------------------------------------------
def _flatten(d: Dict[str, Any], prefix: str = "") -> Dict[str, Any]:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = list(v) if isinstance(v, tuple) else v
    return out


def _nest(flat: Dict[str, Any]) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for k, v in flat.items():
        cur = out
        parts = k.split(".")
        for p in parts[:-1]:
            cur = cur.setdefault(p, {})
        cur[parts[-1]] = v
    return out


def declare_settings(node, prefix: str, settings, read_only: bool = True) -> None:
    """Declare one ROS parameter per leaf of ``settings`` (dotted names under ``prefix``)."""
    for k, v in _flatten(to_dict(settings)).items():
        node.declare_parameter(f"{prefix}.{k}", v, ParameterDescriptor(dynamic_typing=True, read_only=read_only))


def read_settings(node, prefix: str, cls, changes: Optional[Dict[str, Any]] = None):
    """Build ``cls`` from the node's parameters under ``prefix`` (plus pending ``changes``)."""
    flat = {}
    for name, p in node.get_parameters_by_prefix(prefix).items():
        flat[name] = p.value
    for name, v in (changes or {}).items():
        if name.startswith(prefix + "."):
            flat[name[len(prefix) + 1:]] = v
    nested = _nest({k: (list(v) if isinstance(v, (array.array, tuple)) else v) for k, v in flat.items()})
    return from_dict(cls, nested, prefix)


def settings_defaults(settings) -> Dict[str, Any]:
    return _flatten(to_dict(settings))


# -- JointState <-> state vector -------------------------------------------------------------------
def joint_state_to_x(msg: JointState, names: Sequence[str]) -> Tuple[Optional[np.ndarray], str]:
    """Generalised coordinates (positions then velocities, ordered as ``names``) or (None, reason)."""
    n = len(names)
    if len(msg.name) != n or len(msg.position) != n or len(msg.velocity) != n:
        return None, (f"JointState has {len(msg.name)} names, {len(msg.position)} positions, "
                      f"{len(msg.velocity)} velocities; expected {n} each ({list(names)})")
    index = {nm: i for i, nm in enumerate(msg.name)}
    if set(index) != set(names):
        return None, f"JointState joints {list(msg.name)} do not match {list(names)}"
    order = [index[nm] for nm in names]
    q = np.asarray(msg.position, float)[order]
    v = np.asarray(msg.velocity, float)[order]
    x = np.concatenate([q, v])
    if not np.all(np.isfinite(x)):
        return None, "JointState contains non-finite values"
    return x, ""


def x_to_joint_state(x: np.ndarray, names: Sequence[str], stamp, effort=None) -> JointState:
    n = len(names)
    msg = JointState()
    msg.header.stamp = stamp
    msg.name = list(names)
    msg.position = [float(v) for v in x[:n]]
    msg.velocity = [float(v) for v in x[n:2 * n]]
    if effort is not None:
        msg.effort = [float(v) for v in effort]
    return msg


# -- labelled Float64MultiArray --------------------------------------------------------------------
def vector_msg(values, label: str) -> Float64MultiArray:
    msg = Float64MultiArray()
    msg.layout.dim = [MultiArrayDimension(label=label, size=len(values), stride=len(values))]
    msg.data = array.array("d", np.asarray(values, float))
    return msg


class VectorPublisher:
    """Publisher of a fixed-size labelled Float64MultiArray for a high-rate loop: the message and
    its layout are built once; each ``publish`` only refills the data (rclpy serialises the
    message inside ``publish``, so reusing it is safe). A value count other than ``size`` raises
    ValueError (the layout would lie)."""

    def __init__(self, node, topic: str, qos, label: str, size: int):
        self.size = int(size)
        self.pub = node.create_publisher(Float64MultiArray, topic, qos)
        self.msg = vector_msg(np.zeros(self.size), label)

    def publish(self, values) -> None:
        data = array.array("d", np.asarray(values, float).ravel())
        if len(data) != self.size:
            raise ValueError(f"{self.pub.topic_name}: {len(data)} values, layout says {self.size}")
        self.msg.data = data
        self.pub.publish(self.msg)


def set_cpu_affinity(cpu: int) -> str:
    """Pin the CALLING thread to CPU ``cpu`` (-1: leave it alone). Returns "" on success, else why
    not (no such CPU, or no Linux affinity API); the thread then keeps its affinity."""
    import os

    if cpu < 0:
        return ""
    if not hasattr(os, "sched_setaffinity"):
        return "this platform has no sched_setaffinity"
    allowed = os.sched_getaffinity(0)
    if cpu not in allowed:
        return f"CPU {cpu} is not available (allowed: {sorted(allowed)}); affinity unchanged"
    os.sched_setaffinity(0, {cpu})
    return ""


def set_realtime_priority(priority: int) -> str:
    """Put the CALLING thread under SCHED_FIFO at ``priority`` (1-99), as ros2_control does for its
    control loop (realtime_tools). Returns "" on success, else why not (no permission: needs root,
    CAP_SYS_NICE or an ``rtprio`` limit in /etc/security/limits.conf; no Linux scheduler API);
    the thread then keeps the normal scheduler. ``priority`` 0 does nothing.
    A FIFO thread preempts every normal thread of the machine when it wakes, so only short,
    sleeping loops (the tracking tick, the state reader) get it, never the MPC solve."""
    import os

    if priority == 0:
        return ""
    if not 1 <= priority <= 99:
        raise ValueError(f"realtime priority must be 0 (off) or 1..99, got {priority}")
    if not hasattr(os, "sched_setscheduler"):
        return "this platform has no sched_setscheduler"
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    except (PermissionError, OSError) as e:
        return f"SCHED_FIFO {priority} refused ({e.strerror or e}); running with the normal scheduler"
    return ""


def configure_thread(logger, what: str, priority: int = 0, cpu: int = -1) -> str:
    """Apply ``set_cpu_affinity(cpu)`` and ``set_realtime_priority(priority)`` to the CALLING
    thread, log each refusal as a warning ``"<what>: <why>"`` (``logger`` None: no log) and return
    the thread's scheduler for diagnostics: "SCHED_FIFO <priority>", "normal", or why FIFO was
    refused."""
    affinity_problem = set_cpu_affinity(cpu)
    priority_problem = set_realtime_priority(priority)
    for problem in (affinity_problem, priority_problem):
        if problem and logger is not None:
            logger.warn(f"{what}: {problem}")
    return priority_problem or (f"SCHED_FIFO {priority}" if priority else "normal")


class StreamReader:
    """One high-rate subscription served by its own thread, outside the node's executor.

    rclpy's executors rebuild their wait set in Python for every callback they dispatch (a few
    hundred microseconds of interpreter time each, holding the GIL), which at 400 states/s was the
    largest GIL consumer of the controller process (py-spy, docs/benchmarks.md) and delayed the
    tracking and MPC threads. Here the subscription lives on a small private node that no
    executor spins; a dedicated thread waits on a wait set holding only that subscription and a
    stop guard condition (the wait releases the GIL), takes each message and calls
    ``handler(msg)`` in that thread. The same rclpy calls as ``rclpy.wait_for_message``.

    ``topic`` should be the owning node's resolved name (``node.resolve_topic_name``): the
    private node ignores the process's global remapping arguments so they are not applied twice.
    Used for the controller's states, the simulator's commands and the test probe's
    ``command_info``. A handler exception is counted (``errors``), logged at most once per second
    and does not end the stream; ``scheduler`` is the thread's scheduler (``configure_thread``).
    """

    def __init__(self, node, msg_type, topic: str, qos, handler: Callable[[Any], None], name: str,
                 realtime_priority: int = 0):
        import rclpy
        from rclpy.impl.implementation_singleton import rclpy_implementation

        self._rclpy_impl = rclpy_implementation
        self.context = node.context
        self.msg_type = msg_type
        self.handler = handler
        self.io_node = rclpy.create_node(name, namespace=node.get_namespace(), context=self.context,
                                         use_global_arguments=False, start_parameter_services=False,
                                         enable_rosout=False)
        self.sub = self.io_node.create_subscription(msg_type, topic, lambda _msg: None, qos)
        self.stop_gc = self.io_node.create_guard_condition(lambda: None)
        self.error: Optional[BaseException] = None  # last exception of the handler or the wait
        self.errors = 0  # handler exceptions (each logged, at most once per second)
        self._last_error_log = -1e9
        self.received = 0  # messages taken
        self.realtime_priority = int(realtime_priority)
        self.scheduler = "not started"  # set by the thread (configure_thread)
        self._running = True
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> "StreamReader":
        self.thread.start()
        return self

    def _run(self) -> None:
        self.scheduler = configure_thread(self.io_node.get_logger(), self.thread.name, self.realtime_priority)
        wait_set = self._rclpy_impl.WaitSet(1, 1, 0, 0, 0, 0, self.context.handle)
        try:
            while self._running and self.context.ok():
                with self.sub.handle, self.stop_gc.handle:
                    wait_set.clear_entities()
                    wait_set.add_subscription(self.sub.handle)
                    wait_set.add_guard_condition(self.stop_gc.handle)
                    wait_set.wait(200_000_000)  # 0.2 s: also re-checks context.ok()
                    if not self._running:
                        break
                    taken = self.sub.handle.take_message(self.msg_type, False)
                if taken is not None:
                    self.received += 1
                    try:
                        self.handler(taken[0])
                    except Exception as e:  # noqa: BLE001 - one bad message must not end the stream
                        self.errors += 1
                        self.error = e
                        now = time.monotonic()
                        if now - self._last_error_log >= 1.0:
                            self._last_error_log = now
                            self.io_node.get_logger().error(f"{self.thread.name}: handler failed ({self.errors} so far): {e!r}")
        except Exception as e:  # noqa: BLE001 - the wait itself failed: logged, never silent
            if self._running:
                self.error = e
                self.io_node.get_logger().error(f"{self.thread.name}: stream thread stopped: {e!r}")

    def stop(self) -> None:
        """Stop the thread and destroy the private node (idempotent)."""
        if not self._running:
            return
        self._running = False
        try:
            self.stop_gc.trigger()
        except Exception:  # noqa: BLE001 - context already shut down: the wait times out
            pass
        if self.thread.is_alive() and threading.current_thread() is not self.thread:
            self.thread.join(timeout=2.0)
        self.io_node.destroy_node()


def transition_label(nx: int, ng: int) -> str:
    return ",".join(f"{k}:{w}" for k, w in field_widths(nx, ng).items())


def transitions_msg(rows, nx: int, ng: int) -> Float64MultiArray:
    mat = pack_rows(rows, nx, ng)
    n, w = mat.shape
    msg = Float64MultiArray()
    msg.layout.dim = [MultiArrayDimension(label="transition", size=n, stride=n * w),
                      MultiArrayDimension(label=transition_label(nx, ng), size=w, stride=w)]
    msg.data = array.array("d", mat.ravel())
    return msg


def transitions_from_msg(msg: Float64MultiArray, nx: int, ng: int) -> Dict[str, np.ndarray]:
    """Decode a transitions message (ValueError if the layout does not match nx/ng)."""
    dims = msg.layout.dim
    if len(dims) != 2 or dims[1].label != transition_label(nx, ng):
        raise ValueError(f"transition layout {[d.label for d in dims]} does not match {transition_label(nx, ng)!r}")
    n, w = dims[0].size, dims[1].size
    data = np.asarray(msg.data, float)
    if data.size != n * w:
        raise ValueError(f"transition message has {data.size} values; layout says {n} x {w}")
    return unpack_rows(data.reshape(n, w), nx, ng)


def bytes_msg(data: bytes) -> UInt8MultiArray:
    msg = UInt8MultiArray()
    msg.layout.dim = [MultiArrayDimension(label="critic_bundle", size=len(data), stride=len(data))]
    msg.data = array.array("B", data)
    return msg


def wall_time_msg(t: float):
    from builtin_interfaces.msg import Time

    sec = int(t)
    return Time(sec=sec, nanosec=int((t - sec) * 1e9))


def stamp_to_float(stamp) -> float:
    return stamp.sec + 1e-9 * stamp.nanosec


def run_node(node_factory, threads: int = 1, args=None) -> int:
    """init / spin / shutdown for a dmpc node. SIGINT and SIGTERM raise KeyboardInterrupt in the
    spinning thread (rclpy's own handler is disabled), so ``destroy_node`` still runs with a valid
    context and can publish a last safe message before shutdown."""
    import gc
    import signal
    import sys

    import rclpy
    from rclpy.executors import MultiThreadedExecutor, SingleThreadedExecutor
    from rclpy.signals import SignalHandlerOptions

    def _raise(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _raise)
    rclpy.init(args=args if args is not None else sys.argv, signal_handler_options=SignalHandlerOptions.NO)
    node = None
    try:
        node = node_factory()
        # Move everything built so far (~200 k objects once torch and rclpy are imported) out of
        # the cyclic garbage collector's reach: a full collection traversed them all and stopped
        # every thread of the process for ~100 ms (measured), long enough to trip the 400 Hz
        # watchdog. Objects created later are collected as usual.
        gc.collect()
        gc.freeze()
        executor = MultiThreadedExecutor(num_threads=threads) if threads > 1 else SingleThreadedExecutor()
        executor.add_node(node)
        executor.spin()
    except KeyboardInterrupt:
        pass
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return 0
