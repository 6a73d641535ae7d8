"""2-D obstacle course of MDGPS Fig. 1 (left), simulated in MuJoCo with physical contacts.

A particle (capsule of radius 0.1 m, 4.817 kg, on two slide joints with damping 1, no gravity)
is pushed by two motors (controls clipped to [-1, 1]) to the target (3, 0) past capsule walls of
radius 0.1 m at x = 1 (|y| in [0.5, 1.1]) and x = 2 (|y| in [1.0, 1.6]) and a disc of radius 0.2 m
at (2, 0); the contacts are frictionless (the particle slides along a wall). MuJoCo's Euler
integrator at 0.01 s, 5 sub-steps per control step (0.05 s), T = 200 control steps. State =
observation = [x, y, vx, vy]. Cost 0.5 ||p - (3, 0)||^2 at every step, plus an optional control
cost 0.5 w ||u||^2 (``control_weight``, 0 by default) (the walls are not in the cost; the particle
has to find the gaps through the sampled dynamics).
Conditions: starts (0, y0) with y0 in linspace(-1.5, 1.5, 5).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional, Tuple

import mujoco
import numpy as np

TARGET = (3.0, 0.0)
MASS = 4.817


def obstacle_mjcf(timestep: float = 0.01, damping: float = 1.0) -> str:
    """The MJCF of the obstacle course (particle, walls, disc).

    Contacts are frictionless (``condim="1"``, normal force only), as in the public reference's
    obstacle_course.xml. With MuJoCo's default (condim 3, friction 1) the friction capacity of a
    particle pushed into a wall at the full actuator force (1 N) equals the largest tangential force
    it can apply (1 N): it sticks to the wall or the disc instead of sliding round it."""
    walls = []
    for i, (x, y_lo, y_hi) in enumerate(((1.0, 0.5, 1.1), (2.0, 1.0, 1.6))):
        for s, name in ((1, "p"), (-1, "n")):
            walls.append(f'<geom name="wall{i}{name}" type="capsule" size="0.1" '
                         f'fromto="{x} {s * y_lo} 0 {x} {s * y_hi} 0" rgba="0.6 0.3 0.3 1"/>')
    return f"""
<mujoco model="obstacle_course">
  <option timestep="{timestep}" integrator="Euler" gravity="0 0 0"/>
  <default>
    <geom condim="1"/>
  </default>
  <worldbody>
    {''.join(walls)}
    <geom name="disc" type="cylinder" size="0.2 0.1" pos="2 0 0" rgba="0.6 0.3 0.3 1"/>
    <site name="target" pos="{TARGET[0]} {TARGET[1]} 0" size="0.05" rgba="0 1 0 1"/>
    <body name="particle" pos="0 0 0">
      <joint name="px" type="slide" axis="1 0 0" damping="{damping}"/>
      <joint name="py" type="slide" axis="0 1 0" damping="{damping}"/>
      <geom name="particle" type="capsule" size="0.1" fromto="0 0 -0.01 0 0 0.01" mass="{MASS}"
            rgba="0.2 0.4 0.9 1"/>
    </body>
  </worldbody>
  <actuator>
    <motor joint="px" ctrlrange="-1 1" ctrllimited="true"/>
    <motor joint="py" ctrlrange="-1 1" ctrllimited="true"/>
  </actuator>
</mujoco>
"""


@dataclass
class ObstacleCourseSettings:
    """Attributes:
    horizon: control steps per episode (T).
    timestep: MuJoCo time step [s].
    substeps: MuJoCo steps per control step (control step = timestep * substeps).
    damping: slide-joint damping [N s/m].
    control_weight: w of a control cost 0.5 w ||u||^2 on the commanded control (0: the cost of the
        specification, positions only).
    starts_y: y of the start positions (x = 0), one condition each.
    """

    horizon: int = 200
    timestep: float = 0.01
    substeps: int = 5
    damping: float = 1.0
    control_weight: float = 0.0
    starts_y: List[float] = field(default_factory=lambda: [float(v) for v in np.linspace(-1.5, 1.5, 5)])

    def validate(self) -> None:
        if self.horizon < 2 or self.substeps < 1 or not self.timestep > 0 or not self.damping >= 0 \
                or not self.control_weight >= 0:
            raise ValueError("ObstacleCourseSettings: need horizon >= 2, substeps >= 1, timestep > 0, damping >= 0, "
                             "control_weight >= 0")
        if not self.starts_y:
            raise ValueError("ObstacleCourseSettings.starts_y: need at least one start")


class ObstacleCourse:
    """The task: simulation, cost and its quadratic expansion."""

    nx = 4
    nu = 2

    def __init__(self, settings: Optional[ObstacleCourseSettings] = None) -> None:
        self.s = settings or ObstacleCourseSettings()
        self.s.validate()
        self.model = mujoco.MjModel.from_xml_string(obstacle_mjcf(self.s.timestep, self.s.damping))
        self.data = mujoco.MjData(self.model)
        self.T = self.s.horizon
        self.dt = self.s.timestep * self.s.substeps
        self.target = np.array(TARGET)
        self.u_min = self.model.actuator_ctrlrange[:, 0].copy()
        self.u_max = self.model.actuator_ctrlrange[:, 1].copy()

    @property
    def num_conditions(self) -> int:
        return len(self.s.starts_y)

    def x0(self, condition: int) -> np.ndarray:
        return np.array([0.0, float(self.s.starts_y[condition]), 0.0, 0.0])

    def set_state(self, x: np.ndarray) -> None:
        self.data.qpos[:] = x[:2]
        self.data.qvel[:] = x[2:]
        self.data.qacc_warmstart[:] = 0.0
        self.data.time = 0.0

    def state(self) -> np.ndarray:
        return np.concatenate([self.data.qpos, self.data.qvel])

    def step(self, x: np.ndarray, u: np.ndarray) -> np.ndarray:
        """x_{t+1} from x_t under u_t (clipped to [-1, 1] by the actuators)."""
        self.set_state(x)
        self.data.ctrl[:] = u
        mujoco.mj_step(self.model, self.data, nstep=self.s.substeps)
        return self.state()

    def rollout(self, condition: int, controller, rng: Optional[np.random.Generator] = None,
                noise: bool = True, x0: Optional[np.ndarray] = None) -> Tuple[np.ndarray, np.ndarray]:
        """One episode: ``controller(t, x, eps)`` returns u_t given the standard-normal draw eps
        (ignored when noise is False: eps = 0). Returns X (T, 4) and U (T, 2) (U as commanded,
        before the actuator clip). ``x0`` replaces the condition's start state."""
        T = self.T
        X = np.zeros((T, self.nx))
        U = np.zeros((T, self.nu))
        x = self.x0(condition) if x0 is None else np.asarray(x0, float)
        for t in range(T):
            X[t] = x
            eps = rng.standard_normal(self.nu) if (noise and rng is not None) else np.zeros(self.nu)
            U[t] = controller(t, x, eps)
            if t + 1 < T:
                x = self.step(x, U[t])
        return X, U

    def applied_control(self, U: np.ndarray) -> np.ndarray:
        """The control the plant applied for commanded U: clipped to the actuators' ctrlrange (MuJoCo
        clamps ``ctrl`` of ctrllimited actuators)."""
        return np.clip(U, self.u_min, self.u_max)

    # cost l(x, u) = 0.5 ||p - target||^2 + 0.5 w ||u||^2 (quadratic: its expansion is exact)
    def cost(self, X: np.ndarray, U: np.ndarray) -> np.ndarray:
        """Per-step cost of (T, 4) states and (T, 2) commanded controls."""
        d = X[..., :2] - self.target
        return 0.5 * np.sum(d * d, axis=-1) + 0.5 * self.s.control_weight * np.sum(U * U, axis=-1)

    def quadratic_cost(self):
        """(Cm, cv, cc) of l_t(z) = cc + cv^T z + 1/2 z^T Cm z, z = [x; u], for every t."""
        D = self.nx + self.nu
        Cm = np.zeros((self.T, D, D))
        Cm[:, 0, 0] = Cm[:, 1, 1] = 1.0
        Cm[:, self.nx:, self.nx:] = self.s.control_weight * np.eye(self.nu)
        cv = np.zeros((self.T, D))
        cv[:, :2] = -self.target
        cc = np.full(self.T, 0.5 * float(self.target @ self.target))
        return Cm, cv, cc

    def distance(self, X: np.ndarray) -> Tuple[float, float]:
        """(final-step, time-averaged) distance of the particle to the target."""
        d = np.linalg.norm(X[..., :2] - self.target, axis=-1)
        return float(d[..., -1].mean()), float(d.mean())

    def linearize_fd(self, x: np.ndarray, u: np.ndarray, eps: float = 1e-6) -> Tuple[np.ndarray, np.ndarray]:
        """MuJoCo's finite-difference linearisation (mjd_transitionFD) of one sub-step, chained over
        the substeps of a control step: (A (4, 4), B (4, 2)) of x_{t+1} ~ A x_t + B u_t."""
        nv = self.model.nv
        A = np.eye(2 * nv)
        B = np.zeros((2 * nv, self.nu))
        self.set_state(x)
        self.data.ctrl[:] = u
        Ai = np.zeros((2 * nv, 2 * nv))
        Bi = np.zeros((2 * nv, self.nu))
        for _ in range(self.s.substeps):
            mujoco.mjd_transitionFD(self.model, self.data, eps, True, Ai, Bi, None, None)
            A = Ai @ A
            B = Ai @ B + Bi
            mujoco.mj_step(self.model, self.data)
        return A, B
