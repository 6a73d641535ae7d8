"""Start a dmpc node graph as separate processes (what ``ros2 launch`` does, without launch_ros).

    python -m dmpc_ros.launcher config/ballbot_sim.yaml [--learner on|off] [--set KEY=VALUE ...]
    python -m dmpc_ros.launcher config/franka_sim.yaml [--variant gazebo|hardware] ...
    dmpc launch config/ballbot_sim.yaml ...            (execs this module)

Each node runs as ``python -m dmpc_ros.<executable> --ros-args -r __node:=NAME --params-file F
-r name:=topic ...``. SIGINT/SIGTERM are forwarded to every node; a node that does not exit within
``--grace`` seconds gets SIGTERM, then SIGKILL. If any node dies, the others are shut down too.
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Mapping, Optional

import yaml

from dmpc_core.settings import ConfigError, parse_overrides
from dmpc_ros.graph import NodeSpec, build_graph, load_config, params_file_content


def node_command(spec: NodeSpec, params_file: str) -> List[str]:
    cmd = [sys.executable, "-u", "-m", spec.module(), "--ros-args", "-r", f"__node:={spec.name}",
           "--params-file", params_file]
    for a, b in spec.remappings:
        cmd += ["-r", f"{a}:={b}"]
    return cmd


class Launcher:
    """Owns the node processes of one graph.

    Args:
        specs: from :func:`dmpc_ros.graph.build_graph`.
        log_dir: each node's stdout/stderr go to ``<log_dir>/<name>.log`` (None: inherit).
        env: extra environment variables for the nodes.
    """

    def __init__(self, specs: List[NodeSpec], log_dir: Optional[str] = None, env: Optional[Mapping[str, str]] = None):
        self.specs = specs
        self.log_dir = Path(log_dir) if log_dir else None
        self.env = dict(os.environ, **(env or {}))
        self.env.setdefault("PYTHONUNBUFFERED", "1")
        root = str(Path(__file__).resolve().parents[1])
        self.env["PYTHONPATH"] = root + (os.pathsep + self.env["PYTHONPATH"] if self.env.get("PYTHONPATH") else "")
        self.procs: Dict[str, subprocess.Popen] = {}
        self._tmp = tempfile.TemporaryDirectory(prefix="dmpc_launch_")

    def start(self, only: Optional[List[str]] = None) -> None:
        for spec in self.specs:
            if only is not None and spec.name not in only and spec.key not in only:
                continue
            self.start_node(spec)

    def start_node(self, spec: NodeSpec) -> subprocess.Popen:
        pfile = Path(self._tmp.name) / f"{spec.name}.yaml"
        pfile.write_text(yaml.safe_dump(params_file_content(spec)))
        out = None
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            out = open(self.log_dir / f"{spec.name}.log", "ab")
        proc = subprocess.Popen(node_command(spec, str(pfile)), env=self.env, stdout=out,
                                stderr=subprocess.STDOUT if out else None, start_new_session=True)
        self.procs[spec.name] = proc
        return proc

    def spec(self, name_or_key: str) -> NodeSpec:
        for s in self.specs:
            if name_or_key in (s.name, s.key):
                return s
        raise KeyError(name_or_key)

    def stop_node(self, name: str, grace: float = 5.0, sig: int = signal.SIGINT, send: bool = True) -> Optional[int]:
        """Signal one node (unless ``send`` is False: already signalled), wait ``grace`` seconds,
        then SIGTERM, then SIGKILL."""
        proc = self.procs.get(name)
        if proc is None:
            return None
        if proc.poll() is None:
            if send:
                proc.send_signal(sig)
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                proc.terminate()
                try:
                    proc.wait(2.0)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        return proc.returncode

    def kill_node(self, name: str) -> None:
        """SIGKILL one node (fault injection)."""
        proc = self.procs[name]
        proc.kill()
        proc.wait()

    def dead(self) -> List[str]:
        return [n for n, p in self.procs.items() if p.poll() is not None]

    def shutdown(self, grace: float = 5.0) -> Dict[str, Optional[int]]:
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        # no second SIGINT: it would interrupt a node's destroy_node (its last safe command)
        return {n: self.stop_node(n, grace, send=False) for n in list(self.procs)}

    def __enter__(self) -> "Launcher":
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()
        self._tmp.cleanup()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("config")
    ap.add_argument("--learner", choices=["on", "off"], default=None)
    ap.add_argument("--mode", choices=["sim", "hardware"], default="sim",
                    help="hardware: start no sim node (the robot's driver publishes the state); applies the "
                         "config's 'hardware' variant if it has one and --variant is not given")
    ap.add_argument("--variant", default=None, help="apply variants.<NAME> of the config (e.g. gazebo, hardware)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a config entry, e.g. nodes.controller.parameters.reach.critic_weight=0.3")
    ap.add_argument("--log-dir", default=None)
    ap.add_argument("--grace", type=float, default=5.0)
    ap.add_argument("--dry-run", action="store_true", help="print the node commands and exit")
    args = ap.parse_args(argv)
    try:
        overrides = parse_overrides(args.set)
    except ConfigError as e:
        ap.error(str(e))
    if args.learner is not None:
        overrides["learner"] = args.learner == "on"
    if args.variant:
        overrides["variant"] = args.variant
    elif args.mode == "hardware" and "hardware" in (load_config(args.config).get("variants") or {}):
        overrides["variant"] = "hardware"
    try:
        specs = build_graph(args.config, overrides)
    except (KeyError, ValueError) as e:
        print(f"[launcher] {e}", file=sys.stderr, flush=True)
        return 2
    if args.mode == "hardware":
        specs = [s for s in specs if s.executable != "sim_node"]
    launcher = Launcher(specs, args.log_dir)
    if args.dry_run:
        for s in specs:
            print(" ".join(node_command(s, f"<{s.name}.yaml>")))
        return 0
    stop = {"sig": None}

    def on_signal(signum, _frame):
        stop["sig"] = signum

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    with launcher:
        launcher.start()
        print(f"[launcher] started {', '.join(f'{n} (pid {p.pid})' for n, p in launcher.procs.items())}", flush=True)
        while stop["sig"] is None and not launcher.dead():
            time.sleep(0.2)
        if launcher.dead() and stop["sig"] is None:
            print(f"[launcher] node(s) exited: {launcher.dead()}; shutting down the graph", flush=True)
        codes = launcher.shutdown(args.grace)
    print(f"[launcher] exit codes {codes}", flush=True)
    return 0 if stop["sig"] is not None or all(c == 0 for c in codes.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
