"""Joint trajectories followed in time (dmpc_core.control.joint_trajectory and the controller
core's request_joint_trajectory): name mapping, validation, knots, tracking error."""
from __future__ import annotations

import numpy as np
import pytest

from dmpc_core.control.joint_trajectory import JointTrajectory, parse_joint_trajectory

NAMES = [f"j{i}" for i in range(1, 8)]


def _limits(q):
    return None if np.all(np.abs(q) < 3.0) else "outside the position limits"


def test_names_in_any_order_are_mapped_to_the_robot_order():
    order = [6, 0, 5, 1, 4, 2, 3]
    Q = np.arange(14, dtype=float).reshape(2, 7) / 10.0
    V = -Q
    traj, reason = parse_joint_trajectory([NAMES[i] for i in order], NAMES, Q[:, order], [0.5, 1.0], V[:, order], _limits)
    assert reason is None
    np.testing.assert_array_equal(traj.positions, Q)
    np.testing.assert_array_equal(traj.velocities, V)
    np.testing.assert_array_equal(traj.times, [0.5, 1.0])


@pytest.mark.parametrize("names, positions, times, velocities, expect", [
    (NAMES[:6] + ["x"], [[0.0] * 7], [1.0], None, "do not match"),
    (NAMES[:6] + ["j1"], [[0.0] * 7], [1.0], None, "do not match"),
    (NAMES, [], [], None, "no points"),
    (NAMES, [[0.0] * 7, [0.1] * 7], [1.0, 1.0], None, "strictly increasing"),
    (NAMES, [[0.0] * 7], [-0.1], None, "strictly increasing"),
    (NAMES, [[0.0] * 6], [1.0], None, "7 positions"),
    (NAMES, [[np.nan] + [0.0] * 6], [1.0], None, "non-finite"),
    (NAMES, [[0.0] * 7], [np.inf], None, "non-finite"),
    (NAMES, [[0.0] * 7, [0.1] * 7], [1.0, 2.0], [[0.0] * 7, []], "every point"),
    (NAMES, [[0.0] * 7, [3.5] * 7], [1.0, 2.0], None, "point 1: outside"),
    (NAMES, [[0.0] * 7], [1.0, 2.0], None, "2 times for 1 points"),
])
def test_bad_trajectories_are_refused_with_a_reason(names, positions, times, velocities, expect):
    traj, reason = parse_joint_trajectory(names, NAMES, positions, times, velocities, _limits)
    assert traj is None and expect in reason


def test_too_many_points_are_refused():
    traj, reason = parse_joint_trajectory(NAMES, NAMES, [[0.0] * 7] * 5, np.arange(1, 6.0), max_points=4)
    assert traj is None and "limit is 4" in reason


def test_knots_start_from_the_measured_configuration_and_derive_velocities():
    Q = np.array([[0.2] * 7, [0.4] * 7, [0.4] * 7])
    traj = JointTrajectory(np.array([1.0, 2.0, 3.0]), Q)
    q_now = np.zeros(7)
    times, X = traj.reference(10.0, q_now)
    np.testing.assert_allclose(times, [10.0, 11.0, 12.0, 13.0])
    np.testing.assert_allclose(X[:, :7], np.vstack([q_now, Q]))
    # start at rest; interior knots: central differences; last point at rest
    np.testing.assert_allclose(X[:, 7], [0.0, (0.4 - 0.0) / 2.0, (0.4 - 0.2) / 2.0, 0.0])
    # due at once: no prepended knot; the sender's velocities are used as given
    V = np.full((3, 7), 0.3)
    times, X = JointTrajectory(np.array([0.0, 2.0, 3.0]), Q, V).reference(1.0, q_now)
    np.testing.assert_allclose(times, [1.0, 3.0, 4.0])
    np.testing.assert_allclose(X[:, 7:], V)


def test_tracking_error_is_the_largest_joint_deviation_from_the_interpolated_reference():
    traj = JointTrajectory(np.array([1.0, 2.0]), np.array([[0.2] * 7, [0.6] * 7]))
    knots = traj.reference(0.0, np.zeros(7))
    q = np.full(7, 0.4)
    assert traj.error(1.5, q, knots) == pytest.approx(0.0, abs=1e-12)       # halfway 0.2 -> 0.6
    q[3] = 0.1
    assert traj.error(1.5, q, knots) == pytest.approx(0.3)
    assert traj.error(0.5, np.zeros(7), knots) == pytest.approx(0.1)         # 0 -> 0.2 over 1 s
    assert traj.error(5.0, np.full(7, 0.6), knots) == pytest.approx(0.0, abs=1e-12)  # held after the end


def test_sum_cost_weights_switch_terms_on_and_off():
    from dmpc_core import _core

    s = _core.SumCost(2, 1)
    s.add("a", _core.QuadraticCost(np.eye(2), np.eye(1), np.zeros(2), np.zeros(1)))
    x, u = np.array([1.0, 2.0]), np.array([0.0])
    assert s.value(0.0, x, u) == pytest.approx(2.5)
    s.set_weight("a", 0.0)
    assert s.weight("a") == 0.0 and s.value(0.0, x, u) == 0.0
    s.set_weight("a", 2.0)
    assert s.value(0.0, x, u) == pytest.approx(5.0)
    with pytest.raises(ValueError, match="no term named 'b'"):
        s.set_weight("b", 1.0)
    with pytest.raises(ValueError, match="finite"):
        s.set_weight("a", float("nan"))
