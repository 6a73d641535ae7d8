"""SLQ's optimum on the Panda reach problem against crocoddyl FDDP's on the identical problem
(same URDF, semi-implicit Euler, 100 nodes of 10 ms, same costs and weights)."""
from __future__ import annotations

import numpy as np
import pytest

from dmpc_core import _core
from dmpc_core.baselines import crocoddyl_panda as cp
from dmpc_core.tasks import panda

import crocoddyl


@pytest.mark.parametrize("threads", [1, 2])
def test_slq_matches_crocoddyl_fddp_on_panda_reach(threads):
    problem, setup = panda.make_reach_problem()
    solver = _core.SlqSolver(problem, _core.SlqSettings(max_iterations=200, num_threads=threads))
    solver.set_controls(panda.gravity_controls(problem, setup))
    res = solver.solve(setup["x0"])
    assert res.status == "converged", res
    cproblem, fddp = cp.build_crocoddyl_problem(nthreads=threads)
    assert cp.solve_fddp(cproblem, fddp)
    assert res.cost == pytest.approx(fddp.cost, rel=1e-2)  # the agreement bar: within 1 %
    assert abs(res.cost - fddp.cost) / fddp.cost < 1e-6   # observed: ~3e-9
    # same trajectory, not only the same number
    np.testing.assert_allclose(solver.states()[-1], np.asarray(fddp.xs)[-1], atol=1e-4)
    tcp = problem.dynamics.frame_position(solver.states()[-1][:7], setup["frame"])
    assert np.linalg.norm(tcp - setup["p_ref"]) < 1e-3
