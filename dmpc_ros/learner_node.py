"""Critic learner node: transitions in, signed ONNX critic bundles out.

Subscribes ``transitions`` (labelled Float64MultiArray, layout in dmpc_core.control.transitions), feeds
``dmpc_core.critics.learner.CriticLearner`` (the code ``dmpc train`` uses), runs one update
(K minibatches) every ``update_period`` seconds in a worker thread, and every ``push_every``
updates exports the target critic, appends the HMAC trailer when ``critic_hmac_key_file`` is set,
writes ``<checkpoint_dir>/critic_v<N>.onnx`` and publishes the bytes on ``critic_bundle``
(reliable + transient local: a restarted controller receives the latest bundle on connect).
Checkpoints (``<checkpoint_dir>/learner.pt``) every ``checkpoint_every`` updates and on exit; on
start an existing checkpoint is resumed. ``push_critics`` (bool, settable at run time) pauses
pushing while training continues.
"""
from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.node import Node
from std_msgs.msg import Float64MultiArray, UInt8MultiArray

from dmpc_core.critics.learner import CriticLearner, LearnerSettings
from dmpc_core.control.reach_mpc import NG
from dmpc_core.critics.signing import CriticHeader, read_key, sign_bundle
from dmpc_core.settings import ConfigError
from dmpc_core.tasks import ballbot
from dmpc_ros.messages import bytes_msg, transitions_from_msg
from dmpc_ros.params import declare_settings, read_settings
from dmpc_ros.qos import QOS_CRITIC, QOS_TRANSITIONS
from dmpc_ros.runtime import run_node

RO = ParameterDescriptor(read_only=True)


class LearnerNode(Node):
    def __init__(self, **kwargs):
        super().__init__("dmpc_learner", **kwargs)
        robot = self.declare_parameter("robot", "ballbot", RO).value
        if robot != "ballbot":
            raise ValueError(f"learner_node: robot {robot!r} is not supported (ballbot)")
        declare_settings(self, "learner", LearnerSettings())
        self.update_period = self.declare_parameter("update_period", 0.5, RO).value
        self.push_every = self.declare_parameter("push_every", 2, RO).value
        self.push = self.declare_parameter("push_critics", True).value
        self.ckpt_dir = Path(self.declare_parameter("checkpoint_dir", "runs/learner", RO).value)
        self.ckpt_every = self.declare_parameter("checkpoint_every", 10, RO).value
        key_file = self.declare_parameter("critic_hmac_key_file", "", RO).value
        self.key = read_key(key_file) if key_file else None
        self.add_on_set_parameters_callback(self.on_set_parameters)
        settings = read_settings(self, "learner", LearnerSettings)
        self.nx, self.ng = ballbot.NX, NG
        self.learner = CriticLearner(settings, self.nx, self.ng, robot)
        self.ckpt_dir.mkdir(parents=True, exist_ok=True)
        self.ckpt = self.ckpt_dir / "learner.pt"
        self.updates = self.pushes = 0
        if self.ckpt.exists():
            try:
                extra = self.learner.load(self.ckpt)
                self.updates = int(extra.get("updates", 0))
                self.get_logger().info(f"resumed {self.ckpt}: {len(self.learner.buffer)} transitions, {self.updates} updates")
            except ValueError as e:
                self.get_logger().error(f"ignoring checkpoint {self.ckpt}: {e}")
        self.lock = threading.Lock()
        self.pending = []
        self.last_stats = {}
        self.pub = self.create_publisher(UInt8MultiArray, "critic_bundle", QOS_CRITIC)
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_subscription(Float64MultiArray, "transitions", self.on_transitions, QOS_TRANSITIONS)
        self.create_timer(1.0, self.publish_diagnostics)
        self.running = True
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def on_set_parameters(self, params) -> SetParametersResult:
        for p in params:
            if p.name == "push_critics":
                if not isinstance(p.value, bool):
                    return SetParametersResult(successful=False, reason="push_critics must be a bool")
                self.push = p.value
        try:
            read_settings(self, "learner", LearnerSettings, {p.name: p.value for p in params})
        except ConfigError as e:
            return SetParametersResult(successful=False, reason=str(e))
        return SetParametersResult(successful=True)

    def on_transitions(self, msg: Float64MultiArray) -> None:
        try:
            batch = transitions_from_msg(msg, self.nx, self.ng)
        except ValueError as e:
            self.get_logger().error(f"dropped transitions: {e}", throttle_duration_sec=2.0)
            return
        with self.lock:
            self.pending.append(batch)

    def loop(self) -> None:
        while self.running:
            start = time.monotonic()
            with self.lock:
                pending, self.pending = self.pending, []
            for b in pending:
                self.learner.add(**b)
            if pending and self.learner.ready():
                self.last_stats = self.learner.update()
                self.updates += 1
                if self.push and self.updates % self.push_every == 0:
                    data = self.learner.export()
                    version = self.learner.trainer.exports
                    (self.ckpt_dir / f"critic_v{version}.onnx").write_bytes(data)
                    header = CriticHeader(self.get_fully_qualified_name(), version, self.learner.robot, "reach")
                    blob = sign_bundle(data, self.key, header) if self.key else data
                    self.pub.publish(bytes_msg(blob))
                    self.pushes += 1
                    self.get_logger().info(f"pushed critic v{version} after {self.updates} updates "
                                           f"({len(self.learner.buffer)} transitions)")
                if self.updates % self.ckpt_every == 0:
                    self.learner.save(self.ckpt, {"updates": self.updates})
            time.sleep(max(0.0, start + self.update_period - time.monotonic()))

    def publish_diagnostics(self) -> None:
        st = DiagnosticStatus(name=f"dmpc/{self.get_name()}", level=DiagnosticStatus.OK, message="OK")
        vals = {"transitions": len(self.learner.buffer), "transitions_rejected": self.learner.transitions_rejected,
                "updates": self.updates, "pushes": self.pushes,
                "critic_version": self.learner.trainer.exports, "push_critics": self.push}
        vals.update({k: f"{v:.4g}" for k, v in self.last_stats.items() if isinstance(v, float)})
        st.values = [KeyValue(key=k, value=str(v)) for k, v in vals.items()]
        self.diag_pub.publish(DiagnosticArray(status=[st]))

    def destroy_node(self):
        self.running = False
        self.thread.join(timeout=1.0)  # SIGINT: the node exits within 2 s (an update in flight is dropped)
        if self.updates and not self.thread.is_alive():  # never save under a running update
            self.learner.save(self.ckpt, {"updates": self.updates})
        return super().destroy_node()


def main(args=None) -> int:
    return run_node(LearnerNode, threads=1, args=args)


if __name__ == "__main__":
    raise SystemExit(main())
