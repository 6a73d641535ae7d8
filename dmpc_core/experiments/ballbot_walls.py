"""``dmpc train ballbot-walls`` / ``dmpc eval ballbot-walls``: Deep Value MPC on the Ballbot.

    dmpc train ballbot-walls [--config config/ballbot_walls.yaml] [--out runs/ballbot-walls/s0] [--seed 0]
        [--resume] [--iterations N] [--mode terminal|running+terminal] [--horizon SECONDS] [--set KEY=VALUE ...]
    dmpc eval ballbot-walls [--critic runs/ballbot-walls/s0/critic.onnx] [--config ...] [--out FILE.json]

The run directory holds ``config.yaml`` (the resolved settings), ``checkpoint.pt`` (learner with
replay buffer, loop counter and RNG states; written atomically after every iteration),
``critic.onnx`` (the latest exported critic), ``scalars.csv`` and TensorBoard events (the
experiments' :class:`~dmpc_core.experiments._common.RunLogger`; scalars namespaced ``train/``,
``critic/``, ``eval/``, ``time/``, step = iteration). ``--resume`` continues from
``checkpoint.pt`` exactly as if the run had not been interrupted (an error if there is none).
The default run directory is ``runs/ballbot-walls/s<training.seed>`` under the working directory.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable, List, Optional

from dmpc_core.agents.deep_value_mpc import DeepValueMpc, DmpcConfig, evaluate
from dmpc_core.experiments import _common
from dmpc_core.experiments._common import CONFIG_DIR, check_resume, run_dir

NAME = "ballbot-walls"
DEFAULT_CONFIG = CONFIG_DIR / "ballbot_walls.yaml"


def walls_settings() -> DmpcConfig:
    """The experiment's defaults, the values config/ballbot_walls.yaml lists (the file explains
    each choice): ``DmpcConfig``'s defaults with the 0.8 m interior wall in front of the target
    (0, 0.8), 8 evaluation starts on y = -0.8, T = 5 s (tools/ballbot_walls_known_value.py),
    the Eq. (4) termination cost q_f = 2 ||p(T) + 0.3 v(T) - g|| on the critic's lead point, the
    actor's tilt/torque barriers and weak upright terms, the goal-relative lead-point critic
    (look-ahead 0.3 s, 64 x 64 x 64), a slowly moving exported critic (Polyak 0.995), and
    Algorithm 1 with full-return targets over 30 iterations of 8 episodes from a zero-output
    critic with a start-distance curriculum."""
    c = DmpcConfig()
    task, actor, training, learner = c.task, c.actor, c.training, c.learner
    task.walls = [[-0.4, 0.0, 0.4, 0.0]]
    task.target = [0.0, 0.8]
    task.eval_starts = [[x, -0.8] for x in (-0.7, -0.5, -0.3, -0.1, 0.1, 0.3, 0.5, 0.7)]
    task.episode_time, task.terminal_weight = 5.0, 2.0
    task.terminal_lead = learner.lead = 0.3
    actor.r, actor.w_tilt, actor.w_tilt_rate, actor.w_tilt_quadratic = 0.2, 10.0, 2.0, 0.0
    actor.tilt_limit, actor.torque_limit, actor.barrier_mu, actor.barrier_delta = 0.3, 30.0, 1.0, 0.1
    learner.critic, learner.hidden, learner.time_to_go_scale = "lead", [64, 64, 64], 2.5
    learner.trainer.polyak, learner.trainer.batches_per_update = 0.995, 200
    training.iterations, training.episodes_per_iteration, training.n_step = 30, 8, 100
    training.zero_init_output, training.input_normalization = True, "task"
    training.curriculum_distance, training.curriculum_iterations = [0.3, 2.5], 8
    return c


#: the experiment's settings and their defaults (``dmpc train ballbot-walls --help``)
SETTINGS = walls_settings


def load_config(path: Optional[str] = None, overrides: Optional[dict] = None, default=DEFAULT_CONFIG,
                settings: Callable[[], DmpcConfig] = walls_settings, sets=()) -> DmpcConfig:
    """Config from YAML (default: ``default``, config/ballbot_walls.yaml) with ``--set`` items
    ``sets`` and dotted overrides ``{"training.seed": 1}`` (None = not given); keys the file
    leaves out take the values of ``settings()`` (the experiment's defaults)."""
    p = Path(path) if path else Path(default)
    return _common.load_config(p, sets, overrides=overrides, schema=DmpcConfig, defaults=settings())


def train(config: DmpcConfig, out: str | os.PathLike, resume: bool = False, progress: bool = True,
          stop_after: Optional[int] = None, tensorboard: bool = True, name: str = NAME) -> DeepValueMpc:
    """Run Algorithm 1 for ``config.training.iterations`` iterations, checkpointing each one.

    Args:
        stop_after: stop after this many iterations of *this call* (simulates a killed run).
    Raises:
        CliError: ``resume`` without a checkpoint in ``out``.
        CheckpointError: the checkpoint is corrupted or does not fit this config.
    """
    tr = config.training
    return _common.train_iterations(DeepValueMpc(config), out, iterations=tr.iterations, eval_every=tr.eval_every,
                                    resume=resume, progress_bar=progress, stop_after=stop_after,
                                    tensorboard=tensorboard, desc=f"dmpc {name}")


def train_main(argv: List[str], name: str = NAME, default_config=DEFAULT_CONFIG, doc: str = __doc__,
               settings: Callable[[], DmpcConfig] = walls_settings) -> int:
    args = _common.algorithm1_parser(name, default_config, doc, "actor.r=0.5 --set 'task.walls=[]'").parse_args(argv)
    cfg = load_config(args.config, _common.algorithm1_overrides(args), default_config, settings,
                      args.set)  # ConfigError: one line
    out = run_dir(args.out, name, f"s{cfg.training.seed}")
    check_resume(out, args.resume)
    agent = train(cfg, out, resume=args.resume, progress=not args.no_progress, stop_after=args.stop_after,
                  name=name)
    print(json.dumps({"iterations": agent.iteration, "out": str(out)}))
    return 0


def eval_main(argv: List[str], name: str = NAME, default_config=DEFAULT_CONFIG,
              settings: Callable[[], DmpcConfig] = walls_settings) -> int:
    args = _common.eval_parser(name, default_config).parse_args(argv)
    cfg = load_config(args.config, {"actor.mode": args.mode, "actor.horizon_time": args.horizon}, default_config,
                      settings)
    from dmpc_core.agents.deep_value_mpc import Actor
    from dmpc_core.tasks.ballbot_walls import WallsTask

    task = WallsTask(cfg.task)
    actor = Actor(task, cfg.actor)
    _common.install_critic(actor, args.critic)
    _common.report_evaluation(evaluate(task, actor), args.out)
    return 0
