"""Fixed-capacity replay buffer of critic transitions (numpy, preallocated ring).

One transition (deep-value-mpc Eq. 11; tau = time-to-go):
    state [nx], goal [ng], time_to_go, cost, next_state [nx], next_time_to_go, done
    (+ action [nu] for Q learning). ``done`` = 1 marks a terminal transition (goal reached,
    wall hit, time out at tau = 0 ...) whose target has no bootstrap term.
"""
from __future__ import annotations

import io
import os
from dataclasses import dataclass
from typing import Dict, Union

import numpy as np

from dmpc_core.critics.export import write_bytes_atomic

_FORMAT = "dmpc-replay-v1"


@dataclass(frozen=True)
class ReplaySpec:
    """Dimensions of a replay buffer.

    Attributes:
        capacity: maximum number of transitions kept (oldest overwritten first).
        nx: state width.
        ng: goal width (0: no goal).
        nu: action width (0: no action field; set > 0 for Q learning).
    """

    capacity: int
    nx: int
    ng: int = 0
    nu: int = 0

    def shapes(self) -> Dict[str, tuple]:
        """Per-transition shape of every stored field."""
        out = {
            "state": (self.nx,),
            "goal": (self.ng,),
            "time_to_go": (),
            "cost": (),
            "next_state": (self.nx,),
            "next_time_to_go": (),
            "done": (),
        }
        if self.nu > 0:
            out["action"] = (self.nu,)
        return out


class ReplayBuffer:
    """Preallocated ring buffer; sampling uses a caller-provided ``numpy.random.Generator``.

    Args:
        spec: :class:`ReplaySpec`.
    """

    def __init__(self, spec: ReplaySpec) -> None:
        if spec.capacity <= 0 or spec.nx <= 0 or spec.ng < 0 or spec.nu < 0:
            raise ValueError(f"invalid replay spec {spec}")
        self.spec = spec
        self.data: Dict[str, np.ndarray] = {
            k: np.zeros((spec.capacity, *s), dtype=np.float64) for k, s in spec.shapes().items()
        }
        self.ptr = 0  # next slot to write
        self.size = 0  # number of valid transitions
        self.total_added = 0  # transitions ever added

    @property
    def capacity(self) -> int:
        return self.spec.capacity

    def __len__(self) -> int:
        return self.size

    def add_batch(self, **fields) -> None:
        """Append B transitions; every field of the spec is required, arrays of shape [B, ...].

        Keywords: state [B, nx], goal [B, ng] (omit or None when ng == 0), time_to_go [B],
        cost [B], next_state [B, nx], next_time_to_go [B], done [B] (bool or 0/1),
        action [B, nu] (only when nu > 0).
        """
        shapes = self.spec.shapes()
        unknown = set(fields) - set(shapes)
        if unknown:
            raise ValueError(f"unknown replay fields {sorted(unknown)}; expected {sorted(shapes)}")
        if self.spec.ng == 0 and fields.get("goal") is None:
            fields["goal"] = np.zeros((np.shape(fields["state"])[0], 0))
        missing = [k for k in shapes if fields.get(k) is None]
        if missing:
            raise ValueError(f"missing replay fields {missing}")
        arrays = {}
        n = None
        for k, shape in shapes.items():
            a = np.asarray(fields[k], dtype=np.float64)
            if n is None:
                n = a.shape[0] if a.ndim > 0 else 1
            a = a.reshape((n, *shape)) if a.size == n * int(np.prod(shape, dtype=int)) else a
            if a.shape != (n, *shape):
                raise ValueError(f"replay field {k} must have shape {[n, *shape]}, got {list(np.shape(fields[k]))}")
            if not np.all(np.isfinite(a)):
                raise ValueError(f"replay field {k} contains non-finite values")
            arrays[k] = a
        if n == 0:
            return
        if n > self.capacity:  # only the newest `capacity` transitions survive
            arrays = {k: a[-self.capacity :] for k, a in arrays.items()}
            self.total_added += n - self.capacity
            n = self.capacity
        idx = (self.ptr + np.arange(n)) % self.capacity
        for k, a in arrays.items():
            self.data[k][idx] = a
        self.ptr = int((self.ptr + n) % self.capacity)
        self.size = int(min(self.size + n, self.capacity))
        self.total_added += n

    def add(self, **fields) -> None:
        """Append one transition (same keywords as :meth:`add_batch`, without the batch axis)."""
        self.add_batch(**{k: None if v is None else np.asarray(v, dtype=np.float64)[None] for k, v in fields.items()})

    def sample_indices(self, batch_size: int, rng: np.random.Generator) -> np.ndarray:
        """Uniform indices (with replacement) into the stored transitions."""
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        return rng.integers(0, self.size, size=int(batch_size))

    def get(self, indices: np.ndarray) -> Dict[str, np.ndarray]:
        """Copies of the transitions at ``indices`` (dict field -> [B, ...])."""
        return {k: v[indices] for k, v in self.data.items()}

    def sample(self, batch_size: int, rng: np.random.Generator) -> Dict[str, np.ndarray]:
        """A uniform minibatch; also returns the indices under ``"indices"``."""
        idx = self.sample_indices(batch_size, rng)
        out = self.get(idx)
        out["indices"] = idx
        return out

    def valid(self) -> Dict[str, np.ndarray]:
        """Views of all stored transitions in slot order (for POLO-style re-targeting)."""
        return {k: v[: self.size] for k, v in self.data.items()}

    # -- persistence ---------------------------------------------------------------------
    def state_dict(self) -> Dict[str, Union[np.ndarray, int]]:
        """Everything needed to restore the buffer exactly (valid slots only)."""
        out: Dict[str, Union[np.ndarray, int]] = {f"data.{k}": v[: self.size].copy() for k, v in self.data.items()}
        out.update(capacity=self.capacity, nx=self.spec.nx, ng=self.spec.ng, nu=self.spec.nu,
                   ptr=self.ptr, size=self.size, total_added=self.total_added)
        return out

    def load_state_dict(self, state: Dict) -> None:
        """Restore from :meth:`state_dict` (the spec must match)."""
        spec = ReplaySpec(int(state["capacity"]), int(state["nx"]), int(state["ng"]), int(state["nu"]))
        if spec != self.spec:
            raise ValueError(f"replay state has spec {spec}, this buffer has {self.spec}")
        size = int(state["size"])
        for k in self.data:
            arr = np.asarray(state[f"data.{k}"], dtype=np.float64)
            if arr.shape != (size, *self.data[k].shape[1:]):
                raise ValueError(f"replay state field {k} has shape {arr.shape}")
            self.data[k][:] = 0.0
            self.data[k][:size] = arr
        self.ptr, self.size, self.total_added = int(state["ptr"]), size, int(state["total_added"])

    def save(self, path: Union[str, os.PathLike]) -> None:
        """Atomically write the buffer to an ``.npz`` file."""
        buf = io.BytesIO()
        arrays = {k: np.asarray(v) for k, v in self.state_dict().items()}
        np.savez(buf, format=np.array(_FORMAT), **arrays)
        write_bytes_atomic(path, buf.getvalue())

    @classmethod
    def load(cls, path: Union[str, os.PathLike]) -> "ReplayBuffer":
        """Read a buffer written by :meth:`save`."""
        try:
            with np.load(path, allow_pickle=False) as f:
                state = {k: f[k] for k in f.files}
        except Exception as e:
            raise ValueError(f"cannot read replay buffer {os.fspath(path)}: {e}") from e
        if str(state.get("format")) != _FORMAT:
            raise ValueError(f"{os.fspath(path)} is not a dmpc replay buffer (format {state.get('format')!r})")
        spec = ReplaySpec(int(state["capacity"]), int(state["nx"]), int(state["ng"]), int(state["nu"]))
        out = cls(spec)
        out.load_state_dict(state)
        return out
