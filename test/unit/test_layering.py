"""Architecture rule: dmpc_core/ and cpp_ext/ never import ROS (rclpy or ROS message packages)."""
from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ROS_MODULES = {"rclpy", "launch", "launch_ros", "std_msgs", "sensor_msgs", "geometry_msgs", "nav_msgs",
               "trajectory_msgs", "visualization_msgs", "diagnostic_msgs", "std_srvs", "rcl_interfaces",
               "builtin_interfaces", "rosgraph_msgs", "dmpc_ros"}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_dmpc_core_imports_no_ros():
    offenders = {}
    for path in sorted((ROOT / "dmpc_core").rglob("*.py")):
        bad = imported_modules(path) & ROS_MODULES
        if bad:
            offenders[str(path.relative_to(ROOT))] = sorted(bad)
    assert not offenders, f"dmpc_core must not import ROS: {offenders}"


def test_cpp_core_includes_no_ros():
    pattern = re.compile(r'#\s*include\s*[<"](rclcpp|rcl|ros|std_msgs|sensor_msgs|geometry_msgs)[/_.]')
    offenders = [str(p.relative_to(ROOT)) for p in (ROOT / "cpp_ext").rglob("*.*")
                 if p.suffix in {".hpp", ".h", ".cpp", ".c"} and pattern.search(p.read_text(errors="ignore"))]
    assert not offenders, f"cpp_ext must not include ROS headers: {offenders}"


def test_the_controller_and_its_mpc_worker_do_not_import_the_learning_code(tmp_path):
    """The controller node and its MPC worker process load, check and run critics without torch
    (the learner's dependency): importing it costs seconds and ~200 MB per process, and an
    import on the first critic, in the controller's critic thread, held the GIL long enough to
    starve the control loop (the robot fell). A fresh interpreter imports the node, builds the
    MPC, runs a learner's bundle through the whole gate, installs it and builds the Deep Value
    MPC actor with it; torch must not be imported."""
    import subprocess
    import sys

    blob = tmp_path / "critic.onnx"
    made = subprocess.run([sys.executable, "-c",
                           "import sys; from dmpc_core.critics.learner import CriticLearner, LearnerSettings; "
                           f"CriticLearner(LearnerSettings(critic='lead'), 10, 2, 'ballbot').export({str(blob)!r})"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert made.returncode == 0, made.stderr[-2000:]
    code = (
        "import sys\n"
        "import dmpc_ros.controller_node, dmpc_core.control.mpc_worker, dmpc_core.control.critic_source\n"
        "from dmpc_core.control.reach_mpc import ReachMpc, ReachSettings\n"
        "from dmpc_core.control.robot import make_robot\n"
        "from dmpc_core.critics.gate import CriticStore, GateSettings, ProbeSet, validate_candidate\n"
        "make_robot('ballbot', ReachSettings()).make_mpc((0.5, 0.0))\n"
        f"blob = open({str(blob)!r}, 'rb').read()\n"
        "probes = ProbeSet.uniform([1.0] * 10, [1.0, 1.0], 4.0, 16, 0)\n"
        "c = validate_candidate(blob, None, 10, 2, probes, GateSettings(allow_unsigned=True), robot='ballbot', task='reach')\n"
        f"CriticStore(state_file={str(tmp_path / 'versions.json')!r}).install(c)\n"
        "assert ReachMpc(ReachSettings(), (0.5, 0.0), critic=c.critic).dmpc\n"
        "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.'))[:3])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]", f"torch imported: {out.stdout.strip()}"
