"""Embedded simulator node: the Ballbot (``dmpc_core.sim.Plant`` on ``_core.BallbotDynamics``) or
the Franka Panda (``dmpc_core.sim.panda``: the core's pinocchio model or MuJoCo, ``backend``).

Topics: publishes ``joint_states`` (sensor_msgs/JointState with position + velocity: Ballbot px,
py, yaw, pitch, roll; Panda the 7 arm joints named by ``joint_names``), optional ``/clock``
(simulated time); subscribes ``commands`` (std_msgs/Float64MultiArray, one torque per wheel /
joint, held until the next one). After ``command_timeout`` seconds without a command the torques
go to zero (Ballbot) or to gravity compensation g(q) (Panda: what a torque-controlled arm's
driver holds; the arm does not fall while the controller restarts).
Services: ``~/reset`` (std_srvs/Trigger): new random start (``random_start``) or the nominal one
(Ballbot: the origin; Panda: Franka's ready pose).
Start: with ``hold_until_command`` (default) the robot is held at its start state (no physics;
the state is still published) until the first valid command arrives, and again after a reset:
it never runs unactuated before the controller is active.
Physics: fixed steps of ``physics_dt`` (1 kHz) in a dedicated thread paced by the wall clock, as
many per ``1/publish_rate`` (400 Hz) period as fit with the remainder carried (2, 3, 2, 3 ... steps:
1 kHz exactly; core: RK4 steps, ``PlantSettings.fixed_step``; MuJoCo: its fixed step), under
SCHED_FIFO at ``realtime_priority`` when it is > 0 and the OS allows it. Commands are taken by a
``realtime.StreamReader`` thread (same priority), not by the executor.
"""
from __future__ import annotations

import sys
import threading
import time

import numpy as np
import rclpy
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn
from std_msgs.msg import Float64MultiArray
from std_srvs.srv import Trigger
from sensor_msgs.msg import JointState

from dmpc_core import _core
from dmpc_core.models import panda as panda_model
from dmpc_core.sim.plant import Plant, PlantSettings
from dmpc_core.tasks import ballbot
from dmpc_ros.messages import wall_time_msg, x_to_joint_state
from dmpc_ros.qos import QOS_LATEST, QOS_RELIABLE
from dmpc_ros.realtime import StreamReader, configure_thread
from dmpc_ros.runtime import run_node

RO = ParameterDescriptor(read_only=True)


class SimNode(LifecycleNode):
    """Lifecycle: configure builds the plant, publishers and services; activate starts the
    physics thread; deactivate stops it (the state freezes and is no longer published).
    ``autostart`` (default true): configure and activate at start."""

    def __init__(self, **kwargs):
        super().__init__("ballbot_sim", **kwargs)
        self.declare_parameter("autostart", True, RO)
        self.thread = self.cmd_reader = None
        self.running = False

    def on_configure(self, state) -> TransitionCallbackReturn:
        try:
            self.build()
        except (ValueError, OSError) as e:
            self.get_logger().error(f"configure failed: {e}")
            return TransitionCallbackReturn.FAILURE
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state) -> TransitionCallbackReturn:
        self.running = True
        self.thread = threading.Thread(target=self.loop, name="physics", daemon=True)
        self.thread.start()
        if not self.cmd_reader.thread.is_alive():
            self.cmd_reader.start()
        return super().on_activate(state)

    def on_deactivate(self, state) -> TransitionCallbackReturn:
        self.stop_physics()
        return super().on_deactivate(state)

    def stop_physics(self) -> None:
        self.running = False
        if self.thread is not None:
            self.thread.join(timeout=1.0)

    def build(self) -> None:
        p = self.declare_parameter
        self.robot = p("robot", "ballbot", RO).value
        if self.robot not in ("ballbot", "panda"):
            raise ValueError(f"sim_node supports robots 'ballbot' and 'panda' (got {self.robot!r})")
        physics_dt = p("physics_dt", 0.001, RO).value
        self.rate = p("publish_rate", 400.0, RO).value
        seed = p("seed", 0, RO).value
        self.random_start = p("random_start", True).value
        self.cmd_timeout = p("command_timeout", 0.05).value
        # hold the robot (no physics: state frozen at the start) until the first valid command,
        # i.e. until the controller is active with a policy; ~/reset holds it again
        self.hold_until_command = bool(p("hold_until_command", True, RO).value)
        self.publish_clock = p("publish_clock", False, RO).value
        # SCHED_FIFO priority of the physics/publish thread and the command reader (0: normal
        # scheduler): the plant keeps its 400 Hz schedule on a loaded machine, like a robot's driver
        self.rt_priority = int(p("realtime_priority", 0, RO).value)
        if not 0 <= self.rt_priority <= 99:
            raise ValueError(f"realtime_priority must be 0 (off) or 1..99, got {self.rt_priority}")
        self.rng = np.random.default_rng(seed)
        if self.robot == "ballbot":
            noise = p("input_noise_std", 0.0, RO).value
            self.pos_range = p("start_position_range", 0.3).value
            self.tilt_deg = p("start_tilt_deg", 2.0).value
            u_max = p("u_max", 30.0, RO).value
            self.names, self.nx, self.nu, self.label = ballbot.JOINT_NAMES, ballbot.NX, ballbot.NU, "wheel_torque"
            self.plant = Plant(_core.BallbotDynamics(), np.zeros(ballbot.NX),
                               PlantSettings(physics_dt=physics_dt, input_noise_std=noise, seed=seed, fixed_step=True,
                                             u_min=[-u_max] * ballbot.NU, u_max=[u_max] * ballbot.NU))
            self.gravity = None
            backend = "core"
        else:
            from dmpc_core.sim.panda import PandaSimSettings, make_panda_plant

            backend = p("backend", "mujoco", RO).value
            self.names = tuple(p("joint_names", list(panda_model.JOINT_NAMES), RO).value)
            if len(self.names) != len(panda_model.JOINT_NAMES):
                raise ValueError(f"joint_names must list 7 joints (got {list(self.names)})")
            self.start_joint_range = p("start_joint_range", 0.2).value
            urdf = p("urdf", "", RO).value or str(panda_model.default_urdf_path())
            limits = list(p("effort_limits", [0.0], RO).value)
            sim = PandaSimSettings(backend=backend, physics_dt=physics_dt,
                                   mujoco_integrator=p("mujoco_integrator", "RK4", RO).value,
                                   joint_limits=p("joint_limits", True, RO).value,
                                   joint_damping=p("joint_damping", 0.0, RO).value,
                                   u_max=limits if any(limits) else None)
            self.plant = make_panda_plant(sim, urdf_path=urdf)
            self.model = _core.PandaDynamics(urdf, sim.joint_damping)
            self.gravity = self.model.gravity
            self.nx, self.nu, self.label = self.model.nx, self.model.nu, "joint_torque"
        self.lock = threading.Lock()
        self.u = np.zeros(self.nu)
        self.last_cmd = -1e9
        self.bad_cmds = 0
        self.pub = self.create_publisher(JointState, "joint_states", QOS_RELIABLE)
        self.clock_pub = None
        if self.publish_clock:
            from rosgraph_msgs.msg import Clock

            self.clock_pub = self.create_publisher(Clock, "/clock", 10)
        # the 400 Hz command stream has its own reader thread, off the executor (see dmpc_ros.realtime)
        self.cmd_reader = StreamReader(self, Float64MultiArray, self.resolve_topic_name("commands"), QOS_LATEST,
                                       self.on_command, f"{self.get_name()}_command_io",
                                       realtime_priority=self.rt_priority)
        self.create_service(Trigger, "~/reset", self.on_reset)
        self.reset_state()
        self.get_logger().info(f"{self.robot} sim ({backend}): physics dt {physics_dt} s, JointState at {self.rate} Hz")

    def reset_state(self) -> np.ndarray:
        if self.robot == "ballbot":
            x0 = np.zeros(ballbot.NX)
            if self.random_start:
                x0[[ballbot.PX, ballbot.PY]] = self.rng.uniform(-self.pos_range, self.pos_range, 2)
                x0[[ballbot.PITCH, ballbot.ROLL]] = np.deg2rad(self.rng.uniform(-self.tilt_deg, self.tilt_deg, 2))
        else:
            from dmpc_core.sim.panda import random_start

            x0 = random_start(self.rng, self.start_joint_range if self.random_start else 0.0,
                              self.model.lower_position_limit, self.model.upper_position_limit)
        with self.lock:
            self.plant.reset(x0)
            self.u = np.zeros(self.nu)
            self.last_cmd = -1e9
            self.held = self.hold_until_command
        return x0

    def on_command(self, msg: Float64MultiArray) -> None:
        u = np.asarray(msg.data, float)
        if u.shape != (self.nu,) or not np.all(np.isfinite(u)):
            self.bad_cmds += 1
            self.get_logger().warn(f"ignored command {u.tolist()} (need {self.nu} finite values)",
                                   throttle_duration_sec=1.0)
            return
        with self.lock:
            self.u = u
            self.last_cmd = time.monotonic()
            self.held = False

    def held_command(self, x: np.ndarray) -> np.ndarray:
        """The last command, or after ``command_timeout`` zero (Ballbot) / g(q) (Panda)."""
        if time.monotonic() - self.last_cmd <= self.cmd_timeout:
            return self.u
        return np.zeros(self.nu) if self.gravity is None else np.asarray(self.gravity(x[:self.nu]), float)

    def on_reset(self, _req, resp):
        x0 = self.reset_state()
        resp.success = True
        resp.message = "reset to " + ",".join(f"{v:.4f}" for v in x0)
        return resp

    def loop(self) -> None:
        configure_thread(self.get_logger(), "physics thread", self.rt_priority)
        period = 1.0 / self.rate
        nxt = time.monotonic()
        while self.running and rclpy.ok():
            nxt += period
            with self.lock:
                u = self.held_command(self.plant.x)
                try:
                    x = self.plant.x.copy() if self.held else self.plant.step(u, period).copy()
                except ValueError as e:
                    self.get_logger().error(f"plant step failed: {e}; resetting")
                    x_reset = np.zeros(self.nx) if self.robot == "ballbot" else np.concatenate(
                        [panda_model.Q_READY, np.zeros(self.nu)])
                    self.plant.reset(x_reset)
                    x = self.plant.x.copy()
                t_sim = self.plant.t
            stamp = wall_time_msg(time.time())
            self.pub.publish(x_to_joint_state(x, self.names, stamp))
            if self.clock_pub is not None:
                from rosgraph_msgs.msg import Clock

                self.clock_pub.publish(Clock(clock=wall_time_msg(t_sim)))
            delay = nxt - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            elif delay < -10 * period:
                nxt = time.monotonic()  # fell far behind: do not try to catch up

    def destroy_node(self):
        self.stop_physics()
        if self.cmd_reader is not None:
            self.cmd_reader.stop()
        return super().destroy_node()


def main(args=None) -> int:
    return run_node(SimNode, threads=1, args=args)


if __name__ == "__main__":
    raise SystemExit(main())
