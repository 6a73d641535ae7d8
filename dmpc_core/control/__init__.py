"""The controller the ROS nodes deploy, without ROS.

``core`` (ControllerCore: queued inputs, watchdog, envelope, limits), ``robot`` (the Robot
protocol: Ballbot, Panda), ``critic_source`` (critic files and the validation worker),
``node_settings`` (the controller node's settings), the wire formats ``transitions`` and
``policy_wire``, the reach MPCs ``reach_mpc`` / ``panda_reach``, and ``global_policy`` (a trained
MDGPS global policy behind the same update/control interface).
"""
