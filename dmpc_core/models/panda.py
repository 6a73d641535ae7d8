"""Franka Emika Panda: where its URDF lives, and a few named configurations.

The compiled model is :class:`dmpc_core._core.PandaDynamics` (pinocchio, torque controlled,
x = [q; v] of size 14, u = joint torques of size 7). Build it with::

    from dmpc_core import _core
    from dmpc_core.models.panda import default_urdf_path
    panda = _core.PandaDynamics(str(default_urdf_path()))

The project's ``urdf/panda.urdf`` has the hand and fingers rigidly attached (fingers locked
closed) and the end-effector frame ``panda_hand_tcp`` (:data:`TCP_FRAME`).
"""
from __future__ import annotations

import os
import sys
import sysconfig
from pathlib import Path

import numpy as np

PACKAGE = "dmpc_ros"  #: the ament package that installs ``share/dmpc_ros/urdf/panda.urdf``
URDF_NAME = "panda.urdf"
TCP_FRAME = "panda_hand_tcp"  #: tool centre point, 0.1034 m beyond the flange along its z axis
JOINT_NAMES = tuple(f"panda_joint{i}" for i in range(1, 8))
#: Franka's "ready" pose (rad), inside the joint limits.
Q_READY = np.array([0.0, -np.pi / 4, 0.0, -3 * np.pi / 4, 0.0, np.pi / 2, np.pi / 4])


def _candidate_urdf_paths() -> list[Path]:
    """Places searched by :func:`default_urdf_path`, in order."""
    here = Path(__file__).resolve()
    candidates = [here.parents[2] / "urdf" / URDF_NAME]  # source checkout: <repo>/urdf
    share = Path("share") / PACKAGE / "urdf" / URDF_NAME
    # Installed package: <prefix>/lib/pythonX.Y/site-packages/dmpc_core/models/panda.py,
    # data files in <prefix>/share/dmpc_ros/urdf (setup.py data_files; colcon install too).
    if len(here.parents) > 5:
        candidates.append(here.parents[5] / share)
    for prefix in (sys.prefix, sysconfig.get_paths().get("data", sys.prefix)):
        candidates.append(Path(prefix) / share)
    # Sourced ROS 2 workspaces list their install prefixes here (no ROS import needed).
    for prefix in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep):
        if prefix:
            candidates.append(Path(prefix) / share)
    unique: list[Path] = []
    for c in candidates:
        if c not in unique:
            unique.append(c)
    return unique


def default_urdf_path() -> Path:
    """Path of the project's Panda URDF (7 torque-controlled joints, fingers locked).

    Looks in the source checkout (``<repo>/urdf/panda.urdf``) first, then in installed
    locations (``<prefix>/share/dmpc_ros/urdf/panda.urdf`` next to the installed package,
    under ``sys.prefix``, and under each ``AMENT_PREFIX_PATH`` entry).

    Raises:
        FileNotFoundError: listing every place searched.
    """
    candidates = _candidate_urdf_paths()
    for c in candidates:
        if c.is_file():
            return c
    raise FileNotFoundError(
        "panda.urdf not found; searched: " + ", ".join(str(c) for c in candidates)
    )


def example_robot_data_urdf_path() -> Path:
    """Path of example-robot-data's Panda URDF (9 DoF: 7 arm joints + 2 prismatic fingers).

    Used to cross-check the project's model; lock the fingers (pinocchio.buildReducedModel)
    before comparing. Raises FileNotFoundError if example-robot-data is not installed.
    """
    rel = Path("panda_description") / "urdf" / "panda.urdf"  # inside ".../robots"
    candidates = []
    try:  # the cmeel wheel's Python module knows its "robots" folder
        import example_robot_data  # noqa: PLC0415

        candidates.append((Path(example_robot_data.getModelPath(str(rel))) / rel).resolve())
    except Exception:  # noqa: BLE001  (not installed, or the lookup itself failed)
        pass
    for key in ("purelib", "platlib"):
        root = Path(sysconfig.get_paths()[key]) / "cmeel.prefix" / "share" / "example-robot-data"
        candidates.append(root / "robots" / rel)
    for c in candidates:
        if c.is_file():
            return c
    raise FileNotFoundError(
        "example-robot-data's panda.urdf not found (pip install example-robot-data); searched: "
        + ", ".join(str(c) for c in candidates)
    )
