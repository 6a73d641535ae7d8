"""Learned-model rollouts: MPPI with an M = 5 ensemble of control-affine MLPs, dmpc vs pytorch_mppi,
and one SLQ iteration on the learned model vs the analytic Ballbot model.

Model: the Ballbot's sizes (nx = 10, nu = 3, x = [q; v], only vdot learned), features phi(x) =
the 10 states, tanh hidden layers 2 x 64 and 2 x 200, M = 5 members with random weights (speed
does not depend on the values). Problem: K = 1000 samples, H = 50 steps, dt = 0.02, semi-implicit
Euler (one model evaluation per step), quadratic running cost, |u| <= 5, trajectory sampling
(sample k uses member k mod M for its whole rollout).

  dmpc:          MppiSolver(EnsembleMeanDynamics) + set_rollout_models(members); native forward
                 pass per state (ControlAffineMlpDynamics.calc_xdot), 1 and 2 threads.
  pytorch_mppi:  0.9.1 MPPI on the SAME torch ensemble (models/learned.py, float64), its dynamics
                 a batched forward of every member on its K/M samples (the weights stacked over
                 members, one batched matmul per layer), torch 1 and 2 intra-op threads.
State-steps per second = K * H / (median time of one MPPI iteration); both sides are timed in
alternating blocks in the same run (mppi_throughput.interleaved_rates), after checking that one
step of both sides agrees to 1e-9.
Where the time goes (second table, 1 thread): the batched torch ensemble step alone (K states,
no MPPI) timed in the same blocks as pytorch_mppi's iteration / H, and the network's arithmetic
rate 2 * sum(n_in * n_out) flops per state-step for torch's step and for dmpc's whole MPPI
iteration. If pytorch_mppi spends its time in that step, a ratio of R over it needs R times
torch's flop rate, in float64, in the last column.
SLQ: median time of one SLQ iteration (solve with max_iterations = 1 from the same initial guess)
on Problem(EnsembleMeanDynamics of the 2 x 64 ensemble) vs Problem(BallbotDynamics), H = 100,
dt = 0.02, the same quadratic cost, semi-implicit Euler.
Usage: python benchmarks/learned_model_rollouts.py [--quick]
Last line: learned_mppi_over_pytorch_mppi=<dmpc 1 thread / pytorch_mppi 1 thread, 2 x 64>.
"""
from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_line, table  # noqa: E402
from mppi_throughput import interleaved_rates  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from dmpc_core import _core  # noqa: E402
from dmpc_core.models.learned import DynamicsEnsemble, _stacked_forward, ensemble_to_native  # noqa: E402
from dmpc_core.tasks import ballbot  # noqa: E402

NX, NU, NQ, M = 10, 3, 5, 5
K, H, DT, U_LIM = 1000, 50, 0.02, 5.0
FEATURES = [("id", i) for i in range(NX)]


def make_ensemble(hidden, seed=0) -> DynamicsEnsemble:
    torch.manual_seed(seed)
    ens = DynamicsEnsemble(NX, NU, NQ, FEATURES, hidden, M)
    with torch.no_grad():
        for m in ens.members:
            m.output_scale.fill_(0.3)
    return ens


def torch_dynamics(ens: DynamicsEnsemble):
    """pytorch_mppi dynamics: semi-implicit Euler of the ensemble, sample k in member k mod M."""
    Ws = [torch.stack([m.layers[i].weight.detach() for m in ens.members]) for i in range(len(ens.members[0].layers))]
    bs = [torch.stack([m.layers[i].bias.detach() for m in ens.members]) for i in range(len(ens.members[0].layers))]

    def step(x, u):
        n = x.shape[0]
        xs = x.reshape(n // M, M, NX).transpose(0, 1)  # member k gets samples k, k + M, ...
        us = u.reshape(n // M, M, NU).transpose(0, 1)
        xd = _stacked_forward(ens, Ws, bs, xs, us)
        v1 = xs[..., NQ:] + DT * xd[..., NQ:]
        xn = torch.cat([xs[..., :NQ] + DT * v1, v1], dim=-1)
        return xn.transpose(0, 1).reshape(n, NX)

    return step


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="shorter timing (noisier)")
    args = ap.parse_args()
    min_time, min_calls = (0.5, 3) if args.quick else (2.0, 5)
    print(machine_line())
    Q = np.diag([1.0] * 5 + [0.1] * 5)
    R = 0.01 * np.eye(NU)
    x0 = np.zeros(NX)
    x0[:2] = (0.5, 0.3)  # displaced, upright at rest (an equilibrium: the first rollout at u = 0 stays finite)
    cost = _core.QuadraticCost(Q, R, np.zeros(NX), np.zeros(NU))
    Qt, Rt = torch.tensor(Q), torch.tensor(R)
    rows, where, ratio64 = [], [], float("nan")
    for hidden in ((64, 64), (200, 200)):
        ens = make_ensemble(hidden)
        members, mean = ensemble_to_native(ens)
        step = torch_dynamics(ens)
        # the two sides integrate the same ensemble: member k, one step
        rng = np.random.default_rng(0)
        xs, us = rng.standard_normal((M, NX)), rng.standard_normal((M, NU))
        tn = step(torch.tensor(xs), torch.tensor(us)).numpy()
        for k in range(M):
            a = _core.integrate(members[k], xs[k], us[k], DT, "semi_implicit_euler")
            if not np.allclose(a, tn[k], rtol=0, atol=1e-9):
                raise RuntimeError(f"torch and dmpc ensembles disagree (member {k}): {a} vs {tn[k]}")

        def dmpc_fn(threads):
            s = _core.MppiSettings(num_samples=K, horizon=H, dt=DT, noise_sigma=np.eye(NU), lambda_=1.0, num_iterations=1,
                                   num_threads=threads, seed=0, integrator="semi_implicit_euler",
                                   u_min=[-U_LIM] * NU, u_max=[U_LIM] * NU, num_saved_trajectories=0)
            solver = _core.MppiSolver(mean, cost, None, s)
            solver.set_rollout_models(members)

            def one():
                solver.set_state(x0, 0.0)
                solver.optimize()
            return one

        def torch_fn():
            from pytorch_mppi import MPPI

            def running(x, u):
                return ((x @ Qt) * x).sum(-1) + ((u @ Rt) * u).sum(-1)

            ctrl = MPPI(step, running, NX, torch.eye(NU, dtype=torch.double), num_samples=K, horizon=H, lambda_=1.0,
                        u_min=torch.full((NU,), -U_LIM, dtype=torch.double), u_max=torch.full((NU,), U_LIM, dtype=torch.double))
            state = torch.tensor(x0, dtype=torch.double)
            return lambda: ctrl.command(state)

        xb, ub = torch.zeros(K, NX, dtype=torch.double), torch.zeros(K, NU, dtype=torch.double)
        res = {}
        for th in (1, 2):
            torch.set_num_threads(th)
            fns = {f"dmpc {th}": dmpc_fn(th), f"torch {th}": torch_fn()}
            if th == 1:
                fns["torch step"] = lambda: [step(xb, ub) for _ in range(H)]  # H batched steps, no MPPI
            res.update(interleaved_rates(fns, K * H, min_time, min_calls))
        name = f"{hidden[0]} x {len(hidden)}"
        name = f"2 x {hidden[0]}"
        for th in (1, 2):
            rows.append([name, th, res[f"dmpc {th}"], res[f"torch {th}"], res[f"dmpc {th}"] / res[f"torch {th}"]])
        if hidden == (64, 64):
            ratio64 = res["dmpc 1"] / res["torch 1"]
        sizes = [NX, *hidden, NQ * (1 + NU)]
        flops = 2.0 * sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))  # per state-step
        where.append([name, f"{flops:.0f}", res["torch step"], res["torch 1"] / res["torch step"],
                      flops * res["torch step"] / 1e9, flops * res["dmpc 1"] / 1e9, 10 * flops * res["torch 1"] / 1e9])
    print(f"\nMPPI with an M = {M} ensemble, trajectory sampling, K = {K}, H = {H}, semi-implicit Euler (state-steps/s)")
    print(table(["network", "threads", "dmpc MppiSolver", "pytorch_mppi 0.9.1 (same torch ensemble)", "ratio"], rows))
    print("\nWhere the time goes, 1 thread: torch's batched ensemble step alone and the network's flop rates")
    print(table(["network", "network flops per state-step", "torch step alone (states/s)",
                 "share of pytorch_mppi's time in that step", "torch step GFLOP/s", "dmpc MPPI GFLOP/s (network only)",
                 "GFLOP/s that 10x pytorch_mppi needs"], where))

    # one SLQ iteration: learned (2 x 64 ensemble mean) vs analytic Ballbot
    ens = make_ensemble((64, 64))
    _, mean = ensemble_to_native(ens)
    slq_rows = []
    for label, dyn in (("learned ensemble mean (M = 5, 2 x 64)", mean), ("analytic BallbotDynamics", _core.BallbotDynamics())):
        prob = _core.Problem(dyn, cost, None, 100, DT, "semi_implicit_euler", R, 1.0)
        solver = _core.SlqSolver(prob, _core.SlqSettings(max_iterations=1))
        times = []
        for _ in range(3 if args.quick else 10):
            # initial guess: the Ballbot's upright LQR policy (x = 0 is not an exact equilibrium
            # of the analytic model: at u = 0 it falls within the horizon); zero controls for the
            # random learned model
            if dyn is mean:
                solver.set_controls(np.zeros((100, NU)))
            else:
                solver.set_policy(ballbot.lqr_policy(prob, (0.0, 0.0)))
            t0 = time.perf_counter()
            res = solver.solve(x0)
            times.append(time.perf_counter() - t0)
            if res.iterations != 1:
                raise RuntimeError(f"{label}: the SLQ iteration did not run ({res}: {res.message})")
        slq_rows.append([label, 1e3 * statistics.median(times)])
    slq_rows.append(["ratio learned / analytic", slq_rows[0][1] / slq_rows[1][1]])
    print("\nOne SLQ iteration, H = 100, dt = 0.02, semi-implicit Euler, 1 thread (median ms)")
    print(table(["model", "ms per iteration"], slq_rows))
    print(f"learned_mppi_over_pytorch_mppi={ratio64:.3g}")


if __name__ == "__main__":
    main()
