"""Validation gate and versioned store for critics swapped into a running controller.

A candidate critic (bytes from a file or a topic) passes, in order:

1. signature: :func:`dmpc_core.critics.signing.verify_and_strip` (HMAC-SHA256 when a key is set);
2. contract: :func:`dmpc_core.critics.bundle.load_bundle` with the robot's expected ``nx``/``ng``;
3. evaluator: the native ``_core.CriticMLP`` is built (single tanh value networks);
4. safety gate: on a fixed set of probe points (state, goal, time-to-go) the value, its gradient
   and Hessian are finite and ``|V| <= max_abs_value``.

Anything failing raises :class:`CriticRejected` with the reason; nothing here touches the
control path, so callers run it in a worker thread. :class:`CriticStore` keeps the active
version and the previous ones for rollback.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, List, Optional

import numpy as np

from dmpc_core.critics.bundle import CriticBundle, CriticBundleError, NativeCriticUnavailable, load_bundle
from dmpc_core.critics.signing import CriticSignatureError, verify_and_strip


class CriticRejected(ValueError):
    """A candidate critic failed the gate; the message says why."""


@dataclass
class GateSettings:
    """Attributes:
    max_abs_value: bound on |V| over the probe set (a critic predicting more is refused).
    num_probes: number of probe points.
    seed: seed of the probe set (fixed: every candidate sees the same points).
    """

    max_abs_value: float = 1.0e5
    num_probes: int = 64
    seed: int = 12345

    def validate(self) -> None:
        if not self.max_abs_value > 0 or self.num_probes < 1:
            raise ValueError("max_abs_value must be > 0 and num_probes >= 1")


@dataclass
class ProbeSet:
    """Fixed probe points: states (P, nx), goals (P, ng), time-to-go (P,)."""

    states: np.ndarray
    goals: np.ndarray
    taus: np.ndarray

    @staticmethod
    def uniform(state_scale, goal_scale, tau_max: float, n: int, seed: int) -> "ProbeSet":
        """Uniform in [-scale, scale] boxes and tau in [0, tau_max]."""
        rng = np.random.default_rng(seed)
        s = np.asarray(state_scale, float)
        g = np.asarray(goal_scale, float)
        return ProbeSet(rng.uniform(-1, 1, (n, s.size)) * s, rng.uniform(-1, 1, (n, g.size)) * g,
                        rng.uniform(0.0, tau_max, n))


@dataclass
class Candidate:
    """A critic that passed the gate."""

    bundle: CriticBundle
    critic: Any  # _core.CriticMLP
    version: int
    source: str
    max_abs_probe_value: float


def validate_candidate(blob: bytes, key: Optional[bytes], nx: int, ng: int, probes: ProbeSet,
                       settings: GateSettings, source: str = "") -> Candidate:
    """Run the whole gate on ``blob``; returns the accepted :class:`Candidate`.

    Raises:
        CriticRejected: naming the failed check.
    """
    try:
        data = verify_and_strip(blob, key)
        bundle = load_bundle(data, expected_nx=nx, expected_ng=ng)
        critic = bundle.to_native()
    except (CriticSignatureError, CriticBundleError, NativeCriticUnavailable) as e:
        raise CriticRejected(str(e)) from e
    worst = 0.0
    for x, g, tau in zip(probes.states, probes.goals, probes.taus):
        critic.set_goal(g)
        d = critic.create_data()
        critic.calc_diff(d, float(tau), x)
        parts = [np.atleast_1d(d.V), d.Vx, d.Vxx]
        if not all(np.all(np.isfinite(p)) for p in parts):
            raise CriticRejected(f"critic output is not finite at probe state {np.round(x, 3).tolist()}")
        worst = max(worst, float(abs(d.V)))
    if worst > settings.max_abs_value:
        raise CriticRejected(f"critic predicts |V| = {worst:.3g} > bound {settings.max_abs_value:.3g} on the probe set")
    return Candidate(bundle, critic, int(bundle.version), source, worst)


@dataclass
class CriticStore:
    """Active critic plus history for rollback (thread-safe).

    ``install`` makes a candidate active and pushes the previous one on the history;
    ``rollback`` re-activates the most recent previous one.
    """

    history_size: int = 5
    active: Optional[Candidate] = None
    history: List[Candidate] = field(default_factory=list)
    swaps: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    def install(self, c: Candidate) -> Optional[Candidate]:
        with self._lock:
            prev = self.active
            if prev is not None:
                self.history.append(prev)
                del self.history[: max(0, len(self.history) - self.history_size)]
            self.active = c
            self.swaps += 1
            return prev

    def rollback(self) -> Optional[Candidate]:
        """The re-activated previous critic, or None (nothing to roll back to)."""
        with self._lock:
            if not self.history:
                return None
            self.active = self.history.pop()
            self.swaps += 1
            return self.active
