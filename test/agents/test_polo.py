"""POLO pieces and a smoke run (polo-plan-online-learn-offline.txt, Algorithm 1, Eqs. 5-7).

Seeded throughout. The smoke run checks the paper's Sec. 3.1 claim at a tiny budget: POLO with a
learned optimistic ensemble covers more of the reward-free world than per-step random exploration.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from dmpc_core import _core
from dmpc_core.agents.polo import (MppiAgentSettings, PoloAgent, PoloSettings, ensemble_to_native,
                                   spread_first_layer_units)
from dmpc_core.critics.targets import TrajectoryOptimizationTargets
from dmpc_core.critics.networks import ValueEnsemble, ValueEnsembleSettings, ValueMLPSettings
from dmpc_core.tasks.point_mass_worlds import (MAZE_OBSTACLES, PointMassWorld, PointMassWorldSettings,
                                               random_exploration_coverage)


# ---------------------------------------------------------------------------------------------
# world: coverage metric and contacts
def test_coverage_counts_free_cells_only():
    box = PointMassWorld(PointMassWorldSettings(world="box", grid_cells=10))
    assert box.free_cells.sum() == 100
    assert box.coverage() == pytest.approx(1 / 100)  # the start cell
    # drive right at full force: cells along the row get marked, one per 0.3 m
    for _ in range(40):
        box.step([1.0, 0.0])
    i0, j0 = box.cell_of(-1.2, -1.2)
    i1, _ = box.cell_of(*box.state[:2])
    assert box.visited[i0:i1 + 1, j0].all()
    assert box.coverage() == pytest.approx((i1 - i0 + 1) / 100)
    maze = PointMassWorld(PointMassWorldSettings(world="maze", grid_cells=30))
    n_free = maze.free_cells.sum()
    assert 0 < n_free < 900  # obstacle cells excluded from the denominator
    maze.visited[:] = True
    assert maze.coverage() == pytest.approx(1.0)


def test_contacts_stop_at_walls_and_arena():
    w = PointMassWorld(PointMassWorldSettings(world="maze"))
    w.reset([-1.2, -1.2])
    for _ in range(100):  # push up into the lower maze wall (y in [-0.575, -0.425])
        w.step([0.0, 1.0])
        assert not w.blocked(*w.state[:2])
    assert w.state[1] < MAZE_OBSTACLES[0][2] - w.settings.radius + 1e-9
    assert w.state[1] > MAZE_OBSTACLES[0][2] - w.settings.radius - 0.03  # resting on it (within a sub-step)
    assert abs(w.state[3]) < 0.05  # the normal velocity is killed by the contact
    for _ in range(100):  # then left into the arena boundary
        w.step([-1.0, 0.0])
    assert w.state[0] >= -1.5 + w.settings.radius - 1e-12


def test_random_exploration_is_seeded():
    s = PointMassWorldSettings(world="box")
    a = random_exploration_coverage(s, 200, seed=3)
    b = random_exploration_coverage(s, 200, seed=3)
    c = random_exploration_coverage(s, 200, seed=4)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert np.all(np.diff(a) >= 0)


# ---------------------------------------------------------------------------------------------
# native ensemble terminal value vs torch (Eqs. 5-6)
def _ensemble(kappa, seed=0, nx=4):
    torch.manual_seed(seed)
    ens = ValueEnsemble(ValueEnsembleSettings(value=ValueMLPSettings(nx=nx, hidden=(16, 16)), num_members=5,
                                              prior_beta=1.0, kappa=kappa))
    ens.set_input_normalization(np.r_[0.1 * np.arange(nx), 0.0], np.r_[np.linspace(0.5, 2.0, nx), 1.0])
    ens.set_output_affine(1.7, -0.3)
    return ens


@pytest.mark.parametrize("kappa", [0.0, 3.0, 50.0])
def test_native_ensemble_matches_torch(kappa):
    ens = _ensemble(kappa)
    cost = ensemble_to_native(ens)
    rng = np.random.default_rng(0)
    xs = rng.normal(size=(20, 4))
    with torch.no_grad():
        xt = torch.from_numpy(xs)
        ref = ens(xt, None, torch.zeros(20, 1)).numpy()
        ref_m = ens.member_values(xt, None, torch.zeros(20, 1)).numpy()
    got = np.array([cost.value(0.0, x, np.zeros(0)) for x in xs])
    got_m = np.array([cost.member_values(x, np.zeros(0)) for x in xs])
    np.testing.assert_allclose(got_m, ref_m, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)
    # optimism for costs: the aggregate lies between min and mean of the members
    assert np.all(got <= ref_m.mean(1) + 1e-12) and np.all(got >= ref_m.min(1) - 1e-12)


def test_native_ensemble_derivatives_match_torch():
    ens = _ensemble(5.0)
    cost = ensemble_to_native(ens)
    x = np.array([0.3, -0.2, 0.5, 0.1])
    d = cost.derivatives(0.0, x, np.zeros(0))
    with torch.no_grad():
        ref = ens.value_and_derivatives(torch.from_numpy(x[None]), None, torch.zeros(1, 1))
    np.testing.assert_allclose(d["lx"], ref["dvalue_dx"][0].numpy(), rtol=1e-6, atol=1e-8)
    lxx = d["lxx"]
    np.testing.assert_allclose(lxx, ref["d2value_dx2"][0].numpy(), rtol=1e-3, atol=1e-4)


def test_native_ensemble_rejects_bad_shapes():
    ens = _ensemble(1.0)
    good = ensemble_to_native(ens)
    assert good.num_members == 5 and good.input_size == 5
    w = [np.zeros((3, 4)), np.zeros((1, 3))]  # expects 5 inputs
    bad = [[(w, [np.zeros(3), np.zeros(1)], np.zeros(5), np.ones(5), 1.0, 0.0, 1.0)]]
    with pytest.raises(ValueError, match="layer 0 expects 5 inputs"):
        _core.MlpEnsembleCost(4, 0, [("id", i) for i in range(4)], False, np.zeros(1), bad, 1.0)
    with pytest.raises(ValueError, match="unknown feature kind"):
        _core.MlpEnsembleCost(4, 0, [("tan", 0)], False, np.zeros(1), bad, 1.0)


def test_position_only_value_ignores_velocity_natively_and_in_torch():
    """value_inputs="position": the agent's ensemble (torch) and its native terminal cost depend on
    the position only; value_position_scale changes the prior functions' length scale."""
    w = PointMassWorld(PointMassWorldSettings(world="box"))
    s = PoloSettings(mppi=MppiAgentSettings(horizon=4, num_samples=8), num_members=3, value_inputs="position",
                     value_position_scale=0.3)
    agent = PoloAgent(w, s, seed=3)
    cost = agent.terminal_cost()
    rng = np.random.default_rng(2)
    pos = rng.uniform(-1.4, 1.4, size=(10, 2))
    slow, fast = np.c_[pos, np.zeros((10, 2))], np.c_[pos, rng.normal(0, 3.0, size=(10, 2))]
    with torch.no_grad():
        t_slow = agent.ensemble(torch.from_numpy(slow), None, torch.zeros(10, 1)).numpy()
        t_fast = agent.ensemble(torch.from_numpy(fast), None, torch.zeros(10, 1)).numpy()
    n_slow = np.array([cost.value(0.0, x, np.zeros(0)) for x in slow])
    n_fast = np.array([cost.value(0.0, x, np.zeros(0)) for x in fast])
    np.testing.assert_allclose(n_slow, t_slow, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(t_fast, t_slow, rtol=0, atol=1e-9)
    np.testing.assert_allclose(n_fast, n_slow, rtol=0, atol=1e-9)
    assert np.ptp(t_slow) > 1e-3  # it does depend on the position
    # with the velocity on (the default) the same nets do depend on it
    s2 = PoloSettings(mppi=MppiAgentSettings(horizon=4, num_samples=8), num_members=3, value_position_scale=0.3)
    a2 = PoloAgent(PointMassWorld(PointMassWorldSettings(world="box")), s2, seed=3)
    with torch.no_grad():
        d = a2.ensemble(torch.from_numpy(fast), None, torch.zeros(10, 1)) - a2.ensemble(torch.from_numpy(slow), None, torch.zeros(10, 1))
    assert d.abs().max().item() > 1e-3
    with pytest.raises(ValueError, match="value_inputs"):
        PoloSettings(value_inputs="speed").validate()


def test_unit_spread_puts_every_first_layer_boundary_through_a_point_of_the_square():
    """value_unit_spread: unit j of the first layer of every member and prior is zero at its own
    centre c_j ~ U([-spread, spread]^2) (any velocity); torch's default puts all the boundaries
    near the arena centre. The native terminal cost follows the re-drawn biases."""
    scale, spread = 0.1, 1.5
    ens = ValueEnsemble(ValueEnsembleSettings(value=ValueMLPSettings(nx=4, ng=0, hidden=(16, 16)), num_members=3))
    ens.set_input_normalization(np.zeros(5), [scale, scale, 1e12, 1e12, 1.0])

    def boundary_distances():  # distance of each unit's boundary line from the arena centre [m]
        out = []
        for net in [*ens.members, *ens.priors]:
            w, b = net.layers[0].weight.detach().numpy(), net.layers[0].bias.detach().numpy()
            out.append(np.abs(b) / np.linalg.norm(w[:, :2] / scale, axis=1))
        return np.concatenate(out)

    assert np.median(boundary_distances()) < scale  # default init: mostly a fan around the centre
    spread_first_layer_units(ens, spread, np.random.default_rng(5))
    rng = np.random.default_rng(5)
    for net in [*ens.members, *ens.priors]:
        c = rng.uniform(-spread, spread, size=(16, 2))
        z = np.c_[c, np.random.default_rng(1).normal(0, 3, size=(16, 2)), np.zeros(16)]
        with torch.no_grad():
            pre = net.layers[0]((torch.from_numpy(z) - net.input_mean) / net.input_std).numpy()
        np.testing.assert_allclose(np.diag(pre), 0.0, atol=1e-9)
    d = boundary_distances()
    assert np.median(d) > 3 * scale and d.max() <= spread * np.sqrt(2) + 1e-9
    # through the agent: same seed -> same nets; native cost = torch aggregate
    s = PoloSettings(mppi=MppiAgentSettings(horizon=4, num_samples=8), num_members=3, value_inputs="position",
                     value_position_scale=scale, value_unit_spread=spread)
    a1, a2 = (PoloAgent(PointMassWorld(PointMassWorldSettings(world="box")), s, seed=4) for _ in range(2))
    x = np.c_[np.random.default_rng(3).uniform(-1.4, 1.4, size=(6, 2)), np.zeros((6, 2))]
    with torch.no_grad():
        t1 = a1.ensemble(torch.from_numpy(x), None, torch.zeros(6, 1)).numpy()
        t2 = a2.ensemble(torch.from_numpy(x), None, torch.zeros(6, 1)).numpy()
    np.testing.assert_array_equal(t1, t2)
    cost = a1.terminal_cost()
    np.testing.assert_allclose([cost.value(0.0, xi, np.zeros(0)) for xi in x], t1, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="needs value_inputs"):
        PoloSettings(value_unit_spread=1.0).validate()
    with pytest.raises(ValueError, match=">= 0"):
        PoloSettings(value_unit_spread=-1.0, value_inputs="position").validate()


# ---------------------------------------------------------------------------------------------
# Eq. (7) targets
def _small_agent(world="box", horizon=8, seed=0, **kw):
    w = PointMassWorld(PointMassWorldSettings(world=world))
    s = PoloSettings(mppi=MppiAgentSettings(horizon=horizon, num_samples=64), num_members=4, gradient_steps=8,
                     update_every=16, batch_size=16, target_horizon=6, target_samples=32, **kw)
    return PoloAgent(w, s, seed=seed)


def test_trajectory_optimisation_targets_follow_eq7():
    agent = _small_agent()
    rng = np.random.default_rng(1)
    states = np.c_[rng.uniform(-0.8, 0.8, size=(12, 2)), rng.normal(0, 0.3, size=(12, 2))]
    batch = {"state": states, "goal": np.zeros((12, 0)), "time_to_go": np.zeros(12)}
    target = agent.trainer.target
    costs, x_n, tau_n, dones = agent._plan_targets(states, batch["goal"], batch["time_to_go"], None)
    y = agent.targets(batch, target)
    assert y.shape == (12, 4)
    gamma, n = agent.settings.mppi.gamma, agent.settings.target_horizon
    with torch.no_grad():
        v_n = target.member_values(torch.from_numpy(x_n), None, torch.zeros(12, 1)).numpy()
        agg_n = target(torch.from_numpy(x_n), None, torch.zeros(12, 1)).numpy()
    disc = gamma ** np.arange(n)
    # the same seeded plans are recomputed inside targets(): identical arithmetic of Eq. (7)
    np.testing.assert_allclose(y, (costs * disc).sum(1)[:, None] + gamma**n * v_n, rtol=1e-10, atol=1e-12)
    # the N-step optimisation pursues the optimistic (low) aggregate: better than doing nothing
    pm = _core.PointMass2D(1.0, 0.1)
    idle = []
    for x in states:
        z = x.copy()
        for _ in range(n):  # zero control rollout (RK4, dt 0.05)
            for _ in range(1):
                k1 = pm.xdot(z, np.zeros(2)); k2 = pm.xdot(z + 0.025 * k1, np.zeros(2))
                k3 = pm.xdot(z + 0.025 * k2, np.zeros(2)); k4 = pm.xdot(z + 0.05 * k3, np.zeros(2))
                z = z + 0.05 / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        idle.append(z)
    with torch.no_grad():
        agg_idle = target(torch.from_numpy(np.array(idle)), None, torch.zeros(12, 1)).numpy()
    assert np.mean(agg_n + (costs * disc).sum(1) / gamma**n) < np.mean(agg_idle)



def test_per_member_targets_follow_eq7_literally():
    """target_mode="member": member k's target comes from an N-step MPPI against V_k alone."""
    agent = _small_agent(target_mode="member", prior_beta=3.0)
    rng = np.random.default_rng(2)
    b = 16
    states = np.c_[rng.uniform(-0.8, 0.8, size=(b, 2)), rng.normal(0, 0.3, size=(b, 2))]
    batch = {"state": states, "goal": np.zeros((b, 0)), "time_to_go": np.zeros(b)}
    target = agent.trainer.target
    y = agent.targets(batch, target)
    assert y.shape == (b, 4)
    gamma, n = agent.settings.mppi.gamma, agent.settings.target_horizon
    # the box interior has no running cost: y^k = gamma^N V_k(s_N^k) with s_N^k from member k's plan
    costs, x_n, _, _ = agent._plan_targets(states, batch["goal"], batch["time_to_go"], None,
                                           terminal=ensemble_to_native(target, members=[2]))
    with torch.no_grad():
        v2 = target.member_values(torch.from_numpy(x_n), None, torch.zeros(b, 1)).numpy()[:, 2]
    disc = gamma ** np.arange(n)
    np.testing.assert_allclose(y[:, 2], (costs * disc).sum(1) + gamma**n * v2, rtol=1e-10, atol=1e-12)
    # each member does better on its own objective than when bootstrapped at the aggregate's s_N
    agent.settings.target_mode = "aggregate"
    y_agg = TrajectoryOptimizationTargets(agent._plan_targets, gamma)(batch, target)
    assert np.all(np.mean(y, axis=0) < np.mean(y_agg, axis=0)), (y.mean(0), y_agg.mean(0))
    # member k's targets do not depend on the other members
    with torch.no_grad():
        for p in target.members[0].parameters():
            p.add_(0.5)
    agent.settings.target_mode = "member"
    y2 = agent.targets(batch, target)
    np.testing.assert_allclose(y2[:, 1:], y[:, 1:], rtol=1e-12, atol=1e-12)
    assert np.abs(y2[:, 0] - y[:, 0]).max() > 1e-3
    with pytest.raises(ValueError, match="target_mode"):
        PoloSettings(target_mode="max").validate()



def _member_std(agent, states):
    with torch.no_grad():
        v = agent.trainer.target.member_values(torch.from_numpy(states), None, torch.zeros(len(states), 1))
    return v.std(dim=1).mean().item()


def test_shared_targets_collapse_the_disagreement_where_there_is_data():
    """target_mode="shared": one target per state for all members (Eq. 5's common y_i). Fitted on
    states near one corner, the members come to agree there and keep disagreeing far away; with
    per-member bootstrapping ("aggregate") they keep most of their disagreement at the data."""
    rng = np.random.default_rng(0)
    data = np.c_[rng.uniform(-1.2, -0.8, size=(64, 2)), np.zeros((64, 2))]
    far = np.c_[rng.uniform(0.8, 1.2, size=(64, 2)), np.zeros((64, 2))]
    ratio = {}
    for mode in ("shared", "aggregate"):
        agent = _small_agent(target_mode=mode, prior_beta=3.0, learning_rate=3e-3)
        for x in data:
            agent.buffer.add(state=x, goal=np.zeros(0), time_to_go=0.0, cost=0.0, next_state=x,
                             next_time_to_go=0.0, done=0.0)
        before = _member_std(agent, data)
        if mode == "shared":
            batch = agent.buffer.sample(8, np.random.default_rng(1))
            y = agent.targets(batch, agent.trainer.target)
            assert y.shape == (8,)  # one target per state, broadcast to the members by the trainer
            assert agent.trainer.compute_targets(batch).shape == (8, 4)
        for _ in range(10):
            agent.trainer.update(agent.buffer)
        ratio[mode] = _member_std(agent, data) / _member_std(agent, far)
        assert _member_std(agent, data) < before
        if mode == "shared":  # the same on the coverage grid: cells of the data count as visited
            agent.world.visited[:] = False
            for x in data:
                agent.world.visited[agent.world.cell_of(x[0], x[1])] = True
            d = agent.disagreement()
            assert d["std_ratio"] == pytest.approx(d["member_std_visited"] / d["member_std_unvisited"])
            assert d["std_ratio"] < 0.5, d
    assert ratio["shared"] < 0.3, ratio
    assert ratio["shared"] < 0.5 * ratio["aggregate"], ratio


# ---------------------------------------------------------------------------------------------
def test_polo_smoke_covers_more_than_random_exploration():
    """Short run in the box: POLO (H = 16, learning) vs i.i.d. random controls, same steps."""
    steps = 300
    polo = []
    for seed in (0, 1):
        agent = _small_agent(horizon=16, seed=seed)
        for _ in range(steps):
            agent.step()
        polo.append(agent.world.coverage())
    rand = [random_exploration_coverage(PointMassWorldSettings(world="box"), steps, seed=s)[-1] for s in range(4)]
    assert min(polo) > max(rand), (polo, rand)


# ---------------------------------------------------------------------------------------------
def test_plan_starts_keeps_the_best_of_the_straight_full_throttle_starts():
    """Multi-start (opt-in): with nearly no sampling noise a single warm-started MPPI
    solve stays at rest, while the straight full-throttle start towards a far, cheap terminal
    region is kept (its nominal cost is lower) and its first control is applied."""
    target = np.array([0.3, -1.2, 0.0, 0.0])  # 1.5 m to the right of the start (-1.2, -1.2)
    actions, costs = {}, {}
    for d in (0, 8):
        agent = _small_agent(horizon=16, plan_starts=d, learn=False)
        agent.settings.mppi.noise_std = 1e-3
        agent.terminal_cost = lambda model=None: _core.QuadraticCost(np.diag([1.0, 1.0, 0.0, 0.0]), np.zeros((2, 2)), target)
        agent.solver = agent._build_solver(np.zeros((16, 2)))
        x = np.array(agent.world.state)
        actions[d] = agent.act(x)
        plan = np.array(agent.solver.plan)
        agent.solver.set_plan(plan)
        agent.solver.set_state(x, 0.0)
        costs[d] = agent.solver.optimize().nominal_cost
    assert np.linalg.norm(actions[0]) < 0.05, actions
    np.testing.assert_allclose(actions[8], [1.0, 0.0], atol=0.05)  # the start pointing at the target
    assert costs[8] < costs[0] - 0.1, costs
    assert len(agent.start_plans()) == 8 and agent.start_plans()[2].shape == (16, 2)
    with pytest.raises(ValueError):
        PoloSettings(plan_starts=-1).validate()


# ---------------------------------------------------------------------------------------------
def _shipped_maze_agent(seed=0, **agent_overrides):
    """The agent of config/polo_maze.yaml (cheaper acting and fitting budgets, same mechanism)."""
    from dmpc_core.experiments._common import load_config
    from dmpc_core.experiments.polo_maze import DEFAULT_CONFIG, SECTIONS, build

    sets = ["agent.mppi.num_samples=48", "agent.gradient_steps=16", "agent.plan_starts=0",
            *[f"agent.{k}={v}" for k, v in agent_overrides.items()]]
    world_s, agent_s, _ = build(load_config(DEFAULT_CONFIG, sets, SECTIONS), "test")
    return PoloAgent(PointMassWorld(world_s), agent_s, seed=seed)


def _explores(d):
    """The Eq. (5)-(6) signal: members agree where the agent has been, disagree elsewhere, and the
    optimism there is large enough to steer the acting MPPI (tens of its temperature)."""
    return (d["member_std_unvisited"] > 4 * d["member_std_visited"]
            and d["optimism_unvisited"] > 4 * d["optimism_visited"]
            and d["optimism_steer_unvisited"] > 10.0)


def test_disagreement_is_higher_on_unvisited_cells_and_needs_priors_and_optimism():
    """After a short maze run with the shipped agent, the member std and the optimism are higher
    on the unvisited than on the visited cells. With the randomized priors off (beta 0) the
    unvisited disagreement is that of the trainable nets' initialisation and its optimism cannot
    steer the planner; with the optimism off (kappa 0, plain mean) there is no bonus at all."""
    steps = 96
    runs = {}
    for name, over in (("polo", {}), ("no_priors", {"prior_beta": 0.0})):
        agent = _shipped_maze_agent(**over)
        for _ in range(steps):
            agent.step()
        runs[name] = agent
    d = runs["polo"].disagreement()
    assert 0.02 < runs["polo"].world.coverage() < 1.0
    assert _explores(d), d
    assert d["value_unvisited"] < d["value_visited"], d  # the optimistic aggregate points away from the data
    assert not _explores(runs["no_priors"].disagreement()), runs["no_priors"].disagreement()
    runs["polo"].trainer.target.kappa.fill_(0.0)  # optimism off: the aggregate is the member mean
    d0 = runs["polo"].disagreement()
    assert d0["optimism_unvisited"] == pytest.approx(0.0, abs=1e-12) and not _explores(d0), d0
    assert d0["member_std_unvisited"] == pytest.approx(d["member_std_unvisited"])


def test_t_interval_of_the_mean():
    from dmpc_core.experiments.polo_maze import t_interval

    mean, half = t_interval(np.array([[1.0, 10.0], [2.0, 10.0], [3.0, 10.0]]), axis=0)
    np.testing.assert_allclose(mean, [2.0, 10.0])
    np.testing.assert_allclose(half, [4.302653 / np.sqrt(3), 0.0], rtol=1e-6)  # t_{0.975, 2} = 4.3027
    assert t_interval(np.array([[0.3]]), axis=0)[1][0] == 0.0  # one seed: no interval
