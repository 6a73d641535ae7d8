"""Settings dataclasses shared by the library, the CLI and the ROS nodes.

Each dataclass is filled from one section of a YAML file (``config/*.yaml``), and the ROS nodes
fill the same dataclasses from their parameters. Unknown keys are an error (a typo in a config
must not silently fall back to a default).
"""
from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any, Mapping, TypeVar

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration file or section is malformed."""


def from_dict(cls: type[T], data: Mapping[str, Any] | None, where: str = "", defaults: T | None = None) -> T:
    """Build dataclass ``cls`` from ``data``, rejecting unknown keys and recursing into nested
    dataclass fields.

    Args:
        cls: the dataclass type.
        data: mapping of field name to value (None means all defaults).
        where: location used in error messages, e.g. ``"config/ballbot.yaml:mpc"``.
        defaults: an instance of ``cls`` whose values stand in for the class defaults of the
            keys ``data`` leaves out (an experiment's own defaults, see
            :mod:`dmpc_core.experiments`); nested sections merge key by key. Not modified.
    """
    data = dict(data or {})
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{where or cls.__name__}: unknown key(s) {unknown}; valid keys: {sorted(fields)}")
    kwargs = {}
    if defaults is not None:
        if type(defaults) is not cls:
            raise TypeError(f"defaults of {cls.__name__} must be a {cls.__name__}, got {type(defaults).__name__}")
        kwargs = {n: copy.deepcopy(getattr(defaults, n)) for n, f in fields.items() if f.init and n not in data}
    for name, value in data.items():
        sub = _dataclass_type(cls, name)
        if sub is not None and isinstance(value, Mapping):
            base = getattr(defaults, name, None) if defaults is not None else None
            kwargs[name] = from_dict(sub, value, f"{where}.{name}" if where else name,
                                     base if type(base) is sub else None)
        else:
            kwargs[name] = value
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


def field_docs(cls: type) -> dict[str, str]:
    """Per-field text of a settings dataclass, from the ``Attributes:`` section of its docstring.

    An entry is a line ``name: text`` (or ``a / b: text`` for several fields described together),
    continued by the more-indented lines below it. Fields the docstring does not describe are
    missing from the result.
    """
    import inspect

    doc = inspect.getdoc(cls) or ""
    lines = doc.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == "Attributes:" or
                     line.strip().startswith("Attributes:"))
    except StopIteration:
        return {}
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    first = lines[start].strip()[len("Attributes:"):].strip()
    body = ([first] if first else []) + lines[start + 1:]
    indent = min((len(line) - len(line.lstrip()) for line in body if line.strip()), default=0)
    out: dict[str, str] = {}
    current: list[str] = []
    import re

    entry = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*(?:\s*[/,]\s*[A-Za-z_][A-Za-z0-9_]*)*)\s*:\s*(.*)$")
    for line in body:
        if not line.strip():
            continue
        own = len(line) - len(line.lstrip())
        m = entry.match(line.strip()) if own <= indent else None
        keys = [k.strip() for k in re.split(r"[/,]", m.group(1))] if m else []
        if m and all(k in names for k in keys):
            current = keys
            for k in keys:
                out[k] = m.group(2).strip()
        elif current:
            for k in current:
                out[k] = (out[k] + " " + line.strip()).strip()
    # "a: text; b: more text" describes two fields on one line
    for key in list(out):
        parts = re.split(r";\s+([A-Za-z_][A-Za-z0-9_]*):\s+", out[key])
        if len(parts) > 1 and all(k in names for k in parts[1::2]):
            out[key] = parts[0].strip()
            for k, text in zip(parts[1::2], parts[2::2]):
                out.setdefault(k, text.strip())
    return out


def describe(cls: type, prefix: str = "", defaults: Any = None) -> list[tuple[str, str, Any, str]]:
    """Rows ``(dotted key, type, default, text)`` of every setting of ``cls``, recursing into
    nested settings dataclasses (their key gets the parent's name as prefix).

    The defaults are read from ``defaults`` or, if not given, from ``cls()``: a nested section
    built by a ``default_factory`` shows the values that factory sets, not its class defaults.
    """
    import typing

    if defaults is None:
        try:
            defaults = cls()
        except TypeError:  # a field without a default
            defaults = None
    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    rows: list[tuple[str, str, Any, str]] = []
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        key = f"{prefix}{f.name}"
        t = hints.get(f.name, f.type)
        value = getattr(defaults, f.name, None) if defaults is not None else None
        if dataclasses.is_dataclass(t):
            rows += describe(t, key + ".", value)
            continue
        if defaults is None:
            value = f.default if f.default is not dataclasses.MISSING else None
        if isinstance(value, tuple):
            value = list(value)
        tname = getattr(t, "__name__", None) or str(t).replace("typing.", "")
        rows.append((key, tname, value, docs.get(f.name, "")))
    return rows
