"""Franka Panda in Gazebo (gz sim) through ros_gz_sim and gz_ros2_control; our sim node is dropped.

    ros2 launch dmpc_ros franka_gazebo.launch.py [config:=franka_sim.yaml] [learner:=false] [world:=empty.sdf]

Follows the ros_gz_sim / gz_ros2_control conventions: robot_state_publisher publishes
``robot_description`` (urdf/panda.urdf with the gz_ros2_control/GazeboSimSystem plugin and the
base fixed to ``world``, dmpc_ros.description.robot_description), ``ros_gz_sim create`` spawns
it from that topic, controller_manager spawners start ``joint_state_broadcaster`` and the effort
forward controller (effort_controllers/JointGroupEffortController, name from the config's
``ros2_control`` section; parameters written by dmpc_ros.description.ros2_control_params), and
franka_controller is started from config/franka_sim.yaml with its ``gazebo`` variant
(state from /joint_states, commands on /effort_controller/commands).

NOT TESTED: Gazebo, ros_gz and ros2_control cannot be installed on the development machines
(no wheels), so this file has only been checked to build its action list where launch_ros exists.
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription, OpaqueFunction
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from dmpc_ros.launch_support import dmpc_nodes, resolve, truthy, write_controllers_file

DEFAULT_CONFIG = "franka_sim.yaml"
VARIANT = "gazebo"


def graph_actions(context):
    from dmpc_ros.description import robot_description
    from dmpc_ros.graph import load_config

    config = resolve("config", LaunchConfiguration("config").perform(context))
    learner = truthy(LaunchConfiguration("learner").perform(context))
    cfg = load_config(config, {"variant": VARIANT})
    controllers = write_controllers_file(config, VARIANT)
    with open(resolve("urdf", "panda.urdf")) as f:
        urdf = robot_description(f.read(), "gazebo", controllers)
    effort = cfg["ros2_control"]["effort_controller"]
    return dmpc_nodes(config, learner, VARIANT) + [
        Node(package="robot_state_publisher", executable="robot_state_publisher",
             parameters=[{"robot_description": urdf, "use_sim_time": True}], output="screen"),
        Node(package="ros_gz_sim", executable="create",
             arguments=["-topic", "robot_description", "-name", "panda"], output="screen"),
        Node(package="ros_gz_bridge", executable="parameter_bridge",
             arguments=["/clock@rosgraph_msgs/msg/Clock[gz.msgs.Clock"], output="screen"),
        Node(package="controller_manager", executable="spawner",
             arguments=["joint_state_broadcaster", "--param-file", controllers], output="screen"),
        Node(package="controller_manager", executable="spawner",
             arguments=[effort, "--param-file", controllers], output="screen"),
    ]


def generate_launch_description():
    gz = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(PathJoinSubstitution([FindPackageShare("ros_gz_sim"), "launch", "gz_sim.launch.py"])),
        launch_arguments={"gz_args": ["-r ", LaunchConfiguration("world")]}.items())
    return LaunchDescription([
        DeclareLaunchArgument("config", default_value=DEFAULT_CONFIG, description="config YAML (in share/dmpc_ros/config or absolute)"),
        DeclareLaunchArgument("learner", default_value="false", description="no learner is wired for the Franka: true fails"),
        DeclareLaunchArgument("world", default_value="empty.sdf", description="gz sim world"),
        gz,
        OpaqueFunction(function=graph_actions),
    ])
