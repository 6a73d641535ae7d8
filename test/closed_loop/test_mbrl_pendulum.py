"""A small learned pendulum model: its one-step error is below a threshold set from the measured
spread, and MPPI planning with it (one ensemble member per sample) swings the true pendulum up."""
from __future__ import annotations

import numpy as np
import torch

from dmpc_core import _core
from dmpc_core.models.learned import DynamicsEnsemble, LearnedModelSettings, ensemble_to_native, fit_ensemble, one_step_error
from dmpc_core.tasks.pendulum import PendulumPlant, PendulumTaskSettings, wrap_angle

DT = 0.05
#: one-step error scale: the std of theta (uniform in [-8, 8] rad/s times dt) and theta_dot
#: (g dt sin(theta)) differences over the sampled region
SCALE = np.array([0.05 * 8 / np.sqrt(3), 9.81 * 0.05 / np.sqrt(2)])
#: measured on 5 seeds (data seeds 100..104, 400 training / 400 test transitions, M = 3, 2 x 32,
#: 300 steps): 9.1e-4 +- 0.5e-4 (max 9.7e-4); most of it is semi-implicit Euler vs the plant's
#: RK4. Predicting no change gives ~1; an untrained network ~1e2.
MAX_ONE_STEP_ERROR = 1.2e-3


def _transitions(rng, n):
    plant = PendulumPlant(PendulumTaskSettings())
    X, U, Xn = [], [], []
    for _ in range(n):
        x = np.array([rng.uniform(-np.pi, np.pi), rng.uniform(-8, 8)])
        u = rng.uniform(-2, 2, 1)
        plant.reset(x)
        _, xn = plant.step(u)
        X.append(x), U.append(u), Xn.append(xn)
    return np.array(X), np.array(U), np.array(Xn)


def test_small_fit_predicts_and_swings_up():
    rng = np.random.default_rng(100)
    X, U, Xn = _transitions(rng, 400)
    Xt, Ut, Xnt = _transitions(rng, 400)
    ls = LearnedModelSettings(num_members=3, hidden=(32, 32), gradient_steps=300, learning_rate=3e-3)
    torch.manual_seed(0)
    ens = DynamicsEnsemble(2, 1, 1, [("cos", 0), ("sin", 0), ("id", 1)], ls.hidden, ls.num_members)
    fit_ensemble(ens, X, U, Xn, DT, ls, seed=0)
    err = one_step_error(ens, Xt, Ut, Xnt, DT, "semi_implicit_euler", SCALE)
    assert err < MAX_ONE_STEP_ERROR, f"one-step error {err:.2e}"

    members, mean = ensemble_to_native(ens)
    # from 115 deg at rest (m g l sin(2.0) = 8.9 N m > |u| = 2: the pendulum must be swung up);
    # MPQ's mppi_long planner (H 64, K 24) with the true model is upright after ~6 s
    cost_learned, angles = _mpc_episode(mean, members, "semi_implicit_euler")
    cost_true, _ = _mpc_episode(_core.PendulumDynamics(), None, "rk4")
    assert max(angles[-30:]) < 0.3, f"not upright over the last 1.5 s: |theta| up to {max(angles[-30:]):.2f}"
    assert cost_learned < 1.1 * cost_true, (cost_learned, cost_true)  # measured: 1.00 on seeds 0, 1


def _mpc_episode(model, members, integrator, steps=160):
    cfg = _core.MppiSettings(num_samples=24, horizon=64, dt=DT, noise_sigma=np.eye(1) * 4.0, lambda_=0.15, step_size=0.5,
                             gamma=0.9, control_cost_weight=1.0, num_iterations=1, num_threads=1, seed=0,
                             u_min=-2 * np.ones(1), u_max=2 * np.ones(1), integrator=integrator)
    solver = _core.MppiSolver(model, _core.PendulumSwingUpCost(1, 0.1, 1 / DT), None, cfg)
    if members is not None:
        solver.set_rollout_models(members)  # sample k in member k mod M
    plant = PendulumPlant(PendulumTaskSettings())
    x = plant.reset(np.array([2.0, 0.0]))
    angles, total = [], 0.0
    for _ in range(steps):
        solver.set_state(x, 0.0)
        solver.optimize()
        c, x = plant.step(np.array(solver.action_from_policy()))
        solver.shift(1)
        total += c
        angles.append(abs(float(wrap_angle(x[0]))))
    return total, angles
