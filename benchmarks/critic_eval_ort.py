#!/usr/bin/env python3
"""Critic evaluation cost, ONNX side: V + dV/dx + d2V/dx2 + dV/dtau + d2V/dtau dx for B states.

Ballbot-sized critic (nx = 10, ng = 2, hidden [12, 12, 12], tanh), batch B = 100, float64,
one thread everywhere. Backends, all measured in the same run on the same bundle:

  torch.func     vmap(jacrev), vmap(hessian) of the plain forward            [anchor]
  torch chain    ValueMLP.value_and_derivatives (exact forward-mode chain rule, batched)
  ort batch      onnxruntime CPU EP, one session.run for the B states
  ort per-state  OrtCriticAdapter.evaluate called B times (what a C++ solver would see)
  native         _core.CriticMLP.evaluate_batch from CriticBundle.to_native()  [slot: only
                 when the core was built with the critics-cpp branch]

All backends are checked to agree (1e-8 relative) before timing. Times are medians of the
process CPU time (time.process_time; every backend runs on one thread, so preemption by other
processes on the shared machine is not counted); read the ratios. Last line:
``ort_over_native=<ort batch time / native time>``, or ``nan`` when the native critic is absent.

    python benchmarks/critic_eval_ort.py [--quick] [--batch B]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from torch.func import hessian, jacrev, vmap

from dmpc_core import _core
from dmpc_core.critics import OrtCritic, OrtCriticAdapter, ValueMLP, ValueMLPSettings, bundle_bytes, load_bundle


def median_time(fn, repeats: int) -> float:
    fn()  # warm-up
    ts = []
    for _ in range(repeats):
        t0 = time.process_time()
        fn()
        ts.append(time.process_time() - t0)
    return float(np.median(ts))


def check(name, got, ref, tol=1e-8):
    got, ref = np.asarray(got), np.asarray(ref)
    err = float(np.max(np.abs(got - ref)))
    scale = max(1.0, float(np.max(np.abs(ref))))
    if err > tol * scale:
        raise SystemExit(f"{name} disagrees with torch.func: max error {err:.3e}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="few repetitions (< 30 s)")
    ap.add_argument("--batch", type=int, default=100)
    args = ap.parse_args()
    torch.set_num_threads(1)
    nx, ng, hidden, batch = 10, 2, (12, 12, 12), args.batch
    repeats = 7 if args.quick else 31

    torch.manual_seed(0)
    rng = np.random.default_rng(1)
    model = ValueMLP(ValueMLPSettings(nx=nx, ng=ng, hidden=hidden))
    model.set_input_normalization(rng.normal(0, 0.5, nx + ng + 1), rng.uniform(0.5, 2.0, nx + ng + 1))
    model.set_output_affine(2.0, -1.0)
    bundle = load_bundle(bundle_bytes(model, robot="ballbot"), expected_nx=nx, expected_ng=ng)
    ort_critic = OrtCritic(bundle)
    adapter = OrtCriticAdapter(bundle)

    goal = rng.normal(size=ng)
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

    native = None
    if hasattr(_core, "CriticMLP"):
        native = bundle.to_native()
        native.set_goal(goal)

        def run_native():
            return native.evaluate_batch(taus, x)

        nat = run_native()
        for k_nat, k_ref in (("V", "value"), ("Vx", "dvalue_dx"), ("Vxx", "d2value_dx2"),
                             ("Vtau", "dvalue_dt"), ("Vtaux", "d2value_dtdx")):
            check(f"native {k_nat}", nat[k_nat], ref[k_ref])

    rows = [("torch.func vmap(jacrev, hessian)", median_time(run_func, repeats)),
            ("torch chain rule (batched)", median_time(run_chain, repeats)),
            ("onnxruntime batch", median_time(run_ort, repeats)),
            ("onnxruntime per-state x B", median_time(run_ort_loop, max(3, repeats // 3)))]
    if native is not None:
        rows.append(("native CriticMLP.evaluate_batch", median_time(run_native, repeats)))
    anchor = rows[0][1]
    print(f"critic nx={nx} ng={ng} hidden={list(hidden)} tanh, B={batch}, float64, 1 thread, "
          f"{repeats} repeats (median)")
    print(f"{'backend':36s} {'time [ms]':>10s} {'per state [us]':>15s} {'vs anchor':>10s}")
    for name, t in rows:
        print(f"{name:36s} {t * 1e3:10.3f} {t / batch * 1e6:15.2f} {t / anchor:10.3f}")
    if native is None:
        print("note: dmpc_core._core has no CriticMLP (native critic not built in this branch)")
        print("ort_over_native=nan")
    else:
        ort_t = rows[2][1]
        print(f"ort_over_native={ort_t / rows[-1][1]:.3f}")


if __name__ == "__main__":
    main()
