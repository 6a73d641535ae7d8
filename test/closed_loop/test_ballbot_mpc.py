"""Closed-loop SLQ-MPC on the Ballbot model (100 Hz RTI, 1 s horizon, 400 Hz policy, 1 kHz plant)."""
from __future__ import annotations

import numpy as np
import pytest

from dmpc_core import _core
from dmpc_core.demos import ballbot_reach
from dmpc_core.mpc import MpcController, MpcSettings
from dmpc_core.sim import Plant, PlantSettings, simulate_closed_loop
from dmpc_core.tasks import ballbot


def test_mpc_stabilises_upright_from_5_degree_tilt():
    model = _core.BallbotDynamics()
    settings = MpcSettings(horizon=100, dt=0.01, mpc_rate=100.0, tracking_rate=400.0)
    problem, _, _ = ballbot.make_reach_problem((0.0, 0.0), settings.horizon, settings.dt, model=model)
    mpc = MpcController(problem, settings, initial_policy=ballbot.lqr_policy(problem, (0.0, 0.0)))
    x0 = np.zeros(ballbot.NX)
    x0[ballbot.PITCH] = np.deg2rad(5.0)
    plant = Plant(model, x0, PlantSettings(physics_dt=1e-3))
    log = simulate_closed_loop(plant, mpc, duration=3.0).arrays()
    tilt = np.rad2deg(ballbot.tilt(log["x"]))
    assert tilt.max() < 8.0
    late = log["t"] > 2.0
    # settled to the static equilibrium (tilted ~1.3 deg by the COM offset), at rest
    assert tilt[late].max() < 2.5
    assert np.abs(log["x"][late][:, 5:]).max() < 0.1
    assert np.abs(log["x"][-1, 5:]).max() < 0.03
    assert np.hypot(*log["x"][-1, :2]) < 0.1
    # without control the same start falls (the task is not trivially stable)
    passive = Plant(model, x0, PlantSettings(physics_dt=1e-3))
    passive.step(np.zeros(3), 1.5)
    assert np.rad2deg(ballbot.tilt(passive.x)[0]) > 30.0


def test_mpc_drives_ballbot_2m_to_target_within_5s():
    s = ballbot_reach.run(target=(2.0, 0.0), tilt_deg=5.0, duration=5.0, progress=False)
    assert s["time_to_target_s"] is not None and s["time_to_target_s"] < 5.0, s
    assert s["final_distance_m"] < 0.05
    assert s["final_tilt_deg"] < 3.0
    assert np.all(np.isfinite(s["log"]["u"]))


def test_fixed_step_plant_runs_physics_at_exactly_physics_dt():
    """PlantSettings.fixed_step (the sim node's setting): 2.5 ms publish periods at 1 ms physics
    give 2, 3, 2, 3 ... steps of exactly 1 ms (1 kHz), bit-for-bit the trajectory of plain 1 ms
    steps; the default mode covers each call with equal sub-steps (3 x 0.833 ms) instead."""
    model = _core.BallbotDynamics()
    x0 = np.zeros(ballbot.NX)
    x0[ballbot.PITCH] = 0.05
    u = np.array([0.3, -0.2, 0.1])
    fixed = Plant(model, x0, PlantSettings(physics_dt=1e-3, fixed_step=True))
    times = []
    for _ in range(8):
        fixed.step(u, 2.5e-3)
        times.append(fixed.t)
    np.testing.assert_allclose(np.diff([0.0] + times), [2e-3, 3e-3] * 4, atol=1e-12)
    ref = x0.copy()
    for _ in range(20):
        ref = _core.integrate(model, ref, u, 1e-3, "rk4")
    np.testing.assert_allclose(fixed.x, ref, rtol=0, atol=1e-14)
    equal = Plant(model, x0, PlantSettings(physics_dt=1e-3))
    for _ in range(8):
        equal.step(u, 2.5e-3)
    assert equal.t == pytest.approx(0.02, abs=1e-12)
    np.testing.assert_allclose(equal.x, ref, rtol=0, atol=1e-10)  # other steps, same motion
    fixed.reset(x0)
    fixed.step(u, 0.5e-3)  # shorter than one step: no physics yet, carried over
    assert fixed.t == 0.0 and np.array_equal(fixed.x, x0)
    fixed.step(u, 0.5e-3)
    assert fixed.t == pytest.approx(1e-3, abs=1e-15)
