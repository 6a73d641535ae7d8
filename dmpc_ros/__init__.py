"""ROS 2 nodes of dmpc: translate messages <-> numpy and parameters <-> dmpc_core settings."""
