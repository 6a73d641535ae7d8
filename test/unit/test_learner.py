"""CriticLearner: the shared learning half of Algorithm 1."""
from __future__ import annotations

import numpy as np
import pytest

from dmpc_core.critics.learner import CriticLearner, LearnerSettings
from dmpc_core.critics.bundle import load_bundle
from dmpc_core.critics.checkpoint import CheckpointError


def batch(rng, n, nx=4, ng=2):
    return dict(state=rng.standard_normal((n, nx)), goal=rng.standard_normal((n, ng)),
                time_to_go=rng.uniform(0, 3, n), cost=rng.uniform(0, 1, n),
                next_state=rng.standard_normal((n, nx)), next_time_to_go=rng.uniform(0, 3, n),
                done=(rng.uniform(size=n) < 0.1).astype(float))


def test_nonfinite_rows_are_dropped_and_updates_wait_for_data(tmp_path):
    rng = np.random.default_rng(0)
    learner = CriticLearner(LearnerSettings(min_transitions=50, fit_normalization_at=50), 4, 2, "test")
    b = batch(rng, 40)
    b["cost"][5] = np.nan
    b["state"][7, 1] = np.inf
    assert learner.add(**b) == 38
    assert learner.update() == {}
    learner.add(**batch(rng, 40))
    stats = learner.update()
    assert stats["critic/gradient_steps"] == learner.settings.trainer.batches_per_update
    assert learner.normalization_fitted
    bundle = load_bundle(learner.export(), expected_nx=4, expected_ng=2)
    assert bundle.metadata["dmpc.robot"] == "test"


def test_outlier_costs_are_dropped_counted_and_checkpointed(tmp_path):
    rng = np.random.default_rng(3)
    learner = CriticLearner(LearnerSettings(min_transitions=10, max_abs_cost=10.0), 4, 2)
    b = batch(rng, 30)
    b["cost"][[2, 11]] = [2e8, -50.0]   # a diverged plant's step costs
    b["cost"][20] = np.nan
    assert learner.add(**b) == 27
    assert learner.transitions_rejected == 3
    assert np.all(np.abs(learner.buffer.valid()["cost"]) <= 10.0)
    learner.save(tmp_path / "c.pt")
    other = CriticLearner(LearnerSettings(min_transitions=10, max_abs_cost=10.0), 4, 2)
    other.load(tmp_path / "c.pt")
    assert other.transitions_rejected == 3
    with pytest.raises(ValueError, match="max_abs_cost"):
        CriticLearner(LearnerSettings(max_abs_cost=0.0), 4, 2)


def test_checkpoint_round_trip_keeps_buffer_and_rejects_corruption(tmp_path):
    rng = np.random.default_rng(1)
    learner = CriticLearner(LearnerSettings(min_transitions=10), 4, 2)
    learner.add(**batch(rng, 120))
    learner.update()
    path = tmp_path / "ckpt.pt"
    learner.save(path)
    other = CriticLearner(LearnerSettings(min_transitions=10), 4, 2)
    other.load(path)
    assert len(other.buffer) == 120 and other.transitions_seen == 120
    np.testing.assert_array_equal(other.buffer.valid()["state"], learner.buffer.valid()["state"])
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        other.load(path)
