"""The launcher's exit rules without ROS: stand-in processes (sleep) for the nodes."""
from __future__ import annotations

import subprocess
import sys
import time

from dmpc_ros.graph import NodeSpec
from dmpc_ros.launcher import Launcher


def make_launcher(monkeypatch):
    specs = [NodeSpec("sim_node", "sim"), NodeSpec("controller_node", "ctrl"),
             NodeSpec("learner_node", "learner", essential=False, respawn=True, respawn_delay=0.0),
             NodeSpec("learner_node", "other", essential=False, respawn=False)]
    launcher = Launcher(specs)
    started = []

    def start_node(spec):
        proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        launcher.procs[spec.name] = proc
        started.append(spec.name)
        return proc

    monkeypatch.setattr(launcher, "start_node", start_node)
    return launcher, started


def test_non_essential_nodes_respawn_or_stay_down_and_essential_ones_end_the_graph(monkeypatch):
    launcher, started = make_launcher(monkeypatch)
    try:
        launcher.start()
        assert started == ["sim", "ctrl", "learner", "other"]
        old = launcher.procs["learner"].pid
        launcher.kill_node("learner")
        launcher.kill_node("other")
        assert launcher.supervise_once() == []          # control goes on
        assert launcher.procs["learner"].pid != old and launcher.procs["learner"].poll() is None
        assert launcher.restarts == {"learner": 1} and launcher.left_down == ["other"]
        assert launcher.procs["sim"].poll() is None and launcher.procs["ctrl"].poll() is None
        launcher.kill_node("ctrl")
        assert launcher.supervise_once() == ["ctrl"]    # an essential node: the caller shuts down
        # a node stopped on purpose stays down
        launcher.stop_node("learner", grace=5.0)
        assert launcher.supervise_once() == ["ctrl"] and launcher.restarts == {"learner": 1}
    finally:
        launcher.shutdown(grace=2.0)


def test_respawn_waits_for_its_delay(monkeypatch):
    launcher, started = make_launcher(monkeypatch)
    launcher.specs[2].respawn_delay = 0.5
    try:
        launcher.start()
        launcher.kill_node("learner")
        launcher.supervise_once()
        assert launcher.procs["learner"].poll() is not None and "learner" not in launcher.restarts
        time.sleep(0.6)
        launcher.supervise_once()
        assert launcher.restarts == {"learner": 1} and launcher.procs["learner"].poll() is None
    finally:
        launcher.shutdown(grace=2.0)
