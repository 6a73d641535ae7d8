"""colcon (from PyPI) builds the ament_python package, and the installed core imports.

Slow (it compiles the C++ core in its own CMake folder): run with `make test-slow`.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_colcon_build_installs_an_importable_core(tmp_path):
    colcon = shutil.which("colcon", path=str(Path(sys.executable).parent))
    assert colcon is not None, "colcon is pinned in requirements.txt but not installed next to this Python"
    src = tmp_path / "ws" / "src" / "dmpc_ros"
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    for f in files:
        (src / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / f, src / f)
    env = dict(os.environ, DMPC_CMAKE_BUILD_DIR=str(ROOT / "build" / "colcon-test-cmake"))
    # the CMake cache is tied to the source path: start it fresh for this tree
    shutil.rmtree(env["DMPC_CMAKE_BUILD_DIR"], ignore_errors=True)
    ws = tmp_path / "ws"
    subprocess.run([colcon, "build", "--base-paths", "src"], cwd=ws, env=env, check=True, timeout=3600)
    site = ws / "install" / "dmpc_ros" / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    assert list((site / "dmpc_core").glob("_core*.so")), "the compiled core was not installed"
    out = subprocess.run([sys.executable, "-c", "import dmpc_core, dmpc_core._core as c; print(dmpc_core.__file__); print(c.SlqSolver)"],
                         cwd=tmp_path, env=dict(env, PYTHONPATH=str(site)), capture_output=True, text=True, check=True).stdout
    assert str(site) in out and "SlqSolver" in out
    assert (ws / "install" / "dmpc_ros" / "share" / "dmpc_ros" / "package.xml").is_file()
