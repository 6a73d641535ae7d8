"""The quickstart's offline path, run as written: the commands of the block marked
``newcomer-path`` in docs/quickstart.md (``dmpc list``, ``dmpc train --help``,
``dmpc train NAME --help``, a tiny ``dmpc train`` and ``dmpc eval``) are read from the page and
run in order in a fresh directory, so the page cannot drift from what works."""
from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

from dmpc_core import cli

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "docs" / "quickstart.md"
PREFIX = ".venv/bin/dmpc"


def newcomer_commands(text: str) -> list[list[str]]:
    """argv lists (without the ``dmpc`` program) of the fenced block after the marker."""
    m = re.search(r"<!-- newcomer-path.*?-->\s*```[^\n]*\n(.*?)```", text, re.S)
    assert m, "docs/quickstart.md has no block marked <!-- newcomer-path ... -->"
    block = m.group(1).replace("\\\n", " ")
    commands = []
    for line in block.splitlines():
        if not line.strip():
            continue
        argv = shlex.split(line, comments=True)
        assert argv[0] == PREFIX, f"quickstart command does not start with {PREFIX}: {line}"
        commands.append(argv[1:])
    return commands


def test_the_block_is_found_and_split():
    cmds = newcomer_commands("x\n<!-- newcomer-path: y -->\n```\n.venv/bin/dmpc list\n"
                             ".venv/bin/dmpc train a \\\n    --set b=1 --no-progress\n```\n")
    assert cmds == [["list"], ["train", "a", "--set", "b=1", "--no-progress"]]


def test_quickstart_offline_commands_work_as_written(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    commands = newcomer_commands(QUICKSTART.read_text())
    kinds = [c[0] for c in commands]
    assert kinds.count("train") >= 3 and "list" in kinds and "eval" in kinds, commands
    for argv in commands:
        code = cli.main(argv)
        out = capsys.readouterr().out
        assert code == 0, f"dmpc {' '.join(argv)} exited with {code}"
        if argv == ["list"]:
            listed = out.split()
            assert "ballbot-walls" in listed and "mpq-pendulum" in listed
            assert not any(n.endswith(("-diag", "-diagnostics")) for n in listed), listed  # not trainable
        elif argv[:1] == ["train"] and argv[-1] == "--help" and len(argv) == 3:
            assert "--set KEY=VALUE" in out and "actor.horizon_time = " in out and "training.seed = 0" in out
        elif argv == ["train", "--help"]:
            assert "ballbot-walls" in out
    run = tmp_path / "runs" / "quickstart"
    for name in ("config.yaml", "checkpoint.pt", "critic.onnx"):
        assert (run / name).is_file(), name
    assert list(run.glob("*.csv")) and list((run / "tb").iterdir()), "no logged scalars (CSV, TensorBoard)"
    metrics = json.loads((run / "eval.json").read_text())
    assert 0.0 <= metrics["eval/success_rate"] <= 1.0 and len(metrics["outcomes"]) == 8
