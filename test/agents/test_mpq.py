"""MPQ pieces and a smoke run (mpq-model-predictive-q-learning.txt, Eqs. 7, 16-19, Tables 1, 3).

Seeded throughout. The free-energy target test checks Eq. (19) against an independent quadrature;
the smoke run checks that Q-learning on the true plant improves the short-horizon controller.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from dmpc_core import _core
from dmpc_core.agents.mpq import Q_FEATURES, MpqAgent, MpqSettings
from dmpc_core.agents.polo import MppiAgentSettings, q_to_native
from dmpc_core.critics.networks import QMLP, QMLPSettings
from dmpc_core.tasks.pendulum import (PendulumPlant, PendulumTaskSettings, sample_biased_parameter_sets,
                                      sample_biased_parameters, step_cost, wrap_angle)


def test_biased_model_sampling_range_and_independence():
    s = PendulumTaskSettings()
    rng = np.random.default_rng(0)
    draws = np.array([sample_biased_parameters(s, rng) for _ in range(4000)])
    assert draws.min() >= 0.9 and draws.max() <= 1.5
    np.testing.assert_allclose(draws.mean(0), [1.2, 1.2], atol=0.01)  # U[0.9, 1.5] x true
    np.testing.assert_allclose(draws.std(0), [0.6 / np.sqrt(12)] * 2, rtol=0.05)
    assert abs(np.corrcoef(draws.T)[0, 1]) < 0.05
    s2 = PendulumTaskSettings(mass=2.0, length=0.5)
    d2 = np.array([sample_biased_parameters(s2, np.random.default_rng(1)) for _ in range(1)])
    assert 1.8 <= d2[0, 0] <= 3.0 and 0.45 <= d2[0, 1] <= 0.75


def test_agent_draws_a_new_biased_model_per_episode_and_plant_stays_true():
    s = MpqSettings(use_q=False, learn=False, bias_mode="episode")
    s.task.episode_seconds = 0.1
    agent = MpqAgent(s, seed=0)
    params = set()
    for _ in range(3):
        agent.run_episode(np.array([np.pi, 0.0]))
        params.add(agent.model_params)
    assert len(params) == 3
    assert agent.plant.model.mass == 1.0 and agent.plant.model.length == 1.0


def test_swing_up_cost_native_matches_python():
    c = _core.PendulumSwingUpCost(1, 0.1, 1.0)
    for x in ([0.3, -1.0], [3.5, 2.0], [-7.0, 0.5], [np.pi - 1e-3, 0.0]):
        assert c.value(0.0, np.array(x), np.zeros(1)) == pytest.approx(step_cost(x))
    assert wrap_angle(2 * np.pi + 0.1) == pytest.approx(0.1)
    d = c.derivatives(0.0, np.array([0.4, 1.0]), np.zeros(1))
    np.testing.assert_allclose(d["lx"], [0.8, 0.2])


def test_plant_is_the_true_pendulum():
    """Small oscillation about the hanging position: period 2 pi sqrt(l/g)."""
    plant = PendulumPlant(PendulumTaskSettings(u_max=2.0, dt=0.01))
    plant.reset([np.pi + 0.05, 0.0])
    th = []
    for _ in range(400):
        plant.step([0.0])
        th.append(plant.state[0] - np.pi)
    th = np.array(th)
    crossings = np.nonzero(np.diff(np.sign(th)) > 0)[0]
    period = np.mean(np.diff(crossings)) * 0.01
    assert period == pytest.approx(2 * np.pi * np.sqrt(1.0 / 9.81), rel=0.02)


def _q(seed=0):
    torch.manual_seed(seed)
    q = QMLP(QMLPSettings(nx=3, nu=1, hidden=(32, 32)))
    q.set_input_normalization([0, 0, 0, 0], [1, 1, 4, 2])
    q.set_output_affine(3.0, 1.0)
    return q


def test_native_q_matches_torch_with_angle_features():
    q = _q()
    cost = q_to_native(q, Q_FEATURES, scale=1.0)
    rng = np.random.default_rng(0)
    xs, us = rng.normal(size=(10, 2)) * 3, rng.normal(size=(10, 1))
    feats = np.c_[np.cos(xs[:, 0]), np.sin(xs[:, 0]), xs[:, 1]]
    with torch.no_grad():
        ref = q(torch.from_numpy(feats), torch.from_numpy(us)).numpy()
    got = [cost.value(0.0, x, u) for x, u in zip(xs, us)]
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)
    # periodic in theta
    assert cost.value(0.0, xs[0] + [2 * np.pi, 0], us[0]) == pytest.approx(got[0], rel=1e-12)


def test_horizon_switch_puts_q_at_the_last_step():
    """MPPI path cost with HorizonSwitchCost equals sum_{t<H-1} gamma^t c_t + gamma^{H-1} Q (Eq. 16)
    for the nominal rollout (KL term off: control_cost_weight = 0)."""
    q = _q(1)
    s = MpqSettings(mppi=MppiAgentSettings(horizon=5, num_samples=8, noise_std=2.0, lambda_=0.15, step_size=0.5,
                                           gamma=0.9, control_cost_weight=0.0, smoothing=0.0), learn=False,
                    hidden=(32, 32))
    agent = MpqAgent(s, seed=0)
    agent.q.load_state_dict(q.state_dict())
    agent.model_params = (1.0, 1.0)
    solver = agent._solver(seed=0, horizon=5, num_samples=8, num_iterations=1)
    solver.set_state(np.array([2.0, 0.5]), 0.0)
    r = solver.optimize()
    xs, us = r.nominal_states, r.plan
    manual = sum(0.9**t * step_cost(xs[t]) for t in range(4))
    feats = torch.tensor([[np.cos(xs[4, 0]), np.sin(xs[4, 0]), xs[4, 1]]])
    with torch.no_grad():
        manual += 0.9**4 * float(q(feats, torch.from_numpy(us[4:5])))
    assert r.nominal_cost == pytest.approx(manual, rel=1e-9)


def test_free_energy_target_matches_quadrature_for_h1():
    """Eq. (19) with H = 1: y = c + gamma * F(s'), F = -lambda log E_{a ~ N(0, Sigma)} exp(-Q(s', a)/lambda)
    (the soft value). Unbounded controls so the Eq. (16) weights are exact importance weights."""
    lam, sigma = 0.5, 2.0
    s = MpqSettings(mppi=MppiAgentSettings(horizon=1, num_samples=20000, noise_std=sigma, lambda_=lam, step_size=0.5,
                                           gamma=0.9, control_cost_weight=1.0, smoothing=0.0),
                    target_iterations=3, minibatches=1)
    s.task.u_max = 1e6
    agent = MpqAgent(s, seed=0)
    agent.model_params = (1.0, 1.0)
    q = _q(2)
    x = np.array([[0.7, -0.4], [2.5, 1.0]])
    got = agent._free_energy_targets(x, np.zeros((2, 0)), q)
    a, wts = np.polynomial.hermite_e.hermegauss(80)  # E over N(0, 1) by Gauss-Hermite
    wts = wts / wts.sum()
    for i in range(2):
        feats = np.repeat([[np.cos(x[i, 0]), np.sin(x[i, 0]), x[i, 1]]], len(a), axis=0)
        with torch.no_grad():
            qa = q(torch.from_numpy(feats), torch.from_numpy(sigma * a[:, None])).numpy()
        ref = -lam * np.log(np.sum(wts * np.exp(-(qa - qa.min()) / lam))) + qa.min()
        assert got[i] == pytest.approx(ref, abs=0.02 * max(1.0, abs(ref))), (got[i], ref)
    # a plain min over actions (hard Q-learning) would be clearly lower: the test separates them
    assert all(got[i] - qa.min() > 0.05 for i in [1])
    batch = {"state": x, "action": np.zeros((2, 1)), "cost": np.array([1.0, 2.0]), "next_state": x,
             "goal": np.zeros((2, 0)), "done": np.zeros(2)}
    y = agent.trainer.target_fn(batch, q)
    np.testing.assert_allclose(y, batch["cost"] + 0.9 * got, rtol=1e-3)


def test_mpq_q_learning_smoke_learns_the_cost_structure():
    """Tiny budget: one episode of MPPI data from hanging starts, then Eq. (19) Q-learning updates.
    The loss falls and Q learns that upright is cheap and hanging is expensive (the untrained Q
    has no such ordering: checked first, so the test fails if learning does nothing)."""
    s = MpqSettings(minibatches=25, batch_size=64, hidden=(32, 32))
    s.mppi.horizon = 4
    s.task.episode_seconds = 4.0
    agent = MpqAgent(s, seed=0)
    agent.settings.minibatches = 0  # collect first, update below
    agent.run_episode(np.array([np.pi - 0.2, 0.0]))
    agent.run_episode(np.array([0.3, 0.0]))
    up = torch.tensor([[0.0, 0.0]], dtype=torch.float64)
    down = torch.tensor([[np.pi, 0.0]], dtype=torch.float64)
    a0 = torch.zeros(1, 1, dtype=torch.float64)
    with torch.no_grad():
        gap0 = float(agent.q(down, a0) - agent.q(up, a0))
    stats = [agent.trainer.update(agent.buffer) for _ in range(6)]
    with torch.no_grad():
        gap1 = float(agent.q(down, a0) - agent.q(up, a0))
    assert stats[-1]["critic/loss_mean"] < 0.5 * stats[0]["critic/loss_mean"], [st["critic/loss_mean"] for st in stats]
    # one-step cost difference is pi^2 ~ 9.9; the learned gap must be a clear part of it
    assert gap1 > 3.0 and gap1 > gap0 + 3.0, (gap0, gap1)


def _tiny(**kw):
    s = MpqSettings(use_q=False, learn=False, **kw)
    s.task.episode_seconds = 0.25
    return s


def test_bias_mode_run_draws_once_per_run_episode_mode_per_episode():
    """bias_mode="run": one model for the whole run (the first draw of the seed's stream, which is
    also the first episode's model in "episode" mode); "episode": a new model every episode."""
    x0 = np.array([np.pi, 0.0])
    run, epi = MpqAgent(_tiny(bias_mode="run"), seed=3), MpqAgent(_tiny(bias_mode="episode"), seed=3)
    run_params, epi_params = [], []
    for _ in range(3):
        st = run.run_episode(x0)
        run_params.append((st["train/model_mass"], st["train/model_length"]))
        st = epi.run_episode(x0)
        epi_params.append((st["train/model_mass"], st["train/model_length"]))
    assert len(set(run_params)) == 1 and len(set(epi_params)) == 3
    assert run_params[0] == pytest.approx(epi_params[0], rel=1e-15)
    assert all(0.9 <= v <= 1.5 for v in run_params[0])
    assert run.plant.model.mass == 1.0 and run.plant.model.length == 1.0
    # true_model ignores the bias mode
    t = MpqAgent(_tiny(bias_mode="run", true_model=True), seed=3)
    t.run_episode(x0)
    assert t.model_params == (1.0, 1.0)


def test_bias_mode_step_redraws_every_control_step_and_every_target_minibatch():
    s = _tiny(bias_mode="step")
    agent = MpqAgent(s, seed=0)
    seen = []
    orig = agent._solver

    def spy(*a, **k):
        seen.append(agent.model_params)
        return orig(*a, **k)

    agent._solver = spy
    st = agent.run_episode(np.array([np.pi, 0.0]))
    T = s.task.episode_steps
    # one solver for the episode start, then one per control step, each with a new draw
    assert len(seen) == T + 1 and len(set(seen[1:])) == T
    draws = np.array(seen[1:])
    assert draws.min() >= 0.9 and draws.max() <= 1.5
    np.testing.assert_allclose([st["train/model_mass"], st["train/model_length"]], draws.mean(0), rtol=1e-12)
    # Eq. (19) targets: a fresh model for every minibatch
    q = _q(0)
    agent.settings.mppi.horizon = 2
    before = len(seen)
    agent._free_energy_targets(np.zeros((2, 2)), np.zeros((2, 0)), q)
    agent._free_energy_targets(np.zeros((2, 2)), np.zeros((2, 0)), q)
    assert len(seen) == before + 2 and seen[-1] != seen[-2] and seen[-1] != seen[before - 1]


def test_bias_mode_step_with_a_degenerate_distribution_equals_the_fixed_model():
    """With bias_low = bias_high every draw is the same model: "step" (new solver each step, plan
    carried over) must then act like "run" apart from the MPPI noise stream: the costs of a 1 s
    episode from theta = 0.4 agree within 10 % (measured 51.3 vs 48.5; dropping the plan carry-over,
    i.e. a zero plan at every step, gives 57.4 and fails)."""
    costs = {}
    for mode in ("run", "step"):
        s = _tiny(bias_mode=mode)
        s.task.bias_low = s.task.bias_high = 1.2
        s.task.episode_seconds = 1.0
        agent = MpqAgent(s, seed=1)
        st = agent.run_episode(np.array([0.4, 0.0]))
        assert (st["train/model_mass"], st["train/model_length"]) == pytest.approx((1.2, 1.2), rel=1e-12)
        costs[mode] = st["train/episode_cost"]
    assert costs["step"] == pytest.approx(costs["run"], rel=0.10), costs


def test_invalid_bias_mode_and_polyak_are_rejected():
    with pytest.raises(ValueError, match="bias_mode"):
        MpqAgent(MpqSettings(bias_mode="trajectory"))
    with pytest.raises(ValueError, match="target_polyak"):
        MpqAgent(MpqSettings(target_polyak=1.0))
    with pytest.raises(ValueError, match="ensemble_size"):
        MpqAgent(MpqSettings(bias_mode="ensemble", ensemble_size=0))


def test_target_polyak_averages_the_target_q_and_zero_tracks_the_online_q():
    """target_polyak = p: after one gradient step theta_target = p theta_target_old + (1 - p) theta_new;
    p = 0 (MPQ's default, no target network) makes the target the online network."""
    x0 = np.array([np.pi - 0.3, 0.0])
    for p in (0.0, 0.9):
        s = MpqSettings(minibatches=1, batch_size=8, hidden=(16, 16), target_polyak=p)
        s.mppi.horizon = 2
        s.task.episode_seconds = 0.5
        agent = MpqAgent(s, seed=0)
        old = [t.detach().clone() for t in agent.trainer.target.parameters()]
        agent.run_episode(x0)  # collects, then one minibatch step
        new = [t.detach() for t in agent.q.parameters()]
        tgt = [t.detach() for t in agent.trainer.target.parameters()]
        assert agent.trainer.gradient_steps == 1
        assert any(not torch.equal(a, b) for a, b in zip(old, new))  # the online Q did move
        for o, n, t in zip(old, new, tgt):
            torch.testing.assert_close(t, p * o + (1 - p) * n, rtol=1e-12, atol=1e-12)


def test_biased_parameter_sets_bounds_mean_and_independence():
    """bias_mode "rollout" draws: (n, 2) rows (m, l), each U[bias_low, bias_high] x true, independent."""
    s = PendulumTaskSettings(mass=2.0, length=0.5)
    P = sample_biased_parameter_sets(s, np.random.default_rng(0), 8000)
    assert P.shape == (8000, 2)
    assert P[:, 0].min() >= 1.8 and P[:, 0].max() <= 3.0 and P[:, 1].min() >= 0.45 and P[:, 1].max() <= 0.75
    np.testing.assert_allclose(P.mean(0), [2.4, 0.6], rtol=0.01)
    np.testing.assert_allclose(P.std(0), [2.0 * 0.6 / np.sqrt(12), 0.5 * 0.6 / np.sqrt(12)], rtol=0.05)
    assert abs(np.corrcoef(P.T)[0, 1]) < 0.05


def test_bias_mode_rollout_gives_every_sample_its_own_model_at_every_step():
    s = _tiny(bias_mode="rollout")
    agent = MpqAgent(s, seed=2)
    K = s.mppi.num_samples
    draws = []
    orig = agent._draw_rollout_models

    def spy(solver):
        P = orig(solver)
        assert len(solver.rollout_models) == K
        draws.append(P)
        return P

    agent._draw_rollout_models = spy
    st = agent.run_episode(np.array([np.pi, 0.0]))
    T = s.task.episode_steps
    assert len(draws) == T and all(P.shape == (K, 2) for P in draws)
    allp = np.concatenate(draws)
    assert len({tuple(r) for r in allp}) == T * K  # all different, across rollouts and steps
    assert allp.min() >= 0.9 and allp.max() <= 1.5
    np.testing.assert_allclose([st["train/model_mass"], st["train/model_length"]],
                               [np.mean([P[:, 0].mean() for P in draws]), np.mean([P[:, 1].mean() for P in draws])],
                               rtol=1e-12)
    assert agent.model_params == pytest.approx((1.2, 1.2))  # the solver's own model: the mean
    assert agent.plant.model.mass == 1.0 and agent.plant.model.length == 1.0
    # Eq. (19) targets: a fresh set of K models for every target solve
    before = len(draws)
    agent._free_energy_targets(np.zeros((3, 2)), np.zeros((3, 0)), _q(0))
    assert len(draws) == before + 3 and not np.array_equal(draws[-1], draws[-2])


def test_bias_mode_rollout_spreads_the_rollout_costs_of_near_identical_controls():
    """With (almost) no control noise, every sample applies the same controls: with one model the K
    rollout costs coincide, with per-rollout models they spread (the models really differ per rollout)."""
    spread = {}
    for mode in ("run", "rollout", "ensemble"):
        s = _tiny(bias_mode=mode)
        s.mppi.noise_std = 1e-6
        s.mppi.control_cost_weight = 0.0  # the Eq. (16) term would scale with 1 / noise_std^2
        agent = MpqAgent(s, seed=4)
        solver = agent._solver(1, 8, s.mppi.num_samples, 1)
        if mode != "run":
            P = agent._draw_rollout_models(solver)
            assert len(P) == (s.mppi.num_samples if mode == "rollout" else s.ensemble_size)
        solver.set_plan(np.full((8, 1), 1.0))
        solver.set_state(np.array([np.pi - 0.5, 0.0]), 0.0)
        r = solver.optimize()
        spread[mode] = float(np.std(r.costs)) / float(np.mean(r.costs))
    # "ensemble": every sample sees the same models (mean cost), so no spread either
    assert spread["run"] < 1e-6 and spread["ensemble"] < 1e-6 and spread["rollout"] > 1e-2, spread


def test_bias_mode_rollout_is_deterministic_under_the_seed():
    x0 = np.array([np.pi - 0.1, 0.0])
    res = []
    for seed in (7, 7, 8):
        s = MpqSettings(bias_mode="rollout", minibatches=2, batch_size=8, hidden=(16, 16))
        s.mppi.horizon = 3
        s.task.episode_seconds = 0.5
        a = MpqAgent(s, seed=seed)
        st = [a.run_episode(x0) for _ in range(2)]
        res.append((st[-1]["train/episode_cost"], st[-1]["critic/loss_mean"], a.last_rollout_params.copy()))
    assert res[0][0] == res[1][0] and res[0][1] == res[1][1]
    np.testing.assert_array_equal(res[0][2], res[1][2])
    assert res[2][0] != res[0][0] and not np.array_equal(res[2][2], res[0][2])


def test_bias_mode_rollout_with_a_degenerate_distribution_equals_run_exactly():
    """bias_low = bias_high: every per-rollout model equals the run's model, the noise streams are the
    same, and the extra draws use their own stream, so acting AND learning match "run" bitwise."""
    out = {}
    for mode in ("run", "rollout"):
        s = MpqSettings(bias_mode=mode, minibatches=2, batch_size=8, hidden=(16, 16))
        s.task.bias_low = s.task.bias_high = 1.3
        s.mppi.horizon = 3
        s.task.episode_seconds = 0.5
        a = MpqAgent(s, seed=1)
        st = [a.run_episode(np.array([2.0, 0.0])) for _ in range(2)]
        out[mode] = [(d["train/episode_cost"], d["critic/loss_mean"]) for d in st]
    assert out["run"] == out["rollout"]


def test_state_dict_round_trip_keeps_the_run_model_and_step_stream():
    for mode in ("run", "step", "rollout"):
        a = MpqAgent(_tiny(bias_mode=mode), seed=5)
        a.run_episode(np.array([1.0, 0.0]))
        d = a.state_dict()
        b = MpqAgent(_tiny(bias_mode=mode), seed=6)
        b.load_state_dict(d)
        assert b.model_params == a.model_params and b.episodes == 1
        assert b.step_rng.uniform() == a.step_rng.uniform()
        assert b.rollout_rng.uniform() == a.rollout_rng.uniform()
