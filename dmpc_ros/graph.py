"""The node graph from one YAML file (config/<robot>_<mode>.yaml).

:func:`build_graph` returns :class:`NodeSpec` s; the launch_ros files turn them into
``launch_ros.actions.Node`` actions and :mod:`dmpc_ros.launcher` starts them as processes here.
No ROS import: usable from launch files and tests alike.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple

import yaml

PACKAGE = "dmpc_ros"
EXECUTABLES = ("sim_node", "controller_node", "learner_node")


@dataclass
class NodeSpec:
    """One node: console script ``executable`` of package dmpc_ros, node ``name``, nested
    ``parameters`` (as in a ROS params file), ``remappings`` (relative name -> global name)."""

    executable: str
    name: str
    parameters: Dict[str, Any] = field(default_factory=dict)
    remappings: List[Tuple[str, str]] = field(default_factory=list)
    key: str = ""

    def module(self) -> str:
        return f"{PACKAGE}.{self.executable}"


def _set_path(d: Dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    cur = d
    for p in parts[:-1]:
        if p not in cur or not isinstance(cur[p], dict):
            raise KeyError(f"override {dotted!r}: {p!r} is not a section of the config")
        cur = cur[p]
    cur[parts[-1]] = value


def load_config(config_path: str | Path, overrides: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
    """The YAML config with ``overrides`` (dotted path -> value) applied.

    Shortcuts: ``learner`` (bool) enables/disables the learner node; ``mode`` 'sim'/'hardware'.
    """
    with open(config_path) as f:
        cfg = yaml.safe_load(f) or {}
    cfg = copy.deepcopy(cfg)
    for key, value in (overrides or {}).items():
        if key == "learner":
            cfg["nodes"]["learner"]["enabled"] = bool(value)
        else:
            _set_path(cfg, key, value)
    for k in ("robot", "topics", "nodes"):
        if k not in cfg:
            raise KeyError(f"{config_path}: missing top-level key {k!r}")
    return cfg


def build_graph(config_path: str | Path, overrides: Optional[Mapping[str, Any]] = None) -> List[NodeSpec]:
    """Node specs of the graph described by ``config_path`` (see config/ballbot_sim.yaml)."""
    cfg = load_config(config_path, overrides)
    topics = cfg["topics"]
    specs = []
    for key, node in cfg["nodes"].items():
        if not node.get("enabled", True):
            continue
        exe = node["executable"]
        if exe not in EXECUTABLES:
            raise ValueError(f"node {key}: unknown executable {exe!r}; expected one of {EXECUTABLES}")
        remaps = [(name, topic) for name, topic in topics.items()]
        specs.append(NodeSpec(exe, node.get("name", key), copy.deepcopy(node.get("parameters", {})), remaps, key))
    return specs


def params_file_content(spec: NodeSpec) -> Dict[str, Any]:
    """ROS 2 params-file structure for one node."""
    return {spec.name: {"ros__parameters": spec.parameters}}
