"""The ROS-free controller core: inputs queued and applied between solves, commands with a
watchdog, an envelope check and effort limits.

Threads (as a node runs it): any thread calls the ``request_*`` methods and
:meth:`ControllerCore.accept_state`; the MPC thread calls :meth:`ControllerCore.solve_step`; the
tracking loop calls :meth:`ControllerCore.command`. Every input is validated where it arrives
and only *queued*; the MPC thread applies the queue right before a solve, so the MPC object is
never changed during a solve and the tracking loop only reads the latest policy.

Command rules (:meth:`ControllerCore.command`), in order:

1. no valid state yet -> safe command, "waiting for state";
2. watchdog: more than ``watchdog_ticks`` ticks without a new valid state *and* the state older
   than ``watchdog_ticks`` tracking periods -> safe command, ERROR;
3. envelope: the robot is out of its envelope (fallen, out of the arena, joint limits) -> safe
   command and ERROR, latched until a reset (:meth:`ControllerCore.request_reset`) with the
   state back inside;
4. no policy yet -> safe command; a non-finite policy output -> safe command, ERROR;
5. the policy ran past its horizon (solves stalled or failed for longer than N dt) -> the robot's
   fallback policy (Ballbot: the upright LQR stabiliser at the goal; Panda: gravity
   compensation + joint PD), WARN, counted in ``fallback_ticks``;
6. otherwise the policy's command, clipped to the robot's effort limits (each clipped tick counted
   in ``saturations``).

A rejected state message never clears the last good state (a publisher of garbage cannot force
safe ticks): it is dropped and counted, and the last good one stays valid until the watchdog's
age limit.

**MPC in a worker process** (``worker`` given, :mod:`dmpc_core.control.mpc_worker`): the solver
runs in a process of its own, so the tracking loop never waits for the GIL of a solve. The
core's own MPC instance then never solves: it holds the plan state (goal, path, episode,
critic), the fallback policy and the latest policy *adopted* from the worker.
:meth:`ControllerCore.solve_step` (the node's MPC thread) applies the queue to it, sends the
worker a snapshot of that plan state whenever it changed, passes ``hold`` (a latched fault or a
stale state forbids solves), takes the worker's latest policy (decoded and checked: a policy
with a non-finite value is refused and counted in ``policies_rejected``, the previous one
stays) and checks that the worker lives. A worker that died or hung is restarted (at most once
per second, ``worker_restarts``); until the new worker's first policy the command comes from
the robot's fallback policy with status ERROR. Overruns, solve times and solver problems are
the worker's. Accepted states go to the worker through shared memory.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import List, NamedTuple, Optional, Tuple

import numpy as np

from dmpc_core.control import mpc_worker
from dmpc_core.control.reach_mpc import TransitionRecorder

OK, WARN, ERROR = "OK", "WARN", "ERROR"


class Status(NamedTuple):
    """Outcome of one tick: ``safe`` (the safe command was sent), ``level`` (OK/WARN/ERROR) and
    a message for people."""

    safe: bool
    level: str
    message: str


CRITIC_SWAPS = ("immediate", "episode_start")


@dataclass
class CoreSettings:
    """Attributes:
    tracking_rate: rate of :meth:`ControllerCore.command` calls [Hz].
    mpc_rate: target re-planning rate [Hz]; a solve longer than its period counts as an overrun.
    watchdog_ticks: ticks (and tracking periods) without a new valid state before the safe command.
    goal_frames: frame_ids accepted for goals and paths (others are refused).
    max_path_poses: longest path accepted [poses].
    path_speed: speed along an unstamped path [m/s].
    episode_length: seconds per goal (time-to-go reaches 0 there).
    transitions_batch: transitions per emitted batch (0: record none).
    watchdog_age_only: the watchdog looks at the state's age alone (ticks triggered by arriving
        states: every tick within a period of a state is that state's own tick).
    plan_deviation_limit: the MPC policy is used only while the state is within this distance of
        the plan's nominal state (``Robot.plan_deviation``: Ballbot [m] planar, Panda [rad] per
        joint); beyond it (a reset or a state-estimate jump moved the robot) the robot's hold
        command keeps it where it is, WARN, counted in ``plan_deviation_ticks``, and the MPC
        re-plans from a cold start (0: no check). The affine policy's feedback K (x - x_nom) on a
        plan made for another state saturated the wheels until the next solve.
    critic_swap: when a new critic (an MPC instance from :meth:`ControllerCore.request_mpc`) takes
        over: "immediate" (at the next solve) or "episode_start" (when the next episode starts:
        a new goal or path, a reset, or the episode's time-out), so that each episode runs one
        critic, as the rollouts of Algorithm 1 do; a newer critic queued meanwhile replaces a
        waiting one.
    """

    tracking_rate: float = 400.0
    mpc_rate: float = 100.0
    watchdog_ticks: int = 2
    goal_frames: List[str] = field(default_factory=lambda: ["world"])
    max_path_poses: int = 10_000
    path_speed: float = 0.5
    episode_length: float = 8.0
    transitions_batch: int = 20
    watchdog_age_only: bool = False
    plan_deviation_limit: float = 0.3
    critic_swap: str = "immediate"

    def validate(self) -> None:
        if not (self.tracking_rate > 0 and self.mpc_rate > 0):
            raise ValueError("tracking_rate and mpc_rate must be > 0")
        if int(self.watchdog_ticks) != self.watchdog_ticks or self.watchdog_ticks < 1:
            raise ValueError(f"watchdog_ticks must be an integer >= 1, got {self.watchdog_ticks}")
        if not self.goal_frames or not all(isinstance(f, str) for f in self.goal_frames):
            raise ValueError("goal_frames must list at least one frame name")
        if int(self.max_path_poses) != self.max_path_poses or self.max_path_poses < 1:
            raise ValueError(f"max_path_poses must be an integer >= 1, got {self.max_path_poses}")
        if not (np.isfinite(self.path_speed) and self.path_speed > 0):
            raise ValueError(f"path_speed must be > 0, got {self.path_speed}")
        if not (np.isfinite(self.episode_length) and self.episode_length > 0):
            raise ValueError(f"episode_length must be > 0, got {self.episode_length}")
        if int(self.transitions_batch) != self.transitions_batch or self.transitions_batch < 0:
            raise ValueError(f"transitions_batch must be an integer >= 0, got {self.transitions_batch}")
        if not (np.isfinite(self.plan_deviation_limit) and self.plan_deviation_limit >= 0):
            raise ValueError(f"plan_deviation_limit must be >= 0, got {self.plan_deviation_limit}")
        if self.critic_swap not in CRITIC_SWAPS:
            raise ValueError(f"critic_swap must be one of {CRITIC_SWAPS}, got {self.critic_swap!r}")


class ControllerCore:
    """One robot's controller without ROS.

    Args:
        robot: a :class:`dmpc_core.control.robot.Robot`.
        settings: :class:`CoreSettings`.
        goal: initial goal (checked by the robot).
        clock: monotonic clock [s] (tests pass their own; with a worker it must be
            ``time.monotonic``, the worker's clock).
        worker: a :class:`~dmpc_core.control.mpc_worker.WorkerSpec` to run the MPC in a worker
            process (None: in this process, on the thread that calls :meth:`solve_step`).
    """

    def __init__(self, robot, settings: CoreSettings, goal, clock=time.monotonic,
                 worker: Optional[mpc_worker.WorkerSpec] = None):
        settings.validate()
        reason = robot.check_goal(goal)
        if reason:
            raise ValueError(f"initial goal: {reason}")
        self.robot, self.settings, self.clock = robot, settings, clock
        self.period = 1.0 / settings.tracking_rate
        self.goal = np.asarray(goal, float).copy()
        self.reach = robot.make_mpc(self.goal)
        self._lock = threading.Lock()
        self._pending: dict = {}
        # state intake
        self.x: Optional[np.ndarray] = None
        self.x_time = -np.inf
        self.x_stamp = 0.0
        self.ticks_since_state = 10**9
        self.states_accepted = 0
        self.states_rejected = 0
        self.last_state_problem = ""
        # outputs and counters
        self.fault = ""           # latched envelope fault ("" = none)
        self.reset_armed = False  # clear the fault at the first state inside the envelope
        self.saturations = 0      # ticks whose command was clipped
        self.ticks = 0
        self.safe_ticks = 0
        self.overruns = 0         # solves longer than one MPC period
        self.solves = 0
        self.last_solve_time = 0.0
        self.solver_problem = ""
        self.fallback_ticks = 0
        self._fallback = None     # (reach, goal) it was built for, policy
        self.plan_deviation_ticks = 0
        self._hold_anchor = None  # state held while the state is far from the plan's
        self._replan_for = None   # the policy whose deviation requested a cold re-plan
        self.policy_listeners: list = []  # called with each new policy (MPC thread)
        self.path_ref: Optional[Tuple[np.ndarray, np.ndarray]] = None
        #: (JointTrajectory, knots (times, X_ref) on the MPC clock) being followed, or None
        self.joint_traj = None
        self.traj_error = float("nan")
        self.traj_max_error = float("nan")
        self.episode_length = float(settings.episode_length)
        self.t0 = 0.0             # MPC time of the episode start
        self.recorder = (self._new_recorder(self.reach)
                         if robot.supports_critic and settings.transitions_batch > 0 else None)
        self._rows_lock = threading.Lock()  # rows come from the tracking tick and the episode end
        self._rows: list = []
        self._batches: list = []
        # plan state forwarded to a worker process (kept in both modes)
        self.joint_goal: Optional[np.ndarray] = None  # joint-space goal being tracked, if any
        self._instance = 0          # MPC instances built so far (critic swap, reset)
        self._cold = False          # the latest instance starts without a warm start
        self._critic_bundle = None  # bundle of the current instance's critic (for the worker)
        self.worker: Optional[mpc_worker.MpcWorker] = None
        self.worker_problem = ""    # "" while the worker delivers policies
        self.worker_restarts = 0
        self.policies_rejected = 0  # worker policies refused (non-finite, bad layout)
        self.last_policy_problem = ""
        if worker is not None:
            if clock is not time.monotonic:
                raise ValueError("the MPC worker runs on time.monotonic; the core's clock must be the same")
            self.worker = mpc_worker.MpcWorker(worker, robot.nu, robot.nx, self.reach.settings.mpc.horizon)
        self._snapshot_id = 0
        self._snapshot_due = True
        self._cold_snapshot = 0     # policies planned before this snapshot are not adopted
        self._policy_seq = 0.0
        self._last_restart = -np.inf

    # -- inputs (any thread) ---------------------------------------------------------------------
    def accept_state(self, x, stamp: float = 0.0, now: Optional[float] = None) -> Optional[str]:
        """Take a measured state; returns None, or why it was dropped (the last good one stays)."""
        now = self.clock() if now is None else now
        try:
            v = np.asarray(x, dtype=float)
        except (TypeError, ValueError):
            v = None
        problem = None
        if v is None or v.shape != (self.robot.nx,):
            problem = f"state has shape {None if v is None else v.shape}; expected ({self.robot.nx},)"
        elif not np.all(np.isfinite(v)):
            problem = "state contains non-finite values"
        with self._lock:
            if problem:
                self.states_rejected += 1
                self.last_state_problem = problem
                return problem
            self.x, self.x_time, self.x_stamp = v.copy(), now, float(stamp)
            self.ticks_since_state = 0
            self.states_accepted += 1
            if self.worker is not None:
                self.worker.write_state(v, now)
        return None

    def reject_state(self, problem: str) -> None:
        """Count a state message dropped before it became a vector (wrong joints...)."""
        with self._lock:
            self.states_rejected += 1
            self.last_state_problem = problem

    def check_frame(self, frame: str) -> Optional[str]:
        if frame not in self.settings.goal_frames:
            return f"frame {frame!r} is not one of the goal frames {self.settings.goal_frames}"
        return None

    def request_goal(self, goal, frame: str) -> Optional[str]:
        """Queue a new goal in ``frame``; returns None or why it is refused."""
        reason = self.check_frame(frame) or self.robot.check_goal(goal)
        if reason:
            return reason
        self._queue("goal", np.asarray(goal, float).copy(), drop=("path", "joint_goal", "joint_trajectory"))
        return None

    def request_point(self, p, frame: str) -> Optional[str]:
        """A goal from a 3-D point (PoseStamped / PointStamped position)."""
        try:
            goal = self.robot.goal_from_point(p)
        except (TypeError, ValueError, IndexError) as e:
            return f"bad point: {e}"
        return self.request_goal(goal, frame)

    def request_path(self, points, frame: str, stamps=None) -> Optional[str]:
        """Queue a path (K, 3) of points in ``frame`` (stamps (K,) or None). The Ballbot follows it;
        for other robots the last point is the goal. Capped at ``max_path_poses``."""
        reason = self.check_frame(frame)
        if reason:
            return reason
        pts = np.asarray(points, float)
        if pts.ndim != 2 or pts.shape[0] < 1 or pts.shape[1] < 2:
            return "path has no poses"
        if pts.shape[0] > self.settings.max_path_poses:
            return f"path has {pts.shape[0]} poses; the limit is {self.settings.max_path_poses}"
        if not hasattr(self.reach, "set_path"):
            return self.request_point(pts[-1], frame)
        from dmpc_core.tasks import ballbot

        xy = pts[:, :2]
        reason = next((r for r in (self.robot.check_goal(p) for p in xy) if r), None)
        if reason:
            return reason
        if stamps is not None:
            stamps = np.asarray(stamps, float)
            if not (stamps.shape == (len(xy),) and np.all(stamps > 0) and np.all(np.diff(stamps) > 0)):
                stamps = None  # unstamped (the usual nav_msgs/Path): constant speed
        try:  # knot times from 0; the MPC thread shifts them to when it takes the path
            ref = ballbot.path_reference(xy, 0.0, stamps, self.settings.path_speed)
        except ValueError as e:
            return str(e)
        self._queue("path", ref, drop=("goal", "joint_goal", "joint_trajectory"))
        return None

    def request_joint_goal(self, q) -> Optional[str]:
        """Queue a joint-space goal (robots with ``check_joint_goal`` only)."""
        check = getattr(self.robot, "check_joint_goal", None)
        if check is None or not hasattr(self.reach, "set_joint_goal"):
            return f"joint-space goals are not supported for the {self.robot.name}"
        q = np.asarray(q, float)
        reason = check(q)
        if reason:
            return reason
        self._queue("joint_goal", q.copy(), drop=("goal", "path", "joint_trajectory"))
        return None

    def request_joint_trajectory(self, names, positions, times, velocities=None) -> Optional[str]:
        """Queue a joint trajectory to follow in time (robots with ``check_joint_goal`` whose MPC
        has ``set_joint_trajectory``): points ``positions`` (K, n) in the joint order ``names``
        (any permutation of the robot's), due at ``times`` (K,) [s] after the MPC thread takes
        it, optional ``velocities`` (see :mod:`dmpc_core.control.joint_trajectory`)."""
        from dmpc_core.control.joint_trajectory import parse_joint_trajectory

        check = getattr(self.robot, "check_joint_goal", None)
        if check is None or not hasattr(self.reach, "set_joint_trajectory"):
            return f"joint trajectories are not supported for the {self.robot.name}"
        traj, reason = parse_joint_trajectory(names, self.robot.joint_names, positions, times, velocities,
                                              check, self.settings.max_path_poses)
        if reason:
            return reason
        self._queue("joint_trajectory", traj, drop=("goal", "path", "joint_goal"))
        return None

    def trajectory_error(self) -> Tuple[float, float]:
        """(current, largest so far) tracking error max_i |q_i - q_ref,i(t)| [rad] of the joint
        trajectory being followed (NaN when none is); updated at every solve."""
        return self.traj_error, self.traj_max_error

    def request_time_budget(self, seconds: float) -> Optional[str]:
        """Episode length for the next goal [s]."""
        try:
            seconds = float(seconds)
        except (TypeError, ValueError):
            return f"time budget {seconds!r} is not a number"
        if not (np.isfinite(seconds) and seconds > 0):
            return f"time budget {seconds} must be finite and > 0"
        self._queue("episode_length", seconds)
        return None

    def request_mpc(self, reach, critic_bundle=None) -> None:
        """Swap in another MPC instance (e.g. with a new critic) between two solves.
        ``critic_bundle``: the :class:`~dmpc_core.critics.bundle.CriticBundle` of its critic
        (required with a worker process, which builds its own instance from it)."""
        if self.worker is not None and getattr(reach, "critic", None) is not None and critic_bundle is None:
            raise ValueError("with the MPC worker process a critic must come with its bundle")
        with self._lock:
            self._pending["mpc"] = reach
            self._pending["mpc_critic"] = critic_bundle

    def request_reset(self) -> Tuple[bool, str]:
        """Clear a latched envelope fault. With the last state inside the envelope it clears now;
        otherwise the reset is armed and the fault clears at the first state back inside (e.g.
        after the robot was stood up or the simulator reset). The MPC restarts from a fresh
        instance (no warm start from the fallen trajectory). Returns (cleared now, message)."""
        with self._lock:
            x = self.x
            if x is not None and self.robot.envelope_problem(x) is None:
                self.fault, self.reset_armed = "", False
                self._pending["reset"] = True
                return True, "fault cleared; the MPC restarts"
            self.reset_armed = True
        return False, "armed: the fault clears at the first state back inside the envelope"

    def _queue(self, kind: str, value, drop=()) -> None:
        with self._lock:
            for k in drop:
                self._pending.pop(k, None)
            self._pending[kind] = value

    # -- MPC thread ------------------------------------------------------------------------------
    def latest(self, now: Optional[float] = None) -> Tuple[Optional[np.ndarray], float]:
        """(last valid state or None, its age [s])."""
        now = self.clock() if now is None else now
        with self._lock:
            return self.x, now - self.x_time

    def state_fresh(self, now: Optional[float] = None) -> bool:
        now = self.clock() if now is None else now
        w = self.settings.watchdog_ticks
        with self._lock:
            return self.x is not None and (self.ticks_since_state <= w or now - self.x_time <= w * self.period)

    def apply_pending(self, t: float) -> None:
        """Apply queued changes at MPC time ``t`` (MPC thread, between solves)."""
        with self._lock:
            pending, self._pending = self._pending, {}
        reach = self.reach
        # a new episode starts at this solve: a new goal, path or joint trajectory, a reset, or the
        # time-out of the running one (swapping instances below keeps reach.episode_length)
        restart = any(k in pending for k in ("goal", "path", "joint_goal", "joint_trajectory", "reset"))
        ended = t - self.t0 > reach.episode_length
        if "mpc" in pending and self.settings.critic_swap == "episode_start" and not (restart or ended):
            with self._lock:  # the critic waits for the next episode; a newer one queued meanwhile wins
                for k in ("mpc", "mpc_critic", "mpc_cold"):
                    if k in pending:
                        self._pending.setdefault(k, pending.pop(k))
        if ("reset" in pending or "replan" in pending) and "mpc" not in pending:
            # a fresh instance from a cold start (no warm start from the fallen or jumped trajectory)
            pending["mpc"] = self.robot.make_mpc(self.goal, reach.critic, getattr(reach, "critic_version", 0))
            pending["mpc_critic"] = self._critic_bundle
            pending["mpc_cold"] = True
        new = pending.get("mpc")
        if new is not None:
            self._instance += 1
            self._cold = self._cold or bool(pending.get("mpc_cold"))
            self._critic_bundle = pending.get("mpc_critic")
            if self.path_ref is not None:
                new.set_path(*self.path_ref)
            elif self.joint_traj is not None:
                new.set_joint_trajectory(*self.joint_traj[1])
            else:
                new.set_goal(self.goal)
            new.set_episode(self.t0, reach.episode_length)
            if not pending.get("mpc_cold"):
                new.warm_start_from(reach)
            self.reach = reach = new  # reference swap: the next tick uses it
        goal = pending.get("goal")
        if goal is not None or "path" in pending or "joint_goal" in pending:
            self.joint_traj = None
            self.traj_error = self.traj_max_error = float("nan")
        if "joint_goal" in pending:
            goal = reach.set_joint_goal(pending["joint_goal"])
            self.path_ref = None
            self.joint_goal = pending["joint_goal"]
        elif "goal" in pending or "path" in pending or "joint_trajectory" in pending:
            self.joint_goal = None
        if "joint_trajectory" in pending:
            traj = pending["joint_trajectory"]
            x, _ = self.latest()
            knots = traj.reference(t, None if x is None else x[:self.robot.nu])
            self.goal = np.asarray(reach.set_joint_trajectory(*knots), float).copy()
            self.joint_traj = (traj, knots)
            self.path_ref = None
            self.traj_error = self.traj_max_error = float("nan")
        if "episode_length" in pending:
            self.episode_length = pending["episode_length"]
        if "path" in pending:
            times, X_ref = pending["path"]
            self.path_ref = (times + t, X_ref)
            reach.set_path(*self.path_ref)
            self.goal = np.asarray(reach.goal, float).copy()
        if goal is not None:
            self.goal = np.asarray(goal, float).copy()
            self.path_ref = None
            reach.set_goal(self.goal)
        if pending or ended:
            self._snapshot_due = True  # the worker's MPC follows (worker mode)
        if restart or ended:
            # new goal or path, or the episode timed out (same goal, new episode); timed_out: the
            # same goal ran to the episode's end (no new goal, path or reset at this tick)
            timed_out = ended and not restart
            t_end = t - self.t0
            self.t0 = t
            reach.set_episode(t, self.episode_length)
            if self.recorder is not None:
                old, self.recorder = self.recorder, self._new_recorder(reach)
                x, _ = self.latest()
                if timed_out and old.terminal and x is not None and not self.fault:
                    # the episode ran to its end: its last step carries the termination cost
                    self._emit(old.close(t_end, x, reach.stage_cost, reach.terminal_cost(x)))

    def solve_step(self, t: float, now: Optional[float] = None):
        """Apply the queue, then re-plan from the last state when it is fresh and no fault is
        latched. Returns the solver result or None (no solve). A solve longer than one MPC
        period counts as an overrun; the previous policy stays in use until a solve succeeds.
        With a worker process: see :meth:`sync_worker` (returns the adopted policy or None)."""
        if self.worker is not None:
            return self.sync_worker(t, now)
        self.apply_pending(t)
        x, _ = self.latest(now)
        self._measure_trajectory_error(t, x)
        if x is None or self.fault or not self.state_fresh(now):
            return None
        start = time.perf_counter()
        res = self.reach.update(t, x)
        self.last_solve_time = time.perf_counter() - start
        self.solves += 1
        if self.last_solve_time > 1.0 / self.settings.mpc_rate:
            self.overruns += 1
        ok = self.reach.mpc.is_ok(res)
        self.solver_problem = "" if ok else f"solver status {res.status} (previous policy kept)"
        if ok:
            for listener in self.policy_listeners:
                listener(self.reach.mpc.policy)
        return res

    def _measure_trajectory_error(self, t: float, x: Optional[np.ndarray]) -> None:
        """Tracking error of a timed joint trajectory being followed (diagnostics), at each solve
        step in both the in-process and the worker mode."""
        if x is not None and self.joint_traj is not None:
            traj, knots = self.joint_traj
            self.traj_error = traj.error(t, x, knots)
            self.traj_max_error = float(np.nanmax([self.traj_max_error, self.traj_error]))

    def sync_worker(self, t: float, now: Optional[float] = None):
        """Worker mode, on the MPC thread: apply the queue, start or restart the worker, forward
        the plan state and ``hold``, collect its counters and adopt its latest policy (returned;
        None when there is no new one)."""
        now = self.clock() if now is None else now
        self.apply_pending(t)
        self._measure_trajectory_error(t, self.latest(now)[0])
        w = self.worker
        self.start_worker()
        problem = w.problem(now)
        w.maintain()
        if problem:
            self.worker_problem = f"{problem}; fallback policy while it restarts"
            if now - self._last_restart >= 1.0:
                self._last_restart = now
                w.restart()
                self.worker_restarts += 1
                self._snapshot_due = True
        x, _ = self.latest(now)
        w.set_hold(x is None or bool(self.fault) or not self.state_fresh(now))
        if self._snapshot_due:
            self._snapshot_id += 1
            if self._cold:
                self._cold_snapshot = self._snapshot_id
            mode = ("path" if self.path_ref is not None else "trajectory" if self.joint_traj is not None
                    else "joint" if self.joint_goal is not None else "goal")
            snap = mpc_worker.snapshot_of(self.reach, self._instance, self._critic_bundle, self._cold, mode,
                                          self.joint_goal, now - t, self._snapshot_id,
                                          None if self.joint_traj is None else self.joint_traj[1])
            if w.send(snap):
                self._snapshot_due = self._cold = False
        w.messages()
        self.solver_problem = w.problem_text
        self.solves, self.overruns = w.counter(mpc_worker.SOLVES), w.counter(mpc_worker.OVERRUNS)
        self.last_solve_time = float(w.status[mpc_worker.SOLVE_TIME])
        return self._take_policy()

    def _take_policy(self):
        w = self.worker
        seq = w.policy.block.seq
        if seq == self._policy_seq:
            return None  # nothing new (checked before copying the block)
        try:
            got = w.policy.read()
        except ValueError as e:
            self._policy_seq = seq
            self._reject_policy(str(e))
            return None
        if got is None or got[0] == self._policy_seq:
            return None
        seq, head, data = got
        self._policy_seq = seq
        if head["generation"] != w.generation or head["snapshot"] < self._cold_snapshot:
            return None  # from a worker since replaced, or planned before a reset
        try:
            pol = w.policy.decode(head, data)
            reach = self.reach
            reach.mpc.adopt_policy(pol)
        except ValueError as e:
            self._reject_policy(str(e))
            return None
        self.worker_problem = self.last_policy_problem = ""
        for listener in self.policy_listeners:
            listener(pol)
        return pol

    def _reject_policy(self, problem: str) -> None:
        self.policies_rejected += 1
        self.last_policy_problem = f"policy from the MPC worker refused: {problem}"

    def start_worker(self) -> None:
        """Start the worker process now (worker mode; otherwise the first :meth:`solve_step`
        does): its imports and MPC build then overlap the node's start-up."""
        if self.worker is not None and self.worker.process is None:
            self.worker.start()
            self._snapshot_due = True

    def stop_worker(self) -> None:
        """Stop the worker process (worker mode; it starts again at the next :meth:`solve_step`)."""
        if self.worker is not None:
            self.worker.stop()

    # -- tracking loop ---------------------------------------------------------------------------
    def command(self, t: float, x: Optional[np.ndarray], age: float) -> Tuple[np.ndarray, Status]:
        """The command for MPC time ``t`` from the last valid state ``x`` of age ``age`` [s]."""
        with self._lock:
            self.ticks_since_state += 1
            ticks_since = self.ticks_since_state
        self.ticks += 1
        w = self.settings.watchdog_ticks
        reach = self.reach
        status = None
        if x is None:
            status = Status(True, WARN, "waiting for state")
        elif (ticks_since > w or self.settings.watchdog_age_only) and age > w * self.period:
            status = Status(True, ERROR, f"no state for {ticks_since - 1} ticks ({1e3 * age:.1f} ms; watchdog {w} ticks)")
        else:
            problem = self.robot.envelope_problem(x)
            if problem and not self.fault:
                self.fault = problem
                penalty = getattr(reach, "failure_cost", None)
                if self.recorder is not None and penalty is not None:
                    # the episode ends here: its last row carries the task's failure penalty
                    self._emit(self.recorder.fail(t - self.t0, x, reach.stage_cost, penalty))
                elif self.recorder is not None:
                    self.recorder.cut()  # no transition into or out of the fault
            elif not problem and self.fault and self.reset_armed:
                with self._lock:
                    self.fault, self.reset_armed = "", False
                    self._pending["reset"] = True
            if self.fault:
                status = Status(True, ERROR, f"{self.fault}; safe command until reset")
        if status is None and reach.mpc.policy is None:
            status = Status(True, WARN, "waiting for the first MPC solve")
        if status is None:
            pol = reach.mpc.policy
            worker_problem = self.worker_problem
            if t > pol.t0 + pol.horizon * pol.dt or worker_problem:
                u = np.asarray(self._fallback_policy(reach).control(t, x), float)
                self.fallback_ticks += 1
                fallback = worker_problem or f"MPC policy expired {t - pol.t0 - pol.horizon * pol.dt:.3f} s ago: fallback policy"
            else:
                limit = self.settings.plan_deviation_limit
                t_nom = min(float(t), pol.t0 + pol.horizon * pol.dt)
                if limit > 0 and self.robot.plan_deviation(x, np.asarray(pol.nominal_state(t_nom))) > limit:
                    if self._hold_anchor is None:
                        self._hold_anchor = np.asarray(x, float).copy()
                    u = np.asarray(self.robot.hold_command(self._fallback_policy(reach), x, self._hold_anchor), float)
                    self.plan_deviation_ticks += 1
                    fallback = "state far from the MPC plan (reset or jump): holding in place until it re-plans"
                    if self._replan_for is not pol:
                        self._replan_for = pol
                        self._queue("replan", True)
                else:
                    self._hold_anchor = None
                    u = np.asarray(reach.mpc.control(t, x), float)
                    fallback = ""
            if hasattr(reach, "command"):
                u = np.asarray(reach.command(u, x), float)
            if u.shape != (self.robot.nu,) or not np.all(np.isfinite(u)):
                status = Status(True, ERROR, "policy output is not finite")
        if status is not None:
            u = np.asarray(self.robot.safe_command(x), float)
            self.safe_ticks += 1
            # No transition is sampled on a safe tick, but the episode's chain of transitions goes
            # on: the next sample's row spans the safe ticks (the plant's executed motion, whose
            # cost the critic's return must include). A fall ends the chain (recorder.fail above),
            # a reset or a new goal starts a new recorder. Cutting here split most episodes of the
            # node graph (a late state trips the 2-tick watchdog a few times a second on a loaded
            # machine), and every piece bootstrapped from the untrained critic.
        else:
            problem = fallback or self.solver_problem or self.last_policy_problem
            level = ERROR if fallback and self.worker_problem else WARN if problem else OK
            status = Status(False, level, problem or "OK")
        lim = self.robot.effort_limits
        if np.any(np.abs(u) > lim):
            u = np.clip(u, -lim, lim)
            self.saturations += 1
        if not status.safe and self.recorder is not None:
            self._record(t, x, u, reach)
        return u, status

    def _fallback_policy(self, reach):
        """The robot's fallback policy for the current MPC instance and goal (built once each)."""
        key = (id(reach), tuple(np.round(reach.goal, 12)))
        if self._fallback is None or self._fallback[0] != key:
            self._fallback = (key, self.robot.fallback_policy(reach, 0.0))
        return self._fallback[1]

    def _new_recorder(self, reach) -> TransitionRecorder:
        """A recorder for a new episode; with the termination cost of the reach problem when it
        has one (the Deep Value MPC actor, ``ReachMpc.terminal_cost``)."""
        return TransitionRecorder(reach.settings.mpc.dt, self.episode_length,
                                  terminal=bool(getattr(reach, "ends_with_terminal_cost", False)))

    def _record(self, t, x, u, reach) -> None:
        row = self.recorder.sample(t - self.t0, x, u, reach.goal, reach.stage_cost)
        if row is not None:
            self._emit([row])

    def _emit(self, rows: list) -> None:
        with self._rows_lock:
            self._rows.extend(rows)
            if len(self._rows) >= self.settings.transitions_batch:
                self._batches.append(self._rows)
                self._rows = []

    def take_transitions(self) -> List[list]:
        """Complete batches of transition rows since the last call (for the wire format in
        :mod:`dmpc_core.control.transitions`)."""
        with self._rows_lock:
            out, self._batches = self._batches, []
        return out
