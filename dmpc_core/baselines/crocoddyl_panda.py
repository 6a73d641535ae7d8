"""Crocoddyl FDDP on the Panda reaching problem: the reference for dmpc's SLQ on the same task.

The optimal control problem (identical in dmpc and crocoddyl)
-----------------------------------------------------------
State x = [q; v] (14), control u = joint torques (7), model = the project's
``urdf/panda.urdf`` (fingers locked), N nodes of length dt, semi-implicit Euler
(crocoddyl's ``IntegratedActionModelEuler``: v+ = v + dt a(x, u), q+ = q + dt v+)::

    min_u  sum_{k=0}^{N-1} dt * l(x_k, u_k)  +  l_N(x_N)

    l(x, u) = 0.5 (x - x_ref)^T diag(w_x) (x - x_ref)          state regularisation
            + 0.5 w_u ||u - u_ref||^2                            control regularisation
            + 0.5 w_goal ||p(q) - p_ref||^2                      TCP position

    l_N(x)  = 0.5 (x - x_ref)^T diag(w_x_terminal) (x - x_ref)
            + 0.5 w_goal_terminal ||p(q) - p_ref||^2             (not multiplied by dt)

p(q) is the world position of ``setup["frame"]`` (default ``panda_hand_tcp``). u_ref is a
constant vector: by default the gravity torque g(q_ref) at the reference posture (the
gravity-compensating torque there), so the control regulariser does not pull the arm down.

Crocoddyl scales each running node's cost by dt (``IntegratedActionModelEuler``) and
leaves the terminal node (built with dt = 0) unscaled -- the same convention as dmpc's
``_core.Problem`` (stage cost dt * l(x_k, u_k), terminal cost unscaled);
``test/agreement/test_panda_model.py`` checks this by recomputing the total cost.

The identical dmpc problem (see :func:`resolve_setup` for the arrays)::

    s = resolve_setup(setup)
    panda = _core.PandaDynamics(s["urdf"])
    running = _core.SumCost(14, 7)
    running.add("reg", _core.QuadraticCost(np.diag(s["w_x"]), s["w_u"] * np.eye(7),
                                            s["x_ref"], s["u_ref"]))
    running.add("goal", _core.FrameTranslationCost(panda, s["frame"], s["p_ref"], s["w_goal"]))
    terminal = _core.SumCost(14, 7)
    terminal.add("reg", _core.QuadraticCost(np.diag(s["w_x_terminal"]), np.zeros((7, 7)),
                                             s["x_ref"], np.zeros(7)))
    terminal.add("goal", _core.FrameTranslationCost(panda, s["frame"], s["p_ref"],
                                                    s["w_goal_terminal"]))
    problem = _core.Problem(panda, running, terminal, s["horizon"], s["dt"],
                            integrator="semi_implicit_euler", control_weight=None, discount=1.0)

Crocoddyl's frame-translation cost uses a Gauss-Newton Hessian, as does dmpc's
``FrameTranslationCost``, so both solvers see the same local quadratic models.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from dmpc_core.models.panda import Q_READY, TCP_FRAME, default_urdf_path

NQ = 7
NX = 2 * NQ


def default_setup() -> dict[str, Any]:
    """The reaching task used by the SLQ-vs-FDDP agreement test and benchmark.

    Keys (all optional in :func:`resolve_setup`):
        urdf: URDF path (default: the project's ``urdf/panda.urdf``).
        frame: end-effector frame name (``panda_hand_tcp``).
        x0: initial state (14,): Franka's ready pose at rest.
        x_ref: state-regularisation reference (14,) (default: x0).
        p_ref: target TCP position (3,) [m]; about 0.3 m from the start.
        horizon: number of nodes N (100). dt: node length [s] (0.01).
        w_x: running state weights (14,): 1e-2 on q, 1e-1 on v.
        w_u: running control weight (scalar): 1e-3.
        u_ref: (7,) array, or "gravity" for g(q_ref) (default), or "zero".
        w_goal: running TCP weight (10.0). w_goal_terminal: terminal TCP weight (1e4).
        w_x_terminal: terminal state weights (14,): 1e-2 on q, 1.0 on v.
    """
    x0 = np.concatenate([Q_READY, np.zeros(NQ)])
    return {
        "urdf": str(default_urdf_path()),
        "frame": TCP_FRAME,
        "x0": x0,
        "x_ref": x0.copy(),
        "p_ref": np.array([0.5, 0.2, 0.35]),
        "horizon": 100,
        "dt": 0.01,
        "w_x": np.concatenate([np.full(NQ, 1e-2), np.full(NQ, 1e-1)]),
        "w_u": 1e-3,
        "u_ref": "gravity",
        "w_goal": 10.0,
        "w_goal_terminal": 1e4,
        "w_x_terminal": np.concatenate([np.full(NQ, 1e-2), np.full(NQ, 1.0)]),
    }


def resolve_setup(setup: dict[str, Any] | None = None) -> dict[str, Any]:
    """Fill defaults and turn every entry into a plain value/array (u_ref resolved).

    Args:
        setup: overrides of :func:`default_setup` (unknown keys raise ValueError).

    Returns:
        dict with the keys of :func:`default_setup`; ``u_ref`` is a (7,) array.
    """
    s = default_setup()
    if setup:
        unknown = set(setup) - set(s)
        if unknown:
            raise ValueError(f"unknown setup keys {sorted(unknown)}; known: {sorted(s)}")
        if "x0" in setup and "x_ref" not in setup:
            s["x_ref"] = np.asarray(setup["x0"], dtype=float).copy()
        s.update(setup)
    for key, size in (("x0", NX), ("x_ref", NX), ("p_ref", 3), ("w_x", NX), ("w_x_terminal", NX)):
        s[key] = np.asarray(s[key], dtype=float).reshape(-1)
        if s[key].shape != (size,) or not np.all(np.isfinite(s[key])):
            raise ValueError(f"setup['{key}'] must be finite with shape ({size},), got {s[key].shape}")
    for key in ("w_u", "w_goal", "w_goal_terminal", "dt"):
        s[key] = float(s[key])
        if not np.isfinite(s[key]) or s[key] < 0:
            raise ValueError(f"setup['{key}'] must be finite and >= 0")
    if s["dt"] <= 0:
        raise ValueError("setup['dt'] must be > 0")
    s["horizon"] = int(s["horizon"])
    if s["horizon"] < 1:
        raise ValueError("setup['horizon'] must be >= 1")
    s["urdf"] = str(s["urdf"])
    u_ref = s["u_ref"]
    if isinstance(u_ref, str):
        if u_ref == "gravity":
            import pinocchio as pin  # noqa: PLC0415

            model = pin.buildModelFromUrdf(s["urdf"])
            s["u_ref"] = pin.computeGeneralizedGravity(model, model.createData(), s["x_ref"][:NQ]).copy()
        elif u_ref == "zero":
            s["u_ref"] = np.zeros(NQ)
        else:
            raise ValueError("setup['u_ref'] must be an array (7,), 'gravity' or 'zero'")
    else:
        s["u_ref"] = np.asarray(u_ref, dtype=float).reshape(-1)
        if s["u_ref"].shape != (NQ,):
            raise ValueError(f"setup['u_ref'] must have shape (7,), got {s['u_ref'].shape}")
    return s


def build_crocoddyl_problem(setup: dict[str, Any] | None = None, nthreads: int | None = None):
    """Build the crocoddyl reaching problem and an FDDP solver for it.

    Model: pinocchio model from ``setup["urdf"]`` (the project's URDF by default),
    ``StateMultibody``, ``ActuationModelFull``, ``DifferentialActionModelFreeFwdDynamics``,
    ``IntegratedActionModelEuler`` (semi-implicit) with dt for the N running nodes and dt = 0
    for the terminal node. Costs exactly as in the module docstring:

    - running: ``xReg`` = ResidualModelState(x_ref) with ActivationModelWeightedQuad(w_x),
      ``uReg`` = ResidualModelControl(u_ref) with ActivationModelWeightedQuad(w_u * ones(7)),
      ``goal`` = ResidualModelFrameTranslation(frame, p_ref), quadratic activation, weight w_goal;
    - terminal: ``xReg`` with weights w_x_terminal, ``goal`` with weight w_goal_terminal.

    Args:
        setup: overrides of :func:`default_setup`.
        nthreads: threads for the problem's calc/calcDiff (crocoddyl's default is 2 here).

    Returns:
        (problem, solver): the ``crocoddyl.ShootingProblem`` (x0 = setup["x0"]) and a
        ``crocoddyl.SolverFDDP`` on it. Solve with
        ``solver.solve(xs_init, us_init, maxiter)``; see :func:`solve_fddp`.
    """
    import crocoddyl  # noqa: PLC0415  (optional dependency: only the baseline needs it)
    import pinocchio as pin  # noqa: PLC0415

    s = resolve_setup(setup)
    model = pin.buildModelFromUrdf(s["urdf"])
    if model.nq != NQ or model.nv != NQ:
        raise ValueError(f"{s['urdf']} has nq = {model.nq}, expected 7 (fingers locked)")
    if not model.existFrame(s["frame"]):
        raise ValueError(f"frame '{s['frame']}' not in {s['urdf']}")
    frame_id = model.getFrameId(s["frame"])
    state = crocoddyl.StateMultibody(model)
    actuation = crocoddyl.ActuationModelFull(state)
    nu = actuation.nu

    def x_reg(weights: np.ndarray):
        return crocoddyl.CostModelResidual(
            state,
            crocoddyl.ActivationModelWeightedQuad(weights),
            crocoddyl.ResidualModelState(state, s["x_ref"], nu),
        )

    def goal():
        return crocoddyl.CostModelResidual(
            state, crocoddyl.ResidualModelFrameTranslation(state, frame_id, s["p_ref"], nu)
        )

    running = crocoddyl.CostModelSum(state, nu)
    running.addCost("xReg", x_reg(s["w_x"]), 1.0)
    running.addCost(
        "uReg",
        crocoddyl.CostModelResidual(
            state,
            crocoddyl.ActivationModelWeightedQuad(np.full(nu, s["w_u"])),
            crocoddyl.ResidualModelControl(state, s["u_ref"]),
        ),
        1.0,
    )
    running.addCost("goal", goal(), s["w_goal"])

    terminal = crocoddyl.CostModelSum(state, nu)
    terminal.addCost("xReg", x_reg(s["w_x_terminal"]), 1.0)
    terminal.addCost("goal", goal(), s["w_goal_terminal"])

    running_model = crocoddyl.IntegratedActionModelEuler(
        crocoddyl.DifferentialActionModelFreeFwdDynamics(state, actuation, running), s["dt"]
    )
    terminal_model = crocoddyl.IntegratedActionModelEuler(
        crocoddyl.DifferentialActionModelFreeFwdDynamics(state, actuation, terminal), 0.0
    )
    problem = crocoddyl.ShootingProblem(s["x0"], [running_model] * s["horizon"], terminal_model)
    if nthreads is not None:
        problem.nthreads = int(nthreads)
    solver = crocoddyl.SolverFDDP(problem)
    return problem, solver


def solve_fddp(problem, solver, maxiter: int = 200) -> bool:
    """Solve from the rest trajectory: xs = x0 everywhere, us = quasi-static (gravity) torques.

    Returns crocoddyl's convergence flag; the result is in ``solver.xs``, ``solver.us``.
    """
    x0 = np.asarray(problem.x0).copy()
    xs = [x0] * (problem.T + 1)
    us = problem.quasiStatic([x0] * problem.T)
    return bool(solver.solve(xs, us, maxiter, False))
