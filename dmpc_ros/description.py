"""Robot description and ros2_control parameters for the Franka launch files (no ROS import).

- :func:`robot_description`: the project's ``urdf/panda.urdf`` as the ``robot_description``
  string, with its ``<ros2_control>`` hardware plugin chosen for the target: ``mock`` (as written:
  ros2_control's mock_components/GenericSystem), ``gazebo`` (gz_ros2_control/GazeboSimSystem, the
  gz_ros2_control Gazebo plugin pointing at the controllers parameter file, and the base fixed
  to the ``world`` link).
- :func:`ros2_control_params`: controller_manager parameters (joint_state_broadcaster and the
  effort forward controller) built from the ``ros2_control:`` section and the controller's
  ``joint_names`` of the graph config, so config/franka_sim.yaml stays the one source of truth.
"""
from __future__ import annotations

import re
from typing import Any, Dict

HARDWARE_PLUGINS = {
    "mock": "mock_components/GenericSystem",
    "gazebo": "gz_ros2_control/GazeboSimSystem",
}


def controller_from_topic(topic: str) -> str:
    """``/effort_controller/commands`` -> ``effort_controller`` (ros2_control's topic convention)."""
    parts = [p for p in topic.split("/") if p]
    if len(parts) != 2 or parts[1] != "commands":
        raise ValueError(f"commands topic {topic!r} is not /<controller>/commands")
    return parts[0]


def ros2_control_params(cfg: Dict[str, Any]) -> Dict[str, Any]:
    """controller_manager parameters (a ROS params-file structure) for a loaded graph config."""
    rc = cfg.get("ros2_control")
    if not rc:
        raise KeyError("config has no ros2_control section")
    name = rc["effort_controller"]
    topic_name = controller_from_topic(cfg["topics"]["commands"])
    if topic_name != name:
        raise ValueError(f"ros2_control.effort_controller {name!r} does not match topics.commands "
                         f"{cfg['topics']['commands']!r}")
    joints = list(cfg["nodes"]["controller"]["parameters"]["joint_names"])
    return {
        "controller_manager": {"ros__parameters": {
            "update_rate": int(rc.get("update_rate", 1000)),
            "joint_state_broadcaster": {"type": "joint_state_broadcaster/JointStateBroadcaster"},
            name: {"type": rc.get("effort_controller_type", "effort_controllers/JointGroupEffortController")},
        }},
        name: {"ros__parameters": {"joints": joints}},
    }


def robot_description(urdf_text: str, hardware: str = "mock", controllers_file: str = "") -> str:
    """The URDF with its ros2_control hardware plugin set for ``hardware`` ('mock' or 'gazebo').

    For 'gazebo', ``controllers_file`` (the ros2_control_params written to YAML) is required; the
    base link is fixed to a ``world`` link and the gz_ros2_control system plugin is added.
    """
    if hardware not in HARDWARE_PLUGINS:
        raise ValueError(f"hardware {hardware!r} is not one of {sorted(HARDWARE_PLUGINS)}")
    pattern = r"(<ros2_control\b[^>]*>\s*<hardware>\s*<plugin>)[^<]*(</plugin>)"
    text, n = re.subn(pattern, r"\g<1>" + HARDWARE_PLUGINS[hardware] + r"\g<2>", urdf_text, count=1)
    if n != 1:
        raise ValueError("the URDF has no <ros2_control><hardware><plugin> block")
    if hardware == "gazebo":
        if not controllers_file:
            raise ValueError("gazebo needs the controllers parameter file")
        root = re.search(r"<link\s+name=\"([^\"]+)\"", text)
        extra = (f'\n  <link name="world"/>\n  <joint name="world_to_base" type="fixed">\n'
                 f'    <parent link="world"/>\n    <child link="{root.group(1)}"/>\n  </joint>\n'
                 f'  <gazebo>\n    <plugin filename="gz_ros2_control-system" '
                 f'name="gz_ros2_control::GazeboSimROS2ControlPlugin">\n'
                 f'      <parameters>{controllers_file}</parameters>\n    </plugin>\n  </gazebo>\n')
        idx = text.rindex("</robot>")
        text = text[:idx] + extra + text[idx:]
    return text
