"""A plant simulator on the core dynamics models, and a closed-loop runner.

The plant integrates ``xdot = f(x) + g(x) (u + w)`` with RK4 at the physics rate, holding the
command between control ticks. ``w`` is optional input-channel noise (the stochastic plant of
Eq. (1) of deep-value-mpc: noise enters through the input channels), white at the physics rate
with standard deviation ``input_noise_std`` / sqrt(physics_dt) so that its effect is
independent of the step.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from dmpc_core import _core


@dataclass
class PlantSettings:
    """Attributes:
    physics_dt: integration step [s] (1 kHz default).
    input_noise_std: intensity of input-channel noise (0: deterministic plant).
    u_min / u_max: actuator limits applied to commands (None: unlimited).
    seed: RNG seed of the noise.
    fixed_step: False (default): each ``step(u, duration)`` takes the fewest equal sub-steps of
        at most ``physics_dt`` that cover ``duration`` exactly (e.g. 3 x 0.833 ms for 2.5 ms).
        True: fixed-rate physics as in a simulator: steps of exactly ``physics_dt``, as many as
        fit before the requested end time, the remainder carried to the next call (e.g. 2, 3,
        2, 3 ... steps of 1 ms for 2.5 ms calls, so 1 kHz on average and at every step; the
        state returned is that of the last whole step). The sim node uses this.
    """

    physics_dt: float = 1e-3
    input_noise_std: float = 0.0
    u_min: list[float] | None = None
    u_max: list[float] | None = None
    seed: int = 0
    fixed_step: bool = False

    def validate(self) -> None:
        if not self.physics_dt > 0:
            raise ValueError("physics_dt must be > 0")
        if self.input_noise_std < 0:
            raise ValueError("input_noise_std must be >= 0")


class Plant:
    """Continuous plant on a core dynamics model.

    Args:
        model: a ``_core.DynamicsModel``.
        x0: initial state (nx,).
        settings: physics settings.
    """

    def __init__(self, model: _core.DynamicsModel, x0: np.ndarray, settings: PlantSettings | None = None):
        self.model = model
        self.settings = settings or PlantSettings()
        self.settings.validate()
        self.rng = np.random.default_rng(self.settings.seed)
        self.reset(x0)

    def reset(self, x0: np.ndarray, t0: float = 0.0) -> None:
        x0 = np.asarray(x0, dtype=float)
        if x0.shape != (self.model.nx,) or not np.all(np.isfinite(x0)):
            raise ValueError(f"x0 must be a finite vector of size {self.model.nx}")
        self.x = x0.copy()
        self.t = float(t0)
        self._t_target = self.t  # fixed_step: requested end time (the remainder is carried)

    def clip(self, u: np.ndarray) -> np.ndarray:
        s = self.settings
        u = np.asarray(u, dtype=float)
        if s.u_min is not None:
            u = np.maximum(u, s.u_min)
        if s.u_max is not None:
            u = np.minimum(u, s.u_max)
        return u

    def step(self, u: np.ndarray, duration: float) -> np.ndarray:
        """Hold command ``u`` (nu,) for ``duration`` seconds; returns the new state."""
        u = self.clip(u)
        if u.shape != (self.model.nu,) or not np.all(np.isfinite(u)):
            raise ValueError(f"command must be a finite vector of size {self.model.nu}")
        if not duration > 0:
            raise ValueError("duration must be > 0")
        if self.settings.fixed_step:
            # steps of exactly physics_dt up to the requested end time; the rest is carried
            h = self.settings.physics_dt
            self._t_target += duration
            n = int(np.floor((self._t_target - self.t) / h + 1e-9))
        else:
            # n equal sub-steps no longer than physics_dt, covering exactly `duration`
            n = max(1, int(np.ceil(duration / self.settings.physics_dt - 1e-9)))
            h = duration / n
        for _ in range(n):
            w = 0.0
            if self.settings.input_noise_std > 0:
                w = self.rng.normal(0.0, self.settings.input_noise_std / np.sqrt(h), self.model.nu)
            self.x = _core.integrate(self.model, self.x, u + w, h, "rk4")
            self.t += h
        return self.x


@dataclass
class ClosedLoopLog:
    t: list[float] = field(default_factory=list)
    x: list[np.ndarray] = field(default_factory=list)
    u: list[np.ndarray] = field(default_factory=list)
    solve_time: list[float] = field(default_factory=list)
    status: list[str] = field(default_factory=list)

    def arrays(self) -> dict[str, np.ndarray]:
        return {
            "t": np.asarray(self.t),
            "x": np.asarray(self.x),
            "u": np.asarray(self.u),
            "solve_time": np.asarray(self.solve_time),
        }


def simulate_closed_loop(
    plant: Plant,
    controller,
    duration: float,
    stop: Callable[[float, np.ndarray], bool] | None = None,
    progress: bool = False,
) -> ClosedLoopLog:
    """Run ``controller`` (an object with ``update(t, x)``, ``control(t, x)`` and ``settings``
    carrying ``mpc_rate``/``tracking_rate``) on ``plant`` for ``duration`` seconds.

    The MPC re-plans every 1/mpc_rate seconds (synchronously, in simulated time: no
    computational delay), and the command is re-evaluated from the policy every
    1/tracking_rate seconds and held in between.
    """
    s = controller.settings
    ticks_per_update = max(1, int(round(s.tracking_rate / s.mpc_rate)))
    tick = 1.0 / s.tracking_rate
    n_ticks = int(round(duration / tick))
    log = ClosedLoopLog()
    iterator = range(n_ticks)
    if progress:
        from tqdm import tqdm

        iterator = tqdm(iterator, desc="closed loop", unit="tick", leave=False, mininterval=1.0)
    for i in iterator:
        t, x = plant.t, plant.x.copy()
        if i % ticks_per_update == 0:
            res = controller.update(t, x)
            log.solve_time.append(res.solve_time)
            log.status.append(res.status)
        u = controller.control(t, x)
        log.t.append(t)
        log.x.append(x)
        log.u.append(u)
        plant.step(u, tick)
        if stop is not None and stop(plant.t, plant.x):
            break
    log.t.append(plant.t)
    log.x.append(plant.x.copy())
    return log
