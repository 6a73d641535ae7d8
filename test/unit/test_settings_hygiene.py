"""No dead options: every declared setting is read by code, and the shipped configs agree with
the dataclass defaults (or omit the key).

A settings dataclass is a ``@dataclass`` whose name ends in ``Settings`` or ``Config`` in
``dmpc_core/`` or ``dmpc_ros/``. A field ``f`` of class ``C`` counts as read when a module that
names ``C`` (or a settings class holding a ``C`` section, directly or further up) reads ``.f``
or the string ``"f"`` outside the ``validate`` / ``__post_init__`` methods: checking a value's
range is not using it.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("dmpc_core", "dmpc_ros")
CHECKS_ONLY = ("validate", "__post_init__")


def _is_dataclass(node: ast.ClassDef) -> bool:
    for d in node.decorator_list:
        target = d.func if isinstance(d, ast.Call) else d
        if (isinstance(target, ast.Name) and target.id == "dataclass") or \
                (isinstance(target, ast.Attribute) and target.attr == "dataclass"):
            return True
    return False


def scan(sources: dict[str, str]):
    """``(classes, modules)``: ``classes[name] = (module, fields, names in the annotations)``;
    ``modules[module] = (names read as attribute or string, names the module mentions)``."""
    classes: dict[str, tuple[str, list[str], set[str]]] = {}
    modules: dict[str, tuple[set[str], set[str]]] = {}
    for module, text in sources.items():
        tree = ast.parse(text)
        reads: set[str] = set()
        mentions: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                mentions.add(node.name)
                if node.name.endswith(("Settings", "Config")) and _is_dataclass(node):
                    anns = [s for s in node.body if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name)]
                    names = {n.id for a in anns for n in ast.walk(a.annotation) if isinstance(n, ast.Name)}
                    names |= {n.value for a in anns for n in ast.walk(a.annotation)
                              if isinstance(n, ast.Constant) and isinstance(n.value, str)}
                    classes[node.name] = (module, [a.target.id for a in anns], names)
            elif isinstance(node, ast.Name):
                mentions.add(node.id)
            elif isinstance(node, ast.alias):
                mentions.add(node.asname or node.name.rsplit(".", 1)[-1])

        class Reads(ast.NodeVisitor):
            def __init__(self) -> None:
                self.where: list[str] = []

            def visit_FunctionDef(self, n):
                self.where.append(n.name)
                self.generic_visit(n)
                self.where.pop()

            visit_AsyncFunctionDef = visit_FunctionDef

            def visit_Attribute(self, n):
                if isinstance(n.ctx, ast.Load) and not (self.where and self.where[-1] in CHECKS_ONLY):
                    reads.add(n.attr)
                self.generic_visit(n)

            def visit_Constant(self, n):
                if isinstance(n.value, str) and n.value.isidentifier() and \
                        not (self.where and self.where[-1] in CHECKS_ONLY):
                    reads.add(n.value)

        Reads().visit(tree)
        modules[module] = (reads, mentions)
    return classes, modules


def unread_fields(sources: dict[str, str]) -> dict[str, list[str]]:
    """``{class: [fields no code reads]}`` over the given module sources."""
    classes, modules = scan(sources)

    def holders(name: str, seen: set[str]) -> set[str]:
        for other, (_, _, anns) in classes.items():
            if name in anns and other not in seen:
                seen.add(other)
                holders(other, seen)
        return seen

    dead: dict[str, list[str]] = {}
    for name, (_, fields, _) in classes.items():
        names = holders(name, {name})
        users = [m for m, (_, mentions) in modules.items() if names & mentions]
        unread = [f for f in fields if not any(f in modules[m][0] for m in users)]
        if unread:
            dead[name] = unread
    return dead


def product_sources() -> dict[str, str]:
    return {str(p.relative_to(ROOT)): p.read_text() for pkg in PRODUCT for p in sorted((ROOT / pkg).rglob("*.py"))}


def test_the_scan_finds_an_unread_setting_and_ignores_a_range_check():
    sources = {
        "pkg/settings.py": (
            "from dataclasses import dataclass, field\n"
            "@dataclass\nclass InnerSettings:\n    used: float = 1.0\n    unused: float = 2.0\n"
            "    def validate(self):\n        assert self.unused > 0\n"
            "@dataclass\nclass OuterSettings:\n    inner: InnerSettings = field(default_factory=InnerSettings)\n"
            "    rate: float = 3.0\n"),
        "pkg/user.py": (
            "from pkg.settings import OuterSettings\n"
            "def run(s: OuterSettings):\n    return s.inner.used * getattr(s, 'rate')\n"),
        "pkg/other.py": "def f(x):\n    return x.unused\n",  # names neither class: does not count
    }
    assert unread_fields(sources) == {"InnerSettings": ["unused"]}


def test_every_declared_setting_is_read():
    dead = unread_fields(product_sources())
    assert dead == {}, f"settings declared in a settings dataclass that no code reads (delete them, or read them): {dead}"


# -- shipped YAML vs dataclass defaults ---------------------------------------------------------

def _flat(data, prefix=""):
    out = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _same(a, b) -> bool:
    a = list(a) if isinstance(a, tuple) else a
    b = list(b) if isinstance(b, tuple) else b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool) and not isinstance(b, bool):
        return abs(float(a) - float(b)) <= 1e-12 * max(1.0, abs(float(b)))
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def disagreements(name: str) -> list[str]:
    """``key: yaml value != default`` for every key of experiment ``name``'s shipped config, the
    defaults being the experiment's own (its ``SETTINGS``)."""
    from dmpc_core import experiments
    from dmpc_core.settings import describe

    module = experiments.load(name)
    declared = experiments.defaults_of(module)
    assert declared, f"{name} declares no SETTINGS"
    defaults = {}
    for section, instance in declared.items():
        for key, _, value, _ in describe(type(instance), f"{section}." if section else "", instance):
            defaults[key] = value
    shipped = _flat(yaml.safe_load(Path(module.DEFAULT_CONFIG).read_text()) or {})
    out = []
    for key, value in shipped.items():
        assert key in defaults, f"{module.DEFAULT_CONFIG}: {key} is not a setting"
        if not _same(value, defaults[key]):
            out.append(f"{key}: {value!r} != default {defaults[key]!r}")
    return out


def _experiments():
    from dmpc_core import experiments

    return experiments.available()


@pytest.mark.parametrize("name", _experiments())
def test_shipped_config_agrees_with_the_defaults(name):
    assert disagreements(name) == []


def test_the_comparison_sees_a_changed_value(tmp_path, monkeypatch):
    from dmpc_core.experiments import mpq_pendulum

    text = Path(mpq_pendulum.DEFAULT_CONFIG).read_text().replace("learning_rate: 0.001", "learning_rate: 0.002")
    changed = tmp_path / "mpq.yaml"
    changed.write_text(text)
    monkeypatch.setattr(mpq_pendulum, "DEFAULT_CONFIG", changed)
    assert disagreements("mpq-pendulum") == ["agent.learning_rate: 0.002 != default 0.001"]
