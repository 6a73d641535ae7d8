"""ament_python package dmpc_ros (Python packages dmpc_core and dmpc_ros).

Building the package runs CMake on cpp_ext/ and places the pybind11 module dmpc_core._core
inside the built dmpc_core package, so `pip install -e .`, `pip install .` and
`colcon build` all compile the core. CMake finds Eigen, pinocchio and pybind11 through
CMAKE_PREFIX_PATH; by default it looks in the running Python's pip prefixes (cmeel.prefix of
the `pin` wheel, and pybind11's own CMake folder).
"""
from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from glob import glob
from pathlib import Path

from setuptools import Extension, find_packages, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent
PACKAGE = "dmpc_ros"


def _cmake_prefix_path() -> str:
    """Prefixes where CMake finds Eigen, pinocchio and pybind11 when installed from pip."""
    paths = []
    # The pin/cmeel wheels install headers, libraries and CMake configs under
    # <site-packages>/cmeel.prefix. Look in every site folder this interpreter sees (colcon
    # runs setup.py with its own environment, so purelib alone is not enough).
    import site

    candidates = [sysconfig.get_paths()["purelib"], *site.getsitepackages(), *sys.path]
    for folder in candidates:
        prefix = Path(folder or ".") / "cmeel.prefix"
        if prefix.is_dir() and str(prefix) not in paths:
            paths.append(str(prefix))
            break
    try:
        import pybind11

        paths.append(pybind11.get_cmake_dir())
    except ImportError:
        pass
    extra = os.environ.get("CMAKE_PREFIX_PATH")
    if extra:
        paths.append(extra)
    return ";".join(paths)


class CMakeBuild(build_ext):
    """Build cpp_ext/ with CMake; the module lands where setuptools expects dmpc_core._core."""

    def build_extension(self, ext: Extension) -> None:
        out_dir = Path(self.get_ext_fullpath(ext.name)).resolve().parent
        build_dir = Path(os.environ.get("DMPC_CMAKE_BUILD_DIR", ROOT / "build" / "cmake"))
        build_dir.mkdir(parents=True, exist_ok=True)
        cfg = [
            "cmake", "-S", str(ROOT / "cpp_ext"), "-B", str(build_dir),
            f"-DCMAKE_PREFIX_PATH={_cmake_prefix_path()}",
            f"-DPython3_EXECUTABLE={sys.executable}",
            f"-DDMPC_MODULE_OUTPUT_DIR={out_dir}",
            "-DCMAKE_BUILD_TYPE=Release",
        ]
        subprocess.run(cfg, check=True)
        jobs = os.environ.get("CMAKE_BUILD_PARALLEL_LEVEL", str(os.cpu_count() or 1))
        subprocess.run(["cmake", "--build", str(build_dir), "-j", jobs], check=True)


def _data_files() -> list[tuple[str, list[str]]]:
    share = f"share/{PACKAGE}"
    files = [
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (share, ["package.xml"]),
    ]
    for folder in ("launch", "config", "urdf"):
        found = [p for p in glob(f"{folder}/*") if os.path.isfile(p)]
        if found:
            files.append((f"{share}/{folder}", found))
    return files


setup(
    name=PACKAGE,
    version="0.1.0",
    description="dmpc: real-time learning MPC (Deep Value MPC, POLO, MPQ) for ROS 2",
    license="BSD-3-Clause",
    packages=find_packages(include=["dmpc_core", "dmpc_core.*", "dmpc_ros", "dmpc_ros.*"]),
    package_data={"dmpc_core": ["py.typed"], "dmpc_ros": ["py.typed"]},
    ext_modules=[Extension("dmpc_core._core", sources=[])],
    cmdclass={"build_ext": CMakeBuild},
    data_files=_data_files(),
    python_requires=">=3.10",
    zip_safe=False,
    entry_points={
        "console_scripts": [
            "dmpc = dmpc_core.cli:main",
            # `ros2 run dmpc_ros <node>` (installed to lib/dmpc_ros by setup.cfg)
            "controller_node = dmpc_ros.controller_node:main",
            "learner_node = dmpc_ros.learner_node:main",
            "sim_node = dmpc_ros.sim_node:main",
            "dmpc_launch = dmpc_ros.launcher:main",
            "dmpc_main_job = dmpc_ros.main_job:main",
        ]
    },
)
