"""Franka Panda in the embedded simulator: franka_sim (MuJoCo or the core's pinocchio model) and
franka_controller, plus robot_state_publisher for RViz.

    ros2 launch dmpc_ros franka_sim.launch.py [config:=franka_sim.yaml] [learner:=false] [mode:=sim|hardware]

The dmpc nodes come from the config YAML through dmpc_ros.graph.build_graph (the same specs that
``dmpc launch config/franka_sim.yaml`` starts without launch_ros). No learner is wired for the
Franka: learner:=true fails with a clear error. mode:=hardware drops the sim node and applies
the config's ``hardware`` variant (same as launch/franka_hardware.launch.py without the spawner).
Not runnable on the development machines (no launch_ros wheel); the graph itself is tested there.
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from dmpc_ros.launch_support import dmpc_nodes, resolve, truthy

DEFAULT_CONFIG = "franka_sim.yaml"


def graph_actions(context):
    config = resolve("config", LaunchConfiguration("config").perform(context))
    learner = truthy(LaunchConfiguration("learner").perform(context))
    hardware = LaunchConfiguration("mode").perform(context) == "hardware"
    actions = dmpc_nodes(config, learner, "hardware" if hardware else None)
    from dmpc_ros.graph import load_config

    topics = load_config(config, {"variant": "hardware"} if hardware else None)["topics"]
    with open(resolve("urdf", "panda.urdf")) as f:
        urdf = f.read()
    actions.append(Node(package="robot_state_publisher", executable="robot_state_publisher",
                        parameters=[{"robot_description": urdf}],
                        remappings=[("joint_states", topics["joint_states"])], output="screen"))
    return actions


def generate_launch_description():
    return LaunchDescription([
        DeclareLaunchArgument("config", default_value=DEFAULT_CONFIG, description="config YAML (in share/dmpc_ros/config or absolute)"),
        DeclareLaunchArgument("learner", default_value="false", description="no learner is wired for the Franka: true fails"),
        DeclareLaunchArgument("mode", default_value="sim", description="sim: embedded simulator; hardware: no sim node"),
        OpaqueFunction(function=graph_actions),
    ])
