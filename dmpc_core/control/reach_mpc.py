"""Ballbot goal reaching, as run by the ROS controller node: the Deep Value MPC actor with a
learned critic, or a nominal tracking MPC.

:class:`ReachMpc` bundles one reach problem and its receding-horizon controller
(:class:`~dmpc_core.mpc.MpcController`, SLQ, or :class:`~dmpc_core.mpc.MppiMpcController` with
``settings.mpc.solver = "mppi"``):

* without a critic: the nominal tracking problem of ``tasks.ballbot.make_reach_problem``
  (quadratic tracking of the goal or of a path, upright term, LQR tail);
* with a critic and ``critic_mode: dmpc`` (the default, and the shipped graph): the Deep Value
  MPC problem (Eq. 10 with the critic as the terminal cost, Eq. 13, and the Eq. 14 running cost)
  built by the one actor module :class:`dmpc_core.control.dmpc_actor.DmpcActor` that ``dmpc train
  ballbot-reach`` uses, with the nominal terms of ``settings.actor`` on the node's MPC grid, the
  value terms scaled by ``critic_weight`` (1 is deep-value-mpc);
* with a critic and ``critic_mode: blend`` (the ``tracking`` variant of the graph): the tracking
  problem whose terminal cost blends the LQR tail with the critic (Eq. 13 of deep-value-mpc)::

      phi(t, x) = (1 - w) * 1/2 (x - x_ref)' P (x - x_ref) + w * V(tau, x; goal),  w = critic_weight

The MPC clock runs continuously; an episode starts at ``t_start`` (:meth:`ReachMpc.set_episode`).
In dmpc mode the episode ends at ``t_goal = t_start + episode_length`` and nodes beyond it see
tau = 0 (V(0, x), the termination value), as in training; in blend mode the horizon's last node
sees the episode's remaining time (``t_goal = t_start + episode_length + horizon * dt``).

:class:`TransitionRecorder` turns the executed (t, x, u) samples into the learner's transitions
(:data:`dmpc_core.critics.learner.TRANSITION_FIELDS`) with :meth:`ReachMpc.stage_cost`: the
reach task's ``dt * ||p - g||`` (the step cost of ``dmpc train ballbot-reach``) in dmpc mode,
ending each episode that runs to T with the termination cost :meth:`ReachMpc.terminal_cost`;
the problem's discretised stage cost ``dt * (l(t, x, u) + 1/2 u' R u)`` in blend mode.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from dmpc_core import _core
from dmpc_core.control.dmpc_actor import ActorSettings, DmpcActor
from dmpc_core.critics.fields import TRANSITION_FIELDS
from dmpc_core.mpc import MpcSettings, make_controller
from dmpc_core.tasks import ballbot

NG = 2  # goal = target (px, py)
CRITIC_MODES = ("blend", "dmpc")


def _node_actor_settings() -> ActorSettings:
    """The Deep Value MPC actor's nominal terms for the node: those of config/ballbot_reach.yaml."""
    return ActorSettings(r=0.2, w_tilt=10.0, w_tilt_rate=2.0, tilt_limit=0.3, torque_limit=30.0, barrier_mu=1.0,
                         barrier_delta=0.1, initial_iterations=3)


@dataclass
class ReachSettings:
    """Attributes:
    mpc: receding-horizon settings.
    cost: Ballbot cost weights.
    episode_length: seconds per goal (time-to-go reaches 0 there).
    critic_weight: w of the terminal blend (``critic_mode: blend``) or the scale of both value
        terms (``critic_mode: dmpc``; 1 is deep-value-mpc); used only when a critic is active.
    arena_half_width: goals with |px| or |py| above this are rejected [m].
    critic_mode: what a critic changes: "blend" (the tracking MPC's terminal blend) or "dmpc"
        (the Deep Value MPC actor of ``dmpc train``; see the module doc).
    actor: the Deep Value MPC actor's settings in ``critic_mode: dmpc`` (mode, R, nominal terms,
        limits; ``horizon_time`` / ``node_dt`` are replaced by the ``mpc`` grid).
    terminal_weight / terminal_lead: the Eq. (4) termination cost of ``critic_mode: dmpc``,
        q_f = terminal_weight * ||p + terminal_lead * v - g|| at the episode end, sent to the
        learner as the episode's last cost and as its tau = 0 row (the reach task of
        ``dmpc train ballbot-reach``: 2.0 and 0.6 s, the critic's look-ahead).
    fall_penalty: in ``critic_mode: dmpc``, > 0: the cost added to the episode's last transition
        when the robot leaves its envelope (falls, leaves the arena), which ends the episode
        (``done``; ``dmpc train ballbot-reach`` adds 10). 0: a fall cuts the episode, whose rows
        then bootstrap from the value at the last state before it. The default is 0: the
        look-ahead-point critic sees p + lead v - g and tau, not the tilt, so a penalty on falls is
        spread over the look-ahead points where falls happened (in the node graph, where falls are
        more frequent than offline, runs with 10 collapsed late; docs/log/2026-12-07-ballbot-reach.md).
    """

    mpc: MpcSettings = field(default_factory=MpcSettings)
    cost: ballbot.BallbotCostSettings = field(default_factory=ballbot.BallbotCostSettings)
    episode_length: float = 8.0
    critic_weight: float = 1.0
    arena_half_width: float = 5.0
    critic_mode: str = "dmpc"
    actor: ActorSettings = field(default_factory=_node_actor_settings)
    terminal_weight: float = 2.0
    terminal_lead: float = 0.6
    fall_penalty: float = 0.0

    def validate(self) -> None:
        self.mpc.validate()
        self.cost.validate()
        self.actor.validate()
        if self.critic_mode not in CRITIC_MODES:
            raise ValueError(f"critic_mode must be one of {CRITIC_MODES}")
        if not self.episode_length > 0:
            raise ValueError("episode_length must be > 0")
        if not 0.0 <= self.critic_weight <= 1.0:
            raise ValueError("critic_weight must be in [0, 1]")
        if not self.arena_half_width > 0:
            raise ValueError("arena_half_width must be > 0")
        if not (np.isfinite(self.terminal_weight) and self.terminal_weight >= 0 and np.isfinite(self.terminal_lead)):
            raise ValueError("terminal_weight must be >= 0 and terminal_lead finite")
        if not (np.isfinite(self.fall_penalty) and self.fall_penalty >= 0):
            raise ValueError("fall_penalty must be >= 0")


def check_goal(goal_xy, arena_half_width: float) -> Optional[str]:
    """None if ``goal_xy`` is a finite point inside the arena, else the reason it is refused."""
    g = np.asarray(goal_xy, dtype=float)
    if g.shape != (NG,) or not np.all(np.isfinite(g)):
        return f"goal {g.tolist()} is not a finite (x, y) point"
    if np.any(np.abs(g) > arena_half_width):
        return f"goal {g.tolist()} is outside the arena |x|,|y| <= {arena_half_width} m"
    return None


class ReachMpc:
    """One reach MPC (optionally with a critic). Build it off the control path, then swap.

    Args:
        settings: reach settings.
        goal_xy: initial target.
        critic: a ``_core.CriticModel`` (nx = 10, ng = 2) or None.
        model: the Ballbot model (a new one if None).
    """

    def __init__(self, settings: ReachSettings, goal_xy=(0.0, 0.0), critic=None, model=None,
                 critic_version: int = 0):
        settings.validate()
        self.settings = settings
        self.model = model or _core.BallbotDynamics()
        s = settings.mpc
        base, track, tail = ballbot.make_reach_problem(
            tuple(goal_xy), s.horizon, s.dt, settings.cost, s.integrator, self.model)
        # The tracking term and the LQR tail follow a reference r(t): one knot for a goal, the
        # waypoints of a path (set_path); the tail is evaluated at the horizon's end, r(t + H).
        x_goal = np.asarray(track.x_ref, float)[None, :]
        zero_r = np.zeros((ballbot.NU, ballbot.NU))
        self.track = _core.TrajectoryQuadraticCost(track.Q, zero_r, [0.0], x_goal)
        self.tail = _core.TrajectoryQuadraticCost(tail.Q, zero_r, [0.0], x_goal)
        running = _core.SumCost(ballbot.NX, ballbot.NU)
        running.add("track", self.track)
        c = settings.cost
        running.add("upright", _core.UprightCost(ballbot.NX, ballbot.NU, ballbot.PITCH, ballbot.ROLL, 8, 9,
                                                 c.w_tilt, c.w_tilt_rate))
        self.problem = _core.Problem(self.model, running, self.tail, s.horizon, s.dt, s.integrator,
                                     base.control_weight)
        #: version of the critic in this instance (0: none); reported by the node's ticks
        self.critic_version = int(critic_version) if critic is not None else 0
        #: (times, X_ref) of the path being followed, or None (a goal)
        self.path = None
        self.critic = critic
        self.value_term = self.value_running = None
        self.goal = np.asarray(goal_xy, dtype=float)
        self.episode_start, self.episode_length = 0.0, settings.episode_length
        if critic is not None:
            if critic.nx != ballbot.NX or critic.ng != NG:
                raise ValueError(f"critic has nx={critic.nx}, ng={critic.ng}; expected {ballbot.NX}, {NG}")
            w = settings.critic_weight
            if settings.critic_mode == "dmpc":  # the Deep Value MPC actor (the builder of `dmpc train`)
                self.actor = DmpcActor(settings.actor, model=self.model)
                self.problem, self.value_term, self.value_running = self.actor.make_problem(
                    critic, self.goal, self.t_goal, s.integrator, horizon=s.horizon, dt=s.dt, value_weight=w)
            else:
                self.value_term = _core.ValueTerminalCost(critic, self.t_goal, ballbot.NU)
                terminal = _core.SumCost(ballbot.NX, ballbot.NU)
                terminal.add("lqr_tail", self.tail, 1.0 - w)
                terminal.add("critic", self.value_term, w)
                self.problem = _core.Problem(self.model, self.problem.running_cost, terminal, s.horizon, s.dt,
                                             s.integrator, self.problem.control_weight)
        lqr = ballbot.lqr_policy(self.problem, goal_xy)
        # SLQ: the LQR policy is the first solve's initial guess. MPPI (solver = "mppi"): the same
        # running and terminal costs (critic term included) in the sampled rollouts; zero initial
        # plan (the LQR guess has no feedforward) and, with mppi.feedback = "lqr", the upright LQR
        # gain as the tracking feedback around the MPPI nominal trajectory.
        self.mpc = make_controller(self.problem, s, initial_policy=lqr, feedback_gain=lqr.K[0])
        self.set_goal(goal_xy)

    @property
    def dmpc(self) -> bool:
        """True when the controller is the Deep Value MPC actor (a critic in ``critic_mode: dmpc``)."""
        return self.critic is not None and self.settings.critic_mode == "dmpc"

    @property
    def t_goal(self) -> float:
        """Absolute MPC time that the critic's time-to-go counts down to (module doc)."""
        s = self.settings
        end = getattr(self, "episode_start", 0.0) + getattr(self, "episode_length", s.episode_length)
        return end if self.dmpc else end + s.mpc.horizon * s.mpc.dt

    def update(self, t: float, x: np.ndarray):
        """Re-plan from state ``x`` at MPC time ``t`` (``MpcController.update`` or
        ``MppiMpcController.update``, as ``settings.mpc.solver`` selects)."""
        return self.mpc.update(t, x)

    def set_episode(self, t_start: float, episode_length: float) -> None:
        """A new episode starts at MPC time ``t_start`` (between solves only)."""
        self.episode_start, self.episode_length = float(t_start), float(episode_length)
        for term in (self.value_term, self.value_running):
            if term is not None:
                term.t_goal = self.t_goal

    def set_goal(self, goal_xy) -> None:
        """Move the target (between solves only); ends any path being followed."""
        self.goal = np.asarray(goal_xy, dtype=float).copy()
        x_ref = np.zeros((1, ballbot.NX))
        x_ref[0, ballbot.PX], x_ref[0, ballbot.PY] = self.goal
        for c in (self.track, self.tail):
            c.set_trajectory([0.0], x_ref)
        self.path = None
        if self.critic is not None:
            self.critic.set_goal(self.goal)

    def set_path(self, times, X_ref) -> None:
        """Follow a path (between solves only): knots ``times`` on the MPC clock and ``X_ref``
        (K, NX), e.g. from :func:`dmpc_core.tasks.ballbot.path_reference`. The running tracking
        term follows r(t), the terminal LQR term r(t + H); the goal (and the critic's goal) is the
        last waypoint. The Deep Value MPC actor (``critic_mode: dmpc``) has no tracking term: it
        reaches for the last waypoint."""
        times = np.asarray(times, dtype=float)
        X_ref = np.asarray(X_ref, dtype=float)
        for c in (self.track, self.tail):
            c.set_trajectory(times, X_ref)
        self.goal = X_ref[-1, [ballbot.PX, ballbot.PY]].copy()
        self.path = (times.copy(), X_ref.copy())
        if self.critic is not None:
            self.critic.set_goal(self.goal)

    def warm_start_from(self, other: "ReachMpc") -> None:
        """Start from another instance's latest policy (used right after a critic swap)."""
        self.mpc.warm_start_from(other.mpc)  # valid policy from the first tick on

    @property
    def ends_with_terminal_cost(self) -> bool:
        """Whether episodes end with :meth:`terminal_cost` (``critic_mode: dmpc``)."""
        return self.settings.critic_mode == "dmpc"

    def terminal_cost(self, x: np.ndarray) -> Optional[float]:
        """q_f(x) of an episode that ends at ``x`` (``critic_mode: dmpc``: the Eq. 4 termination
        cost on the look-ahead point p + terminal_lead v, see ReachSettings); None in blend mode (no termination cost)."""
        s = self.settings
        if not self.ends_with_terminal_cost:
            return None
        x = np.asarray(x, float)
        lead = s.terminal_lead
        return float(s.terminal_weight * np.hypot(x[ballbot.PX] + lead * x[ballbot.VX] - self.goal[0],
                                                  x[ballbot.PY] + lead * x[ballbot.VY] - self.goal[1]))

    @property
    def failure_cost(self) -> Optional[float]:
        """Penalty of an episode that ends out of the envelope (``critic_mode: dmpc`` with
        ``fall_penalty`` > 0), else None (the episode is cut)."""
        s = self.settings
        return s.fall_penalty if s.critic_mode == "dmpc" and s.fall_penalty > 0 else None

    def stage_cost(self, t: float, x: np.ndarray, u: np.ndarray, dt: float) -> float:
        """The learner's step cost (module doc): dt * ||p - g|| in ``critic_mode: dmpc`` (the
        reach task's cost, whose value the Deep Value MPC critic learns; also before the first
        critic arrives), else dt * (l(t, x, u) + 1/2 u'Ru) of this problem."""
        if self.settings.critic_mode == "dmpc":
            x = np.asarray(x, float)
            return float(dt * np.hypot(x[ballbot.PX] - self.goal[0], x[ballbot.PY] - self.goal[1]))
        R = self.problem.control_weight
        l = self.problem.running_cost.value(float(t), np.asarray(x, float), np.asarray(u, float))
        return float(dt * (l + 0.5 * u @ R @ u))


class TransitionRecorder:
    """Builds learner transitions from executed samples, one per ``dt`` of the MPC grid.

    Call :meth:`sample` at every control tick; it keeps one sample per ``dt`` and returns a
    transition row (dict of the TRANSITION_FIELDS, 1-D arrays) when one is complete.
    :meth:`cut` drops the pending sample (goal change, reset, state jump).

    With ``terminal=True`` (the Deep Value MPC actor) the episode ends with the Eq. (4)
    termination cost: samples at or after ``episode_length`` make no row, and :meth:`close`
    (called by the controller when the episode times out) emits the last step, to the state at
    the end, with cost + q_f and done, followed by the tau = 0 row whose target is q_f (the
    layout of ``dmpc_core.agents.deep_value_mpc.transitions``).
    """

    def __init__(self, dt: float, episode_length: float, max_jump: float = 0.25, terminal: bool = False):
        self.dt = float(dt)
        self.episode_length = float(episode_length)
        self.max_jump = float(max_jump)  # [m] position change between samples treated as a reset
        self.terminal = bool(terminal)
        self._prev = None

    def cut(self) -> None:
        self._prev = None

    def _jumped(self, x) -> bool:
        return self._prev is not None and np.hypot(*(x[:2] - self._prev[1][:2])) > self.max_jump

    def sample(self, t: float, x, u, goal, cost_fn) -> Optional[dict]:
        """``t``: episode time; ``cost_fn(t, x, u, dt)`` gives the stage cost."""
        if self.terminal and t >= self.episode_length - 1e-9:
            return None  # the episode's last step is made by close()
        x = np.asarray(x, float).copy()
        u = np.asarray(u, float).copy()
        if self._prev is not None and t - self._prev[0] < self.dt - 1e-9:
            return None
        row = None
        if self._jumped(x):
            self._prev = None  # the plant was reset: no transition across the jump
        if self._prev is not None:
            t0, x0, u0, g0 = self._prev
            tau0 = max(0.0, self.episode_length - t0)
            tau1 = max(0.0, self.episode_length - t)
            row = {
                "state": x0, "goal": g0, "time_to_go": np.array([tau0]),
                "cost": np.array([cost_fn(t0, x0, u0, t - t0)]), "next_state": x,
                "next_time_to_go": np.array([tau1]), "done": np.array([1.0 if tau1 <= 0.0 else 0.0]),
            }
        self._prev = (t, x, u, np.asarray(goal, float).copy())
        return row

    def fail(self, t: float, x, cost_fn, penalty: float) -> list:
        """The robot left its envelope at episode time ``t`` in state ``x`` (a fall): the episode's
        last row, to ``x``, with cost + ``penalty`` and done (the layout of a fall in ``dmpc
        train``), or [] when no sample is pending."""
        x = np.asarray(x, float).copy()
        if self._prev is None or not np.all(np.isfinite(x)):
            self._prev = None
            return []
        t0, x0, u0, g0 = self._prev
        self._prev = None
        return [{"state": x0, "goal": g0, "time_to_go": np.array([max(0.0, self.episode_length - t0)]),
                 "cost": np.array([cost_fn(t0, x0, u0, t - t0) + float(penalty)]), "next_state": x,
                 "next_time_to_go": np.array([max(0.0, self.episode_length - t)]), "done": np.ones(1)}]

    def close(self, t: float, x, cost_fn, terminal_cost: float) -> list:
        """The episode timed out at episode time ``t`` >= episode_length in state ``x``: the rows
        of its end (class doc), or [] when no sample is pending (cut, reset) or ``x`` jumped."""
        x = np.asarray(x, float).copy()
        if self._prev is None or not np.all(np.isfinite(x)) or self._jumped(x):
            self._prev = None
            return []
        t0, x0, u0, g0 = self._prev
        self._prev = None
        qf = np.array([float(terminal_cost)])
        last = {"state": x0, "goal": g0, "time_to_go": np.array([max(0.0, self.episode_length - t0)]),
                "cost": np.array([cost_fn(t0, x0, u0, t - t0)]) + qf, "next_state": x,
                "next_time_to_go": np.zeros(1), "done": np.ones(1)}
        anchor = {"state": x, "goal": g0, "time_to_go": np.zeros(1), "cost": qf, "next_state": x.copy(),
                  "next_time_to_go": np.zeros(1), "done": np.ones(1)}
        return [last, anchor]


def reach_status(x: np.ndarray, goal, pos_tol: float = 0.1, tilt_tol_deg: float = 5.0, speed_tol: float = 0.2) -> tuple:
    """(at_goal, fallen) for one Ballbot state: within ``pos_tol`` of the goal, upright within
    ``tilt_tol_deg`` and slower than ``speed_tol``; fallen = tilt above 30 degrees."""
    x = np.asarray(x, float)
    tilt = float(ballbot.tilt(x)[0])
    at = (np.hypot(x[0] - goal[0], x[1] - goal[1]) < pos_tol and tilt < np.deg2rad(tilt_tol_deg)
          and np.hypot(x[5], x[6]) < speed_tol)
    return bool(at), bool(tilt > np.deg2rad(30.0))


def field_widths(nx: int, ng: int) -> dict:
    """Width of every transition field, in TRANSITION_FIELDS order."""
    w = {"state": nx, "goal": ng, "time_to_go": 1, "cost": 1, "next_state": nx, "next_time_to_go": 1, "done": 1}
    return {k: w[k] for k in TRANSITION_FIELDS}


def pack_rows(rows, nx: int, ng: int) -> np.ndarray:
    """(n, width) matrix of transition rows, fields concatenated in TRANSITION_FIELDS order."""
    return np.asarray([np.concatenate([np.atleast_1d(r[k]) for k in TRANSITION_FIELDS]) for r in rows], float)


def unpack_rows(mat: np.ndarray, nx: int, ng: int) -> dict:
    """Inverse of :func:`pack_rows`: dict field -> (n, width) (scalars as (n,))."""
    mat = np.asarray(mat, float)
    out, c = {}, 0
    for k, w in field_widths(nx, ng).items():
        v = mat[:, c:c + w]
        out[k] = v[:, 0] if w == 1 else v
        c += w
    if c != mat.shape[1]:
        raise ValueError(f"transition rows have {mat.shape[1]} columns; expected {c}")
    return out
