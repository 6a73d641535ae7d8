"""Shared plumbing of the experiments: run directory, config, logging, checkpoints, user errors.

User-facing problems (a bad config, a corrupted or missing checkpoint, a missing input file) are
raised as :class:`~dmpc_core.settings.ConfigError`, :class:`~dmpc_core.critics.checkpoint.CheckpointError`
or :class:`CliError`; ``dmpc`` (``dmpc_core/cli.py``) prints them as one ``error: ...`` line and
exits non-zero instead of showing a traceback.

Scalars are namespaced (``train/...``, ``critic/...``, ``eval/...``, ``perf/...``) and written
to ``<out>/scalars.csv`` (long format: step, tag, value; appended on resume) and, when the
``tensorboard`` package is importable (it is pinned in requirements.txt), to TensorBoard event
files in ``<out>/tb``; without it only the CSV is written (said once on stderr).
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import os
import sys
import typing
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional

import numpy as np
import torch

from dmpc_core.settings import ConfigError, from_dict, load_yaml, parse_overrides, set_dotted

#: the repository's config/ folder (default configs of the experiments)
CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"
#: default parent of the run directories, relative to the working directory
RUNS_DIR = Path("runs")


class CliError(Exception):
    """A user-facing problem of an experiment command (missing file, nothing to resume, ...):
    ``dmpc`` prints ``error: <message>`` and exits with code 2."""


def base_parser(prog: str, default_config: str | os.PathLike, description: Optional[str] = None,
                run_leaf: str = "VARIANT_sSEED", set_example: str = "agent.mppi.horizon=16") -> argparse.ArgumentParser:
    """The options every ``dmpc train NAME`` shares; ``description`` (e.g. the module docstring)
    heads ``--help``, ``run_leaf`` names the default run directory ``runs/NAME/<run_leaf>`` and
    ``set_example`` is the ``--set`` example of the help."""
    p = argparse.ArgumentParser(prog=prog, description=description,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=str(default_config), help="YAML config (sections per settings dataclass; "
                   f"default {default_config})")
    p.add_argument("--out", default=None, help=f"run directory (created; default runs/NAME/{run_leaf})")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help=f"override any setting, e.g. --set {set_example} (VALUE is YAML)")
    p.add_argument("--resume", action="store_true",
                   help="continue from OUT/checkpoint.pt (an error if there is none)")
    p.add_argument("--stop-after", type=int, default=None, metavar="N",
                   help="stop after N steps/episodes/iterations of this call without writing the final files, as if the run "
                   "were killed; --resume continues from the last periodic checkpoint")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def load_config(path: str | os.PathLike, sets: Iterable[str] = (), sections: Optional[Iterable[str]] = None, *,
                overrides: Optional[Mapping[str, Any]] = None, schema: Optional[type] = None,
                defaults: Any = None):
    """The one config loader of the experiments: the YAML mapping of ``path`` with overrides
    applied (dotted keys), as a dict or, with ``schema``, as that settings dataclass.

    Args:
        sets: command-line ``--set KEY=VALUE`` items (VALUE is YAML; ``null`` is a value).
        sections: the allowed top-level keys (an unknown section is a ConfigError, not ignored).
        overrides: ``{"training.seed": 1}`` from dedicated options; a None value means "not given".
        schema: a settings dataclass; the result is ``settings_from(schema, data, path, defaults)``
            (value types checked, unknown keys rejected) instead of the raw mapping.
        defaults: with ``schema``, the experiment's defaults (an instance of ``schema``) for the
            keys the file leaves out.
    """
    data = load_yaml(path)
    if sections is not None:
        unknown = sorted(set(data) - set(sections))
        if unknown:
            raise ConfigError(f"{path}: unknown section(s) {unknown}; valid sections: {sorted(sections)}")
    for key, value in parse_overrides(sets).items():
        set_dotted(data, key, value, f"{path} (with --set {key})")
    for key, value in (overrides or {}).items():
        if value is not None:
            set_dotted(data, key, value, f"override {key}")
    if sections is not None:
        unknown = sorted(set(data) - set(sections))
        if unknown:
            raise ConfigError(f"{path} (with --set): unknown section(s) {unknown}; valid sections: {sorted(sections)}")
    if schema is not None:
        return settings_from(schema, data, str(path), defaults)
    return data


def _type_name(t) -> str:
    return getattr(t, "__name__", None) or str(t).replace("typing.", "")


def check_types(cls: type, data: Optional[Mapping[str, Any]], where: str) -> None:
    """Raise ConfigError if a value of the raw mapping ``data`` does not have the type its field
    of dataclass ``cls`` declares (recursing into nested dataclass sections).

    :func:`dmpc_core.settings.from_dict` rejects unknown keys but passes values through
    unchecked, so ``steps: "100"`` or ``learning_rate: 1e-3`` (a *string* in YAML 1.1) would only
    fail deep inside a run. Rules: float takes int or float, int takes int, bool takes bool, str
    takes str, list/tuple take a YAML list (elements checked when the annotation says), Optional
    takes null; other annotations are not checked. Unknown keys are left to ``from_dict``.
    """
    if data is None:
        return
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: expected a mapping of settings, got {type(data).__name__} {data!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for key, value in data.items():
        if key not in names:
            continue
        problem = _type_problem(hints.get(key, Any), value, _join(where, key))
        if problem:
            raise ConfigError(problem)


def _join(where: str, key: str) -> str:
    return f"{where}:{key}" if where.endswith((".yaml", ".yml")) else f"{where}.{key}"


def _type_problem(t, value, where: str) -> Optional[str]:
    if dataclasses.is_dataclass(t):
        if not isinstance(value, Mapping):
            return f"{where}: expected a section (mapping), got {type(value).__name__} {value!r}"
        try:
            check_types(t, value, where)
        except ConfigError as e:
            return str(e)
        return None
    origin, args = typing.get_origin(t), typing.get_args(t)
    if origin is typing.Union or (origin is not None and type(t).__name__ == "UnionType"):
        if value is None and type(None) in args:
            return None
        problems = [_type_problem(a, value, where) for a in args if a is not type(None)]
        return None if any(p is None for p in problems) else problems[0]
    base = origin or t
    hint = ""
    if isinstance(value, str) and base in (int, float):
        try:
            float(value)
            hint = " (YAML 1.1 reads numbers like 1e-3 as strings: write 1.0e-3)"
        except ValueError:
            pass
    if base is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif base is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif base is bool or base is str:
        ok = isinstance(value, base)
    elif base in (list, tuple, List, typing.Tuple):
        if not isinstance(value, (list, tuple)):
            return f"{where}: expected a list, got {type(value).__name__} {value!r}"
        if base is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                return f"{where}: expected a list of {len(args)} values, got {len(value)}: {value!r}"
            for i, (a, v) in enumerate(zip(args, value)):
                p = _type_problem(a, v, f"{where}[{i}]")
                if p:
                    return p
        elif args:
            for i, v in enumerate(value):
                p = _type_problem(args[0], v, f"{where}[{i}]")
                if p:
                    return p
        return None
    else:
        return None  # annotation not checked (Any, numpy arrays, ...)
    if ok:
        return None
    return f"{where}: expected {_type_name(base)}, got {type(value).__name__} {value!r}{hint}"


def settings_from(cls: type, data: Optional[Mapping[str, Any]], where: str, defaults: Any = None):
    """``from_dict`` with the value types checked first (:func:`check_types`); ``defaults`` (an
    instance of ``cls``, e.g. from the experiment's ``SETTINGS``) fills the keys ``data`` omits."""
    check_types(cls, data, where)
    return from_dict(cls, data, where, defaults)


def run_dir(out: Optional[str], name: str, leaf: str) -> Path:
    """``out`` if given, else ``runs/<name>/<leaf>`` (relative to the working directory); printed."""
    path = Path(out) if out else RUNS_DIR / name / leaf
    print(f"{name}: run directory {path}" + ("" if out else " (default; --out DIR to choose)"), flush=True)
    return path


def check_resume(out: Path, resume: bool) -> Path:
    """The checkpoint path of run directory ``out``; with ``resume`` it must exist (CliError);
    without it an existing checkpoint is about to be overwritten (said on stderr)."""
    ckpt = out / "checkpoint.pt"
    if resume and not ckpt.is_file():
        raise CliError(f"--resume: no checkpoint at {ckpt} (nothing to resume; run without --resume to start)")
    if not resume and ckpt.exists():
        print(f"note: {out} holds a checkpoint; starting a new run there overwrites it (--resume continues it)",
              file=sys.stderr)
    return ckpt


class RunLogger:
    """The one scalar logger of the experiments: ``<out>/scalars.csv`` (long format: step, tag,
    value; appended on resume, where :func:`read_scalars` keeps the last value per step) and,
    when the ``tensorboard`` package is importable and ``tensorboard`` is true, TensorBoard event
    files in ``<out>/tb``.

    Tags must be namespaced ``group/name`` (``train/``, ``critic/``, ``eval/``, ``perf/``,
    ``time/``...): TensorBoard groups its panels by that prefix, and a tag without one is a
    ValueError rather than a scalar that lands in no panel.
    """

    def __init__(self, out: Path, resume: bool = False, tensorboard: bool = True) -> None:
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        path = self.out / "scalars.csv"
        new = not (resume and path.exists())
        self._f = open(path, "w" if new else "a", newline="")
        self._csv = csv.writer(self._f)
        if new:
            self._csv.writerow(["step", "tag", "value"])
        self._tb = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter  # needs the tensorboard package

                self._tb = SummaryWriter(str(self.out / "tb"))
            except Exception:  # pragma: no cover - depends on the environment
                print("note: tensorboard not installed, logging scalars to scalars.csv only", file=sys.stderr)

    def log(self, step: int, scalars: Dict[str, float]) -> None:
        bad = [k for k in scalars if "/" not in k.strip("/")]
        if bad:
            raise ValueError(f"scalar tags must be namespaced 'group/name', got {bad}")
        for k, v in scalars.items():
            self._csv.writerow([int(step), k, float(v)])
            if self._tb is not None:
                self._tb.add_scalar(k, float(v), int(step))
        self._f.flush()
        if self._tb is not None:
            self._tb.flush()

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


def resume_run(ckpt: Path, agent, meta: Optional[Dict] = None) -> tuple:
    """The one resume path: restore ``agent`` from the checkpoint ``ckpt`` written by
    :func:`save_run`; returns (learning curve so far, wall seconds already spent).

    An agent either exposes ``trainer``, ``buffer`` and ``state_dict()/load_state_dict()``
    (its loop state travels in the checkpoint's ``extra``) or saves itself with
    ``save(path, extra=...)`` / ``load(path) -> extra``; both land in the same file format
    (:mod:`dmpc_core.critics.checkpoint`).

    Raises:
        CheckpointError: the file is corrupted/truncated, was written by another experiment,
            or (``meta``, e.g. variant and seed) by a different run than this command asks for.
    """
    from dmpc_core.critics.checkpoint import CheckpointError, load_checkpoint

    if not Path(ckpt).is_file():
        raise CliError(f"--resume: no checkpoint at {ckpt} (nothing to resume; run without --resume to start)")
    try:
        if _saves_itself(agent):
            extra = agent.load(ckpt)
            extra = extra if isinstance(extra, dict) else {}
        else:
            extra = from_plain(load_checkpoint(ckpt, agent.trainer, agent.buffer))
    except CheckpointError:
        raise
    except Exception as e:  # a hash-valid file of another experiment or configuration
        raise CheckpointError(f"checkpoint {ckpt} does not fit this experiment/config: "
                              f"{type(e).__name__}: {e}") from e
    saved = extra.get("meta") or {}
    for key, value in (meta or {}).items():
        if key in saved and saved[key] != value:
            raise CheckpointError(f"checkpoint {ckpt} was written by a run with {key}={saved[key]!r}, "
                                  f"this command asks for {key}={value!r}")
    try:
        if not _saves_itself(agent):
            agent.load_state_dict(extra["agent"])
        return [float(c) for c in extra.get("curve", [])], float(extra.get("wall_s", 0.0))
    except Exception as e:  # a checkpoint of another experiment or configuration
        raise CheckpointError(f"checkpoint {ckpt} does not fit this experiment/config: "
                              f"{type(e).__name__}: {e}") from e


def _saves_itself(agent) -> bool:
    return not hasattr(agent, "state_dict") and callable(getattr(agent, "save", None)) \
        and callable(getattr(agent, "load", None))


def save_run(ckpt: Path, agent, curve=(), wall_s: float = 0.0, meta: Optional[Dict] = None) -> None:
    """Atomic checkpoint of ``agent`` (see :func:`resume_run` for the two agent shapes) with the
    learning curve, the wall seconds spent so far and ``meta`` (what run wrote it)."""
    from dmpc_core.critics.checkpoint import save_checkpoint

    if _saves_itself(agent):
        agent.save(ckpt)
        return
    save_checkpoint(ckpt, agent.trainer, agent.buffer,
                    extra=to_plain({"agent": agent.state_dict(), "curve": list(curve), "wall_s": wall_s,
                                    "meta": dict(meta or {})}))


def read_summaries(runs: str | os.PathLike) -> Dict[str, List[dict]]:
    """``<runs>/*/summary.json`` grouped by ``variant``, each with ``_dir`` (its run directory) added;
    CliError if there are none or one is unreadable."""
    groups: Dict[str, List[dict]] = {}
    files = sorted(Path(runs).glob("*/summary.json"))
    if not files:
        raise CliError(f"no run summaries (*/summary.json) under {runs}")
    for f in files:
        try:
            d = json.loads(f.read_text())
            groups.setdefault(d["variant"], []).append(d)
            d["_dir"] = str(f.parent)
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise CliError(f"{f}: not a readable run summary ({type(e).__name__}: {e})") from None
    return groups


def write_json(path: Path, data: Dict) -> None:
    tmp = Path(str(path) + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=float))
    os.replace(tmp, path)


def stop_requested(stop_after: Optional[int], done_here: int, where: str, bar, logger: RunLogger) -> bool:
    """``--stop-after N``: True once this call has done N units of work, with the progress bar
    and the logger closed and ``stopped at <where> ...`` printed; the caller then returns, like a
    killed run, without its final files (``--resume`` continues from the last checkpoint)."""
    if stop_after is None or done_here < stop_after:
        return False
    bar.close()
    logger.close()
    print(f"stopped at {where} (--stop-after); --resume continues from the last checkpoint")
    return True


def progress(total: int, initial: int, desc: str, disable: bool):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=desc, disable=disable, dynamic_ncols=True, mininterval=2.0)


def t_interval(x) -> tuple:
    """Mean and half width of the 95 % Student-t interval of the mean of x (half width nan for
    one value)."""
    from scipy import stats

    x = np.asarray(x, dtype=float)
    if x.size < 2:
        return float(x.mean()), float("nan")
    return float(x.mean()), float(stats.t.ppf(0.975, x.size - 1) * x.std(ddof=1) / np.sqrt(x.size))


def algorithm1_parser(name: str, default_config: str | os.PathLike, doc: Optional[str],
                      set_example: str) -> argparse.ArgumentParser:
    """``dmpc train NAME`` options of the Algorithm 1 experiments: :func:`base_parser` (the seed
    defaults to the config's ``training.seed``) plus ``--iterations``, ``--mode`` and ``--horizon``."""
    ap = base_parser(f"dmpc train {name}", default_config, doc, run_leaf="s<training.seed>", set_example=set_example)
    ap.set_defaults(seed=None)  # a config's training.seed holds unless --seed is given
    ap.add_argument("--iterations", type=int, default=None, help="overrides training.iterations")
    ap.add_argument("--mode", choices=["terminal", "running+terminal"], default=None, help="overrides actor.mode")
    ap.add_argument("--horizon", type=float, default=None, help="overrides actor.horizon_time [s]")
    return ap


def algorithm1_overrides(args: argparse.Namespace) -> Dict[str, Any]:
    """The dotted overrides of :func:`algorithm1_parser`'s options (None = not given)."""
    return {"training.seed": args.seed, "training.iterations": args.iterations, "actor.mode": args.mode,
            "actor.horizon_time": args.horizon}


def eval_parser(name: str, default_config: str | os.PathLike) -> argparse.ArgumentParser:
    """``dmpc eval NAME`` options of the Algorithm 1 experiments: a critic bundle, the config, the
    actor's mode and horizon, and a JSON output file."""
    ap = argparse.ArgumentParser(prog=f"dmpc eval {name}")
    ap.add_argument("--critic", default=str(RUNS_DIR / name / "s0" / "critic.onnx"),
                    help=f"critic bundle (.onnx) exported by training (default runs/{name}/s0/critic.onnx)")
    ap.add_argument("--config", default=None, help=f"YAML (default {default_config})")
    ap.add_argument("--mode", choices=["terminal", "running+terminal"], default=None)
    ap.add_argument("--horizon", type=float, default=None)
    ap.add_argument("--out", default=None, help="write the metrics as JSON here")
    return ap


def install_critic(actor, path: str | os.PathLike) -> None:
    """Read the critic bundle at ``path`` and give it to ``actor.set_critic_bundle``; CliError
    (one line) when the file cannot be read or is not a critic this actor can use."""
    critic = Path(path)
    try:
        bundle = critic.read_bytes()
    except OSError as e:
        raise CliError(f"cannot read critic bundle {critic}: {e.strerror or e}") from None
    try:
        actor.set_critic_bundle(bundle)
    except Exception as e:  # not a critic bundle / another task's critic
        raise CliError(f"{critic} is not a usable critic bundle: {type(e).__name__}: {e}") from e


def report_evaluation(result: Dict[str, Any], out: Optional[str]) -> Dict[str, Any]:
    """Print an evaluation's metrics (and the episodes' outcomes) as JSON, and write them to
    ``out`` when given; returns them."""
    metrics = {k: v for k, v in result.items() if k != "episodes"}
    metrics["outcomes"] = [e.outcome for e in result["episodes"]]
    print(json.dumps(metrics, indent=1))
    if out:
        Path(out).write_text(json.dumps(metrics, indent=1))
    return metrics


def train_iterations(agent, out: str | os.PathLike, *, iterations: int, eval_every: int, resume: bool,
                     progress_bar: bool, stop_after: Optional[int], tensorboard: bool, desc: str):
    """The training loop of the Algorithm 1 experiments (an agent with ``iteration``, ``config``,
    ``run_iteration()``, ``evaluate()``, ``bundle`` and ``save``/``load``): resume from
    ``out``/checkpoint.pt, run until ``agent.iteration == iterations``, evaluate at iteration 0,
    every ``eval_every`` iterations and at the last (0: never), and after every iteration write
    critic.onnx, the checkpoint and the scalars (``time/iteration_s``, ``time/eval_s`` and the
    agent's). ``stop_after``: stop after this many iterations of this call (a killed run);
    ``--resume`` continues it. Returns the agent."""
    import time

    import yaml

    from dmpc_core.settings import to_dict

    out = Path(out)
    ckpt = out / "checkpoint.pt"
    if resume:
        resume_run(ckpt, agent)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(yaml.safe_dump(to_dict(agent.config), sort_keys=False))
    log = RunLogger(out, resume, tensorboard)
    bar = progress(iterations, agent.iteration, desc, not progress_bar)

    def evaluation() -> Dict[str, float]:
        t1 = time.perf_counter()
        stats = {k: v for k, v in agent.evaluate().items() if k != "episodes"}
        stats["time/eval_s"] = time.perf_counter() - t1
        return stats

    done_here = 0
    try:
        if agent.iteration == 0 and eval_every > 0:
            log.log(0, evaluation())
        while agent.iteration < iterations:
            if stop_after is not None and done_here >= stop_after:
                break
            t0 = time.perf_counter()
            stats = agent.run_iteration()
            stats["time/iteration_s"] = time.perf_counter() - t0
            it = agent.iteration
            if eval_every > 0 and (it % eval_every == 0 or it == iterations):
                stats.update(evaluation())
            (out / "critic.onnx").write_bytes(agent.bundle)
            save_run(ckpt, agent)
            log.log(it, stats)
            done_here += 1
            bar.update(1)
            bar.set_postfix({k.split("/")[1]: round(v, 3) for k, v in stats.items()
                             if k in ("train/episode_cost", "eval/success_rate", "eval/mean_cost")})
    finally:
        bar.close()
        log.close()
    return agent


__all__ = ["CliError", "base_parser", "load_config", "check_types", "settings_from", "run_dir", "check_resume",
           "read_summaries", "resume_run", "save_run", "RunLogger", "read_scalars", "to_plain", "from_plain", "write_json", "progress",
           "stop_requested", "train_iterations", "algorithm1_parser", "algorithm1_overrides", "eval_parser",
           "install_critic", "report_evaluation", "t_interval"]
