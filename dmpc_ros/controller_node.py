"""MPC controller node (lifecycle): translates messages for :class:`dmpc_core.control.core.ControllerCore`.

Lifecycle: configure builds the robot, the controller core and the critic worker; activate
starts the MPC loop and the tracking loop; deactivate stops them and sends the safe command.
With ``autostart`` (default) the node configures and activates itself. The first command goes
out once the first MPC policy exists (the simulator holds the robot until then).

Subscriptions: ``joint_states`` (sensor_msgs/JointState, own reader thread), ``goal_pose``
(geometry_msgs/PoseStamped), ``clicked_point`` (PointStamped), ``target_path`` (nav_msgs/Path,
read from its serialised form with a size cap), ``time_budget`` (std_msgs/Float64),
``critic_bundle`` (UInt8MultiArray); Panda: ``target_trajectory`` (trajectory_msgs/JointTrajectory).
Publications: ``commands`` (Float64MultiArray, one torque per joint), ``~/command_info``,
``~/policy`` (the latest affine policy, layout in dmpc_core.control.policy_wire),
``~/planned_path``, ``~/markers``, ``transitions`` (Ballbot), ``/diagnostics``.
Services (std_srvs/Trigger): ``~/reload_critic``, ``~/rollback_critic``, ``~/reset`` (clears a
latched fallen / out-of-envelope fault once the state is back inside). docs/ros.md has the types,
units and QoS of everything.
"""
from __future__ import annotations

import sys
import threading
import time
from collections import deque

import numpy as np
from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn
from geometry_msgs.msg import PointStamped, PoseStamped
from nav_msgs.msg import Path
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64, Float64MultiArray, UInt8MultiArray
from std_srvs.srv import Trigger
from diagnostic_msgs.msg import DiagnosticArray
from visualization_msgs.msg import MarkerArray

from dmpc_core.control.core import ControllerCore
from dmpc_core.control.mpc_worker import WorkerSpec
from dmpc_core.control.critic_source import CriticWorker
from dmpc_core.control.node_settings import ControllerNodeSettings
from dmpc_core.control.robot import make_robot
from dmpc_core.critics.gate import GateSettings, ProbeSet
from dmpc_core.critics.signing import read_key
from dmpc_core.settings import ConfigError
from dmpc_ros.messages import (PathTooLong, VectorPublisher, diagnostic_array, joint_state_to_x, parse_path,
                               plan_messages, policy_msg, stamp_to_float, transitions_msg)
from dmpc_ros.params import declare_fields, declare_settings, read_fields, read_settings
from dmpc_ros.qos import QOS_CRITIC, QOS_LATEST, QOS_RELIABLE, QOS_TRANSITIONS
from dmpc_ros.realtime import StreamReader, configure_thread
from dmpc_ros.runtime import run_node

INFO_FIELDS = "seq,slot,stamp,state_stamp,safe,critic_version,state_ticks,state_age"
#: probe box of the critic gate: |px|,|py| <= 3 m, yaw 1 rad, tilt 0.3 rad, rates
PROBE_STATE_SCALE = [3.0, 3.0, 1.0, 0.3, 0.3, 2.0, 2.0, 2.0, 2.0, 2.0]
DYNAMIC = ("critic_uri", "path_speed", "max_path_poses", "critic_wait")


def reach_settings_class(robot: str):
    if robot == "panda":
        from dmpc_core.control.panda_reach import PandaReachSettings
        return PandaReachSettings
    from dmpc_core.control.reach_mpc import ReachSettings
    return ReachSettings


class ControllerNode(LifecycleNode):
    def __init__(self, **kwargs):
        super().__init__("ballbot_controller", **kwargs)
        robot = self.declare_parameter("robot", "ballbot", ParameterDescriptor(read_only=True)).value
        declare_fields(self, ControllerNodeSettings(robot=robot), DYNAMIC, skip=("robot",))  # robot selects reach.*
        # read by dmpc_ros.runtime: configure and activate at start (else wait for lifecycle transitions)
        self.declare_parameter("autostart", True, ParameterDescriptor(read_only=True))
        self.reach_cls = reach_settings_class(robot)
        declare_settings(self, "reach", self.reach_cls())
        declare_settings(self, "gate", GateSettings())
        self.cfg: ControllerNodeSettings = read_fields(self, ControllerNodeSettings)
        self.reach_settings = read_settings(self, "reach", self.reach_cls)
        self.gate: GateSettings = read_settings(self, "gate", GateSettings)
        self.add_on_set_parameters_callback(self.on_set_parameters)
        sys.setswitchinterval(self.cfg.gil_switch_interval)
        self.core = self.worker = None
        self.running = self.publishing = False
        self.threads = []
        self.status = None
        self.seq = self.slot = 0
        self.tick_times, self.mpc_times = deque(maxlen=400), deque(maxlen=100)  # mpc_times: (time, solves)
        self.deferred: deque = deque(maxlen=4)
        self.tick_lock = threading.Lock()
        self.last_state_tick = -1e9
        self._last_log: dict = {}
        self.scheduler = "not started"

    # -- lifecycle -------------------------------------------------------------------------------
    def on_configure(self, state) -> TransitionCallbackReturn:
        c, s = self.cfg, self.reach_settings
        kw = {"u_max": c.u_max, "max_tilt_deg": c.max_tilt_deg} if c.robot == "ballbot" else {"joint_names": tuple(c.joint_names)}
        try:
            self.robot = make_robot(c.robot, s, **kw)
            if c.task != self.robot.task:
                raise ValueError(f"task {c.task!r} is not what the {c.robot} controller runs ({self.robot.task!r})")
            goal = c.initial_goal or (self.robot.ready_goal() if c.robot == "panda" else [0.0, 0.0])
            spec = WorkerSpec(c.robot, s, kw, cpu=c.mpc_cpu) if c.mpc_process else None
            self.core = ControllerCore(self.robot, c.core(s.mpc.tracking_rate, s.mpc.mpc_rate, s.episode_length), goal,
                                       worker=spec)
            self.core.start_worker()  # its imports and MPC build overlap the rest of the start-up
            key = read_key(c.critic_hmac_key_file) if c.critic_hmac_key_file else None
        except (ValueError, OSError) as e:
            self.get_logger().error(f"configure failed: {e}")
            return TransitionCallbackReturn.FAILURE
        self.period = 1.0 / s.mpc.tracking_rate
        probes = ProbeSet.uniform(PROBE_STATE_SCALE, [s.arena_half_width] * 2, s.episode_length + s.mpc.horizon * s.mpc.dt,
                                  self.gate.num_probes, self.gate.seed) if self.robot.supports_critic else None
        state_file = c.critic_state_file(self.get_name()) if self.robot.supports_critic else ""
        self.worker = CriticWorker(key, self.robot.name, self.robot.task, self.robot.nx, self.robot.ng, probes, self.gate,
                                   self.install_critic, self.on_critic_result, state_file).start()
        if self.worker.disabled:
            self.get_logger().error(self.worker.disabled)
        io, svc = MutuallyExclusiveCallbackGroup(), MutuallyExclusiveCallbackGroup()
        label = INFO_FIELDS + "".join(f",u{i}" for i in range(self.robot.nu))
        self.cmd_pub = VectorPublisher(self, "commands", QOS_RELIABLE, self.robot.command_label, self.robot.nu)
        self.info_pub = VectorPublisher(self, "~/command_info", QOS_TRANSITIONS, label, len(label.split(",")))
        self.path_pub = self.create_publisher(Path, "~/planned_path", 10)
        self.marker_pub = self.create_publisher(MarkerArray, "~/markers", 10)
        self.trans_pub = self.create_publisher(Float64MultiArray, "transitions", QOS_TRANSITIONS)
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        # the latest affine policy (u_ff, K, x_nom) for an external tracking loop, after each solve
        self.policy_pub = self.create_publisher(Float64MultiArray, "~/policy", QOS_LATEST)
        self.core.policy_listeners.append(lambda pol: self.policy_pub.publish(policy_msg(pol)))
        self.state_topic = self.resolve_topic_name("joint_states")
        self.state_reader = StreamReader(self, JointState, self.state_topic, QOS_LATEST, self.on_state,
                                         f"{self.get_name()}_state_io", realtime_priority=c.realtime_priority).start()
        sub = self.create_subscription
        sub(PoseStamped, "goal_pose", lambda m: self.on_goal(m.pose.position, m.header.frame_id, "goal_pose"), 10, callback_group=io)
        sub(PointStamped, "clicked_point", lambda m: self.on_goal(m.point, m.header.frame_id, "clicked_point"), 10, callback_group=io)
        sub(Path, "target_path", self.on_path, 10, callback_group=io, raw=True)
        sub(Float64, "time_budget", lambda m: self.refused("time_budget", self.core.request_time_budget(m.data)), 10, callback_group=io)
        sub(UInt8MultiArray, "critic_bundle", lambda m: self.worker.submit("bytes", bytes(m.data)), QOS_CRITIC, callback_group=io)
        if c.robot == "panda":
            from trajectory_msgs.msg import JointTrajectory
            sub(JointTrajectory, "target_trajectory", self.on_trajectory, 10, callback_group=io)
        self.create_service(Trigger, "~/reload_critic", self.on_reload, callback_group=svc)
        self.create_service(Trigger, "~/rollback_critic", lambda q, r: self.answer(r, *self.worker.request("rollback", None, self.cfg.critic_wait)), callback_group=svc)
        self.create_service(Trigger, "~/reset", lambda q, r: self.answer(r, *self.reset()), callback_group=svc)
        self.create_timer(1.0 / c.path_rate, self.publish_plan, callback_group=io)
        self.create_timer(1.0 / c.diagnostics_rate, self.publish_diagnostics, callback_group=io)
        if c.critic_uri:
            self.worker.submit("file", c.critic_uri)
        self.get_logger().info(f"{c.robot} controller configured: {s.mpc.solver.upper()} N={s.mpc.horizon} dt={s.mpc.dt} "
                               f"at {s.mpc.mpc_rate} Hz ({'worker process' if c.mpc_process else 'MPC thread'}), "
                               f"tracking {s.mpc.tracking_rate} Hz, HMAC {'on' if key else 'off'}, "
                               f"critic versions {'in ' + state_file if state_file else 'in memory only'}")
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state) -> TransitionCallbackReturn:
        self.running, self.start_time = True, time.monotonic()
        self.threads = [threading.Thread(target=f, name=n, daemon=True) for f, n in ((self.mpc_loop, "mpc"), (self.tick_loop, "tracking"))]
        for t in self.threads:
            t.start()
        return super().on_activate(state)

    def on_deactivate(self, state) -> TransitionCallbackReturn:
        self.stop_loops()
        return super().on_deactivate(state)

    def stop_loops(self) -> None:
        self.running = False
        for t in self.threads:
            t.join(timeout=0.5)
        self.threads = []
        if self.core is not None:
            self.core.stop_worker()
        if self.core is not None and self.publishing:  # last command: the safe one
            self.cmd_pub.publish(np.clip(self.robot.safe_command(self.core.latest()[0]), -self.robot.effort_limits, self.robot.effort_limits))
        self.publishing = False

    # -- parameters ------------------------------------------------------------------------------
    def on_set_parameters(self, params) -> SetParametersResult:
        changes = {p.name: p.value for p in params}
        try:
            new = read_fields(self, ControllerNodeSettings, changes)
        except (ConfigError, TypeError) as e:
            return SetParametersResult(successful=False, reason=str(e))
        if hasattr(self, "cfg"):
            self.cfg = new
            if self.core is not None:
                self.core.settings.max_path_poses, self.core.settings.path_speed = new.max_path_poses, new.path_speed
            if changes.get("critic_uri") and self.worker is not None:
                self.worker.submit("file", changes["critic_uri"])
        return SetParametersResult(successful=True)

    # -- inputs ----------------------------------------------------------------------------------
    def refused(self, what: str, reason) -> None:
        if reason:
            self.get_logger().warn(f"rejected {what}: {reason}")

    def on_goal(self, p, frame: str, source: str) -> None:
        reason = self.core.request_point((p.x, p.y, p.z), frame)
        self.refused(f"goal from {source}", reason)
        if not reason:
            self.get_logger().info(f"new goal ({p.x:.3f}, {p.y:.3f}, {p.z:.3f}) from {source}")

    def on_path(self, raw: bytes) -> None:
        try:
            frame, pts, stamps = parse_path(raw, self.core.settings.max_path_poses)
            reason = self.core.request_path(pts, frame, stamps) if len(pts) else "target_path has no poses"
        except (PathTooLong, ValueError) as e:
            reason = str(e)
        self.refused("target_path", reason)
        if not reason:
            self.get_logger().info(f"new target_path of {len(pts)} poses to ({pts[-1, 0]:.3f}, {pts[-1, 1]:.3f})")

    def on_trajectory(self, msg) -> None:
        """A JointTrajectory is followed in time: its points at their time_from_start, joints in
        any order (dmpc_core.control.joint_trajectory)."""
        try:
            times = [p.time_from_start.sec + 1e-9 * p.time_from_start.nanosec for p in msg.points]
            reason = self.core.request_joint_trajectory(msg.joint_names, [list(p.positions) for p in msg.points], times,
                                                        [list(p.velocities) for p in msg.points])
        except (TypeError, ValueError) as e:
            reason = f"bad trajectory: {e}"
        self.refused("target_trajectory", reason)
        if not reason:
            self.get_logger().info(f"new target_trajectory of {len(msg.points)} points over {times[-1]:.3f} s")

    def on_state(self, msg: JointState) -> None:
        x, reason = joint_state_to_x(msg, self.robot.joint_names)
        problem = reason if x is None else self.core.accept_state(x, stamp_to_float(msg.header.stamp))
        if x is None:
            self.core.reject_state(problem)
        if problem:
            self.log_throttled("warn", f"dropped state: {problem} ({self.core.states_rejected} so far; last good state kept)")
        elif self.cfg.tracking_trigger == "state" and self.running:
            self.last_state_tick = time.monotonic()
            self.run_tick()

    # -- critics ---------------------------------------------------------------------------------
    def install_critic(self, cand) -> None:
        """Worker thread: build the MPC with the new critic off the control path and queue the swap."""
        self.core.request_mpc(self.robot.make_mpc(self.core.goal, cand.critic, cand.version), cand.bundle)

    def on_critic_result(self, ok: bool, msg: str) -> None:
        (self.get_logger().info if ok else self.get_logger().error)(msg)

    def on_reload(self, _req, resp):
        uri = self.cfg.critic_uri
        return self.answer(resp, *((False, "critic_uri is empty") if not uri else self.worker.request("file", uri, self.cfg.critic_wait)))

    def reset(self):
        """Trigger answers: success = the fault is cleared (or armed: cleared at the first state
        back inside the envelope, e.g. after the simulator's reset)."""
        return True, self.core.request_reset()[1]

    @staticmethod
    def answer(resp, ok: bool, message: str):
        resp.success, resp.message = bool(ok), str(message)
        return resp

    # -- loops -----------------------------------------------------------------------------------
    def mpc_loop(self) -> None:
        """The MPC thread: solves (in-process), or with ``mpc_process`` forwards inputs to the
        worker process and adopts its policies (at most at 200 Hz: a policy is decoded once)."""
        rate = self.reach_settings.mpc.mpc_rate
        if self.cfg.mpc_process:
            rate = min(rate, 200.0)
        else:
            configure_thread(self.get_logger(), "MPC thread", cpu=self.cfg.mpc_cpu)
        period = 1.0 / rate
        while self.running:
            start = time.monotonic()
            try:
                self.core.solve_step(start - self.start_time)
                self.mpc_times.append((time.monotonic(), self.core.solves))
            except Exception as e:  # noqa: BLE001 - a failing solve keeps the last policy
                self.log_throttled("error", f"MPC solve failed: {e!r}")
            time.sleep(max(0.0, start + period - time.monotonic()))

    def tick_loop(self) -> None:
        """Absolute schedule (slot k at start + k / tracking_rate); a tick later than one period
        skips to the next slot (gaps in the published ``slot``)."""
        self.scheduler = configure_thread(self.get_logger(), "tracking thread", self.cfg.realtime_priority, self.cfg.tracking_cpu)
        slot = 0
        while self.running:
            self.slot = slot
            ticked = self.cfg.tracking_trigger == "timer" or time.monotonic() - self.last_state_tick > 1.5 * self.period
            if ticked:
                self.run_tick()
            slot += 1
            due = self.start_time + slot * self.period
            if time.monotonic() > due + self.period:
                slot = int((time.monotonic() - self.start_time) / self.period) + 1
                due = self.start_time + slot * self.period
            while ticked and self.deferred and due - time.monotonic() > 0.4 * self.period:
                pub, msg = self.deferred.popleft()  # large messages go out in the slack after a tick
                pub.publish(msg)
            time.sleep(max(0.0, due - time.monotonic()))

    def run_tick(self) -> None:
        with self.tick_lock:
            try:
                self.tick()
            except Exception as e:  # noqa: BLE001 - never let the control loop die silently
                self.log_throttled("error", f"tracking tick failed: {e!r}")

    def tick(self) -> None:
        now = time.monotonic()
        x, age = self.core.latest(now)
        u, st = self.core.command(now - self.start_time, x, age)
        self.status = st
        # nothing before the first policy (the plant holds the robot) unless the safe command
        # holds it by itself (Panda: gravity compensation at the first valid state)
        self.publishing = self.publishing or not st.safe or (self.robot.safe_command_holds and x is not None)
        if not self.publishing:
            return
        if st.safe and st.level == "ERROR":
            self.log_throttled("warn", f"safe command: {st.message}")
        self.cmd_pub.publish(u)
        self.seq += 1
        self.info_pub.publish([self.seq, self.slot, time.time(), self.core.x_stamp, float(st.safe),
                               getattr(self.core.reach, "critic_version", 0), min(self.core.ticks_since_state, 10**6),
                               min(age, 1e6), *u])
        self.tick_times.append(now)
        for rows in self.core.take_transitions():
            self.trans_pub.publish(transitions_msg(rows, self.robot.nx, self.robot.ng))

    # -- outputs ---------------------------------------------------------------------------------
    def publish_plan(self) -> None:
        pol = self.core.reach.mpc.policy if self.core is not None else None
        if pol is not None:
            path, markers = plan_messages(self.robot.display_points(self.core.reach, pol.x_nom), self.core.goal,
                                          self.get_clock().now().to_msg())
            self.deferred.extend([(self.path_pub, path), (self.marker_pub, markers)])

    def publish_diagnostics(self) -> None:
        core, st, w = self.core, self.status, self.worker
        level, msg = (st.level, st.message) if st is not None else ("WARN", "inactive")
        n_pub = self.count_publishers(self.state_topic)
        if n_pub > 1 and level == "OK":
            level, msg = "WARN", f"{n_pub} publishers on {self.state_topic}"
        if w.disabled and level == "OK":
            level, msg = "WARN", "every critic is refused: critic version file unreadable"
        active = w.store.active
        rate = lambda ts: (len(ts) - 1) / (ts[-1] - ts[0]) if len(ts) > 1 and ts[-1] > ts[0] else 0.0  # noqa: E731
        solves = list(self.mpc_times)
        mpc_rate = (solves[-1][1] - solves[0][1]) / (solves[-1][0] - solves[0][0]) if len(solves) > 1 and solves[-1][0] > solves[0][0] else 0.0
        wk = core.worker
        vals = {"solver": self.reach_settings.mpc.solver, "solve_time_ms": f"{1e3 * core.last_solve_time:.3f}",
                "mpc_rate_hz": f"{mpc_rate:.1f}", "tracking_rate_hz": f"{rate(list(self.tick_times)):.1f}",
                "mpc_process": str(wk is not None).lower(), "mpc_worker_pid": (wk.pid or 0) if wk is not None else 0,
                "mpc_worker_restarts": core.worker_restarts, "mpc_worker_problem": core.worker_problem,
                "mpc_worker_spare": wk.spare_state if wk is not None else "none",
                "policies_rejected": core.policies_rejected, "last_policy_problem": core.last_policy_problem,
                "mpc_overruns": core.overruns, "fallback_ticks": core.fallback_ticks, "critic_version": getattr(core.reach, "critic_version", 0),
                "critic_version_installed": active.version if active else 0, "critic_source": active.source if active else "",
                "critic_swaps": w.store.swaps, "critics_rejected": w.rejected, "last_reject_reason": w.reject_reason,
                "critics_refused_all": w.disabled,
                "episode_length": f"{core.episode_length:.3f}", "following_path": str(core.path_ref is not None).lower(),
                "following_trajectory": str(core.joint_traj is not None).lower(),
                "trajectory_error_rad": f"{core.traj_error:.4f}", "trajectory_max_error_rad": f"{core.traj_max_error:.4f}",
                "seq": self.seq, "states_rejected": core.states_rejected, "last_state_problem": core.last_state_problem,
                "state_publishers": n_pub, "saturations": core.saturations, "safe_ticks": core.safe_ticks, "plan_deviation_ticks": core.plan_deviation_ticks, "fault": core.fault,
                "tracking_scheduler": self.scheduler, "goal": ",".join(f"{v:.3f}" for v in core.goal)}
        self.diag_pub.publish(diagnostic_array(f"dmpc/{self.get_name()}", self.cfg.robot, level, msg, vals,
                                               self.get_clock().now().to_msg()))

    def log_throttled(self, level: str, text: str, period: float = 1.0) -> None:
        """At most one line per ``period`` per level (checked before the rclpy logger, which is
        too slow to call on every 400 Hz tick)."""
        now = time.monotonic()
        if now - self._last_log.get(level, -1e9) >= period:
            self._last_log[level] = now
            getattr(self.get_logger(), level)(text)

    def destroy_node(self):
        self.stop_loops()
        if self.worker is not None:
            self.worker.stop()
            self.state_reader.stop()
        return super().destroy_node()


def main(args=None) -> int:
    return run_node(ControllerNode, threads=3, args=args)


if __name__ == "__main__":
    raise SystemExit(main())
