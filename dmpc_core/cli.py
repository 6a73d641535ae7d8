"""The ``dmpc`` command line.

    dmpc demo ballbot-reach [--out DIR]        receding-horizon SLQ on the Ballbot (core demo)
    dmpc train NAME [--config YAML] [...]      run an experiment's training loop
    dmpc eval NAME [...]                       evaluate a trained experiment
    dmpc launch CONFIG [...]                   start a ROS 2 node graph here (see dmpc_ros)
    dmpc list                                  list the experiments dmpc train can run
    dmpc train NAME --help                     that experiment's options and settings (defaults)

Experiments live in ``dmpc_core/experiments/`` (one module each, discovered by name).
``dmpc train NAME`` without ``--out`` writes to ``runs/NAME/...`` under the working directory.

Exit codes: 0 success; 1 a checkpoint or input file is unusable (corrupted, truncated, of another
run); 2 a usage or configuration problem (bad config key/type/value, nothing to resume, unknown
experiment); 130 interrupted (Ctrl-C). Errors are one line ``error: ...`` on stderr naming the file
and the problem, not a traceback (set DMPC_TRACEBACK=1 to get the traceback as well).
"""
from __future__ import annotations

import argparse
import os
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
    from dmpc_core import experiments

    if not rest or rest[0] in ("-h", "--help"):
        print(f"usage: dmpc {args.command} NAME [options]   (dmpc {args.command} NAME --help for its options)\n\n"
              f"experiments: {', '.join(experiments.available())}")
        if not rest:
            print(f"dmpc {args.command}: give an experiment name", file=sys.stderr)
        return 0 if rest else 2
    if rest[0] not in experiments.available():
        parser.error(f"unknown experiment '{rest[0]}'; available: {', '.join(experiments.available())}")
    module = experiments.load(rest[0])
    fn = getattr(module, f"{args.command}_main", None)
    if fn is None:
        parser.error(f"experiment {rest[0]} has no '{args.command}' entry point")
    if args.command == "train" and any(a in ("-h", "--help") for a in rest[1:]):
        return train_help(rest[0], module, fn)
    return run_entry_point(fn, rest[1:])


def train_help(name: str, module, fn) -> int:
    """``dmpc train NAME --help``: the experiment's own options, then every setting its config
    file can hold (``--set KEY=VALUE``), with the default and what it does."""
    from dmpc_core.experiments import defaults_of
    from dmpc_core.settings import describe

    try:
        fn(["--help"])
    except SystemExit:  # argparse's help exits 0 after printing
        pass
    declared = defaults_of(module)
    default_config = getattr(module, "DEFAULT_CONFIG", None)
    print(f"\nsettings of {name} (config file sections; default values; override one with --set KEY=VALUE"
          + (f"; the shipped config is {_relative(default_config)})" if default_config else ")"))
    if not declared:
        print("  (this experiment declares no SETTINGS)")
    for section, defaults in declared.items():
        prefix = f"{section}." if section else ""
        for key, tname, default, text in describe(type(defaults), prefix, defaults):
            line = f"  {key} = {default!r}  ({tname})"
            print(line + (f"  {' '.join(text.split())}" if text else ""))
    return 0


def _relative(path) -> str:
    from pathlib import Path

    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def run_entry_point(fn, argv: list[str]) -> int:
    """Call an experiment's ``train_main`` / ``eval_main``; user-facing errors become one
    ``error: ...`` line on stderr and a non-zero exit code (see the module docstring)."""
    from dmpc_core.critics.checkpoint import CheckpointError
    from dmpc_core.experiments._common import CliError
    from dmpc_core.settings import ConfigError

    try:
        return int(fn(argv) or 0)
    except (ConfigError, CliError, CheckpointError) as e:
        if os.environ.get("DMPC_TRACEBACK"):
            import traceback

            traceback.print_exc()
        msg = " ".join(str(e).split())
        if len(msg) > 600:  # e.g. torch's list of every missing state_dict key
            msg = msg[:600] + " ... (DMPC_TRACEBACK=1 shows all)"
        print(f"error: {msg}", file=sys.stderr)
        return 1 if isinstance(e, CheckpointError) else 2
    except KeyboardInterrupt:
        print("interrupted (a training run keeps its last checkpoint: continue it with --resume)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
