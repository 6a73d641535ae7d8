"""Franka Panda / FR3 hardware through franka_ros2: no sim node; franka_controller reads the arm's
joint states and commands the effort forward controller.

    ros2 launch dmpc_ros franka_hardware.launch.py [config:=franka_sim.yaml] [learner:=false] [spawn_controller:=true]

Start the robot's driver first (franka_ros2's franka_bringup with its controller_manager, e.g.
``ros2 launch franka_bringup franka.launch.py robot_ip:=...``). This file applies the config's
``hardware`` variant (state from /franka/joint_states -- franka_ros2's arm joints only, named as
the controller's ``joint_names``: set fr3_joint1..7 for an FR3 --, commands on
/effort_controller/commands, ``reach.subtract_gravity: true`` because libfranka adds gravity
compensation itself) and, with spawn_controller:=true, spawns the effort controller
(effort_controllers/JointGroupEffortController, parameters from
dmpc_ros.description.ros2_control_params) in the running controller_manager.

NOT TESTED: no robot, franka_ros2 or ros2_control on the development machines; this file has only
been checked to build its action list where launch_ros exists. Test on the robot with care (low
goals first, the user stop at hand).
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from dmpc_ros.launch_support import dmpc_nodes, resolve, truthy, write_controllers_file

DEFAULT_CONFIG = "franka_sim.yaml"
VARIANT = "hardware"


def graph_actions(context):
    from dmpc_ros.graph import load_config

    config = resolve("config", LaunchConfiguration("config").perform(context))
    learner = truthy(LaunchConfiguration("learner").perform(context))
    actions = dmpc_nodes(config, learner, VARIANT)
    if truthy(LaunchConfiguration("spawn_controller").perform(context)):
        effort = load_config(config, {"variant": VARIANT})["ros2_control"]["effort_controller"]
        actions.append(Node(package="controller_manager", executable="spawner",
                            arguments=[effort, "--param-file", write_controllers_file(config, VARIANT)],
                            output="screen"))
    return actions


def generate_launch_description():
    return LaunchDescription([
        DeclareLaunchArgument("config", default_value=DEFAULT_CONFIG, description="config YAML (in share/dmpc_ros/config or absolute)"),
        DeclareLaunchArgument("learner", default_value="false", description="no learner is wired for the Franka: true fails"),
        DeclareLaunchArgument("spawn_controller", default_value="true", description="spawn the effort controller"),
        OpaqueFunction(function=graph_actions),
    ])
