"""Ballbot in the embedded simulator: sim_node, controller_node and (optionally) learner_node.

    ros2 launch dmpc_ros ballbot_sim.launch.py [config:=FILE] [learner:=true|false] [mode:=sim|hardware]
        [variant:=tracking]

The node graph comes from the config YAML through dmpc_ros.graph.build_graph (the same specs
`python -m dmpc_ros.launcher` starts without launch_ros). mode:=hardware starts the same graph
without the simulator node: the robot's driver must then publish joint_states and take commands
on the config's topics. variant:=tracking applies the config's ``tracking`` variant (the
goal-tracking MPC that reaches goals without a critic; the default graph runs the Deep Value MPC
actor, which needs a learned critic).
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration

from dmpc_ros.launch_support import dmpc_nodes, resolve, truthy

DEFAULT_CONFIG = "ballbot_sim.yaml"


def graph_actions(context):
    config = resolve("config", LaunchConfiguration("config").perform(context))
    learner = truthy(LaunchConfiguration("learner").perform(context))
    hardware = LaunchConfiguration("mode").perform(context) == "hardware"
    variant = LaunchConfiguration("variant").perform(context) or None
    return dmpc_nodes(config, learner, variant=variant, exclude=("sim_node",) if hardware else ())


def generate_launch_description():
    return LaunchDescription([
        DeclareLaunchArgument("config", default_value=DEFAULT_CONFIG, description="config YAML (in share/dmpc_ros/config or absolute)"),
        DeclareLaunchArgument("learner", default_value="true", description="start the critic learner"),
        DeclareLaunchArgument("mode", default_value="sim", description="sim: embedded simulator; hardware: no sim node"),
        DeclareLaunchArgument("variant", default_value="", description="a variants.<NAME> of the config (tracking)"),
        OpaqueFunction(function=graph_actions),
    ])
