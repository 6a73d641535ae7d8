"""The MuJoCo obstacle course task: frictionless contacts, the actuator clip and the cost expansion."""
import numpy as np
import pytest

from dmpc_core.tasks.obstacle_course import ObstacleCourse, ObstacleCourseSettings


def _push(task, x0, u, steps):
    x = np.asarray(x0, float)
    for _ in range(steps):
        x = task.step(x, np.asarray(u, float))
    return x


def test_particle_slides_along_a_wall_it_is_pushed_into():
    """Pushed into the wall at x = 1 (y in [0.5, 1.1]) at the full force with a tangential command,
    the particle slides along it and round its end (frictionless contacts). With friction 1 the
    friction capacity (1 N at the full normal force) would hold it: measured 0.05 m in 4 s."""
    task = ObstacleCourse()
    x = _push(task, [0.79, 0.8, 0.0, 0.0], [1.0, 1.0], 80)  # 4 s
    assert x[1] > 1.5 and x[0] > 1.0, x  # past the wall's end (y = 1.1 + radii) and beyond x = 1
    # the wall is real: pushed straight into it, the particle stays in front of it
    x = _push(task, [0.79, 0.8, 0.0, 0.0], [1.0, 0.0], 80)
    assert x[0] < 0.81 and abs(x[1] - 0.8) < 1e-3, x


def test_actuators_clip_and_applied_control_says_so():
    task = ObstacleCourse()
    x0 = np.array([0.0, 0.0, 0.0, 0.0])
    U = np.array([[5.0, -0.3], [-7.0, 2.0]])
    assert np.array_equal(task.applied_control(U), [[1.0, -0.3], [-1.0, 1.0]])
    for u in U:  # the plant applies exactly the clipped command
        assert np.allclose(task.step(x0, u), task.step(x0, task.applied_control(u)), atol=0, rtol=0)


@pytest.mark.parametrize("w", [0.0, 0.7])
def test_quadratic_cost_is_the_exact_expansion_of_the_cost(w):
    task = ObstacleCourse(ObstacleCourseSettings(horizon=7, control_weight=w))
    rng = np.random.default_rng(0)
    X, U = rng.standard_normal((7, 4)), 3 * rng.standard_normal((7, 2))
    Cm, cv, cc = task.quadratic_cost()
    Z = np.hstack([X, U])
    quad = cc + np.einsum("td,td->t", cv, Z) + 0.5 * np.einsum("td,tde,te->t", Z, Cm, Z)
    assert np.allclose(quad, task.cost(X, U), atol=1e-12)
    assert np.allclose(task.cost(X, U) - task.cost(X, 0 * U), 0.5 * w * np.sum(U * U, axis=1))


def test_negative_control_weight_is_rejected():
    with pytest.raises(ValueError, match="control_weight"):
        ObstacleCourse(ObstacleCourseSettings(control_weight=-1.0))
