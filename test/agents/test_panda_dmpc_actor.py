"""The Deep Value MPC problem on the Franka Panda (dmpc_core.control.dmpc_problem): the builder's
terms, and the Eq. (14) identity along a rollout of the Panda's dynamics,

    int_0^H (l_V + 1/2 u'Ru) dt + V(tau(H), x(H)) = V(tau(0), x(0)) + int_0^H 1/2 |u - u*|_R^2 dt,

u* = -R^-1 g(x)' V_x with g(x) = [0; M^-1(q)] (a wrong g, a wrong sign or a wrong time-to-go
breaks it)."""
from __future__ import annotations

import numpy as np
import pytest

from dmpc_core import _core
from dmpc_core.control.dmpc_problem import PandaActorSettings, PandaDmpcActor
from dmpc_core.models.panda import Q_READY, default_urdf_path


def _critic():
    rng = np.random.default_rng(2)
    nz = 14 + 3 + 1
    sizes = [nz, 16, 16, 1]
    W = [0.3 * rng.standard_normal((sizes[i + 1], sizes[i])) for i in range(3)]
    b = [0.1 * rng.standard_normal(sizes[i + 1]) for i in range(3)]
    return _core.CriticMLP(W, b, np.zeros(nz), np.ones(nz), 1.0, 0.0, 14, 3)


@pytest.fixture(scope="module")
def actor():
    return PandaDmpcActor(PandaActorSettings(r=0.05), _core.PandaDynamics(str(default_urdf_path()), 1.0))


def test_builder_terms_and_modes(actor):
    problem, vt, vr = actor.make_problem(_critic(), [0.5, 0.2, 0.3], t_goal=3.0)
    assert problem.horizon == 30 and vr is not None and vt.t_goal == 3.0
    assert problem.running_cost.term_names == ["posture", "torque_offset", "value"]
    term = PandaDmpcActor(PandaActorSettings(mode="terminal"), actor.model)
    _, _, vr = term.make_problem(_critic(), [0.5, 0.2, 0.3], t_goal=3.0)
    assert vr is None
    with pytest.raises(ValueError, match="nx"):
        actor.make_problem(_core.CriticMLP([np.zeros((1, 6))], [np.zeros(1)], np.zeros(6), np.ones(6), 1.0, 0.0, 2, 3),
                           [0.5, 0.2, 0.3], 3.0)


def test_eq14_identity_along_a_panda_rollout(actor):
    critic = _critic()
    goal = np.array([0.5, 0.2, 0.3])
    _, vt, vr = actor.make_problem(critic, goal, t_goal=0.8)
    model, R = actor.model, actor.R
    dt, n = 1e-3, 400  # 0.4 s, midpoint rule
    x = np.r_[Q_READY + 0.1, 0.3 * np.ones(7)]
    g0 = np.asarray(model.gravity(x[:7]), float)
    lhs, gap = 0.0, 0.0
    V0 = critic.value(0.8, x)
    for k in range(n):
        t = k * dt
        u = g0 + 3.0 * np.sin(7.0 * t + np.arange(7))
        f_mid = model.xdot(x, u)
        x_mid = x + 0.5 * dt * f_mid
        t_mid = t + 0.5 * dt  # midpoint rule on the integrands and on the rollout
        d_mid = critic.derivatives(0.8 - t_mid, x_mid)
        _, y_mid = model.drift_input_projection(x_mid, np.asarray(d_mid["Vx"], float))  # g' V_x
        u_star = -np.linalg.solve(R, y_mid)
        lhs += dt * (vr.value(t_mid, x_mid, u) + 0.5 * u @ R @ u)
        gap += dt * 0.5 * (u - u_star) @ R @ (u - u_star)
        x = x + dt * model.xdot(x_mid, u)
    lhs += vt.value(n * dt, x, np.zeros(7))
    assert lhs == pytest.approx(V0 + gap, rel=1e-4, abs=1e-5)
    # the identity is not trivially true: the two sides differ without the value-gradient gap
    assert abs(lhs - V0) > 100 * abs(lhs - V0 - gap)


def test_acceleration_metric_gives_greedy_joint_accelerations_of_the_value_slope(actor):
    """control_metric "acceleration": R = r M(q0)^-2 is rebuilt at the episode's start, so the
    greedy input's joint acceleration at q0 is M^-1 (u* - 0) = -V_v / r on every joint (with the
    torque metric it is -M^-2 V_v / r: the light wrist ~10^4 times the base)."""
    acc = PandaDmpcActor(PandaActorSettings(r=0.05, control_metric="acceleration"), actor.model)
    x0 = np.r_[Q_READY + 0.2, np.zeros(7)]
    acc.set_start(x0)
    M = np.asarray(actor.model.mass_matrix(x0[:7]), float)
    Minv = np.linalg.inv(M)
    np.testing.assert_allclose(acc.R, 0.05 * Minv @ Minv, rtol=1e-10)
    Vx = np.random.default_rng(0).standard_normal(14)
    a_star = Minv @ acc.greedy_input(Vx[None], x0[None])[0]
    np.testing.assert_allclose(a_star, -Vx[7:] / 0.05, rtol=1e-6)
    a_torque = Minv @ actor.greedy_input(Vx[None], x0[None])[0]
    assert not np.allclose(a_torque, -Vx[7:] / 0.05, rtol=0.5)
    # the problem's control cost uses the start's R: 1/2 (u - g0)' R (u - g0) with g0 = g(q0)
    problem, _, _ = acc.make_problem(_critic(), [0.5, 0.2, 0.3], t_goal=3.0)
    u = np.asarray(actor.model.gravity(x0[:7]), float) + 1.0
    assert acc.torque_offset.value(0.0, x0, u) + 0.5 * u @ acc.R @ u == pytest.approx(0.5 * np.ones(7) @ acc.R @ np.ones(7))
    with pytest.raises(ValueError, match="control_metric"):
        PandaDmpcActor(PandaActorSettings(control_metric="joint"), actor.model)
