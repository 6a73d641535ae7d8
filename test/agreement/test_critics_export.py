"""Critic bundles: torch autograd vs onnxruntime agreement, loader rejections, native path."""
import numpy as np
import onnx
import pytest
import torch
from onnx import helper, numpy_helper
from torch.autograd.functional import hessian, jacobian

from dmpc_core import _core
from dmpc_core.critics import (
    CriticBundleError,
    NativeCriticUnavailable,
    OrtCritic,
    OrtCriticAdapter,
    QMLP,
    QMLPSettings,
    ValueEnsemble,
    ValueEnsembleSettings,
    ValueMLP,
    ValueMLPSettings,
    bundle_bytes,
    export_value_bundle,
    load_bundle,
)
from dmpc_core.critics.export import content_sha256

NX = 4
RTOL = 1e-6


def _randomize(model, nz, rng):
    """Non-trivial normalisation and output map, so every buffer takes part in the check."""
    mean = torch.from_numpy(rng.normal(size=nz))
    std = torch.from_numpy(rng.uniform(0.5, 2.0, size=nz))
    model.set_input_normalization(mean, std)
    model.set_output_affine(1.7, -0.3)


def _inputs(rng, batch, nx, ng):
    x = rng.normal(size=(batch, nx))
    g = rng.normal(size=(batch, ng)) if ng else None
    t = rng.uniform(0.0, 3.0, size=(batch, 1))
    return x, g, t


def _autograd_reference(model, x, g, t):
    """Per-sample torch.autograd Jacobian/Hessian of the model's plain forward w.r.t. (x, tau)."""
    nx = x.shape[1]
    out = {k: [] for k in ("value", "dvalue_dx", "d2value_dx2", "dvalue_dt", "d2value_dtdx")}
    for b in range(x.shape[0]):
        gb = None if g is None else torch.from_numpy(g[b : b + 1])

        def f(p):
            return model(p[:nx].unsqueeze(0), gb, p[nx:].unsqueeze(0))[0]

        p = torch.from_numpy(np.concatenate([x[b], t[b]]))
        jac = jacobian(f, p)
        hes = hessian(f, p)
        out["value"].append(float(f(p).detach()))
        out["dvalue_dx"].append(jac[:nx].numpy())
        out["d2value_dx2"].append(hes[:nx, :nx].numpy())
        out["dvalue_dt"].append(float(jac[nx]))
        out["d2value_dtdx"].append(hes[nx, :nx].numpy())
    return {k: np.array(v) for k, v in out.items()}


def _assert_close(got, ref, what):
    scale = max(1.0, float(np.max(np.abs(ref))))
    err = float(np.max(np.abs(got - ref)))
    assert got.shape == ref.shape, f"{what}: shape {got.shape} vs {ref.shape}"
    assert err <= RTOL * scale, f"{what}: max error {err:.3e} > {RTOL} x {scale:.3e}"


@pytest.mark.parametrize("hidden", [(12, 12, 12), (32, 32), (5,)])
@pytest.mark.parametrize("ng", [0, 2])
def test_value_bundle_matches_autograd(tmp_path, hidden, ng):
    torch.manual_seed(len(hidden) * 10 + ng)
    rng = np.random.default_rng(ng + len(hidden))
    model = ValueMLP(ValueMLPSettings(nx=NX, ng=ng, hidden=hidden))
    _randomize(model, NX + ng + 1, rng)
    path = tmp_path / "critic.onnx"
    export_value_bundle(model, path, discount=0.99, version=3, training_step=120, robot="ballbot")
    bundle = load_bundle(path, expected_nx=NX, expected_ng=ng)
    assert (bundle.kind, bundle.nx, bundle.ng, bundle.hidden) == ("value", NX, ng, hidden)
    assert (bundle.version, bundle.training_step, bundle.robot) == (3, 120, "ballbot")
    assert bundle.discount == 0.99 and bundle.native_supported
    x, g, t = _inputs(rng, 9, NX, ng)
    got = OrtCritic(bundle).evaluate_batch(x, g, t)
    ref = _autograd_reference(model, x, g, t)
    for key in ref:
        assert got[key].dtype == np.float64
        _assert_close(got[key], ref[key], key)
    # the per-state adapter returns the same numbers
    v, vx, vxx, vt, vtx = OrtCriticAdapter(bundle).evaluate(x[1], None if g is None else g[1], t[1, 0])
    _assert_close(np.array([v, vt]), np.array([ref["value"][1], ref["dvalue_dt"][1]]), "adapter")
    _assert_close(np.concatenate([vx, vtx, vxx.ravel()]),
                  np.concatenate([ref["dvalue_dx"][1], ref["d2value_dtdx"][1], ref["d2value_dx2"][1].ravel()]),
                  "adapter derivatives")
    # the initializers carry the contract names and the exact weights
    assert np.array_equal(bundle.arrays["layers.0.weight"], model.layers[0].weight.detach().numpy())
    assert np.array_equal(bundle.arrays["input_std"], model.input_std.numpy())
    assert bundle.arrays["output_scale"][0] == 1.7


def test_softplus_bundle_is_onnx_only(tmp_path):
    torch.manual_seed(4)
    rng = np.random.default_rng(4)
    model = ValueMLP(ValueMLPSettings(nx=3, ng=1, hidden=(7, 7), activation="softplus"))
    _randomize(model, 5, rng)
    bundle = load_bundle(bundle_bytes(model), expected_nx=3, expected_ng=1)
    x, g, t = _inputs(rng, 5, 3, 1)
    got = OrtCritic(bundle).evaluate_batch(x, g, t)
    ref = _autograd_reference(model, x, g, t)
    for key in ref:
        _assert_close(got[key], ref[key], key)
    assert not bundle.native_supported
    assert "softplus" in bundle.native_unsupported_reason
    with pytest.raises(NativeCriticUnavailable, match="softplus"):
        bundle.to_native()


@pytest.mark.parametrize("kappa", [0.0, 0.8])
def test_ensemble_bundle_matches_autograd(kappa):
    torch.manual_seed(7)
    rng = np.random.default_rng(7)
    ens = ValueEnsemble(ValueEnsembleSettings(ValueMLPSettings(nx=3, ng=2, hidden=(8, 8)),
                                              num_members=3, prior_beta=0.6, kappa=kappa))
    _randomize(ens, 6, rng)
    bundle = load_bundle(bundle_bytes(ens, robot="ballbot"), expected_nx=3, expected_ng=2)
    assert bundle.kind == "value_ensemble" and bundle.metadata["dmpc.num_members"] == "3"
    assert "members.2.layers.2.weight" in bundle.arrays and "priors.0.input_std" in bundle.arrays
    assert float(bundle.arrays["kappa"][0]) == kappa and float(bundle.arrays["prior_beta"][0]) == 0.6
    x, g, t = _inputs(rng, 6, 3, 2)
    got = OrtCritic(bundle).evaluate_batch(x, g, t)
    ref = _autograd_reference(ens, x, g, t)
    for key in ref:
        _assert_close(got[key], ref[key], key)
    assert not bundle.native_supported
    # round trip through the arrays rebuilds the same function
    again = bundle.to_torch()
    xt, gt, tt = (torch.from_numpy(a) for a in (x, g, t))
    assert torch.equal(again(xt, gt, tt), ens(xt, gt, tt))


def test_ensemble_aggregate_limits_and_optimism():
    torch.manual_seed(1)
    base = ValueMLPSettings(nx=2, ng=0, hidden=(6,))
    x = torch.randn(20, 2, dtype=torch.float64)
    t = torch.rand(20, 1, dtype=torch.float64)
    ens = ValueEnsemble(ValueEnsembleSettings(base, num_members=4, prior_beta=1.0, kappa=0.0))
    vals = ens.member_values(x, None, t)
    assert torch.allclose(ens(x, None, t), vals.mean(-1), rtol=0, atol=1e-14)
    ens.kappa.fill_(1e-7)  # small kappa -> mean
    assert torch.allclose(ens(x, None, t), vals.mean(-1), atol=1e-6)
    ens.kappa.fill_(1e4)  # large kappa -> min (optimism = lowest cost)
    assert torch.allclose(ens(x, None, t), vals.min(-1).values, atol=1e-3)
    ens.kappa.fill_(2.0)  # in between: below the mean, above the min
    agg = ens(x, None, t)
    assert torch.all(agg <= vals.mean(-1) + 1e-12) and torch.all(agg >= vals.min(-1).values - 1e-12)
    # priors are frozen, members train
    assert all(not p.requires_grad for p in ens.priors.parameters())
    assert all(p.requires_grad for p in ens.members.parameters())


def test_q_bundle_matches_autograd():
    torch.manual_seed(3)
    rng = np.random.default_rng(3)
    q = QMLP(QMLPSettings(nx=3, nu=2, ng=1, hidden=(10, 10)))
    _randomize(q, 6, rng)
    bundle = load_bundle(bundle_bytes(q), expected_nx=3, expected_ng=1, expected_nu=2)
    x, u, g = rng.normal(size=(5, 3)), rng.normal(size=(5, 2)), rng.normal(size=(5, 1))
    got = OrtCritic(bundle).evaluate_batch(x, g, action=u)
    for b in range(5):
        gb = torch.from_numpy(g[b : b + 1])

        def f(p):
            return q(p[:3].unsqueeze(0), p[3:].unsqueeze(0), gb)[0]

        p = torch.from_numpy(np.concatenate([x[b], u[b]]))
        jac, hes = jacobian(f, p).numpy(), hessian(f, p).numpy()
        _assert_close(got["value"][b : b + 1], np.array([float(f(p).detach())]), "Q")
        _assert_close(got["dvalue_dx"][b], jac[:3], "dQ/dx")
        _assert_close(got["dvalue_du"][b], jac[3:], "dQ/du")
        _assert_close(got["d2value_dx2"][b], hes[:3, :3], "d2Q/dx2")
        _assert_close(got["d2value_du2"][b], hes[3:, 3:], "d2Q/du2")
        _assert_close(got["d2value_dudx"][b], hes[3:, :3], "d2Q/dudx")


# ---------------------------------------------------------------------------------------
# loader rejections
# ---------------------------------------------------------------------------------------
@pytest.fixture
def good_bytes():
    torch.manual_seed(11)
    model = ValueMLP(ValueMLPSettings(nx=NX, ng=2, hidden=(12, 12, 12)))
    return bundle_bytes(model, robot="ballbot")


def _rehash(proto):
    """The serialized model with its whole-model hash recomputed (an edit by someone who knows
    the hash rule: only a structural check or the HMAC can catch it)."""
    digest = content_sha256(proto)
    for p in proto.metadata_props:
        if p.key == "dmpc.content_sha256":
            p.value = digest
    return proto.SerializeToString()


def _set_initializer(proto, name, arr):
    for i, t in enumerate(proto.graph.initializer):
        if t.name == name:
            proto.graph.initializer[i].CopyFrom(numpy_helper.from_array(arr, name))
            return
    raise KeyError(name)


def test_good_bundle_loads(good_bytes):
    bundle = load_bundle(good_bytes, expected_nx=NX, expected_ng=2)
    assert bundle.input_names == ["state", "goal", "time_to_go"]


def test_reject_truncated(good_bytes):
    with pytest.raises(CriticBundleError, match="corrupt or truncated"):
        load_bundle(good_bytes[: len(good_bytes) // 2])


def test_reject_truncated_file(tmp_path, good_bytes):
    path = tmp_path / "cut.onnx"
    path.write_bytes(good_bytes[:-7])
    with pytest.raises(CriticBundleError):
        load_bundle(path)
    with pytest.raises(CriticBundleError, match="empty"):
        path.write_bytes(b"")
        load_bundle(path)


def test_reject_wrong_nx(good_bytes):
    with pytest.raises(CriticBundleError, match="nx=4 but the robot model/task expects nx=10"):
        load_bundle(good_bytes, expected_nx=10, expected_ng=2)


def test_reject_wrong_ng(good_bytes):
    with pytest.raises(CriticBundleError, match="ng=2 but .* expects ng=0"):
        load_bundle(good_bytes, expected_nx=NX, expected_ng=0)


def test_reject_wrong_input_width(good_bytes):
    proto = onnx.load_from_string(good_bytes)
    proto.graph.input[0].type.tensor_type.shape.dim[1].dim_value = NX + 1
    with pytest.raises(CriticBundleError, match="input 'state' has shape"):
        load_bundle(_rehash(proto), expected_nx=NX)


def test_reject_nan_weights(good_bytes):
    proto = onnx.load_from_string(good_bytes)
    w = numpy_helper.to_array(next(t for t in proto.graph.initializer if t.name == "layers.1.weight")).copy()
    w[3, 2] = np.nan
    _set_initializer(proto, "layers.1.weight", w)
    with pytest.raises(CriticBundleError, match="'layers.1.weight' contains non-finite"):
        load_bundle(_rehash(proto))


def test_reject_missing_derivative_output(good_bytes):
    proto = onnx.load_from_string(good_bytes)
    keep = [o for o in proto.graph.output if o.name != "d2value_dx2"]
    del proto.graph.output[:]
    proto.graph.output.extend(keep)
    with pytest.raises(CriticBundleError, match=r"missing \['d2value_dx2'\]"):
        load_bundle(_rehash(proto))


def test_reject_unsupported_operator(good_bytes):
    proto = onnx.load_from_string(good_bytes)
    node = next(n for n in proto.graph.node if n.op_type == "Tanh")
    node.op_type = "Sin"  # same signature, so the graph stays valid ONNX
    with pytest.raises(CriticBundleError, match=r"unsupported operator\(s\) \['Sin'\]"):
        load_bundle(_rehash(proto))


def test_reject_unsupported_opset(good_bytes):
    proto = onnx.load_from_string(good_bytes)
    proto.opset_import[0].version = 11
    with pytest.raises(CriticBundleError, match="opset 11 is outside the supported range"):
        load_bundle(_rehash(proto))


def test_reject_tampered_weight(good_bytes):
    proto = onnx.load_from_string(good_bytes)
    w = numpy_helper.to_array(next(t for t in proto.graph.initializer if t.name == "layers.2.bias")).copy()
    w[0] += 1e-9
    _set_initializer(proto, "layers.2.bias", w)
    with pytest.raises(CriticBundleError, match="content hash mismatch"):
        load_bundle(proto.SerializeToString())


def test_reject_foreign_model():
    x = helper.make_tensor_value_info("x", onnx.TensorProto.DOUBLE, [1])
    y = helper.make_tensor_value_info("y", onnx.TensorProto.DOUBLE, [1])
    proto = helper.make_model(helper.make_graph([helper.make_node("Tanh", ["x"], ["y"])], "g", [x], [y]))
    with pytest.raises(CriticBundleError, match="not a critic bundle"):
        load_bundle(proto.SerializeToString())


def test_reject_wrong_hidden_metadata(good_bytes):
    proto = onnx.load_from_string(good_bytes)
    for p in proto.metadata_props:
        if p.key == "dmpc.hidden":
            p.value = "[12, 12]"
    with pytest.raises(CriticBundleError, match="unexpected initializer"):
        load_bundle(_rehash(proto))


def test_export_refuses_nan_model():
    model = ValueMLP(ValueMLPSettings(nx=2))
    with torch.no_grad():
        model.layers[0].bias[0] = float("nan")
    with pytest.raises(ValueError, match="non-finite"):
        bundle_bytes(model)


def test_native_guard_or_agreement():
    """Native C++ critic vs onnxruntime, when the core has CriticMLP.

    Uses the native critic API (``set_goal(g)``, ``derivatives(tau, x)`` -> dict V, Vx, Vxx, Vtau,
    Vtaux).
    """
    torch.manual_seed(5)
    rng = np.random.default_rng(5)
    model = ValueMLP(ValueMLPSettings(nx=NX, ng=2, hidden=(12, 12, 12)))
    _randomize(model, NX + 3, rng)
    bundle = load_bundle(bundle_bytes(model), expected_nx=NX, expected_ng=2)
    native = bundle.to_native()
    x, g, t = _inputs(rng, 6, NX, 2)
    ort_out = OrtCritic(bundle).evaluate_batch(x, g, t)
    for b in range(6):
        native.set_goal(g[b])
        d = native.derivatives(float(t[b, 0]), x[b])
        _assert_close(np.array([d["V"], d["Vtau"]]),
                      np.array([ort_out["value"][b], ort_out["dvalue_dt"][b]]), "native V, Vtau")
        _assert_close(np.asarray(d["Vx"]), ort_out["dvalue_dx"][b], "native Vx")
        _assert_close(np.asarray(d["Vxx"]), ort_out["d2value_dx2"][b], "native Vxx")
        _assert_close(np.asarray(d["Vtaux"]), ort_out["d2value_dtdx"][b], "native Vtaux")


def test_reject_weights_exposed_as_inputs(good_bytes):
    proto = onnx.load_from_string(good_bytes)
    w = next(t for t in proto.graph.initializer if t.name == "layers.0.weight")
    proto.graph.input.append(helper.make_tensor_value_info(w.name, w.data_type, list(w.dims)))
    with pytest.raises(CriticBundleError, match="also graph inputs"):
        load_bundle(_rehash(proto))


def test_failed_export_keeps_previous_file(tmp_path):
    torch.manual_seed(0)
    good = ValueMLP(ValueMLPSettings(nx=2))
    path = tmp_path / "critic.onnx"
    sha = export_value_bundle(good, path, version=1)
    before = path.read_bytes()
    bad = ValueMLP(ValueMLPSettings(nx=2))
    with torch.no_grad():
        bad.output_bias.fill_(float("inf"))
    with pytest.raises(ValueError, match="non-finite"):
        export_value_bundle(bad, path, version=2)
    assert path.read_bytes() == before and load_bundle(path).content_sha256 == sha
    assert [p.name for p in tmp_path.iterdir()] == ["critic.onnx"]  # no temp files left


def test_adapter_swap_and_core_adapter():
    torch.manual_seed(0)
    a = ValueMLP(ValueMLPSettings(nx=2, hidden=(4,)))
    b = ValueMLP(ValueMLPSettings(nx=2, hidden=(4,)))
    b.set_output_affine(1.0, 5.0)
    adapter = OrtCriticAdapter(bundle_bytes(a), expected_nx=2, expected_ng=0)
    x, tau = np.array([0.3, -0.2]), 1.5
    va = adapter.evaluate(x, None, tau)[0]
    adapter.swap(bundle_bytes(b, version=2))
    vb = adapter.evaluate(x, None, tau)[0]
    with torch.no_grad():
        ref_b = float(b(torch.from_numpy(x[None]), None, torch.tensor([[tau]], dtype=torch.float64))[0])
    assert abs(vb - ref_b) < 1e-12 and abs(va - vb) > 1e-3
    assert adapter.bundle.version == 2
    with pytest.raises(CriticBundleError, match="nx=3 but the robot model/task expects nx=2"):
        adapter.swap(bundle_bytes(ValueMLP(ValueMLPSettings(nx=3))))
    with pytest.raises(CriticBundleError, match="needs a value bundle"):
        OrtCriticAdapter(bundle_bytes(QMLP(QMLPSettings(nx=2, nu=1))))
    from dmpc_core.critics import make_core_critic_adapter

    core_critic = make_core_critic_adapter(bundle_bytes(b), expected_nx=2)
    if not hasattr(_core, "CriticModel"):
        assert isinstance(core_critic, OrtCriticAdapter)
    else:  # evaluated through the C++ trampoline
        d = core_critic.derivatives(tau, x)
        assert abs(d["V"] - ref_b) < 1e-12
