"""init / spin / shutdown of a dmpc node process."""
from __future__ import annotations


def run_node(node_factory, threads: int = 1, args=None) -> int:
    """init / spin / shutdown for a dmpc node. SIGINT and SIGTERM raise KeyboardInterrupt in the
    spinning thread (rclpy's own handler is disabled), so ``destroy_node`` still runs with a valid
    context and can publish a last safe message before shutdown. The executor is spun in steps
    of at most 0.1 s, so a signal is handled within that time even when nothing is ready."""
    import gc
    import signal
    import sys

    import rclpy
    from rclpy.executors import MultiThreadedExecutor, SingleThreadedExecutor
    from rclpy.signals import SignalHandlerOptions

    def _raise(signum, frame):
        raise KeyboardInterrupt

    # both installed explicitly: a process started from a non-interactive shell's background job
    # inherits SIGINT ignored, and Python then never installs its own KeyboardInterrupt handler
    signal.signal(signal.SIGTERM, _raise)
    signal.signal(signal.SIGINT, _raise)
    rclpy.init(args=args if args is not None else sys.argv, signal_handler_options=SignalHandlerOptions.NO)
    node = None
    try:
        node = node_factory()
        autostart(node)
        # Move everything built so far (~200 k objects once torch and rclpy are imported) out of
        # the cyclic garbage collector's reach: a full collection traversed them all and stopped
        # every thread of the process for ~100 ms (measured), long enough to trip the 400 Hz
        # watchdog. Objects created later are collected as usual.
        gc.collect()
        gc.freeze()
        executor = MultiThreadedExecutor(num_threads=threads) if threads > 1 else SingleThreadedExecutor()
        executor.add_node(node)
        # spin_once with a timeout, not spin(): a node without timers (the simulator) would
        # otherwise wait in C forever and never see the KeyboardInterrupt of a SIGINT
        while node.context.ok():
            executor.spin_once(timeout_sec=0.1)
    except KeyboardInterrupt:
        pass
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return 0


def autostart(node) -> None:
    """Configure and activate a lifecycle node whose ``autostart`` parameter is true (as a
    lifecycle manager with autostart would); a failed transition raises RuntimeError."""
    from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn

    if not isinstance(node, LifecycleNode) or not node.get_parameter("autostart").value:
        return
    for name, trigger in (("configure", node.trigger_configure), ("activate", node.trigger_activate)):
        if trigger() != TransitionCallbackReturn.SUCCESS:
            raise RuntimeError(f"{node.get_name()}: lifecycle transition {name} failed (see the log above)")
