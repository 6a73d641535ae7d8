"""Critic learner node (lifecycle): transitions in, signed ONNX critic bundles out.

Lifecycle: configure builds :class:`dmpc_core.critics.learner.CriticLearner` (the code
``dmpc train`` uses), resumes ``<checkpoint_dir>/learner.pt`` if present, reads the HMAC key and
creates the publishers; activate starts collecting transitions and the update thread (one update
of K minibatches every ``update_period`` seconds while transitions keep arriving (``idle_timeout``); every ``push_every`` updates the target critic
is exported to ``<checkpoint_dir>/critic_v<N>.onnx``, signed and published); deactivate stops
collecting, training and pushing, and writes the checkpoint. With ``autostart`` (default) the node
configures and activates itself. Arriving transitions go through
:class:`dmpc_core.critics.returns.EpisodeReturns` (``n_step``: one-step rows as they come, or the
n-step / full-return rows of each streamed episode once it ends); with ``push_initial`` the
untrained critic is pushed at activation. All parameters fill one dataclass,
:class:`dmpc_core.critics.node_settings.LearnerNodeSettings`, validated at start and on every set.

Subscribes ``transitions`` (labelled Float64MultiArray, layout in dmpc_core.control.transitions);
publishes ``critic_bundle`` (UInt8MultiArray, reliable + transient local: a restarted controller
receives the latest bundle on connect) and ``/diagnostics``.

Shutdown (SIGINT/SIGTERM): the update thread checks a stop flag before every minibatch and
before every export, so it ends within one gradient step; then the checkpoint is written. An
update of K minibatches used to run to its end first, seconds on a loaded machine.
"""
from __future__ import annotations

import threading
import time
from pathlib import Path

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn
from std_msgs.msg import Float64MultiArray, UInt8MultiArray

from dmpc_core.critics.node_settings import LearnerNodeSettings
from dmpc_core.settings import ConfigError
from dmpc_ros.messages import bytes_msg, transitions_from_msg
from dmpc_ros.params import declare_node_settings, read_node_settings
from dmpc_ros.qos import QOS_CRITIC, QOS_TRANSITIONS
from dmpc_ros.runtime import run_node

#: longest wait for the update thread to stop (it checks its stop flag between minibatches)
STOP_TIMEOUT = 1.0


class LearnerNode(LifecycleNode):
    def __init__(self, **kwargs):
        super().__init__("dmpc_learner", **kwargs)
        declare_node_settings(self, LearnerNodeSettings(), dynamic=("push_critics",))
        # read by dmpc_ros.runtime: configure and activate at start (else wait for lifecycle transitions)
        self.declare_parameter("autostart", True, ParameterDescriptor(read_only=True))
        self.cfg: LearnerNodeSettings = read_node_settings(self, LearnerNodeSettings)  # ConfigError: refuses to start
        self.add_on_set_parameters_callback(self.on_set_parameters)
        self.learner = self.key = None
        self.thread = None
        self.stop = threading.Event()
        self.collecting = False
        self.lock = threading.Lock()
        self.pending = []
        self.last_arrival = float("-inf")  # monotonic time of the last transitions taken in
        self.last_stats = {}
        self.updates = self.pushes = self.saved_at = 0

    # -- lifecycle -------------------------------------------------------------------------------
    def on_configure(self, state) -> TransitionCallbackReturn:
        from dmpc_core.control.reach_mpc import NG
        from dmpc_core.critics.checkpoint import CheckpointError
        from dmpc_core.critics.learner import CriticLearner
        from dmpc_core.critics.returns import EpisodeReturns
        from dmpc_core.critics.signing import read_key
        from dmpc_core.tasks import ballbot

        c = self.cfg
        try:
            self.key = read_key(c.critic_hmac_key_file) if c.critic_hmac_key_file else None
            self.nx, self.ng = ballbot.NX, NG
            self.learner = CriticLearner(c.learner, self.nx, self.ng, c.robot)
            self.returns = EpisodeReturns(c.n_step)
            self.ckpt_dir = Path(c.checkpoint_dir)
            self.ckpt_dir.mkdir(parents=True, exist_ok=True)
        except (ValueError, OSError) as e:
            self.get_logger().error(f"configure failed: {e}")
            return TransitionCallbackReturn.FAILURE
        self.ckpt = self.ckpt_dir / "learner.pt"
        self.updates = self.pushes = 0
        if self.ckpt.exists():
            try:
                self.updates = int(self.learner.load(self.ckpt).get("updates", 0))
                self.get_logger().info(f"resumed {self.ckpt}: {len(self.learner.buffer)} transitions, {self.updates} updates")
            except (CheckpointError, ValueError, OSError) as e:
                self.get_logger().error(f"ignoring checkpoint {self.ckpt}: {e}")
        self.saved_at = self.updates
        self.pub = self.create_publisher(UInt8MultiArray, "critic_bundle", QOS_CRITIC)
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.sub = self.create_subscription(Float64MultiArray, "transitions", self.on_transitions, QOS_TRANSITIONS)
        self.timer = self.create_timer(1.0, self.publish_diagnostics)
        self.get_logger().info(f"learner configured: {c.robot}/{c.task}, HMAC {'on' if self.key else 'off'}")
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state) -> TransitionCallbackReturn:
        self.stop.clear()
        self.collecting = True
        if self.cfg.push_initial and self.learner.trainer.exports == 0:
            self.push()  # Algorithm 1's first actor: the untrained critic
        self.thread = threading.Thread(target=self.loop, name="learner", daemon=True)
        self.thread.start()
        return super().on_activate(state)

    def on_deactivate(self, state) -> TransitionCallbackReturn:
        self.stop_loop()
        return super().on_deactivate(state)

    def on_cleanup(self, state) -> TransitionCallbackReturn:
        """Drop the learner and its ROS entities (configure builds them again, from the checkpoint)."""
        for ent, destroy in ((self.sub, self.destroy_subscription), (self.timer, self.destroy_timer),
                             (self.pub, self.destroy_publisher), (self.diag_pub, self.destroy_publisher)):
            destroy(ent)
        self.learner = None
        return TransitionCallbackReturn.SUCCESS

    def stop_loop(self) -> None:
        """Stop collecting and the update thread (within one gradient step), then checkpoint."""
        self.collecting = False
        self.stop.set()
        if self.thread is not None:
            self.thread.join(timeout=STOP_TIMEOUT)
            if self.thread.is_alive():  # never save under a running update
                self.get_logger().warn(f"update thread still busy after {STOP_TIMEOUT:g} s; no checkpoint written")
                return
            self.thread = None
        if self.learner is not None and self.updates > self.saved_at:
            self.save()

    # -- parameters ------------------------------------------------------------------------------
    def on_set_parameters(self, params) -> SetParametersResult:
        try:
            new = read_node_settings(self, LearnerNodeSettings, {p.name: p.value for p in params})
        except (ConfigError, TypeError) as e:
            return SetParametersResult(successful=False, reason=str(e))
        self.cfg = new
        return SetParametersResult(successful=True)

    # -- work ------------------------------------------------------------------------------------
    def on_transitions(self, msg: Float64MultiArray) -> None:
        if not self.collecting:
            return
        try:
            batch = transitions_from_msg(msg, self.nx, self.ng)
        except ValueError as e:
            self.get_logger().error(f"dropped transitions: {e}", throttle_duration_sec=2.0)
            return
        with self.lock:
            self.pending.append(batch)

    def loop(self) -> None:
        while not self.stop.is_set():
            start = time.monotonic()
            with self.lock:
                pending, self.pending = self.pending, []
            for b in pending:
                rows = self.returns.add(b)  # n-step rows of the episodes that ended (n_step)
                if rows is not None:
                    self.learner.add(**rows)
            if pending:
                self.last_arrival = start
            if start - self.last_arrival <= self.cfg.idle_timeout and self.learner.ready():
                stats = self.learner.update(should_stop=self.stop.is_set)
                if self.stop.is_set():
                    break  # a cut-short update is not counted, and nothing is exported
                self.last_stats = stats
                self.updates += 1
                if self.cfg.push_critics and self.updates % self.cfg.push_every == 0:
                    self.push()
                if self.updates % self.cfg.checkpoint_every == 0 and not self.stop.is_set():
                    self.save()
            self.stop.wait(max(0.0, start + self.cfg.update_period - time.monotonic()))

    def push(self) -> None:
        from dmpc_core.critics.signing import CriticHeader, sign_bundle

        data = self.learner.export()
        version = self.learner.trainer.exports
        (self.ckpt_dir / f"critic_v{version}.onnx").write_bytes(data)
        header = CriticHeader(self.get_fully_qualified_name(), version, self.cfg.robot, self.cfg.task)
        self.pub.publish(bytes_msg(sign_bundle(data, self.key, header) if self.key else data))
        self.pushes += 1
        self.get_logger().info(f"pushed critic v{version} after {self.updates} updates ({len(self.learner.buffer)} transitions)")

    def save(self) -> None:
        self.learner.save(self.ckpt, {"updates": self.updates})
        self.saved_at = self.updates

    def publish_diagnostics(self) -> None:
        active = self.collecting
        st = DiagnosticStatus(name=f"dmpc/{self.get_name()}", level=DiagnosticStatus.OK if active else DiagnosticStatus.WARN,
                              message="OK" if active else "inactive")
        vals = {"transitions": len(self.learner.buffer), "transitions_rejected": self.learner.transitions_rejected,
                "updates": self.updates, "pushes": self.pushes, "critic_version": self.learner.trainer.exports,
                "push_critics": self.cfg.push_critics, "collecting": active,
                "episodes_finished": self.returns.episodes_finished, "episodes_cut": self.returns.episodes_cut,
                "gaps_bridged": self.returns.gaps_bridged}
        vals.update({k: f"{v:.4g}" for k, v in self.last_stats.items() if isinstance(v, float)})
        st.values = [KeyValue(key=k, value=str(v)) for k, v in vals.items()]
        self.diag_pub.publish(DiagnosticArray(status=[st]))

    def destroy_node(self):
        self.stop_loop()
        return super().destroy_node()


def main(args=None) -> int:
    return run_node(LearnerNode, threads=1, args=args)


if __name__ == "__main__":
    raise SystemExit(main())
