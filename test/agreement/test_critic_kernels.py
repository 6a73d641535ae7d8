"""Vectorised CriticMLP kernels and the input-matrix derivative hook of the dynamics.

- kernels (AVX2+FMA or baseline variant) vs the Eigen forward-over-reverse reference of the same
  critic: V, Vx, Vxx, Vtau, Vtaux, Kv, per state and batched, on architectures that exercise
  the padding (widths not multiples of 4, nx + 1 = 2 .. 16, one to four hidden layers);
- the batched kernel (states in SIMD lanes) for batch sizes around its block sizes (8 and 4),
  strided X, saturated units and large inputs;
- Kv vs central differences of the kernel Hessian (independent of both implementations);
- the vectorised tanh against numpy over the whole range;
- the baseline-ISA variant (DMPC_CRITIC_BASELINE=1, subprocess) gives the same numbers;
- DynamicsModel.input_jacobians (Ballbot override and the default of the small models)
  against central differences of g(x) = fu.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dmpc_core import _core
from test_native_critic import ControlAffine3

ROOT = Path(__file__).resolve().parents[2]
ARCHS = [(10, 2, (12, 12, 12)), (3, 0, (5,)), (1, 0, (4, 7)), (15, 1, (9, 13, 6, 5)), (4, 2, (16, 16)),
         (7, 3, (3, 1, 6))]


def make_critic(rng, nx, ng, hidden, scale=0.7):
    sizes = [nx + ng + 1, *hidden, 1]
    W = [rng.normal(0, scale, (sizes[i + 1], sizes[i])) for i in range(len(sizes) - 1)]
    b = [rng.normal(0, 0.3, sizes[i + 1]) for i in range(len(sizes) - 1)]
    c = _core.CriticMLP(W, b, rng.normal(0, 0.5, nx + ng + 1), rng.uniform(0.5, 2, nx + ng + 1), 1.7, -0.3,
                        nx, ng)
    if ng:
        c.set_goal(rng.normal(size=ng))
    return c


def rel(got, ref):
    got, ref = np.asarray(got, float), np.asarray(ref, float)
    return float(np.max(np.abs(got - ref)) / max(1.0, float(np.max(np.abs(ref)))))


@pytest.mark.parametrize("nx,ng,hidden", ARCHS)
def test_kernels_match_reference(nx, ng, hidden):
    rng = np.random.default_rng(nx * 100 + len(hidden))
    c = make_critic(rng, nx, ng, hidden)
    assert c.vectorized
    d = c.create_data()
    for _ in range(10):
        x, vx = rng.normal(size=nx), rng.normal(size=nx)
        tau, vt = rng.uniform(-1, 3), rng.normal()
        ref = c.reference_derivatives(tau, x, vx, vt)
        c.calc_diff(d, tau, x)
        c.calc_third(d, tau, x, vx, vt)
        for k in ("V", "Vx", "Vxx", "Vtau", "Vtaux", "Kv"):
            assert rel(getattr(d, k), ref[k]) < 1e-12, k
        np.testing.assert_array_equal(d.Vxx, d.Vxx.T)
        np.testing.assert_array_equal(d.Kv, d.Kv.T)
        c.calc_grad(d, tau, x)
        assert rel(d.Vx, ref["Vx"]) < 1e-12 and rel(d.Vtau, ref["Vtau"]) < 1e-12
        c.calc(d, tau, x)
        assert rel(d.V, ref["V"]) < 1e-12
    X, taus = rng.normal(size=(9, nx)), rng.uniform(0, 3, 9)
    out = c.evaluate_batch(taus, X)
    for b in range(9):
        ref = c.reference_derivatives(taus[b], X[b], np.zeros(nx), 0.0)
        for k in ("V", "Vx", "Vxx", "Vtau", "Vtaux"):
            assert rel(out[k][b], ref[k]) < 1e-12, k


@pytest.mark.parametrize("nx,ng,hidden", ARCHS)
def test_batch_kernel_states_in_lanes(nx, ng, hidden):
    """The batched kernel (states in SIMD lanes, blocks of 8 and 4, a partial last block padded
    with its last state) against the Eigen reference for batch sizes around the block sizes, and
    for a non-contiguous (Fortran-ordered and sliced) X."""
    rng = np.random.default_rng(7 * nx + len(hidden))
    c = make_critic(rng, nx, ng, hidden)
    for B in (1, 2, 3, 4, 5, 7, 8, 9, 12, 13, 16, 17, 100):
        X, taus = rng.normal(size=(B, nx)), rng.uniform(-1, 3, B)
        out = c.evaluate_batch(taus, X if B % 2 else np.asfortranarray(X))
        for b in range(B):
            ref = c.reference_derivatives(taus[b], X[b], np.zeros(nx), 0.0)
            for k in ("V", "Vx", "Vxx", "Vtau", "Vtaux"):
                assert rel(out[k][b], ref[k]) < 1e-12, (k, B, b)
            np.testing.assert_array_equal(out["Vxx"][b], out["Vxx"][b].T)
    Xbig = rng.normal(size=(11, 2 * nx))
    Xs, taus = Xbig[:, ::2], rng.uniform(0, 2, 11)
    out = c.evaluate_batch(taus, Xs)
    for b in range(11):
        ref = c.reference_derivatives(taus[b], Xs[b], np.zeros(nx), 0.0)
        assert rel(out["Vxx"][b], ref["Vxx"]) < 1e-12 and rel(out["Vx"][b], ref["Vx"]) < 1e-12


def test_batch_kernel_saturated_and_large_inputs():
    """Saturated tanh units (|a| > 20) and states far from the data: values stay finite and agree."""
    rng = np.random.default_rng(3)
    c = make_critic(rng, 10, 2, (12, 12, 12), scale=3.0)
    X = rng.normal(0, 30, size=(21, 10))
    taus = rng.uniform(-50, 50, 21)
    out = c.evaluate_batch(taus, X)
    for b in range(21):
        ref = c.reference_derivatives(taus[b], X[b], np.zeros(10), 0.0)
        for k in ("V", "Vx", "Vxx", "Vtau", "Vtaux"):
            assert np.all(np.isfinite(out[k][b]))
            assert rel(out[k][b], ref[k]) < 1e-12, k


def test_third_contraction_vs_finite_differences():
    rng = np.random.default_rng(5)
    nx = 10
    c = make_critic(rng, nx, 2, (12, 12, 12))
    x, vx, tau, vt = rng.normal(size=nx), rng.normal(size=nx), 1.3, 0.7
    Kv = c.third(tau, x, vx, vt)
    h = 1e-5
    Hp = c.derivatives(tau + h * vt, x + h * vx)["Vxx"]
    Hm = c.derivatives(tau - h * vt, x - h * vx)["Vxx"]
    assert rel(Kv, (Hp - Hm) / (2 * h)) < 1e-7


def test_vectorised_tanh_accuracy():
    # One hidden unit, unit weights: V = tanh(x0 + 0) exactly through the kernel's tanh.
    c = _core.CriticMLP([np.array([[1.0, 0.0]]), np.array([[1.0]])], [np.zeros(1), np.zeros(1)],
                        np.zeros(2), np.ones(2), 1.0, 0.0, 1, 0)
    assert c.vectorized
    xs = np.concatenate([[0.0, 0.1, 0.2, 0.35, 0.5, 1.0, 17.0, 18.5, 19.5, 20.0, 40.0, 700.0, 1e300],
                         np.logspace(-300, 2.5, 4000)])
    xs = np.concatenate([xs, -xs])
    got = np.array([c.value(0.0, np.array([x])) for x in xs])
    ref = np.tanh(xs)
    ulp = np.spacing(np.maximum(np.abs(ref), np.finfo(float).tiny))
    assert np.max(np.abs(got - ref) / ulp) <= 4.0
    assert np.all(np.sign(got) == np.sign(ref))


def test_wide_state_uses_reference_path():
    rng = np.random.default_rng(2)
    c = make_critic(rng, 16, 0, (6, 5))
    assert not c.vectorized
    x = rng.normal(size=16)
    r = c.reference_derivatives(0.5, x, x, 1.0)
    d = c.derivatives(0.5, x)
    assert rel(d["Vxx"], r["Vxx"]) == 0.0


_SUBPROCESS = r"""
import json, sys, numpy as np
from dmpc_core import _core
rng = np.random.default_rng(11)
sizes = [13, 12, 7, 12, 1]
W = [rng.normal(0, .7, (sizes[i + 1], sizes[i])) for i in range(4)]
b = [rng.normal(0, .3, sizes[i + 1]) for i in range(4)]
c = _core.CriticMLP(W, b, np.zeros(13), np.ones(13), 1.3, 0.2, 10, 2)
c.set_goal(np.array([0.3, -0.4]))
x, vx = rng.normal(size=10), rng.normal(size=10)
d = c.create_data(); c.calc_diff(d, 0.8, x); c.calc_third(d, 0.8, x, vx, 1.0)
r = c.reference_derivatives(0.8, x, vx, 1.0)
X, taus = rng.normal(size=(13, 10)), rng.uniform(0, 3, 13)
bo = c.evaluate_batch(taus, X)
berr = 0.0
for b in range(13):
    rb = c.reference_derivatives(taus[b], X[b], vx, 0.0)
    berr = max(berr, max(float(np.max(np.abs(np.asarray(bo[k][b]) - np.asarray(rb[k]))))
                         for k in ("V", "Vx", "Vxx", "Vtau", "Vtaux")))
print(json.dumps({"isa": _core.CriticMLP.kernel_isa, "V": d.V, "Vxx": d.Vxx.tolist(), "Kv": d.Kv.tolist(),
                  "bVxx": bo["Vxx"].tolist(), "bVx": bo["Vx"].tolist(),
                  "err": max(berr, max(float(np.max(np.abs(np.asarray(getattr(d, k)) - np.asarray(r[k]))))
                                       for k in r))}))
"""


def test_baseline_and_avx2_variants_agree():
    outs = {}
    for flag in ("1", "0"):
        env = dict(os.environ, DMPC_CRITIC_BASELINE=flag, PYTHONPATH=str(ROOT))
        res = subprocess.run([sys.executable, "-c", _SUBPROCESS], env=env, capture_output=True, text=True,
                             check=True)
        outs[flag] = json.loads(res.stdout.strip().splitlines()[-1])
        assert outs[flag]["err"] < 1e-11
    assert outs["1"]["isa"] == "baseline"
    for k in ("V", "Vxx", "Kv", "bVxx", "bVx"):
        assert rel(outs["0"][k], outs["1"][k]) < 1e-12


def _fd_input_jacobians(dyn, x, p, w, h=1e-6):
    nx, nu = dyn.nx, dyn.nu
    data = dyn.create_data()
    Gp, Gw = np.zeros((nu, nx)), np.zeros((nx, nx))
    for k in range(nx):
        e = np.zeros(nx)
        e[k] = h
        dyn.calc_diff(data, x + e, np.zeros(nu))
        gp = np.array(data.fu)
        dyn.calc_diff(data, x - e, np.zeros(nu))
        gm = np.array(data.fu)
        Gp[:, k] = (gp - gm).T @ p / (2 * h)
        Gw[:, k] = (gp - gm) @ w / (2 * h)
    return Gp, Gw


def _models():
    models = [("ballbot", _core.BallbotDynamics(), np.r_[0.1, -0.2, 0.3, 0.15, -0.1, 0.2, 0.1, -0.3, 0.4, 0.2])]
    models.append(("pendulum", _core.PendulumDynamics(), np.array([0.7, -0.4])))
    from dmpc_core.models.panda import Q_READY, default_urdf_path

    # g(x) = [0; M^-1(q)] (joint damping on): the default path, fx(x, e_j) - fx(x, 0) from ABA derivatives
    models.append(("panda", _core.PandaDynamics(str(default_urdf_path()), 1.0),
                   np.r_[Q_READY + np.array([0.3, -0.2, 0.4, 0.1, -0.5, 0.2, 0.3]), 0.5, -0.3, 0.2, 0.4, -0.6, 0.1, 0.7]))
    # Python subclass with a state-dependent g(x): the default (fx(x, e_j) - fx(x, 0)) path.
    models.append(("control_affine3", ControlAffine3(), np.array([0.4, -0.7, 1.1])))
    return models


@pytest.mark.parametrize("name,dyn,x", _models(), ids=lambda v: v if isinstance(v, str) else "")
def test_input_jacobians_vs_finite_differences(name, dyn, x):
    rng = np.random.default_rng(3)
    p, w = rng.normal(size=dyn.nx), rng.normal(size=dyn.nu)
    Gp, Gw = dyn.input_jacobians(x, p, w)
    Gp_fd, Gw_fd = _fd_input_jacobians(dyn, x, p, w)
    assert Gp.shape == (dyn.nu, dyn.nx) and Gw.shape == (dyn.nx, dyn.nx)
    # the Panda's M^-1 has entries up to ~150 (the light wrist): central differences of step 1e-6
    # carry ~1e-7 relative rounding there
    tol = 1e-6 if name == "panda" else 1e-7
    assert rel(Gp, Gp_fd) < tol and rel(Gw, Gw_fd) < tol
    # Exact identity of control-affine models: Gw = fx(x, w) - fx(x, 0).
    data = dyn.create_data()
    dyn.calc_diff(data, x, w)
    fxw = np.array(data.fx)
    dyn.calc_diff(data, x, np.zeros(dyn.nu))
    assert rel(Gw, fxw - np.array(data.fx)) < 1e-12
    with pytest.raises(ValueError, match="w"):
        dyn.input_jacobians(x, p, np.zeros(dyn.nu + 1))


@pytest.mark.parametrize("name,dyn,x", _models(), ids=lambda v: v if isinstance(v, str) else "")
def test_drift_input_projection_matches_calc_diff(name, dyn, x):
    """DynamicsModel.drift_input_projection (rollout path of ValueRunningCost.calc; Ballbot
    override: forward dynamics + one Cholesky solve) equals f = xdot(x, 0), y = fu^T p."""
    rng = np.random.default_rng(4)
    p = rng.normal(size=dyn.nx)
    f, y = dyn.drift_input_projection(x, p)
    data = dyn.create_data()
    dyn.calc(data, x, np.zeros(dyn.nu))  # a Python subclass's calc_diff fills fx, fu only
    dyn.calc_diff(data, x, np.zeros(dyn.nu))
    assert f.shape == (dyn.nx,) and y.shape == (dyn.nu,)
    assert rel(f, data.xdot) < 1e-12 and rel(y, np.array(data.fu).T @ p) < 1e-12
    with pytest.raises(ValueError, match="p"):
        dyn.drift_input_projection(x, np.zeros(dyn.nx + 1))


def test_value_running_cost_calc_equals_calc_diff_value_ballbot():
    """The rollout path (calc: critic gradient + drift_input_projection) and the LQ path
    (calc_diff: full Jacobians) give the same running-cost value on the Ballbot."""
    rng = np.random.default_rng(8)
    c = make_critic(rng, 10, 2, (12, 12, 12), scale=0.4)
    dyn = _core.BallbotDynamics()
    cost = _core.ValueRunningCost(c, dyn, np.diag([0.5, 1.0, 2.0]), 1.0)
    d = cost.create_data()
    for _ in range(5):
        x = rng.normal(scale=0.2, size=10)
        t = float(rng.uniform(0, 1.5))
        cost.calc(d, t, x, np.zeros(3))
        v = d.value
        cost.calc_diff(d, t, x, np.zeros(3))
        assert abs(v - d.value) <= 1e-12 * max(1.0, abs(v))
