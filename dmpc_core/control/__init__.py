"""The controller the ROS nodes deploy, without ROS.

``core`` (ControllerCore: queued inputs, watchdog, envelope, limits), ``robot`` (the Robot
protocol: Ballbot, Panda), ``critic_source`` (critic files and the validation worker),
``node_settings`` (the controller node's settings), the wire formats ``transitions`` and
``policy_wire``, and the reach MPCs ``reach_mpc`` / ``panda_reach``.
"""
