"""GMM prior (EM) and the per-step NIW MAP linear-Gaussian fits of guided policy search."""
import numpy as np
import pytest

from dmpc_core import _core


def mixture(rng, n=600, D=4, K=3):
    centres = 4.0 * rng.standard_normal((K, D))
    lab = rng.integers(0, K, n)
    A = [rng.standard_normal((D, D)) * 0.5 for _ in range(K)]
    return np.array([centres[c] + A[c] @ rng.standard_normal(D) for c in lab])


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_em_log_likelihood_never_decreases(seed):
    rng = np.random.default_rng(seed)
    data = mixture(rng)
    g = _core.Gmm(warm_start=False, seed=seed)
    its = g.update(data, 3, 100)
    ll = np.array(g.log_likelihood_history)
    assert its == len(ll) >= 3
    assert np.all(np.diff(ll) >= -1e-9 * np.abs(ll[1:]))
    assert ll[-1] > ll[0]
    assert np.isclose(g.log_likelihood(data), ll[-1], rtol=1e-6) or g.log_likelihood(data) >= ll[-1]
    assert np.isclose(g.weights.sum(), 1.0)
    # warm start: a refit on the same data starts at the previous optimum
    g2 = _core.Gmm(warm_start=True, seed=seed)
    g2.update(data, 3, 100)
    first = g2.log_likelihood_history[-1]
    g2.update(data, 3, 100)
    ll2 = np.array(g2.log_likelihood_history)
    assert ll2[0] >= first - 1e-9 * abs(first)
    assert np.all(np.diff(ll2) >= -1e-9 * np.abs(ll2[1:]))


def tv_linear_system(rng, T=8, nx=3, nu=2, N=60, noise=0.01, variation=1.0):
    A0, B0 = np.eye(nx) + 0.2 * rng.standard_normal((nx, nx)), rng.standard_normal((nx, nu))
    A = [A0 + variation * 0.2 * rng.standard_normal((nx, nx)) for _ in range(T - 1)]
    B = [B0 + variation * rng.standard_normal((nx, nu)) for _ in range(T - 1)]
    c = [0.5 * rng.standard_normal(nx) for _ in range(T - 1)]
    X = np.zeros((N, T, nx))
    U = rng.standard_normal((N, T, nu))
    X[:, 0] = rng.standard_normal((N, nx))
    for t in range(T - 1):
        X[:, t + 1] = X[:, t] @ A[t].T + U[:, t] @ B[t].T + c[t] + noise * rng.standard_normal((N, nx))
    return A, B, c, list(X), list(U)


def test_dynamics_fit_recovers_time_varying_linear_system():
    rng = np.random.default_rng(0)
    A, B, c, X, U = tv_linear_system(rng)
    prior = _core.GmmPrior(_core.GmmPriorSettings(max_clusters=5, min_samples_per_cluster=40, max_samples=60))
    prior.update([_core.dynamics_points(x, u) for x, u in zip(X, U)])
    dyn = _core.fit_dynamics(X, U, None)
    for t in range(len(A)):
        assert np.abs(dyn.F[t] - np.hstack([A[t], B[t]])).max() < 0.02
        assert np.abs(dyn.f[t] - c[t]).max() < 0.02
        assert np.abs(dyn.W[t] - 1e-4 * np.eye(3)).max() < 1e-4
    # the GMM prior pools all time steps (different A_t here) with the weight of about one sample:
    # its pull on F_t is O(1/N)
    dyn = _core.fit_dynamics(X, U, prior)
    for t in range(len(A)):
        assert np.abs(dyn.F[t] - np.hstack([A[t], B[t]])).max() < 0.1
        assert np.abs(dyn.f[t] - c[t]).max() < 0.1


def test_strength_zero_equals_least_squares_and_few_samples_stay_finite():
    rng = np.random.default_rng(1)
    A, B, c, X, U = tv_linear_system(rng, N=20, noise=0.1)
    prior = _core.GmmPrior(_core.GmmPriorSettings(strength=0.0))
    prior.update([_core.dynamics_points(x, u) for x, u in zip(X, U)])
    dyn = _core.fit_dynamics(X, U, prior, regularization=0.0)
    Xa, Ua = np.array(X), np.array(U)
    for t in range(len(A)):
        Z = np.hstack([Xa[:, t], Ua[:, t], np.ones((20, 1))])
        sol = np.linalg.lstsq(Z, Xa[:, t + 1], rcond=None)[0].T
        assert np.allclose(dyn.F[t], sol[:, :5], atol=1e-10)
        assert np.allclose(dyn.f[t], sol[:, 5], atol=1e-10)
    # N = 5 samples < nx + nu + 1: the GMM prior (over all steps of 20 trajectories of a slowly
    # varying system) keeps the fit finite and close
    A, B, c, X, U = tv_linear_system(rng, N=20, noise=0.01, variation=0.02)
    prior = _core.GmmPrior(_core.GmmPriorSettings(max_clusters=5, min_samples_per_cluster=20, max_samples=20))
    prior.update([_core.dynamics_points(x, u) for x, u in zip(X, U)])
    dyn5 = _core.fit_dynamics(X[:5], U[:5], prior)
    dyn5_ls = _core.fit_dynamics(X[:5], U[:5], None)
    err = lambda d, t: np.abs(d.F[t] - np.hstack([A[t], B[t]])).max()  # noqa: E731
    assert np.mean([err(dyn5, t) for t in range(len(A))]) < 0.5 * np.mean([err(dyn5_ls, t) for t in range(len(A))])
    for t in range(len(A)):
        assert np.all(np.isfinite(dyn5.F[t])) and np.all(np.isfinite(dyn5.W[t]))
        assert np.all(np.linalg.eigvalsh(dyn5.W[t]) > 0)


def test_policy_linearization_recovers_a_linear_policy():
    rng = np.random.default_rng(2)
    T, nx, nu, N = 5, 3, 2, 30
    K = [rng.standard_normal((nu, nx)) for _ in range(T)]
    k = rng.standard_normal((T, nu))
    X = [rng.standard_normal((T, nx)) for _ in range(N)]
    MU = [np.array([K[t] @ x[t] + k[t] for t in range(T)]) for x in X]
    S = 0.3 * np.eye(nu)
    lin = _core.fit_policy_linearization(X, MU, [S])
    for t in range(T):
        assert np.allclose(lin.K[t], K[t], atol=1e-6)
        assert np.allclose(lin.k[t], k[t], atol=1e-6)
        assert np.allclose(lin.cov[t], S, atol=1e-6)


def test_fit_rejects_bad_input():
    rng = np.random.default_rng(3)
    _, _, _, X, U = tv_linear_system(rng, N=4)
    with pytest.raises(ValueError):
        _core.fit_dynamics(X, U[:3])
    bad = [x.copy() for x in X]
    bad[0][1, 1] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        _core.fit_dynamics(bad, U)
    with pytest.raises(ValueError, match="no data"):
        _core.GmmPrior().eval(np.zeros((3, 8)))
    with pytest.raises(ValueError):
        _core.Gmm().update(np.zeros((0, 3)), 2)
