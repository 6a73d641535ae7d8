"""Atomic, integrity-checked checkpoints of a critic learner.

File layout: ``MAGIC`` (10 bytes) + 64 hex chars sha256 of the payload + ``\\n`` + 20-digit
payload length + ``\\n`` + payload, the payload being ``torch.save`` of a dict with the trainer
state (model, target, optimizer, counters, sampling generator), the replay buffer (as
tensors), the torch RNG state and user extras. Written to a temp file then ``os.replace``d, so
a crash leaves the previous checkpoint intact. Loading checks magic, length and hash before
unpickling (with ``weights_only=True``: a checkpoint cannot run code) and raises
:class:`CheckpointError` naming the problem.
"""
from __future__ import annotations

import hashlib
import io
import os
from typing import Dict, Optional, Union

import numpy as np
import torch

from dmpc_core.critics.export import write_bytes_atomic
from dmpc_core.critics.replay import ReplayBuffer
from dmpc_core.critics.training import CriticTrainer

MAGIC = b"DMPCCKPT1\n"
_HEADER = len(MAGIC) + 64 + 1 + 20 + 1


class CheckpointError(ValueError):
    """A checkpoint file is missing, truncated, corrupted or does not fit the learner."""


def _replay_to_tensors(buffer: ReplayBuffer) -> Dict:
    out = {}
    for k, v in buffer.state_dict().items():
        out[k] = torch.from_numpy(np.ascontiguousarray(v)) if isinstance(v, np.ndarray) else int(v)
    return out


def save_checkpoint(
    path: Union[str, os.PathLike],
    trainer: CriticTrainer,
    buffer: Optional[ReplayBuffer] = None,
    extra: Optional[Dict] = None,
) -> None:
    """Write trainer (+ buffer, + plain-data ``extra``) atomically to ``path``."""
    state = {
        "trainer": trainer.state_dict(),
        "replay": None if buffer is None else _replay_to_tensors(buffer),
        "torch_rng": torch.get_rng_state(),
        "extra": extra or {},
    }
    payload = io.BytesIO()
    torch.save(state, payload)
    data = payload.getvalue()
    header = MAGIC + hashlib.sha256(data).hexdigest().encode() + b"\n" + f"{len(data):020d}".encode() + b"\n"
    write_bytes_atomic(path, header + data)


def load_checkpoint(
    path: Union[str, os.PathLike],
    trainer: CriticTrainer,
    buffer: Optional[ReplayBuffer] = None,
    restore_torch_rng: bool = True,
) -> Dict:
    """Restore ``trainer`` (and ``buffer``) in place from ``path``; returns ``extra``.

    Raises:
        CheckpointError: missing/truncated/corrupted file or a state that does not fit.
    """
    name = os.fspath(path)
    try:
        with open(name, "rb") as f:
            blob = f.read()
    except OSError as e:
        raise CheckpointError(f"cannot read checkpoint {name}: {e}") from e
    if len(blob) < _HEADER or not blob.startswith(MAGIC):
        raise CheckpointError(f"{name} is not a dmpc critic checkpoint (bad or missing header; truncated?)")
    digest = blob[len(MAGIC) : len(MAGIC) + 64].decode(errors="replace")
    try:
        length = int(blob[len(MAGIC) + 65 : _HEADER - 1])
    except ValueError:
        raise CheckpointError(f"checkpoint {name} has a corrupted header") from None
    data = blob[_HEADER:]
    if len(data) != length:
        raise CheckpointError(
            f"checkpoint {name} is truncated or padded: payload has {len(data)} bytes, header says {length}"
        )
    if hashlib.sha256(data).hexdigest() != digest:
        raise CheckpointError(f"checkpoint {name} is corrupted: payload sha256 does not match the header")
    try:
        state = torch.load(io.BytesIO(data), weights_only=True)
    except Exception as e:
        raise CheckpointError(f"checkpoint {name} cannot be decoded: {e}") from e
    try:
        trainer.load_state_dict(state["trainer"])
    except Exception as e:
        raise CheckpointError(f"checkpoint {name} does not fit this trainer/model: {e}") from e
    if buffer is not None:
        if state["replay"] is None:
            raise CheckpointError(f"checkpoint {name} holds no replay buffer")
        rep = {k: v.numpy() if isinstance(v, torch.Tensor) else v for k, v in state["replay"].items()}
        try:
            buffer.load_state_dict(rep)
        except Exception as e:
            raise CheckpointError(f"checkpoint {name}: replay buffer does not fit: {e}") from e
    if restore_torch_rng:
        torch.set_rng_state(state["torch_rng"])
    return state["extra"]
