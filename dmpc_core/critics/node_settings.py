"""Settings of the critic learner node, one dataclass validated on load and on every parameter set.

The ROS node (``dmpc_ros.learner_node``) declares one parameter per leaf (same names as the
``parameters:`` block of the learner in config/ballbot_sim.yaml; ``learner.*`` nested). Only
``push_critics`` can change at run time; a set that fails :meth:`LearnerNodeSettings.validate`
is refused with the reason.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from dmpc_core.critics.learner import LearnerSettings

#: robots whose transitions and critics the learner node is wired for
LEARNER_ROBOTS = ("ballbot",)


@dataclass
class LearnerNodeSettings:
    """Attributes:
    robot: robot of the transitions and critics ("ballbot"; read-only).
    task: task the critics are signed for ("reach"); the graph sets it from the config's
        top-level ``task``. A controller refuses critics signed for another robot or task.
    update_period: [s] between the starts of two critic updates (K minibatches each).
    idle_timeout: [s] updates go on for this long after the last arriving transitions (a
        controller publishes a batch every ``transitions_batch`` control steps, about once a
        second for the Ballbot, so updating only when a batch came in ran half the updates
        ``update_period`` asks for); 0: an update only when transitions arrived since the last.
    push_every: export, sign and publish the critic every this many updates.
    push_critics: publish critics (settable at run time; false: training goes on, nothing is pushed).
    checkpoint_dir: folder of ``learner.pt`` (resumed at configure) and the exported ``critic_v<N>.onnx``.
    checkpoint_every: write the checkpoint every this many updates (and at deactivate and exit).
    critic_hmac_key_file: HMAC key shared with the controllers ("" = critics go out unsigned,
        which controllers refuse unless their gate allows unsigned critics).
    n_step: critic targets from n-step returns of the streamed episodes
        (``dmpc_core.critics.returns.EpisodeReturns``): 1 = the one-step target of Eq. (11);
        >= the episode's control steps = full returns, the targets of ``dmpc train
        ballbot-reach`` (undiscounted: needs ``learner.trainer.discount`` 1).
    push_initial: export and push the untrained critic when the node activates, so that the
        controller runs the Deep Value MPC actor from Algorithm 1's first iteration (with
        ``learner.zero_init_output`` it only balances until the critic has learned).
    learner: replay buffer, critic and trainer settings (``dmpc_core.critics.learner``).
    """

    robot: str = "ballbot"
    task: str = "reach"
    update_period: float = 0.5
    idle_timeout: float = 2.0
    push_every: int = 2
    push_critics: bool = True
    checkpoint_dir: str = "runs/learner"
    checkpoint_every: int = 10
    critic_hmac_key_file: str = ""
    n_step: int = 1
    push_initial: bool = False
    learner: LearnerSettings = field(default_factory=LearnerSettings)

    def validate(self) -> None:
        if self.robot not in LEARNER_ROBOTS:
            raise ValueError(f"robot {self.robot!r} is not supported by the learner ({', '.join(LEARNER_ROBOTS)})")
        if not (isinstance(self.task, str) and self.task):
            raise ValueError(f"task must be a non-empty string, got {self.task!r}")
        if not (isinstance(self.update_period, (int, float)) and math.isfinite(self.update_period)
                and 0 < self.update_period <= 3600):
            raise ValueError(f"update_period must be in (0, 3600] s, got {self.update_period!r}")
        if not (isinstance(self.idle_timeout, (int, float)) and not isinstance(self.idle_timeout, bool)
                and math.isfinite(self.idle_timeout) and 0 <= self.idle_timeout <= 3600):
            raise ValueError(f"idle_timeout must be in [0, 3600] s, got {self.idle_timeout!r}")
        for name in ("push_every", "checkpoint_every"):
            v = getattr(self, name)
            if not (isinstance(v, int) and not isinstance(v, bool) and v >= 1):
                raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
        if not (isinstance(self.n_step, int) and not isinstance(self.n_step, bool) and self.n_step >= 1):
            raise ValueError(f"n_step must be an integer >= 1, got {self.n_step!r}")
        if self.n_step > 1 and self.learner.trainer.discount != 1.0:
            raise ValueError(f"n_step > 1 needs learner.trainer.discount 1 (undiscounted returns), "
                             f"got {self.learner.trainer.discount}")
        if not isinstance(self.push_initial, bool):
            raise ValueError(f"push_initial must be a bool, got {self.push_initial!r}")
        if not isinstance(self.push_critics, bool):
            raise ValueError(f"push_critics must be a bool, got {self.push_critics!r}")
        if not (isinstance(self.checkpoint_dir, str) and self.checkpoint_dir):
            raise ValueError("checkpoint_dir must be a non-empty path")
        if not isinstance(self.critic_hmac_key_file, str):
            raise ValueError("critic_hmac_key_file must be a path string")
