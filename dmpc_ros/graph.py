"""The node graph from one YAML file (config/<robot>_<mode>.yaml).

:func:`build_graph` returns :class:`NodeSpec` s; the launch_ros files turn them into
``launch_ros.actions.Node`` actions and :mod:`dmpc_ros.launcher` starts them as processes here.
No ROS import: usable from launch files and tests alike.
"""
from __future__ import annotations

import copy
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple

import yaml

from dmpc_core.critics import signing

PACKAGE = "dmpc_ros"
EXECUTABLES = ("sim_node", "controller_node", "learner_node")
#: ``critic_hmac_key_file: auto`` = the key this graph generates at launch (shared by its nodes)
AUTO_KEY = "auto"
KEY_PARAM = "critic_hmac_key_file"
#: executables with a ``task`` parameter (critics are signed and checked for robot and task)
TASK_NODES = ("controller_node", "learner_node")


@dataclass
class NodeSpec:
    """One node: console script ``executable`` of package dmpc_ros, node ``name``, nested
    ``parameters`` (as in a ROS params file), ``remappings`` (relative name -> global name).
    ``essential``: the graph shuts down when this node exits; otherwise it is restarted after
    ``respawn_delay`` seconds (``respawn``) or left down, and the rest keeps running."""

    executable: str
    name: str
    parameters: Dict[str, Any] = field(default_factory=dict)
    remappings: List[Tuple[str, str]] = field(default_factory=list)
    key: str = ""
    essential: bool = True
    respawn: bool = False
    respawn_delay: float = 2.0

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


def apply_variant(cfg: Dict[str, Any], name: str, source: str = "config") -> None:
    """Apply ``cfg["variants"][name]`` in place: ``topics`` (merged over the base topics),
    ``drop`` (node keys disabled) and ``set`` (dotted path -> value)."""
    variants = cfg.get("variants") or {}
    if name not in variants:
        raise KeyError(f"{source}: no variant {name!r} (has {sorted(variants)})")
    v = variants[name] or {}
    unknown = set(v) - {"topics", "drop", "set"}
    if unknown:
        raise KeyError(f"{source}: variant {name!r} has unknown keys {sorted(unknown)}")
    cfg["topics"].update(v.get("topics") or {})
    for key in v.get("drop") or []:
        if key not in cfg["nodes"]:
            raise KeyError(f"{source}: variant {name!r} drops unknown node {key!r}")
        cfg["nodes"][key]["enabled"] = False
    for dotted, value in (v.get("set") or {}).items():
        _set_path(cfg, dotted, value)


def load_config(config_path: str | Path, overrides: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
    """The YAML config with ``overrides`` (dotted path -> value) applied.

    Shortcuts: ``learner`` (bool) enables/disables the learner node (True with a config that has
    no learner node raises ValueError; False is then a no-op); ``variant`` (str) applies
    ``variants.<name>`` of the config first (see :func:`apply_variant`; None: the base graph).
    """
    with open(config_path) as f:
        cfg = yaml.safe_load(f) or {}
    cfg = copy.deepcopy(cfg)
    for k in ("robot", "topics", "nodes"):
        if k not in cfg:
            raise KeyError(f"{config_path}: missing top-level key {k!r}")
    overrides = dict(overrides or {})
    variant = overrides.pop("variant", None)
    if variant:
        apply_variant(cfg, variant, str(config_path))
    for key, value in overrides.items():
        if key == "learner":
            if "learner" in cfg["nodes"]:
                cfg["nodes"]["learner"]["enabled"] = bool(value)
            elif value:
                raise ValueError(f"{config_path}: no learner node in this config (the {cfg['robot']} "
                                 "learner is not wired); start it with learner off")
        else:
            _set_path(cfg, key, value)
    return cfg


def generate_key_file(directory: Optional[str] = None) -> str:
    """A new random HMAC key in a file readable by its owner only
    (:func:`dmpc_core.critics.signing.generate_key_file`); returns the path."""
    directory = directory or tempfile.mkdtemp(prefix="dmpc_key_")
    path = os.path.join(directory, "critic_hmac.key")
    if os.path.exists(path):
        os.remove(path)  # a new graph gets a new key
    signing.generate_key_file(path)
    return path


def build_graph(config_path: str | Path, overrides: Optional[Mapping[str, Any]] = None,
                key_dir: Optional[str] = None) -> List[NodeSpec]:
    """Node specs of the graph described by ``config_path`` (see config/ballbot_sim.yaml).

    A node parameter ``critic_hmac_key_file: auto`` becomes the path of one key generated for
    this graph (in ``key_dir``, default a new private temporary folder), so the learner signs
    and the controller verifies with the same key and no peer without the file can install a
    critic. The config's top-level ``task`` becomes the ``task`` parameter of the controller and
    learner nodes (unless a node sets it). Node keys ``essential`` (default true), ``respawn`` (default false) and
    ``respawn_delay`` [s] say what happens when a node exits (see :class:`NodeSpec`)."""
    cfg = load_config(config_path, overrides)
    topics = cfg["topics"]
    specs = []
    key_file = None
    for key, node in cfg["nodes"].items():
        if not node.get("enabled", True):
            continue
        exe = node["executable"]
        if exe not in EXECUTABLES:
            raise ValueError(f"node {key}: unknown executable {exe!r}; expected one of {EXECUTABLES}")
        remaps = [(name, topic) for name, topic in topics.items()]
        params = copy.deepcopy(node.get("parameters", {}))
        if exe in TASK_NODES and "task" in cfg:
            params.setdefault("task", cfg["task"])  # the config's task, unless the node sets its own
        if params.get(KEY_PARAM) == AUTO_KEY:
            key_file = key_file or generate_key_file(key_dir)
            params[KEY_PARAM] = key_file
        unknown = set(node) - {"executable", "name", "enabled", "parameters", "essential", "respawn", "respawn_delay"}
        if unknown:
            raise ValueError(f"node {key}: unknown keys {sorted(unknown)}")
        delay = float(node.get("respawn_delay", 2.0))
        if not delay >= 0:
            raise ValueError(f"node {key}: respawn_delay must be >= 0, got {delay}")
        specs.append(NodeSpec(exe, node.get("name", key), params, remaps, key, essential=bool(node.get("essential", True)),
                              respawn=bool(node.get("respawn", False)), respawn_delay=delay))
    return specs


def params_file_content(spec: NodeSpec) -> Dict[str, Any]:
    """ROS 2 params-file structure for one node."""
    return {spec.name: {"ros__parameters": spec.parameters}}
