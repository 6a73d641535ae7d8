"""POLO exploration in the open box (POLO Fig. 2, left world); same code as ``polo-maze``.

    dmpc train polo-box [--config config/polo_box.yaml] [--out runs/polo-box/polo_s0] [--seed 0] [--variant ...]
    dmpc eval polo-box [--runs runs/polo-box] [--out runs/polo-box/polo-box.png]
"""
from __future__ import annotations

from typing import List

from dmpc_core.experiments import polo_maze
from dmpc_core.experiments._common import CONFIG_DIR

DEFAULT_CONFIG = CONFIG_DIR / "polo_box.yaml"


def train_main(argv: List[str]) -> int:
    return polo_maze.train_main(argv, default_config=DEFAULT_CONFIG, name="polo-box")


def eval_main(argv: List[str]) -> int:
    return polo_maze.eval_main(argv, name="polo-box")
