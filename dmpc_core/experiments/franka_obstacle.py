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

import argparse
import json
from pathlib import Path
from typing import Dict, List, Optional

from dmpc_core.agents.franka_dmpc import FrankaActor, FrankaDeepValueMpc, FrankaDmpcConfig, _TaskView, evaluate
from dmpc_core.experiments._common import CONFIG_DIR, RUNS_DIR, CliError, check_resume, check_types, run_dir
from dmpc_core.experiments._common import train_iterations
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
    ap = argparse.ArgumentParser(prog=f"dmpc train {NAME}", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default=None, help=f"YAML (default {DEFAULT_CONFIG})")
    ap.add_argument("--out", default=None, help=f"run directory (default runs/{NAME}/s<seed>)")
    ap.add_argument("--seed", type=int, default=None, help="overrides training.seed")
    ap.add_argument("--iterations", type=int, default=None, help="overrides training.iterations")
    ap.add_argument("--mode", choices=["terminal", "running+terminal"], default=None, help="overrides actor.mode")
    ap.add_argument("--horizon", type=float, default=None, help="overrides actor.horizon_time [s]")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override any setting, e.g. --set actor.r=0.01 (VALUE is YAML)")
    ap.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt (an error if there is none)")
    ap.add_argument("--stop-after", type=int, default=None, metavar="N",
                    help="stop after N iterations of this call (checkpointed; --resume continues)")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    overrides = parse_overrides(args.set)
    overrides.update({k: v for k, v in {"training.seed": args.seed, "training.iterations": args.iterations,
                                        "actor.mode": args.mode, "actor.horizon_time": args.horizon}.items()
                      if v is not None})
    cfg = load_config(args.config, overrides)
    out = run_dir(args.out, NAME, f"s{cfg.training.seed}")
    check_resume(out, args.resume)
    agent = train(cfg, out, resume=args.resume, progress=not args.no_progress, stop_after=args.stop_after)
    print(json.dumps({"iterations": agent.iteration, "out": str(out)}))
    return 0


def eval_main(argv: List[str]) -> int:
    ap = argparse.ArgumentParser(prog=f"dmpc eval {NAME}")
    ap.add_argument("--critic", default=str(RUNS_DIR / NAME / "s0" / "critic.onnx"),
                    help=f"critic bundle (.onnx) exported by training (default runs/{NAME}/s0/critic.onnx)")
    ap.add_argument("--config", default=None, help=f"YAML (default {DEFAULT_CONFIG})")
    ap.add_argument("--mode", choices=["terminal", "running+terminal"], default=None)
    ap.add_argument("--horizon", type=float, default=None)
    ap.add_argument("--out", default=None, help="write the metrics as JSON here")
    args = ap.parse_args(argv)
    cfg = load_config(args.config, {"actor.mode": args.mode, "actor.horizon_time": args.horizon})
    from dmpc_core.tasks.franka_obstacle import FrankaObstacleTask, ObstaclePandaPlant

    critic = Path(args.critic)
    try:
        bundle = critic.read_bytes()
    except OSError as e:
        raise CliError(f"cannot read critic bundle {critic}: {e.strerror or e}") from None
    task = FrankaObstacleTask(cfg.task)
    actor = FrankaActor(task, cfg.actor)
    try:
        actor.set_critic_bundle(bundle)
    except Exception as e:  # not a critic bundle / another task's critic
        raise CliError(f"{critic} is not a usable critic bundle: {type(e).__name__}: {e}") from e
    res = evaluate(task, _TaskView(task, cfg.training.terminal_weight), actor, ObstaclePandaPlant(cfg.task))
    metrics = {k: v for k, v in res.items() if k != "episodes"}
    metrics["outcomes"] = [e.outcome for e in res["episodes"]]
    print(json.dumps(metrics, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(metrics, indent=1))
    return 0
