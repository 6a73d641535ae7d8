"""Linear-Gaussian controllers and the KL-constrained LQR C-step (MDGPS Sec. 3, App. A, B.1, B.3)."""
import numpy as np
import pytest

from dmpc_core import _core


def random_system(rng, T=6, nx=3, nu=2, noise=0.05):
    F = [np.hstack([np.eye(nx) + 0.1 * rng.standard_normal((nx, nx)), 0.3 * rng.standard_normal((nx, nu))])
         for _ in range(T - 1)]
    f = 0.1 * rng.standard_normal((T - 1, nx))
    W = []
    for _ in range(T - 1):
        A = rng.standard_normal((nx, nx))
        W.append(noise * (A @ A.T / nx + 0.1 * np.eye(nx)))
    x0m = rng.standard_normal(nx)
    A = rng.standard_normal((nx, nx))
    x0c = 0.1 * (A @ A.T / nx + 0.1 * np.eye(nx))
    return _core.LinearGaussianDynamics(F, f, W, x0m, x0c)


def random_policy(rng, T=6, nx=3, nu=2, scale=1.0):
    K = [0.3 * scale * rng.standard_normal((nu, nx)) for _ in range(T)]
    k = scale * rng.standard_normal((T, nu))
    cov = []
    for _ in range(T):
        A = rng.standard_normal((nu, nu))
        cov.append(0.2 * (A @ A.T / nu + 0.2 * np.eye(nu)))
    return _core.LinearGaussianPolicy(K, k, cov)


def random_cost(rng, T=6, D=5):
    Cm, cv = [], []
    for _ in range(T):
        A = rng.standard_normal((D, D))
        Cm.append(A @ A.T / D + 0.5 * np.eye(D))
        cv.append(rng.standard_normal(D))
    return _core.LgQuadraticCost(Cm, np.array(cv), rng.standard_normal(T))


def sample(dyn, pol, n, rng):
    """n Monte-Carlo rollouts: X (n, T, nx), U (n, T, nu)."""
    T, nx, nu = pol.horizon, pol.nx, pol.nu
    X = np.zeros((n, T, nx))
    U = np.zeros((n, T, nu))
    x = rng.multivariate_normal(dyn.x0_mean, dyn.x0_cov, size=n)
    for t in range(T):
        X[:, t] = x
        U[:, t] = x @ pol.K[t].T + pol.k[t] + rng.standard_normal((n, nu)) @ pol.chol[t].T
        if t + 1 < T:
            z = np.hstack([x, U[:, t]])
            x = z @ dyn.F[t].T + dyn.f[t] + rng.multivariate_normal(np.zeros(nx), dyn.W[t], size=n)
    return X, U


def log_gauss(u, mean, cov):
    d = u - mean
    L = np.linalg.cholesky(cov)
    s = np.linalg.solve(L, d.T)
    return -0.5 * np.sum(s * s, 0) - np.sum(np.log(np.diag(L))) - 0.5 * len(cov) * np.log(2 * np.pi)


def test_marginals_cost_and_kl_match_monte_carlo():
    rng = np.random.default_rng(0)
    dyn, p, q, cost = random_system(rng), random_policy(rng), random_policy(rng), random_cost(rng)
    n = 100_000
    X, U = sample(dyn, p, n, rng)
    mean, cov = p.forward(dyn)
    Z = np.concatenate([X, U], axis=2)
    for t in range(p.horizon):
        m_mc = Z[:, t].mean(0)
        se = np.sqrt(np.diag(cov[t]) / n)
        assert np.all(np.abs(m_mc - mean[t]) < 3 * se + 1e-12), t
        c_mc = np.cov(Z[:, t].T)
        se_c = np.sqrt((np.outer(np.diag(cov[t]), np.diag(cov[t])) + cov[t] ** 2) / n)
        assert np.all(np.abs(c_mc - cov[t]) < 3.5 * se_c), t
    # expected cost
    l_mc = np.zeros(n)
    for t in range(p.horizon):
        z = Z[:, t]
        l_mc += cost.cc[t] + z @ cost.cv[t] + 0.5 * np.einsum("ni,ij,nj->n", z, cost.Cm[t], z)
    assert abs(l_mc.mean() - p.expected_cost(dyn, cost)) < 3 * l_mc.std() / np.sqrt(n)
    # KL(p(tau) || q(tau)) = E_p[sum_t log p(u_t|x_t) - log q(u_t|x_t)] (App. A)
    r = np.zeros(n)
    for t in range(p.horizon):
        x, u = X[:, t], U[:, t]
        r += log_gauss(u, x @ p.K[t].T + p.k[t], p.cov[t]) - log_gauss(u, x @ q.K[t].T + q.k[t], q.cov[t])
    kl = p.kl(q, dyn)
    assert kl > 0
    assert abs(r.mean() - kl) < 3 * r.std() / np.sqrt(n)
    assert abs(p.kl(p, dyn)) < 1e-12
    assert np.allclose(p.kl_per_step(q, dyn).sum(), kl, rtol=1e-12)


def test_policy_validation_and_to_policy():
    rng = np.random.default_rng(1)
    p = random_policy(rng)
    with pytest.raises(ValueError, match="positive definite"):
        _core.LinearGaussianPolicy(p.K, p.k, [-np.eye(2)] * p.horizon)
    with pytest.raises(ValueError, match="non-finite"):
        _core.LinearGaussianPolicy(p.K, np.full_like(p.k, np.nan), p.cov)
    with pytest.raises(ValueError):
        _core.LinearGaussianPolicy(p.K[:-1], p.k, p.cov)
    pol = p.to_policy(0.0, 0.05)
    x = rng.standard_normal(3)
    for t in (0, 3, 5):
        assert np.allclose(pol.control(t * 0.05 + 0.01, x), p.mean_action(t, x), atol=1e-12)


def numpy_lqr(dyn, cost):
    """Independent finite-horizon Riccati LQR on z = [x; u] with affine dynamics (reference)."""
    T, nx = cost.horizon, dyn.nx
    Vxx = np.zeros((nx, nx))
    vx = np.zeros(nx)
    K, k = [None] * T, [None] * T
    for t in reversed(range(T)):
        Q = cost.Cm[t].copy()
        q = cost.cv[t].copy()
        if t < T - 1:
            F, f = dyn.F[t], dyn.f[t]
            Q += F.T @ Vxx @ F
            q += F.T @ (vx + Vxx @ f)
        Quu, Qux, qu = Q[nx:, nx:], Q[nx:, :nx], q[nx:]
        K[t] = -np.linalg.solve(Quu, Qux)
        k[t] = -np.linalg.solve(Quu, qu)
        Vxx = Q[:nx, :nx] + Q[:nx, nx:] @ K[t]
        Vxx = 0.5 * (Vxx + Vxx.T)
        vx = q[:nx] + Q[:nx, nx:] @ k[t]
    return K, np.array(k)


def test_eta_limits_global_policy_and_closed_form_lqr():
    rng = np.random.default_rng(2)
    dyn, ref, cost = random_system(rng), random_policy(rng), random_cost(rng)
    # eta -> inf: the surrogate cost is -log pbar, the solution is pbar itself
    p_inf, eta = _core.kl_lqr_backward(dyn, cost, ref, 1e12)
    assert eta == 1e12
    assert p_inf.kl(ref, dyn) < 1e-8
    for t in range(ref.horizon):
        assert np.allclose(p_inf.K[t], ref.K[t], atol=1e-9)
        assert np.allclose(p_inf.cov[t], ref.cov[t], atol=1e-9)
    # eta -> 0: the gains of the closed-form LQR of the true cost
    p0, _ = _core.kl_lqr_backward(dyn, cost, ref, 1e-10)
    K, k = numpy_lqr(dyn, cost)
    for t in range(ref.horizon):
        assert np.allclose(p0.K[t], K[t], rtol=1e-8, atol=1e-8 * np.abs(K[t]).max())
    assert np.allclose(p0.k, k, rtol=1e-8, atol=1e-8 * np.abs(k).max())
    # the max-entropy LQR without a reference has the same gains and Sigma = eta Q_uu^-1
    p_none, _ = _core.kl_lqr_backward(dyn, cost, None, 1.0)
    assert np.allclose(np.array(p_none.K), np.array(K), rtol=1e-10, atol=1e-12)


def test_kl_decreases_with_eta_and_dual_search_meets_the_bound():
    rng = np.random.default_rng(3)
    dyn, ref, cost = random_system(rng), random_policy(rng), random_cost(rng)
    etas = np.logspace(-3, 4, 15)
    kls = [_core.kl_lqr_backward(dyn, cost, ref, e)[0].kl(ref, dyn) for e in etas]
    assert np.all(np.diff(kls) < 0)
    for eps in (0.05, 0.5, 2.0, 8.0):
        for eta0 in (1e-4, 1.0, 1e6):
            res = _core.kl_lqr_solve(dyn, cost, ref, eps, eta0)
            assert res.converged, (eps, eta0, res.message)
            assert 0.9 * eps <= res.kl <= 1.1 * eps
            assert abs(res.policy.kl(ref, dyn) - res.kl) < 1e-12
            assert res.tries <= 50


def test_cstep_policy_minimises_the_lagrangian():
    """Perturbing (K, k, Sigma) of the eta-optimal policy never lowers E[l] / eta + KL(p || pbar)."""
    rng = np.random.default_rng(4)
    dyn, ref, cost = random_system(rng), random_policy(rng), random_cost(rng)
    eta = 0.7
    p, _ = _core.kl_lqr_backward(dyn, cost, ref, eta)

    def lagrangian(q):
        return q.expected_cost(dyn, cost) / eta + q.kl(ref, dyn)

    L0 = lagrangian(p)
    for _ in range(20):
        K = [Kt + 1e-3 * rng.standard_normal(Kt.shape) for Kt in p.K]
        k = p.k + 1e-3 * rng.standard_normal(p.k.shape)
        cov = []
        for S in p.cov:
            A = 1e-3 * rng.standard_normal(S.shape)
            cov.append(S + 0.5 * (A + A.T))
        assert lagrangian(_core.LinearGaussianPolicy(K, k, cov)) > L0


def test_cstep_rejects_bad_input():
    rng = np.random.default_rng(5)
    dyn, ref, cost = random_system(rng), random_policy(rng), random_cost(rng)
    with pytest.raises(ValueError):
        _core.kl_lqr_solve(dyn, cost, ref, -1.0)
    with pytest.raises(ValueError):
        _core.kl_lqr_solve(dyn, cost, random_policy(rng, T=5), 1.0)
    with pytest.raises(ValueError):
        _core.LgQuadraticCost([np.eye(5)] * 6, np.zeros((6, 5)), np.full(6, np.nan))
