"""Experiments runnable as ``dmpc train NAME`` / ``dmpc eval NAME``.

Each experiment is a module ``dmpc_core.experiments.<name with - replaced by _>`` defining
``train_main(argv) -> int``, where it makes sense ``eval_main(argv) -> int``, and ``SETTINGS``:
what its config file fills and the experiment's defaults, as a zero-argument callable that
returns a settings dataclass instance (a settings dataclass itself when its class defaults are
the experiment's, or a function returning an instance with the experiment's own values), or a
mapping ``{section: such a callable}`` for a config made of sections. A key a config file leaves
out takes that default; ``dmpc train NAME --help`` and docs/configuration.md list them, and the
shipped config agrees with them (test/unit/test_settings_hygiene.py). The CLI discovers
experiments by name: adding one never edits the CLI. Modules without ``train_main`` (analysis
helpers such as ``ballbot_value_diag``) are not experiments and are not listed.
"""
from __future__ import annotations

import ast
import dataclasses
import importlib
import pkgutil
from pathlib import Path
from typing import Mapping


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


def defaults_of(module) -> dict:
    """``{section prefix: settings dataclass instance with the experiment's defaults}`` of an
    experiment module (prefix "" when one dataclass describes the whole config file); empty if
    the module declares no ``SETTINGS``. Each call builds new instances."""
    declared = getattr(module, "SETTINGS", None)
    if declared is None:
        return {}
    if not isinstance(declared, Mapping):
        declared = {"": declared}
    out = {}
    for section, make in declared.items():
        value = make()
        if isinstance(value, type) or not dataclasses.is_dataclass(value):
            raise TypeError(f"{module.__name__}.SETTINGS[{section!r}] must build a settings dataclass instance, "
                            f"got {value!r}")
        out[section] = value
    return out


def settings_of(module) -> dict:
    """``{section prefix: settings dataclass}`` of an experiment module (see :func:`defaults_of`)."""
    return {section: type(value) for section, value in defaults_of(module).items()}
