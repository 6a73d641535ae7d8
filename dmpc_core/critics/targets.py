"""Regression targets for critics.

* One-step Bellman target, deep-value-mpc Eq. (11) with a terminal flag:
      y = c + gamma * V_target(tau', x', g) * (1 - done)
  ``done`` marks terminal transitions (wall hit with its penalty in c, goal reached, tau = 0)
  whose value has no continuation.
* n-step / trajectory-optimisation targets, POLO Eq. (7):
      y(s) = sum_{t<N} gamma^t c_t + gamma^N V(s_N)   (truncated at the first done)
  :func:`n_step_targets` does the arithmetic for given cost sequences; a
  :class:`TrajectoryOptimizationTargets` wraps any callable that re-plans from replayed states
  (e.g. an MPPI/SLQ solve per state) and is plugged into the trainer as its ``target_fn``.

A *target function* has the signature ``target_fn(batch, target_model) -> array`` where
``batch`` is a replay minibatch (dict of numpy arrays) and ``target_model`` the trainer's
Polyak-averaged network; it returns [B] targets, or [B, K] for an ensemble (one column per
member, POLO Eq. 7 uses member k's own value V_theta_k).
"""
from __future__ import annotations

from typing import Callable, Dict, Optional

import numpy as np
import torch

from dmpc_core.critics.networks import ValueEnsemble

TargetFn = Callable[[Dict[str, np.ndarray], torch.nn.Module], np.ndarray]


def bellman_targets(cost, next_value, done, discount: float) -> np.ndarray:
    """y = c + gamma * V(next) * (1 - done), elementwise (Eq. 11).

    Args:
        cost: [B] stage costs c(t) (already integrated over the step dt).
        next_value: [B] or [B, K] target-network values at the next state.
        done: [B] terminal flags (bool or 0/1).
        discount: gamma in (0, 1].
    """
    c = np.asarray(cost, dtype=np.float64)
    v = np.asarray(next_value, dtype=np.float64)
    d = np.asarray(done, dtype=np.float64)
    if v.ndim == 2:
        c, d = c[:, None], d[:, None]
    return c + discount * v * (1.0 - d)


@torch.no_grad()
def value_of(model: torch.nn.Module, state, goal, time_to_go, per_member: bool = False) -> np.ndarray:
    """Evaluate a value model on numpy inputs; ``per_member`` gives [B, K] for ensembles."""
    x = torch.as_tensor(np.asarray(state), dtype=torch.float64)
    ng = model.ng
    g = torch.as_tensor(np.asarray(goal), dtype=torch.float64) if ng > 0 else None
    t = torch.as_tensor(np.asarray(time_to_go), dtype=torch.float64).reshape(-1, 1)
    if isinstance(model, ValueEnsemble) and per_member:
        return model.member_values(x, g, t).numpy()
    return model(x, g, t).numpy()


def one_step_value_targets(discount: float) -> TargetFn:
    """Target function for V and ensembles: Eq. (11) with the target network at (x', tau').

    For an ensemble, member k bootstraps from its own target member (POLO Eq. 7), giving [B, K].
    """

    def target_fn(batch: Dict[str, np.ndarray], target_model: torch.nn.Module) -> np.ndarray:
        per_member = isinstance(target_model, ValueEnsemble)
        v_next = value_of(target_model, batch["next_state"], batch["goal"], batch["next_time_to_go"], per_member)
        return bellman_targets(batch["cost"], v_next, batch["done"], discount)

    return target_fn


def floored_targets(target_fn: TargetFn, floor_fn: Callable[[Dict[str, np.ndarray]], np.ndarray]) -> TargetFn:
    """``target_fn`` with every target raised to at least ``floor_fn(batch)`` ([B]; broadcast over
    an ensemble's members): y' = max(y, floor). The fixed point of the regression becomes
    max(V^pi, floor) instead of V^pi."""

    def target_fn_floored(batch: Dict[str, np.ndarray], target_model: torch.nn.Module) -> np.ndarray:
        y = np.asarray(target_fn(batch, target_model), dtype=np.float64)
        f = np.asarray(floor_fn(batch), dtype=np.float64).reshape(-1)
        if f.shape[0] != y.shape[0] or not np.all(np.isfinite(f)):
            raise ValueError(f"the floor must be {y.shape[0]} finite values")
        return np.maximum(y, f[:, None] if y.ndim == 2 else f)

    return target_fn_floored


def one_step_q_targets(discount: float, next_value_fn: Callable[..., np.ndarray]) -> TargetFn:
    """Q target y = c + gamma * V(x') * (1 - done) with V(x') supplied by the planner.

    ``next_value_fn(next_state [B, nx], goal [B, ng], target_q)`` returns [B]: in MPQ this is the
    free-energy / soft value of the next state computed with the target Q as terminal cost
    (or min over sampled actions for a plain Q-learning baseline).
    """

    def target_fn(batch: Dict[str, np.ndarray], target_model: torch.nn.Module) -> np.ndarray:
        v_next = np.asarray(next_value_fn(batch["next_state"], batch["goal"], target_model), dtype=np.float64)
        if v_next.shape != batch["cost"].shape:
            raise ValueError(f"next_value_fn returned shape {v_next.shape}, expected {batch['cost'].shape}")
        return bellman_targets(batch["cost"], v_next, batch["done"], discount)

    return target_fn


def n_step_targets(costs, final_value, dones, discount: float) -> np.ndarray:
    """POLO Eq. (7) arithmetic: sum_{t<N} gamma^t c_t + gamma^N V_N, stopping at the first done.

    Args:
        costs: [B, N] stage costs along the (optimised) trajectory from each start state.
        final_value: [B] or [B, K] value of the last state s_N (per member for ensembles).
        dones: [B, N] terminal flags; costs after the first done are ignored and the final
            value is dropped for that row.
        discount: gamma.
    Returns:
        [B] or [B, K] targets.
    """
    c = np.asarray(costs, dtype=np.float64)
    d = np.asarray(dones, dtype=bool)
    b, n = c.shape
    # alive[t] = no done strictly before step t (the done step's own cost counts)
    alive = np.ones((b, n), dtype=bool)
    alive[:, 1:] = ~np.cumsum(d, axis=1)[:, :-1].astype(bool)
    disc = discount ** np.arange(n)
    ret = np.sum(c * disc * alive, axis=1)
    reached_end = ~d.any(axis=1)
    v = np.asarray(final_value, dtype=np.float64)
    boot = discount**n * v
    if v.ndim == 2:
        return ret[:, None] + boot * reached_end[:, None]
    return ret + boot * reached_end


class TrajectoryOptimizationTargets:
    """POLO Eq. (7) target hook: re-plan from replayed states with the current target value.

    Args:
        plan: callable ``plan(state [B, nx], goal [B, ng], time_to_go [B], terminal_value)``
            returning ``(costs [B, N], final_state [B, nx], final_time_to_go [B], dones [B, N])``
            of the optimised N-step trajectories; ``terminal_value(x, g, tau)`` gives [B] (or
            [B, K]) values of the target model so the planner can use it as its terminal cost.
        discount: gamma.
    """

    def __init__(self, plan: Callable, discount: float) -> None:
        self.plan = plan
        self.discount = float(discount)

    def __call__(self, batch: Dict[str, np.ndarray], target_model: torch.nn.Module) -> np.ndarray:
        per_member = isinstance(target_model, ValueEnsemble)

        def terminal_value(x, g, tau):
            return value_of(target_model, x, g, tau, per_member=False)

        costs, x_n, tau_n, dones = self.plan(batch["state"], batch["goal"], batch["time_to_go"], terminal_value)
        v_n = value_of(target_model, x_n, batch["goal"], tau_n, per_member)
        return n_step_targets(costs, v_n, dones, self.discount)


def supervised_targets(fn: Callable[[Dict[str, np.ndarray]], np.ndarray]) -> TargetFn:
    """Wrap a known function of the batch (e.g. a Monte-Carlo return, or V = |x|^2 in tests)."""

    def target_fn(batch: Dict[str, np.ndarray], target_model: Optional[torch.nn.Module] = None) -> np.ndarray:
        return np.asarray(fn(batch), dtype=np.float64)

    return target_fn


__all__ = [
    "TargetFn", "bellman_targets", "value_of", "one_step_value_targets", "one_step_q_targets",
    "n_step_targets", "TrajectoryOptimizationTargets", "supervised_targets",
]
