"""Ballbot SLQ vs CasADi + IPOPT on the SAME optimal control problem.

Problem: ``dmpc_core.tasks.ballbot.make_reach_problem`` (reach (1, 0.5) m from rest at the
origin), horizon 1 s at dt = 10 ms (100 nodes), RK4 with the control held over each step, stage
cost dt (l + 1/2 u'Ru), LQR terminal cost. SLQ starts from ``lqr_policy`` (the stabilising
initial guess); IPOPT starts from the rollout of that same policy (states and controls) and
solves the multiple-shooting twin in ``dmpc_core.baselines.casadi_ocp`` whose dynamics are the
symbolic Ballbot equations of ``tools/derive_ballbot.py`` (the same equations the C++ model was
generated from), with ``QuadraticTerm`` / ``UprightTerm`` as the cost twins.

Prints, measured in the same run (1 thread everywhere: OPENBLAS_NUM_THREADS=1, SLQ num_threads=1,
IPOPT with its default MUMPS linear solver):
  * one SLQ iteration (full-solve time / iterations, median over solves; the phase split from
    SlqResult is wall time), and one real-time iteration (max_iterations = 1),
  * the full solve time of both (IPOPT: its solve call only, NLP construction excluded),
  * both optimal costs and their relative difference (goal: equal within 1 %).
Times are process CPU time (time.process_time: both sides run on one thread, so preemption by
other processes on the shared machine is not counted). Last line ``casadi_over_slq=<IPOPT full-solve time / SLQ full-solve time>`` (goal >= 20).

    python benchmarks/ballbot_slq.py [--quick]
"""
from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import casadi as ca  # noqa: E402
import numpy as np  # noqa: E402
from _common import machine_line, table  # noqa: E402

from dmpc_core import _core  # noqa: E402
from dmpc_core.baselines.casadi_ocp import QuadraticTerm, UprightTerm, build_ocp_nlp  # noqa: E402
from dmpc_core.tasks import ballbot as bb  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TARGET = (1.0, 0.5)


def load_derive():
    spec = importlib.util.spec_from_file_location("derive_ballbot", ROOT / "tools" / "derive_ballbot.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def casadi_dynamics(derive) -> ca.Function:
    """xdot = [v; M(q)^{-1} (S^T(q) tau - h(q, v))] as an SX Function of (x, u)."""
    dyn = derive.build_functions()["dyn"]
    x = ca.SX.sym("x", bb.NX)
    u = ca.SX.sym("u", bb.NU)
    q, v = x[:5], x[5:]
    M, h, ST = dyn(q, v, derive.default_params())
    a = ca.solve(M, ca.mtimes(ST, u) - h)
    return ca.Function("ballbot_f", [x, u], [ca.vertcat(v, a)])


def lqr_rollout(problem, policy, x0):
    """States and controls of the closed-loop LQR policy with the problem's RK4."""
    N, dt = problem.horizon, problem.dt
    X = np.zeros((N + 1, bb.NX))
    U = np.zeros((N, bb.NU))
    X[0] = x0
    for k in range(N):
        U[k] = policy.u_ff[k] + policy.K[k] @ (X[k] - policy.x_nom[k])
        X[k + 1] = _core.integrate(problem.dynamics, X[k], U[k], dt, problem.integrator)
    return X, U


def solve_ipopt_sx(f, x0, problem, running, terminal, U_init, repeats):
    """The multiple-shooting NLP of ``casadi_ocp.solve_ocp_ipopt`` (same RK4 step, same terms),
    built on SX symbols (the fastest CasADi form for this size) so that the timed call is IPOPT
    plus CasADi's derivative evaluation only: the solver is built once, called once to warm up
    (lazy derivative construction), then timed over ``repeats`` calls (median)."""
    nx, nu, N, dt = bb.NX, bb.NU, problem.horizon, problem.dt
    nlp = build_ocp_nlp(f, nx, nu, x0, N, dt, running, terminal, np.asarray(problem.control_weight), ca.SX)
    opts = {"ipopt.print_level": 0, "print_time": False, "ipopt.tol": 1e-8, "ipopt.max_iter": 500,
            "ipopt.sb": "yes"}
    solver = ca.nlpsol("ocp_sx", "ipopt", nlp, opts)
    Xg = np.zeros((N + 1, nx))
    Xg[0] = x0
    for k in range(N):
        Xg[k + 1] = _core.integrate(problem.dynamics, Xg[k], U_init[k], dt, problem.integrator)
    w0 = np.concatenate([Xg.ravel(), np.asarray(U_init).ravel()])  # column-major vec of (nx, N+1)
    sol = solver(x0=w0, lbg=0, ubg=0)  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.process_time()
        sol = solver(x0=w0, lbg=0, ubg=0)
        times.append(time.process_time() - t0)
    st = solver.stats()
    w = np.asarray(sol["x"]).ravel()
    return {"time": statistics.median(times), "cost": float(sol["f"]), "iterations": int(st["iter_count"]),
            "status": str(st["return_status"]), "U": w[nx * (N + 1):].reshape(N, nu)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer repeats (< 30 s)")
    args = ap.parse_args(argv)
    slq_repeats = 5 if args.quick else 30
    ipopt_repeats = 1 if args.quick else 5

    problem, _, _ = bb.make_reach_problem(TARGET, horizon=100, dt=0.01, integrator="rk4")
    x0 = np.zeros(bb.NX)
    pol0 = bb.lqr_policy(problem, TARGET)
    settings = _core.SlqSettings(max_iterations=100, num_threads=1, tol_expected=1e-10, tol_relative=1e-10)
    solver = _core.SlqSolver(problem, settings)

    per_iter, full, lq, bw, ro, res = [], [], [], [], [], None
    solver.set_policy(pol0)
    solver.solve(x0)  # warm-up
    for _ in range(slq_repeats):
        solver.set_policy(pol0)
        t = time.process_time()
        res = solver.solve(x0)
        full.append(time.process_time() - t)
        per_iter.append(full[-1] / res.iterations)
        lq.append(res.time_lq / res.iterations)
        bw.append(res.time_backward / res.iterations)
        ro.append(res.time_rollout / res.iterations)
    # One real-time iteration (max_iterations = 1) from the LQR guess.
    rti = _core.SlqSolver(problem, _core.SlqSettings(max_iterations=1, num_threads=1))
    rti_t = []
    for _ in range(slq_repeats * 4):
        rti.set_policy(pol0)
        t = time.process_time()
        rti.solve(x0)
        rti_t.append(time.process_time() - t)
    t_slq = statistics.median(full)

    # CasADi + IPOPT twin.
    derive = load_derive()
    f = casadi_dynamics(derive)
    cs = bb.BallbotCostSettings()
    Q = np.diag(np.asarray(cs.q_diag, float))
    x_ref = np.zeros(bb.NX)
    x_ref[bb.PX], x_ref[bb.PY] = TARGET
    P = bb.upright_lqr_value(problem.dynamics, Q, problem.control_weight, problem.dt, "rk4")
    running = [QuadraticTerm(Q, np.zeros((0, 0)), x_ref, np.zeros(bb.NU)),
               UprightTerm(bb.PITCH, bb.ROLL, 8, 9, cs.w_tilt, cs.w_tilt_rate)]
    terminal = [QuadraticTerm(P, np.zeros((0, 0)), x_ref, np.zeros(bb.NU))]
    _, U_lqr = lqr_rollout(problem, pol0, x0)
    slq_init_cost = solver.evaluate(x0, U_lqr)
    ip = solve_ipopt_sx(f, x0, problem, running, terminal, U_lqr, ipopt_repeats)
    t_ip = ip["time"]
    # The IPOPT controls evaluated by the C++ problem (same cost function, independent check).
    ip_cost_in_dmpc = solver.evaluate(x0, ip["U"])
    rel = abs(res.cost - ip["cost"]) / abs(ip["cost"])

    print(machine_line())
    print("Ballbot reach (1, 0.5) m, 100 nodes x 10 ms, RK4; 1 thread (OPENBLAS_NUM_THREADS=1)")
    print(table(["quantity", "value"], [
        ["SLQ ms/iteration (median over solves)", 1e3 * statistics.median(per_iter)],
        ["  LQ approximation ms/iter", 1e3 * statistics.median(lq)],
        ["  backward pass ms/iter", 1e3 * statistics.median(bw)],
        ["  rollouts ms/iter (incl. line search)", 1e3 * statistics.median(ro)],
        ["SLQ one real-time iteration (max_iterations=1) ms", 1e3 * statistics.median(rti_t)],
    ]))
    print()
    print(table(["solver", "iterations", "full solve [ms]", "cost", "status", "ratio to SLQ"], [
        ["SLQ (dmpc)", res.iterations, 1e3 * t_slq, res.cost, res.status, 1.0],
        ["CasADi + IPOPT (MUMPS), SX NLP", ip["iterations"], 1e3 * t_ip, ip["cost"], ip["status"], t_ip / t_slq],
    ]))
    print(f"\ninitial (LQR rollout) cost {slq_init_cost:.6g}; IPOPT controls evaluated by dmpc: "
          f"{ip_cost_in_dmpc:.6g}; |J_slq - J_ipopt| / J_ipopt = {rel:.2e} (goal < 1e-2)")
    print(f"casadi_over_slq={t_ip / t_slq:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
