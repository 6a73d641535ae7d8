"""The ``dmpc`` command line.

    dmpc demo ballbot-reach [--out DIR]        receding-horizon SLQ on the Ballbot (core demo)
    dmpc train NAME [--config YAML] [...]      run an experiment's training loop
    dmpc eval NAME [...]                       evaluate a trained experiment
    dmpc launch CONFIG [...]                   start a ROS 2 node graph here (see dmpc_ros)
    dmpc list                                  list the experiments

Experiments live in ``dmpc_core/experiments/`` (one module each, discovered by name).
"""
from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="dmpc", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["demo", "train", "eval", "launch", "list"])
    if not argv or argv[0] in ("-h", "--help"):
        parser.print_help()
        return 0 if argv else 2
    args, rest = parser.parse_known_args(argv[:1])
    rest = argv[1:]
    if args.command == "list":
        from dmpc_core import experiments

        print("\n".join(experiments.available()))
        return 0
    if args.command == "demo":
        if not rest or rest[0] != "ballbot-reach":
            parser.error("demo: available demos: ballbot-reach")
        from dmpc_core.demos import ballbot_reach

        return ballbot_reach.main(rest[1:])
    if args.command == "launch":
        # dmpc_core never imports ROS: hand over to the dmpc_ros launcher in a new process image.
        import importlib.util
        import os

        if importlib.util.find_spec("dmpc_ros.launcher") is None:
            print("dmpc launch needs the dmpc_ros package (dmpc_ros/launcher.py)", file=sys.stderr)
            return 2
        os.execv(sys.executable, [sys.executable, "-m", "dmpc_ros.launcher", *rest])
    if not rest:
        parser.error(f"{args.command}: give an experiment name (dmpc list)")
    from dmpc_core import experiments

    module = experiments.load(rest[0])
    fn = getattr(module, f"{args.command}_main", None)
    if fn is None:
        parser.error(f"experiment {rest[0]} has no '{args.command}' entry point")
    return int(fn(rest[1:]) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
