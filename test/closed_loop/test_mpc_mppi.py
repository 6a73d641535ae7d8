"""Receding-horizon MPPI (dmpc_core.mpc.MppiMpcController) and the solver selection of the settings."""
from __future__ import annotations

import inspect

import numpy as np
import pytest

from dmpc_core.control.panda_reach import PandaReachSettings
from dmpc_core.control.reach_mpc import ReachMpc, ReachSettings
from dmpc_core.mpc import MpcController, MpcSettings, MppiMpcController, MppiMpcSettings, make_controller
from dmpc_core.settings import ConfigError, from_dict
from dmpc_core.sim import Plant, PlantSettings, simulate_closed_loop
from dmpc_core.tasks import ballbot

GOAL = (0.8, 0.0)


def mppi_reach(feedback="lqr", rate=50.0, seed=0, **mppi) -> ReachMpc:
    s = ReachSettings(mpc=MpcSettings(horizon=25, dt=0.02, mpc_rate=rate, tracking_rate=400.0, solver="mppi",
                                      mppi=MppiMpcSettings(feedback=feedback, seed=seed, **mppi)))
    return ReachMpc(s, GOAL)


def test_ballbot_mppi_mpc_stays_upright_and_moves_to_the_goal():
    """Closed loop on the Python plant (1 kHz RK4 physics, 400 Hz tracking, re-plan at 50 Hz):
    starting tilted by 0.03 rad, 0.8 m from the goal."""
    r = mppi_reach()
    assert isinstance(r.mpc, MppiMpcController)
    x0 = np.zeros(10)
    x0[ballbot.PITCH] = 0.03
    plant = Plant(r.model, x0, PlantSettings(physics_dt=1e-3))
    log = simulate_closed_loop(plant, r.mpc, duration=3.0)
    a = log.arrays()
    assert set(log.status) == {"ok"}
    assert np.all(np.isfinite(a["u"]))
    dist = np.hypot(a["x"][:, 0] - GOAL[0], a["x"][:, 1] - GOAL[1])
    assert ballbot.tilt(a["x"]).max() < 0.15  # upright (0.07 rad at most when written)
    assert dist[-1] < 0.4 and dist.min() < 0.25  # 0.8 m -> ~0.1-0.3 m within 3 s when written


def test_node_interface_parity_with_slq():
    """Everything the controller node and ReachMpc use exists on both controllers, with the same
    call signatures."""
    slq = ReachMpc(ReachSettings(mpc=MpcSettings(horizon=25, dt=0.02)), GOAL).mpc
    mppi = mppi_reach().mpc
    assert isinstance(slq, MpcController) and (slq.name, mppi.name) == ("slq", "mppi")
    for attr in ("update", "control", "is_ok", "warm_start_from", "set_policy_interpolation"):
        assert inspect.signature(getattr(MpcController, attr)).parameters.keys() == \
            inspect.signature(getattr(MppiMpcController, attr)).parameters.keys(), attr
    x = np.zeros(10)
    for c in (slq, mppi):
        assert c.policy is None and np.array_equal(c.control(0.0, x), np.zeros(3))  # safe command
        res = c.update(0.0, x)
        assert c.is_ok(res) and res.solve_time > 0 and isinstance(res.status, str)
        assert np.asarray(c.policy.x_nom).shape == (26, 10)  # planned path: N + 1 states
        assert c.control(0.01, x).shape == (3,)
        assert c.settings.mpc_rate > 0 and c.settings.tracking_rate > 0


def test_plan_is_zero_order_hold_and_warm_started_by_shifting():
    c = mppi_reach(feedback="none").mpc
    x = np.zeros(10)
    x[ballbot.PITCH] = 0.02
    c.update(1.0, x)
    pol = c.policy
    plan = np.asarray(pol.u_ff)
    assert pol.t0 == 1.0 and plan.shape == (25, 3)
    np.testing.assert_array_equal(np.asarray(pol.K), 0.0)
    np.testing.assert_allclose(c.control(1.0, x + 1.0), plan[0])  # open loop: x does not matter
    np.testing.assert_allclose(c.control(1.0 + 1.5 * 0.02, x), plan[1])  # ZOH within the node
    np.testing.assert_allclose(c.control(99.0, x), plan[-1])  # beyond the horizon: last control
    # warm start: the plan shifts by the whole steps of dt elapsed on its grid (re-plans every
    # 0.01 s with dt = 0.02 s shift once every other update, never drift)
    class Spy:
        def __init__(self, inner):
            self.inner, self.shifts, self.plans = inner, [], []

        def shift(self, n):
            self.plans.append(np.asarray(self.inner.plan))
            self.shifts.append(n)
            self.inner.shift(n)
            self.plans.append(np.asarray(self.inner.plan))

        def __getattr__(self, name):
            return getattr(self.inner, name)

    spy = c.solver = Spy(c.solver)
    for t in (1.01, 1.02, 1.03, 1.045, 1.15):
        c.update(t, x)
        assert c.policy.t0 == t
    assert spy.shifts == [1, 1, 5]  # at 1.02, 1.045 (grid -> 1.04) and 1.15 (grid -> 1.14)
    before, after = spy.plans[-2:]
    np.testing.assert_array_equal(after[:-5], before[5:])
    np.testing.assert_array_equal(after[-5:], np.tile(before[-1], (5, 1)))  # tail repeats the last
    # with feedback = lqr, control = plan + K (x - x_nom)
    f = mppi_reach(feedback="lqr").mpc
    f.update(0.0, x)
    K = np.asarray(f.policy.K)[0]
    dx = np.zeros(10)
    dx[ballbot.PITCH] = 0.01
    np.testing.assert_allclose(f.control(0.0, x + dx), np.asarray(f.policy.u_ff)[0] + K @ dx, atol=1e-12)
    assert np.abs(K).max() > 1.0  # the upright LQR gain, not zeros


def test_mppi_keeps_its_policy_on_bad_input_and_warm_starts_from_another():
    a = mppi_reach().mpc
    a.update(0.0, np.zeros(10))
    pol = a.policy
    with pytest.raises(ValueError, match="non-finite"):
        a.update(0.02, np.full(10, np.nan))
    assert a.policy is pol
    b = mppi_reach(seed=1).mpc
    b.warm_start_from(a)
    assert b.policy is pol
    np.testing.assert_array_equal(np.asarray(b.solver.plan), np.asarray(a.solver.plan))
    assert b.is_ok(b.update(0.04, np.zeros(10)))


def test_mppi_uses_the_problem_costs_including_the_control_weight():
    """The sampled rollouts see l(t, x, u) + 1/2 u'Ru and the problem's terminal cost: the
    nominal cost of a plan equals the SLQ problem's discretised objective of the same rollout."""
    from dmpc_core import _core

    c = mppi_reach().mpc
    x0 = np.zeros(10)
    x0[ballbot.PITCH] = 0.02
    c.update(0.0, x0)
    pol, p = c.policy, c.problem
    R = np.asarray(p.control_weight)
    xs, us = np.asarray(pol.x_nom), np.asarray(pol.u_ff)
    cost = sum(p.dt * (p.running_cost.value(k * p.dt, xs[k], us[k]) + 0.5 * us[k] @ R @ us[k]) for k in range(25))
    cost += p.terminal_cost.value(25 * p.dt, xs[-1], np.zeros(p.terminal_cost.nu))
    assert c.last_result.cost == pytest.approx(cost, rel=1e-9)
    np.testing.assert_allclose(xs[1], _core.integrate(p.dynamics, x0, us[0], p.dt, "rk4"), atol=1e-12)


def test_solver_setting_is_validated():
    with pytest.raises(ConfigError, match="solver must be one of"):
        from_dict(MpcSettings, {"solver": "ilqr"}, "cfg:mpc")
    with pytest.raises(ConfigError, match="solver must be one of"):
        from_dict(ReachSettings, {"mpc": {"solver": "MPPI"}}, "reach")
    with pytest.raises(ConfigError, match="num_samples"):
        from_dict(ReachSettings, {"mpc": {"solver": "mppi", "mppi": {"num_samples": 0}}}, "reach")
    with pytest.raises(ConfigError, match="feedback"):
        from_dict(MpcSettings, {"mppi": {"feedback": "pid"}})
    with pytest.raises(ConfigError, match="unknown key"):
        from_dict(MpcSettings, {"mppi": {"noise_sigma": 0.5}})
    with pytest.raises(ConfigError, match="not supported for the Franka Panda"):
        from_dict(PandaReachSettings, {"mpc": {"solver": "mppi"}}, "reach")
    assert from_dict(MpcSettings, {}).solver == "slq"
    s = from_dict(ReachSettings, {"mpc": {"solver": "mppi", "horizon": 25, "dt": 0.02, "mppi": {"num_samples": 64}}})
    assert s.mpc.solver == "mppi" and s.mpc.mppi.num_samples == 64
    assert isinstance(ReachMpc(s, GOAL).mpc, MppiMpcController)


def test_make_controller_needs_a_gain_for_lqr_feedback():
    r = ReachMpc(ReachSettings(mpc=MpcSettings(horizon=10, dt=0.02)), GOAL)
    s = MpcSettings(horizon=10, dt=0.02, solver="mppi")
    with pytest.raises(ValueError, match="feedback gain"):
        make_controller(r.problem, s)
    assert isinstance(make_controller(r.problem, MpcSettings(horizon=10, dt=0.02)), MpcController)


def test_far_state_drops_the_warm_start_and_sends_the_safe_command():
    """A state far from the plan's prediction (e.g. the simulator reset the robot): control()
    returns the safe command instead of the stale policy, and the next update re-plans from the
    initial plan instead of the shifted one."""
    c = mppi_reach(reset_deviation=2.0).mpc
    x = np.zeros(10)
    c.update(0.0, x)
    c.update(0.02, x)
    far = x.copy()
    far[ballbot.PITCH] = 2.5  # fallen
    assert np.any(c.control(0.03, x) != 0.0)
    np.testing.assert_array_equal(c.control(0.03, far), np.zeros(3))
    sets = []
    real_set_plan = c.solver.set_plan

    class Spy:
        def set_plan(self, plan):
            sets.append(np.asarray(plan))
            real_set_plan(plan)

        def __getattr__(self, name):
            return getattr(c.solver_inner, name)

    c.solver_inner, c.solver = c.solver, Spy()
    c.update(0.04, far)
    assert c.num_resets == 1 and len(sets) == 1
    np.testing.assert_array_equal(sets[0], np.zeros((25, 3)))  # the initial plan of ReachMpc
    c.update(0.06, far)  # the plan now predicts the fallen robot: no further reset
    assert c.num_resets == 1
    # reset_deviation = 0: never
    d = mppi_reach(reset_deviation=0.0).mpc
    d.update(0.0, x)
    assert np.any(d.control(0.01, far) != 0.0)
    d.update(0.02, far)
    assert d.num_resets == 0


def test_mppi_with_a_critic_uses_the_deep_value_terminal_cost():
    """With a critic, the MPPI rollouts end in the blended terminal cost of Eq. (13) (LQR tail and
    the critic's ValueTerminalCost), whose time-to-go follows set_episode."""
    from dmpc_core.critics.learner import CriticLearner, LearnerSettings
    from dmpc_core.critics.bundle import load_bundle

    critic = load_bundle(CriticLearner(LearnerSettings(), 10, 2, "ballbot").export()).to_native()
    s = ReachSettings(mpc=MpcSettings(horizon=25, dt=0.02, solver="mppi"), episode_length=4.0, critic_weight=0.5,
                      critic_mode="blend")
    r = ReachMpc(s, GOAL, critic=critic)
    c, p = r.mpc, r.problem
    x0 = np.zeros(10)
    assert c.is_ok(c.update(0.0, x0))
    pol = c.policy
    xs, us = np.asarray(pol.x_nom), np.asarray(pol.u_ff)
    R = np.asarray(p.control_weight)
    running = sum(p.dt * (p.running_cost.value(k * p.dt, xs[k], us[k]) + 0.5 * us[k] @ R @ us[k]) for k in range(25))
    t_end = 25 * p.dt
    blended = p.terminal_cost.value(t_end, xs[-1], np.zeros(p.terminal_cost.nu))
    tail = r.tail.value(t_end, xs[-1], np.zeros(r.tail.nu))
    value = r.value_term.value(t_end, xs[-1], np.zeros(r.value_term.nu))
    assert blended == pytest.approx(0.5 * tail + 0.5 * value, rel=1e-9)
    assert c.last_result.cost == pytest.approx(running + blended, rel=1e-9)
    assert value != pytest.approx(tail)  # the critic term is not the LQR tail
    before = r.value_term.value(t_end, xs[-1], np.zeros(r.value_term.nu))
    r.set_episode(-3.0, 4.0)  # less time to go: the critic sees another tau
    assert r.value_term.value(t_end, xs[-1], np.zeros(r.value_term.nu)) != pytest.approx(before)


def test_dmpc_critic_mode_is_the_training_actor():
    """``critic_mode: dmpc``: ReachMpc's problem is the one DmpcActor builds for ``dmpc train``
    (same running and terminal costs at random states, value terms scaled by critic_weight), the
    episode ends at t_start + episode_length (no horizon offset), and the learner's step cost is
    the reach task's dt * ||p - g||."""
    from dmpc_core.control.dmpc_actor import DmpcActor
    from dmpc_core.critics.bundle import load_bundle
    from dmpc_core.critics.learner import CriticLearner, LearnerSettings

    learner = CriticLearner(LearnerSettings(critic="lead"), 10, 2, "ballbot")
    import torch

    with torch.no_grad():
        for p_ in learner.model.parameters():
            p_.add_(0.3)  # a non-constant critic
    bundle = learner.export()
    mpc = MpcSettings(horizon=20, dt=0.05)
    s = ReachSettings(mpc=mpc, episode_length=3.0, critic_weight=1.0, critic_mode="dmpc")
    r = ReachMpc(s, GOAL, critic=load_bundle(bundle).to_native())
    assert r.dmpc and r.value_running is not None
    assert r.t_goal == pytest.approx(3.0)
    ref, _, _ = DmpcActor(s.actor).make_problem(load_bundle(bundle).to_native(), np.asarray(GOAL, float), 3.0,
                                                 horizon=20, dt=0.05)
    rng = np.random.default_rng(0)
    for _ in range(5):
        x = rng.normal(scale=0.2, size=10)
        u = rng.normal(size=3)
        t = rng.uniform(0.0, 4.0)
        assert r.problem.running_cost.value(t, x, u) == pytest.approx(ref.running_cost.value(t, x, u), rel=1e-12)
        assert r.problem.terminal_cost.value(t, x, np.zeros(3)) == pytest.approx(
            ref.terminal_cost.value(t, x, np.zeros(3)), rel=1e-12)
    x = np.zeros(10)
    x[:2] = [GOAL[0] + 0.3, GOAL[1] - 0.4]
    assert r.stage_cost(0.0, x, np.ones(3), 0.05) == pytest.approx(0.05 * 0.5)
    r.set_episode(10.0, 3.0)
    assert r.t_goal == pytest.approx(13.0)
    assert r.value_running.t_goal == pytest.approx(13.0) and r.value_term.t_goal == pytest.approx(13.0)
    blend = ReachMpc(ReachSettings(mpc=mpc, episode_length=3.0, critic_mode="blend"), GOAL,
                     critic=load_bundle(bundle).to_native())
    assert not blend.dmpc and blend.t_goal == pytest.approx(3.0 + 20 * 0.05)
    with pytest.raises(ValueError, match="critic_mode"):
        ReachMpc(ReachSettings(mpc=mpc, critic_mode="other"), GOAL)
