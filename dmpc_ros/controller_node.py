"""MPC controller node: SLQ or MPPI re-planning in a worker thread, 400 Hz policy tracking, critic hot-swap.

``reach.mpc.solver`` (read-only parameter, from the config YAML) selects the solver: ``slq``
(default, ``dmpc_core.mpc.MpcController``) or ``mppi`` (``dmpc_core.mpc.MppiMpcController``,
settings ``reach.mpc.mppi.*``; Ballbot only). An unknown name is an error at startup.

``robot`` (read-only parameter) selects the task: ``ballbot`` (goal (x, y) of the base,
``dmpc_core.control.reach_mpc.ReachMpc``, critics and transitions for the learner) or ``panda``
(Franka Panda, goal = TCP position (x, y, z), ``dmpc_core.control.panda_reach.PandaReachMpc``; no
critic and no transitions: the learner is not wired for the Franka).

Subscriptions: ``joint_states`` (sensor_msgs/JointState), ``goal_pose`` (geometry_msgs/PoseStamped),
``clicked_point`` (geometry_msgs/PointStamped), ``target_path`` (nav_msgs/Path: Ballbot: followed
as a time-parameterised reference, parameter ``path_speed``; Panda: its last pose is the goal), ``time_budget`` (std_msgs/Float64: episode length [s] for the next goal),
``critic_bundle`` (std_msgs/UInt8MultiArray, reliable + transient local); Panda only:
``target_trajectory`` (trajectory_msgs/JointTrajectory: its last point is a joint-space goal).
Publications: ``commands`` (Float64MultiArray, one torque per wheel / joint, RELIABLE),
``~/command_info`` (Float64MultiArray labelled
``seq,slot,stamp,state_stamp,safe,critic_version,state_ticks,state_age,u0..``),
``~/planned_path`` (nav_msgs/Path), ``~/markers`` (visualization_msgs/MarkerArray),
``transitions`` (labelled Float64MultiArray, see dmpc_ros.glue; Ballbot only), ``/diagnostics``.
Services: ``~/reload_critic`` (Trigger: re-read ``critic_uri``), ``~/rollback_critic`` (Trigger).
All algorithmic work is in dmpc_core (ReachMpc / PandaReachMpc, TransitionRecorder, critic gate).
"""
from __future__ import annotations

import queue
import sys
import threading
import time
from collections import deque
from concurrent.futures import Future
from typing import Optional

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import Point, PointStamped, PoseStamped
from nav_msgs.msg import Path
from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64, Float64MultiArray, UInt8MultiArray
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory
from visualization_msgs.msg import Marker, MarkerArray

from dmpc_core.critics.gate import CriticRejected, CriticStore, GateSettings, ProbeSet, validate_candidate
from dmpc_core.control import panda_reach
from dmpc_core.control.reach_mpc import NG, ReachMpc, ReachSettings, TransitionRecorder, check_goal
from dmpc_core.critics.signing import read_key
from dmpc_core.models import panda as panda_model
from dmpc_core.settings import ConfigError
from dmpc_core.tasks import ballbot
from dmpc_ros.glue import run_node
from dmpc_ros.glue import (QOS_CRITIC, QOS_LATEST, QOS_RELIABLE, QOS_TRANSITIONS, StreamReader, VectorPublisher,
                           declare_settings, joint_state_to_x, read_settings, configure_thread,
                           stamp_to_float, transitions_msg)

INFO_FIELDS = "seq,slot,stamp,state_stamp,safe,critic_version,state_ticks,state_age"
INFO_LABEL = INFO_FIELDS + ",u0,u1,u2"  # Ballbot; the Panda's has u0..u6
RO = ParameterDescriptor(read_only=True)
#: probe box of the safety gate: |px|,|py| <= 3 m, yaw 1 rad, tilt 0.3 rad, rates
PROBE_STATE_SCALE = [3.0, 3.0, 1.0, 0.3, 0.3, 2.0, 2.0, 2.0, 2.0, 2.0]


class ControllerNode(Node):
    def __init__(self, **kwargs):
        super().__init__("ballbot_controller", **kwargs)
        self.robot = self.declare_parameter("robot", "ballbot", RO).value
        if self.robot not in ("ballbot", "panda"):
            raise ValueError(f"controller_node: robot {self.robot!r} is not supported (ballbot, panda)")
        self.is_panda = self.robot == "panda"
        self.settings_cls = panda_reach.PandaReachSettings if self.is_panda else ReachSettings
        self.reach_cls = panda_reach.PandaReachMpc if self.is_panda else ReachMpc
        declare_settings(self, "reach", self.settings_cls())
        declare_settings(self, "gate", GateSettings())
        if self.is_panda:
            self.joint_names = tuple(self.declare_parameter("joint_names", list(panda_model.JOINT_NAMES), RO).value)
            if len(self.joint_names) != panda_reach.NQ:
                raise ValueError(f"joint_names must list {panda_reach.NQ} joints (got {list(self.joint_names)})")
            self.nu, self.ng, self.cmd_label = panda_reach.NU, panda_reach.NG, "joint_torque"
        else:
            self.joint_names, self.nu, self.ng, self.cmd_label = ballbot.JOINT_NAMES, ballbot.NU, NG, "wheel_torque"
        self.info_label = INFO_FIELDS + "".join(f",u{i}" for i in range(self.nu))
        self.watchdog_ticks = self.declare_parameter("watchdog_ticks", 2, RO).value
        # "timer": ticks on the node's own 1/tracking_rate schedule; "state": a tick runs in the
        # state callback as soon as a valid state arrives (sensor-synchronous, like a ros2_control
        # read-update-write cycle: no wait for the next slot), and the tracking thread only fills
        # in ticks while no valid state came for 1.5 periods (so the watchdog still fires on time).
        self.trigger = self.declare_parameter("tracking_trigger", "timer", RO).value
        if self.trigger not in ("timer", "state"):
            raise ValueError(f"tracking_trigger must be 'timer' or 'state', got {self.trigger!r}")
        # CPython hands the GIL to a waiting thread only every switch interval (5 ms by default),
        # so the 400 Hz tracking thread waking from its sleep waited up to 5 ms behind the executor
        # thread; a short interval bounds that wait (process-wide: this node owns its process).
        switch = float(self.declare_parameter("gil_switch_interval", 0.0002, RO).value)
        if not 0.0 < switch <= 0.005:
            raise ValueError(f"gil_switch_interval must be in (0, 0.005] s, got {switch}")
        sys.setswitchinterval(switch)
        # SCHED_FIFO priority of the tracking thread and the state-reader thread (0 = normal
        # scheduler). As ros2_control: if the OS refuses, a warning and the normal scheduler.
        self.rt_priority = int(self.declare_parameter("realtime_priority", 50, RO).value)
        if not 0 <= self.rt_priority <= 99:
            raise ValueError(f"realtime_priority must be 0 (off) or 1..99, got {self.rt_priority}")
        # optional CPU pinning (-1: none), e.g. the MPC thread on one core and the tracking thread
        # on another so that the tracking thread's wake-ups never preempt the solver
        self.mpc_cpu = int(self.declare_parameter("mpc_cpu", -1, RO).value)
        self.tracking_cpu = int(self.declare_parameter("tracking_cpu", -1, RO).value)
        self.batch = self.declare_parameter("transitions_batch", 20, RO).value
        # Ballbot target_path: speed along the polyline when the poses carry no usable stamps
        self.path_speed = float(self.declare_parameter("path_speed", 0.5, RO).value)
        if not self.path_speed > 0:
            raise ValueError(f"path_speed must be > 0, got {self.path_speed}")
        path_rate = self.declare_parameter("path_rate", 10.0, RO).value
        diag_rate = self.declare_parameter("diagnostics_rate", 2.0, RO).value
        key_file = self.declare_parameter("critic_hmac_key_file", "", RO).value
        default_goal = [0.0, 0.0]
        if self.is_panda:  # the TCP at Franka's ready pose
            default_goal = [float(v) for v in _core_panda().frame_position(panda_model.Q_READY)]
        goal0 = list(self.declare_parameter("initial_goal", default_goal, RO).value)
        self.declare_parameter("critic_uri", "")
        self.settings = read_settings(self, "reach", self.settings_cls)
        self.gate: GateSettings = read_settings(self, "gate", GateSettings)
        self.key = read_key(key_file) if key_file else None
        self.add_on_set_parameters_callback(self.on_set_parameters)

        s = self.settings
        self.solver_name = s.mpc.solver  # "slq" or "mppi" (validated by the settings)
        self.period = 1.0 / s.mpc.tracking_rate
        self.probes = None if self.is_panda else ProbeSet.uniform(
            PROBE_STATE_SCALE, [s.arena_half_width] * NG, s.episode_length + s.mpc.horizon * s.mpc.dt,
            self.gate.num_probes, self.gate.seed)
        self.store = CriticStore()
        reason = self.goal_problem(goal0)
        if reason:
            raise ValueError(f"initial_goal: {reason}")
        self.reach = self.reach_cls(s, goal0)
        self.recorder = None if self.is_panda else TransitionRecorder(s.mpc.dt, s.episode_length)
        self.rows = []
        # shared state (written by callbacks, read by the tracking tick and MPC thread)
        self.x: Optional[np.ndarray] = None
        self.x_valid: Optional[np.ndarray] = None  # last valid state, kept when later ones are rejected
        self.x_stamp = 0.0
        self.x_time = -1e9
        self.ticks_since_state = 10**9  # tracking ticks since the last valid state (watchdog)
        self.state_error = ""
        self.goal = np.asarray(goal0, float)
        self.t0 = time.monotonic()
        self.pending_goal = None
        self.pending_joint_goal = None
        self.pending_path = None   # Ballbot target_path: (times from 0, X_ref) of path_reference
        self.path_ref = None       # (times, X_ref) of the path being followed, or None
        self.pending_reach: Optional[ReachMpc] = None
        self.episode_length = s.episode_length
        self.status_msg = "waiting for state"
        self.reject_reason = ""
        self.rejected = 0
        self.seq = 0
        self.tick_times = deque(maxlen=400)
        self.mpc_times = deque(maxlen=100)
        self.solve_times = deque(maxlen=100)
        self.start_time = time.monotonic()
        self.lock = threading.Lock()
        self.tick_lock = threading.Lock()  # one tick at a time (state-triggered and filler ticks)
        self.last_state_tick = -1e9  # time of the last state-triggered tick
        self._last_log: dict = {}
        self.deferred: deque = deque(maxlen=4)  # (publisher, message), see defer_publish
        self.defer_margin = 0.4  # periods of slack a deferred publish needs before the next tick
        self.tracking_scheduler = "not started"

        # separate groups: a slow service (critic validation) never blocks goals and timers
        io, svc = (MutuallyExclusiveCallbackGroup() for _ in range(2))
        # tick-rate publishers reuse one message each (layout built once)
        self.cmd_pub = VectorPublisher(self, "commands", QOS_RELIABLE, self.cmd_label, self.nu)
        self.info_pub = VectorPublisher(self, "~/command_info", QOS_TRANSITIONS, self.info_label,
                                        len(self.info_label.split(",")))
        self.path_pub = self.create_publisher(Path, "~/planned_path", 10)
        self.marker_pub = self.create_publisher(MarkerArray, "~/markers", 10)
        self.trans_pub = self.create_publisher(Float64MultiArray, "transitions", QOS_TRANSITIONS)
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        # The 400 Hz state stream is served by its own thread (StreamReader), not by the
        # executor: dispatching it through rclpy's executor was the process's largest GIL consumer.
        self.state_reader = StreamReader(self, JointState, self.resolve_topic_name("joint_states"), QOS_LATEST,
                                         self.on_state, f"{self.get_name()}_state_io",
                                         realtime_priority=self.rt_priority)
        self.create_subscription(PoseStamped, "goal_pose", lambda m: self.on_goal(self.point_goal(m.pose.position), "goal_pose"), 10, callback_group=io)
        self.create_subscription(PointStamped, "clicked_point", lambda m: self.on_goal(self.point_goal(m.point), "clicked_point"), 10, callback_group=io)
        if self.is_panda:
            self.create_subscription(JointTrajectory, "target_trajectory", self.on_trajectory, 10, callback_group=io)
        self.create_subscription(Path, "target_path", self.on_path, 10, callback_group=io)
        self.create_subscription(Float64, "time_budget", self.on_time_budget, 10, callback_group=io)
        self.create_subscription(UInt8MultiArray, "critic_bundle", self.on_critic_msg, QOS_CRITIC, callback_group=io)
        self.create_service(Trigger, "~/reload_critic", self.on_reload, callback_group=svc)
        self.create_service(Trigger, "~/rollback_critic", self.on_rollback, callback_group=svc)
        self.create_timer(1.0 / path_rate, self.publish_path, callback_group=io)
        self.create_timer(1.0 / diag_rate, self.publish_diagnostics, callback_group=io)

        self.jobs: "queue.Queue" = queue.Queue()
        self.running = True
        self.slot = 0
        self.tick_thread = threading.Thread(target=self.tick_loop, name="tracking", daemon=True)
        self.mpc_thread = threading.Thread(target=self.mpc_loop, name="mpc", daemon=True)
        self.critic_thread = threading.Thread(target=self.critic_loop, name="critic", daemon=True)
        self.mpc_thread.start()
        self.critic_thread.start()
        self.tick_thread.start()
        self.state_reader.start()
        uri = self.get_parameter("critic_uri").value
        if uri:
            self.submit(("file", uri))
        self.get_logger().info(f"{self.robot} controller: {self.solver_name.upper()} N={s.mpc.horizon} dt={s.mpc.dt} at {s.mpc.mpc_rate} Hz, "
                               f"tracking {s.mpc.tracking_rate} Hz, HMAC {'on' if self.key else 'off'}")

    # -- parameters ------------------------------------------------------------------------------
    def on_set_parameters(self, params) -> SetParametersResult:
        changes = {p.name: p.value for p in params}
        try:
            read_settings(self, "reach", self.settings_cls, changes)
            read_settings(self, "gate", GateSettings, changes)
        except ConfigError as e:
            return SetParametersResult(successful=False, reason=str(e))
        for p in params:
            if p.name == "critic_uri":
                if not isinstance(p.value, str):
                    return SetParametersResult(successful=False, reason="critic_uri must be a string (file path)")
                if p.value:
                    self.submit(("file", p.value))
        return SetParametersResult(successful=True)

    # -- inputs ----------------------------------------------------------------------------------
    def point_goal(self, p) -> tuple:
        """Goal from a geometry_msgs Point: (x, y) for the Ballbot, the TCP (x, y, z) for the Panda."""
        return (p.x, p.y, p.z) if self.is_panda else (p.x, p.y)

    def goal_problem(self, goal) -> Optional[str]:
        if self.is_panda:
            return panda_reach.check_goal(goal, self.settings)
        return check_goal(goal, self.settings.arena_half_width)

    def on_state(self, msg: JointState) -> None:
        x, reason = joint_state_to_x(msg, self.joint_names)
        with self.lock:
            if x is None:
                self.x = None
                if reason != self.state_error:
                    self.get_logger().error(f"rejected state: {reason}; sending the safe command")
                self.state_error = reason
                self.status_msg = f"ERROR: {reason}"
            else:
                self.x, self.x_stamp, self.x_time = x, stamp_to_float(msg.header.stamp), time.monotonic()
                self.x_valid = x
                self.ticks_since_state = 0
                self.state_error = ""
        if x is None:
            self.publish_diagnostics()
        elif self.trigger == "state":
            self.last_state_tick = time.monotonic()
            self.run_tick()
            self.flush_deferred(self.last_state_tick + self.period)

    def on_goal(self, xy, source: str) -> None:
        reason = self.goal_problem(xy)
        if reason:
            self.get_logger().warn(f"rejected goal from {source}: {reason}")
            self.status_msg = f"rejected goal: {reason}"
            return
        with self.lock:
            self.pending_goal = np.asarray(xy, float)
            self.pending_joint_goal = self.pending_path = None
        self.get_logger().info(f"new goal ({', '.join(f'{v:.3f}' for v in xy)}) from {source}")

    def on_path(self, msg: Path) -> None:
        """Ballbot: follow the path (dmpc_core.tasks.ballbot.path_reference: the poses' stamps
        when they are all set and increasing, else ``path_speed`` along the polyline; tracking
        term on r(t), terminal term on r(t + H), goal = last pose). Panda: the last pose is the
        TCP goal."""
        if not msg.poses:
            self.get_logger().warn("rejected target_path: no poses")
            self.status_msg = "rejected goal: target_path has no poses"
            return
        if self.is_panda:
            self.on_goal(self.point_goal(msg.poses[-1].pose.position), "target_path")
            return
        pts = np.array([[p.pose.position.x, p.pose.position.y] for p in msg.poses], float)
        stamps = np.array([stamp_to_float(p.header.stamp) for p in msg.poses], float)
        if not (np.all(stamps > 0) and np.all(np.diff(stamps) > 0)):
            stamps = None  # unstamped path (the usual nav_msgs/Path): constant speed
        reason = next((r for r in (check_goal(p, self.settings.arena_half_width) for p in pts) if r), None)
        if reason is None:
            try:  # knot times from 0; the MPC thread shifts them to the time it takes the path
                ref = ballbot.path_reference(pts, 0.0, stamps, self.path_speed)
            except ValueError as e:
                reason = str(e)
        if reason:
            self.get_logger().warn(f"rejected target_path: {reason}")
            self.status_msg = f"rejected goal: {reason}"
            return
        with self.lock:
            self.pending_path = ref
            self.pending_goal = self.pending_joint_goal = None
        self.get_logger().info(f"new target_path of {len(pts)} poses to ({pts[-1, 0]:.3f}, {pts[-1, 1]:.3f})")

    def on_trajectory(self, msg: JointTrajectory) -> None:
        """Panda: the last point of a JointTrajectory (joints named as ``joint_names``, any order)
        is a joint-space goal: posture q and TCP goal p(q)."""
        reason = ""
        if not msg.points:
            reason = "no points"
        elif sorted(msg.joint_names) != sorted(self.joint_names) or len(msg.points[-1].positions) != len(msg.joint_names):
            reason = f"joints {list(msg.joint_names)} with {len(msg.points[-1].positions)} positions do not match {list(self.joint_names)}"
        if not reason:
            index = {n: i for i, n in enumerate(msg.joint_names)}
            q = np.asarray([msg.points[-1].positions[index[n]] for n in self.joint_names], float)
            reason = panda_reach.check_joint_goal(q, self.reach.model) or ""
        if reason:
            self.get_logger().warn(f"rejected goal from target_trajectory: {reason}")
            self.status_msg = f"rejected goal: {reason}"
            return
        with self.lock:
            self.pending_joint_goal = q
            self.pending_goal = None
        self.get_logger().info(f"new joint goal {np.round(q, 3).tolist()} from target_trajectory")

    def on_time_budget(self, msg: Float64) -> None:
        if not (np.isfinite(msg.data) and msg.data > 0):
            self.get_logger().warn(f"rejected time_budget {msg.data}")
            return
        self.episode_length = float(msg.data)

    # -- MPC thread ------------------------------------------------------------------------------
    def mpc_loop(self) -> None:
        configure_thread(self.get_logger(), "MPC thread", cpu=self.mpc_cpu)
        period = 1.0 / self.settings.mpc.mpc_rate
        while self.running:
            start = time.monotonic()
            with self.lock:
                x = self.x
                fresh = self.ticks_since_state <= self.watchdog_ticks or start - self.x_time <= self.watchdog_ticks * self.period
                goal, new_reach = self.pending_goal, self.pending_reach
                joint_goal, path = self.pending_joint_goal, self.pending_path
                self.pending_goal = self.pending_reach = self.pending_joint_goal = self.pending_path = None
            t = start - self.start_time  # continuous MPC clock
            if new_reach is not None:
                if self.path_ref is not None:
                    new_reach.set_path(*self.path_ref)
                else:
                    new_reach.set_goal(self.goal)
                new_reach.set_episode(self.t0 - self.start_time, self.reach.episode_length)
                new_reach.warm_start_from(self.reach)
                self.reach = new_reach  # atomic reference swap: the next tick uses it
            if joint_goal is not None:  # Panda: posture + TCP goal p(q)
                goal = self.reach.set_joint_goal(joint_goal)
            if path is not None:  # Ballbot: the path starts now on the MPC clock
                self.path_ref = (path[0] + t, path[1])
                self.reach.set_path(*self.path_ref)
                self.goal = self.reach.goal
            if goal is not None or path is not None or t - (self.t0 - self.start_time) > self.reach.episode_length:
                # new goal or path, or the episode timed out (same goal, new episode)
                if goal is not None:
                    self.goal = goal
                    self.path_ref = None
                    self.reach.set_goal(goal)
                self.t0 = start
                self.reach.set_episode(t, self.episode_length)
                if self.recorder is not None:
                    self.recorder = TransitionRecorder(self.settings.mpc.dt, self.episode_length)
            if x is not None and fresh:
                res = self.reach.update(t, x)
                self.solve_times.append(res.solve_time)
                self.mpc_times.append(time.monotonic())
                if not self.reach.mpc.is_ok(res):
                    self.status_msg = f"{self.solver_name.upper()} status {res.status} (previous policy kept)"
            delay = start + period - time.monotonic()
            # Behind schedule (solve longer than the period): straight into the next solve. The
            # solve runs without the GIL, and a thread waiting for the GIL gets it within the switch
            # interval, so no pause is needed for the tracking thread (a 0.1 ms pause here cost
            # 20-40 % of the in-node MPC rate in paired runs, docs/benchmarks.md 0c).
            if delay > 0:
                time.sleep(delay)

    # -- tracking loop (400 Hz) --------------------------------------------------------------------
    def tick_loop(self) -> None:
        """Dedicated thread on an absolute schedule (slot k at start + k / tracking_rate): cheaper and
        steadier than an executor timer. A tick later than one period skips to the next slot (the
        skipped slots show as gaps in the published ``slot`` counter)."""
        self.tracking_scheduler = configure_thread(self.get_logger(), "tracking thread", self.rt_priority,
                                                   self.tracking_cpu)
        slot = 0
        while self.running and rclpy.ok():
            self.slot = slot
            # state-triggered mode: fill in ticks only while no state came for 1.5 periods
            ticked = self.trigger == "timer" or time.monotonic() - self.last_state_tick > 1.5 * self.period
            if ticked:
                self.run_tick()
            slot += 1
            now = time.monotonic()
            due = self.start_time + slot * self.period
            if now > due + self.period:
                slot = int((now - self.start_time) / self.period) + 1
                due = self.start_time + slot * self.period
            if ticked:
                self.flush_deferred(due)
                now = time.monotonic()
            time.sleep(max(0.0, due - now))

    def defer_publish(self, publisher, msg) -> None:
        """Queue a large, low-rate message (planned path, markers) for the tracking thread.
        Converting a message to its C form holds the GIL for the whole message (~1 ms for the
        100-pose Path on this machine); published from another thread it could land just
        before a tick and delay it. The tracking thread publishes it right after a tick instead
        (flush_deferred), in the slack before the next one. At most 4 wait (oldest dropped:
        they are visualisation snapshots, the next one supersedes them)."""
        self.deferred.append((publisher, msg))

    def flush_deferred(self, next_tick: float) -> None:
        """Publish queued messages while at least ``defer_margin`` periods remain before
        ``next_tick`` (tracking thread only; the rest waits for the next tick)."""
        while self.deferred and next_tick - time.monotonic() > self.defer_margin * self.period:
            try:
                publisher, msg = self.deferred.popleft()
            except IndexError:
                return
            publisher.publish(msg)

    def run_tick(self) -> None:
        with self.tick_lock:
            try:
                self.tick()
            except Exception as e:  # never let the control loop die silently
                self.log_throttled("error", f"tracking tick failed: {e!r}")

    def tick(self) -> None:
        now = time.monotonic()
        with self.lock:
            x, x_time, x_stamp, err = self.x, self.x_time, self.x_stamp, self.state_error
            x_valid = self.x_valid
            self.ticks_since_state += 1
            ticks_since = self.ticks_since_state
        # Watchdog: stale when more than watchdog_ticks ticks ran without a new valid state AND
        # the state is older than watchdog_ticks tracking periods. On schedule both hold at the
        # same tick (the safe command within watchdog_ticks ticks); the age condition keeps ticks
        # that bunch up after a late wake-up (several ticks within a fraction of a period, before
        # the state callback got the GIL) from tripping it on a fresh state.
        age = now - x_time
        # In state-triggered mode every tick within a period of a state is that state's own tick,
        # so the age alone decides (the filler ticks cannot bunch).
        stale = (ticks_since > self.watchdog_ticks or self.trigger == "state") and age > self.watchdog_ticks * self.period
        reach, t0 = self.reach, self.t0
        safe = 1.0
        # safe command: Ballbot zeros; Panda gravity compensation at the last valid state
        u = reach.safe_command(x_valid) if self.is_panda else np.zeros(self.nu)
        if err:
            self.status_msg = f"ERROR: {err}"
        elif x is None:
            self.status_msg = "waiting for state"
        elif stale:
            self.status_msg = (f"ERROR: no state for {ticks_since - 1} ticks ({1e3 * age:.1f} ms; "
                               f"watchdog {self.watchdog_ticks} ticks)")
        elif reach.mpc.policy is None:
            self.status_msg = "waiting for the first MPC solve"
        else:
            u_mpc = reach.mpc.control(now - self.start_time, x)
            if self.is_panda:
                u_mpc = reach.command(u_mpc, x)
            if np.all(np.isfinite(u_mpc)):
                u = u_mpc
                safe = 0.0
                if self.status_msg.startswith(("ERROR", "waiting")):
                    self.status_msg = "OK"
        if safe and self.status_msg.startswith("ERROR"):
            self.log_throttled("warn", f"safe command: {self.status_msg}")
        self.cmd_pub.publish(u)
        self.seq += 1
        slot = self.slot
        # the version of the critic in the policy that computed this command (0: none)
        self.info_pub.publish([self.seq, slot, time.time(), x_stamp, safe, getattr(reach, "critic_version", 0),
                               min(ticks_since, 10**6), min(age, 1e6), *u])
        self.tick_times.append(now)
        if self.recorder is None:
            pass
        elif safe == 0.0:
            row = self.recorder.sample(now - t0, x, u, reach.goal, reach.stage_cost)
            if row is not None:
                self.rows.append(row)
                if len(self.rows) >= self.batch:
                    self.trans_pub.publish(transitions_msg(self.rows, ballbot.NX, NG))
                    self.rows = []
        else:
            self.recorder.cut()

    # -- critics ---------------------------------------------------------------------------------
    def submit(self, job) -> Future:
        fut: Future = Future()
        self.jobs.put((job, fut))
        return fut

    def on_critic_msg(self, msg: UInt8MultiArray) -> None:
        self.submit(("bytes", bytes(msg.data)))

    def on_reload(self, _req, resp):
        uri = self.get_parameter("critic_uri").value
        if not uri:
            resp.success, resp.message = False, "critic_uri is empty"
            return resp
        ok, resp.message = self.submit(("file", uri)).result(timeout=30.0)
        resp.success = ok
        return resp

    def on_rollback(self, _req, resp):
        ok, resp.message = self.submit(("rollback", None)).result(timeout=30.0)
        resp.success = ok
        return resp

    def critic_loop(self) -> None:
        """Validate candidates and build the next ReachMpc off the control path."""
        while self.running:
            try:
                (kind, arg), fut = self.jobs.get(timeout=0.2)
            except queue.Empty:
                continue
            try:
                if kind == "rollback":
                    cand = self.store.rollback()
                    if cand is None:
                        fut.set_result((False, "no previous critic to roll back to"))
                        continue
                    cand.critic = cand.bundle.to_native()
                else:
                    source = arg if kind == "file" else "topic"
                    if kind == "file":
                        try:
                            with open(arg, "rb") as f:
                                blob = f.read()
                        except OSError as e:
                            raise CriticRejected(f"cannot read {arg}: {e}") from e
                    else:
                        blob = arg
                    if self.is_panda:
                        raise CriticRejected("no critic is wired for the Franka Panda (the learner supports the Ballbot)")
                    cand = validate_candidate(blob, self.key, ballbot.NX, NG, self.probes, self.gate, source)
                new = ReachMpc(self.settings, self.goal, critic=cand.critic, critic_version=cand.version)
                if kind != "rollback":
                    self.store.install(cand)
                with self.lock:
                    self.pending_reach = new
                msg = f"critic v{cand.version} from {cand.source} active (max |V| on probes {cand.max_abs_probe_value:.3g})"
                self.get_logger().info(msg)
                fut.set_result((True, msg))
            except (CriticRejected, ValueError) as e:
                self.rejected += 1
                self.reject_reason = str(e)
                self.get_logger().error(f"rejected critic: {e} (keeping v{self.store.active.version if self.store.active else 0})")
                self.publish_diagnostics()
                fut.set_result((False, f"rejected: {e}"))

    # -- outputs ---------------------------------------------------------------------------------
    def publish_path(self) -> None:
        pol = self.reach.mpc.policy
        if pol is None:
            return
        xs = np.asarray(pol.x_nom)
        # display points: the base (px, py, 0) of the Ballbot, the TCP of the Panda
        pts = self.reach.tcp_path(xs) if self.is_panda else np.column_stack([xs[:, 0], xs[:, 1], np.zeros(len(xs))])
        stamp = self.get_clock().now().to_msg()
        path = Path()
        path.header.frame_id, path.header.stamp = "world", stamp
        for x in pts:
            ps = PoseStamped()
            ps.header = path.header
            ps.pose.position.x, ps.pose.position.y, ps.pose.position.z = float(x[0]), float(x[1]), float(x[2])
            ps.pose.orientation.w = 1.0
            path.poses.append(ps)
        self.defer_publish(self.path_pub, path)
        line = Marker(type=Marker.LINE_STRIP, action=Marker.ADD, ns="plan", id=0)
        line.header = path.header
        line.scale.x = 0.02
        line.color.g, line.color.a = 1.0, 1.0
        line.pose.orientation.w = 1.0
        line.points = [Point(x=float(x[0]), y=float(x[1]), z=float(x[2])) for x in pts]
        goal = Marker(type=Marker.SPHERE, action=Marker.ADD, ns="goal", id=1)
        goal.header = path.header
        goal.pose.position.x, goal.pose.position.y = float(self.goal[0]), float(self.goal[1])
        goal.pose.position.z = float(self.goal[2]) if len(self.goal) > 2 else 0.0
        goal.pose.orientation.w = 1.0
        goal.scale.x = goal.scale.y = goal.scale.z = 0.1
        goal.color.r, goal.color.a = 1.0, 1.0
        self.defer_publish(self.marker_pub, MarkerArray(markers=[line, goal]))

    @staticmethod
    def _rate(times) -> float:
        return (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else 0.0

    def publish_diagnostics(self) -> None:
        active = self.store.active
        st = DiagnosticStatus(name=f"dmpc/{self.get_name()}", hardware_id=self.robot)
        msg = self.status_msg
        if msg.startswith("ERROR"):
            st.level = DiagnosticStatus.ERROR
        elif msg == "OK":
            st.level = DiagnosticStatus.OK
        else:
            st.level = DiagnosticStatus.WARN
        st.message = msg
        vals = {
            "solve_time_ms": f"{1e3 * np.median(self.solve_times):.3f}" if self.solve_times else "nan",
            "solver": self.solver_name,
            "mpc_rate_hz": f"{self._rate(list(self.mpc_times)):.1f}",
            "tracking_rate_hz": f"{self._rate(list(self.tick_times)):.1f}",
            # in use by the control loop (swapped between two ticks after validation);
            # installed = validated and queued (they differ for up to one MPC period)
            "critic_version": str(getattr(self.reach, "critic_version", 0)),
            "critic_version_installed": str(active.version if active else 0),
            "episode_length": f"{self.episode_length:.3f}",
            "following_path": str(self.path_ref is not None).lower(),
            "critic_source": active.source if active else "",
            "critic_swaps": str(self.store.swaps),
            "critics_rejected": str(self.rejected),
            "last_reject_reason": self.reject_reason,
            "seq": str(self.seq),
            "tracking_scheduler": self.tracking_scheduler,
            "goal": ",".join(f"{v:.3f}" for v in self.goal),
        }
        st.values = [KeyValue(key=k, value=v) for k, v in vals.items()]
        arr = DiagnosticArray(status=[st])
        arr.header.stamp = self.get_clock().now().to_msg()
        self.diag_pub.publish(arr)

    def log_throttled(self, level: str, text: str, period: float = 1.0) -> None:
        """At most one line per ``period`` per level. Checked before calling the rclpy logger,
        whose own ``throttle_duration_sec`` is evaluated after it has inspected the caller's
        frame (file-system calls included): too slow for every safe tick at 400 Hz."""
        now = time.monotonic()
        if now - self._last_log.get(level, -1e9) >= period:
            self._last_log[level] = now
            getattr(self.get_logger(), level)(text)

    def destroy_node(self):
        self.running = False
        self.state_reader.stop()
        self.tick_thread.join(timeout=2.0)
        self.mpc_thread.join(timeout=2.0)
        self.critic_thread.join(timeout=2.0)
        # last command: the safe one (Ballbot zeros, Panda gravity compensation)
        u = self.reach.safe_command(self.x_valid) if self.is_panda else np.zeros(self.nu)
        self.cmd_pub.publish(u)
        return super().destroy_node()


def _core_panda():
    from dmpc_core import _core

    return _core.PandaDynamics(str(panda_model.default_urdf_path()))


def main(args=None) -> int:
    return run_node(ControllerNode, threads=3, args=args)


if __name__ == "__main__":
    raise SystemExit(main())
