"""``dmpc train ballbot-reach`` / ``dmpc eval ballbot-reach``: Deep Value MPC on Ballbot reach.

    dmpc train ballbot-reach [--config config/ballbot_reach.yaml] [--out runs/ballbot-reach/s0] [--seed 0]
        [--resume] [--iterations N] [--mode terminal|running+terminal] [--horizon SECONDS] [--set KEY=VALUE ...]
    dmpc eval ballbot-reach [--critic runs/ballbot-reach/s0/critic.onnx] [--config ...] [--out FILE.json]

The walls experiment's machinery (:mod:`dmpc_core.experiments.ballbot_walls`: Algorithm 1,
run directory, checkpoint/resume, scalars.csv and TensorBoard scalars) on the layout of
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


def reach_settings() -> DmpcConfig:
    """The experiment's defaults, the values config/ballbot_reach.yaml lists (the file explains
    each choice): the walls experiment's (:func:`~dmpc_core.experiments.ballbot_walls.walls_settings`)
    without the interior wall, a 3 m arena, the termination cost q_f = 2 ||p(T) + 0.6 v(T) - g||,
    weaker upright terms, the goal-relative lead-point critic with a 0.6 s look-ahead, a slowly
    moving exported critic (Polyak 0.995) and a start-distance curriculum."""
    c = ballbot_walls.walls_settings()
    c.task.arena_half_size, c.task.walls, c.task.terminal_weight = 3.0, [], 2.0
    c.task.episode_time, c.training.n_step = 3.0, 60
    c.task.terminal_lead = c.learner.lead = 0.6
    c.learner.critic, c.learner.hidden, c.learner.time_to_go_scale = "lead", [12, 12, 12], 1.5
    c.learner.trainer.polyak = 0.995
    c.actor.w_tilt, c.actor.w_tilt_rate, c.actor.w_tilt_quadratic = 10.0, 2.0, 0.0
    c.training.curriculum_distance, c.training.curriculum_iterations = [0.3, 2.0], 8
    return c


#: the experiment's settings and their defaults (``dmpc train ballbot-reach --help``)
SETTINGS = reach_settings


def load_config(path=None, overrides=None, sets=()):
    """Config from YAML (default: config/ballbot_reach.yaml) with dotted overrides; keys the
    file leaves out take the values of :func:`reach_settings`."""
    return ballbot_walls.load_config(path, overrides, DEFAULT_CONFIG, reach_settings, sets)


def train(config, out, **kwargs):
    """:func:`dmpc_core.experiments.ballbot_walls.train` under this experiment's name."""
    return ballbot_walls.train(config, out, name=NAME, **kwargs)


def train_main(argv: List[str]) -> int:
    return ballbot_walls.train_main(argv, NAME, DEFAULT_CONFIG, __doc__, reach_settings)


def eval_main(argv: List[str]) -> int:
    return ballbot_walls.eval_main(argv, NAME, DEFAULT_CONFIG, reach_settings)
