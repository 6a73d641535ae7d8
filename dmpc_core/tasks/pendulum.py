"""Pendulum swing-up of MPQ (Tables 1 and 3): cost theta^2 + 0.1 theta_dot^2 per step, random
initial states, 10 s episodes; the plant uses the true m = 1 kg, l = 1 m, the agent's model a
mass and length drawn uniformly from [0.9, 1.5] x true.

Model: ``_core.PendulumDynamics`` (m l^2 theta_ddot = m g l sin(theta) - b theta_dot + u,
theta = 0 upright). MPQ does not publish the torque limit or the control step; we use
|u| <= 2 N m (less than m g l = 9.81 N m: the swing-up needs several pumps, which a short
horizon cannot see) and dt = 0.05 s (200 steps per 10 s episode). The plant integrates with
RK4 at the control step.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dmpc_core import _core


@dataclass
class PendulumTaskSettings:
    """Attributes:
    mass, length: true parameters (plant).
    damping: viscous damping b [N m s] (plant and model).
    bias_low, bias_high: model parameters drawn from U[bias_low, bias_high] x true.
    u_max: torque bound [N m]; dt: control step [s]; episode_seconds: episode length [s].
    w_rate: weight of theta_dot^2 in the cost.
    """

    mass: float = 1.0
    length: float = 1.0
    damping: float = 0.0
    bias_low: float = 0.9
    bias_high: float = 1.5
    u_max: float = 2.0
    dt: float = 0.05
    episode_seconds: float = 10.0
    w_rate: float = 0.1

    def validate(self) -> None:
        if not (0 < self.bias_low <= self.bias_high):
            raise ValueError("need 0 < bias_low <= bias_high")
        if self.u_max <= 0 or self.dt <= 0 or self.episode_seconds < self.dt:
            raise ValueError("u_max, dt must be positive and episode_seconds >= dt")

    @property
    def episode_steps(self) -> int:
        return int(round(self.episode_seconds / self.dt))


def wrap_angle(theta):
    """Angle in [-pi, pi)."""
    return (np.asarray(theta) + np.pi) % (2 * np.pi) - np.pi


def step_cost(x, w_rate: float = 0.1) -> float:
    """c(s) = wrap(theta)^2 + w_rate theta_dot^2 (MPQ Table 3)."""
    th = float(wrap_angle(x[0]))
    return th * th + w_rate * float(x[1]) ** 2


def sample_biased_parameters(settings: PendulumTaskSettings, rng: np.random.Generator):
    """(mass, length) of the agent's model: U[bias_low, bias_high] x true, independently."""
    m = settings.mass * rng.uniform(settings.bias_low, settings.bias_high)
    l = settings.length * rng.uniform(settings.bias_low, settings.bias_high)
    return float(m), float(l)


def sample_biased_parameter_sets(settings: PendulumTaskSettings, rng: np.random.Generator, n: int) -> np.ndarray:
    """n independent (mass, length) draws of the agent's model, (n, 2): each U[bias_low, bias_high] x true
    (the distribution of :func:`sample_biased_parameters`, vectorised; row i = (m_i, l_i))."""
    u = rng.uniform(settings.bias_low, settings.bias_high, size=(int(n), 2))
    return u * np.array([settings.mass, settings.length])


def random_initial_state(rng: np.random.Generator) -> np.ndarray:
    """theta ~ U[-pi, pi), theta_dot ~ U[-1, 1]."""
    return np.array([rng.uniform(-np.pi, np.pi), rng.uniform(-1.0, 1.0)])


class PendulumPlant:
    """True pendulum, RK4 at the control step, torque clipped to +-u_max."""

    nx, nu = 2, 1

    def __init__(self, settings: PendulumTaskSettings) -> None:
        settings.validate()
        self.settings = settings
        self.model = _core.PendulumDynamics(settings.mass, settings.length, settings.damping)
        self.data = self.model.create_data()
        self.state = np.zeros(2)

    def reset(self, x0) -> np.ndarray:
        self.state = np.asarray(x0, dtype=float).copy()
        return self.state.copy()

    def _f(self, x, u):
        self.model.calc(self.data, x, u)
        return np.array(self.data.xdot)

    def step(self, u):
        """Apply u for dt; returns (cost of the current state and action, next state)."""
        s = self.settings
        u = np.clip(np.asarray(u, dtype=float).reshape(1), -s.u_max, s.u_max)
        x, h = self.state, s.dt
        c = step_cost(x, s.w_rate)
        k1 = self._f(x, u)
        k2 = self._f(x + 0.5 * h * k1, u)
        k3 = self._f(x + 0.5 * h * k2, u)
        k4 = self._f(x + h * k3, u)
        self.state = x + h / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
        return c, self.state.copy()


__all__ = ["PendulumTaskSettings", "PendulumPlant", "wrap_angle", "step_cost", "sample_biased_parameters",
           "sample_biased_parameter_sets", "random_initial_state"]
