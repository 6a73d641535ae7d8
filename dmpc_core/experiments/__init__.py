"""Experiments runnable as ``dmpc train NAME`` / ``dmpc eval NAME``.

Each experiment is a module ``dmpc_core.experiments.<name with - replaced by _>`` defining
``train_main(argv) -> int`` and, where it makes sense, ``eval_main(argv) -> int``. The CLI
discovers them by name: adding an experiment never edits the CLI.
"""
from __future__ import annotations

import importlib
import pkgutil


def available() -> list[str]:
    """Names of the experiments that exist (module names with '_' shown as '-')."""
    return sorted(m.name.replace("_", "-") for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def load(name: str):
    """Import the experiment module for ``name`` ('ballbot-walls' -> experiments.ballbot_walls)."""
    if name not in available():
        raise SystemExit(f"dmpc: unknown experiment '{name}'; available: {', '.join(available()) or 'none'}")
    return importlib.import_module(f"{__name__}.{name.replace('-', '_')}")
