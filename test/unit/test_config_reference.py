"""docs/configuration.md is generated from the settings dataclasses (tools/gen_config_reference.py);
this fails when the committed page is stale, i.e. a setting, default or docstring changed without
regenerating it."""
from __future__ import annotations

from pathlib import Path

from tool_module import load_tool

ROOT = Path(__file__).resolve().parents[2]
_TOOL = load_tool("gen_config_reference")
_TOOL_RENDER = _TOOL.render  # the tool's own renderer (a test below patches _TOOL.render to _render)
_RENDERED: list[str] = []


def _tool():
    return _TOOL


def _render() -> str:
    if not _RENDERED:
        _RENDERED.append(_TOOL_RENDER())
    return _RENDERED[0]


def test_committed_configuration_reference_is_current():
    committed = (ROOT / "docs" / "configuration.md").read_text()
    assert committed == _render(), \
        "docs/configuration.md is stale: run `python tools/gen_config_reference.py` and commit the result"


def test_the_reference_lists_every_setting_with_its_default():
    from dmpc_core.agents.mpq import MpqSettings
    from dmpc_core.settings import describe

    text = _render()
    rows = describe(MpqSettings, "agent.")
    assert rows
    for key, _, default, _ in rows:
        assert f"| `{key}` |" in text, key
    assert "| `agent.mppi.horizon` | int | `8` |" in text  # the MPQ default, not MppiAgentSettings' own
    assert "| `reach.critic_weight` | float | `1.0` |" in text


def test_check_mode_sees_a_stale_page(tmp_path, monkeypatch):
    monkeypatch.setattr(_TOOL, "render", _render)  # the page rendered once for this module
    stale = tmp_path / "configuration.md"
    stale.write_text("# old\n")
    assert _tool().main(["--check", "--out", str(stale)]) == 1
    stale.write_text(_render())
    assert _tool().main(["--check", "--out", str(stale)]) == 0
