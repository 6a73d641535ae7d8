"""The highest critic version per learner survives a controller restart (a state file written
atomically at every install): a captured old signed critic stays stale, the critic last run is
accepted again byte for byte, and a corrupt file refuses every critic instead of forgetting."""
from __future__ import annotations

import json
import os

import pytest
import torch

from dmpc_core.control.critic_source import CriticWorker
from dmpc_core.critics.gate import (CriticRejected, CriticStore, GateSettings, ProbeSet, VersionFileError,
                                    read_version_file, validate_candidate)
from dmpc_core.critics.learner import CriticLearner, LearnerSettings
from dmpc_core.critics.signing import CriticHeader, sign_bundle

KEY = b"versions-test-key-0123456789"
PROBES = ProbeSet.uniform([3, 3, 1, .3, .3, 2, 2, 2, 2, 2], [5, 5], 9.0, 8, 0)
LEARNER = "/dmpc_learner"


@pytest.fixture(scope="module")
def exports():
    """Bundles v1, v2, v3 of one learner, with distinct weights."""
    learner = CriticLearner(LearnerSettings(), 10, 2, "ballbot")
    out = []
    for _ in range(3):
        with torch.no_grad():
            learner.trainer.target.layers[-1].bias.add_(0.25)
        out.append(learner.export())
    return out


def sign(data, version):
    return sign_bundle(data, KEY, CriticHeader(LEARNER, version, "ballbot", "reach"))


def gate(blob, store):
    return validate_candidate(blob, KEY, 10, 2, PROBES, GateSettings(num_probes=8), "t", robot="ballbot", task="reach",
                              store=store)


def test_versions_persist_across_a_restart(exports, tmp_path):
    path = str(tmp_path / "state" / "versions.json")
    s = CriticStore(state_file=path)
    assert s.latest == {} and not os.path.exists(path)  # first start: nothing accepted yet
    s.install(gate(sign(exports[0], 1), s))
    s.install(gate(sign(exports[1], 2), s))
    assert read_version_file(path)[LEARNER]["version"] == 2
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert [f for f in os.listdir(tmp_path / "state")] == ["versions.json"]  # no temp file left

    restarted = CriticStore(state_file=path)
    assert restarted.latest == {LEARNER: 2}
    with pytest.raises(CriticRejected, match="stale"):      # the captured old critic, replayed
        gate(sign(exports[0], 1), restarted)
    with pytest.raises(CriticRejected, match="stale"):      # version 2 with other bytes
        gate(sign(exports[2], 2), restarted)
    # the critic it last ran (the learner's latest bundle, re-sent to a new subscriber): accepted once
    restarted.install(gate(sign(exports[1], 2), restarted))
    assert restarted.active.version == 2
    with pytest.raises(CriticRejected, match="stale"):
        gate(sign(exports[1], 2), restarted)
    restarted.install(gate(sign(exports[2], 3), restarted))
    assert CriticStore(state_file=path).latest == {LEARNER: 3}


def test_without_a_state_file_a_restart_forgets(exports):
    """What the state file prevents: a store in memory only accepts the old critic again."""
    s = CriticStore()
    s.install(gate(sign(exports[1], 2), s))
    assert CriticStore().latest == {}
    gate(sign(exports[0], 1), CriticStore())  # accepted: no memory of version 2


@pytest.mark.parametrize("content", [b"{not json", b"\xff\xfe", json.dumps({"format": "other", "learners": {}}).encode(),
                                     json.dumps({"format": "dmpc-critic-versions/1", "learners": {"/l": {"version": "2"}}}).encode(),
                                     json.dumps({"format": "dmpc-critic-versions/1", "learners": {"/l": {"version": -1, "sha256": ""}}}).encode(),
                                     json.dumps({"format": "dmpc-critic-versions/1", "learners": []}).encode(),
                                     b"x" * (2 << 20)])
def test_a_corrupt_state_file_is_a_clear_error(tmp_path, content):
    path = tmp_path / "versions.json"
    path.write_bytes(content)
    with pytest.raises(VersionFileError, match=str(path)):
        CriticStore(state_file=str(path))


def test_worker_refuses_every_critic_while_the_state_file_is_corrupt(exports, tmp_path):
    path = tmp_path / "versions.json"
    path.write_bytes(b"\x00garbage")
    installed = []
    w = CriticWorker(KEY, "ballbot", "reach", 10, 2, PROBES, GateSettings(num_probes=8), installed.append,
                     state_file=str(path))
    assert "versions.json" in w.disabled
    for kind, arg in (("bytes", sign(exports[2], 3)), ("rollback", None)):
        ok, msg = w.handle(kind, arg)
        assert not ok and "repaired or removed" in msg
    assert installed == [] and path.read_bytes() == b"\x00garbage"  # nothing installed, file untouched
    path.unlink()  # the operator removes it: a new worker (the node's next configure) accepts again
    w = CriticWorker(KEY, "ballbot", "reach", 10, 2, PROBES, GateSettings(num_probes=8), installed.append,
                     state_file=str(path))
    assert w.handle("bytes", sign(exports[0], 1))[0] and [c.version for c in installed] == [1]


def test_worker_puts_the_bound_on_disk_before_the_critic_can_run(exports, tmp_path):
    """The version file holds the new bound before ``install`` is called; if installing fails,
    the running store may retry the same critic, and a restarted one refuses it (safe side)."""
    path = str(tmp_path / "versions.json")
    seen = []

    def install(cand):
        seen.append(read_version_file(path).get(LEARNER, {}).get("version"))
        if len(seen) == 1:
            raise RuntimeError("MPC build failed")

    w = CriticWorker(KEY, "ballbot", "reach", 10, 2, PROBES, GateSettings(num_probes=8), install, state_file=path)
    assert not w.handle("bytes", sign(exports[0], 1))[0]
    assert seen == [1] and w.store.latest == {}
    assert w.handle("bytes", sign(exports[0], 1))[0] and w.store.latest == {LEARNER: 1}


def test_worker_takes_signature_and_size_policy_from_the_gate_settings(exports):
    """One source of truth: GateSettings.allow_unsigned / max_bundle_bytes drive both the
    pre-check and the gate."""
    installed = []
    w = CriticWorker(None, "ballbot", "reach", 10, 2, PROBES, GateSettings(num_probes=8), installed.append)
    ok, msg = w.handle("bytes", exports[0])
    assert not ok and "gate.allow_unsigned" in msg
    w = CriticWorker(None, "ballbot", "reach", 10, 2, PROBES, GateSettings(num_probes=8, allow_unsigned=True), installed.append)
    assert w.handle("bytes", exports[0])[0]
    w = CriticWorker(KEY, "ballbot", "reach", 10, 2, PROBES, GateSettings(num_probes=8, max_bundle_bytes=1000), installed.append)
    ok, msg = w.handle("bytes", sign(exports[1], 2))
    assert not ok and "limit of 1000" in msg
