"""State feed for benchmarks/ros_latency.py: a process of its own that publishes the Ballbot's
JointState at a fixed rate on an absolute schedule, like a robot driver's real-time loop.

    python benchmarks/_state_feed.py --topic /joint_states --rate 400 --duration 10

It has no executor and no subscription, so no other thread of this process competes for the GIL
with the publishing loop (in the benchmark process the probe's executor did, and the feed itself
then arrived in bursts: period p99 20 ms). It runs under SCHED_FIFO 60 when the OS allows it and
prints one line ``feed: <scheduler>, <n> states, period p50/p99/max [ms]`` at the end. The stamp
of each message is the wall time just before ``publish`` (what the benchmark's latency is
measured from); the state is the Ballbot at rest at the origin. ``--stamps-out`` saves those
stamps: the benchmark uses this loop's own period jitter, in its measurement window, as the
anchor for the controller's (what a FIFO sleep-and-publish loop in Python gets from this
machine at that moment).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--rate", type=float, default=400.0)
    ap.add_argument("--duration", type=float, required=True, help="seconds to publish")
    ap.add_argument("--priority", type=int, default=60, help="SCHED_FIFO priority (0: normal scheduler)")
    ap.add_argument("--stamps-out", default="", help="save the publish wall times here (.npy) at the end")
    args = ap.parse_args(argv)

    import rclpy

    from dmpc_core.tasks import ballbot
    from dmpc_ros.messages import wall_time_msg, x_to_joint_state
    from dmpc_ros.qos import QOS_RELIABLE
    from dmpc_ros.realtime import configure_thread
    from sensor_msgs.msg import JointState

    rclpy.init()
    node = rclpy.create_node("dmpc_bench_state_feed", start_parameter_services=False)
    pub = node.create_publisher(JointState, args.topic, QOS_RELIABLE)
    msg = x_to_joint_state(np.zeros(ballbot.NX), ballbot.JOINT_NAMES, wall_time_msg(time.time()))
    scheduler = configure_thread(None, "feed", args.priority)
    period = 1.0 / args.rate
    stamps = []
    nxt = time.monotonic()
    end = nxt + args.duration
    try:
        while time.monotonic() < end:
            stamp = time.time()
            msg.header.stamp = wall_time_msg(stamp)
            pub.publish(msg)
            stamps.append(stamp)
            nxt += period
            time.sleep(max(0.0, nxt - time.monotonic()))
    except KeyboardInterrupt:
        pass
    finally:
        if args.stamps_out:
            np.save(args.stamps_out, np.asarray(stamps))
        d = np.diff(stamps) * 1e3 if len(stamps) > 1 else np.zeros(1)
        print(f"feed: {scheduler}, {len(stamps)} states, period p50/p99/max "
              f"{np.percentile(d, 50):.3f}/{np.percentile(d, 99):.3f}/{d.max():.3f} ms", flush=True)
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
