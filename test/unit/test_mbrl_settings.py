"""The shipped model-based RL configs: every key is a declared setting of the right type, and equal
to the dataclass default (the YAML documents the defaults; it may omit keys)."""
from __future__ import annotations

from dataclasses import fields, is_dataclass
from pathlib import Path

import pytest

from dmpc_core.experiments._common import check_types
from dmpc_core.settings import load_yaml

ROOT = Path(__file__).resolve().parents[2]


def _assert_defaults(obj, data, where):
    names = {f.name for f in fields(obj)}
    for key, value in data.items():
        assert key in names, f"{where}.{key} is not a setting"
        default = getattr(obj, key)
        if is_dataclass(default):
            _assert_defaults(default, value, f"{where}.{key}")
        else:
            got = list(default) if isinstance(default, tuple) else default
            assert got == value, f"{where}.{key}: YAML {value!r} != default {default!r}"


@pytest.mark.parametrize("config", ["mbrl_pendulum", "mbrl_ballbot"])
def test_shipped_mbrl_configs_match_the_defaults(config):
    data = load_yaml(ROOT / "config" / f"{config}.yaml")
    if config == "mbrl_pendulum":
        from dmpc_core.agents.mbrl import MbrlSettings
        from dmpc_core.experiments.mbrl_pendulum import MbrlRunSettings

        sections = {"agent": MbrlSettings, "run": MbrlRunSettings}
    else:
        from dmpc_core.experiments.mbrl_ballbot import MbrlBallbotSettings

        sections = {"agent": MbrlBallbotSettings}
    assert set(data) == set(sections)
    for name, cls in sections.items():
        check_types(cls, data[name], name)
        _assert_defaults(cls(), data[name], name)
