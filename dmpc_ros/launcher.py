"""Start a dmpc node graph as separate processes (what ``ros2 launch`` does, without launch_ros).

    python -m dmpc_ros.launcher config/ballbot_sim.yaml [--learner on|off] [--set KEY=VALUE ...]
    python -m dmpc_ros.launcher config/franka_sim.yaml [--variant gazebo|hardware] ...
    dmpc launch config/ballbot_sim.yaml ...            (execs this module)

Each node runs as ``python -m dmpc_ros.<executable> --ros-args -r __node:=NAME --params-file F
-r name:=topic ...``. SIGINT/SIGTERM are forwarded to every node; a node that does not exit within
``--grace`` seconds gets SIGTERM, then SIGKILL. When an *essential* node (``essential: true``, the
default: simulator, controller) exits, the graph shuts down; a non-essential one (the learner) is
restarted after ``respawn_delay`` when ``respawn: true`` or left down, and control goes on.
The ROS domain in use is printed at start; ``--private-domain`` picks a random one with
localhost-only discovery (nothing outside this machine, or in other domains, sees the graph).
"""
from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
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
        self.restarts: Dict[str, int] = {}      # respawns per node
        self.left_down: List[str] = []           # non-essential nodes that exited and stay down
        self._exited_at: Dict[str, float] = {}
        self._tmp = tempfile.TemporaryDirectory(prefix="dmpc_launch_")
        self._supervisor: Optional[threading.Thread] = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()

    def start(self, only: Optional[List[str]] = None, supervise: bool = False) -> None:
        """Start the nodes (``only``: names or keys); ``supervise``: a background thread applies
        the respawn rules (:meth:`supervise_once`) every 0.2 s."""
        for spec in self.specs:
            if only is not None and spec.name not in only and spec.key not in only:
                continue
            self.start_node(spec)
        if supervise and self._supervisor is None:
            self._supervisor = threading.Thread(target=self._supervise_loop, name="supervisor", daemon=True)
            self._supervisor.start()

    def _supervise_loop(self) -> None:
        while not self._stopping.wait(0.2):
            self.supervise_once()

    def supervise_once(self) -> List[str]:
        """Apply the exit rules once: respawn the due non-essential nodes, leave the others down.
        Returns the essential nodes that exited (the caller shuts the graph down)."""
        essential_dead = []
        with self._lock:
            if self._stopping.is_set():
                return []
            now = time.monotonic()
            for name, proc in list(self.procs.items()):
                if proc.poll() is None or name in self.left_down:
                    continue
                spec = self.spec(name)
                if spec.essential:
                    essential_dead.append(name)
                elif not spec.respawn:
                    self.left_down.append(name)
                    print(f"[launcher] {name} exited ({proc.returncode}); left down, the graph keeps running", flush=True)
                elif now - self._exited_at.setdefault(name, now) >= spec.respawn_delay:
                    del self._exited_at[name]
                    self.start_node(spec)
                    self.restarts[name] = self.restarts.get(name, 0) + 1
                    print(f"[launcher] {name} exited ({proc.returncode}); restarted (#{self.restarts[name]}, "
                          f"pid {self.procs[name].pid})", flush=True)
        return essential_dead

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
        if spec.name in self.left_down:  # started again on purpose: the exit rules apply again
            self.left_down.remove(spec.name)
        return proc

    def spec(self, name_or_key: str) -> NodeSpec:
        for s in self.specs:
            if name_or_key in (s.name, s.key):
                return s
        raise KeyError(name_or_key)

    def stop_node(self, name: str, grace: float = 5.0, sig: int = signal.SIGINT, send: bool = True) -> Optional[int]:
        """Signal one node (unless ``send`` is False: already signalled), wait ``grace`` seconds,
        then SIGTERM, then SIGKILL. A node stopped this way stays down (no respawn)."""
        proc = self.procs.get(name)
        if proc is None:
            return None
        with self._lock:
            if name not in self.left_down:
                self.left_down.append(name)
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
        with self._lock:
            self._stopping.set()
        if self._supervisor is not None:
            self._supervisor.join(timeout=2.0)
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
    ap.add_argument("--private-domain", action="store_true",
                    help="run on a random ROS_DOMAIN_ID (101-200) with localhost-only discovery")
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
    env = {}
    if args.private_domain:
        env = {"ROS_DOMAIN_ID": str(random.randint(101, 200)), "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}
    launcher = Launcher(specs, args.log_dir, env)
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
        domain = launcher.env.get("ROS_DOMAIN_ID", "0 (default)")
        print(f"[launcher] ROS_DOMAIN_ID {domain}, discovery {launcher.env.get('ROS_AUTOMATIC_DISCOVERY_RANGE', 'SUBNET (default)')}; "
              f"started {', '.join(f'{n} (pid {p.pid})' for n, p in launcher.procs.items())}", flush=True)
        essential_dead: List[str] = []
        while stop["sig"] is None and not essential_dead:
            time.sleep(0.2)
            essential_dead = launcher.supervise_once()
        if essential_dead and stop["sig"] is None:
            print(f"[launcher] essential node(s) exited: {essential_dead}; shutting down the graph", flush=True)
        codes = launcher.shutdown(args.grace)
    print(f"[launcher] exit codes {codes}", flush=True)
    return 0 if stop["sig"] is not None or all(c == 0 for c in codes.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
