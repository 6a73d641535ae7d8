"""Critic evaluation cost: native C++ vs onnxruntime vs torch, and the Deep Value cost in SLQ.

Part 1 - V + dV/dx + d2V/dx2 (+ dV/dtau, d2V/dtau dx) for a batch of B = 100 states of the
Ballbot-sized critic (nx = 10, ng = 2, hidden [12, 12, 12], tanh, float64), all backends on the
SAME network (a ValueMLP exported to an ONNX bundle; the native critic is ``bundle.to_native()``),
measured in the same run, one thread everywhere (torch.set_num_threads(1), onnxruntime
intra/inter-op threads 1 as set by OrtCritic, OPENBLAS_NUM_THREADS=1):

  native         _core.CriticMLP.evaluate_batch (batched forward-over-reverse)     [anchor]
  ort batch      onnxruntime CPU EP, one session.run for the B states (OrtCritic)
  ort per-state  OrtCriticAdapter.evaluate called B times (what a C++ solver would see)
  torch chain    ValueMLP.value_and_derivatives (batched forward-mode chain rule)
  torch.func     vmap(jacrev), vmap(hessian) of the plain forward

All backends are checked to agree (1e-8 relative) with torch.func before timing. Times are
medians of the wall time over repeats.

Part 2 - added cost of the Deep Value running cost to one Ballbot SLQ iteration: the reach
problem of dmpc_core.tasks.ballbot (100 nodes x 10 ms, RK4) with and without a
ValueRunningCost (native critic, exact third derivatives via calc_third) in the running cost and
a ValueTerminalCost added to the terminal cost, a row with third_order='drop' (the
documented cheaper approximation) and a row with project_psd=True (what DeepValueMpc uses by
default). Same initial policy, median over rounds of the solving thread's CPU time per iteration
(time.thread_time; the solver runs on the calling thread with num_threads=1), so that
preemption by other processes on a shared machine is not counted.

Last line ``ort_over_native=<ort batch time / native time>`` (goal >= 5; native goal <= 50 us).

    python benchmarks/critic_eval.py [--quick] [--batch B]
"""
from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np  # noqa: E402
import torch  # noqa: E402
from _common import machine_line, table  # noqa: E402
from torch.func import hessian, jacrev, vmap  # noqa: E402

from dmpc_core import _core  # noqa: E402
from dmpc_core.critics import (OrtCritic, OrtCriticAdapter, ValueMLP, ValueMLPSettings,  # noqa: E402
                               bundle_bytes, load_bundle)
from dmpc_core.tasks import ballbot as bb  # noqa: E402


def median_time(fn, repeats: int) -> float:
    fn()  # warm-up
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts))


def check(name, got, ref, tol=1e-8):
    got, ref = np.asarray(got), np.asarray(ref)
    err = float(np.max(np.abs(got - ref)))
    scale = max(1.0, float(np.max(np.abs(ref))))
    if err > tol * scale:
        raise SystemExit(f"{name} disagrees with torch.func: max error {err:.3e}")


def critic_batch(args, repeats):
    nx, ng, hidden, batch = 10, 2, (12, 12, 12), args.batch
    torch.manual_seed(0)
    rng = np.random.default_rng(1)
    model = ValueMLP(ValueMLPSettings(nx=nx, ng=ng, hidden=hidden))
    model.set_input_normalization(rng.normal(0, 0.5, nx + ng + 1), rng.uniform(0.5, 2.0, nx + ng + 1))
    model.set_output_affine(2.0, -1.0)
    bundle = load_bundle(bundle_bytes(model, robot="ballbot"), expected_nx=nx, expected_ng=ng)
    ort_critic = OrtCritic(bundle)
    adapter = OrtCriticAdapter(bundle)
    native = bundle.to_native()

    goal = rng.normal(size=ng)
    native.set_goal(goal)
    x = rng.normal(size=(batch, nx))
    taus = rng.uniform(0.0, 3.0, batch)
    goals = np.tile(goal, (batch, 1))
    xt, gt, tt = torch.from_numpy(x), torch.from_numpy(goals), torch.from_numpy(taus[:, None])

    def v_single(p, g):
        return model(p[:nx].unsqueeze(0), g.unsqueeze(0), p[nx:].unsqueeze(0))[0]

    p_all = torch.cat([xt, tt], dim=1)
    jac_b, hes_b = vmap(jacrev(v_single)), vmap(hessian(v_single))

    def run_func():
        with torch.no_grad():
            return model(xt, gt, tt), jac_b(p_all, gt), hes_b(p_all, gt)

    def run_chain():
        with torch.no_grad():
            return model.value_and_derivatives(xt, gt, tt)

    def run_ort():
        return ort_critic.evaluate_batch(x, goals, taus)

    def run_ort_loop():
        return [adapter.evaluate(x[b], goal, taus[b]) for b in range(batch)]

    def run_native():
        return native.evaluate_batch(taus, x)

    # -- agreement before timing --------------------------------------------------------
    v_ref, j_ref, h_ref = (a.numpy() for a in run_func())
    ref = {"value": v_ref, "dvalue_dx": j_ref[:, :nx], "dvalue_dt": j_ref[:, nx],
           "d2value_dx2": h_ref[:, :nx, :nx], "d2value_dtdx": h_ref[:, nx, :nx]}
    chain = {k: v.numpy() for k, v in run_chain().items()}
    ort_out = run_ort()
    for k in ref:
        check(f"torch chain {k}", chain[k], ref[k])
        check(f"ort {k}", ort_out[k], ref[k])
    loop = run_ort_loop()
    check("ort per-state Vxx", np.array([r[2] for r in loop]), ref["d2value_dx2"])
    nat = run_native()
    for k_nat, k_ref in (("V", "value"), ("Vx", "dvalue_dx"), ("Vxx", "d2value_dx2"),
                         ("Vtau", "dvalue_dt"), ("Vtaux", "d2value_dtdx")):
        check(f"native {k_nat}", nat[k_nat], ref[k_ref])

    rows = [("native CriticMLP.evaluate_batch", median_time(run_native, repeats * 5)),
            ("onnxruntime batch", median_time(run_ort, repeats)),
            ("onnxruntime per-state x B", median_time(run_ort_loop, max(3, repeats // 3))),
            ("torch chain rule (batched)", median_time(run_chain, repeats)),
            ("torch.func vmap(jacrev, hessian)", median_time(run_func, repeats))]
    anchor = rows[0][1]
    print(f"critic nx={nx} ng={ng} hidden={list(hidden)} tanh, B={batch}, float64, 1 thread, "
          f"V + grad + Hessian, median of {repeats} (native {5 * repeats})")
    print(table(["backend", "time per batch [us]", "per state [us]", "ratio to native"],
                [[n, t * 1e6, t / batch * 1e6, t / anchor] for n, t in rows]))
    return rows[0][1], rows[1][1]


def deep_value_overhead(repeats):
    target = (1.0, 0.5)
    x0 = np.zeros(bb.NX)
    torch.manual_seed(3)
    rng = np.random.default_rng(3)
    model = ValueMLP(ValueMLPSettings(nx=bb.NX, ng=2, hidden=(12, 12, 12)))
    model.set_input_normalization(np.zeros(bb.NX + 3), np.ones(bb.NX + 3))
    # Small output scale: the critic is an untrained network; it must not dominate the task cost.
    model.set_output_affine(0.1, 0.0)
    critic = load_bundle(bundle_bytes(model, robot="ballbot"), expected_nx=bb.NX, expected_ng=2).to_native()
    critic.set_goal(np.asarray(target))
    del rng

    def build(with_value):
        problem, track, terminal = bb.make_reach_problem(target, horizon=100, dt=0.01, integrator="rk4")
        if not with_value:
            return problem
        third_order, project_psd = with_value
        cs = bb.BallbotCostSettings()
        running = _core.SumCost(bb.NX, bb.NU)
        running.add("track", track)
        running.add("upright", _core.UprightCost(bb.NX, bb.NU, bb.PITCH, bb.ROLL, 8, 9, cs.w_tilt, cs.w_tilt_rate))
        t_goal = problem.horizon * problem.dt
        running.add("value", _core.ValueRunningCost(critic, problem.dynamics, problem.control_weight, t_goal,
                                                    project_psd=project_psd, third_order=third_order))
        term = _core.SumCost(bb.NX, bb.NU)
        term.add("lqr", terminal)
        term.add("value", _core.ValueTerminalCost(critic, t_goal, bb.NU))
        return _core.Problem(problem.dynamics, running, term, problem.horizon, problem.dt, "rk4",
                             problem.control_weight)

    # The configurations are timed round-robin (one solve each per round) so that load
    # changes on a shared machine affect them alike.
    configs = (("reach task cost", False),
               ("+ ValueRunningCost + ValueTerminalCost (exact, default)", ("auto", False)),
               ("+ the same with third_order='drop' (no third derivatives)", ("drop", False)),
               ("+ the same with project_psd=True (DeepValueMpcSettings default)", ("auto", True)))
    solvers = {}
    for _, with_value in configs:
        problem = build(with_value)
        solvers[with_value] = (_core.SlqSolver(problem, _core.SlqSettings(max_iterations=1, num_threads=1)),
                               bb.lqr_policy(problem, target))
    it = {k: [] for k in solvers}
    lq = {k: [] for k in solvers}
    for _ in range(repeats * 4 + 1):
        for key, (solver, pol0) in solvers.items():
            solver.set_policy(pol0)
            c0 = time.thread_time()
            r = solver.solve(x0)
            # CPU time of this thread (the solver runs on it: num_threads=1), so that being
            # preempted on a shared machine does not count; the wall-clock split is kept for the
            # LQ column.
            it[key].append((time.thread_time() - c0) / r.iterations)
            lq[key].append(r.time_lq / r.iterations)
    rows, per = [], {}
    for name, key in configs:
        per[key] = statistics.median(it[key][1:])
        rows.append([name, 1e3 * per[key], 1e3 * statistics.median(lq[key][1:]), per[key] / per[False]])
    print("\nDeep Value cost in one Ballbot SLQ iteration (100 nodes x 10 ms, RK4, 1 thread, "
          "max_iterations=1 from the LQR policy)")
    print(table(["running/terminal cost", "CPU ms per iteration", "LQ approx. wall ms", "ratio (CPU)"], rows))
    overhead = per[("auto", False)] / per[False] - 1.0
    print(f"added cost of the Deep Value terms: {100 * overhead:.0f} % (goal <= 30 %); "
          f"with third_order='drop': {100 * (per[('drop', False)] / per[False] - 1.0):.0f} %; "
          f"with project_psd=True: {100 * (per[('auto', True)] / per[False] - 1.0):.0f} %")
    return overhead


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="few repetitions (< 30 s)")
    ap.add_argument("--batch", type=int, default=100)
    args = ap.parse_args()
    torch.set_num_threads(1)
    repeats = 7 if args.quick else 31
    print(machine_line())
    print(f"native critic kernels: {_core.CriticMLP.kernel_isa}")
    t_native, t_ort = critic_batch(args, repeats)
    deep_value_overhead(3 if args.quick else 10)
    print(f"\nnative {t_native * 1e6:.1f} us per batch (goal <= 50 us); onnxruntime / native "
          f"{t_ort / t_native:.1f} (goal >= 5)")
    print(f"ort_over_native={t_ort / t_native:.3f}")


if __name__ == "__main__":
    main()
