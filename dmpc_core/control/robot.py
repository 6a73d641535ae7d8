"""What the controller core needs to know about a robot: the :class:`Robot` protocol.

A robot gives its sizes, joint names, how a goal is checked, the safe command, the effort
limits and the envelope (the states from which control is still meaningful). The controller
core and the nodes use only this protocol, so the Ballbot and the Franka Panda run through the
same code; :func:`make_robot` picks the implementation by name.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Protocol, Sequence, Tuple

import numpy as np

from dmpc_core.tasks import ballbot


class Robot(Protocol):
    """Attributes:
    name: "ballbot" or "panda".
    task: the task its MPC runs (``make_mpc``); critics and transitions are tagged with it.
    nx, nu, ng: sizes of the state, the command and the goal.
    joint_names: JointState names, in state order (positions then velocities of these joints).
    command_label: label of the command vector (``wheel_torque``, ``joint_torque``).
    effort_limits: (nu,) bound on |u_i| of every published command [N m].
    supports_critic: whether learned critics and transitions are wired for this robot.
    safe_command_holds: whether the safe command alone holds the robot still (Panda: gravity
        compensation), so it may be sent before the first MPC policy; the Ballbot's zero torque
        does not balance it, so nothing is sent until a policy exists (the plant holds it).
    """

    name: str
    task: str
    nx: int
    nu: int
    ng: int
    joint_names: Tuple[str, ...]
    command_label: str
    effort_limits: np.ndarray
    supports_critic: bool
    safe_command_holds: bool

    def goal_from_point(self, p: Sequence[float]) -> np.ndarray:
        """The goal for a 3-D point (x, y, z) [m] in the goal frame."""

    def check_goal(self, goal) -> Optional[str]:
        """None if ``goal`` can be reached, else why it is refused."""

    def safe_command(self, x: Optional[np.ndarray]) -> np.ndarray:
        """The command sent whenever the MPC's command cannot be used (``x``: last valid state)."""

    def envelope_problem(self, x: np.ndarray) -> Optional[str]:
        """None while ``x`` is inside the envelope, else why the robot is out of it (fallen...)."""

    def make_mpc(self, goal, critic=None, critic_version: int = 0):
        """A new reach MPC (``ReachMpc`` / ``PandaReachMpc`` interface) for ``goal``."""

    def display_points(self, reach, xs: np.ndarray) -> np.ndarray:
        """(n, 3) points to draw for the planned states ``xs`` (n, nx)."""

    def fallback_policy(self, reach, t0: float):
        """A stabilising time-invariant policy around the goal of ``reach`` (used when the MPC
        policy runs past its horizon because solves stalled)."""

    def plan_deviation(self, x: np.ndarray, x_nom: np.ndarray) -> float:
        """How far the measured state ``x`` is from the plan's nominal state ``x_nom`` (Ballbot:
        planar position [m]; Panda: largest joint position error [rad])."""

    def hold_command(self, fallback, x: np.ndarray, anchor: np.ndarray) -> np.ndarray:
        """A stabilising command that holds the robot at the state ``anchor`` (used while the
        state is far from the MPC plan's, e.g. right after a reset moved the robot, until the MPC
        has re-planned from it); ``fallback``: the robot's :meth:`fallback_policy` for the current
        goal, whose gains it may reuse."""


@dataclass
class BallbotRobot:
    """The Ballbot (10 states, 3 wheel torques, goal (x, y)).

    Args:
        settings: ``ReachSettings`` of the MPC (arena size for goals and the envelope).
        u_max: effort limit of every wheel [N m] (the simulator's and the motors' bound).
        max_tilt_deg: the robot counts as fallen beyond this tilt [deg].
        arena_margin: out of the envelope beyond ``arena_half_width + arena_margin`` [m].
    """

    settings: object
    u_max: float = 30.0
    max_tilt_deg: float = 30.0
    arena_margin: float = 1.0

    name = "ballbot"
    task = "reach"
    nx = ballbot.NX
    nu = ballbot.NU
    ng = 2
    joint_names = tuple(ballbot.JOINT_NAMES)
    command_label = "wheel_torque"
    supports_critic = True
    safe_command_holds = False

    def __post_init__(self) -> None:
        if not (np.isfinite(self.u_max) and self.u_max > 0):
            raise ValueError(f"u_max must be > 0, got {self.u_max}")
        if not 0 < self.max_tilt_deg < 90:
            raise ValueError(f"max_tilt_deg must be in (0, 90), got {self.max_tilt_deg}")
        self.effort_limits = np.full(self.nu, float(self.u_max))

    def goal_from_point(self, p) -> np.ndarray:
        return np.asarray(p, float)[:2]

    def check_goal(self, goal) -> Optional[str]:
        from dmpc_core.control.reach_mpc import check_goal

        return check_goal(goal, self.settings.arena_half_width)

    def safe_command(self, x: Optional[np.ndarray]) -> np.ndarray:
        return np.zeros(self.nu)

    def envelope_problem(self, x: np.ndarray) -> Optional[str]:
        tilt = float(ballbot.tilt(np.asarray(x, float)[None, :])[0])
        if tilt > np.deg2rad(self.max_tilt_deg):
            return f"fallen: tilt {np.rad2deg(tilt):.1f} deg > {self.max_tilt_deg:g} deg"
        bound = self.settings.arena_half_width + self.arena_margin
        if max(abs(x[ballbot.PX]), abs(x[ballbot.PY])) > bound:
            return f"out of the arena: position ({x[ballbot.PX]:.2f}, {x[ballbot.PY]:.2f}) beyond {bound:g} m"
        return None

    def make_mpc(self, goal, critic=None, critic_version: int = 0):
        from dmpc_core.control.reach_mpc import ReachMpc

        return ReachMpc(self.settings, goal, critic=critic, critic_version=critic_version)

    def fallback_policy(self, reach, t0: float):
        """The upright LQR stabiliser at the goal (``tasks.ballbot.lqr_policy``)."""
        return ballbot.lqr_policy(reach.problem, tuple(reach.goal), t0)

    def plan_deviation(self, x: np.ndarray, x_nom: np.ndarray) -> float:
        return float(np.hypot(x[ballbot.PX] - x_nom[ballbot.PX], x[ballbot.PY] - x_nom[ballbot.PY]))

    def hold_command(self, fallback, x: np.ndarray, anchor: np.ndarray) -> np.ndarray:
        """The upright LQR stabiliser (the fallback's gain) at the anchor's position, at rest:
        u = K (x - x_ref)."""
        x_ref = np.zeros(ballbot.NX)
        x_ref[ballbot.PX], x_ref[ballbot.PY] = anchor[ballbot.PX], anchor[ballbot.PY]
        return np.asarray(fallback.K[0], float) @ (np.asarray(x, float) - x_ref)

    def display_points(self, reach, xs: np.ndarray) -> np.ndarray:
        xs = np.asarray(xs, float)
        return np.column_stack([xs[:, ballbot.PX], xs[:, ballbot.PY], np.zeros(len(xs))])


@dataclass
class PandaRobot:
    """The Franka Panda (q, v of 7 joints, 7 joint torques, goal = TCP position (x, y, z)).

    Args:
        settings: ``PandaReachSettings``.
        joint_names: the 7 arm joints as named in JointState.
        position_margin: out of the envelope when a joint is further than this beyond its
            position limit [rad] (the simulator's and the real arm's limits stop it before).
        velocity_factor: out of the envelope when |v_i| exceeds this times its velocity limit
            (0 = no velocity check, the default: in simulation the MPC drives the light wrist
            joints past 1.5 x their nominal limit during ordinary reaches).
    """

    settings: object
    joint_names: Tuple[str, ...] = ()
    position_margin: float = 0.1
    velocity_factor: float = 0.0

    name = "panda"
    task = "reach"
    command_label = "joint_torque"
    supports_critic = False
    safe_command_holds = True

    def __post_init__(self) -> None:
        from dmpc_core import _core
        from dmpc_core.models import panda as panda_model

        self.joint_names = tuple(self.joint_names or panda_model.JOINT_NAMES)
        if len(self.joint_names) != 7:
            raise ValueError(f"joint_names must list 7 joints (got {list(self.joint_names)})")
        self.model = _core.PandaDynamics(self.settings.urdf_path(), self.settings.joint_damping)
        self.nx, self.nu, self.ng = self.model.nx, self.model.nu, 3
        self.effort_limits = np.asarray(self.model.effort_limit, float).copy()
        self.lower = np.asarray(self.model.lower_position_limit, float)
        self.upper = np.asarray(self.model.upper_position_limit, float)
        self.vmax = np.asarray(self.model.velocity_limit, float)

    def goal_from_point(self, p) -> np.ndarray:
        return np.asarray(p, float)[:3]

    def check_goal(self, goal) -> Optional[str]:
        from dmpc_core.control.panda_reach import check_goal

        return check_goal(goal, self.settings)

    def check_joint_goal(self, q) -> Optional[str]:
        from dmpc_core.control.panda_reach import check_joint_goal

        return check_joint_goal(q, self.model)

    def safe_command(self, x: Optional[np.ndarray]) -> np.ndarray:
        """Gravity compensation at the last valid state (zero before any, or with subtract_gravity)."""
        if x is None or self.settings.subtract_gravity:
            return np.zeros(self.nu)
        return np.asarray(self.model.gravity(np.asarray(x, float)[:self.nu]), float)

    def envelope_problem(self, x: np.ndarray) -> Optional[str]:
        q, v = np.asarray(x, float)[:self.nu], np.asarray(x, float)[self.nu:]
        out = (q < self.lower - self.position_margin) | (q > self.upper + self.position_margin)
        if np.any(out):
            return f"joint(s) {np.flatnonzero(out).tolist()} beyond their position limits"
        fast = np.abs(v) > self.velocity_factor * self.vmax
        if self.velocity_factor > 0 and np.any(fast):
            return f"joint(s) {np.flatnonzero(fast).tolist()} faster than {self.velocity_factor:g} x their velocity limit"
        return None

    def make_mpc(self, goal, critic=None, critic_version: int = 0):
        from dmpc_core.control.panda_reach import PandaReachMpc

        if critic is not None:
            raise ValueError("no critic is wired for the Franka Panda (the learner supports the Ballbot)")
        return PandaReachMpc(self.settings, goal, model=self.model)

    def display_points(self, reach, xs: np.ndarray) -> np.ndarray:
        return reach.tcp_path(np.asarray(xs, float))

    def fallback_policy(self, reach, t0: float, omega: float = 10.0):
        """Gravity compensation plus a critically damped joint PD toward the posture reference,
        u = g(q_ref) - M(q_ref) (omega^2 (q - q_ref) + 2 omega v)."""
        from dmpc_core import _core

        x_ref = np.asarray(reach.x_ref, float)
        q = x_ref[:self.nu]
        M = np.asarray(self.model.mass_matrix(q), float)
        s = reach.settings.mpc
        pol = _core.Policy()
        pol.t0, pol.dt = float(t0), s.dt
        pol.u_ff = np.tile(np.asarray(self.model.gravity(q), float), (s.horizon, 1))
        pol.x_nom = np.tile(x_ref, (s.horizon + 1, 1))
        pol.K = [-np.hstack([omega ** 2 * M, 2.0 * omega * M])] * s.horizon
        return pol

    def plan_deviation(self, x: np.ndarray, x_nom: np.ndarray) -> float:
        return float(np.max(np.abs(np.asarray(x, float)[:self.nu] - np.asarray(x_nom, float)[:self.nu])))

    def hold_command(self, fallback, x: np.ndarray, anchor: np.ndarray, omega: float = 10.0) -> np.ndarray:
        """Gravity compensation plus a critically damped joint PD toward the anchor's joint
        positions, u = g(q_a) - M(q_a) (omega^2 (q - q_a) + 2 omega v) (the fallback's PD
        targets the posture reference instead, so it is not used)."""
        x = np.asarray(x, float)
        q_a = np.asarray(anchor, float)[:self.nu]
        M = np.asarray(self.model.mass_matrix(q_a), float)
        return (np.asarray(self.model.gravity(q_a), float)
                - M @ (omega ** 2 * (x[:self.nu] - q_a) + 2.0 * omega * x[self.nu:]))

    def ready_goal(self) -> np.ndarray:
        """TCP position at Franka's ready pose (the default initial goal)."""
        from dmpc_core.models import panda as panda_model

        return np.asarray(self.model.frame_position(panda_model.Q_READY, self.settings.frame), float)


def make_robot(name: str, settings, **kwargs) -> "Robot":
    """``BallbotRobot`` or ``PandaRobot`` by ``name`` (ValueError for any other)."""
    if name == "ballbot":
        return BallbotRobot(settings, **kwargs)
    if name == "panda":
        return PandaRobot(settings, **kwargs)
    raise ValueError(f"robot {name!r} is not supported (ballbot, panda)")
