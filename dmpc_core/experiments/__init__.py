"""Experiments runnable as ``dmpc train NAME`` / ``dmpc eval NAME``.

Each experiment is a module ``dmpc_core.experiments.<name with - replaced by _>`` defining
``train_main(argv) -> int``, where it makes sense ``eval_main(argv) -> int``, and ``SETTINGS``:
the settings dataclass its config file fills (or a mapping ``{section: dataclass}`` for a config
made of sections), which ``dmpc train NAME --help`` lists with the defaults. The CLI discovers
experiments by name: adding one never edits the CLI. Modules without ``train_main`` (analysis
helpers such as ``ballbot_value_diag``) are not experiments and are not listed.
"""
from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path


def _defines(path: Path, name: str) -> bool:
    """Whether the module source at ``path`` defines a top-level function ``name`` (read, not
    imported: ``dmpc list`` stays fast and does not import torch)."""
    try:
        tree = ast.parse(path.read_text())
    except (OSError, SyntaxError):
        return False
    return any(isinstance(n, ast.FunctionDef) and n.name == name for n in tree.body)


def available() -> list[str]:
    """Names of the experiments ``dmpc train`` can run (module names with '_' shown as '-')."""
    here = Path(__file__).parent
    return sorted(m.name.replace("_", "-") for m in pkgutil.iter_modules(__path__)
                  if not m.name.startswith("_") and _defines(here / f"{m.name}.py", "train_main"))


def load(name: str):
    """Import the experiment module for ``name`` ('ballbot-walls' -> experiments.ballbot_walls)."""
    if name not in available():
        raise SystemExit(f"dmpc: unknown experiment '{name}'; available: {', '.join(available()) or 'none'}")
    return importlib.import_module(f"{__name__}.{name.replace('-', '_')}")


def settings_of(module) -> dict:
    """``{section prefix: settings dataclass}`` of an experiment module (prefix "" when one
    dataclass describes the whole config file); empty if the module declares none."""
    declared = getattr(module, "SETTINGS", None)
    if declared is None:
        declared = _declared_by_name(module.__name__.rsplit(".", 1)[-1])
    if declared is None:
        return {}
    if isinstance(declared, dict):
        return dict(declared)
    return {"": declared}


def _declared_by_name(name: str):
    # The settings of experiments whose module does not (yet) carry a SETTINGS attribute: the
    # dataclasses their train_main fills from the config file.
    if name == "ballbot_walls":
        from dmpc_core.agents.deep_value_mpc import DmpcConfig

        return DmpcConfig
    if name in ("polo_maze", "polo_box"):
        from dmpc_core.agents.polo import PoloSettings
        from dmpc_core.experiments.polo_maze import PoloRunSettings
        from dmpc_core.tasks.point_mass_worlds import PointMassWorldSettings

        return {"world": PointMassWorldSettings, "agent": PoloSettings, "run": PoloRunSettings}
    return None
