"""Shared plumbing of the POLO / MPQ experiments: run directory, config, logging, checkpoints.

Scalars are namespaced (``train/...``, ``critic/...``, ``eval/...``, ``perf/...``) and written
to ``<out>/scalars.csv`` (long format: step, tag, value; appended on resume) and, when the
``tensorboard`` package is importable (it is pinned in requirements.txt), to TensorBoard event
files in ``<out>/tb``; without it only the CSV is written (said once on stderr).
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from pathlib import Path
from typing import Dict, Optional

import numpy as np
import torch

from dmpc_core.settings import load_yaml


def base_parser(prog: str, default_config: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog)
    p.add_argument("--config", default=default_config, help="YAML config (sections per settings dataclass)")
    p.add_argument("--out", required=True, help="run directory (created)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="continue from <out>/checkpoint.pt")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def load_config(path: str) -> Dict:
    return load_yaml(path)


class RunLogger:
    """CSV (+ optional TensorBoard) scalar logger for one run directory."""

    def __init__(self, out: Path, resume: bool) -> None:
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        path = self.out / "scalars.csv"
        new = not (resume and path.exists())
        self._f = open(path, "w" if new else "a", newline="")
        self._csv = csv.writer(self._f)
        if new:
            self._csv.writerow(["step", "tag", "value"])
        self._tb = None
        try:
            from torch.utils.tensorboard import SummaryWriter  # needs the tensorboard package

            self._tb = SummaryWriter(str(self.out / "tb"))
        except Exception:  # pragma: no cover - depends on the environment
            print("note: tensorboard not installed, logging scalars to scalars.csv only", file=sys.stderr)

    def log(self, step: int, scalars: Dict[str, float]) -> None:
        for k, v in scalars.items():
            self._csv.writerow([int(step), k, float(v)])
            if self._tb is not None:
                self._tb.add_scalar(k, float(v), int(step))
        self._f.flush()

    def close(self) -> None:
        self._f.close()
        if self._tb is not None:
            self._tb.close()


def read_scalars(path: Path) -> Dict[str, np.ndarray]:
    """{tag: array [n, 2] of (step, value)} from a scalars.csv (last value wins per step)."""
    out: Dict[str, Dict[int, float]] = {}
    with open(path) as f:
        for row in csv.DictReader(f):
            out.setdefault(row["tag"], {})[int(row["step"])] = float(row["value"])
    return {k: np.array(sorted(v.items())) for k, v in out.items()}


def to_plain(obj):
    """numpy -> torch tensors recursively (checkpoints load with weights_only=True)."""
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(obj))
    if isinstance(obj, dict):
        return {k: to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    return obj


def from_plain(obj):
    if isinstance(obj, torch.Tensor):
        return obj.numpy()
    if isinstance(obj, dict):
        return {k: from_plain(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [from_plain(v) for v in obj]
    return obj


def resume_run(ckpt: Path, agent) -> tuple:
    """Restore ``agent`` (trainer, replay buffer, loop state) from the checkpoint ``ckpt``
    written by an experiment; returns (learning curve so far, wall seconds already spent)."""
    from dmpc_core.critics.checkpoint import load_checkpoint

    extra = from_plain(load_checkpoint(ckpt, agent.trainer, agent.buffer))
    agent.load_state_dict(extra["agent"])
    return [float(c) for c in extra["curve"]], float(extra.get("wall_s", 0.0))


def save_run(ckpt: Path, agent, curve, wall_s: float) -> None:
    """Atomic checkpoint of ``agent`` (trainer, replay buffer, loop state) with the learning curve
    and the wall seconds spent so far: what :func:`resume_run` restores."""
    from dmpc_core.critics.checkpoint import save_checkpoint

    save_checkpoint(ckpt, agent.trainer, agent.buffer,
                    extra=to_plain({"agent": agent.state_dict(), "curve": curve, "wall_s": wall_s}))


def write_json(path: Path, data: Dict) -> None:
    tmp = Path(str(path) + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=float))
    os.replace(tmp, path)


def progress(total: int, initial: int, desc: str, disable: bool):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=desc, disable=disable, dynamic_ncols=True, mininterval=2.0)


__all__ = ["base_parser", "load_config", "RunLogger", "read_scalars", "to_plain", "from_plain", "write_json", "progress"]
