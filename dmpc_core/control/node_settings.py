"""Settings of the controller node, one dataclass validated on load and on every parameter set.

The ROS node declares one parameter per field (same names as the ``parameters:`` block of
config/<robot>_sim.yaml) plus the ``reach.*`` (MPC) and ``gate.*`` (critic gate) groups, whose
dataclasses depend on the robot and live with their code.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List

import numpy as np

from dmpc_core.control.core import CoreSettings


@dataclass
class ControllerNodeSettings:
    """Attributes:
    robot: "ballbot" or "panda" (read-only).
    task: the task the controller runs ("reach", the one both robots' MPCs implement); critics
        must be signed for this robot and task. The graph sets it from the config's top-level ``task``.
    joint_names: JointState joint names in state order ([] = the robot's defaults).
    initial_goal: goal at start ([] = the robot's default: origin / TCP at the ready pose).
    goal_frames: frame_ids accepted for goals and paths.
    watchdog_ticks: tracking ticks (and periods) without a new valid state before the safe command.
    tracking_trigger: "timer" (own 1/tracking_rate schedule) or "state" (a tick per arriving state).
    gil_switch_interval: CPython switch interval of the process [s], (0, 0.005].
    realtime_priority: SCHED_FIFO priority of the tracking and state threads (0 = normal scheduler).
    mpc_process: run the MPC solver in a worker process of its own (dmpc_core.control.mpc_worker),
        so that the tracking loop never waits for the GIL of a solve; false: an MPC thread in the
        node's process (read-only).
    mpc_cpu, tracking_cpu: CPU to pin the MPC (the worker process with ``mpc_process``, else the
        MPC thread) and the tracking thread to (-1 = none).
    transitions_batch: transitions per published batch (Ballbot).
    path_speed: speed along an unstamped target_path [m/s].
    max_path_poses: longest target_path accepted [poses].
    path_rate, diagnostics_rate: planned-path and diagnostics publication rates [Hz].
    critic_uri: critic file to load (also on set, and by ~/reload_critic).
    critic_hmac_key_file: HMAC key shared with the learner ("" = none). Whether unsigned
        critics are accepted and the size limit are the gate's ``gate.allow_unsigned`` and
        ``gate.max_bundle_bytes``.
    critic_state_dir: folder of the file that keeps the highest critic version accepted per
        learner across restarts (``critic_versions_<node name>.json``); "" = the key file's
        folder; with neither, the versions are kept in memory only.
    critic_wait: longest wait of a critic service for its answer [s].
    plan_deviation_limit: the MPC policy is used only while the state is within this distance of
        its plan (Ballbot [m], Panda [rad]); beyond it the robot is held in place until the MPC
        has re-planned (``dmpc_core.control.core.CoreSettings``; 0: no check).
    critic_swap: when an accepted critic takes over: "immediate" (at the next solve) or
        "episode_start" (when the next episode starts: one critic per episode, as in Algorithm 1's
        rollouts; ``dmpc_core.control.core.CoreSettings``).
    u_max: Ballbot wheel effort limit [N m] (the Panda's come from its URDF).
    max_tilt_deg: Ballbot: beyond this tilt the robot counts as fallen [deg].
    """

    robot: str = "ballbot"
    task: str = "reach"
    joint_names: List[str] = field(default_factory=list)
    initial_goal: List[float] = field(default_factory=list)
    goal_frames: List[str] = field(default_factory=lambda: ["world"])
    watchdog_ticks: int = 2
    tracking_trigger: str = "timer"
    gil_switch_interval: float = 0.0002
    realtime_priority: int = 50
    mpc_process: bool = True
    mpc_cpu: int = -1
    tracking_cpu: int = -1
    transitions_batch: int = 20
    path_speed: float = 0.5
    max_path_poses: int = 10_000
    path_rate: float = 10.0
    diagnostics_rate: float = 2.0
    critic_uri: str = ""
    critic_hmac_key_file: str = ""
    critic_state_dir: str = ""
    critic_wait: float = 5.0
    plan_deviation_limit: float = 0.3
    critic_swap: str = "immediate"
    u_max: float = 30.0
    max_tilt_deg: float = 30.0

    def validate(self) -> None:
        if self.robot not in ("ballbot", "panda"):
            raise ValueError(f"robot {self.robot!r} is not supported (ballbot, panda)")
        if self.tracking_trigger not in ("timer", "state"):
            raise ValueError(f"tracking_trigger must be 'timer' or 'state', got {self.tracking_trigger!r}")
        if not 0.0 < self.gil_switch_interval <= 0.005:
            raise ValueError(f"gil_switch_interval must be in (0, 0.005] s, got {self.gil_switch_interval}")
        if not isinstance(self.mpc_process, bool):
            raise ValueError(f"mpc_process must be true or false, got {self.mpc_process!r}")
        if not 0 <= self.realtime_priority <= 99:
            raise ValueError(f"realtime_priority must be 0 (off) or 1..99, got {self.realtime_priority}")
        if not (self.path_rate > 0 and self.diagnostics_rate > 0):
            raise ValueError("path_rate and diagnostics_rate must be > 0")
        if not (isinstance(self.task, str) and self.task):
            raise ValueError(f"task must be a non-empty string, got {self.task!r}")
        if not (np.isfinite(self.critic_wait) and 0 < self.critic_wait <= 60):
            raise ValueError(f"critic_wait must be in (0, 60] s, got {self.critic_wait}")
        if not 0 < self.max_tilt_deg < 90:
            raise ValueError(f"max_tilt_deg must be in (0, 90), got {self.max_tilt_deg}")
        if not (np.isfinite(self.u_max) and self.u_max > 0):
            raise ValueError(f"u_max must be > 0, got {self.u_max}")
        if not all(np.isfinite(self.initial_goal)):
            raise ValueError("initial_goal must be finite")
        self.core(400.0, 100.0, 8.0).validate()

    def core(self, tracking_rate: float, mpc_rate: float, episode_length: float) -> CoreSettings:
        """The controller core's settings (rates and episode length come from the MPC settings)."""
        return CoreSettings(tracking_rate=tracking_rate, mpc_rate=mpc_rate, watchdog_ticks=self.watchdog_ticks,
                            goal_frames=list(self.goal_frames), max_path_poses=self.max_path_poses,
                            path_speed=self.path_speed, episode_length=episode_length,
                            transitions_batch=self.transitions_batch,
                            watchdog_age_only=self.tracking_trigger == "state", critic_swap=self.critic_swap,
                            plan_deviation_limit=self.plan_deviation_limit)

    def critic_state_file(self, node_name: str) -> str:
        """The version file of node ``node_name`` ("" = none: no state dir and no key file)."""
        import os

        folder = self.critic_state_dir or (os.path.dirname(os.path.abspath(self.critic_hmac_key_file))
                                           if self.critic_hmac_key_file else "")
        return os.path.join(folder, f"critic_versions_{node_name}.json") if folder else ""
