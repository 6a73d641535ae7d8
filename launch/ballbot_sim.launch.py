"""Ballbot in the embedded simulator: sim_node, controller_node and (optionally) learner_node.

    ros2 launch dmpc_ros ballbot_sim.launch.py [config:=FILE] [learner:=true|false] [mode:=sim|hardware]

The node graph comes from the config YAML through dmpc_ros.graph.build_graph (the same specs
`python -m dmpc_ros.launcher` starts without launch_ros).
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from dmpc_ros.graph import build_graph

DEFAULT_CONFIG = "ballbot_sim.yaml"


def graph_actions(context, default_config=DEFAULT_CONFIG, drop=()):
    config = LaunchConfiguration("config").perform(context)
    if not os.path.isabs(config):
        config = os.path.join(get_package_share_directory("dmpc_ros"), "config", config)
    learner = LaunchConfiguration("learner").perform(context).lower() in ("true", "on", "1")
    mode = LaunchConfiguration("mode").perform(context)
    actions = []
    for spec in build_graph(config, {"learner": learner}):
        if spec.executable in drop or (mode == "hardware" and spec.executable == "sim_node"):
            continue
        actions.append(Node(package="dmpc_ros", executable=spec.executable, name=spec.name,
                            parameters=[spec.parameters], remappings=spec.remappings, output="screen"))
    return actions


def generate_launch_description():
    return LaunchDescription([
        DeclareLaunchArgument("config", default_value=DEFAULT_CONFIG, description="config YAML (in share/dmpc_ros/config or absolute)"),
        DeclareLaunchArgument("learner", default_value="true", description="start the critic learner"),
        DeclareLaunchArgument("mode", default_value="sim", description="sim: embedded simulator; hardware: no sim node"),
        OpaqueFunction(function=graph_actions),
    ])
