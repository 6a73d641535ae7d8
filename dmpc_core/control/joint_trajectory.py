"""Joint-space trajectories followed in time (the ``trajectory_msgs/JointTrajectory`` convention of
``joint_trajectory_controller``), without ROS.

A request is a list of points (positions, optional velocities) with their ``time_from_start``
and the joint names in the order the sender chose. :func:`parse_joint_trajectory` maps the
names onto the robot's joint order and validates everything (the node calls it where the message
arrives); :meth:`JointTrajectory.reference` turns it into MPC knots when the MPC thread takes it.

Reference r(t) = (q_ref(t), v_ref(t)) through the knots:

* the trajectory starts when the MPC thread takes it (MPC time t_s); point k is due at
  t_s + time_from_start[k];
* when the first point is due after t_s, the measured configuration at t_s (at rest) is
  prepended at t_s, so the arm moves from where it is to the first point over that time
  (``joint_trajectory_controller`` also starts from the current state);
* q_ref is piecewise linear through the points (as ``joint_trajectory_controller`` interpolates
  positions-only points); v_ref at a knot is the sender's velocity when every point has
  velocities, otherwise the central difference of the neighbouring points, and zero at the last
  point; both are held after the last point.

The tracking error reported in diagnostics is max_i |q_i - q_ref,i(t)| [rad] (:meth:`JointTrajectory.error`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Sequence, Tuple

import numpy as np


@dataclass(frozen=True)
class JointTrajectory:
    """A validated joint trajectory in the robot's joint order.

    Attributes:
        times: (K,) time_from_start of the points [s], >= 0 and strictly increasing.
        positions: (K, n) joint positions [rad].
        velocities: (K, n) joint velocities [rad/s], or None (derived from the positions).
    """

    times: np.ndarray
    positions: np.ndarray
    velocities: Optional[np.ndarray] = None

    @property
    def duration(self) -> float:
        return float(self.times[-1])

    @property
    def final_positions(self) -> np.ndarray:
        return self.positions[-1].copy()

    def reference(self, t_start: float, q_now: Optional[np.ndarray] = None) -> Tuple[np.ndarray, np.ndarray]:
        """Knots (times (M,) on the MPC clock, X_ref (M, 2n)) for a start at MPC time ``t_start``
        from the measured configuration ``q_now`` (prepended at ``t_start`` when the first point
        is due later; ignored when it is None or the first point is due at once)."""
        times, Q = self.times, self.positions
        n = Q.shape[1]
        if self.velocities is not None:
            V = self.velocities.copy()
        else:
            V = np.zeros_like(Q)
            if len(times) > 2:
                V[1:-1] = (Q[2:] - Q[:-2]) / (times[2:] - times[:-2])[:, None]
        if q_now is not None and times[0] > 0.0:
            q_now = np.asarray(q_now, float)[:n]
            if self.velocities is None and len(times) > 1:
                # the first point is now interior: central difference through the start
                V[0] = (Q[1] - q_now) / times[1]
            times = np.concatenate([[0.0], times])
            Q = np.vstack([q_now, Q])
            V = np.vstack([np.zeros(n), V])
        return t_start + times, np.hstack([Q, V])

    def error(self, t: float, q: np.ndarray, knots: Tuple[np.ndarray, np.ndarray]) -> float:
        """max_i |q_i - q_ref,i(t)| [rad] for the knots of :meth:`reference` (held outside them)."""
        times, X = knots
        n = self.positions.shape[1]
        q_ref = np.array([np.interp(t, times, X[:, i]) for i in range(n)])
        return float(np.max(np.abs(np.asarray(q, float)[:n] - q_ref)))


def parse_joint_trajectory(names: Sequence[str], robot_joint_names: Sequence[str], positions: Sequence[Sequence[float]],
                           times: Sequence[float], velocities: Optional[Sequence[Sequence[float]]] = None,
                           check_point: Optional[Callable[[np.ndarray], Optional[str]]] = None,
                           max_points: int = 10_000) -> Tuple[Optional[JointTrajectory], Optional[str]]:
    """Validate a trajectory given in the sender's joint order ``names``.

    Args:
        names: the message's joint names (a permutation of ``robot_joint_names``).
        robot_joint_names: the robot's joints, in state order.
        positions: (K, len(names)) positions, one row per point, in the order of ``names``.
        times: (K,) time_from_start [s]; >= 0 and strictly increasing.
        velocities: None, or (K, len(names)); rows may be empty (then no point's velocities are used).
        check_point: returns why a configuration (robot order) is refused, e.g. the joint limits.
        max_points: longest trajectory accepted.

    Returns:
        (trajectory, None), or (None, why it is refused).
    """
    names, robot = list(names), list(robot_joint_names)
    if sorted(names) != sorted(robot) or len(set(names)) != len(names):
        return None, f"joints {names} do not match {robot}"
    K = len(positions)
    if K == 0:
        return None, "no points"
    if K > max_points:
        return None, f"trajectory has {K} points; the limit is {max_points}"
    if len(times) != K:
        return None, f"{len(times)} times for {K} points"
    perm = [names.index(n) for n in robot]
    try:
        P = np.array([np.asarray(p, float) for p in positions], dtype=float)
        t = np.asarray(times, float)
    except (TypeError, ValueError) as e:
        return None, f"bad trajectory: {e}"
    if P.shape != (K, len(names)):
        return None, f"every point needs {len(names)} positions"
    if not (np.all(np.isfinite(P)) and np.all(np.isfinite(t))):
        return None, "trajectory contains non-finite values"
    if t[0] < 0 or np.any(np.diff(t) <= 0):
        return None, "time_from_start must be >= 0 and strictly increasing"
    P = P[:, perm]
    V = None
    if velocities is not None and len(velocities) == K and all(len(v) == len(names) for v in velocities):
        V = np.array([np.asarray(v, float) for v in velocities])[:, perm]
        if not np.all(np.isfinite(V)):
            return None, "trajectory velocities contain non-finite values"
    elif velocities is not None and any(len(v) for v in velocities):
        return None, f"velocities must be given for every point ({len(names)} each) or for none"
    if check_point is not None:
        for k, q in enumerate(P):
            reason = check_point(q)
            if reason:
                return None, f"point {k}: {reason}"
    return JointTrajectory(t, P, V), None
