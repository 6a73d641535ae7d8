"""Shared pieces of the launch files (imports launch / launch_ros only when called).

The graph always comes from :func:`dmpc_ros.graph.build_graph` on the config YAML (one source of
truth); the launch files differ only in the variant and the non-dmpc nodes they add.
"""
from __future__ import annotations

import os
import tempfile
from typing import Dict, List, Optional, Sequence

import yaml

from dmpc_ros.graph import build_graph, load_config

PACKAGE = "dmpc_ros"


def resolve(kind: str, name: str) -> str:
    """An absolute path, or ``share/dmpc_ros/<kind>/<name>`` of the installed package."""
    if os.path.isabs(name):
        return name
    from ament_index_python.packages import get_package_share_directory

    return os.path.join(get_package_share_directory(PACKAGE), kind, name)


def truthy(value: str) -> bool:
    return str(value).lower() in ("true", "on", "1", "yes")


def dmpc_nodes(config: str, learner: bool, variant: Optional[str] = None, exclude: Sequence[str] = ()) -> List:
    """launch_ros Nodes of the dmpc graph (build_graph raises a clear ValueError for
    ``learner=True`` on a config without a learner node, e.g. the Franka's), without the nodes
    whose executable is in ``exclude`` (e.g. ``sim_node`` on hardware)."""
    from launch.actions import Shutdown
    from launch_ros.actions import Node

    overrides: Dict[str, object] = {"learner": learner}
    if variant:
        overrides["variant"] = variant
    # as dmpc_ros.launcher: an essential node's exit shuts the launch down; the others respawn
    # (respawn: true) or stay down while the rest keeps running
    return [Node(package=PACKAGE, executable=s.executable, name=s.name, parameters=[s.parameters],
                 remappings=s.remappings, output="screen", respawn=s.respawn, respawn_delay=s.respawn_delay,
                 on_exit=[Shutdown(reason=f"essential node {s.name} exited")] if s.essential else None)
            for s in build_graph(config, overrides) if s.executable not in exclude]


def write_controllers_file(config: str, variant: Optional[str] = None) -> str:
    """The controller_manager parameters (dmpc_ros.description.ros2_control_params) as a YAML file."""
    from dmpc_ros.description import ros2_control_params

    params = ros2_control_params(load_config(config, {"variant": variant} if variant else None))
    fd, path = tempfile.mkstemp(prefix="dmpc_franka_controllers_", suffix=".yaml")
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump(params, f)
    return path
