"""The learner node's n-step / full-return targets (dmpc_core.critics.returns) against the rows
``dmpc train`` builds per episode, and the controller's end-of-episode rows (the termination
cost q_f and the tau = 0 row)."""
from __future__ import annotations

import numpy as np
import pytest

from dmpc_core.agents.deep_value_mpc import EpisodeResult, transitions
from dmpc_core.control.reach_mpc import ReachMpc, ReachSettings, TransitionRecorder
from dmpc_core.critics.returns import EpisodeReturns
from dmpc_core.experiments.ballbot_reach import reach_settings
from dmpc_core.mpc import MpcSettings
from dmpc_core.tasks.ballbot_walls import WallsTask


def _episode(rng, n, outcome="timeout"):
    task = WallsTask(reach_settings().task)
    xs = np.cumsum(rng.normal(scale=0.01, size=(n + 1, 10)), axis=0)
    goal = np.array([0.0, 0.8])
    costs = rng.uniform(0.01, 0.1, n)
    if outcome == "timeout":
        costs[-1] += task.terminal_cost(xs[-1], goal)
    ep = EpisodeResult(xs, costs, goal, outcome, float(np.hypot(*(xs[-1, :2] - goal))), 0.0, np.zeros(n))
    return task, ep


def _stream(er, rows, rng):
    """Feed ``rows`` (dict of arrays) in random batch splits; the stacked output rows."""
    n = len(rows["cost"])
    cuts = np.sort(rng.choice(np.arange(1, n), size=min(4, n - 1), replace=False))
    out = []
    for a, b in zip(np.r_[0, cuts], np.r_[cuts, n]):
        got = er.add({k: v[a:b] for k, v in rows.items()})
        if got is not None:
            out.append(got)
    return {k: np.concatenate([o[k] for o in out]) for k in rows} if out else None


@pytest.mark.parametrize("n_step", [3, 60, 1000])
def test_streamed_full_returns_equal_the_training_rows(n_step):
    """One-step rows of a whole episode, streamed in pieces, become exactly the n-step rows of
    ``dmpc train`` (deep_value_mpc.transitions), the q_f row at tau = 0 included."""
    rng = np.random.default_rng(n_step)
    task, ep = _episode(rng, task_steps := WallsTask(reach_settings().task).steps)
    assert task_steps == 60
    one = transitions(ep, task, n_step=1)
    want = transitions(ep, task, n_step=n_step)
    er = EpisodeReturns(n_step)
    got = _stream(er, one, rng)
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-12, atol=1e-12, err_msg=k)
    assert er.episodes_finished == 1 and er.episodes_cut == 0 and er.pending == 0


def test_cut_episode_bootstraps_and_a_short_gap_is_bridged():
    rng = np.random.default_rng(3)
    task, ep = _episode(rng, 30, outcome="fall")  # no tau = 0 end: a cut episode
    one = transitions(ep, task, n_step=1)
    one["done"][:] = 0.0  # streamed rows of an episode that is cut (reset) before its end
    er = EpisodeReturns(1000)
    assert er.add({k: v[:10] for k, v in one.items()}) is None
    # a dropped sample: rows 10 and 11 missing; the gap (0.1 s) is bridged at the previous row's cost rate
    assert er.add({k: v[12:] for k, v in one.items()}) is None
    assert er.pending == 28 and er.gaps_bridged == 1
    # a row of another goal ends the episode: its rows bootstrap from its last state
    other = {k: v[:1].copy() for k, v in one.items()}
    other["goal"] = other["goal"] + 1.0
    got = er.add(other)
    assert er.episodes_cut == 1 and len(got["cost"]) == 28
    total = one["cost"][:10].sum() + 2 * one["cost"][9] + one["cost"][12:].sum()
    assert got["cost"][0] == pytest.approx(total, rel=1e-12)
    np.testing.assert_array_equal(got["next_state"][0], one["next_state"][-1])
    assert np.all(got["done"] == 0.0) and got["next_time_to_go"][0] == pytest.approx(one["next_time_to_go"][-1])
    # a jump (reset) is never bridged
    er2 = EpisodeReturns(1000)
    er2.add({k: v[:5] for k, v in one.items()})
    jumped = {k: v[6:8].copy() for k, v in one.items()}
    jumped["state"][:, 0] += 1.0
    jumped["next_state"][:, 0] += 1.0
    er2.add(jumped)
    assert er2.gaps_bridged == 0 and er2.episodes_cut == 1 and er2.pending == 2
    with pytest.raises(ValueError, match="n_step"):
        EpisodeReturns(0)


def test_recorder_ends_the_episode_with_the_termination_cost():
    """Deep Value MPC mode: no row from samples at or after T; close() emits the last step with
    cost + q_f and done, and the tau = 0 row whose target is q_f."""
    s = ReachSettings(mpc=MpcSettings(horizon=20, dt=0.05), episode_length=0.2, critic_mode="dmpc")
    r = ReachMpc(s, (1.0, 0.0))
    rec = TransitionRecorder(0.05, 0.2, terminal=True)
    rows, x = [], np.zeros(10)
    for k in range(9):  # 400 Hz ticks up to 0.2 s
        x = x + 0.001
        row = rec.sample(k * 0.025, x, np.zeros(3), r.goal, r.stage_cost)
        rows += [row] if row is not None else []
    assert len(rows) == 3 and rows[-1]["done"][0] == 0.0  # the sample at 0.2 s makes no row
    xe = x + 0.001
    last, anchor = rec.close(0.205, xe, r.stage_cost, r.terminal_cost(xe))
    qf = 2.0 * np.hypot(xe[0] + 0.6 * xe[5] - 1.0, xe[1] + 0.6 * xe[6])
    assert r.terminal_cost(xe) == pytest.approx(qf)
    assert last["done"][0] == 1.0 and last["next_time_to_go"][0] == 0.0
    assert last["cost"][0] == pytest.approx(r.stage_cost(0.15, rows[-1]["next_state"], np.zeros(3), 0.055) + qf)
    np.testing.assert_array_equal(last["state"], rows[-1]["next_state"])
    assert anchor["time_to_go"][0] == 0.0 and anchor["cost"][0] == pytest.approx(qf)
    np.testing.assert_array_equal(anchor["state"], anchor["next_state"])
    assert rec.close(0.3, xe, r.stage_cost, 0.0) == []  # nothing pending after close
    # the blend mode has no termination cost and streams the problem's own stage cost
    assert ReachMpc(ReachSettings(mpc=MpcSettings(horizon=20, dt=0.05), critic_mode="blend"), (1.0, 0.0)).terminal_cost(xe) is None


def test_fall_penalty_ends_the_episode_only_when_set():
    """fall_penalty 0 (default): a fall cuts the episode (no failure cost, rows bootstrap);
    > 0: the recorder's last row carries it with done."""
    mpc = MpcSettings(horizon=20, dt=0.05)
    assert ReachMpc(ReachSettings(mpc=mpc), (1.0, 0.0)).failure_cost is None
    r = ReachMpc(ReachSettings(mpc=mpc, fall_penalty=10.0), (1.0, 0.0))
    assert r.failure_cost == 10.0
    rec = TransitionRecorder(0.05, 3.0, terminal=True)
    assert rec.fail(0.1, np.zeros(10), r.stage_cost, 10.0) == []  # nothing pending
    rec.sample(0.0, np.zeros(10), np.zeros(3), r.goal, r.stage_cost)
    (row,) = rec.fail(0.03, np.full(10, 0.01), r.stage_cost, 10.0)
    assert row["done"][0] == 1.0 and row["cost"][0] == pytest.approx(10.0 + 0.03 * 1.0)
    assert row["next_time_to_go"][0] == pytest.approx(2.97)
