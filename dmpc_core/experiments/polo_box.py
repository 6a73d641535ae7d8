"""POLO exploration in the open box (POLO Fig. 2, left world); same code as ``polo-maze``.

    dmpc train polo-box --config config/polo_box.yaml --out runs/polo_box/polo_s0 --seed 0 [--variant ...]
    dmpc eval polo-box --runs runs/polo_box --out docs/results/polo_box.png
"""
from __future__ import annotations

from typing import List

from dmpc_core.experiments import polo_maze


def train_main(argv: List[str]) -> int:
    return polo_maze.train_main(argv, default_config="config/polo_box.yaml", name="polo-box")


def eval_main(argv: List[str]) -> int:
    return polo_maze.eval_main(argv, name="polo-box")
