"""Receding-horizon SLQ in closed loop on the embedded plant (pendulum)."""
from __future__ import annotations

import numpy as np
import pytest

from dmpc_core import _core
from dmpc_core.mpc import MpcController, MpcSettings
from dmpc_core.settings import ConfigError, from_dict
from dmpc_core.sim import Plant, PlantSettings, simulate_closed_loop


def pendulum_mpc(settings: MpcSettings):
    dyn = _core.PendulumDynamics(1.0, 1.0, 0.05)
    run = _core.QuadraticCost(np.diag([1.0, 0.1]), np.array([[0.02]]))
    term = _core.QuadraticCost(np.diag([50.0, 5.0]), np.zeros((1, 1)))
    prob = _core.Problem(dyn, run, term, settings.horizon, settings.dt, settings.integrator)
    return dyn, MpcController(prob, settings)


def test_rti_mpc_swings_up_and_balances_the_pendulum():
    settings = MpcSettings(horizon=50, dt=0.04, mpc_rate=50.0, tracking_rate=200.0)
    dyn, mpc = pendulum_mpc(settings)
    plant = Plant(dyn, np.array([np.pi, 0.0]), PlantSettings(physics_dt=2e-3))
    log = simulate_closed_loop(plant, mpc, duration=6.0).arrays()
    theta = np.arctan2(np.sin(log["x"][:, 0]), np.cos(log["x"][:, 0]))
    last = log["t"] > 5.0
    assert np.max(np.abs(theta[last])) < 0.05, "pendulum not balanced upright over the last second"
    assert np.all(np.isfinite(log["u"]))


def test_controller_returns_safe_command_before_first_solve_and_keeps_policy_on_failure():
    settings = MpcSettings(horizon=20, dt=0.05)
    _, mpc = pendulum_mpc(settings)
    np.testing.assert_array_equal(mpc.control(0.0, np.zeros(2)), np.zeros(1))
    mpc.update(0.0, np.array([0.3, 0.0]))
    pol = mpc.policy
    assert pol is not None
    with pytest.raises(ValueError, match="non-finite"):
        mpc.update(0.01, np.array([np.nan, 0.0]))
    assert mpc.policy is pol


def test_settings_reject_unknown_keys_and_bad_values():
    with pytest.raises(ConfigError, match="unknown key"):
        from_dict(MpcSettings, {"horizon": 10, "horizn": 3}, "cfg:mpc")
    with pytest.raises(ConfigError, match="dt must be"):
        from_dict(MpcSettings, {"dt": -1.0}, "cfg:mpc")
    assert from_dict(MpcSettings, {"horizon": 7}).horizon == 7
