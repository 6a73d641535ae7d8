"""CriticMLP batched evaluation (evaluate_batch -> CriticMLP::calc_diff_batch) agrees with the
per-point calc_diff (itself checked against torch in test_native_critic.py) for several
architectures, including an affine critic (no hidden layer) and ng = 0."""
import numpy as np
import pytest

from dmpc_core import _core


def make(nx, ng, hidden, seed):
    rng = np.random.default_rng(seed)
    sizes = [nx + ng + 1, *hidden, 1]
    W = [rng.normal(0, 1 / np.sqrt(sizes[i]), (sizes[i + 1], sizes[i])) for i in range(len(sizes) - 1)]
    b = [rng.normal(0, 0.3, sizes[i + 1]) for i in range(len(sizes) - 1)]
    critic = _core.CriticMLP(W, b, rng.normal(0, 0.5, sizes[0]), rng.uniform(0.5, 2.0, sizes[0]), 1.7, -0.4, nx, ng)
    if ng:
        critic.set_goal(rng.normal(size=ng))
    return critic


@pytest.mark.parametrize("nx,ng,hidden", [(10, 2, [12, 12, 12]), (3, 0, [5]), (4, 1, []), (2, 3, [7, 4])])
def test_batch_matches_pointwise(nx, ng, hidden):
    critic = make(nx, ng, hidden, seed=nx + len(hidden))
    rng = np.random.default_rng(5)
    B = 9
    X = rng.normal(size=(B, nx))
    taus = rng.uniform(0.0, 3.0, B)
    out = critic.evaluate_batch(taus, X)
    d = critic.create_data()
    for b in range(B):
        critic.calc_diff(d, float(taus[b]), X[b])
        for key, ref in (("V", d.V), ("Vx", d.Vx), ("Vxx", d.Vxx), ("Vtau", d.Vtau), ("Vtaux", d.Vtaux)):
            ref = np.asarray(ref)
            err = np.max(np.abs(np.asarray(out[key][b]) - ref))
            assert err <= 1e-12 * max(1.0, np.max(np.abs(ref))), (key, b, err)
        assert np.array_equal(out["Vxx"][b], out["Vxx"][b].T)
    # Empty batch and mis-shaped input.
    empty = critic.evaluate_batch(np.zeros(0), np.zeros((0, nx)))
    assert empty["Vxx"].shape == (0, nx, nx)
    with pytest.raises(ValueError):
        critic.evaluate_batch(np.zeros(3), np.zeros((2, nx)))
