"""The shared experiment runner (dmpc_core/experiments/_common.py) and the CLI's discovery/help:
one config loader (raw sections or a settings dataclass), one scalar logger with namespaced tags,
one checkpoint/resume path for both agent shapes; `dmpc list` shows only trainable experiments
and `dmpc train [NAME] --help` works."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from dmpc_core import cli, experiments
from dmpc_core.experiments import _common
from dmpc_core.settings import ConfigError


@dataclasses.dataclass
class Inner:
    """Attributes:
    rate: a rate [Hz].
    """

    rate: float = 2.0


@dataclasses.dataclass
class Outer:
    """Attributes:
    inner: a section.
    steps: how many steps.
    """

    inner: Inner = dataclasses.field(default_factory=Inner)
    steps: int = 3


def test_load_config_raw_sections_and_schema(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("inner:\n  rate: 5.0\nsteps: 4\n")
    raw = _common.load_config(path, ["inner.rate=6"], ("inner", "steps"))
    assert raw == {"inner": {"rate": 6}, "steps": 4}
    obj = _common.load_config(path, ["steps=7"], overrides={"inner.rate": 8.0, "steps": None}, schema=Outer)
    assert obj == Outer(Inner(8.0), 7)  # a None override means "not given"
    with pytest.raises(ConfigError, match="unknown section"):
        _common.load_config(path, ["other.x=1"], ("inner", "steps"))
    with pytest.raises(ConfigError, match="expected int"):
        _common.load_config(path, ["steps=1.5"], schema=Outer)
    with pytest.raises(ConfigError, match="unknown key"):
        _common.load_config(path, ["inner.typo=1"], schema=Outer)


def test_load_config_fills_left_out_keys_from_the_experiment_defaults(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("inner: {}\n")
    mine = Outer(Inner(9.0), 11)
    assert _common.load_config(path, schema=Outer) == Outer()  # the class defaults
    assert _common.load_config(path, schema=Outer, defaults=mine) == mine
    got = _common.load_config(path, ["inner.rate=1.5"], schema=Outer, defaults=mine)
    assert got == Outer(Inner(1.5), 11)  # a nested section merges key by key
    assert mine == Outer(Inner(9.0), 11) and got.inner is not mine.inner  # the defaults are not touched
    with pytest.raises(TypeError, match="must be a Outer"):
        _common.load_config(path, schema=Outer, defaults=Inner())
    with pytest.raises(ConfigError, match="expected int"):  # the file's values are still checked
        _common.load_config(path, ["steps=x"], schema=Outer, defaults=mine)


def _plain(sections: dict) -> dict:
    """``{section: settings}`` as plain data (a YAML list and a tuple default compare equal)."""
    import json

    from dmpc_core.settings import to_dict

    return json.loads(json.dumps({section: to_dict(value) for section, value in sections.items()}))


def _resolved(name: str, config: Path) -> dict:
    """The settings experiment ``name`` runs with for ``config`` (its own loader)."""
    module = experiments.load(name)
    if name.startswith("ballbot-"):
        return _plain({"": module.load_config(str(config))})
    from dmpc_core.experiments import polo_maze

    parts = polo_maze.build(_common.load_config(config, (), polo_maze.SECTIONS), str(config), module.SETTINGS)
    return _plain(dict(zip(polo_maze.SECTIONS, parts)))


@pytest.mark.parametrize("name, keep", [("ballbot-walls", "training:\n  seed: 3\n"),
                                        ("ballbot-reach", "training:\n  seed: 3\n"),
                                        ("polo-maze", "run:\n  steps: 3\n"), ("polo-box", "run:\n  steps: 3\n")])
def test_a_config_that_leaves_keys_out_runs_with_the_experiment_defaults(tmp_path, name, keep):
    """A key a config file omits takes the experiment's declared default (what `dmpc train NAME
    --help` shows and the shipped config holds), not the dataclass's class default."""
    module = experiments.load(name)
    declared = _plain(experiments.defaults_of(module))
    short = tmp_path / "short.yaml"
    short.write_text(keep)
    got = _resolved(name, short)
    section, key = ("", "training") if name.startswith("ballbot-") else ("run", None)
    if key:
        assert got[section][key].pop("seed") == 3
        declared[section][key].pop("seed")
    else:
        assert got[section].pop("steps") == 3
        declared[section].pop("steps")
    assert got == declared
    # the shipped file: the same values
    assert _resolved(name, Path(module.DEFAULT_CONFIG)) == _plain(experiments.defaults_of(module))


def test_run_logger_csv_tensorboard_and_namespaces(tmp_path):
    log = _common.RunLogger(tmp_path, resume=False)
    log.log(1, {"train/cost": 2.0, "eval/success": 0.5})
    with pytest.raises(ValueError, match="namespaced"):
        log.log(2, {"cost": 1.0})
    log.close()
    again = _common.RunLogger(tmp_path, resume=True)  # appended; the last value per step wins
    again.log(1, {"train/cost": 3.0})
    again.close()
    sc = _common.read_scalars(tmp_path / "scalars.csv")
    assert sc["train/cost"].tolist() == [[1.0, 3.0]] and sc["eval/success"].tolist() == [[1.0, 0.5]]
    assert any((tmp_path / "tb").iterdir())
    quiet = _common.RunLogger(tmp_path / "no_tb", tensorboard=False)
    quiet.close()
    assert not (tmp_path / "no_tb" / "tb").exists()


class SelfSaving:
    """An agent that saves itself (the Deep Value MPC shape)."""

    def __init__(self) -> None:
        self.iteration = 0

    def save(self, path) -> None:
        Path(path).write_text(str(self.iteration))

    def load(self, path) -> dict:
        text = Path(path).read_text()
        self.iteration = int(text)  # ValueError on a foreign file
        return {}


def test_one_resume_path_for_self_saving_agents(tmp_path):
    ckpt = tmp_path / "checkpoint.pt"
    with pytest.raises(_common.CliError, match="no checkpoint"):
        _common.resume_run(ckpt, SelfSaving())
    agent = SelfSaving()
    agent.iteration = 7
    _common.save_run(ckpt, agent)
    fresh = SelfSaving()
    assert _common.resume_run(ckpt, fresh) == ([], 0.0) and fresh.iteration == 7
    ckpt.write_text("not a checkpoint")
    from dmpc_core.critics.checkpoint import CheckpointError

    with pytest.raises(CheckpointError, match="does not fit"):
        _common.resume_run(ckpt, SelfSaving())


def test_list_shows_only_trainable_experiments(tmp_path, monkeypatch, capsys):
    assert cli.main(["list"]) == 0
    listed = capsys.readouterr().out.split()
    assert listed == experiments.available()
    assert {"ballbot-walls", "mpq-pendulum", "polo-box", "polo-maze"} <= set(listed)
    here = Path(experiments.__file__).parent
    for module in here.glob("[!_]*.py"):  # every module that is not listed has no train_main
        name = module.stem.replace("_", "-")
        assert (name in listed) == ("\ndef train_main(" in module.read_text()), name
    assert "ballbot-value-diag" not in listed and "polo-diagnostics" not in listed


def test_train_help_without_and_with_a_name(capsys):
    assert cli.main(["train", "--help"]) == 0
    out = capsys.readouterr().out
    assert "mpq-pendulum" in out and "unknown experiment" not in out
    assert cli.main(["train"]) == 2
    assert cli.main(["train", "mpq-pendulum", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--variant" in out  # the experiment's own options
    assert "agent.mppi.horizon = 8  (int)" in out  # MPQ's default, from the dataclass default_factory
    assert "agent.learning_rate = 0.001  (float)  Adam step size" in out
    assert "run.episodes = 30  (int)" in out


def test_every_trainable_experiment_declares_its_settings():
    for name in experiments.available():
        module = experiments.load(name)
        declared = experiments.settings_of(module)
        assert declared and all(dataclasses.is_dataclass(c) for c in declared.values()), name
        assert Path(module.DEFAULT_CONFIG).is_file(), name
