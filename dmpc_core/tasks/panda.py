"""Franka Panda reaching task in dmpc: the problem of
:mod:`dmpc_core.baselines.crocoddyl_panda`, built with the core's models and costs.

Both are built from the same ``setup`` dict (see ``crocoddyl_panda.default_setup``), so the
agreement test and ``benchmarks/slq_vs_crocoddyl.py`` compare identical problems: same URDF,
same semi-implicit Euler discretisation, same costs and weights, same dt and horizon.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from dmpc_core import _core
from dmpc_core.baselines.crocoddyl_panda import NQ, NX, resolve_setup


def make_reach_problem(setup: dict[str, Any] | None = None) -> tuple[_core.Problem, dict[str, Any]]:
    """The dmpc Problem of the Panda reach task and the resolved setup."""
    s = resolve_setup(setup)
    panda = _core.PandaDynamics(s["urdf"])
    running = _core.SumCost(NX, NQ)
    running.add("reg", _core.QuadraticCost(np.diag(s["w_x"]), s["w_u"] * np.eye(NQ), s["x_ref"], s["u_ref"]))
    running.add("goal", _core.FrameTranslationCost(panda, s["frame"], s["p_ref"], s["w_goal"]))
    terminal = _core.SumCost(NX, NQ)
    terminal.add("reg", _core.QuadraticCost(np.diag(s["w_x_terminal"]), np.zeros((NQ, NQ)), s["x_ref"], np.zeros(NQ)))
    terminal.add("goal", _core.FrameTranslationCost(panda, s["frame"], s["p_ref"], s["w_goal_terminal"]))
    problem = _core.Problem(panda, running, terminal, s["horizon"], s["dt"], "semi_implicit_euler")
    return problem, s


def gravity_controls(problem: _core.Problem, setup: dict[str, Any]) -> np.ndarray:
    """The quasi-static initial guess crocoddyl's ``solve_fddp`` uses: gravity torques at x0."""
    g = problem.dynamics.gravity(setup["x0"][:NQ])
    return np.tile(g, (problem.horizon, 1))
