"""Franka Panda simulators (no ROS): the core's pinocchio model, or MuJoCo as an independent engine.

Both backends share the :class:`~dmpc_core.sim.plant.Plant` interface (``reset(x0)``,
``step(u, duration) -> x``, ``x``, ``t``), state ``x = [q; v]`` (14) in the order of
:data:`dmpc_core.models.panda.JOINT_NAMES` and command ``u`` = joint torques (7) [N m]:

- ``core``: :class:`~dmpc_core.sim.plant.Plant` on ``_core.PandaDynamics`` (RK4 sub-steps of at
  most ``physics_dt``). The model has no joint-limit constraints.
- ``mujoco``: :class:`MujocoPandaPlant`, a MuJoCo model compiled from the SAME URDF
  (``urdf/panda.urdf``, :func:`mujoco_model_from_urdf`): fixed base, no contacts, zero joint
  damping, armature and friction loss (the URDF has no ``<dynamics>`` tags and the pinocchio model
  has none either), fixed time step ``physics_dt`` (1 kHz default). URDF position limits become
  MuJoCo joint-limit constraints (``joint_limits=True``); away from the limits both engines integrate
  ``M(q) vdot + b(q, v) = u`` (``- d v`` with ``joint_damping`` d in both). ``test/agreement/test_franka_sim.py`` checks M(q), the bias and gravity
  torques against pinocchio and a torque rollout against the core integrator.

Torques are clipped to the URDF effort limits (87 N m for joints 1-4, 12 N m for 5-7) in both.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dmpc_core.models.panda import JOINT_NAMES, Q_READY, TCP_FRAME, default_urdf_path

NQ = 7
NX = 2 * NQ
BACKENDS = ("core", "mujoco")
#: MuJoCo ``<compiler>`` options for the project's URDF: keep every link as a body (so frames
#: such as panda_hand_tcp can be looked up by name), use the URDF inertials as written.
MUJOCO_COMPILER = ('<mujoco><compiler discardvisual="true" fusestatic="false" inertiafromgeom="false" '
                   'balanceinertia="false" strippath="true" angle="radian"/></mujoco>')


def urdf_text_for_mujoco(urdf_path: str | Path | None = None) -> str:
    """The URDF text as MuJoCo's URDF reader takes it: comments and the ``<ros2_control>`` block
    removed, the :data:`MUJOCO_COMPILER` options inserted (ValueError without a ``<robot>``)."""
    text = Path(urdf_path or default_urdf_path()).read_text()
    text = re.sub(r"<!--.*?-->", "", text, flags=re.S)  # tinyxml rejects some comment text
    text = re.sub(r"<ros2_control\b.*?</ros2_control>", "", text, flags=re.S)
    text, n = re.subn(r"(<robot\b[^>]*>)", r"\1" + MUJOCO_COMPILER, text, count=1)
    if n != 1:
        raise ValueError(f"{urdf_path}: no <robot> element")
    return text


def mujoco_model_from_urdf(urdf_path: str | Path | None = None, physics_dt: float = 1e-3,
                           integrator: str = "RK4", joint_limits: bool = True):
    """Compile the Panda URDF into a ``mujoco.MjModel``.

    The URDF's comments and ``<ros2_control>`` block are removed (MuJoCo's URDF reader does not
    need them) and a ``<mujoco><compiler .../></mujoco>`` block (:data:`MUJOCO_COMPILER`) is
    inserted. Contacts are disabled (the arm is alone in the world; the visual primitives are
    discarded anyway), gravity is (0, 0, -9.81) m/s^2, damping/armature/friction loss are zero.

    Args:
        urdf_path: the URDF (default: the project's ``urdf/panda.urdf``).
        physics_dt: MuJoCo time step [s].
        integrator: MuJoCo integrator name: 'RK4', 'Euler', 'implicit' or 'implicitfast'.
        joint_limits: keep the URDF position limits as MuJoCo joint-limit constraints.

    Raises:
        ValueError: unknown integrator, non-positive step, or the model is not the 7-joint arm.
    """
    import mujoco  # noqa: PLC0415  (optional dependency: only this backend needs it)

    if not physics_dt > 0:
        raise ValueError("physics_dt must be > 0")
    integrators = {"RK4": mujoco.mjtIntegrator.mjINT_RK4, "Euler": mujoco.mjtIntegrator.mjINT_EULER,
                   "implicit": mujoco.mjtIntegrator.mjINT_IMPLICIT,
                   "implicitfast": mujoco.mjtIntegrator.mjINT_IMPLICITFAST}
    if integrator not in integrators:
        raise ValueError(f"integrator {integrator!r} is not one of {sorted(integrators)}")
    model = mujoco.MjModel.from_xml_string(urdf_text_for_mujoco(urdf_path))
    names = tuple(model.joint(i).name for i in range(model.njnt))
    if names != JOINT_NAMES or model.nq != NQ or model.nv != NQ:
        raise ValueError(f"MuJoCo model has joints {names}; expected {JOINT_NAMES}")
    model.opt.timestep = physics_dt
    model.opt.integrator = integrators[integrator]
    model.opt.gravity[:] = (0.0, 0.0, -9.81)
    model.opt.disableflags |= int(mujoco.mjtDisableBit.mjDSBL_CONTACT)
    if not joint_limits:
        model.opt.disableflags |= int(mujoco.mjtDisableBit.mjDSBL_LIMIT)
    model.dof_damping[:] = 0.0
    model.dof_armature[:] = 0.0
    model.dof_frictionloss[:] = 0.0
    return model


@dataclass
class PandaSimSettings:
    """Attributes:
    backend: 'core' (pinocchio model of the core, RK4) or 'mujoco' (independent engine).
    physics_dt: physics step [s] (1 kHz default).
    mujoco_integrator: MuJoCo integrator ('RK4' default, or 'Euler', 'implicit', 'implicitfast').
    joint_limits: MuJoCo only: enforce the URDF position limits.
    joint_damping: viscous joint friction d [N m s/rad] (torque -d v on every joint; MuJoCo's
        ``dof_damping``, the core's ``PandaDynamics(urdf, damping)``); 0 = the bare URDF.
    u_max: |torque| limit per joint [N m] (None: the URDF effort limits).
    """

    backend: str = "mujoco"
    physics_dt: float = 1e-3
    mujoco_integrator: str = "RK4"
    joint_limits: bool = True
    joint_damping: float = 0.0
    u_max: list[float] | None = None

    def validate(self) -> None:
        if not (np.isfinite(self.joint_damping) and self.joint_damping >= 0):
            raise ValueError("joint_damping must be finite and >= 0")
        if self.backend not in BACKENDS:
            raise ValueError(f"backend {self.backend!r} is not one of {BACKENDS}")
        if not self.physics_dt > 0:
            raise ValueError("physics_dt must be > 0")
        if self.u_max is not None and (len(self.u_max) != NQ or not all(u > 0 for u in self.u_max)):
            raise ValueError(f"u_max must list {NQ} positive torque limits")


class MujocoPandaPlant:
    """The Panda stepped by MuJoCo with joint torques (``qfrc_applied``), fixed step ``physics_dt``.

    :meth:`step` holds the command for ``duration`` seconds of simulated time: it runs as many
    MuJoCo steps as fit into the accumulated target time, so a 400 Hz caller on a 1 kHz model gets
    2 or 3 steps per call and the simulated clock never drifts from the requested one by more
    than one step.

    Args:
        urdf_path: the URDF (default: the project's).
        x0: initial state (14,) (default: Franka's ready pose at rest).
        settings: simulator settings (``backend`` is ignored here).
    """

    nx = NX
    nu = NQ

    def __init__(self, urdf_path: str | Path | None = None, x0: np.ndarray | None = None,
                 settings: PandaSimSettings | None = None):
        import mujoco  # noqa: PLC0415

        self._mj = mujoco
        self.settings = settings or PandaSimSettings(backend="mujoco")
        self.settings.validate()
        s = self.settings
        self.model = mujoco_model_from_urdf(urdf_path, s.physics_dt, s.mujoco_integrator, s.joint_limits)
        self.model.dof_damping[:] = s.joint_damping
        self.data = mujoco.MjData(self.model)
        limits = np.asarray(s.u_max if s.u_max is not None else _effort_limits(urdf_path), float)
        self.u_max = limits
        self.reset(np.concatenate([Q_READY, np.zeros(NQ)]) if x0 is None else x0)

    @property
    def x(self) -> np.ndarray:
        return np.concatenate([self.data.qpos, self.data.qvel])

    @property
    def t(self) -> float:
        return float(self.data.time)

    def reset(self, x0: np.ndarray, t0: float = 0.0) -> None:
        x0 = np.asarray(x0, dtype=float)
        if x0.shape != (NX,) or not np.all(np.isfinite(x0)):
            raise ValueError(f"x0 must be a finite vector of size {NX}")
        self._mj.mj_resetData(self.model, self.data)
        self.data.qpos[:] = x0[:NQ]
        self.data.qvel[:] = x0[NQ:]
        self.data.time = float(t0)
        self._t_target = float(t0)
        self._mj.mj_forward(self.model, self.data)

    def clip(self, u: np.ndarray) -> np.ndarray:
        return np.clip(np.asarray(u, dtype=float), -self.u_max, self.u_max)

    def step(self, u: np.ndarray, duration: float) -> np.ndarray:
        """Hold torques ``u`` (7,) for ``duration`` seconds (clipped to ``u_max``); the new state."""
        u = np.asarray(u, dtype=float)
        if u.shape != (NQ,) or not np.all(np.isfinite(u)):
            raise ValueError(f"command must be a finite vector of size {NQ}")
        if not duration > 0:
            raise ValueError("duration must be > 0")
        self.data.qfrc_applied[:] = self.clip(u)
        self._t_target += duration
        h = self.model.opt.timestep
        n = int(np.floor((self._t_target - self.data.time) / h + 1e-9))
        for _ in range(n):
            self._mj.mj_step(self.model, self.data)
        x = self.x
        if not np.all(np.isfinite(x)):
            raise ValueError("MuJoCo state became non-finite")
        return x

    def frame_position(self, name: str = TCP_FRAME) -> np.ndarray:
        """World position (3,) of a URDF link (e.g. panda_hand_tcp) at the current state."""
        self._mj.mj_kinematics(self.model, self.data)  # mj_step leaves xpos at the step's start
        return self.data.body(name).xpos.copy()


def _effort_limits(urdf_path=None) -> np.ndarray:
    from dmpc_core import _core  # noqa: PLC0415

    return np.asarray(_core.PandaDynamics(str(urdf_path or default_urdf_path())).effort_limit, float)


def make_panda_plant(settings: PandaSimSettings | None = None, x0: np.ndarray | None = None,
                     urdf_path: str | Path | None = None):
    """A Panda plant of the chosen backend (see the module docstring).

    Returns:
        ``MujocoPandaPlant`` or ``dmpc_core.sim.Plant`` on ``_core.PandaDynamics``; both have
        ``reset``, ``step(u, duration)``, ``x``, ``t``, ``nx`` / ``nu`` (or ``model.nx``).
    """
    s = settings or PandaSimSettings()
    s.validate()
    x0 = np.concatenate([Q_READY, np.zeros(NQ)]) if x0 is None else np.asarray(x0, float)
    if s.backend == "mujoco":
        return MujocoPandaPlant(urdf_path, x0, s)
    from dmpc_core import _core  # noqa: PLC0415
    from dmpc_core.sim.plant import Plant, PlantSettings  # noqa: PLC0415

    model = _core.PandaDynamics(str(urdf_path or default_urdf_path()), s.joint_damping)
    u_max = list(s.u_max) if s.u_max is not None else list(model.effort_limit)
    return Plant(model, x0, PlantSettings(physics_dt=s.physics_dt, u_min=[-u for u in u_max], u_max=u_max))


def random_start(rng: np.random.Generator, joint_range: float, lower=None, upper=None, margin: float = 0.1) -> np.ndarray:
    """A start state at rest: Franka's ready pose plus a uniform offset in [-joint_range,
    joint_range] rad per joint, kept ``margin`` rad inside the position limits (``lower`` /
    ``upper``, default: the URDF limits)."""
    if lower is None or upper is None:
        from dmpc_core import _core  # noqa: PLC0415

        m = _core.PandaDynamics(str(default_urdf_path()))
        lower, upper = m.lower_position_limit, m.upper_position_limit
    q = Q_READY + rng.uniform(-joint_range, joint_range, NQ)
    q = np.clip(q, np.asarray(lower) + margin, np.asarray(upper) - margin)
    return np.concatenate([q, np.zeros(NQ)])
