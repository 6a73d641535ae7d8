"""Franka Panda end-effector reaching by receding-horizon SLQ, as run by the ROS controller node.

:class:`PandaReachMpc` has the interface the controller node uses for the Ballbot's
:class:`~dmpc_core.control.reach_mpc.ReachMpc` (``mpc``, ``goal``, ``set_goal``, ``set_episode``,
``warm_start_from``, ``stage_cost``) plus the Panda's command conventions
(:meth:`PandaReachMpc.command`, :meth:`PandaReachMpc.safe_command`). The optimal control problem
is the reach task of :mod:`dmpc_core.tasks.panda` / :mod:`dmpc_core.baselines.crocoddyl_panda`
(state x = [q; v] (14), u = joint torques (7), semi-implicit Euler)::

    l(x, u) = 1/2 (x - x_ref)' diag(w_x) (x - x_ref) + 1/2 w_u ||u - g(q_ref)||^2
              + 1/2 w_goal ||p(q) - p_goal||^2
    l_N(x)  = 1/2 (x - x_ref)' diag(w_x_terminal) (x - x_ref) + 1/2 w_goal_terminal ||p(q) - p_goal||^2

with p(q) the TCP position, x_ref = (posture, 0) and g the gravity torque. The goal is the TCP
position p_goal (3,); a joint-space target sets the posture and p_goal = p(q_target)
(:meth:`PandaReachMpc.set_joint_goal`). A joint trajectory followed in time
(:meth:`PandaReachMpc.set_joint_trajectory`) replaces the two TCP terms by
1/2 (x - r(t))' diag(w_traj) (x - r(t)) (running) and the same at r(t + H) (terminal), with
r(t) = (q_ref(t), v_ref(t)) through the trajectory's points at their times. No critic is wired for the Panda
(the learner works on the Ballbot only); passing one raises ValueError.

Torque conventions. The MPC computes the full joint torque u (gravity included), which is what
the simulators (core, MuJoCo) and Gazebo's effort interfaces expect. The Franka's own controller
(libfranka / franka_ros2 effort interface) adds gravity compensation itself, so with
``subtract_gravity = True`` the published command is ``u - g(q)``. Safe command (no valid state,
stale state, no policy, non-finite output): gravity compensation ``g(q)`` at the last valid
measured configuration (the arm holds its posture instead of falling), i.e. zero with
``subtract_gravity``; zero before any valid state was ever received.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from dmpc_core import _core
from dmpc_core.mpc import MpcController, MpcSettings
from dmpc_core.models.panda import JOINT_NAMES, Q_READY, TCP_FRAME, default_urdf_path

NQ = 7
NX = 2 * NQ
NU = NQ
NG = 3  # goal = TCP position (x, y, z) [m]


def _default_mpc() -> MpcSettings:
    return MpcSettings(horizon=100, dt=0.01, integrator="semi_implicit_euler", mpc_rate=100.0,
                       tracking_rate=400.0, iterations_per_update=1, initial_iterations=30)


@dataclass
class PandaCostSettings:
    """Weights of the reach cost (defaults: the crocoddyl reference task, ``default_setup``, except
    ``w_goal`` = 100 instead of 10: with 10 the receding-horizon loop settles ~3 cm short of the
    goal (the posture and torque regularisers pull back), with 100 within a few mm).

    Attributes:
        w_q / w_v: running state regularisation on q - posture and on v.
        w_u: control regularisation around the gravity torque of the posture.
        w_goal: running TCP position weight. w_goal_terminal: terminal TCP position weight.
        w_q_terminal / w_v_terminal: terminal state regularisation.
        w_traj_q / w_traj_v: running weights on q - q_ref(t) and v - v_ref(t) while a joint
            trajectory is followed (they replace the TCP goal terms then; see
            :meth:`PandaReachMpc.set_joint_trajectory`).
        w_traj_q_terminal / w_traj_v_terminal: the same at the end of the horizon, r(t + H).
    """

    w_q: float = 1e-2
    w_v: float = 1e-1
    w_u: float = 1e-3
    w_goal: float = 100.0
    w_goal_terminal: float = 1e4
    w_q_terminal: float = 1e-2
    w_v_terminal: float = 1.0
    w_traj_q: float = 100.0
    w_traj_v: float = 1.0
    w_traj_q_terminal: float = 1000.0
    w_traj_v_terminal: float = 10.0

    def validate(self) -> None:
        for k, v in vars(self).items():
            a = np.asarray(v, dtype=float)
            if a.shape not in ((), (NQ,)) or not (np.all(np.isfinite(a)) and np.all(a >= 0)):
                raise ValueError(f"cost.{k} must be finite and >= 0 (a number, or {NQ} numbers for w_q / w_v)")


@dataclass
class PandaReachSettings:
    """Attributes:
    mpc: receding-horizon settings (100 nodes of 10 ms, semi-implicit Euler, 100 Hz re-planning).
    cost: cost weights.
    episode_length: seconds per goal (an episode restarts with the same goal after it).
    workspace_center / workspace_radius: goals farther than the radius from the centre (the
        shoulder, joint 2's axis at z = 0.333 m) are rejected [m]; the Panda reaches ~0.855 m.
    min_height: goals below this z are rejected [m] (the table).
    posture: q of the state-regularisation reference (7,) (Franka's ready pose).
    subtract_gravity: publish u - g(q) (the Franka's torque interface adds gravity itself).
    joint_damping: viscous joint friction d [N m s/rad] of the MPC's model (xdot with tau - d v);
        must equal the simulator's (``PandaSimSettings.joint_damping``).
    urdf: URDF path ('' = the project's urdf/panda.urdf). frame: the end-effector frame.
    """

    mpc: MpcSettings = field(default_factory=_default_mpc)
    cost: PandaCostSettings = field(default_factory=PandaCostSettings)
    episode_length: float = 8.0
    workspace_center: list = field(default_factory=lambda: [0.0, 0.0, 0.333])
    workspace_radius: float = 0.8
    min_height: float = 0.05
    posture: list = field(default_factory=lambda: [float(v) for v in Q_READY])
    subtract_gravity: bool = False
    joint_damping: float = 0.0
    urdf: str = ""
    frame: str = TCP_FRAME

    def validate(self) -> None:
        self.mpc.validate()
        if self.mpc.solver != "slq":
            # MPPI is wired for the Ballbot only: the Panda's warm starts (gravity-compensation
            # guess after a diverged rollout) and torque-scale sampling are SLQ-specific here.
            raise ValueError(f"mpc.solver {self.mpc.solver!r} is not supported for the Franka Panda "
                             "(only 'slq'; MPPI is available for the Ballbot, see docs/ros.md)")
        self.cost.validate()
        if not self.episode_length > 0:
            raise ValueError("episode_length must be > 0")
        if len(self.workspace_center) != 3 or not np.all(np.isfinite(self.workspace_center)):
            raise ValueError("workspace_center must be 3 finite numbers")
        if not self.workspace_radius > 0:
            raise ValueError("workspace_radius must be > 0")
        if not (np.isfinite(self.joint_damping) and self.joint_damping >= 0):
            raise ValueError("joint_damping must be finite and >= 0")
        if len(self.posture) != NQ or not np.all(np.isfinite(self.posture)):
            raise ValueError(f"posture must be {NQ} finite joint angles")

    def urdf_path(self) -> str:
        return self.urdf or str(default_urdf_path())


def check_goal(goal, settings: PandaReachSettings) -> Optional[str]:
    """None if ``goal`` is a finite TCP position inside the workspace ball and above
    ``min_height``, else the reason it is refused."""
    g = np.asarray(goal, dtype=float)
    if g.shape != (NG,) or not np.all(np.isfinite(g)):
        return f"goal {g.tolist()} is not a finite (x, y, z) point"
    r = float(np.linalg.norm(g - np.asarray(settings.workspace_center, float)))
    if r > settings.workspace_radius:
        return (f"goal {g.tolist()} is {r:.3f} m from the shoulder {list(settings.workspace_center)}; "
                f"workspace radius {settings.workspace_radius} m")
    if g[2] < settings.min_height:
        return f"goal {g.tolist()} is below min_height {settings.min_height} m"
    return None


def check_joint_goal(q, model: _core.PandaDynamics) -> Optional[str]:
    """None if ``q`` (7,) is finite and inside the joint limits, else the reason."""
    q = np.asarray(q, dtype=float)
    if q.shape != (NQ,) or not np.all(np.isfinite(q)):
        return f"joint goal {q.tolist()} is not {NQ} finite angles"
    lo, hi = np.asarray(model.lower_position_limit), np.asarray(model.upper_position_limit)
    bad = [JOINT_NAMES[i] for i in range(NQ) if not lo[i] <= q[i] <= hi[i]]
    if bad:
        return f"joint goal outside the position limits at {bad}"
    return None


class PandaReachMpc:
    """One Panda reach MPC. Build it off the control path, then swap (as the Ballbot's ReachMpc).

    Args:
        settings: reach settings.
        goal: initial TCP target (3,) [m].
        critic: must be None (no critic for the Panda).
        model: a ``_core.PandaDynamics`` (a new one from ``settings.urdf`` if None).
    """

    def __init__(self, settings: PandaReachSettings, goal=(0.5, 0.0, 0.4), critic=None,
                 model: _core.PandaDynamics | None = None):
        if critic is not None:
            raise ValueError("no critic is wired for the Franka Panda (the learner supports the Ballbot)")
        settings.validate()
        self.settings = settings
        self.critic = None
        self.model = model or _core.PandaDynamics(settings.urdf_path(), settings.joint_damping)
        if not self.model.has_frame(settings.frame):
            raise ValueError(f"frame {settings.frame!r} is not in {settings.urdf_path()}")
        s, c = settings.mpc, settings.cost
        w_x = np.concatenate([np.broadcast_to(np.asarray(c.w_q, float), (NQ,)), np.broadcast_to(np.asarray(c.w_v, float), (NQ,))])
        w_xN = np.concatenate([np.broadcast_to(np.asarray(c.w_q_terminal, float), (NQ,)),
                               np.broadcast_to(np.asarray(c.w_v_terminal, float), (NQ,))])
        goal = np.asarray(goal, float)
        w_u = np.broadcast_to(np.asarray(c.w_u, float), (NU,))
        self.reg = _core.QuadraticCost(np.diag(w_x), np.diag(w_u), np.zeros(NX), np.zeros(NU))
        self.reg_terminal = _core.QuadraticCost(np.diag(w_xN), np.zeros((NU, NU)), np.zeros(NX), np.zeros(NU))
        self.track = _core.FrameTranslationCost(self.model, settings.frame, goal, c.w_goal)
        self.track_terminal = _core.FrameTranslationCost(self.model, settings.frame, goal, c.w_goal_terminal)
        running = _core.SumCost(NX, NU)
        running.add("reg", self.reg)
        running.add("goal", self.track)
        # joint-trajectory tracking terms: weight 0 until a trajectory is followed
        w_tr = np.concatenate([np.full(NQ, float(c.w_traj_q)), np.full(NQ, float(c.w_traj_v))])
        w_trN = np.concatenate([np.full(NQ, float(c.w_traj_q_terminal)), np.full(NQ, float(c.w_traj_v_terminal))])
        x0_ref = np.concatenate([np.asarray(settings.posture, float), np.zeros(NQ)])[None, :]
        self.traj = _core.TrajectoryQuadraticCost(np.diag(w_tr), np.zeros((NU, NU)), [0.0], x0_ref)
        self.traj_terminal = _core.TrajectoryQuadraticCost(np.diag(w_trN), np.zeros((NU, NU)), [0.0], x0_ref)
        running.add("trajectory", self.traj, 0.0)
        terminal = _core.SumCost(NX, NU)
        terminal.add("reg", self.reg_terminal)
        terminal.add("goal", self.track_terminal)
        terminal.add("trajectory", self.traj_terminal, 0.0)
        self.running, self.terminal = running, terminal
        #: (times on the MPC clock, X_ref (K, 14)) of the joint trajectory followed, or None
        self.trajectory = None
        self.problem = _core.Problem(self.model, running, terminal, s.horizon, s.dt, s.integrator)
        self.set_posture(settings.posture)
        self.episode_start, self.episode_length = 0.0, settings.episode_length
        self.mpc = MpcController(self.problem, s, initial_policy=self._gravity_policy())
        self.set_goal(goal)

    def _gravity_policy(self, x_nom: Optional[np.ndarray] = None, t0: float = 0.0, omega: float = 10.0) -> _core.Policy:
        """Initial guess: gravity compensation at q_nom plus a critically damped PD toward x_nom
        (default: the posture at rest), u = g(q_nom) - M(q_nom) (omega^2 (q - q_nom) + 2 omega v).
        Open-loop guesses (zero or constant torques) let the light wrist spin up and the 10 ms
        semi-implicit Euler rollout blow up within the 1 s horizon from starts away from it."""
        s = self.settings.mpc
        x_nom = self.x_ref if x_nom is None else np.concatenate([np.asarray(x_nom, float)[:NQ], np.zeros(NQ)])
        M = np.asarray(self.model.mass_matrix(x_nom[:NQ]), float)
        K = -np.hstack([omega ** 2 * M, 2.0 * omega * M])
        pol = _core.Policy()
        pol.t0, pol.dt = float(t0), s.dt
        pol.u_ff = np.tile(np.asarray(self.model.gravity(x_nom[:NQ]), float), (s.horizon, 1))
        pol.x_nom = np.tile(x_nom, (s.horizon + 1, 1))
        pol.K = [K] * s.horizon
        return pol

    def update(self, t: float, x: np.ndarray) -> _core.SlqResult:
        """Re-plan from ``x`` at ``t`` (``MpcController.update``). If the rollout of the warm start
        diverged (e.g. after a disturbance the shifted policy no longer stabilises the arm), the next
        solve starts from the hold-here guess of :meth:`_gravity_policy` around ``x``; the last good
        policy stays active until a solve succeeds."""
        res = self.mpc.update(t, x)
        if res.status == "diverged":
            self.mpc.solver.set_policy(self._gravity_policy(x, t))
        return res

    # -- targets (between solves only) ----------------------------------------------------------
    def set_posture(self, q) -> None:
        """State-regularisation reference x_ref = (q, 0) and u_ref = g(q)."""
        q = np.asarray(q, dtype=float)
        self.x_ref = np.concatenate([q, np.zeros(NQ)])
        self.u_ref = np.asarray(self.model.gravity(q), float)
        self.reg.set_reference(self.x_ref, self.u_ref)
        self.reg_terminal.set_reference(self.x_ref, np.zeros(NU))

    def set_goal(self, goal) -> None:
        """Move the TCP target (3,) [m]; ends any joint trajectory being followed."""
        self.goal = np.asarray(goal, dtype=float).copy()
        self.track.set_reference(self.goal)
        self.track_terminal.set_reference(self.goal)
        self._follow(False)

    def _follow(self, on: bool) -> None:
        """Switch between the TCP goal terms and the joint-trajectory terms."""
        for cost in (self.running, self.terminal):
            cost.set_weight("goal", 0.0 if on else 1.0)
            cost.set_weight("trajectory", 1.0 if on else 0.0)
        if not on:
            self.trajectory = None

    def set_joint_trajectory(self, times, X_ref) -> np.ndarray:
        """Follow a joint trajectory in time (between solves only): knots ``times`` (K,) on the MPC
        clock and ``X_ref`` (K, 14) = (q_ref, v_ref), e.g. from
        :meth:`dmpc_core.control.joint_trajectory.JointTrajectory.reference`. The running cost
        tracks r(t) (``w_traj_q``, ``w_traj_v``), the terminal cost r(t + H); r is linear between
        knots and held after the last, so the arm stops at the last point. The TCP goal terms are
        off meanwhile; the goal reported is p(q_last) and the posture reference q_last. Returns the
        goal."""
        times = np.asarray(times, dtype=float)
        X_ref = np.asarray(X_ref, dtype=float)
        if X_ref.ndim != 2 or X_ref.shape[1] != NX or times.shape != (X_ref.shape[0],):
            raise ValueError(f"joint trajectory needs times (K,) and X_ref (K, {NX})")
        for c in (self.traj, self.traj_terminal):
            c.set_trajectory(times, X_ref)
        goal = self.set_joint_goal(X_ref[-1, :NQ])  # posture and reported goal; ends goal mode
        self._follow(True)
        self.trajectory = (times.copy(), X_ref.copy())
        return goal

    def set_joint_goal(self, q) -> np.ndarray:
        """Joint-space target: posture = q and TCP goal = p(q). Returns the TCP goal."""
        q = np.asarray(q, dtype=float)
        self.set_posture(q)
        goal = np.asarray(self.model.frame_position(q, self.settings.frame), float)
        self.set_goal(goal)
        return goal

    def set_episode(self, t_start: float, episode_length: float) -> None:
        self.episode_start, self.episode_length = float(t_start), float(episode_length)

    def warm_start_from(self, other: "PandaReachMpc") -> None:
        if other.mpc.policy is not None:
            self.mpc.solver.set_policy(other.mpc.policy)
            self.mpc._policy = other.mpc.policy

    # -- commands ---------------------------------------------------------------------------------
    def command(self, u: np.ndarray, x: np.ndarray) -> np.ndarray:
        """The torque to publish for MPC torque ``u`` at state ``x``: ``u``, or ``u - g(q)`` with
        ``subtract_gravity``."""
        u = np.asarray(u, dtype=float)
        return u - self.model.gravity(np.asarray(x, float)[:NQ]) if self.settings.subtract_gravity else u

    def safe_command(self, x: Optional[np.ndarray]) -> np.ndarray:
        """Gravity compensation g(q) at the last valid state ``x`` (zero if None), in the published
        convention (so zero with ``subtract_gravity``)."""
        if x is None or self.settings.subtract_gravity:
            return np.zeros(NU)
        return np.asarray(self.model.gravity(np.asarray(x, float)[:NQ]), float)

    def tcp_path(self, xs: np.ndarray) -> np.ndarray:
        """TCP positions (n, 3) along states ``xs`` (n, 14) (for the planned-path display)."""
        return np.array([self.model.frame_position(np.asarray(x, float)[:NQ], self.settings.frame) for x in xs])

    def stage_cost(self, t: float, x: np.ndarray, u: np.ndarray, dt: float) -> float:
        """Discretised stage cost dt * l(t, x, u) of this problem."""
        return float(dt * self.problem.running_cost.value(float(t), np.asarray(x, float), np.asarray(u, float)))


def tcp_error(model: _core.PandaDynamics, x: np.ndarray, goal, frame: str = TCP_FRAME) -> float:
    """Distance [m] of the TCP at state ``x`` from ``goal``."""
    return float(np.linalg.norm(np.asarray(model.frame_position(np.asarray(x, float)[:NQ], frame)) - np.asarray(goal, float)))
