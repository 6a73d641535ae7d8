"""``dmpc train ballbot-walls`` / ``dmpc eval ballbot-walls``: Deep Value MPC on the Ballbot.

    dmpc train ballbot-walls [--config config/ballbot_walls.yaml] [--out runs/ballbot-walls/s0] [--seed 0]
        [--resume] [--iterations N] [--mode terminal|running+terminal] [--horizon SECONDS] [--set KEY=VALUE ...]
    dmpc eval ballbot-walls [--critic runs/ballbot-walls/s0/critic.onnx] [--config ...] [--out FILE.json]

The run directory holds ``config.yaml`` (the resolved settings), ``checkpoint.pt`` (learner with
replay buffer, loop counter and RNG states; written atomically after every iteration),
``critic.onnx`` (the latest exported critic), ``metrics.csv`` and TensorBoard events
(scalars namespaced ``train/``, ``critic/``, ``eval/``, ``time/``). ``--resume`` continues
from ``checkpoint.pt`` exactly as if the run had not been interrupted (an error if there is none).
The default run directory is ``runs/ballbot-walls/s<training.seed>`` under the working directory.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import time
from pathlib import Path
from typing import Dict, List, Optional

import yaml

from dmpc_core.agents.deep_value_mpc import DeepValueMpc, DmpcConfig, evaluate
from dmpc_core.critics.checkpoint import CheckpointError
from dmpc_core.experiments._common import CONFIG_DIR, RUNS_DIR, CliError, check_resume, check_types, run_dir
from dmpc_core.settings import from_dict, load_yaml, parse_overrides, set_dotted, to_dict

NAME = "ballbot-walls"
DEFAULT_CONFIG = CONFIG_DIR / "ballbot_walls.yaml"


def load_config(path: Optional[str], overrides: Optional[Dict] = None, default=DEFAULT_CONFIG) -> DmpcConfig:
    """Config from YAML (default: ``default``, config/ballbot_walls.yaml) with dotted overrides
    ``{"training.seed": 1}``."""
    p = Path(path) if path else Path(default)
    data = load_yaml(p)
    for key, value in (overrides or {}).items():
        if value is not None:
            set_dotted(data, key, value, f"override {key}")
    check_types(DmpcConfig, data, str(p))
    return from_dict(DmpcConfig, data, str(p))


class MetricsLog:
    """CSV (one row per iteration, columns grow as needed) + TensorBoard scalars."""

    def __init__(self, out: Path, tensorboard: bool = True):
        self.path = out / "metrics.csv"
        self.rows: List[Dict] = []
        if self.path.exists():
            with open(self.path, newline="") as f:
                self.rows = [dict(r) for r in csv.DictReader(f)]
        self.writer = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.writer = SummaryWriter(str(out / "tb"))
            except Exception:  # tensorboard missing: CSV only
                self.writer = None

    def log(self, iteration: int, scalars: Dict[str, float]) -> None:
        # a resumed run overwrites rows of iterations it repeats
        self.rows = [r for r in self.rows if int(float(r["iteration"])) < iteration]
        row = {"iteration": iteration, **{k: float(v) for k, v in scalars.items()}}
        self.rows.append(row)
        keys: List[str] = []
        for r in self.rows:
            keys += [k for k in r if k not in keys]
        tmp = self.path.with_suffix(".csv.tmp")
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=keys)
            w.writeheader()
            w.writerows(self.rows)
        os.replace(tmp, self.path)
        if self.writer is not None:
            for k, v in scalars.items():
                self.writer.add_scalar(k, float(v), iteration)
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def train(config: DmpcConfig, out: str | os.PathLike, resume: bool = False, progress: bool = True,
          stop_after: Optional[int] = None, tensorboard: bool = True, name: str = NAME) -> DeepValueMpc:
    """Run Algorithm 1 for ``config.training.iterations`` iterations, checkpointing each one.

    Args:
        stop_after: stop after this many iterations of *this call* (simulates a killed run).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt = out / "checkpoint.pt"
    agent = DeepValueMpc(config)
    if resume:
        if not ckpt.exists():
            raise FileNotFoundError(f"--resume: no checkpoint at {ckpt}")
        try:
            agent.load(ckpt)
        except CheckpointError:
            raise
        except Exception as e:  # hash-valid file of another experiment / config
            raise CheckpointError(f"checkpoint {ckpt} does not fit this experiment/config: "
                                  f"{type(e).__name__}: {e}") from e
    (out / "config.yaml").write_text(yaml.safe_dump(to_dict(agent.config), sort_keys=False))
    log = MetricsLog(out, tensorboard)
    tr = agent.config.training
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=tr.iterations, initial=agent.iteration, desc=f"dmpc {name}", unit="it")
    done_here = 0
    try:
        if agent.iteration == 0 and tr.eval_every > 0:
            log.log(0, {k: v for k, v in agent.evaluate().items() if k != "episodes"})
        while agent.iteration < tr.iterations:
            if stop_after is not None and done_here >= stop_after:
                break
            t0 = time.perf_counter()
            stats = agent.run_iteration()
            stats["time/iteration_s"] = time.perf_counter() - t0
            it = agent.iteration
            if tr.eval_every > 0 and (it % tr.eval_every == 0 or it == tr.iterations):
                t1 = time.perf_counter()
                stats.update({k: v for k, v in agent.evaluate().items() if k != "episodes"})
                stats["time/eval_s"] = time.perf_counter() - t1
            (out / "critic.onnx").write_bytes(agent.bundle)
            agent.save(ckpt)
            log.log(it, stats)
            done_here += 1
            if bar is not None:
                bar.update(1)
                bar.set_postfix({k.split("/")[1]: round(v, 3) for k, v in stats.items()
                                 if k in ("train/episode_cost", "eval/success_rate", "eval/mean_cost")})
    finally:
        if bar is not None:
            bar.close()
        log.close()
    return agent


def train_main(argv: List[str], name: str = NAME, default_config=DEFAULT_CONFIG, doc: str = __doc__) -> int:
    ap = argparse.ArgumentParser(prog=f"dmpc train {name}", description=doc,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default=None, help=f"YAML (default {default_config})")
    ap.add_argument("--out", default=None, help=f"run directory (default runs/{name}/s<seed>)")
    ap.add_argument("--seed", type=int, default=None, help="overrides training.seed")
    ap.add_argument("--iterations", type=int, default=None, help="overrides training.iterations")
    ap.add_argument("--mode", choices=["terminal", "running+terminal"], default=None, help="overrides actor.mode")
    ap.add_argument("--horizon", type=float, default=None, help="overrides actor.horizon_time [s]")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override any setting, e.g. --set actor.r=0.5 --set 'task.walls=[]' (VALUE is YAML)")
    ap.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt (an error if there is none)")
    ap.add_argument("--stop-after", type=int, default=None, metavar="N",
                    help="stop after N iterations of this call (checkpointed; --resume continues)")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    overrides = parse_overrides(args.set)
    overrides.update({k: v for k, v in {"training.seed": args.seed, "training.iterations": args.iterations,
                                        "actor.mode": args.mode, "actor.horizon_time": args.horizon}.items()
                      if v is not None})
    cfg = load_config(args.config, overrides, default_config)  # ConfigError: `dmpc` prints it as one line
    out = run_dir(args.out, name, f"s{cfg.training.seed}")
    check_resume(out, args.resume)
    agent = train(cfg, out, resume=args.resume, progress=not args.no_progress, stop_after=args.stop_after,
                  name=name)
    print(json.dumps({"iterations": agent.iteration, "out": str(out)}))
    return 0


def eval_main(argv: List[str], name: str = NAME, default_config=DEFAULT_CONFIG) -> int:
    ap = argparse.ArgumentParser(prog=f"dmpc eval {name}")
    ap.add_argument("--critic", default=str(RUNS_DIR / name / "s0" / "critic.onnx"),
                    help=f"critic bundle (.onnx) exported by training (default runs/{name}/s0/critic.onnx)")
    ap.add_argument("--config", default=None, help=f"YAML (default {default_config})")
    ap.add_argument("--mode", choices=["terminal", "running+terminal"], default=None)
    ap.add_argument("--horizon", type=float, default=None)
    ap.add_argument("--out", default=None, help="write the metrics as JSON here")
    args = ap.parse_args(argv)
    cfg = load_config(args.config, {"actor.mode": args.mode, "actor.horizon_time": args.horizon}, default_config)
    from dmpc_core.agents.deep_value_mpc import Actor
    from dmpc_core.tasks.ballbot_walls import WallsTask

    critic = Path(args.critic)
    try:
        bundle = critic.read_bytes()
    except OSError as e:
        raise CliError(f"cannot read critic bundle {critic}: {e.strerror or e}") from None
    task = WallsTask(cfg.task)
    actor = Actor(task, cfg.actor)
    try:
        actor.set_critic_bundle(bundle)
    except Exception as e:  # not a critic bundle / another task's critic
        raise CliError(f"{critic} is not a usable critic bundle: {type(e).__name__}: {e}") from e
    res = evaluate(task, actor)
    metrics = {k: v for k, v in res.items() if k != "episodes"}
    metrics["outcomes"] = [e.outcome for e in res["episodes"]]
    print(json.dumps(metrics, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(metrics, indent=1))
    return 0
