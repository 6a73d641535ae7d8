"""``dmpc train franka-obstacle`` / ``dmpc eval franka-obstacle``: Deep Value MPC on the Franka
Panda reaching round a board (:mod:`dmpc_core.tasks.franka_obstacle`).

    dmpc train franka-obstacle [--config config/franka_obstacle.yaml] [--out runs/franka-obstacle/s0] [--seed 0]
        [--resume] [--iterations N] [--mode terminal|running+terminal] [--horizon SECONDS] [--set KEY=VALUE ...]
    dmpc eval franka-obstacle [--critic runs/franka-obstacle/s0/critic.onnx] [--config ...] [--out FILE.json]

Algorithm 1 with the Panda's DMPC actor (:mod:`dmpc_core.agents.franka_dmpc`). The run directory
holds ``config.yaml``, ``checkpoint.pt`` (learner with replay buffer, loop counter and sampler
RNG; written atomically after every iteration), ``critic.onnx`` (the latest exported critic) and
``scalars.csv`` (+ TensorBoard scalars), as the Ballbot experiments.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List, Optional

from dmpc_core.agents.franka_dmpc import FrankaActor, FrankaDeepValueMpc, FrankaDmpcConfig, _TaskView, evaluate
from dmpc_core.experiments._common import (CONFIG_DIR, algorithm1_overrides, algorithm1_parser, check_resume,
                                           check_types, eval_parser, install_critic, report_evaluation, run_dir,
                                           train_iterations)
from dmpc_core.settings import from_dict, load_yaml, parse_overrides, set_dotted

NAME = "franka-obstacle"
DEFAULT_CONFIG = CONFIG_DIR / "franka_obstacle.yaml"
#: the settings dataclass the config file fills (``dmpc train franka-obstacle --help``)
SETTINGS = FrankaDmpcConfig


def load_config(path: Optional[str] = None, overrides: Optional[Dict] = None) -> FrankaDmpcConfig:
    """Config from YAML (default config/franka_obstacle.yaml) with dotted overrides."""
    p = Path(path) if path else DEFAULT_CONFIG
    data = load_yaml(p)
    for key, value in (overrides or {}).items():
        if value is not None:
            set_dotted(data, key, value, f"override {key}")
    check_types(FrankaDmpcConfig, data, str(p))
    return from_dict(FrankaDmpcConfig, data, str(p))


def train(config: FrankaDmpcConfig, out, resume: bool = False, progress: bool = True,
          stop_after: Optional[int] = None, tensorboard: bool = True) -> FrankaDeepValueMpc:
    """Algorithm 1 for ``training.iterations`` iterations, checkpointing each one
    (``_common.train_iterations``: the loop, resume and logging of every Algorithm 1 experiment).

    Raises:
        CliError: ``resume`` without a checkpoint in ``out``.
        CheckpointError: the checkpoint is corrupted or does not fit this config.
    """
    tr = config.training
    return train_iterations(FrankaDeepValueMpc(config), out, iterations=tr.iterations, eval_every=tr.eval_every,
                            resume=resume, progress_bar=progress, stop_after=stop_after,
                            tensorboard=tensorboard, desc=f"dmpc {NAME}")


def train_main(argv: List[str]) -> int:
    args = algorithm1_parser(NAME, DEFAULT_CONFIG, __doc__, "actor.r=0.01").parse_args(argv)
    overrides = parse_overrides(args.set)
    overrides.update({k: v for k, v in algorithm1_overrides(args).items() if v is not None})
    cfg = load_config(args.config, overrides)
    out = run_dir(args.out, NAME, f"s{cfg.training.seed}")
    check_resume(out, args.resume)
    agent = train(cfg, out, resume=args.resume, progress=not args.no_progress, stop_after=args.stop_after)
    print(json.dumps({"iterations": agent.iteration, "out": str(out)}))
    return 0


def eval_main(argv: List[str]) -> int:
    args = eval_parser(NAME, DEFAULT_CONFIG).parse_args(argv)
    cfg = load_config(args.config, {"actor.mode": args.mode, "actor.horizon_time": args.horizon})
    from dmpc_core.tasks.franka_obstacle import FrankaObstacleTask, ObstaclePandaPlant

    task = FrankaObstacleTask(cfg.task)
    actor = FrankaActor(task, cfg.actor)
    install_critic(actor, args.critic)
    report_evaluation(evaluate(task, _TaskView(task, cfg.training.terminal_weight), actor, ObstaclePandaPlant(cfg.task)),
                      args.out)
    return 0
