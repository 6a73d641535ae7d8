"""The Ballbot graph with the MPPI solver selected in the config (real node processes over DDS on
loopback, as test_ros_graph.py): sim + controller, no learner."""
from __future__ import annotations

import os
import time

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")

from dmpc_core.tasks import ballbot  # noqa: E402

pytestmark = pytest.mark.ros

CONFIG = os.path.join(os.path.dirname(__file__), "..", "..", "config", "ballbot_sim.yaml")
CTRL = "ballbot_controller"
GOAL = (0.6, 0.0)


@pytest.mark.flaky(reruns=2, reruns_delay=2)  # 400 Hz processes on a shared machine, see test_ros_graph.py
def test_ballbot_graph_runs_with_mppi(tmp_path):
    from dmpc_ros.probe import running_graph

    overrides = {
        "variant": "tracking",  # MPPI on the goal-tracking problem (no critic here)
        "learner": False,
        "nodes.sim.parameters.random_start": False,
        "nodes.controller.parameters.reach.mpc.solver": "mppi",
        "nodes.controller.parameters.reach.mpc.horizon": 25,
        "nodes.controller.parameters.reach.mpc.dt": 0.02,
    }
    with running_graph(CONFIG, overrides, log_dir=str(tmp_path / "logs"), domain_ids=(101, 200)) as (_, probe, _):
        assert probe.wait_for(lambda: probe.diag_value(CTRL, "solver") == "mppi", 10), probe.diag_value(CTRL, "solver")
        # the robot may have fallen in the simulator while the controller started: start upright
        res = probe.call_trigger("/ballbot_sim/reset", timeout=10.0)
        assert res is not None and res.success, res
        assert probe.wait_for(lambda: probe.latest_state() is not None, 10), "no state reached the probe"
        time.sleep(0.5)
        x0 = probe.latest_state().copy()
        t_start = time.monotonic()
        probe.send_goal(GOAL)
        time.sleep(4.0)
        rows = probe.info_rows(t_start)
        assert len(rows) > 400, len(rows)
        assert np.all(np.isfinite(rows)), "non-finite command"
        # (safe ticks: the watchdog when states arrive late on a loaded machine; a few % seen)
        assert np.mean(rows[:, 4] == 0) > 0.5, "mostly safe commands: the MPPI policy was not used"
        xs = np.array([x for t, x in list(probe.states) if t >= t_start])
        assert np.all(ballbot.tilt(xs) < np.deg2rad(10)), f"tilted {np.rad2deg(ballbot.tilt(xs).max()):.1f} deg"
        d0 = np.hypot(x0[0] - GOAL[0], x0[1] - GOAL[1])
        d = np.hypot(xs[-1, 0] - GOAL[0], xs[-1, 1] - GOAL[1])
        assert d < d0 - 0.15, f"did not move towards the goal: {d0:.2f} m -> {d:.2f} m"
        assert float(probe.diag_value(CTRL, "mpc_rate_hz")) > 0
        assert probe.diag_value(CTRL, "goal") == f"{GOAL[0]:.3f},{GOAL[1]:.3f}"


@pytest.mark.parametrize("robot, solver, message", [
    ("ballbot", "ilqr", "solver must be one of"),
    ("panda", "mppi", "not supported for the Franka Panda"),
])
def test_controller_node_rejects_a_bad_solver_at_startup(robot, solver, message):
    """An unknown solver name, or MPPI for the Panda, stops the node in its constructor with a
    clear error (before any thread starts)."""
    from rclpy.parameter import Parameter

    from dmpc_core.settings import ConfigError
    from dmpc_ros.controller_node import ControllerNode

    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        with pytest.raises(ConfigError, match=message):
            ControllerNode(context=context, parameter_overrides=[Parameter("robot", value=robot),
                                                                 Parameter("reach.mpc.solver", value=solver)])
    finally:
        rclpy.shutdown(context=context)
