"""`dmpc train` / `dmpc eval` from the command line:
default run directories, --resume after an interrupted run gives the uninterrupted result,
--resume without a checkpoint, corrupted checkpoints and bad configs end in one `error: ...`
line with a non-zero exit code (no traceback), for POLO, MPQ and the Ballbot walls experiment.

Tiny seeded budgets through --set (a few POLO steps, 1 s MPQ episodes); the commands run
in-process through ``dmpc_core.cli.main`` (one subprocess test checks the real entry point).
"""
from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from dmpc_core.cli import main
from dmpc_core.critics.checkpoint import _HEADER
from dmpc_core.experiments._common import check_types, read_scalars

ROOT = Path(__file__).resolve().parents[2]

POLO_TINY = ["--set", "agent.mppi.num_samples=16", "--set", "agent.mppi.horizon=8", "--set", "agent.gradient_steps=4",
             "--set", "agent.target_samples=8", "--set", "agent.target_horizon=4", "--set", "agent.num_members=2",
             "--set", "run.checkpoint_every=16", "--no-progress"]
MPQ_TINY = ["--set", "agent.task.episode_seconds=1.0", "--set", "agent.minibatches=5", "--set", "agent.batch_size=16",
            "--set", "agent.hidden=[16, 16]", "--set", "run.checkpoint_every=2", "--no-progress"]


def dmpc(capsys, *argv) -> tuple:
    """Run ``dmpc ARGV`` in-process; returns (exit code, stdout, stderr)."""
    capsys.readouterr()
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def assert_one_line_error(err: str, *fragments: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith("note: ")]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    for f in fragments:
        assert f in lines[0], (f, lines[0])
    return lines[0]


def checkpoint_state(path: Path) -> dict:
    """The payload of a dmpc checkpoint (after the integrity header)."""
    return torch.load(io.BytesIO(path.read_bytes()[_HEADER:]), weights_only=True)


def assert_same_learning_state(a: Path, b: Path) -> None:
    """Replay buffer, trainer (model, target, optimizer) and RNG state of two checkpoints agree."""
    sa, sb = checkpoint_state(a), checkpoint_state(b)

    def walk(x, y, where):
        if isinstance(x, torch.Tensor):
            assert isinstance(y, torch.Tensor) and x.shape == y.shape, where
            assert torch.equal(x, y), where
        elif isinstance(x, dict):
            assert set(x) == set(y), where
            for k in x:
                walk(x[k], y[k], f"{where}.{k}")
        elif isinstance(x, (list, tuple)):
            assert len(x) == len(y), where
            for i, (u, v) in enumerate(zip(x, y)):
                walk(u, v, f"{where}[{i}]")
        else:
            assert x == y, (where, x, y)

    assert int(sa["replay"]["size"]) > 0
    walk(sa["replay"], sb["replay"], "replay")
    walk(sa["trainer"], sb["trainer"], "trainer")
    walk(sa["torch_rng"], sb["torch_rng"], "torch_rng")
    walk(sa["extra"]["curve"], sb["extra"]["curve"], "curve")


def learning_scalars(path: Path) -> dict:
    """scalars.csv without the timing tags (perf/..., time/..., ..._ms_per_step)."""
    return {k: v for k, v in read_scalars(path).items()
            if not k.startswith(("perf/", "time/")) and not k.endswith("_ms_per_step")}


def assert_same_scalars(a: Path, b: Path) -> None:
    sa, sb = learning_scalars(a), learning_scalars(b)
    assert set(sa) == set(sb) and ("train/coverage" in sa or "train/episode_cost" in sa)
    for k in sa:
        np.testing.assert_array_equal(sa[k], sb[k], err_msg=k)


# ---------------------------------------------------------------------------------------------
# resume after an interrupted run
def test_polo_resume_after_stop_equals_uninterrupted_run(tmp_path, capsys):
    args = ["train", "polo-maze", *POLO_TINY, "--steps", 48, "--seed", 3]
    assert dmpc(capsys, *args, "--out", tmp_path / "full")[0] == 0
    code, out, _ = dmpc(capsys, *args, "--out", tmp_path / "part", "--stop-after", 24)
    assert code == 0 and "stopped at step 24" in out
    assert not (tmp_path / "part" / "summary.json").exists()  # as if killed: no final files
    code, out, _ = dmpc(capsys, *args, "--out", tmp_path / "part", "--resume")
    assert code == 0 and "resumed at step 16" in out  # the last periodic checkpoint before the stop
    full, part = tmp_path / "full", tmp_path / "part"
    a, b = json.loads((full / "summary.json").read_text()), json.loads((part / "summary.json").read_text())
    assert len(a["coverage"]) == 48 // 10 + 1 and a["coverage"] == b["coverage"]
    for f in ("value_map.npy", "visited.npy"):
        np.testing.assert_array_equal(np.load(full / f), np.load(part / f), err_msg=f)
    assert np.ptp(np.load(full / "value_map.npy")) > 0
    assert_same_learning_state(full / "checkpoint.pt", part / "checkpoint.pt")
    assert_same_scalars(full / "scalars.csv", part / "scalars.csv")


def test_franka_obstacle_resume_after_stop_equals_uninterrupted_run(tmp_path, capsys):
    """The Algorithm 1 loop shared with the Ballbot (``_common.train_iterations``) on the Panda:
    a run stopped after one iteration and resumed ends with the uninterrupted run's critic."""
    args = ["train", "franka-obstacle", "--iterations", 2, "--set", "training.episodes_per_iteration=1",
            "--set", "training.eval_every=0", "--set", "task.episode_time=0.2", "--no-progress"]
    assert dmpc(capsys, *args, "--out", tmp_path / "full")[0] == 0
    assert dmpc(capsys, *args, "--out", tmp_path / "part", "--stop-after", 1)[0] == 0
    assert len(read_scalars(tmp_path / "part" / "scalars.csv")["train/episode_cost"]) == 1
    code, out, _ = dmpc(capsys, *args, "--out", tmp_path / "part", "--resume")
    assert code == 0 and json.loads(out.strip().splitlines()[-1])["iterations"] == 2
    assert (tmp_path / "full" / "critic.onnx").read_bytes() == (tmp_path / "part" / "critic.onnx").read_bytes()
    assert_same_scalars(tmp_path / "full" / "scalars.csv", tmp_path / "part" / "scalars.csv")


def test_mpq_resume_after_stop_equals_uninterrupted_run(tmp_path, capsys):
    args = ["train", "mpq-pendulum", *MPQ_TINY, "--episodes", 4, "--seed", 2]
    assert dmpc(capsys, *args, "--out", tmp_path / "full")[0] == 0
    code, out, _ = dmpc(capsys, *args, "--out", tmp_path / "part", "--stop-after", 3)
    assert code == 0 and "stopped at episode 3" in out
    code, out, _ = dmpc(capsys, *args, "--out", tmp_path / "part", "--resume")
    assert code == 0 and "resumed at episode 2" in out
    full, part = tmp_path / "full", tmp_path / "part"
    a, b = json.loads((full / "summary.json").read_text()), json.loads((part / "summary.json").read_text())
    assert len(a["episode_cost"]) == 4 and a["episode_cost"] == b["episode_cost"]
    assert_same_learning_state(full / "checkpoint.pt", part / "checkpoint.pt")
    assert_same_scalars(full / "scalars.csv", part / "scalars.csv")


@pytest.mark.slow
def test_polo_resume_after_sigkill_equals_uninterrupted_run(tmp_path, capsys):
    """A real `dmpc train polo-maze` process killed (SIGKILL) after its first checkpoint, resumed."""
    args = ["train", "polo-maze", *POLO_TINY, "--steps", 160, "--seed", 4]
    part = tmp_path / "part"
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""), OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-m", "dmpc_core.cli", *map(str, args), "--out", str(part)],
                            env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while not (part / "checkpoint.pt").exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it was killed"
    assert not (part / "summary.json").exists()
    code, out, _ = dmpc(capsys, *args, "--out", part, "--resume")
    assert code == 0 and "resumed at step" in out
    assert dmpc(capsys, *args, "--out", tmp_path / "full")[0] == 0
    a, b = json.loads((tmp_path / "full" / "summary.json").read_text()), json.loads((part / "summary.json").read_text())
    assert a["coverage"] == b["coverage"]
    np.testing.assert_array_equal(np.load(tmp_path / "full" / "value_map.npy"), np.load(part / "value_map.npy"))
    assert_same_learning_state(tmp_path / "full" / "checkpoint.pt", part / "checkpoint.pt")


# ---------------------------------------------------------------------------------------------
# corrupted checkpoints
def _corrupt(path: Path, how: str) -> None:
    blob = bytearray(path.read_bytes())
    if how == "flip":
        blob[len(blob) // 2] ^= 0x01
    else:
        blob = blob[: len(blob) // 2]
    path.write_bytes(bytes(blob))


@pytest.mark.parametrize("how, says", [("flip", "corrupted"), ("truncate", "truncated")])
@pytest.mark.parametrize("experiment, budget", [("polo-maze", [*POLO_TINY, "--steps", 16]),
                                                ("mpq-pendulum", [*MPQ_TINY, "--episodes", 1])])
def test_corrupted_checkpoint_is_one_clear_error(tmp_path, capsys, experiment, budget, how, says):
    out = tmp_path / "run"
    assert dmpc(capsys, "train", experiment, *budget, "--out", out)[0] == 0
    ckpt = out / "checkpoint.pt"
    _corrupt(ckpt, how)
    before = ckpt.read_bytes()
    code, _, err = dmpc(capsys, "train", experiment, *budget, "--steps" if experiment == "polo-maze" else "--episodes",
                        32 if experiment == "polo-maze" else 2, "--out", out, "--resume")
    assert code == 1
    assert_one_line_error(err, str(ckpt), says)
    assert ckpt.read_bytes() == before  # nothing was overwritten


def test_ballbot_walls_corrupted_or_foreign_checkpoint_is_one_clear_error(tmp_path, capsys):
    out = tmp_path / "bw"
    assert dmpc(capsys, "train", "polo-maze", *POLO_TINY, "--steps", 16, "--out", tmp_path / "polo")[0] == 0
    polo_ckpt = (tmp_path / "polo" / "checkpoint.pt").read_bytes()
    out.mkdir()
    # a hash-valid checkpoint of another experiment
    (out / "checkpoint.pt").write_bytes(polo_ckpt)
    code, _, err = dmpc(capsys, "train", "ballbot-walls", "--out", out, "--resume", "--no-progress")
    assert code == 1
    assert_one_line_error(err, str(out / "checkpoint.pt"), "does not fit")
    (out / "checkpoint.pt").write_bytes(polo_ckpt[: len(polo_ckpt) - 100])
    code, _, err = dmpc(capsys, "train", "ballbot-walls", "--out", out, "--resume", "--no-progress")
    assert code == 1
    assert_one_line_error(err, str(out / "checkpoint.pt"), "truncated")


def test_resume_refuses_a_checkpoint_of_another_variant_or_seed(tmp_path, capsys):
    out = tmp_path / "run"
    assert dmpc(capsys, "train", "polo-maze", *POLO_TINY, "--steps", 16, "--seed", 1, "--out", out)[0] == 0
    code, _, err = dmpc(capsys, "train", "polo-maze", *POLO_TINY, "--steps", 32, "--seed", 2, "--out", out, "--resume")
    assert code == 1
    assert_one_line_error(err, str(out / "checkpoint.pt"), "seed=1", "seed=2")
    code, _, err = dmpc(capsys, "train", "polo-maze", *POLO_TINY, "--steps", 32, "--seed", 1, "--variant", "greedy",
                        "--out", out, "--resume")
    assert code == 1
    assert_one_line_error(err, "variant='polo'", "variant='greedy'")


# ---------------------------------------------------------------------------------------------
# --resume without a checkpoint, default run directories
@pytest.mark.parametrize("argv, where", [
    (["polo-maze"], "runs/polo-maze/polo_s0/checkpoint.pt"),
    (["polo-box", "--variant", "greedy", "--seed", "3"], "runs/polo-box/greedy_s3/checkpoint.pt"),
    (["mpq-pendulum", "--variant", "softq", "--seed", "2"], "runs/mpq-pendulum/softq_s2/checkpoint.pt"),
    (["ballbot-walls", "--seed", "7"], "runs/ballbot-walls/s7/checkpoint.pt"),
    (["franka-obstacle", "--seed", "2"], "runs/franka-obstacle/s2/checkpoint.pt"),
    (["polo-maze", "--out", "elsewhere"], "elsewhere/checkpoint.pt"),
])
def test_resume_without_a_checkpoint_is_an_error(tmp_path, capsys, monkeypatch, argv, where):
    monkeypatch.chdir(tmp_path)
    code, _, err = dmpc(capsys, "train", *argv, "--resume", "--no-progress")
    assert code == 2
    assert_one_line_error(err, "--resume", where)
    assert not (tmp_path / where).parent.exists()  # nothing started


def test_random_variant_has_nothing_to_resume(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = dmpc(capsys, "train", "polo-maze", "--variant", "random", "--resume")
    assert code == 2
    assert_one_line_error(err, "random variant keeps no checkpoint")


def test_default_run_directories_train_and_eval(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, _ = dmpc(capsys, "train", "polo-maze", *POLO_TINY, "--steps", 16, "--seed", 5)
    assert code == 0 and "run directory runs/polo-maze/polo_s5 (default" in out
    run = tmp_path / "runs" / "polo-maze" / "polo_s5"
    assert json.loads((run / "summary.json").read_text())["seed"] == 5
    assert (run / "checkpoint.pt").is_file() and (run / "value_map.npy").is_file()
    assert dmpc(capsys, "train", "polo-maze", "--variant", "random", "--steps", 20, "--no-progress")[0] == 0
    assert (tmp_path / "runs" / "polo-maze" / "random_s0" / "summary.json").is_file()
    code, out, _ = dmpc(capsys, "eval", "polo-maze")  # defaults: runs/polo-maze -> runs/polo-maze/polo-maze.png
    assert code == 0 and (tmp_path / "runs" / "polo-maze" / "polo-maze.png").stat().st_size > 0
    assert "| POLO H=8 | 1 |" in out and "| random per-step exploration | 1 |" in out
    # and a default run continues with --resume
    code, out, _ = dmpc(capsys, "train", "polo-maze", *POLO_TINY, "--steps", 32, "--seed", 5, "--resume")
    assert code == 0 and "resumed at step 16" in out
    assert len(json.loads((run / "summary.json").read_text())["coverage"]) == 32 // 10 + 1

    code, out, _ = dmpc(capsys, "train", "mpq-pendulum", *MPQ_TINY, "--episodes", 1, "--seed", 1)
    assert code == 0 and "run directory runs/mpq-pendulum/mpq_s1 (default" in out
    assert (tmp_path / "runs" / "mpq-pendulum" / "mpq_s1" / "summary.json").is_file()
    assert dmpc(capsys, "eval", "mpq-pendulum")[0] == 0
    assert (tmp_path / "runs" / "mpq-pendulum" / "mpq-pendulum.png").is_file()


def test_ballbot_walls_documented_command_needs_no_out(tmp_path, capsys, monkeypatch):
    """`dmpc train ballbot-walls --config config/ballbot_walls.yaml` (the documented command)
    starts in runs/ballbot-walls/s0; stopped before the first iteration here (--stop-after 0)."""
    monkeypatch.chdir(tmp_path)
    code, out, _ = dmpc(capsys, "train", "ballbot-walls", "--config", ROOT / "config" / "ballbot_walls.yaml",
                        "--set", "training.eval_every=0", "--stop-after", 0, "--no-progress")
    assert code == 0 and "run directory runs/ballbot-walls/s0 (default" in out
    assert json.loads(out.strip().splitlines()[-1]) == {"iterations": 0, "out": "runs/ballbot-walls/s0"}
    assert (tmp_path / "runs" / "ballbot-walls" / "s0" / "config.yaml").is_file()


# ---------------------------------------------------------------------------------------------
# bad configs
BAD_CONFIG_KEYS = {  # experiment: (config file, a section, an int key, a float key)
    "polo-maze": ("polo_maze.yaml", "agent", "agent.batch_size", "agent.kappa"),
    "polo-box": ("polo_box.yaml", "run", "run.steps", "agent.learning_rate"),
    "mpq-pendulum": ("mpq_pendulum.yaml", "agent.mppi", "agent.mppi.horizon", "agent.mppi.lambda_"),
    "ballbot-walls": ("ballbot_walls.yaml", "training", "training.iterations", "training.velocity_scale"),
    "mbrl-pendulum": ("mbrl_pendulum.yaml", "agent.model", "agent.model.gradient_steps", "agent.model.learning_rate"),
    "mbrl-ballbot": ("mbrl_ballbot.yaml", "agent.model", "agent.random_transitions", "agent.exploration_std"),
}


@pytest.mark.parametrize("experiment", sorted(BAD_CONFIG_KEYS))
@pytest.mark.parametrize("setting, says", [
    ("{section}.no_such_key=1", "unknown key(s) ['no_such_key']"),
    ("{int_key}=many", "{int_key}: expected int, got str 'many'"),
    ("{int_key}=2.5", "{int_key}: expected int, got float 2.5"),
    ("{float_key}=1e-3", "{float_key}: expected float, got str '1e-3' (YAML 1.1 reads numbers like 1e-3 as strings"),
    ("{float_key}=[1.0]", "{float_key}: expected float, got list [1.0]"),
    ("nonsense.x=1", "unknown"),
])
def test_bad_config_is_one_clear_error(tmp_path, capsys, monkeypatch, experiment, setting, says):
    monkeypatch.chdir(tmp_path)
    config, section, int_key, float_key = BAD_CONFIG_KEYS[experiment]
    fmt = dict(section=section, int_key=int_key, float_key=float_key)
    code, _, err = dmpc(capsys, "train", experiment, "--set", setting.format(**fmt), "--no-progress")
    assert code == 2
    assert_one_line_error(err, config, says.format(**fmt))
    assert not (tmp_path / "runs").exists()


def test_bad_config_file_names_the_file(tmp_path, capsys):
    bad = tmp_path / "typo.yaml"
    bad.write_text((ROOT / "config" / "mpq_pendulum.yaml").read_text().replace("minibatches:", "minibatchez:"))
    code, _, err = dmpc(capsys, "train", "mpq-pendulum", "--config", bad, "--out", tmp_path / "r")
    assert code == 2
    assert_one_line_error(err, f"{bad}:agent", "minibatchez")
    bad.write_text("agent: [1, 2\n")
    code, _, err = dmpc(capsys, "train", "polo-maze", "--config", bad, "--out", tmp_path / "r")
    assert code == 2
    assert_one_line_error(err, str(bad), "not valid YAML")
    code, _, err = dmpc(capsys, "train", "ballbot-walls", "--config", tmp_path / "missing.yaml", "--out", tmp_path / "r")
    assert code == 2
    assert_one_line_error(err, "config file not found", "missing.yaml")
    bad.write_text("world:\n  start: [0.0]\n")
    code, _, err = dmpc(capsys, "train", "polo-box", "--config", bad, "--out", tmp_path / "r")
    assert code == 2
    assert_one_line_error(err, f"{bad}:world.start", "expected a list of 2 values")


def test_shipped_configs_pass_the_type_check():
    from dmpc_core.agents.deep_value_mpc import DmpcConfig
    from dmpc_core.agents.mpq import MpqSettings
    from dmpc_core.agents.polo import PoloSettings
    from dmpc_core.experiments.mpq_pendulum import MpqRunSettings
    from dmpc_core.experiments.polo_maze import PoloRunSettings
    from dmpc_core.settings import ConfigError, load_yaml
    from dmpc_core.tasks.point_mass_worlds import PointMassWorldSettings

    for name in ("polo_maze", "polo_box"):
        data = load_yaml(ROOT / "config" / f"{name}.yaml")
        check_types(PointMassWorldSettings, data["world"], "world")
        check_types(PoloSettings, data["agent"], "agent")
        check_types(PoloRunSettings, data["run"], "run")
    data = load_yaml(ROOT / "config" / "mpq_pendulum.yaml")
    check_types(MpqSettings, data["agent"], "agent")
    check_types(MpqRunSettings, data["run"], "run")
    check_types(DmpcConfig, load_yaml(ROOT / "config" / "ballbot_walls.yaml"), "ballbot_walls.yaml")
    # and the check does reject: bool is not an int, a section must be a mapping
    with pytest.raises(ConfigError, match="expected int, got bool"):
        check_types(PoloRunSettings, {"steps": True}, "run")
    with pytest.raises(ConfigError, match="expected a section"):
        check_types(MpqSettings, {"mppi": 3}, "agent")


# ---------------------------------------------------------------------------------------------
# dmpc eval
def test_eval_errors_are_one_clear_line(tmp_path, capsys):
    code, _, err = dmpc(capsys, "eval", "ballbot-walls", "--critic", tmp_path / "none.onnx")
    assert code == 2
    assert_one_line_error(err, "cannot read critic bundle", "none.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not an onnx file" * 10)
    code, _, err = dmpc(capsys, "eval", "ballbot-walls", "--critic", junk)
    assert code == 2
    assert_one_line_error(err, str(junk), "not a usable critic bundle")
    code, _, err = dmpc(capsys, "eval", "mpq-pendulum", "--runs", tmp_path / "nothing")
    assert code == 2
    assert_one_line_error(err, "no run summaries", "nothing")
    (tmp_path / "runs" / "a").mkdir(parents=True)
    (tmp_path / "runs" / "a" / "summary.json").write_text('{"variant": "polo", "cover')
    code, _, err = dmpc(capsys, "eval", "polo-maze", "--runs", tmp_path / "runs", "--out", tmp_path / "x.png")
    assert code == 2
    assert_one_line_error(err, str(tmp_path / "runs" / "a" / "summary.json"), "not a readable run summary")


def test_console_entry_point_prints_one_line_and_exits_nonzero(tmp_path):
    """The real process: `python -m dmpc_core.cli` (what the `dmpc` console script calls)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    res = subprocess.run([sys.executable, "-m", "dmpc_core.cli", "train", "polo-maze", "--resume"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 2
    assert_one_line_error(res.stderr, "--resume: no checkpoint at runs/polo-maze/polo_s0/checkpoint.pt")


def test_checkpoint_of_another_configuration_is_one_short_line(tmp_path, capsys):
    """A hash-valid checkpoint whose networks do not match the config (2 vs 3 ensemble members):
    torch lists every missing key; the CLI line stays short and names the file."""
    out = tmp_path / "run"
    assert dmpc(capsys, "train", "polo-maze", *POLO_TINY, "--steps", 16, "--out", out)[0] == 0
    code, _, err = dmpc(capsys, "train", "polo-maze", *POLO_TINY, "--set", "agent.num_members=3", "--steps", 32,
                        "--out", out, "--resume")
    assert code == 1
    line = assert_one_line_error(err, str(out / "checkpoint.pt"), "does not fit")
    assert len(line) < 800
