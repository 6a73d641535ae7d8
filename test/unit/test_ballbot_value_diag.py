"""dmpc_core.experiments.ballbot_value_diag: value fields of Ballbot walls critics."""
import numpy as np
import pytest

from dmpc_core import _core
from dmpc_core.experiments.ballbot_value_diag import agreement, input_matrix, native_value_fn, value_field
from dmpc_core.tasks import ballbot
from dmpc_core.tasks.ballbot_walls import WallsTask, WallsTaskSettings

GOAL = np.array([0.0, 0.8])
LEAD = 0.3


def _task():
    return WallsTask(WallsTaskSettings(walls=[[-0.4, 0.0, 0.4, 0.0]], target=list(GOAL)))


def _analytic(dist, h=1e-4):
    """V = tau * dist(p + LEAD v), Vx by central differences in p (and v = LEAD * that)."""
    def fn(taus, X):
        q = X[:, :2] + LEAD * X[:, 5:7]
        V = taus * dist(q)
        Vx = np.zeros_like(X)
        for j in range(2):
            e = np.zeros(2)
            e[j] = h
            d = (dist(q + e) - dist(q - e)) / (2 * h)
            Vx[:, j] = taus * d
            Vx[:, 5 + j] = taus * LEAD * d
        return V, Vx
    return fn


def test_value_field_gradients_and_greedy_input():
    model = _core.BallbotDynamics()
    fn = _analytic(lambda q: np.linalg.norm(q - GOAL, axis=1))
    f = value_field(fn, model, 0.05, [-0.5, 0.5], [-0.8, 1.2], [2.0])
    # -dV/dp points at the goal with magnitude tau
    d = GOAL - np.array([-0.5, -0.8])
    np.testing.assert_allclose(-f.dVdp[0, 0, 0], 2.0 * d / np.linalg.norm(d), atol=1e-6)
    # u* = -R^-1 g' Vx and a* = g_v u*: a* is a descent direction of V in velocity
    G = input_matrix(model, np.zeros(ballbot.NX))
    np.testing.assert_allclose(f.u_star[0, 0, 0], -(G.T @ np.r_[f.dVdp[0, 0, 0], 0, 0, 0, f.dVdv[0, 0, 0], 0, 0, 0]) / 0.05)
    assert np.all(np.sum(f.acc[0] * -f.dVdv[0], axis=-1) > 0)


def test_agreement_tells_the_way_round_from_the_straight_line():
    task = _task()
    model = _core.BallbotDynamics()
    xs, ys = np.linspace(-0.4, 0.4, 5), np.linspace(-0.8, -0.3, 3)  # under the wall
    euclid = value_field(_analytic(lambda q: np.linalg.norm(q - GOAL, axis=1)), model, 0.05, xs, ys, [2.0])
    geo = value_field(_analytic(lambda q: task.geodesic_distance(q, GOAL, 0.05)), model, 0.05, xs, ys, [2.0])
    a_e, a_g = agreement(euclid, task, GOAL), agreement(geo, task, GOAL)
    assert a_g["n"][0] >= 10
    assert a_g["cos_p"][0] > 0.99 and a_g["frac_p"][0] == 1.0 and a_g["frac_a"][0] == 1.0
    assert a_g["corr_geo"][0] > 0.99 and a_g["cos_vp"][0] > 0.999  # V(p + lead v): gradients aligned
    # under the wall the straight direction is off the way round
    assert a_e["cos_p"][0] < 0.75 and a_e["frac_p"][0] < 0.5
    assert a_e["cos_p_euclid"][0] > 0.99


def test_native_value_fn_matches_the_exported_network():
    torch = pytest.importorskip("torch")
    from dmpc_core.critics.learner import CriticLearner, LearnerSettings
    from dmpc_core.critics.bundle import load_bundle

    torch.manual_seed(0)
    learner = CriticLearner(LearnerSettings(hidden=(8, 8)), ballbot.NX, 2, robot="ballbot")
    fn = native_value_fn(load_bundle(learner.export()).to_native(), GOAL)
    rng = np.random.default_rng(0)
    X = rng.normal(0.0, 0.5, (5, ballbot.NX))
    taus = rng.uniform(0, 3, 5)
    V, Vx = fn(taus, X)
    with torch.no_grad():
        ref = learner.trainer.target(torch.tensor(X), torch.tensor(np.tile(GOAL, (5, 1))),
                                     torch.tensor(taus.reshape(-1, 1))).numpy().ravel()
    np.testing.assert_allclose(V, ref, rtol=1e-6, atol=1e-8)
    h = 1e-5
    for j in (0, 6):
        e = np.zeros(ballbot.NX)
        e[j] = h
        fd = (fn(taus, X + e)[0] - fn(taus, X - e)[0]) / (2 * h)
        np.testing.assert_allclose(Vx[:, j], fd, rtol=1e-4, atol=1e-6)


def test_scaled_native_critic_scales_value_and_gradient():
    pytest.importorskip("torch")
    from dmpc_core.critics.learner import CriticLearner, LearnerSettings
    from dmpc_core.experiments.ballbot_value_diag import scaled_native_critic

    learner = CriticLearner(LearnerSettings(hidden=(8,)), ballbot.NX, 2, robot="ballbot")
    b = learner.export()
    X = np.random.default_rng(1).normal(0.0, 0.5, (4, ballbot.NX))
    taus = np.array([0.5, 1.0, 2.0, 3.0])
    V1, Vx1 = native_value_fn(scaled_native_critic(b, 1.0), GOAL)(taus, X)
    V3, Vx3 = native_value_fn(scaled_native_critic(b, 3.0), GOAL)(taus, X)
    assert np.abs(V1).max() > 1e-6
    np.testing.assert_allclose(V3, 3.0 * V1, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(Vx3, 3.0 * Vx1, rtol=1e-12, atol=1e-14)
