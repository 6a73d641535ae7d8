"""The critic and Deep Value MPC cost hot paths do not heap-allocate (Eigen runtime check).

Compiles test/slow/cpp/critic_nomalloc.cpp with the core sources and -DEIGEN_RUNTIME_NO_MALLOC
(assertions on): an Eigen allocation inside calc / calc_grad / calc_diff / calc_third of
CriticMLP, ValueRunningCost (project_psd = False) or ValueTerminalCost aborts the program.
"""
from __future__ import annotations

import shutil
import subprocess
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EIGEN = Path(sysconfig.get_paths()["purelib"]) / "cmeel.prefix" / "include" / "eigen3"


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("g++") is None or not EIGEN.is_dir(), reason="needs g++ and Eigen")
def test_no_heap_allocation_in_critic_and_value_costs(tmp_path):
    src = ROOT / "cpp_ext" / "src"
    exe = tmp_path / "critic_nomalloc"
    cmd = ["g++", "-std=c++17", "-O1", "-DEIGEN_RUNTIME_NO_MALLOC", f"-I{EIGEN}",
           f"-I{ROOT / 'cpp_ext' / 'include'}", str(ROOT / "test" / "slow" / "cpp" / "critic_nomalloc.cpp"),
           str(src / "critic.cpp"), str(src / "critic_kernels.cpp"), str(src / "value_costs.cpp"), str(src / "models" / "small.cpp"),
           "-o", str(exe)]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    out = subprocess.run([str(exe)], capture_output=True, text=True)
    assert out.returncode == 0, f"heap allocation detected:\n{out.stderr}"
    assert out.stdout.startswith("OK")
