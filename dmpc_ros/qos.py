"""QoS profiles of the dmpc topics (one place; docs/ros.md lists which topic uses which)."""
from __future__ import annotations

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

#: RELIABLE, keep-last 10: commands and states (ros2_control forward controllers use reliable).
QOS_RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)
#: latest-value streams (state into the controller, commands into the plant): reliable, depth 1.
#: A consumer that falls behind skips to the newest sample instead of working through a backlog
#: (with depth 10 a lagging executor added up to 10 periods of queueing latency).
QOS_LATEST = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)
#: reliable deep queue for transitions (no batch lost while the learner is busy).
QOS_TRANSITIONS = QoSProfile(depth=200, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)
#: critic bundles: reliable + transient local (a controller started later still gets the latest).
QOS_CRITIC = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST,
                        durability=DurabilityPolicy.TRANSIENT_LOCAL)
