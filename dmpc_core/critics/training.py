"""Critic training: Adam with weight decay, Polyak target network, K minibatches of N.

One :meth:`CriticTrainer.update` (deep-value-mpc Sec. 5 "Critic Implementation"):

    repeat K times:
        sample N transitions uniformly from the replay buffer
        y = target_fn(batch, target_net)                       (Eq. 11 by default, no gradient)
        ensembles: y_k += N(0, sigma^2) per member (POLO Eq. 5, optional)
        loss = mean (y - V_theta(tau, x, g))^2                  (Eq. 12)
        Adam step with L2 weight decay, gradient norm clipped
        target <- polyak * target + (1 - polyak) * online       (Polyak averaging)

The actor only ever receives the Polyak-averaged ``trainer.target`` (export that one).
Sampling uses the trainer's own ``numpy.random.Generator`` so a resumed run draws the same
minibatches (see ``checkpoint.py``).
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Callable, Dict, Optional

import numpy as np
import torch

from dmpc_core.critics.networks import QMLP, ValueEnsemble, ValueMLP
from dmpc_core.critics.replay import ReplayBuffer
from dmpc_core.critics.targets import TargetFn, one_step_value_targets


@dataclass
class CriticTrainerSettings:
    """Critic optimisation settings.

    Attributes:
        learning_rate: Adam step size.
        weight_decay: L2 coefficient (coupled, as ``torch.optim.Adam(weight_decay=...)``;
            POLO Eq. 5's (sigma^2 / lambda) ||theta||^2 term; the paper notes it smooths V).
        polyak: target <- polyak * target + (1 - polyak) * online after every gradient step.
        grad_clip_norm: max global gradient norm (<= 0 or inf disables clipping).
        batches_per_update: K minibatches per :meth:`CriticTrainer.update`.
        batch_size: N transitions per minibatch.
        discount: gamma for the default one-step Bellman targets.
        target_noise_std: sigma of the per-member target noise for ensembles (POLO Eq. 5).
        seed: seed of the trainer's sampling generator.
        torch_threads: if > 0, ``torch.set_num_threads`` (process-wide) when the trainer is
            built. Small critics train fastest on one thread, and extra intra-op threads
            thrash badly when the MPC and other processes share the cores (measured 2 ms vs
            66 ms per step for a 32x32 net on a loaded 2-core machine). 0 keeps torch's default.
    """

    learning_rate: float = 1e-3
    weight_decay: float = 1e-5
    polyak: float = 0.995
    grad_clip_norm: float = 10.0
    batches_per_update: int = 10
    batch_size: int = 128
    discount: float = 0.99
    target_noise_std: float = 0.0
    seed: int = 0
    torch_threads: int = 1


@torch.no_grad()
def polyak_update(target: torch.nn.Module, online: torch.nn.Module, polyak: float) -> None:
    """theta_target <- polyak * theta_target + (1 - polyak) * theta_online; buffers are copied.

    Frozen parameters (ensemble priors) are identical in both and stay so.
    """
    if not 0.0 <= polyak <= 1.0:
        raise ValueError(f"polyak must be in [0, 1], got {polyak}")
    for pt, p in zip(target.parameters(), online.parameters()):
        pt.mul_(polyak).add_(p, alpha=1.0 - polyak)
    for bt, b in zip(target.buffers(), online.buffers()):
        bt.copy_(b)


class CriticTrainer:
    """Trainer for :class:`ValueMLP`, :class:`ValueEnsemble` and :class:`QMLP`.

    Args:
        model: the online network (trained in place).
        settings: :class:`CriticTrainerSettings`.
        target_fn: ``target_fn(batch, target_model) -> [B]`` (or [B, K] for ensembles);
            default: one-step Bellman targets (Eq. 11) for value models. Q models need one
            (see :func:`targets.one_step_q_targets`).
    """

    def __init__(self, model: torch.nn.Module, settings: Optional[CriticTrainerSettings] = None,
                 target_fn: Optional[TargetFn] = None) -> None:
        self.settings = copy.deepcopy(settings or CriticTrainerSettings())
        s = self.settings
        if s.batches_per_update < 1 or s.batch_size < 1:
            raise ValueError("batches_per_update and batch_size must be >= 1")
        if not isinstance(model, (ValueMLP, ValueEnsemble, QMLP)):
            raise TypeError(f"unsupported critic model {type(model).__name__}")
        if target_fn is None:
            if isinstance(model, QMLP):
                raise ValueError("a Q critic needs a target_fn (see targets.one_step_q_targets)")
            target_fn = one_step_value_targets(s.discount)
        if s.torch_threads > 0:
            torch.set_num_threads(int(s.torch_threads))
        self.model = model
        self.target = copy.deepcopy(model)
        self.target.requires_grad_(False)
        self.target_fn = target_fn
        self.optimizer = torch.optim.Adam(
            [p for p in model.parameters() if p.requires_grad], lr=s.learning_rate, weight_decay=s.weight_decay
        )
        self.rng = np.random.default_rng(s.seed)
        self.gradient_steps = 0
        self.updates = 0
        self.exports = 0

    # -- helpers -------------------------------------------------------------------------
    def predict(self, batch: Dict[str, np.ndarray]) -> torch.Tensor:
        """Online-network predictions on a replay batch: [B] ([B, K] for ensembles)."""
        m = self.model
        x = torch.from_numpy(batch["state"])
        g = torch.from_numpy(batch["goal"]) if m.ng > 0 else None
        if isinstance(m, QMLP):
            return m(x, torch.from_numpy(batch["action"]), g)
        t = torch.from_numpy(batch["time_to_go"]).reshape(-1, 1)
        if isinstance(m, ValueEnsemble):
            return m.member_values(x, g, t)
        return m(x, g, t)

    @torch.no_grad()
    def fit_input_normalization(self, buffer: ReplayBuffer, min_std: float = 1e-3) -> None:
        """Set input_mean/std of online and target nets from the stored inputs z."""
        d = buffer.valid()
        if len(buffer) == 0:
            raise ValueError("empty replay buffer")
        parts = [d["state"]]
        if isinstance(self.model, QMLP):
            parts.append(d["action"])
        if self.model.ng > 0:
            parts.append(d["goal"])
        if not isinstance(self.model, QMLP):
            parts.append(d["time_to_go"][:, None])
        z = np.concatenate(parts, axis=1)
        mean, std = z.mean(axis=0), np.maximum(z.std(axis=0), min_std)
        self.model.set_input_normalization(mean, std)
        self.target.set_input_normalization(mean, std)

    def compute_targets(self, batch: Dict[str, np.ndarray]) -> torch.Tensor:
        """Targets for a batch (no gradient), broadcast/noised per ensemble member."""
        y = np.asarray(self.target_fn(batch, self.target), dtype=np.float64)
        n = batch["state"].shape[0]
        if isinstance(self.model, ValueEnsemble):
            k = len(self.model.members)
            if y.ndim == 1:
                y = np.repeat(y[:, None], k, axis=1)
            if y.shape != (n, k):
                raise ValueError(f"ensemble targets must have shape [{n}, {k}], got {list(y.shape)}")
            if self.settings.target_noise_std > 0:
                y = y + self.rng.normal(0.0, self.settings.target_noise_std, size=y.shape)
        elif y.shape != (n,):
            raise ValueError(f"targets must have shape [{n}], got {list(y.shape)}")
        if not np.all(np.isfinite(y)):
            raise ValueError("non-finite critic targets")
        return torch.from_numpy(y)

    # -- training ------------------------------------------------------------------------
    def train_step(self, batch: Dict[str, np.ndarray]) -> Dict[str, float]:
        """One gradient step on one minibatch + Polyak update. Returns loss / grad norm."""
        y = self.compute_targets(batch)
        pred = self.predict(batch)
        loss = torch.mean((pred - y) ** 2)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        params = [p for p in self.model.parameters() if p.requires_grad]
        clip = self.settings.grad_clip_norm
        if clip > 0 and math.isfinite(clip):
            gnorm = float(torch.nn.utils.clip_grad_norm_(params, clip))
        else:
            gnorm = float(torch.sqrt(sum((p.grad.detach() ** 2).sum() for p in params if p.grad is not None)))
        self.optimizer.step()
        polyak_update(self.target, self.model, self.settings.polyak)
        self.gradient_steps += 1
        return {"loss": float(loss.detach()), "grad_norm": gnorm, "target_mean": float(y.mean())}

    def update(self, buffer: ReplayBuffer, should_stop: Optional[Callable[[], bool]] = None) -> Dict[str, float]:
        """K minibatch steps from ``buffer``; returns namespaced statistics.

        ``should_stop`` is asked before every minibatch: when it returns True the update ends
        there (a process being shut down waits for one gradient step, not K). An update cut
        short does not count in ``updates``; its statistics cover the steps done ({} if none)."""
        s = self.settings
        stats = []
        for _ in range(s.batches_per_update):
            if should_stop is not None and should_stop():
                break
            stats.append(self.train_step(buffer.sample(s.batch_size, self.rng)))
        if not stats:
            return {}
        if len(stats) == s.batches_per_update:
            self.updates += 1
        losses = np.array([st["loss"] for st in stats])
        return {
            "critic/loss_mean": float(losses.mean()),
            "critic/loss_last": float(losses[-1]),
            "critic/grad_norm_mean": float(np.mean([st["grad_norm"] for st in stats])),
            "critic/target_mean": float(np.mean([st["target_mean"] for st in stats])),
            "critic/gradient_steps": float(self.gradient_steps),
        }

    # -- publishing ----------------------------------------------------------------------
    def export_target(self, path=None, robot: str = "", extra_metadata=None) -> bytes:
        """Export the Polyak target network as a critic bundle; ``dmpc.version`` increments.

        Args:
            path: also write the bundle atomically to this file (None: bytes only).
            robot: ``dmpc.robot`` string.
            extra_metadata: additional string metadata.
        Returns:
            the serialized bundle (e.g. to publish on a topic).
        """
        from dmpc_core.critics.export import bundle_bytes, write_bytes_atomic

        data = bundle_bytes(
            self.target, discount=self.settings.discount, version=self.exports + 1,
            training_step=self.gradient_steps, robot=robot, extra_metadata=extra_metadata,
        )
        if path is not None:
            write_bytes_atomic(path, data)
        self.exports += 1
        return data

    # -- state ---------------------------------------------------------------------------
    def state_dict(self) -> Dict:
        """Model, target, optimizer, counters and the sampling generator state."""
        return {
            "model": self.model.state_dict(),
            "target": self.target.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "rng": self.rng.bit_generator.state,
            "gradient_steps": self.gradient_steps,
            "updates": self.updates,
            "exports": self.exports,
        }

    def load_state_dict(self, state: Dict) -> None:
        """Restore from :meth:`state_dict`."""
        self.model.load_state_dict(state["model"])
        self.target.load_state_dict(state["target"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.rng.bit_generator.state = state["rng"]
        self.gradient_steps = int(state["gradient_steps"])
        self.updates = int(state["updates"])
        self.exports = int(state["exports"])
