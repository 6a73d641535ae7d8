"""The S-step of the Gaussian MLP global policy (MDGPS App. B.2)."""
import numpy as np
import pytest

from dmpc_core.policies.gaussian_mlp import GaussianMlpPolicy, GaussianMlpSettings


def effective_linear(p):
    """(K, k) of a linear network on normalised observations, in raw coordinates."""
    W = p.net[0].weight.detach().numpy()
    b = p.net[0].bias.detach().numpy()
    return W * p.obs_scale, b - W @ (p.obs_mean * p.obs_scale)


def test_linear_policy_recovers_linear_teacher():
    rng = np.random.default_rng(0)
    K = rng.standard_normal((2, 3))
    k = rng.standard_normal(2)
    X = rng.standard_normal((100, 3)) * np.array([1.0, 3.0, 0.2]) + 1.0
    # full batch: Adam on the convex quadratic of a linear policy (the convex case of Alg. 2)
    p = GaussianMlpPolicy(3, 2, GaussianMlpSettings(hidden=[], learning_rate=2e-2, weight_decay=0.0, batch_size=100,
                                                    iterations=2000), seed=0)
    prc = np.tile(np.diag([2.0, 0.5]), (100, 1, 1))
    r = p.train(X, X @ K.T + k, prc)
    Kh, kh = effective_linear(p)
    assert np.abs(Kh - K).max() < 1e-3
    assert np.abs(kh - k).max() < 1e-3
    assert r["loss_last"] < 1e-3 * r["loss_first"]
    # closed-form covariance: 1 / diag(mean precision)
    assert np.allclose(p.var, [0.5, 2.0])


def test_loss_is_the_precision_weighted_mean_term():
    """full_loss is (1/2M) sum (mu - mu_p)^T C^-1 (mu - mu_p), and the S-step lowers it."""
    rng = np.random.default_rng(1)
    X = rng.standard_normal((60, 2))
    Y = np.hstack([np.sin(X[:, :1]), X[:, 1:] ** 2])
    A = rng.standard_normal((60, 2, 2))
    prc = np.einsum("nij,nkj->nik", A, A) + 0.1 * np.eye(2)
    p = GaussianMlpPolicy(2, 2, GaussianMlpSettings(hidden=[16], learning_rate=1e-2, iterations=300, batch_size=60),
                          seed=0)
    p.obs_mean, p.obs_scale = np.zeros(2), np.ones(2)
    d = p.mean(X) - Y
    assert np.isclose(p.full_loss(X, Y, prc), sum(di @ P @ di for di, P in zip(d, prc)) / 120)
    before = p.full_loss(X, Y, prc)
    p.train(X, Y, prc)
    assert p.full_loss(X, Y, prc) < 0.5 * before


def test_bad_input_and_checkpoint_roundtrip():
    p = GaussianMlpPolicy(2, 1, GaussianMlpSettings(iterations=50), seed=0)
    with pytest.raises(ValueError):
        p.train(np.zeros((5, 3)), np.zeros((5, 1)), np.ones((5, 1, 1)))
    with pytest.raises(ValueError):
        p.mean(np.array([np.nan, 0.0]))
    rng = np.random.default_rng(2)
    X = rng.standard_normal((30, 2))
    p.train(X, X[:, :1], np.ones((30, 1, 1)))
    q = GaussianMlpPolicy(2, 1, GaussianMlpSettings(iterations=50), seed=5)
    q.load_state_dict(p.state_dict())
    assert np.allclose(q.mean(X), p.mean(X))
    assert np.allclose(q.var, p.var)
