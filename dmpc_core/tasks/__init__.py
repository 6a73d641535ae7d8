"""Task definitions: robots, costs and episodes (no ROS)."""
