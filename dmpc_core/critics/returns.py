"""n-step and full-return critic targets from a stream of one-step transitions.

The controller node streams one row per control step (``dmpc_core.control.reach_mpc.
TransitionRecorder``); ``dmpc train`` builds its rows per episode
(``dmpc_core.agents.deep_value_mpc.transitions``), with full returns as the critic's targets.
:class:`EpisodeReturns` gives the learner node the same rows: it chains arriving rows into
episodes (a row continues the chain when its state is the previous row's next state, for the
same goal, with the time-to-go counting down; a gap of at most ``max_gap`` seconds, left by a
dropped sample (the controller's safe command on a late state), is bridged with its cost
estimated at the cost rate of the row before it; positions are the first two state entries) and, when an episode ends, replaces each row's
cost by the sum of the costs of the next ``n_step`` rows:

    row k spans steps k .. j - 1, j = min(k + n_step, n):  cost = sum c_k..c_{j-1},
    next_state = s_j, next_time_to_go = tau_j, done = done of the row j - 1

so the trainer's Bellman target y = cost + V(next) (1 - done) is the n-step return (the full
return when n_step >= the episode's steps). An episode that ends with ``done`` (tau reached 0;
its last cost includes the termination cost q_f) has no bootstrap; one that is cut (reset,
fall, a new goal) bootstraps from the value at its last state. The tau = 0 row that follows a
finished episode (state = next state, target q_f) passes through unchanged.

Undiscounted (gamma = 1) only, like ``dmpc train``'s targets: the learner node refuses
n_step > 1 with another discount.
"""
from __future__ import annotations

from typing import Dict, List, Optional

import numpy as np

from dmpc_core.critics.fields import TRANSITION_FIELDS


class EpisodeReturns:
    """Stream of one-step rows in, n-step rows out (module doc).

    Args:
        n_step: steps summed per row (1: rows pass through unchanged).
        max_episode_rows: a chain this long is emitted (bootstrapped) even without an end.
        max_gap: [s] longest time-to-go gap bridged between two rows of one episode.
        max_jump: [m] largest position change across such a gap (more: a reset, a new episode).
    """

    def __init__(self, n_step: int, max_episode_rows: int = 100_000, max_gap: float = 0.2, max_jump: float = 0.25):
        if int(n_step) != n_step or n_step < 1:
            raise ValueError(f"n_step must be an integer >= 1, got {n_step!r}")
        if max_episode_rows < 1:
            raise ValueError("max_episode_rows must be >= 1")
        self.n_step = int(n_step)
        self.max_episode_rows = int(max_episode_rows)
        self.max_gap, self.max_jump = float(max_gap), float(max_jump)
        self.gaps_bridged = 0
        self._chain: List[Dict[str, np.ndarray]] = []
        self.episodes_finished = 0
        self.episodes_cut = 0

    @property
    def pending(self) -> int:
        """Rows held in the episode being assembled."""
        return len(self._chain)

    def add(self, batch: Dict[str, np.ndarray]) -> Optional[Dict[str, np.ndarray]]:
        """Take a batch (arrays with a leading axis, in arrival order); return the rows that are
        complete now (same fields: (m, width) for state, goal, next_state, (m,) for the
        scalars), or None when none is."""
        n = len(np.asarray(batch["cost"]).reshape(-1))
        out: List[Dict[str, np.ndarray]] = []
        for i in range(n):
            row = {k: np.atleast_1d(np.asarray(batch[k], float)[i]) for k in TRANSITION_FIELDS}
            if self.n_step == 1:
                out.append(row)
                continue
            if self._is_anchor(row):
                out.extend(self._flush(cut=True))
                out.append(row)
                continue
            if self._chain and not self._continues(row):
                out.extend(self._flush(cut=True))
            self._chain.append(row)
            if row["done"][0] > 0.5:
                out.extend(self._flush(cut=False))
            elif len(self._chain) >= self.max_episode_rows:
                out.extend(self._flush(cut=True))
        if not out:
            return None
        return {k: np.stack([r[k] for r in out]) if k in ("state", "goal", "next_state")
                else np.array([r[k][0] for r in out]) for k in TRANSITION_FIELDS}

    @staticmethod
    def _is_anchor(row) -> bool:
        return (row["done"][0] > 0.5 and row["time_to_go"][0] <= 0.0 and row["next_time_to_go"][0] <= 0.0
                and np.array_equal(row["state"], row["next_state"]))

    def _continues(self, row) -> bool:
        """Whether ``row`` continues the chain; bridges a short gap (class doc) by adding its
        estimated cost to the chain's last row."""
        last = self._chain[-1]
        if not np.array_equal(row["goal"], last["goal"]):
            return False
        gap = last["next_time_to_go"][0] - row["time_to_go"][0]
        if np.array_equal(row["state"], last["next_state"]) and abs(gap) <= 1e-9:
            return True
        if not (1e-9 < gap <= self.max_gap):
            return False
        p, q = row["state"][:2], last["next_state"][:2]
        if np.hypot(*(p - q)) > self.max_jump:
            return False
        span = last["time_to_go"][0] - last["next_time_to_go"][0]
        rate = last["cost"][0] / span if span > 1e-9 else 0.0
        last["cost"] = last["cost"] + gap * rate
        last["next_state"], last["next_time_to_go"] = row["state"], row["time_to_go"]
        self.gaps_bridged += 1
        return True

    def _flush(self, cut: bool) -> List[Dict[str, np.ndarray]]:
        chain, self._chain = self._chain, []
        if not chain:
            return []
        if cut:
            self.episodes_cut += 1
        else:
            self.episodes_finished += 1
        n = len(chain)
        csum = np.concatenate([[0.0], np.cumsum([r["cost"][0] for r in chain])])
        rows = []
        for k, r in enumerate(chain):
            j = min(k + self.n_step, n)
            end = chain[j - 1]
            rows.append({"state": r["state"], "goal": r["goal"], "time_to_go": r["time_to_go"],
                         "cost": np.array([csum[j] - csum[k]]), "next_state": end["next_state"],
                         "next_time_to_go": end["next_time_to_go"], "done": end["done"]})
        return rows
