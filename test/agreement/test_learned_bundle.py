"""Dynamics bundles: ONNX Runtime / native / torch agreement, the loader's refusals (sizes,
non-finite weights, tampered weights, signatures, dt), and a controller problem naming a learned model."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

from dmpc_core import _core
from dmpc_core.models.learned import DynamicsEnsemble, ensemble_to_native
from dmpc_core.models.learned_bundle import (DynamicsBundleError, DynamicsModelConfig, dynamics_bundle_bytes,
                                             export_dynamics_bundle, learned_problem, load_dynamics_bundle)

PEND = [("cos", 0), ("sin", 0), ("id", 1)]


def _ensemble(seed=0, nx=2, nu=1, nq=1, features=PEND):
    torch.manual_seed(seed)
    ens = DynamicsEnsemble(nx, nu, nq, features, (8, 8), 3)
    with torch.no_grad():
        for m in ens.members:
            m.input_std.uniform_(0.5, 2.0)
            m.output_scale.uniform_(0.5, 3.0)
            m.output_bias.normal_()
    return ens


@pytest.mark.parametrize("nx,nu,nq,features", [(2, 1, 1, PEND), (3, 2, 0, [("id", 0), ("sin", 1), ("id", 2)])])
def test_round_trip_agrees_with_torch_native_and_onnxruntime(tmp_path, nx, nu, nq, features):
    ens = _ensemble(nx=nx, nu=nu, nq=nq, features=features)
    sha = export_dynamics_bundle(ens, tmp_path / "m.onnx", dt=0.05, integrator="rk4", robot="test", version=3,
                                 transitions=400)
    b = load_dynamics_bundle(tmp_path / "m.onnx", expected_nx=nx, expected_nu=nu, expected_dt=0.05)
    assert (b.content_sha256, b.version, b.transitions, b.num_members, b.features) == (sha, 3, 400, 3, features)
    rng = np.random.default_rng(0)
    X, U = rng.standard_normal((6, nx)), rng.standard_normal((6, nu))
    members, mean = b.to_native()
    ref_members, ref_mean = ensemble_to_native(ens)
    out = b.session().run(None, {"state": X, "action": U})
    got = dict(zip([o.name for o in b.session().get_outputs()], out))
    for i in range(6):
        np.testing.assert_allclose(mean.xdot(X[i], U[i]), ref_mean.xdot(X[i], U[i]), rtol=0, atol=0)
        np.testing.assert_allclose(got["xdot"][i], ref_mean.xdot(X[i], U[i]), rtol=0, atol=1e-12)
        np.testing.assert_allclose(got["xdot_members"][i], ref_mean.member_xdots(X[i], U[i]).T, rtol=0, atol=1e-12)
    t = b.to_torch()
    np.testing.assert_allclose(t.mean(torch.tensor(X), torch.tensor(U)).detach().numpy(), got["xdot"], atol=1e-12)


def _tampered(data: bytes, fn) -> bytes:
    proto = onnx.load_from_string(data)
    fn(proto)
    return proto.SerializeToString()


def test_loader_refuses_bad_bundles(tmp_path):
    ens = _ensemble()
    data = dynamics_bundle_bytes(ens, dt=0.05, integrator="semi_implicit_euler", robot="pendulum")
    load_dynamics_bundle(data)
    with pytest.raises(DynamicsBundleError, match="nx=2 but the robot model expects nx=4"):
        load_dynamics_bundle(data, expected_nx=4)
    with pytest.raises(DynamicsBundleError, match="fitted at dt=0.05"):
        load_dynamics_bundle(data, expected_dt=0.01)
    with pytest.raises(DynamicsBundleError, match="corrupt or truncated"):
        load_dynamics_bundle(data[: len(data) // 2])
    with pytest.raises(DynamicsBundleError, match="empty"):
        load_dynamics_bundle(b"")

    def perturb(proto):  # change one weight, keep the hash
        t = next(t for t in proto.graph.initializer if t.name == "members.1.layers.0.weight")
        a = numpy_helper.to_array(t).copy()
        a[0, 0] += 1e-3
        t.CopyFrom(numpy_helper.from_array(a, t.name))

    with pytest.raises(DynamicsBundleError, match="content hash mismatch"):
        load_dynamics_bundle(_tampered(data, perturb))

    def nan(proto):
        t = next(t for t in proto.graph.initializer if t.name == "members.0.output_bias")
        a = numpy_helper.to_array(t).copy()
        a[0] = np.nan
        t.CopyFrom(numpy_helper.from_array(a, t.name))

    with pytest.raises(DynamicsBundleError, match="non-finite"):
        load_dynamics_bundle(_tampered(data, nan))

    def drop(proto):
        keep = [t for t in proto.graph.initializer if t.name != "members.2.input_std"]
        del proto.graph.initializer[:]
        proto.graph.initializer.extend(keep)

    with pytest.raises(DynamicsBundleError, match="missing"):
        load_dynamics_bundle(_tampered(data, drop))

    def hidden(proto):
        next(p for p in proto.metadata_props if p.key == "dmpc.hidden").value = "[8, 9]"

    with pytest.raises(DynamicsBundleError, match="has shape \\[8\\]; expected \\[9\\]"):
        load_dynamics_bundle(_tampered(data, hidden))

    def foreign(proto):
        next(p for p in proto.metadata_props if p.key == "dmpc.format").value = "critic-bundle"

    with pytest.raises(DynamicsBundleError, match="not a dynamics bundle"):
        load_dynamics_bundle(_tampered(data, foreign))


def test_signed_bundles(tmp_path):
    ens = _ensemble()
    key, other = b"k" * 32, b"z" * 32
    signed = dynamics_bundle_bytes(ens, key=key, dt=0.05, integrator="rk4", robot="pendulum")
    plain = dynamics_bundle_bytes(ens, dt=0.05, integrator="rk4", robot="pendulum")
    assert load_dynamics_bundle(signed, key=key).content_sha256 == load_dynamics_bundle(plain).content_sha256
    with pytest.raises(DynamicsBundleError, match="unsigned"):
        load_dynamics_bundle(plain, key=key)
    with pytest.raises(DynamicsBundleError, match="does not verify"):
        load_dynamics_bundle(signed, key=other)


def test_controller_problem_with_a_learned_model(tmp_path):
    ens = _ensemble()
    path = tmp_path / "pendulum.onnx"
    export_dynamics_bundle(ens, path, dt=0.05, integrator="semi_implicit_euler", robot="pendulum")
    cost = _core.PendulumSwingUpCost(1, 0.1, 20.0)
    analytic = _core.Problem(_core.PendulumDynamics(), cost, None, 30, 0.05, "rk4", np.eye(1) * 0.1, 1.0)
    same, none = learned_problem(DynamicsModelConfig(), analytic)
    assert same is analytic and none is None
    prob, bundle = learned_problem(DynamicsModelConfig(model="learned", uri=f"file://{path}"), analytic)
    assert prob.integrator == "semi_implicit_euler" and prob.horizon == 30 and bundle.num_members == 3
    _, mean = ensemble_to_native(ens)
    x, u = np.array([0.3, -0.2]), np.array([0.7])
    np.testing.assert_allclose(prob.dynamics.xdot(x, u), mean.xdot(x, u), atol=0)
    res = _core.SlqSolver(prob).solve(np.array([np.pi - 0.1, 0.0]))
    assert np.isfinite(res.cost)
    with pytest.raises(DynamicsBundleError, match="fitted at dt"):
        bad = _core.Problem(_core.PendulumDynamics(), cost, None, 30, 0.02, "rk4", np.eye(1) * 0.1, 1.0)
        learned_problem(DynamicsModelConfig(model="learned", uri=str(path)), bad)
    with pytest.raises(ValueError, match="needs a uri"):
        learned_problem(DynamicsModelConfig(model="learned"), analytic)
