"""Receding-horizon control around the compiled SLQ solver (no ROS).

:class:`MpcController` owns one :class:`dmpc_core._core.SlqSolver`. ``update(t, x)`` re-plans from
the measured state (warm started from the previous policy shifted to ``t``; one real-time
iteration by default, more on the first call), and ``control(t, x)`` evaluates the latest affine
policy -- the cheap call a high-rate tracking loop makes. The ROS controller node calls exactly
these two methods from its MPC thread and its tracking timer.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from dmpc_core import _core


@dataclass
class MpcSettings:
    """Receding-horizon settings.

    Attributes:
        horizon: number of nodes N of the optimal control problem.
        dt: node spacing [s] (the horizon covers N * dt seconds).
        integrator: 'rk4', 'euler' or 'semi_implicit_euler'.
        discount: gamma per second of Eq. (10).
        mpc_rate: re-planning rate [Hz] (the reference Ballbot MPC runs at 100 Hz).
        tracking_rate: policy evaluation rate [Hz] (400 Hz in the reference).
        iterations_per_update: SLQ iterations per re-plan (1 = real-time iteration).
        initial_iterations: SLQ iterations of the first (cold) solve.
        num_threads: threads of the LQ approximation.
        interpolation: 'linear' or 'zoh' policy interpolation in time.
    """

    horizon: int = 100
    dt: float = 0.01
    integrator: str = "rk4"
    discount: float = 1.0
    mpc_rate: float = 100.0
    tracking_rate: float = 400.0
    iterations_per_update: int = 1
    initial_iterations: int = 30
    num_threads: int = 1
    interpolation: str = "linear"

    def validate(self) -> None:
        if self.horizon < 1:
            raise ValueError("horizon must be >= 1")
        if not self.dt > 0:
            raise ValueError("dt must be > 0")
        if not 0 < self.discount <= 1:
            raise ValueError("discount must be in (0, 1]")
        if not (self.mpc_rate > 0 and self.tracking_rate > 0):
            raise ValueError("rates must be > 0")
        if self.iterations_per_update < 1 or self.initial_iterations < 1:
            raise ValueError("iterations must be >= 1")


class MpcController:
    """Receding-horizon SLQ controller.

    Args:
        problem: the optimal control problem (its horizon/dt must match ``settings``).
        settings: receding-horizon settings.
        u_safe: command returned before the first successful solve (default zeros).
        initial_policy: initial guess of the first solve (e.g. an LQR stabiliser for an unstable
            robot); zero controls if None.
    """

    def __init__(
        self,
        problem: _core.Problem,
        settings: MpcSettings,
        u_safe: np.ndarray | None = None,
        initial_policy: _core.Policy | None = None,
    ):
        settings.validate()
        if problem.horizon != settings.horizon or abs(problem.dt - settings.dt) > 1e-12:
            raise ValueError("problem horizon/dt do not match the MPC settings")
        self.problem = problem
        self.settings = settings
        self.u_safe = np.zeros(problem.nu) if u_safe is None else np.asarray(u_safe, float)
        self._slq_settings = _core.SlqSettings(
            max_iterations=settings.initial_iterations,
            num_threads=settings.num_threads,
            interpolation=settings.interpolation,
        )
        self.solver = _core.SlqSolver(problem, self._slq_settings)
        if initial_policy is not None:
            self.solver.set_policy(initial_policy)
        self._policy: _core.Policy | None = None
        self.last_result: _core.SlqResult | None = None
        self.num_updates = 0

    def update(self, t: float, x: np.ndarray) -> _core.SlqResult:
        """Re-plan from state ``x`` (nx,) at time ``t``. Keeps the previous policy if the solve
        fails (the result's status says why)."""
        iters = self.settings.initial_iterations if self._policy is None else self.settings.iterations_per_update
        if self._slq_settings.max_iterations != iters:
            self._slq_settings.max_iterations = iters
            self.solver.settings = self._slq_settings
        result = self.solver.solve(np.asarray(x, dtype=float), float(t))
        if result.status in ("converged", "max_iterations"):
            self._policy = self.solver.policy()
        self.last_result = result
        self.num_updates += 1
        return result

    @property
    def policy(self) -> _core.Policy | None:
        """The latest good policy (None before the first successful solve)."""
        return self._policy

    def control(self, t: float, x: np.ndarray) -> np.ndarray:
        """u(t, x) from the latest policy; the safe command if there is none or it is not finite."""
        if self._policy is None:
            return self.u_safe.copy()
        u = self._policy.control(float(t), np.asarray(x, dtype=float))
        return u if np.all(np.isfinite(u)) else self.u_safe.copy()

    def set_policy_interpolation(self, mode: str) -> None:
        self.settings = dataclasses.replace(self.settings, interpolation=mode)
        self._slq_settings.interpolation = mode
        self.solver.settings = self._slq_settings
