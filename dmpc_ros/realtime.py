"""Real-time plumbing of the nodes: SCHED_FIFO, CPU pinning and a subscription served by its own
thread (:class:`StreamReader`), outside the executor."""
from __future__ import annotations

import threading
import time
from typing import Any, Callable, Optional


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
