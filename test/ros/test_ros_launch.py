"""Node graph, launcher, launch files and entry points (no DDS traffic; fast)."""
from __future__ import annotations

import ast
import importlib
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dmpc_core.critics.signing import read_key
from dmpc_ros.graph import build_graph, load_config

pytestmark = pytest.mark.ros
ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "config" / "ballbot_sim.yaml"
FRANKA = ROOT / "config" / "franka_sim.yaml"
NODES = ("sim_node", "controller_node", "learner_node")


def test_build_graph_from_config_and_overrides():
    specs = build_graph(CONFIG)
    assert [s.executable for s in specs] == list(NODES)
    ctrl = specs[1]
    assert ctrl.name == "ballbot_controller"
    assert ("commands", "/ballbot_controller/commands") in ctrl.remappings
    assert ctrl.parameters["reach"]["mpc"]["tracking_rate"] == 400.0
    off = build_graph(CONFIG, {"learner": False, "nodes.controller.parameters.reach.critic_weight": 0.25})
    assert [s.executable for s in off] == ["sim_node", "controller_node"]
    assert off[1].parameters["reach"]["critic_weight"] == 0.25
    with pytest.raises(KeyError, match="not a section"):
        build_graph(CONFIG, {"nodes.nope.parameters.x": 1})


def test_node_parameters_match_the_settings_dataclasses():
    """Every controller/learner parameter in the config maps onto a settings field (typos fail)."""
    from dmpc_core.critics.gate import GateSettings
    from dmpc_core.critics.learner import LearnerSettings
    from dmpc_core.control.reach_mpc import ReachSettings
    from dmpc_core.settings import from_dict

    from dmpc_core.control.node_settings import ControllerNodeSettings

    cfg = load_config(CONFIG)
    p = cfg["nodes"]["controller"]["parameters"]
    from_dict(ControllerNodeSettings, {k: v for k, v in p.items() if k not in ("reach", "gate")}, "controller")
    from_dict(ReachSettings, p["reach"], "reach")
    from_dict(GateSettings, p["gate"], "gate")
    from_dict(LearnerSettings, cfg["nodes"]["learner"]["parameters"]["learner"], "learner")


def test_graph_generates_one_private_key_for_auto(tmp_path):
    specs = build_graph(CONFIG, key_dir=str(tmp_path))
    paths = {s.parameters.get("critic_hmac_key_file") for s in specs if s.executable != "sim_node"}
    assert paths == {str(tmp_path / "critic_hmac.key")}
    assert os.stat(tmp_path / "critic_hmac.key").st_mode & 0o777 == 0o600
    assert len(read_key(tmp_path / "critic_hmac.key")) == 64  # 32 random bytes, hex
    with pytest.raises(ValueError, match="unknown keys"):
        build_graph(CONFIG, {"nodes.learner.respwan": True})


def test_launcher_dry_run_lists_one_process_per_node():
    out = subprocess.run([sys.executable, "-m", "dmpc_ros.launcher", str(CONFIG), "--learner", "off", "--dry-run"],
                         capture_output=True, text=True, cwd=ROOT, check=True).stdout.strip().splitlines()
    assert len(out) == 2
    assert "-m dmpc_ros.sim_node --ros-args -r __node:=ballbot_sim --params-file" in out[0]
    assert "-r joint_states:=/ballbot/joint_states" in out[1]
    hw = subprocess.run([sys.executable, "-m", "dmpc_ros.launcher", str(CONFIG), "--mode", "hardware", "--dry-run"],
                        capture_output=True, text=True, cwd=ROOT, check=True).stdout
    assert "sim_node" not in hw and "controller_node" in hw and "learner_node" in hw


@pytest.mark.parametrize("name", NODES + ("launcher", "main_job"))
def test_modules_have_main(name):
    mod = importlib.import_module(f"dmpc_ros.{name}")
    assert callable(mod.main)


def test_console_scripts_declared_in_setup_py():
    tree = ast.parse((ROOT / "setup.py").read_text())
    scripts = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str) and "=" in n.value]
    missing = [n for n in NODES if f"{n} = dmpc_ros.{n}:main" not in scripts]
    assert not missing, f"setup.py does not declare the console scripts {missing}"


#: launch file -> (config, dmpc executables it must start with learner:=false, mode:=sim)
LAUNCH_GRAPHS = {
    "ballbot_sim.launch.py": (CONFIG, ["sim_node", "controller_node"]),
    "franka_sim.launch.py": (FRANKA, ["sim_node", "controller_node"]),
    "franka_gazebo.launch.py": (FRANKA, ["controller_node"]),
    "franka_hardware.launch.py": (FRANKA, ["controller_node"]),
}


def test_every_launch_file_is_listed():
    assert sorted(p.name for p in (ROOT / "launch").glob("*.launch.py")) == sorted(LAUNCH_GRAPHS)


@pytest.mark.parametrize("launch_file", sorted(LAUNCH_GRAPHS))
def test_launch_files_generate_the_graph(launch_file):
    if importlib.util.find_spec("launch_ros") is None:
        pytest.skip("launch_ros is not installed (no PyPI wheel)")
    from launch import LaunchContext
    from launch.actions import DeclareLaunchArgument, OpaqueFunction

    config, expected = LAUNCH_GRAPHS[launch_file]
    spec = importlib.util.spec_from_file_location("lf", ROOT / "launch" / launch_file)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    ld = mod.generate_launch_description()
    ctx = LaunchContext()
    for e in ld.entities:  # defaults of every declared argument, then the test's values
        if isinstance(e, DeclareLaunchArgument) and e.default_value is not None:
            ctx.launch_configurations[e.name] = "".join(x.perform(ctx) for x in e.default_value)
    ctx.launch_configurations.update({"config": str(config), "learner": "false", "mode": "sim"})
    nodes = []
    for e in ld.entities:
        if isinstance(e, OpaqueFunction):
            nodes += e.execute(ctx) or []
    assert [n.node_executable for n in nodes if n.node_package == "dmpc_ros"] == expected
    if launch_file.startswith("franka"):
        ctx.launch_configurations["learner"] = "true"
        with pytest.raises(ValueError, match="no learner node"):
            for e in ld.entities:
                if isinstance(e, OpaqueFunction):
                    e.execute(ctx)


def test_launch_support_builds_the_nodes_from_the_graph(monkeypatch):
    """dmpc_nodes (used by every launch file) with a stand-in for launch_ros.actions.Node, so that
    the part of the launch files that is ours runs here too: the YAML's graph, the learner switch
    and the hardware mode's exclusion of the simulator."""
    import types

    from dmpc_ros import launch_support

    class Node:
        def __init__(self, **kwargs):
            self.kwargs = kwargs

    class Shutdown:
        def __init__(self, reason=""):
            self.reason = reason

    actions = types.ModuleType("launch_ros.actions")
    actions.Node = Node
    pkg = types.ModuleType("launch_ros")
    pkg.actions = actions
    launch_actions = types.ModuleType("launch.actions")
    launch_actions.Shutdown = Shutdown
    launch_pkg = types.ModuleType("launch")
    launch_pkg.actions = launch_actions
    monkeypatch.setitem(sys.modules, "launch_ros", pkg)
    monkeypatch.setitem(sys.modules, "launch_ros.actions", actions)
    monkeypatch.setitem(sys.modules, "launch", launch_pkg)
    monkeypatch.setitem(sys.modules, "launch.actions", launch_actions)
    nodes = launch_support.dmpc_nodes(str(CONFIG), learner=True)
    specs = build_graph(str(CONFIG), {"learner": True})
    assert [n.kwargs["executable"] for n in nodes] == [s.executable for s in specs] == \
        ["sim_node", "controller_node", "learner_node"]
    # one generated key per launch, shared by the controller and the learner
    keys = {n.kwargs["parameters"][0].pop("critic_hmac_key_file", None) for n in nodes[1:]}
    assert len(keys) == 1 and os.path.isfile(keys.pop())
    for s in specs[1:]:
        s.parameters.pop("critic_hmac_key_file")
    for n, s in zip(nodes, specs):
        assert n.kwargs["package"] == "dmpc_ros" and n.kwargs["name"] == s.name
        assert n.kwargs["parameters"] == [s.parameters] and n.kwargs["remappings"] == s.remappings
        # essential nodes end the launch when they exit; the learner respawns instead
        assert (n.kwargs["on_exit"] is not None) == s.essential and n.kwargs["respawn"] == s.respawn
    assert [s.essential for s in specs] == [True, True, False] and specs[2].respawn
    hw = launch_support.dmpc_nodes(str(CONFIG), learner=False, exclude=("sim_node",))
    assert [n.kwargs["executable"] for n in hw] == ["controller_node"]
    assert launch_support.truthy("True") and not launch_support.truthy("off")
    assert launch_support.resolve("config", str(CONFIG)) == str(CONFIG)

# -- Franka graph (no DDS) ------------------------------------------------------------------------
def test_franka_graph_and_variants():
    """One YAML, three graphs: sim (sim + controller), gazebo and hardware (controller only, their
    topics; hardware subtracts gravity because libfranka adds it)."""
    sim = build_graph(FRANKA)
    assert [s.executable for s in sim] == ["sim_node", "controller_node"]
    ctrl = sim[1]
    assert ctrl.parameters["robot"] == "panda" and sim[0].parameters["backend"] == "mujoco"
    assert ("commands", "/effort_controller/commands") in ctrl.remappings
    assert ctrl.parameters["reach"]["subtract_gravity"] is False
    # the sim and the MPC model must use the same joint damping (docs/ros.md)
    assert sim[0].parameters["joint_damping"] == ctrl.parameters["reach"]["joint_damping"]
    gz = build_graph(FRANKA, {"variant": "gazebo"})
    assert [s.executable for s in gz] == ["controller_node"]
    assert ("joint_states", "/joint_states") in gz[0].remappings
    hw = build_graph(FRANKA, {"variant": "hardware", "learner": False})
    assert [s.executable for s in hw] == ["controller_node"]
    assert ("joint_states", "/franka/joint_states") in hw[0].remappings
    assert hw[0].parameters["reach"]["subtract_gravity"] is True
    with pytest.raises(ValueError, match="no learner node"):
        build_graph(FRANKA, {"learner": True})
    with pytest.raises(KeyError, match="no variant"):
        build_graph(FRANKA, {"variant": "moon"})
    with pytest.raises(KeyError, match="no variant"):
        build_graph(CONFIG, {"variant": "gazebo"})


def test_franka_node_parameters_match_the_settings_dataclasses():
    from dmpc_core.control.panda_reach import PandaReachSettings
    from dmpc_core.settings import from_dict

    p = load_config(FRANKA)["nodes"]["controller"]["parameters"]
    settings = from_dict(PandaReachSettings, p["reach"], "reach")
    settings.validate()
    assert settings.joint_damping == p["reach"]["joint_damping"]


def test_launcher_franka_dry_run_and_learner_error():
    run = lambda *a: subprocess.run([sys.executable, "-m", "dmpc_ros.launcher", str(FRANKA), *a],  # noqa: E731
                                    capture_output=True, text=True, cwd=ROOT)
    out = run("--dry-run")
    assert out.returncode == 0
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 2 and "dmpc_ros.sim_node" in lines[0] and "__node:=franka_controller" in lines[1]
    hw = run("--mode", "hardware", "--dry-run").stdout
    assert "sim_node" not in hw and "joint_states:=/franka/joint_states" in hw
    bad = run("--learner", "on", "--dry-run")
    assert bad.returncode == 2 and "no learner node" in bad.stderr


def test_robot_description_and_ros2_control_params():
    from dmpc_ros.description import controller_from_topic, robot_description, ros2_control_params

    urdf = (ROOT / "urdf" / "panda.urdf").read_text()
    assert robot_description(urdf, "mock") == urdf  # the file's own plugin is the mock one
    gz = robot_description(urdf, "gazebo", "/tmp/c.yaml")
    assert "gz_ros2_control/GazeboSimSystem" in gz and "mock_components" not in gz
    assert "<parameters>/tmp/c.yaml</parameters>" in gz and '<child link="panda_link0"/>' in gz
    import xml.etree.ElementTree as ET

    root = ET.fromstring(gz)
    joints = root.find("ros2_control").findall("joint")
    assert [j.get("name") for j in joints] == [f"panda_joint{i}" for i in range(1, 8)]
    assert all(j.find("command_interface").get("name") == "effort" for j in joints)
    with pytest.raises(ValueError, match="controllers parameter file"):
        robot_description(urdf, "gazebo")
    params = ros2_control_params(load_config(FRANKA, {"variant": "gazebo"}))
    assert params["effort_controller"]["ros__parameters"]["joints"] == [f"panda_joint{i}" for i in range(1, 8)]
    cm = params["controller_manager"]["ros__parameters"]
    assert cm["effort_controller"]["type"] == "effort_controllers/JointGroupEffortController"
    assert controller_from_topic("/effort_controller/commands") == "effort_controller"
    with pytest.raises(ValueError):
        controller_from_topic("/commands")


def test_launch_support_writes_the_controllers_file():
    """The launch files' helper imports without launch_ros and writes ros2_control_params."""
    import yaml

    from dmpc_ros.description import ros2_control_params
    from dmpc_ros.launch_support import write_controllers_file

    path = Path(write_controllers_file(str(FRANKA), "hardware"))
    try:
        assert yaml.safe_load(path.read_text()) == ros2_control_params(load_config(FRANKA, {"variant": "hardware"}))
    finally:
        path.unlink()
