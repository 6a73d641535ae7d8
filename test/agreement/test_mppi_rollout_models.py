"""Per-rollout models of the MPPI solver (MppiSolver.set_rollout_models: sample k is rolled out with
models[k % M]; used by MPQ's bias_mode "rollout"). Seeded; the noise of sample k depends only on
(seed, iteration counter, k), so a sample's cost can be checked exactly against a single-model solver.
"""
from __future__ import annotations

import numpy as np
import pytest

from dmpc_core import _core

DT, H, K = 0.05, 8, 16


def solver(m=1.0, l=1.0, seed=3, threads=1, iterations=1):
    s = _core.MppiSettings(num_samples=K, horizon=H, dt=DT, noise_sigma=np.array([[4.0]]), lambda_=0.5,
                           step_size=0.5, gamma=0.9, num_iterations=iterations, seed=seed, num_threads=threads,
                           u_min=np.array([-2.0]), u_max=np.array([2.0]), num_saved_trajectories=K)
    return _core.MppiSolver(_core.PendulumDynamics(m, l, 0.0), _core.PendulumSwingUpCost(1, 0.1, 1.0 / DT), None, s)


X0 = np.array([2.5, 0.3])


def run(sol, x0=X0):
    sol.set_state(x0, 0.0)
    return sol.optimize()


def test_default_and_a_list_of_the_same_model_are_bitwise_the_solver_dynamics():
    ref = run(solver(1.2, 1.1))
    a = solver(1.2, 1.1)
    a.set_rollout_models([_core.PendulumDynamics(1.2, 1.1, 0.0)] * 3)
    assert len(a.rollout_models) == 3
    got = run(a)
    np.testing.assert_array_equal(got.costs, ref.costs)
    np.testing.assert_array_equal(got.plan, ref.plan)
    # [] restores the solver's own dynamics
    b, c = solver(1.2, 1.1), solver(1.2, 1.1)
    b.set_rollout_models([_core.PendulumDynamics(1.5, 1.5, 0.0)])
    b.set_rollout_models([])
    np.testing.assert_array_equal(run(b).costs, run(c).costs)


def test_sample_k_is_rolled_out_with_model_k_mod_m():
    """Two models: the even samples' costs equal those of a solver with model A only, the odd ones
    those of a solver with model B only (same noise per k), and differ from the solver's own model."""
    A, B = (0.9, 1.0), (1.5, 1.45)
    mixed = solver(1.0, 1.0, iterations=1)
    mixed.set_rollout_models([_core.PendulumDynamics(*A, 0.0), _core.PendulumDynamics(*B, 0.0)])
    cm = run(mixed).costs
    ca, cb, c0 = run(solver(*A)).costs, run(solver(*B)).costs, run(solver(1.0, 1.0)).costs
    np.testing.assert_array_equal(cm[0::2], ca[0::2])
    np.testing.assert_array_equal(cm[1::2], cb[1::2])
    assert np.all(cm != c0)
    # the replayed trajectories of weighted_trajectories() use each sample's own model
    tr = mixed.weighted_trajectories()
    assert sorted(tr.indices) == list(range(K))
    refs = {}
    for name, p in (("A", A), ("B", B)):
        r = solver(*p)
        run(r)
        t = r.weighted_trajectories()
        refs[name] = {k: t.states[j] for j, k in enumerate(t.indices)}
    for i, k in enumerate(tr.indices):
        np.testing.assert_array_equal(tr.states[i], refs["A" if k % 2 == 0 else "B"][k])


def test_average_rolls_every_sample_out_in_every_model_and_takes_the_mean_cost():
    A, B = (0.9, 1.0), (1.5, 1.45)
    avg = solver(1.0, 1.0)
    avg.set_rollout_models([_core.PendulumDynamics(*A, 0.0), _core.PendulumDynamics(*B, 0.0)], average=True)
    assert avg.rollout_models_averaged
    ca, cb = run(solver(*A)).costs, run(solver(*B)).costs
    np.testing.assert_allclose(run(avg).costs, 0.5 * (np.asarray(ca) + np.asarray(cb)), rtol=1e-14)
    avg.set_rollout_models([_core.PendulumDynamics(*A, 0.0)])  # average defaults to False
    assert not avg.rollout_models_averaged


def test_nominal_rollout_keeps_the_solver_dynamics():
    """Solver (dyn D, models [X]) and solver (dyn X): identical samples and plan (all samples use X);
    the nominal rollout of the first uses D (checked against one RK4 step of D by hand)."""
    a = solver(1.0, 1.0)
    a.set_rollout_models([_core.PendulumDynamics(1.4, 1.3, 0.0)])
    ra, rb = run(a), run(solver(1.4, 1.3))
    np.testing.assert_array_equal(ra.costs, rb.costs)
    np.testing.assert_array_equal(ra.plan, rb.plan)

    def f(x, u, m=1.0, l=1.0):
        return np.array([x[1], 9.81 / l * np.sin(x[0]) + u / (m * l * l)])

    u = ra.plan[0, 0]
    k1 = f(X0, u)
    k2 = f(X0 + DT / 2 * k1, u)
    k3 = f(X0 + DT / 2 * k2, u)
    k4 = f(X0 + DT * k3, u)
    np.testing.assert_allclose(ra.nominal_states[1], X0 + DT / 6 * (k1 + 2 * k2 + 2 * k3 + k4), rtol=1e-12)
    assert not np.allclose(ra.nominal_states[1], rb.nominal_states[1])


def test_per_rollout_models_are_deterministic_and_thread_count_independent():
    rng = np.random.default_rng(0)
    P = rng.uniform(0.9, 1.5, size=(K, 2))
    out = []
    for threads in (1, 2, 1):
        s = solver(seed=11, threads=threads, iterations=3)
        s.set_rollout_models([_core.PendulumDynamics(m, l, 0.0) for m, l in P])
        out.append(run(s))
    for r in out[1:]:
        np.testing.assert_array_equal(r.costs, out[0].costs)
        np.testing.assert_array_equal(r.plan, out[0].plan)
        assert r.free_energy == out[0].free_energy


def test_invalid_rollout_models_are_rejected_and_leave_the_solver_unchanged():
    s = solver()
    s.set_rollout_models([_core.PendulumDynamics(1.1, 1.1, 0.0)])
    with pytest.raises(ValueError, match=r"models\[1\] has \(nx, nu\) = \(4, 2\)"):
        s.set_rollout_models([_core.PendulumDynamics(1.0, 1.0, 0.0), _core.PointMass2D(1.0, 0.0)])
    with pytest.raises((ValueError, TypeError)):
        s.set_rollout_models([None])
    assert len(s.rollout_models) == 1
