"""Plain-Python pieces behind the ROS nodes: critic gate, transitions, goal checks (signing, replay
and rollback: test_critic_gate.py, test_critic_signing.py)."""
from __future__ import annotations

import numpy as np
import pytest

from dmpc_core.critics.gate import CriticRejected, GateSettings, ProbeSet, validate_candidate
from dmpc_core.critics.learner import TRANSITION_FIELDS, CriticLearner, LearnerSettings
from dmpc_core.control.reach_mpc import (ReachMpc, ReachSettings, TransitionRecorder, check_goal, pack_rows,
                                        unpack_rows)
from dmpc_core.critics.signing import CriticHeader, sign_bundle
from dmpc_core.mpc import MpcSettings

PROBES = ProbeSet.uniform([3, 3, 1, .3, .3, 2, 2, 2, 2, 2], [5, 5], 9.0, 32, 0)
KEY = b"k" * 16


def _gate(blob, nx=10, settings=None):
    signed = sign_bundle(blob, KEY, CriticHeader("/learner", 1, "ballbot", "reach"))
    return validate_candidate(signed, KEY, nx, 2, PROBES, settings or GateSettings(), "t", robot="ballbot", task="reach")


@pytest.fixture(scope="module")
def bundle():
    return CriticLearner(LearnerSettings(), 10, 2, "ballbot").export()


def test_gate_accepts_good_and_names_the_problem_otherwise(bundle):
    c = _gate(bundle)
    assert c.version == 1 and c.signed and np.isfinite(c.max_abs_probe_value)
    with pytest.raises(CriticRejected, match="nx"):
        _gate(bundle, nx=4)
    with pytest.raises(CriticRejected, match="corrupt"):
        _gate(bundle[:200])
    with pytest.raises(CriticRejected, match="bound"):
        _gate(bundle, settings=GateSettings(max_abs_value=c.max_abs_probe_value / 2))


def test_gate_rejects_non_finite_critic_outputs():
    learner = CriticLearner(LearnerSettings(), 10, 2, "ballbot")
    import torch

    with torch.no_grad():
        for layer in learner.trainer.target.layers[:-1]:
            layer.bias.fill_(1e3)                         # tanh saturates at +1
        learner.trainer.target.layers[-1].weight.fill_(1e308)  # 12 x 1e308 overflows to inf
    with pytest.raises(CriticRejected, match="not finite|non-finite"):
        _gate(learner.export())


def test_goal_check():
    assert check_goal((1.0, -2.0), 5.0) is None
    assert "outside" in check_goal((6.0, 0.0), 5.0)
    assert "finite" in check_goal((np.nan, 0.0), 5.0)
    assert "finite" in check_goal((1.0, 2.0, 3.0), 5.0)


def test_transition_recorder_rows_and_layout_round_trip():
    s = ReachSettings(mpc=MpcSettings(horizon=20, dt=0.01))
    r = ReachMpc(s, (1.0, 0.0))
    rec = TransitionRecorder(0.01, 8.0)
    rows = []
    x = np.zeros(10)
    for k in range(13):  # 400 Hz samples -> one row per 10 ms
        x = x + 0.001
        row = rec.sample(k * 0.0025, x, np.ones(3), r.goal, r.stage_cost)
        rows += [row] if row is not None else []
    assert len(rows) == 3
    assert rows[0]["time_to_go"][0] == pytest.approx(8.0) and rows[0]["next_time_to_go"][0] == pytest.approx(7.99)
    assert rows[0]["cost"][0] == pytest.approx(r.stage_cost(0.0, rows[0]["state"], np.ones(3), 0.01))
    np.testing.assert_array_equal(rows[1]["state"], rows[0]["next_state"])
    # a plant reset (position jump) never becomes a transition
    assert rec.sample(1.0, x + np.r_[1.0, np.zeros(9)], np.ones(3), r.goal, r.stage_cost) is None
    mat = pack_rows(rows, 10, 2)
    assert mat.shape == (3, 26)
    back = unpack_rows(mat, 10, 2)
    assert list(back) == list(TRANSITION_FIELDS)
    np.testing.assert_array_equal(back["next_state"], np.array([r_["next_state"] for r_ in rows]))


def test_reach_mpc_with_critic_sets_time_to_go(bundle):
    from dmpc_core.critics.bundle import load_bundle

    # blend: the horizon's last node sees the episode's remaining time
    s = ReachSettings(mpc=MpcSettings(horizon=20, dt=0.01), episode_length=4.0, critic_mode="blend")
    r = ReachMpc(s, (1.0, 0.0), critic=load_bundle(bundle).to_native())
    assert r.value_term.t_goal == pytest.approx(4.2)
    r.set_episode(10.0, 3.0)
    assert r.value_term.t_goal == pytest.approx(13.2)
    # the Deep Value MPC actor (default): the episode ends at t_start + episode_length
    d = ReachMpc(ReachSettings(mpc=MpcSettings(horizon=20, dt=0.01), episode_length=4.0), (1.0, 0.0),
                 critic=load_bundle(bundle).to_native())
    assert d.dmpc and d.value_term.t_goal == pytest.approx(4.0) and d.value_running.t_goal == pytest.approx(4.0)
    d.set_episode(10.0, 3.0)
    assert d.value_term.t_goal == pytest.approx(13.0) and d.value_running.t_goal == pytest.approx(13.0)
    res = r.mpc.update(10.0, np.zeros(10))
    assert res.status in ("converged", "max_iterations") and np.all(np.isfinite(r.mpc.control(10.0, np.zeros(10))))
