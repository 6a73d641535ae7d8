"""Settings dataclasses shared by the library, the CLI and the ROS nodes.

Each dataclass is filled from one section of a YAML file (``config/*.yaml``), and the ROS nodes
fill the same dataclasses from their parameters. Unknown keys are an error (a typo in a config
must not silently fall back to a default).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Mapping, TypeVar

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration file or section is malformed."""


def from_dict(cls: type[T], data: Mapping[str, Any] | None, where: str = "") -> T:
    """Build dataclass ``cls`` from ``data``, rejecting unknown keys and recursing into nested
    dataclass fields.

    Args:
        cls: the dataclass type.
        data: mapping of field name to value (None means all defaults).
        where: location used in error messages, e.g. ``"config/ballbot.yaml:mpc"``.
    """
    data = dict(data or {})
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{where or cls.__name__}: unknown key(s) {unknown}; valid keys: {sorted(fields)}")
    kwargs = {}
    for name, value in data.items():
        ftype = fields[name].type
        sub = _dataclass_type(cls, name)
        if sub is not None and isinstance(value, Mapping):
            kwargs[name] = from_dict(sub, value, f"{where}.{name}" if where else name)
        else:
            kwargs[name] = value
        del ftype
    try:
        obj = cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where or cls.__name__}: {exc}") from exc
    validate = getattr(obj, "validate", None)
    if callable(validate):
        try:
            validate()
        except ValueError as exc:
            raise ConfigError(f"{where or cls.__name__}: {exc}") from exc
    return obj


def _dataclass_type(cls: type, name: str) -> type | None:
    import typing

    hints = typing.get_type_hints(cls)
    t = hints.get(name)
    return t if dataclasses.is_dataclass(t) else None


def to_dict(obj: Any) -> dict[str, Any]:
    """Plain-dict view of a (nested) settings dataclass."""
    return dataclasses.asdict(obj)


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping, with a clear error for a missing or malformed file."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file not found: {p}")
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: top level must be a mapping")
    return data


def set_dotted(data: dict, key: str, value: Any, where: str) -> None:
    """``data["a"]["b"]["c"] = value`` for ``key = "a.b.c"``, creating missing sections; a
    ConfigError naming ``where`` if a part on the way is not a section."""
    node = data
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"{where}: {part} is not a section")
    node[parts[-1]] = value


def parse_overrides(items) -> dict:
    """Command-line ``--set KEY=VALUE`` items: ``["actor.r=0.5", "task.walls=[]"]`` -> ``{"actor.r": 0.5, "task.walls": []}`` (YAML values)."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects KEY=VALUE, got {item!r}")
        try:
            out[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError as e:
            raise ConfigError(f"--set {key}: value is not valid YAML ({e})") from None
    return out
