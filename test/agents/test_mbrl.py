"""The model-based RL agent's versions: what data each collects, refits, open-loop vs MPC, solvers."""
from __future__ import annotations

import numpy as np
import pytest

from dmpc_core.agents.mbrl import MbrlAgent, MbrlSettings


def _small(version: str, solver: str = "mppi", rollout_mode: str = "ts") -> MbrlSettings:
    s = MbrlSettings(version=version, solver=solver, rollout_mode=rollout_mode, random_transitions=40,
                     random_transitions_v05=60, random_rollout_steps=10, open_loop_iterations=2)
    s.task.episode_seconds = 0.5  # 10 steps
    s.mppi.horizon = 8
    s.slq.horizon = 8
    s.slq.initial_iterations = 3
    s.model.num_members = 2
    s.model.hidden = (8,)
    s.model.gradient_steps = 10
    s.model.refit_gradient_steps = 5
    return s


@pytest.mark.parametrize("version,solver,mode", [("0.5", "mppi", "ts"), ("1.0", "mppi", "average"), ("1.5", "mppi", "ts"),
                                                  ("1.5", "mppi", "mean"), ("1.5", "slq", "ts"), ("true", "mppi", "ts"),
                                                  ("true", "slq", "ts"), ("true_open_loop", "mppi", "ts")])
def test_versions_collect_and_refit_as_specified(version, solver, mode):
    agent = MbrlAgent(_small(version, solver, mode), seed=1)
    start = {"0.5": 60, "1.0": 40, "1.5": 40}.get(version, 0)
    assert agent.num_transitions == start and agent.fits == (0 if version.startswith("true") else 1)
    st = agent.run_episode(np.array([np.pi - 0.3, 0.0]))
    grows = version in ("1.0", "1.5")
    assert st["data/transitions"] == start + (10 if grows else 0)
    assert agent.fits == (2 if grows else (0 if version.startswith("true") else 1))
    assert np.isfinite(st["train/episode_cost"]) and st["train/episode_cost"] > 0
    if not version.startswith("true"):
        assert st["model/disagreement"] > 0  # two members fitted on different bootstrap samples
    # an evaluation episode adds no data
    agent.run_episode(np.array([1.0, 0.0]), learn=False)
    assert agent.num_transitions == start + (10 if grows else 0)
    assert agent.timing["plan_calls"] == (2 if version in ("0.5", "1.0", "true_open_loop") else 20)


@pytest.mark.parametrize("planner", ["receding", "mppi"])
def test_open_loop_plans_run_without_feedback(planner):
    """The open-loop versions execute a plan made in the model only: the plant's states never
    reach the planner. With the true model and the receding planner the plan reproduces the MPC
    episode (same solver seeds, the planner's RK4 = the plant's RK4 to rounding)."""
    s = _small("true_open_loop")
    s.open_loop_planner = planner
    agent = MbrlAgent(s, seed=3)
    x0 = np.array([np.pi - 0.3, 0.0])
    plan = agent.plan_open_loop(x0, seed=7)
    assert plan.shape == (10, 1) and np.all(np.abs(plan) <= s.task.u_max)
    if planner == "receding":
        mpc = MbrlAgent(_small("true"), seed=3)
        solver = mpc._mppi(7, s.mppi.horizon, s.mppi.num_iterations)
        x = mpc.plant.reset(x0)
        for k in range(10):
            solver.set_state(x, 0.0)
            solver.optimize()
            u = np.clip(np.array(solver.action_from_policy()), -s.task.u_max, s.task.u_max)
            solver.shift(1)
            assert abs(u[0] - plan[k, 0]) < 1e-9, k
            _, x = mpc.plant.step(u)
    # the episode executes exactly that plan
    agent2 = MbrlAgent(s, seed=3)
    agent2.plan_open_loop = lambda x, seed: plan
    cost = agent2.run_episode(x0, learn=False)["train/episode_cost"]
    agent2.plant.reset(x0)
    ref = sum(agent2.plant.step(plan[k])[0] for k in range(10))
    assert cost == pytest.approx(ref, rel=1e-12)
    st = MbrlAgent(s, seed=3).run_episode(x0, learn=False)
    if planner == "receding":  # the true model predicts the plant: it never leaves the imagined path
        assert st["model/open_loop_departure_s"] == pytest.approx(10 * s.task.dt)
    else:
        assert "model/open_loop_departure_s" not in st


def test_bad_settings_are_refused():
    for field, value in (("version", "2.0"), ("solver", "ilqr"), ("rollout_mode", "max"),
                         ("open_loop_planner", "cem")):
        s = _small("1.5")
        setattr(s, field, value)
        with pytest.raises(ValueError, match=field):
            MbrlAgent(s)
    s = _small("1.5")
    s.model.integrator = "leapfrog"
    with pytest.raises(ValueError, match="integrator"):
        MbrlAgent(s)


def test_departure_from_the_imagined_path_wraps_the_angle():
    from dmpc_core.agents.mbrl import _departed

    assert not _departed(np.array([np.pi - 0.1, 0.0]), np.array([-np.pi + 0.1, 0.0]))  # 0.2 rad apart across pi
    assert _departed(np.array([0.4, 0.0]), np.array([0.0, 0.0]))
    assert _departed(np.array([0.0, 1.5]), np.array([0.0, 0.0]))
    assert not _departed(np.array([0.2, 0.5]), np.array([0.0, 0.0]))
