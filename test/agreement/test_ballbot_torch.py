"""Batched PyTorch Ballbot (dmpc_core/models/ballbot_torch.py) vs the C++ model."""
from __future__ import annotations

import math

import numpy as np
import pytest

import torch

from dmpc_core import _core  # noqa: E402
from dmpc_core.models.ballbot_torch import BallbotTorch, BallbotTorchParameters  # noqa: E402


def batch(n, seed=0):
    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.uniform(-1, 1, (n, 2)), rng.uniform(-1.0, 1.0, (n, 3)),
                        rng.uniform(-3, 3, (n, 5))], axis=1)
    u = rng.uniform(-4, 4, (n, 3))
    return x, u


def custom_core_params():
    p = _core.BallbotParameters()
    p.ball_radius, p.ball_mass, p.ball_inertia, p.base_mass = 0.11, 3.1, 0.021, 15.0
    p.base_com = np.array([0.01, -0.02, 0.25])
    p.base_inertia = np.array([1.2, 1.5, 0.3])
    p.wheel_radius, p.wheel_zenith_angle, p.gravity = 0.05, math.radians(50), 9.7
    return p


@pytest.mark.parametrize("custom", [False, True])
def test_torch_float64_matches_cpp(custom):
    params = custom_core_params() if custom else _core.BallbotParameters()
    cpp = _core.BallbotDynamics(params)
    tm = BallbotTorch(params if custom else None)
    x, u = batch(128, seed=int(custom))
    xd = tm.xdot(torch.from_numpy(x), torch.from_numpy(u)).numpy()
    ref = np.stack([cpp.xdot(xi, ui) for xi, ui in zip(x, u)])
    np.testing.assert_allclose(xd, ref, rtol=0, atol=1e-9)
    q, v = torch.from_numpy(x[:, :5]), torch.from_numpy(x[:, 5:])
    np.testing.assert_allclose(tm.mass_matrix(q).numpy(), np.stack([cpp.mass_matrix(xi[:5]) for xi in x]), atol=1e-12)
    np.testing.assert_allclose(tm.bias(q, v).numpy(), np.stack([cpp.bias(xi[:5], xi[5:]) for xi in x]), atol=1e-11)
    np.testing.assert_allclose(tm.actuation_map(q).numpy(), np.stack([cpp.actuation_map(xi[:5]) for xi in x]),
                               atol=1e-12)


def test_torch_rk4_step_matches_cpp_integrator():
    cpp, tm = _core.BallbotDynamics(), BallbotTorch()
    x, u = batch(16, seed=3)
    nxt = tm.step(torch.from_numpy(x), torch.from_numpy(u), 0.01, "rk4").numpy()
    ref = np.stack([_core.integrate(cpp, xi, ui, 0.01, "rk4") for xi, ui in zip(x, u)])
    np.testing.assert_allclose(nxt, ref, rtol=0, atol=1e-9)
    f = tm.mppi_dynamics(0.01, "semi_implicit_euler")
    ref = np.stack([_core.integrate(cpp, xi, ui, 0.01, "semi_implicit_euler") for xi, ui in zip(x, u)])
    np.testing.assert_allclose(f(torch.from_numpy(x), torch.from_numpy(u)).numpy(), ref, atol=1e-9)


def test_shapes_broadcast_float32_and_errors():
    tm = BallbotTorch()
    x, u = batch(6, seed=4)
    single = tm.xdot(torch.from_numpy(x[0]), torch.from_numpy(u[0]))
    assert single.shape == (10,)
    nested = tm.xdot(torch.from_numpy(x).reshape(2, 3, 10), torch.from_numpy(u).reshape(2, 3, 3))
    np.testing.assert_allclose(nested.reshape(6, 10)[0].numpy(), single.numpy(), atol=1e-15)
    # one action broadcast over many states
    many = tm.xdot(torch.from_numpy(x), torch.from_numpy(u[0]))
    np.testing.assert_allclose(many[0].numpy(), single.numpy(), atol=1e-15)
    t32 = BallbotTorch(dtype=torch.float32)
    xd32 = t32.xdot(torch.from_numpy(x), torch.from_numpy(u))
    assert xd32.dtype == torch.float32
    np.testing.assert_allclose(xd32.numpy(), tm.xdot(torch.from_numpy(x), torch.from_numpy(u)).numpy(),
                               rtol=1e-3, atol=1e-3)
    with pytest.raises(ValueError, match="expected 10"):
        tm.xdot(torch.zeros(4, 9), torch.zeros(4, 3))
    with pytest.raises(ValueError, match="expected 3"):
        tm.xdot(torch.zeros(4, 10), torch.zeros(4, 2))
    with pytest.raises(ValueError, match="integrator"):
        tm.step(torch.zeros(10), torch.zeros(3), 0.01, "midpoint")
    assert BallbotTorchParameters.from_core(_core.BallbotParameters()) == BallbotTorchParameters()
