"""Critic gate and store: signed header checks, per-learner version order (no replay), rollback to
the previous distinct critic, unsigned policy, and one error type out of the gate."""
from __future__ import annotations

import struct

import numpy as np
import pytest
import torch

from dmpc_core.critics import gate as gate_mod
from dmpc_core.critics.gate import UNSIGNED, CriticRejected, CriticStore, GateSettings, ProbeSet, validate_candidate
from dmpc_core.critics.learner import CriticLearner, LearnerSettings
from dmpc_core.critics.signing import CriticHeader, sign_bundle

KEY = b"gate-test-key-0123456789"
PROBES = ProbeSet.uniform([3, 3, 1, .3, .3, 2, 2, 2, 2, 2], [5, 5], 9.0, 16, 0)
ROBOT, TASK = "ballbot", "reach"


@pytest.fixture(scope="module")
def exports():
    """Bundles v1..v4 of one learner: v1, v2, v3 with distinct weights, v4 with v3's weights."""
    learner = CriticLearner(LearnerSettings(), 10, 2, ROBOT)
    out = []
    for k in range(4):
        if k in (1, 2):
            with torch.no_grad():
                learner.trainer.target.layers[-1].bias.add_(0.25)
        out.append(learner.export())
    return out


def sign(data, version, learner="/dmpc_learner", robot=ROBOT, task=TASK):
    return sign_bundle(data, KEY, CriticHeader(learner, version, robot, task))


def gate(blob, store=None, settings=None, key=KEY, source="t"):
    return validate_candidate(blob, key, 10, 2, PROBES, settings or GateSettings(), source,
                              robot=ROBOT, task=TASK, store=store)


def test_replayed_older_or_same_version_is_rejected_as_stale(exports):
    s = CriticStore()
    s.install(gate(sign(exports[1], 2), s))
    for old in (sign(exports[0], 1), sign(exports[1], 2)):   # captured from the topic and re-published
        with pytest.raises(CriticRejected, match="stale critic"):
            gate(old, s)
    assert s.active.version == 2 and s.swaps == 1
    c = gate(sign(exports[2], 3), s)
    s.install(c)
    assert s.active.version == 3 and s.active.learner == "/dmpc_learner" and s.active.signed
    # versions are ordered per learner identity: another learner starts its own sequence
    s.install(gate(sign(exports[0], 1, learner="/second_learner"), s))
    assert s.latest == {"/dmpc_learner": 3, "/second_learner": 1}


def test_install_rechecks_freshness_atomically(exports):
    """Two candidates validated before either is installed: only the newer one can land last."""
    s = CriticStore()
    c2 = gate(sign(exports[1], 2), s)
    c3 = gate(sign(exports[2], 3), s)
    s.install(c3)
    with pytest.raises(CriticRejected, match="stale"):
        s.install(c2)
    assert s.active is c3


def test_header_must_match_controller_and_bundle(exports):
    with pytest.raises(CriticRejected, match="signed for robot 'panda'"):
        gate(sign(exports[0], 1, robot="panda"))
    with pytest.raises(CriticRejected, match="task 'walls'"):
        gate(sign(exports[0], 1, task="walls"))
    with pytest.raises(CriticRejected, match="header says version 9 but the bundle is dmpc.version=1"):
        gate(sign(exports[0], 9))


def test_unsigned_critics_need_allow_unsigned(exports):
    with pytest.raises(CriticRejected, match="unsigned"):
        gate(exports[0])
    with pytest.raises(CriticRejected, match="unsigned"):
        gate(exports[0], key=None)
    s = CriticStore()
    c = gate(exports[1], s, GateSettings(allow_unsigned=True), key=None)
    assert c.learner == UNSIGNED and not c.signed and c.version == 2
    s.install(c)
    with pytest.raises(CriticRejected, match="stale"):               # unsigned ones are ordered too
        gate(exports[0], s, GateSettings(allow_unsigned=True), key=None)


def test_rollback_returns_to_the_previous_distinct_critic(exports):
    s = CriticStore()
    a, b = gate(sign(exports[0], 1), s, source="a"), gate(sign(exports[1], 2), s, source="b")
    s.install(a)
    s.install(b)
    with pytest.raises(CriticRejected, match="stale"):   # a reload of the active critic's file
        s.install(gate(sign(exports[1], 2)))
    assert s.rollback().source == "a" and s.rollback() is None
    # v4 has v3's weights: rolling back from v4 skips v3 (same function) and lands on v2
    s = CriticStore()
    for k in range(4):
        s.install(gate(sign(exports[k], k + 1), s, source=f"v{k + 1}"))
    v4 = s.active
    assert v4.bundle.weights_sha256 == s.history[-1].bundle.weights_sha256
    back = s.rollback()
    assert back.source == "v2" and back.bundle.weights_sha256 != v4.bundle.weights_sha256
    assert s.rollback().source == "v1" and s.rollback() is None
    with pytest.raises(CriticRejected, match="stale"):   # rolled-back-from versions stay refused
        s.check_fresh("/dmpc_learner", 4)


@pytest.mark.parametrize("where,exc", [("load_bundle", TypeError("can only concatenate str")),
                                       ("load_bundle", MemoryError()),
                                       ("verify", struct.error("unpack requires a buffer"))])
def test_any_failure_leaves_the_gate_as_critic_rejected(exports, monkeypatch, where, exc):
    def boom(*a, **k):
        raise exc

    monkeypatch.setattr(gate_mod, where, boom)
    with pytest.raises(CriticRejected):
        gate(sign(exports[0], 1))


def test_evaluator_failures_and_wrong_types_are_critic_rejected(exports, monkeypatch):
    from dmpc_core.critics.bundle import CriticBundle

    def broken_native(self):
        raise RuntimeError("CriticMLP: bad sizes")

    monkeypatch.setattr(CriticBundle, "to_native", broken_native)
    with pytest.raises(CriticRejected, match="bad sizes"):
        gate(sign(exports[0], 1))
    for blob in (None, "text", 12, [1, 2]):
        with pytest.raises(CriticRejected, match="must be bytes"):
            gate(blob)
    with pytest.raises(CriticRejected, match="above the limit"):
        gate(sign(exports[0], 1), settings=GateSettings(max_bundle_bytes=1000))


def test_gate_settings_validate():
    GateSettings().validate()
    for bad in (dict(allow_unsigned="yes"), dict(max_bundle_bytes=0), dict(max_abs_value=0.0)):
        with pytest.raises(ValueError):
            GateSettings(**bad).validate()
    assert np.isfinite(GateSettings().max_abs_value)
