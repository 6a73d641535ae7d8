"""Controllers that the ROS nodes deploy (no ROS imports): the Ballbot and Panda reach MPCs and the
trained MDGPS global policy."""
