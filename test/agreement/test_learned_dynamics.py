"""Learned control-affine dynamics: native (``_core.ControlAffineMlpDynamics``) against torch,
the ensemble mean and its disagreement, bit-identical ensemble MPPI on 1 and 2 threads, and a fit
to data of a known linear system recovering it."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from dmpc_core import _core
from dmpc_core.models.learned import (DynamicsEnsemble, LearnedModelSettings, ensemble_to_native, fit_ensemble,
                                      integrate, member_to_native)

PEND = [("cos", 0), ("sin", 0), ("id", 1)]


def _random_ensemble(nx, nu, nq, features, hidden=(16, 16), members=3, seed=0) -> DynamicsEnsemble:
    torch.manual_seed(seed)
    ens = DynamicsEnsemble(nx, nu, nq, features, hidden, members)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in ens.members:
            for p in m.parameters():
                p.copy_(0.8 * torch.randn(p.shape, generator=g, dtype=torch.float64))
            m.input_mean.copy_(0.3 * torch.randn(m.input_mean.shape, generator=g, dtype=torch.float64))
            m.input_std.copy_(0.5 + torch.rand(m.input_std.shape, generator=g, dtype=torch.float64))
            m.output_scale.copy_(0.5 + 2 * torch.rand(m.output_scale.shape, generator=g, dtype=torch.float64))
            m.output_bias.copy_(0.5 * torch.randn(m.output_bias.shape, generator=g, dtype=torch.float64))
    return ens


@pytest.mark.parametrize("nx,nu,nq,features", [(2, 1, 1, PEND), (4, 2, 2, [("id", 0), ("sin", 1), ("id", 2), ("cos", 3)]),
                                               (3, 2, 0, [("id", 0), ("cos", 1), ("id", 2)])])
def test_native_matches_torch_to_1e12(nx, nu, nq, features):
    """xdot, fx (autograd) and fu of the native model equal the float64 torch member to <= 1e-12."""
    ens = _random_ensemble(nx, nu, nq, features)
    rng = np.random.default_rng(5)
    for m in ens.members:
        nat = member_to_native(m)
        assert nat.nq == nq and nat.num_learned == nx - nq and nat.features == features
        for _ in range(4):
            x, u = 1.5 * rng.standard_normal(nx), 2.0 * rng.standard_normal(nu)
            tx, tu = torch.tensor(x), torch.tensor(u)
            ref = m(tx, tu).detach().numpy()
            fx_ref = torch.autograd.functional.jacobian(lambda z: m(z, tu), tx).numpy()
            fu_ref = torch.autograd.functional.jacobian(lambda z: m(tx, z), tu).numpy()
            fx, fu = nat.jacobians(x, u)
            scale = max(1.0, np.abs(ref).max(), np.abs(fx_ref).max())
            assert np.abs(nat.xdot(x, u) - ref).max() <= 1e-12 * scale
            assert np.abs(fx - fx_ref).max() <= 1e-12 * scale
            assert np.abs(fu - fu_ref).max() <= 1e-12 * scale
            # the rollout hot path (calc_xdot) agrees with calc
            xn = _core.integrate(nat, x, u, 0.05, "rk4")
            ref_n = integrate(m, tx, tu, 0.05, "rk4", nq).detach().numpy()
            assert np.abs(xn - ref_n).max() <= 1e-12 * max(1.0, np.abs(ref_n).max())


def test_ensemble_mean_and_disagreement():
    ens = _random_ensemble(2, 1, 1, PEND, members=4)
    members, mean = ensemble_to_native(ens)
    assert mean.num_members == 4 and mean.nq == 1
    rng = np.random.default_rng(0)
    x, u = rng.standard_normal(2), rng.standard_normal(1)
    X = np.stack([m.xdot(x, u) for m in members], axis=1)
    np.testing.assert_allclose(mean.xdot(x, u), X.mean(1), rtol=0, atol=1e-13)
    np.testing.assert_allclose(mean.member_xdots(x, u), X, rtol=0, atol=0)
    np.testing.assert_allclose(mean.disagreement(x, u), X.std(1), rtol=0, atol=1e-13)
    assert mean.disagreement(x, u)[0] == 0.0  # qdot = v in every member
    fx, fu = mean.jacobians(x, u)
    np.testing.assert_allclose(fx, np.mean([m.jacobians(x, u)[0] for m in members], 0), atol=1e-13)
    np.testing.assert_allclose(fu, np.mean([m.jacobians(x, u)[1] for m in members], 0), atol=1e-13)
    # one member: no disagreement
    assert np.all(_core.EnsembleMeanDynamics(members[:1]).disagreement(x, u) == 0.0)


def test_bad_inputs_are_refused():
    ens = _random_ensemble(2, 1, 1, PEND, members=1)
    m = ens.members[0]
    nat = member_to_native(m)
    with pytest.raises(ValueError, match="size"):
        nat.xdot(np.zeros(3), np.zeros(1))
    with pytest.raises(ValueError, match="non-finite"):
        nat.xdot(np.array([np.nan, 0.0]), np.zeros(1))
    W = [l.weight.detach().numpy().copy() for l in m.layers]
    b = [l.bias.detach().numpy().copy() for l in m.layers]
    args = (m.input_mean.numpy(), m.input_std.numpy(), m.output_scale.numpy(), m.output_bias.numpy())
    W_bad = [w.copy() for w in W]
    W_bad[0][0, 0] = np.inf
    with pytest.raises(ValueError, match="non-finite"):
        _core.ControlAffineMlpDynamics(2, 1, 1, PEND, W_bad, b, *args)
    with pytest.raises(ValueError, match="outputs"):
        _core.ControlAffineMlpDynamics(2, 2, 1, PEND, W, b, *args)  # nu = 2 needs 3 outputs
    with pytest.raises(ValueError, match="feature index"):
        _core.ControlAffineMlpDynamics(2, 1, 1, [("cos", 0), ("sin", 5), ("id", 1)], W, b, *args)
    with pytest.raises(ValueError, match="input_std"):
        _core.ControlAffineMlpDynamics(2, 1, 1, PEND, W, b, args[0], -np.ones(3), args[2], args[3])
    with pytest.raises(ValueError, match="member 1"):
        _core.EnsembleMeanDynamics([nat, _core.PointMass2D()])
    with pytest.raises(ValueError):
        _core.EnsembleMeanDynamics([])


def test_ensemble_mppi_is_bit_identical_on_1_and_2_threads():
    """Trajectory sampling (sample k uses member k mod M) and averaging, 1 vs 2 rollout threads."""
    members, mean = ensemble_to_native(_random_ensemble(2, 1, 1, PEND, members=5))
    cost = _core.PendulumSwingUpCost(1, 0.1, 20.0)
    for average in (False, True):
        plans = []
        for threads in (1, 2):
            cfg = _core.MppiSettings(num_samples=24, horizon=20, dt=0.05, noise_sigma=np.eye(1) * 4.0, lambda_=0.15,
                                     num_iterations=3, num_threads=threads, seed=3, u_min=-2 * np.ones(1),
                                     u_max=2 * np.ones(1), integrator="semi_implicit_euler")
            s = _core.MppiSolver(mean, cost, None, cfg)
            s.set_rollout_models(members, average=average)
            s.set_state(np.array([np.pi - 0.2, 0.0]), 0.0)
            r = s.optimize()
            plans.append((np.array(s.plan), r.free_energy))
        assert np.array_equal(plans[0][0], plans[1][0]) and plans[0][1] == plans[1][1]
        assert np.abs(plans[0][0]).max() > 0  # the plan moved


def test_fit_recovers_a_known_linear_system():
    """Transitions of xdot = A x + B u (x = [q; v], semi-implicit Euler at dt, the integrator the
    fit goes through): the learned Jacobians match A and B over the data region."""
    A = np.array([[0.0, 1.0], [-2.0, -0.5]])
    Bm = np.array([[0.0], [1.5]])
    true = _core.LinearDynamics(A, Bm)
    dt = 0.05
    rng = np.random.default_rng(0)
    X = rng.uniform(-1.5, 1.5, (600, 2))
    U = rng.uniform(-1.0, 1.0, (600, 1))
    # semi-implicit Euler of the linear system (LinearDynamics has nq = 0, so write it out)
    vdot = X @ A[1] + U @ Bm[1]
    v1 = X[:, 1] + dt * vdot
    Xn = np.stack([X[:, 0] + dt * v1, v1], axis=1)
    ls = LearnedModelSettings(num_members=2, hidden=(16,), gradient_steps=600, batch_size=128, learning_rate=1e-2)
    torch.manual_seed(0)
    ens = DynamicsEnsemble(2, 1, 1, [("id", 0), ("id", 1)], ls.hidden, ls.num_members)
    stats = fit_ensemble(ens, X, U, Xn, dt, ls, seed=0)
    assert stats["model/one_step_error"] < 1e-3
    _, mean = ensemble_to_native(ens)
    # within 10 % of the largest entry of A and of B (measured with data/torch seeds 0-2: max
    # Jacobian errors 0.09-0.14 for A, 0.02-0.05 for B; an unfitted network is off by O(1))
    for x in rng.uniform(-1.0, 1.0, (5, 2)):
        fx, fu = mean.jacobians(x, np.zeros(1))
        np.testing.assert_allclose(fx, true.jacobians(x, np.zeros(1))[0], atol=0.2)
        np.testing.assert_allclose(fu, Bm, atol=0.15)
        np.testing.assert_allclose(mean.xdot(x, np.ones(1)), A @ x + Bm[:, 0], atol=0.2)
