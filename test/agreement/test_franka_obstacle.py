"""Franka obstacle task (dmpc_core.tasks.franka_obstacle): the MuJoCo scene and the task's own
geometry (pinocchio kinematics + box distances, used by the known-geometry MPC) agree, contacts
end episodes, and the evaluation layout is what the task promises."""
from __future__ import annotations

import numpy as np
import pytest

import mujoco

from dmpc_core.models.panda import Q_READY
from dmpc_core.tasks.franka_obstacle import (ARM_SPHERES, FrankaObstacleTask, ObstaclePandaPlant, box_distance,
                                             make_reach_controller, run_episode)


@pytest.fixture(scope="module")
def task():
    return FrankaObstacleTask()


@pytest.fixture(scope="module")
def plant(task):
    return ObstaclePandaPlant(task.settings)


def _mujoco_clearance(plant) -> float:
    m, d = plant.model, plant.data
    board = m.geom("board").id
    fromto = np.zeros(6)
    return min(mujoco.mj_geomDistance(m, d, m.geom(f"arm_sphere_{i}").id, board, 1.0, fromto)
               for i in range(len(ARM_SPHERES)))


def test_sphere_centres_and_board_clearance_agree_with_mujoco(task, plant):
    rng = np.random.default_rng(0)
    for _ in range(20):
        q = Q_READY + rng.uniform(-0.6, 0.6, 7)
        plant.reset(np.concatenate([q, np.zeros(7)]))
        np.testing.assert_allclose(plant.sphere_centers(), task.spheres.centers(q), atol=1e-9)
        c = task.clearance(q)
        if c < 1.0:  # mj_geomDistance reports distances up to distmax
            assert _mujoco_clearance(plant) == pytest.approx(c, abs=1e-6)


def test_box_distance_inside_and_outside():
    d, n = box_distance(np.array([[0.0, 0.0, 2.0], [0.0, 0.0, 0.5], [2.0, 2.0, 0.0]]), [0, 0, 0], [1, 1, 1])
    np.testing.assert_allclose(d, [1.0, -0.5, np.sqrt(2.0)])
    np.testing.assert_allclose(n, [[0, 0, 1], [0, 0, 1], [np.sqrt(0.5), np.sqrt(0.5), 0]])


def test_contact_is_reported_exactly_when_the_arm_overlaps_the_board(task, plant):
    q_in = task.ik(np.asarray(task.settings.box_center) + [0.0, 0.0, 0.1])  # TCP inside the board
    assert task.clearance(q_in) < 0
    plant.reset(np.concatenate([q_in, np.zeros(7)]))
    assert plant.touched
    x0, _ = task.eval_pairs()[0]
    plant.reset(x0)
    assert not plant.touched


def test_evaluation_layout(task):
    """8 pairs, every straight TCP path blocked by the board, every start clear of it and at rest
    at its IK configuration."""
    pairs = task.eval_pairs()
    assert len(pairs) == 8
    for x0, goal in pairs:
        p0 = task.tcp(x0)
        assert task.blocks_straight_line(p0, goal)
        assert task.clearance(x0[:7]) > 0.1
        assert np.all(x0[7:] == 0)
    s0 = {tuple(np.round(task.tcp(x0), 6)) for x0, _ in pairs}
    assert len(s0) == 8


def test_training_pairs_are_clear_and_in_their_regions(task):
    rng = np.random.default_rng(3)
    s = task.settings
    for _ in range(5):
        x0, goal = task.sample_pair(rng)
        p0 = task.tcp(x0)
        r, g = np.asarray(s.start_region), np.asarray(s.target_region)
        assert np.all(p0 >= r[0::2] - 1e-3) and np.all(p0 <= r[1::2] + 1e-3)
        assert np.all(goal >= g[0::2]) and np.all(goal <= g[1::2])
        assert task.clearance(x0[:7]) > s.start_clearance


def test_obstacle_blind_reach_mpc_hits_the_board_and_the_episode_ends_with_the_penalty(task, plant):
    x0, goal = task.eval_pairs()[1]
    res = run_episode(task, plant, make_reach_controller(task, x0, goal, known_geometry=False), x0, goal)
    assert res.touched and not res.success
    assert res.steps < int(round(task.settings.episode_time / task.settings.control_dt))
    assert res.cost > task.settings.contact_penalty
    assert task.clearance(res.xs[-1][:7]) < 0.005
