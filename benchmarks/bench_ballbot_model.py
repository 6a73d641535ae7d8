#!/usr/bin/env python3
"""Evaluation time of the Ballbot dynamics (calc, calc + calc_diff) measured in C++, side by side
with an anchor measured in the same run: pinocchio's ABA and ABA derivatives on the equivalent
5-DoF chain (px -> py -> Rz -> Ry -> Rx, what OCS2 integrates), called from Python.

All times are thread CPU time (time.thread_time / CLOCK_THREAD_CPUTIME_ID), so preemption by
other processes on the shared machine is not counted; the wall time of the C++ loop is printed
too. The anchor includes the Python call overhead (roughly 0.1-0.5 us); the "C++ loop" rows do
not (timed by BallbotDynamics.time_evaluations inside C++ with the GIL released). Read ratios.

    python benchmarks/bench_ballbot_model.py [--quick]

Last line: ballbot_calc_diff_us=<mean time of calc + calc_diff in microseconds>.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from dmpc_core import _core


def pinocchio_chain(params):
    import pinocchio as pin

    m = pin.Model()
    r_b = params.ball_radius
    j = m.addJoint(0, pin.JointModelPX(), pin.SE3(np.eye(3), np.array([0.0, 0.0, r_b])), "px")
    j = m.addJoint(j, pin.JointModelPY(), pin.SE3.Identity(), "py")
    m.appendBodyToJoint(j, pin.Inertia(params.ball_mass + params.ball_inertia / r_b**2, np.zeros(3),
                                       np.zeros((3, 3))), pin.SE3.Identity())
    j = m.addJoint(j, pin.JointModelRZ(), pin.SE3.Identity(), "yaw")
    j = m.addJoint(j, pin.JointModelRY(), pin.SE3.Identity(), "pitch")
    j = m.addJoint(j, pin.JointModelRX(), pin.SE3.Identity(), "roll")
    m.appendBodyToJoint(j, pin.Inertia(params.base_mass, np.asarray(params.base_com),
                                       np.diag(params.base_inertia)), pin.SE3.Identity())
    return pin, m, m.createData()


def time_python(fn, repeats):
    fn()
    t0 = time.thread_time()
    for _ in range(repeats):
        fn()
    return (time.thread_time() - t0) / repeats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions (< 30 s)")
    args = ap.parse_args()
    n_cpp = 20000 if args.quick else 200000
    n_py = 5000 if args.quick else 50000
    rounds = 3 if args.quick else 5

    model = _core.BallbotDynamics()
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.uniform(-1, 1, 2), rng.uniform(-0.3, 0.3, 3), rng.uniform(-1, 1, 5)])
    u = rng.uniform(-2, 2, 3)
    q, v = x[:5], x[5:]
    tau_gen = model.actuation_map(q) @ u

    rows = {}
    best = lambda f: min(f() for _ in range(rounds))  # noqa: E731  (least disturbed round)
    timings = [model.time_evaluations(x, u, n_cpp) for _ in range(rounds)]
    rows["ballbot calc (C++ loop)"] = min(t["calc_cpu"] for t in timings)
    rows["ballbot calc + calc_diff (C++ loop)"] = min(t["calc_and_diff_cpu"] for t in timings)
    wall = min(t["calc_and_diff_wall"] for t in timings)
    data = model.create_data()
    rows["ballbot calc via Python binding"] = best(lambda: time_python(lambda: model.calc(data, x, u), n_py))
    anchor = "pinocchio computeABADerivatives (Python call)"
    try:
        pin, pm, pd = pinocchio_chain(model.params)
        rows["pinocchio aba (Python call)"] = best(lambda: time_python(lambda: pin.aba(pm, pd, q, v, tau_gen), n_py))
        rows[anchor] = best(lambda: time_python(lambda: pin.computeABADerivatives(pm, pd, q, v, tau_gen), n_py))
    except ImportError:
        anchor = "ballbot calc via Python binding"

    try:  # batched PyTorch model (for sampling MPC), one intra-op thread, time per state
        import torch

        from dmpc_core.models.ballbot_torch import BallbotTorch

        torch.set_num_threads(1)
        k = 1024
        for dtype in (torch.float64, torch.float32):
            tm = BallbotTorch(dtype=dtype)
            xb = torch.as_tensor(np.tile(x, (k, 1)), dtype=dtype)
            ub = torch.as_tensor(np.tile(u, (k, 1)), dtype=dtype)
            name = f"torch xdot, batch {k}, {str(dtype)[6:]} (per state)"
            rows[name] = best(lambda: time_python(lambda: tm.xdot(xb, ub), max(3, n_py // 500))) / k
    except ImportError:
        pass

    ref = rows[anchor]
    print(f"{'evaluation':48s} {'time [us]':>10s} {'ratio to anchor':>16s}")
    for name, t in rows.items():
        mark = "  (anchor)" if name == anchor else ""
        print(f"{name:48s} {t * 1e6:10.3f} {t / ref:16.3f}{mark}")
    both = rows["ballbot calc + calc_diff (C++ loop)"]
    print(f"(wall time of calc + calc_diff in the same C++ loop: {wall * 1e6:.3f} us)")
    print(f"SLQ budget: 400 x (calc + calc_diff) (100 RK4 nodes) = {400 * both * 1e3:.3f} ms (target < 1 ms)")
    print(f"ballbot_calc_diff_us={both * 1e6:.3f}")


if __name__ == "__main__":
    main()
