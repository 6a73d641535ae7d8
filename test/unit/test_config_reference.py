"""docs/configuration.md is generated from the settings dataclasses (tools/gen_config_reference.py);
this fails when the committed page is stale, i.e. a setting, default or docstring changed without
regenerating it."""
from __future__ import annotations

from pathlib import Path

from tool_module import load_tool

ROOT = Path(__file__).resolve().parents[2]


def _tool():
    return load_tool("gen_config_reference")


def test_committed_configuration_reference_is_current():
    committed = (ROOT / "docs" / "configuration.md").read_text()
    assert committed == _tool().render(), \
        "docs/configuration.md is stale: run `python tools/gen_config_reference.py` and commit the result"


def test_the_reference_lists_every_setting_with_its_default():
    from dmpc_core.agents.mpq import MpqSettings
    from dmpc_core.settings import describe

    text = _tool().render()
    rows = describe(MpqSettings, "agent.")
    assert rows
    for key, _, default, _ in rows:
        assert f"| `{key}` |" in text, key
    assert "| `agent.mppi.horizon` | int | `8` |" in text  # the MPQ default, not MppiAgentSettings' own
    assert "| `reach.critic_weight` | float | `0.5` |" in text


def test_check_mode_sees_a_stale_page(tmp_path):
    stale = tmp_path / "configuration.md"
    stale.write_text("# old\n")
    assert _tool().main(["--check", "--out", str(stale)]) == 1
    stale.write_text(_tool().render())
    assert _tool().main(["--check", "--out", str(stale)]) == 0
