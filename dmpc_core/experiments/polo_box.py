"""POLO exploration in the open box (POLO Fig. 2, left world); same code as ``polo-maze``.

    dmpc train polo-box [--config config/polo_box.yaml] [--out runs/polo-box/polo_s0] [--seed 0] [--variant ...]
    dmpc eval polo-box [--runs runs/polo-box] [--out runs/polo-box/polo-box.png]
"""
from __future__ import annotations

from typing import List

from dmpc_core.experiments import polo_maze
from dmpc_core.experiments._common import CONFIG_DIR
from dmpc_core.tasks.point_mass_worlds import PointMassWorldSettings

DEFAULT_CONFIG = CONFIG_DIR / "polo_box.yaml"


def box_world() -> PointMassWorldSettings:
    """world.* of polo-box: polo-maze's world settings in the open box."""
    s = polo_maze.maze_world()
    s.world = "box"
    return s


#: the config file's sections and each one's defaults (``dmpc train polo-box --help``)
SETTINGS = {**polo_maze.SETTINGS, "world": box_world}


def train_main(argv: List[str]) -> int:
    return polo_maze.train_main(argv, default_config=DEFAULT_CONFIG, name="polo-box", settings=SETTINGS)


def eval_main(argv: List[str]) -> int:
    return polo_maze.eval_main(argv, name="polo-box")
