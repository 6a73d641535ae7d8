"""A trained MDGPS global policy as a runtime controller, with the interface of the MPC controllers
(``update(t, x)`` / ``control(t, x)``, ``policy``, ``is_ok``), so that a tracking node can run it in
place of SLQ or MPPI. The policy's Gaussian noise is off: the command is the network mean mu_theta(o),
clipped to the actuator limits. There is nothing to re-plan: ``update`` only checks the state.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from dmpc_core.policies.gaussian_mlp import GaussianMlpPolicy, GaussianMlpSettings


@dataclass
class GlobalPolicyUpdate:
    """Outcome of :meth:`GlobalPolicyController.update`: status "ok" or "non_finite" (bad state)."""

    status: str
    solve_time: float
    message: str = ""


class GlobalPolicyController:
    """Noise-free global policy u = clip(mu_theta(obs(x)), u_min, u_max).

    Args:
        policy: the trained network (e.g. from :meth:`from_checkpoint`).
        u_min, u_max: actuator limits (nu,) or None.
        obs_fn: state -> observation map the policy was trained with (default: the state).
        u_safe: command returned for a non-finite state or output (default zeros).
    """

    name = "mdgps_global_policy"
    OK_STATUSES = ("ok",)

    def __init__(self, policy: GaussianMlpPolicy, u_min=None, u_max=None,
                 obs_fn: Optional[Callable[[np.ndarray], np.ndarray]] = None, u_safe=None) -> None:
        self.net = policy
        self.nu = policy.act_dim
        self.u_min = None if u_min is None else np.asarray(u_min, float)
        self.u_max = None if u_max is None else np.asarray(u_max, float)
        self.obs_fn = obs_fn or (lambda x: x)
        self.u_safe = np.zeros(self.nu) if u_safe is None else np.asarray(u_safe, float)
        self.last_result: Optional[GlobalPolicyUpdate] = None
        self.num_updates = 0

    @classmethod
    def from_checkpoint(cls, path: str | Path, obs_dim: int, act_dim: int,
                        settings: Optional[GaussianMlpSettings] = None, **kw) -> "GlobalPolicyController":
        """Load the global policy of a ``dmpc train mdgps-*`` checkpoint (``<run>/checkpoint.pt``).
        Raises CheckpointError for a missing, corrupted or mismatched file."""
        from dmpc_core.critics.checkpoint import load_checkpoint

        policy = GaussianMlpPolicy(obs_dim, act_dim, settings)
        load_checkpoint(path, policy, None, restore_torch_rng=False)
        return cls(policy, **kw)

    @property
    def policy(self) -> GaussianMlpPolicy:
        return self.net

    def is_ok(self, result) -> bool:
        return result.status in self.OK_STATUSES

    def update(self, t: float, x: np.ndarray) -> GlobalPolicyUpdate:
        tic = time.perf_counter()
        ok = np.all(np.isfinite(np.asarray(x, float)))
        self.last_result = GlobalPolicyUpdate("ok" if ok else "non_finite", time.perf_counter() - tic,
                                              "" if ok else "state is not finite")
        self.num_updates += 1
        return self.last_result

    def control(self, t: float, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, float)
        if not np.all(np.isfinite(x)):
            return self.u_safe.copy()
        u = self.net.mean(np.asarray(self.obs_fn(x[None]), float))[0]
        if not np.all(np.isfinite(u)):
            return self.u_safe.copy()
        if self.u_min is not None or self.u_max is not None:
            u = np.clip(u, self.u_min, self.u_max)
        return u
