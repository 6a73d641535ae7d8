"""The learning half of Algorithm 1 (deep-value-mpc): replay buffer + critic updates + export.

``CriticLearner`` is shared by ``dmpc train`` (in-process) and the ROS ``learner_node`` (which
receives the same transitions over a topic), so both train with exactly the same code:
transitions go in with :meth:`add`, :meth:`update` runs K minibatches of N (Eq. 11-12, Polyak
target network), :meth:`export` serialises the target network as an ONNX critic bundle, and
:meth:`save` / :meth:`load` write atomic checkpoints including the replay buffer.

Transition layout (one row per executed control step, see :data:`TRANSITION_FIELDS`):
``state`` (nx), ``goal`` (ng), ``time_to_go`` (1), ``cost`` (1), ``next_state`` (nx),
``next_time_to_go`` (1), ``done`` (1).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable, Dict, Optional

import numpy as np
import torch

from dmpc_core.critics.checkpoint import load_checkpoint, save_checkpoint
from dmpc_core.critics.fields import TRANSITION_FIELDS  # noqa: F401  (re-exported: the layout of add())
from dmpc_core.critics.networks import LeadValueMLP, LeadValueMLPSettings, ValueMLP, ValueMLPSettings
from dmpc_core.critics.replay import ReplayBuffer, ReplaySpec
from dmpc_core.critics.training import CriticTrainer, CriticTrainerSettings



@dataclass
class LearnerSettings:
    """Attributes:
    hidden: critic hidden widths (paper: 3 x 12 tanh).
    replay_capacity: transitions kept.
    min_transitions: no update before this many transitions are stored.
    fit_normalization_at: fit the critic's input normalisation once, when the buffer first
        holds this many transitions (0: never).
    trainer: optimiser / target-network settings (K = batches_per_update, N = batch_size).
    max_abs_cost: rows whose |cost| exceeds this are dropped (counted in
        ``transitions_rejected``), like non-finite rows: a plant that diverged (a fallen robot
        spinning its ball) produces per-step costs many orders of magnitude above the task's, and
        a handful of them dominates every squared-error minibatch they are drawn into (seen: a
        resumed main-job learner whose buffer held costs up to 2e8 against a median of 0.3, loss
        3e13). Default: no bound.
    critic: the critic's structure. "mlp": a plain MLP of the full (x, g, tau) with a fitted
        input normalisation. "lead": :class:`~dmpc_core.critics.networks.LeadValueMLP`, an MLP
        of the goal-relative lead point e = p + lead * v - g and tau only (its input scaling is
        fixed, ``fit_normalization_at`` is not used): dV/dv = lead * dV/dp, which the replay data
        of a deterministic actor started at rest cannot pin down for a full-state critic.
    lead: [s] lead time of the "lead" critic.
    position_indices / velocity_indices: state indices of p and v for the "lead" critic.
    length_scale: [m] scale of e for the "lead" critic.
    time_to_go_scale: [s] tau enters the "lead" critic as tau / time_to_go_scale - 1 (use T / 2).
    output_scale: V = output_scale * (network output): the scale of the values the tanh network
        starts from (set it near the returns' scale).
    zero_init_output: start from a zero output layer, a constant value (the untrained Deep Value
        MPC actor then only follows its nominal terms).
    """

    hidden: tuple = (12, 12, 12)
    replay_capacity: int = 200_000
    min_transitions: int = 256
    fit_normalization_at: int = 1000
    trainer: CriticTrainerSettings = field(default_factory=CriticTrainerSettings)
    max_abs_cost: float = float("inf")
    critic: str = "mlp"
    lead: float = 0.3
    position_indices: list = field(default_factory=lambda: [0, 1])
    velocity_indices: list = field(default_factory=lambda: [5, 6])
    length_scale: float = 1.0
    time_to_go_scale: float = 1.5
    output_scale: float = 1.0
    zero_init_output: bool = False

    def validate(self) -> None:
        if self.critic not in ("mlp", "lead"):
            raise ValueError(f"critic must be 'mlp' or 'lead', got {self.critic!r}")
        if not (self.length_scale > 0 and self.time_to_go_scale > 0 and np.isfinite(self.lead)):
            raise ValueError("length_scale and time_to_go_scale must be > 0 and lead finite")
        if not (np.isfinite(self.output_scale) and self.output_scale > 0):
            raise ValueError(f"output_scale must be > 0, got {self.output_scale}")
        if not self.max_abs_cost > 0:
            raise ValueError(f"max_abs_cost must be > 0, got {self.max_abs_cost}")
        if self.replay_capacity < 1 or self.min_transitions < 1:
            raise ValueError("replay_capacity and min_transitions must be >= 1")
        if any(int(h) < 1 for h in self.hidden):
            raise ValueError("hidden widths must be >= 1")


class CriticLearner:
    """Replay buffer + value critic + trainer for one robot/task.

    Args:
        settings: learner settings.
        nx: state width; ng: goal width.
        robot: name stored in exported bundles (``dmpc.robot``).
    """

    def __init__(self, settings: LearnerSettings, nx: int, ng: int, robot: str = ""):
        settings.validate()
        self.settings = settings
        self.nx, self.ng, self.robot = int(nx), int(ng), robot
        hidden = tuple(int(h) for h in settings.hidden)
        if settings.critic == "lead":
            self.model = LeadValueMLP(LeadValueMLPSettings(
                nx=self.nx, ng=self.ng, hidden=hidden, position_indices=tuple(settings.position_indices),
                velocity_indices=tuple(settings.velocity_indices), lead=settings.lead,
                length_scale=settings.length_scale, time_to_go_scale=settings.time_to_go_scale))
        else:
            self.model = ValueMLP(ValueMLPSettings(nx=self.nx, ng=self.ng, hidden=hidden))
        self.trainer = CriticTrainer(self.model, settings.trainer)
        for net in (self.model, self.trainer.target):
            net.set_output_affine(settings.output_scale, 0.0)
            if settings.zero_init_output:
                with torch.no_grad():
                    net.layers[-1].weight.zero_()
                    net.layers[-1].bias.zero_()
        self.buffer = ReplayBuffer(ReplaySpec(capacity=settings.replay_capacity, nx=self.nx, ng=self.ng))
        #: the structured critic's input scaling is fixed: nothing to fit
        self.normalization_fitted = settings.critic == "lead"
        self.transitions_seen = 0
        self.transitions_rejected = 0

    def add(self, **fields: np.ndarray) -> int:
        """Store a batch of transitions (arrays with a leading batch axis; see module doc).
        Non-finite rows and rows with |cost| > ``max_abs_cost`` are dropped (a NaN or a diverged
        plant must not poison the critic) and counted in ``transitions_rejected``. Returns rows
        stored."""
        batch = {k: np.asarray(fields[k], dtype=float) for k in TRANSITION_FIELDS}
        n = batch["state"].shape[0]
        ok = np.ones(n, dtype=bool)
        for v in batch.values():
            ok &= np.all(np.isfinite(v.reshape(n, -1)), axis=1)
        with np.errstate(invalid="ignore"):
            ok &= np.abs(batch["cost"].reshape(n)) <= self.settings.max_abs_cost
        self.transitions_rejected += int(n - ok.sum())
        if not np.any(ok):
            return 0
        self.buffer.add_batch(**{k: v[ok] for k, v in batch.items()})
        self.transitions_seen += int(ok.sum())
        return int(ok.sum())

    def ready(self) -> bool:
        return len(self.buffer) >= self.settings.min_transitions

    def update(self, should_stop: Optional[Callable[[], bool]] = None) -> Dict[str, float]:
        """One critic update (K minibatches) if enough data is stored; {} otherwise.
        ``should_stop``: asked before every minibatch (see :meth:`CriticTrainer.update`)."""
        if not self.ready():
            return {}
        if not self.normalization_fitted and 0 < self.settings.fit_normalization_at <= len(self.buffer):
            self.trainer.fit_input_normalization(self.buffer)
            self.normalization_fitted = True
        return self.trainer.update(self.buffer, should_stop)

    def export(self, path: Optional[str | os.PathLike] = None) -> bytes:
        """The Polyak target network as an ONNX critic bundle (version increments). A structured
        critic is exported as its equivalent plain MLP (same bundle contract, native evaluator)."""
        tr = self.trainer
        if not isinstance(tr.target, LeadValueMLP):
            return tr.export_target(path, robot=self.robot)
        from dmpc_core.critics.export import bundle_bytes, write_bytes_atomic

        data = bundle_bytes(tr.target.plain(), discount=tr.settings.discount, version=tr.exports + 1,
                            training_step=tr.gradient_steps, robot=self.robot)
        if path is not None:
            write_bytes_atomic(path, data)
        tr.exports += 1
        return data

    def save(self, path: str | os.PathLike, extra: Optional[dict] = None) -> None:
        """Atomic checkpoint: networks, optimiser, counters, RNG, replay buffer, ``extra``."""
        meta = {"normalization_fitted": self.normalization_fitted, "transitions_seen": self.transitions_seen,
                "transitions_rejected": self.transitions_rejected}
        meta.update(extra or {})
        save_checkpoint(path, self.trainer, self.buffer, extra=meta)

    def load(self, path: str | os.PathLike) -> dict:
        """Restore from :meth:`save` (raises CheckpointError with a clear message if corrupt)."""
        extra = load_checkpoint(path, self.trainer, self.buffer)
        self.normalization_fitted = bool(extra.get("normalization_fitted", False))
        self.transitions_seen = int(extra.get("transitions_seen", len(self.buffer)))
        self.transitions_rejected = int(extra.get("transitions_rejected", 0))
        return extra
