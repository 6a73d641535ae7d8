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

