"""controller_node with ``tracking_trigger: state`` as a real process over DDS on loopback (its own
module: the graph fixture of test_ros_graph.py owns the rclpy context while it is alive)."""
from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest

import rclpy

from dmpc_core.tasks import ballbot  # noqa: E402

pytestmark = pytest.mark.ros
timing_sensitive = pytest.mark.flaky(reruns=2, reruns_delay=2)  # see test_ros_graph.py

CONFIG = os.path.join(os.path.dirname(__file__), "..", "..", "config", "ballbot_sim.yaml")
PERIOD = 1.0 / 400.0  # tracking period of config/ballbot_sim.yaml


@timing_sensitive
def test_state_triggered_tracking_ticks_per_state_and_watchdog(tmp_path):
    """tracking_trigger=state: a lone controller fed at 400 Hz computes a command from each state
    in the state callback (no schedule slot to wait for); when the stream stops, filler ticks
    send the safe command once the last state is older than watchdog_ticks periods."""
    from dmpc_ros.probe import running_graph

    stop = threading.Event()
    x = np.zeros(ballbot.NX)

    def feed(probe):
        nxt = time.monotonic()
        while not stop.is_set():
            probe.publish_state(x)
            nxt += PERIOD
            time.sleep(max(0.0, nxt - time.monotonic()))

    overrides = {"variant": "tracking", "learner": False, "nodes.controller.parameters.tracking_trigger": "state"}
    with running_graph(CONFIG, overrides, log_dir=str(tmp_path / "logs"), executables=["controller_node"],
                       on_start=lambda p: threading.Thread(target=feed, args=(p,), daemon=True).start()) as (_, probe, _):
        time.sleep(2.0)
        t0 = time.monotonic()
        time.sleep(2.0)
        rows = probe.info_rows(t0)
        stop.set()
        t_stop = time.monotonic()
        assert probe.wait_for(lambda: len(r := probe.info_rows(t_stop)) > 10 and np.all(r[-5:, 4] == 1), 5)
        after = probe.info_rows()
    assert np.all(np.isfinite(rows)) and np.all(np.diff(rows[:, 0]) == 1)
    ok = rows[rows[:, 4] == 0]
    assert len(ok) > 0.5 * len(rows)
    # in this mode the command that first uses a state is computed in that state's callback:
    # its recorded state age is the callback's own delay, far below a tracking period
    _, first = np.unique(ok[:, 3], return_index=True)
    assert np.median(ok[first, 7]) < 0.2 * PERIOD
    # after the stream stops: no command from a state older than 2 periods, then safe zeros
    used = after[after[:, 4] == 0]
    assert np.all(used[:, 7] <= 2 * PERIOD)
    assert np.all(after[-5:, 8:11] == 0.0)
