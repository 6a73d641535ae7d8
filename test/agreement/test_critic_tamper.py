"""Tampered critic bundles: the whole-model hash refuses each edit, and onnxruntime never runs a
received graph (it runs the one rebuilt from the validated weights, the function the native
evaluator computes), even when the editor recomputed the hash."""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import helper, numpy_helper

from dmpc_core.critics import CriticBundleError, OrtCritic, ValueMLP, ValueMLPSettings, bundle_bytes, load_bundle
from dmpc_core.critics.export import HASH_KEY, content_sha256
from dmpc_core.critics.gate import CriticRejected, GateSettings, ProbeSet, validate_candidate
from dmpc_core.critics.signing import CriticHeader, sign_bundle

NX, NG = 4, 2


@pytest.fixture(scope="module")
def good():
    torch.manual_seed(3)
    model = ValueMLP(ValueMLPSettings(nx=NX, ng=NG, hidden=(12, 12, 12)))
    model.set_input_normalization(torch.linspace(-0.5, 0.5, NX + NG + 1, dtype=torch.float64),
                                  torch.linspace(0.6, 1.8, NX + NG + 1, dtype=torch.float64))
    model.set_output_affine(1.7, -0.3)
    return bundle_bytes(model, robot="ballbot", version=3, discount=0.99)


@pytest.fixture(scope="module")
def inputs():
    rng = np.random.default_rng(0)
    return rng.normal(size=(5, NX)), rng.normal(size=(5, NG)), rng.uniform(0, 3, size=(5, 1))


def _redirect_output(proto, name):
    """Rename the node output feeding graph output ``name`` to ``name_raw``; returns that name."""
    node = next(n for n in proto.graph.node if name in n.output)
    node.output[list(node.output).index(name)] = f"{name}_raw"
    return f"{name}_raw"


def constant_mul(proto):
    """value -> 2 * value (a Constant and a Mul node)."""
    raw = _redirect_output(proto, "value")
    two = numpy_helper.from_array(np.array(2.0), "two_t")
    proto.graph.node.extend([helper.make_node("Constant", [], ["two"], value=two),
                             helper.make_node("Mul", [raw, "two"], ["value"])])


def neg_gradient(proto):
    """dvalue_dx -> -dvalue_dx (a Neg node)."""
    raw = _redirect_output(proto, "dvalue_dx")
    proto.graph.node.append(helper.make_node("Neg", [raw], ["dvalue_dx"]))


def swapped_initializer(proto):
    """The graph reads layers.2.weight where it read layers.1.weight and vice versa (both 12 x 12;
    the initializers themselves are unchanged)."""
    swap = {"layers.1.weight": "layers.2.weight", "layers.2.weight": "layers.1.weight"}
    for n in proto.graph.node:
        for i, v in enumerate(n.input):
            if v in swap:
                n.input[i] = swap[v]


def altered_metadata(proto):
    for p in proto.metadata_props:
        if p.key == "dmpc.discount":
            p.value = "0.5"


GRAPH_EDITS = [constant_mul, neg_gradient, swapped_initializer]


def _edited(good, edit, rehash):
    proto = onnx.load_from_string(good)
    edit(proto)
    if rehash:
        digest = content_sha256(proto)
        for p in proto.metadata_props:
            if p.key == HASH_KEY:
                p.value = digest
    return proto.SerializeToString()


def _run(model_bytes, x, g, t):
    sess = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {"state": x, "goal": g, "time_to_go": t})))


@pytest.mark.parametrize("edit", [*GRAPH_EDITS, altered_metadata], ids=lambda f: f.__name__)
def test_each_edit_is_refused_by_the_whole_model_hash(good, edit):
    with pytest.raises(CriticBundleError, match="content hash mismatch"):
        load_bundle(_edited(good, edit, rehash=False), expected_nx=NX, expected_ng=NG)


@pytest.mark.parametrize("edit", GRAPH_EDITS, ids=lambda f: f.__name__)
def test_rehashed_graph_edits_never_reach_onnxruntime(good, inputs, edit):
    """An editor who recomputes the hash gets a bundle that loads (only the HMAC can refuse it),
    but onnxruntime evaluates the rebuilt graph: the native evaluator's numbers, not the edit's."""
    x, g, t = inputs
    tampered = _edited(good, edit, rehash=True)
    bundle = load_bundle(tampered, expected_nx=NX, expected_ng=NG)
    original = _run(good, x, g, t)
    direct = _run(bundle.model_bytes, x, g, t)        # what running the received graph would give
    assert any(not np.allclose(direct[k], original[k]) for k in original), "the edit changes nothing"
    got = OrtCritic(bundle).evaluate_batch(x, g, t)
    native = bundle.to_native()
    for b in range(len(x)):
        native.set_goal(g[b])
        d = native.derivatives(float(t[b, 0]), x[b])
        np.testing.assert_allclose(got["value"][b], d["V"], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(got["dvalue_dx"][b], np.asarray(d["Vx"]), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(got["d2value_dx2"][b], np.asarray(d["Vxx"]), rtol=1e-9, atol=1e-12)
    for k in original:
        np.testing.assert_allclose(got[k], original[k], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("edit", [*GRAPH_EDITS, altered_metadata], ids=lambda f: f.__name__)
def test_signed_critic_edited_and_rehashed_fails_the_mac(good, edit):
    key = b"tamper-test-key-0123"
    header = CriticHeader("/dmpc_learner", 3, "ballbot", "reach")
    tail = sign_bundle(good, key, header)[len(good):]
    probes = ProbeSet.uniform([1] * NX, [1] * NG, 3.0, 4, 0)
    ok = validate_candidate(good + tail, key, NX, NG, probes, GateSettings(), robot="ballbot", task="reach")
    assert ok.signed and ok.version == 3
    with pytest.raises(CriticRejected, match="does not verify"):
        validate_candidate(_edited(good, edit, rehash=True) + tail, key, NX, NG, probes, GateSettings(),
                           robot="ballbot", task="reach")


def test_session_build_failures_are_loader_errors(good, monkeypatch):
    b = load_bundle(good, expected_nx=NX, expected_ng=NG)

    def broken_export(*a, **k):
        raise RuntimeError("exporter failed")

    monkeypatch.setattr("dmpc_core.critics.export.export_value_bundle_proto", broken_export)
    with pytest.raises(CriticBundleError, match="exporter failed"):
        OrtCritic(b)
