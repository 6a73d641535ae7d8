"""Critic evaluation cost: V + dV/dx + d2V/dx2 (+ dV/dtau, d2V/dtau dx) for a batch of states.

Ballbot-sized critic (nx = 10, ng = 2, hidden [12, 12, 12], tanh), batch B = 100.
Backends measured in the same run:
  native  _core.CriticMLP.evaluate_batch (forward-over-reverse, one thread)       [anchor]
  torch   torch.func: vmap(grad), vmap(hessian) in float64 (the training framework)
Both are checked to agree (1e-9 relative) before timing. Prints a table of median times and the
ratio to the anchor; last line `torch_over_native=<ratio>`.

Usage: python benchmarks/critic_eval.py [--quick] [--batch B]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from torch.func import grad, hessian, vmap

from dmpc_core import _core


def make_params(nx: int, ng: int, hidden: list[int], seed: int = 0):
    rng = np.random.default_rng(seed)
    sizes = [nx + ng + 1, *hidden, 1]
    W = [rng.normal(0, 1 / np.sqrt(sizes[i]), (sizes[i + 1], sizes[i])) for i in range(len(sizes) - 1)]
    b = [rng.normal(0, 0.1, sizes[i + 1]) for i in range(len(sizes) - 1)]
    mean = rng.normal(0, 0.5, sizes[0])
    std = rng.uniform(0.5, 2.0, sizes[0])
    return W, b, mean, std, 2.0, -1.0


def median_time(fn, repeats: int) -> float:
    fn()  # warm-up
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="few repetitions (< 30 s)")
    ap.add_argument("--batch", type=int, default=100)
    args = ap.parse_args()
    torch.set_num_threads(1)
    nx, ng, hidden, B = 10, 2, [12, 12, 12], args.batch
    repeats = 7 if args.quick else 31
    W, b, mean, std, scale, bias = make_params(nx, ng, hidden)
    critic = _core.CriticMLP(W, b, mean, std, scale, bias, nx, ng)
    rng = np.random.default_rng(1)
    goal = rng.normal(size=ng)
    critic.set_goal(goal)
    X = rng.normal(size=(B, nx))
    taus = rng.uniform(0, 3, B)

    Wt = [torch.tensor(w) for w in W]
    bt = [torch.tensor(v) for v in b]
    mt, st, gt = torch.tensor(mean), torch.tensor(std), torch.tensor(goal)

    def V(zeta):  # zeta = (x, tau)
        z = torch.cat([zeta[:nx], gt, zeta[nx:]])
        h = (z - mt) / st
        for w_, b_ in zip(Wt[:-1], bt[:-1]):
            h = torch.tanh(w_ @ h + b_)
        return scale * (Wt[-1] @ h + bt[-1])[0] + bias

    Z = torch.tensor(np.column_stack([X, taus]))
    v_b, g_b, h_b = vmap(V), vmap(grad(V)), vmap(hessian(V))

    def run_torch():
        with torch.no_grad():
            return v_b(Z), g_b(Z), h_b(Z)

    def run_native():
        return critic.evaluate_batch(taus, X)

    # agreement before timing
    out = run_native()
    Vt, Gt, Ht = (t.numpy() for t in run_torch())
    for name, a, r in (("V", out["V"], Vt), ("Vx", out["Vx"], Gt[:, :nx]), ("Vtau", out["Vtau"], Gt[:, nx]),
                       ("Vxx", out["Vxx"], Ht[:, :nx, :nx]), ("Vtaux", out["Vtaux"], Ht[:, :nx, nx])):
        err = np.max(np.abs(a - r)) / max(np.max(np.abs(r)), 1e-3)
        assert err < 1e-9, f"{name} disagrees: {err:.2e}"

    t_native = median_time(run_native, repeats)
    t_torch = median_time(run_torch, repeats)
    print(f"critic nx={nx} ng={ng} hidden={hidden} batch={B}, V+grad+Hessian, 1 thread, median of {repeats}")
    print(f"{'backend':<10}{'time [ms]':>12}{'per state [us]':>16}{'ratio':>9}")
    for name, t in (("native", t_native), ("torch", t_torch)):
        print(f"{name:<10}{1e3 * t:>12.3f}{1e6 * t / B:>16.2f}{t / t_native:>9.1f}")
    print(f"torch_over_native={t_torch / t_native:.1f}")


if __name__ == "__main__":
    main()
