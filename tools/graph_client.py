#!/usr/bin/env python3
"""Talk to a running dmpc node graph from a shell (no ``ros2`` CLI needed).

    python tools/graph_client.py goal X Y [--config config/ballbot_sim.yaml]        Ballbot goal [m]
    python tools/graph_client.py goal X Y Z --config config/franka_sim.yaml         Panda TCP goal [m]
    python tools/graph_client.py watch [--config config/ballbot_sim.yaml] [--seconds 60]

Start the graph first in another shell (``dmpc launch config/ballbot_sim.yaml``); both must use
the same ``ROS_DOMAIN_ID``. ``goal`` publishes a PoseStamped on the config's ``goal_pose``
topic (again until the controller's diagnostics show it), then prints the distance to the goal
once a second until it is within ``--tolerance`` (exit 0) or ``--timeout`` passes (exit 1):
for the Ballbot the ball position from ``joint_states``, for the Panda the TCP position from the
core's kinematics. ``watch`` prints one line per second from the controller's diagnostics:
status, solver, MPC and tracking rates, and the critic in use (``critic_version`` rises each
time the learner's new critic passes the controller's checks and is swapped in).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _probe(config: str):
    import rclpy

    from dmpc_ros.graph import build_graph, load_config
    from dmpc_ros.probe import GraphProbe

    cfg = load_config(config, {})
    specs = build_graph(config, {})
    names = {s.key: s.name for s in specs}
    panda = cfg.get("robot") == "panda"
    joint_names = None
    if panda:
        from dmpc_core.models.panda import JOINT_NAMES

        joint_names = JOINT_NAMES
    rclpy.init()
    probe = GraphProbe(cfg["topics"], controller=names.get("controller", "ballbot_controller"),
                       sim=names.get("sim", "ballbot_sim"), joint_names=joint_names)
    return probe, panda


def _position(probe, panda: bool, model):
    x = probe.latest_state()
    if x is None:
        return None
    if panda:
        from dmpc_core.models.panda import TCP_FRAME

        return np.asarray(model.frame_position(np.asarray(x[:7], float), TCP_FRAME))
    return np.asarray(x[:2], float)


def _close(probe) -> None:
    import rclpy

    probe.close()
    rclpy.try_shutdown()


def goal(args) -> int:
    probe, panda = _probe(args.config)
    target = np.array(args.xyz, float)
    if len(target) != (3 if panda else 2):
        print(f"error: the {'Panda' if panda else 'Ballbot'} takes a goal of {3 if panda else 2} numbers, got {len(target)}",
              file=sys.stderr)
        return 2
    model = None
    if panda:
        from dmpc_core import _core
        from dmpc_core.models.panda import default_urdf_path

        model = _core.PandaDynamics(str(default_urdf_path()))
    want = ",".join(f"{v:.3f}" for v in target)
    try:
        if not probe.wait_for(lambda: probe.last_diag(probe.controller) is not None, 30.0):
            print(f"error: no diagnostics from {probe.controller} within 30 s (is the graph running, same ROS_DOMAIN_ID?)",
                  file=sys.stderr)
            return 1
        # publish until the controller reports the goal (discovery of a new publisher takes a moment)
        if not probe.wait_for(lambda: probe.send_goal(target) or probe.diag_value(probe.controller, "goal") == want,
                              10.0, period=0.5):
            print(f"error: the controller did not take the goal {want} (see its log for the reason: outside the "
                  f"arena, unreachable, not finite)", file=sys.stderr)
            return 1
        print(f"goal {want} sent to {probe.controller}")
        end = time.monotonic() + args.timeout
        while time.monotonic() < end:
            p = _position(probe, panda, model)
            if p is not None:
                d = float(np.linalg.norm(p - target))
                print(f"  position {np.round(p, 3).tolist()}  distance {d:.3f} m", flush=True)
                if d <= args.tolerance:
                    print(f"reached within {args.tolerance} m")
                    return 0
            time.sleep(1.0)
        print(f"not within {args.tolerance} m after {args.timeout} s", file=sys.stderr)
        return 1
    finally:
        _close(probe)


def watch(args) -> int:
    probe, _ = _probe(args.config)
    keys = ("solver", "mpc_rate_hz", "tracking_rate_hz", "critic_version", "critic_source", "critic_swaps",
            "critics_rejected", "goal")
    try:
        end = time.monotonic() + args.seconds
        while time.monotonic() < end:
            d = probe.last_diag(probe.controller)
            if d is None:
                print("  (no diagnostics yet)", flush=True)
            else:
                print(f"  {d[3]:5s} " + " ".join(f"{k}={d[4].get(k, '')}" for k in keys), flush=True)
            time.sleep(1.0)
        return 0
    finally:
        _close(probe)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="tools/graph_client.py", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    g = sub.add_parser("goal", help="send a goal and report the distance until it is reached")
    g.add_argument("xyz", type=float, nargs="+", metavar="X", help="x y (Ballbot) or x y z (Panda TCP) [m]")
    g.add_argument("--config", default=str(ROOT / "config" / "ballbot_sim.yaml"))
    g.add_argument("--tolerance", type=float, default=0.1, help="[m] (default 0.1)")
    g.add_argument("--timeout", type=float, default=30.0, help="[s] (default 30)")
    w = sub.add_parser("watch", help="print the controller's diagnostics once a second")
    w.add_argument("--config", default=str(ROOT / "config" / "ballbot_sim.yaml"))
    w.add_argument("--seconds", type=float, default=60.0)
    args = ap.parse_args(argv)
    return goal(args) if args.command == "goal" else watch(args)


if __name__ == "__main__":
    raise SystemExit(main())
