"""``dmpc train ballbot-reach`` / ``dmpc eval ballbot-reach``: Deep Value MPC on Ballbot reach.

    dmpc train ballbot-reach [--config config/ballbot_reach.yaml] [--out runs/ballbot-reach/s0] [--seed 0]
        [--resume] [--iterations N] [--mode terminal|running+terminal] [--horizon SECONDS] [--set KEY=VALUE ...]
    dmpc eval ballbot-reach [--critic runs/ballbot-reach/s0/critic.onnx] [--config ...] [--out FILE.json]

The walls experiment's machinery (:mod:`dmpc_core.experiments.ballbot_walls`: Algorithm 1,
run directory, checkpoint/resume, metrics.csv and TensorBoard scalars) on the layout of
``config/ballbot_reach.yaml``: no interior wall, target (0, 0.8), 8 evaluation starts 1.6-1.75 m
away, T = 3 s, and the goal-relative lead-point critic.
"""
from __future__ import annotations

from typing import List

from dmpc_core.agents.deep_value_mpc import DmpcConfig
from dmpc_core.experiments import ballbot_walls
from dmpc_core.experiments._common import CONFIG_DIR

NAME = "ballbot-reach"
DEFAULT_CONFIG = CONFIG_DIR / "ballbot_reach.yaml"


#: the settings dataclass the config file fills (``dmpc train ballbot-reach --help``)
SETTINGS = DmpcConfig


def load_config(path=None, overrides=None):
    """Config from YAML (default: config/ballbot_reach.yaml) with dotted overrides."""
    return ballbot_walls.load_config(path, overrides, DEFAULT_CONFIG)


def train(config, out, **kwargs):
    """:func:`dmpc_core.experiments.ballbot_walls.train` under this experiment's name."""
    return ballbot_walls.train(config, out, name=NAME, **kwargs)


def train_main(argv: List[str]) -> int:
    return ballbot_walls.train_main(argv, NAME, DEFAULT_CONFIG, __doc__)


def eval_main(argv: List[str]) -> int:
    return ballbot_walls.eval_main(argv, NAME, DEFAULT_CONFIG)
