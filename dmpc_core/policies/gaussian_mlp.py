"""Gaussian MLP global policy of MDGPS and its S-step (MDGPS Sec. 3.1 and 6, App. B.2).

pi_theta(u | o) = N(mu_theta(o), diag(var)): mu_theta is an MLP (2 x 40 ReLU in the paper) on the
normalised observation o (which may exclude the state: blind peg), var is state-independent.

S-step (App. B.2): minimise sum_{t,i,j} KL(pi(u|x_tij) || p_i(u|x_tij)) for linear-Gaussian
teachers p_i = N(K x + k, C). With a state-independent covariance the mean term is the weighted
quadratic loss (1/2B) sum w (mu^pi - mu^p)^T C^-1 (mu^pi - mu^p), minimised by Adam on minibatches,
and the covariance has the closed form var = 1 / diag(mean C^-1). Sample weights w are normalised
to mean 1, clipped at twice their median and divided by it (cbfinn/gps policy_opt). The
observation normalisation (per-dimension mean and std, std floored at 1e-3) is computed at the
first S-step and then frozen.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional

import numpy as np
import torch
from torch import nn


@dataclass
class GaussianMlpSettings:
    """Attributes:
    hidden: widths of the hidden ReLU layers (paper: 2 x 40); [] gives a linear policy.
    learning_rate: Adam step size.
    weight_decay: Adam L2 weight decay.
    batch_size: minibatch size of the S-step.
    iterations: Adam steps per S-step.
    init_var: action variance before the first S-step.
    """

    hidden: List[int] = field(default_factory=lambda: [40, 40])
    learning_rate: float = 1e-3
    weight_decay: float = 5e-3
    batch_size: int = 25
    iterations: int = 4000
    init_var: float = 1.0

    def validate(self) -> None:
        if any(int(h) < 1 for h in self.hidden):
            raise ValueError("GaussianMlpSettings.hidden: widths must be >= 1")
        if not (self.learning_rate > 0 and self.weight_decay >= 0 and self.batch_size >= 1 and self.iterations >= 0
                and self.init_var > 0):
            raise ValueError("GaussianMlpSettings: need learning_rate > 0, weight_decay >= 0, batch_size >= 1, "
                             "iterations >= 0, init_var > 0")


class GaussianMlpPolicy:
    """The global policy and its trainer (state_dict / load_state_dict for checkpoints)."""

    def __init__(self, obs_dim: int, act_dim: int, settings: Optional[GaussianMlpSettings] = None,
                 seed: int = 0) -> None:
        self.s = settings or GaussianMlpSettings()
        self.s.validate()
        self.obs_dim, self.act_dim = int(obs_dim), int(act_dim)
        gen = torch.Generator().manual_seed(int(seed))
        layers: List[nn.Module] = []
        width = self.obs_dim
        for h in self.s.hidden:
            layers += [nn.Linear(width, int(h)), nn.ReLU()]
            width = int(h)
        layers.append(nn.Linear(width, self.act_dim))
        self.net = nn.Sequential(*layers).double()
        with torch.no_grad():  # seeded init (independent of the global torch RNG)
            for m in self.net:
                if isinstance(m, nn.Linear):
                    bound = 1.0 / np.sqrt(m.in_features)
                    m.weight.copy_(torch.empty_like(m.weight).uniform_(-bound, bound, generator=gen))
                    m.bias.copy_(torch.empty_like(m.bias).uniform_(-bound, bound, generator=gen))
        self.opt = torch.optim.Adam(self.net.parameters(), lr=self.s.learning_rate, weight_decay=self.s.weight_decay)
        self.obs_mean: Optional[np.ndarray] = None
        self.obs_scale: Optional[np.ndarray] = None
        self.var = np.full(self.act_dim, float(self.s.init_var))
        self._rng = np.random.default_rng(int(seed) + 7919)

    # ---- evaluation ----
    def _normalise(self, obs: np.ndarray) -> np.ndarray:
        if self.obs_mean is None:
            return obs
        return (obs - self.obs_mean) * self.obs_scale

    def mean(self, obs: np.ndarray) -> np.ndarray:
        """mu_theta(o) for observations (..., obs_dim)."""
        obs = np.asarray(obs, dtype=float)
        if obs.shape[-1] != self.obs_dim or not np.all(np.isfinite(obs)):
            raise ValueError(f"GaussianMlpPolicy.mean: observations must be finite with last dimension {self.obs_dim}, "
                             f"got shape {obs.shape}")
        with torch.no_grad():
            return self.net(torch.from_numpy(self._normalise(obs))).numpy()

    @property
    def cov(self) -> np.ndarray:
        return np.diag(self.var)

    # ---- S-step ----
    def train(self, obs: np.ndarray, tgt_mu: np.ndarray, tgt_prc: np.ndarray,
              tgt_wt: Optional[np.ndarray] = None) -> Dict[str, float]:
        """One S-step on M samples: obs (M, dO), target means (M, dU), precisions C^-1 (M, dU, dU),
        weights (M,) (default 1). Returns the first and last minibatch-averaged loss."""
        obs = np.asarray(obs, float)
        tgt_mu = np.asarray(tgt_mu, float)
        tgt_prc = np.asarray(tgt_prc, float)
        M = obs.shape[0]
        if obs.shape != (M, self.obs_dim) or tgt_mu.shape != (M, self.act_dim) or \
                tgt_prc.shape != (M, self.act_dim, self.act_dim) or M < 1:
            raise ValueError(f"S-step: need obs (M, {self.obs_dim}), tgt_mu (M, {self.act_dim}), "
                             f"tgt_prc (M, {self.act_dim}, {self.act_dim}); got {obs.shape}, {tgt_mu.shape}, {tgt_prc.shape}")
        if not (np.all(np.isfinite(obs)) and np.all(np.isfinite(tgt_mu)) and np.all(np.isfinite(tgt_prc))):
            raise ValueError("S-step: non-finite training data")
        w = np.ones(M) if tgt_wt is None else np.asarray(tgt_wt, float).copy()
        w *= M / np.sum(w)
        med = np.median(w[w > 1e-2])
        w = np.minimum(w, 2.0 * med) / med
        prc_w = tgt_prc * w[:, None, None]
        if self.obs_mean is None:
            self.obs_mean = obs.mean(0)
            self.obs_scale = 1.0 / np.maximum(obs.std(0), 1e-3)
        o = torch.from_numpy(self._normalise(obs))
        mu = torch.from_numpy(tgt_mu)
        prc = torch.from_numpy(prc_w)
        B = min(self.s.batch_size, M)
        first = last = float("nan")
        losses = []
        perm = self._rng.permutation(M)
        pos = 0
        for it in range(self.s.iterations):
            if pos + B > M:
                perm = self._rng.permutation(M)
                pos = 0
            idx = torch.from_numpy(perm[pos:pos + B])
            pos += B
            d = self.net(o[idx]) - mu[idx]
            loss = torch.einsum("bi,bij,bj->", d, prc[idx], d) / (2 * B)
            self.opt.zero_grad()
            loss.backward()
            self.opt.step()
            losses.append(loss.item())
        if losses:
            k = max(1, min(50, len(losses) // 10))
            first, last = float(np.mean(losses[:k])), float(np.mean(losses[-k:]))
        # closed-form covariance (App. B.2): var = 1 / diag(mean of C^-1)
        A = np.sum(tgt_prc, axis=0) / np.sum(w)
        self.var = 1.0 / np.diag(A)
        return {"loss_first": first, "loss_last": last}

    def full_loss(self, obs: np.ndarray, tgt_mu: np.ndarray, tgt_prc: np.ndarray) -> float:
        """The mean term of the S-step loss over all samples (unit weights)."""
        d = self.mean(obs) - tgt_mu
        return float(np.einsum("bi,bij,bj->", d, tgt_prc, d) / (2 * len(d)))

    # ---- checkpoints ----
    def state_dict(self) -> Dict:
        return {"net": self.net.state_dict(), "opt": self.opt.state_dict(),
                "obs_mean": None if self.obs_mean is None else torch.from_numpy(self.obs_mean),
                "obs_scale": None if self.obs_scale is None else torch.from_numpy(self.obs_scale),
                "var": torch.from_numpy(self.var), "rng": self._rng.bit_generator.state}

    def load_state_dict(self, d: Dict) -> None:
        self.net.load_state_dict(d["net"])
        self.opt.load_state_dict(d["opt"])
        self.obs_mean = None if d["obs_mean"] is None else np.asarray(d["obs_mean"], float)
        self.obs_scale = None if d["obs_scale"] is None else np.asarray(d["obs_scale"], float)
        self.var = np.asarray(d["var"], float)
        self._rng.bit_generator.state = d["rng"]
