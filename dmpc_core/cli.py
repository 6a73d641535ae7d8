"""The ``dmpc`` command line.

    dmpc demo ballbot-reach [--out DIR]     receding-horizon SLQ on the Ballbot (core demo)
"""
from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="dmpc", description="dmpc: learning model-predictive control")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run a demo", add_help=False)
    demo.add_argument("name", choices=["ballbot-reach"])
    args, rest = parser.parse_known_args(argv)
    if args.command == "demo":
        if args.name == "ballbot-reach":
            from dmpc_core.demos import ballbot_reach

            return ballbot_reach.main(rest)
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
