"""ROS parameters <-> settings dataclasses (dotted parameter names, one per dataclass leaf)."""
from __future__ import annotations

import array
from typing import Any, Dict, Optional

from rcl_interfaces.msg import ParameterDescriptor

from dmpc_core.settings import from_dict, to_dict


def _flatten(d: Dict[str, Any], prefix: str = "") -> Dict[str, Any]:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = list(v) if isinstance(v, tuple) else v
    return out


def _nest(flat: Dict[str, Any]) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for k, v in flat.items():
        cur = out
        parts = k.split(".")
        for p in parts[:-1]:
            cur = cur.setdefault(p, {})
        cur[parts[-1]] = v
    return out


def declare_settings(node, prefix: str, settings, read_only: bool = True) -> None:
    """Declare one ROS parameter per leaf of ``settings`` (dotted names under ``prefix``)."""
    for k, v in _flatten(to_dict(settings)).items():
        node.declare_parameter(f"{prefix}.{k}", v, ParameterDescriptor(dynamic_typing=True, read_only=read_only))


def read_settings(node, prefix: str, cls, changes: Optional[Dict[str, Any]] = None):
    """Build ``cls`` from the node's parameters under ``prefix`` (plus pending ``changes``)."""
    flat = {}
    for name, p in node.get_parameters_by_prefix(prefix).items():
        flat[name] = p.value
    for name, v in (changes or {}).items():
        if name.startswith(prefix + "."):
            flat[name[len(prefix) + 1:]] = v
    nested = _nest({k: (list(v) if isinstance(v, (array.array, tuple)) else v) for k, v in flat.items()})
    return from_dict(cls, nested, prefix)


def settings_defaults(settings) -> Dict[str, Any]:
    return _flatten(to_dict(settings))


def declare_fields(node, settings, dynamic=(), skip=()) -> None:
    """Declare one top-level parameter per field of the flat dataclass ``settings`` (read-only
    unless named in ``dynamic``; the ones in ``skip`` are declared by the caller)."""
    for k, v in to_dict(settings).items():
        if k in skip:
            continue
        node.declare_parameter(k, list(v) if isinstance(v, tuple) else v,
                               ParameterDescriptor(dynamic_typing=True, read_only=k not in dynamic))


def read_fields(node, cls, changes: Optional[Dict[str, Any]] = None):
    """Build the flat dataclass ``cls`` from the node's top-level parameters of the same names
    (plus pending ``changes``); raises ConfigError when a value is invalid."""
    import dataclasses

    vals = {}
    for f in dataclasses.fields(cls):
        v = (changes or {}).get(f.name, node.get_parameter(f.name).value)
        vals[f.name] = list(v) if isinstance(v, (array.array, tuple)) else v
    return from_dict(cls, vals, node.get_name())


def declare_node_settings(node, settings, dynamic=()) -> None:
    """Declare one parameter per leaf of the node settings dataclass ``settings``: top-level
    fields under their names, nested dataclass fields under ``<field>.<leaf>`` (read-only unless
    the top-level name is in ``dynamic``)."""
    for k, v in _flatten(to_dict(settings)).items():
        node.declare_parameter(k, v, ParameterDescriptor(dynamic_typing=True, read_only=k not in dynamic))


def read_node_settings(node, cls, changes: Optional[Dict[str, Any]] = None):
    """Build the node settings dataclass ``cls`` (as declared by :func:`declare_node_settings`)
    from the node's parameters plus pending ``changes``; raises ConfigError when a value is invalid."""
    flat = {k: node.get_parameter(k).value for k in _flatten(to_dict(cls()))}
    flat.update({k: v for k, v in (changes or {}).items() if k in flat})
    nested = _nest({k: (list(v) if isinstance(v, (array.array, tuple)) else v) for k, v in flat.items()})
    return from_dict(cls, nested, node.get_name())
