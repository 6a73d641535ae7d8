"""MPPI throughput: dmpc's compiled MppiSolver vs pytorch_mppi 0.9.1 (CPU) on the same problems.

Measures rollout state-steps per second, K * H / (time of one MPPI iteration), for
  1. the pendulum (K = 256, H = 32, RK4, dt = 0.05, quadratic cost, |u| <= 5),
  2. the Ballbot (K = 1024, H = 50, RK4, dt = 0.02, tracking + upright cost, LQR terminal value),
with dmpc on 1 and 2 threads and pytorch_mppi with torch on 1 and 2 intra-op threads. Both
sides integrate the same continuous dynamics with the same RK4 scheme and evaluate a quadratic
cost; pytorch_mppi evaluates the running cost at the next state (its convention), dmpc at the
current one, which does not change the work per step.
The Ballbot torch twin is dmpc_core/models/ballbot_torch.py (reported as pending if absent).

Speed is a ratio measured side by side in one run (the machine is shared and noisy): for each
problem and thread count, the dmpc and pytorch_mppi iterations are timed in alternating
blocks (dmpc, torch, dmpc, torch, ...; see interleaved_rates) and each rate is K * H over the
median time of its calls, so that both sides see the same machine load.
The Ballbot rows are repeated with semi-implicit Euler (one dynamics evaluation per step
instead of RK4's four) on both sides. One thread means OPENBLAS_NUM_THREADS=1 and
torch.set_num_threads(1); 2 threads: MppiSettings.num_threads=2 / torch.set_num_threads(2).
Usage: python benchmarks/mppi_throughput.py [--quick] [--dmpc-only]
(--dmpc-only: dmpc rows only, no torch; runs against any build of _core, e.g. main's, for a
before/after comparison; the last line is then nan.)
Last line: mppi_over_pytorch_mppi=<dmpc 1 thread / pytorch_mppi 1 thread, Ballbot, RK4>.
"""
from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_line  # noqa: E402

import numpy as np
import torch

from dmpc_core import _core

DT_PEND, K_PEND, H_PEND = 0.05, 256, 32
DT_BB, K_BB, H_BB = 0.02, 1024, 50
Q_PEND = np.diag([10.0, 1.0])


def interleaved_rates(fns: dict, work: int, min_time: float, min_calls: int) -> dict:
    """work / (median seconds per call) of every callable in fns, timed in alternating blocks
    (each round calls each callable repeatedly for min_time / 4 s, at least once) until every
    callable has min_calls calls and the run took min_time seconds per callable. Blocks rather
    than single calls: torch's intra-op threads keep spinning for a moment after a call, which
    would slow down the first multi-threaded dmpc call after it (the median drops that call)."""
    for fn in fns.values():
        fn()  # warm-up
    times = {name: [] for name in fns}
    block = min_time / 4.0
    start = time.perf_counter()
    while (min(len(t) for t in times.values()) < min_calls
           or time.perf_counter() - start < min_time * len(fns)):
        for name, fn in fns.items():
            b0 = time.perf_counter()
            while True:
                t0 = time.perf_counter()
                fn()
                t1 = time.perf_counter()
                times[name].append(t1 - t0)
                if t1 - b0 >= block:
                    break
    return {name: work / float(np.median(t)) for name, t in times.items()}


# ---------------------------------------------------------------- dmpc
def dmpc_step(dyn, running, terminal, x0, K, H, dt, sigma, u_lim, threads, integrator="rk4"):
    """One MPPI iteration (set_state + optimize) of a fresh MppiSolver, as a callable."""
    nu = dyn.nu
    s = _core.MppiSettings(num_samples=K, horizon=H, dt=dt, noise_sigma=sigma, lambda_=1.0,
                           num_iterations=1, num_threads=threads, seed=0, integrator=integrator,
                           u_min=[-u_lim] * nu, u_max=[u_lim] * nu, num_saved_trajectories=0)
    solver = _core.MppiSolver(dyn, running, terminal, s)

    def step():
        solver.set_state(x0, 0.0)
        solver.optimize()

    return step


# ---------------------------------------------------------------- pytorch_mppi
def rk4(f, x, u, dt):
    k1 = f(x, u)
    k2 = f(x + 0.5 * dt * k1, u)
    k3 = f(x + 0.5 * dt * k2, u)
    k4 = f(x + dt * k3, u)
    return x + dt / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)


def pendulum_xdot(x, u, m=1.0, length=1.0, b=0.0, g=9.81):
    th, thd = x[:, 0], x[:, 1]
    thdd = (g / length) * torch.sin(th) + (u[:, 0] - b * thd) / (m * length**2)
    return torch.stack((thd, thdd), dim=1)


def torch_step(dynamics, running_cost, terminal_cost, x0, K, H, sigma, u_lim):
    """One pytorch_mppi iteration (command) as a callable (threads: torch.set_num_threads)."""
    from pytorch_mppi import MPPI

    nu = sigma.shape[0]
    ctrl = MPPI(dynamics, running_cost, len(x0), torch.tensor(sigma, dtype=torch.double),
                num_samples=K, horizon=H, lambda_=1.0, terminal_state_cost=terminal_cost,
                u_min=torch.full((nu,), -u_lim, dtype=torch.double),
                u_max=torch.full((nu,), u_lim, dtype=torch.double))
    state = torch.tensor(x0, dtype=torch.double)
    return lambda: ctrl.command(state)


def paired_rows(dmpc_fn, torch_fn, work, min_time, min_calls):
    """Rows {name: state-steps/s} for 1 and 2 threads; torch_fn None: dmpc rows only."""
    rows = {}
    for th in (1, 2):
        torch.set_num_threads(th)
        fns = {f"dmpc MppiSolver, {th} thread(s)": dmpc_fn(th)}
        if torch_fn is not None:
            fns[f"pytorch_mppi 0.9.1, torch {th} thread(s)"] = torch_fn()
        rows.update(interleaved_rates(fns, work, min_time, min_calls))
    order = [f"dmpc MppiSolver, {th} thread(s)" for th in (1, 2)]
    if torch_fn is not None:
        order += [f"pytorch_mppi 0.9.1, torch {th} thread(s)" for th in (1, 2)]
    return {name: rows[name] for name in order}


def check_same_step(core_model, torch_dynamics, x, u, dt, integrator="rk4"):
    """The two sides must integrate the same model: one step agrees to 1e-9 (integrate() and
    integrate_forward(), the value-only step the MPPI rollouts use)."""
    b = torch_dynamics(torch.tensor(x[None, :]), torch.tensor(u[None, :]))[0].numpy()
    for step in (_core.integrate, _core.integrate_forward):
        a = step(core_model, x, u, dt, integrator)
        if not np.allclose(a, b, rtol=0, atol=1e-9):
            raise RuntimeError(f"torch and dmpc ({step.__name__}) dynamics disagree: {a} vs {b}")


def pendulum_rows(min_time, min_calls, dmpc_only=False):
    dyn = _core.PendulumDynamics()
    running = _core.QuadraticCost(Q_PEND, np.zeros((1, 1)))
    x0 = np.array([np.pi, 0.0])
    sigma = np.eye(1) * 4.0
    Qt = torch.tensor(Q_PEND, dtype=torch.double)

    def dynamics(x, u):
        return rk4(pendulum_xdot, x, u, DT_PEND)  # pytorch_mppi clamps u itself

    def cost(x, u):
        return 0.5 * DT_PEND * ((x @ Qt) * x).sum(dim=1)

    def dmpc_fn(th):
        return dmpc_step(dyn, running, None, x0, K_PEND, H_PEND, DT_PEND, sigma, 5.0, th)

    if dmpc_only:
        return paired_rows(dmpc_fn, None, K_PEND * H_PEND, min_time, min_calls)
    check_same_step(dyn, dynamics, np.array([2.0, -0.5]), np.array([1.5]), DT_PEND)
    return paired_rows(dmpc_fn, lambda: torch_step(dynamics, cost, None, x0, K_PEND, H_PEND, sigma, 5.0),
                       K_PEND * H_PEND, min_time, min_calls)


def ballbot_rows(min_time, min_calls, integrator, dmpc_only=False):
    from dmpc_core.tasks import ballbot as task

    dyn = _core.BallbotDynamics()
    cs = task.BallbotCostSettings()
    Q = np.diag(np.asarray(cs.q_diag, dtype=float))
    R = cs.r * np.eye(3)
    x_ref = np.zeros(10)
    x_ref[0] = 2.0
    running = _core.SumCost(10, 3)
    running.add("track", _core.QuadraticCost(Q, R, x_ref, np.zeros(3)))
    running.add("upright", _core.UprightCost(10, 3, 3, 4, 8, 9, cs.w_tilt, cs.w_tilt_rate))
    P = task.upright_lqr_value(dyn, Q, R, DT_BB)
    terminal = _core.QuadraticCost(P, np.zeros((0, 0)), x_ref, np.zeros(0))
    x0 = np.zeros(10)
    sigma = np.eye(3) * 4.0

    def dmpc_fn(th):
        return dmpc_step(dyn, running, terminal, x0, K_BB, H_BB, DT_BB, sigma, 20.0, th, integrator)

    if dmpc_only:
        return paired_rows(dmpc_fn, None, K_BB * H_BB, min_time, min_calls)
    try:
        torch_model = importlib.util.find_spec("dmpc_core.models.ballbot_torch")
    except ModuleNotFoundError:  # no dmpc_core.models package at all
        torch_model = None
    if torch_model is None:
        rows = paired_rows(dmpc_fn, None, K_BB * H_BB, min_time, min_calls)
        rows["pytorch_mppi 0.9.1"] = None  # pending: no torch Ballbot model
        return rows
    from dmpc_core.models.ballbot_torch import BallbotTorch

    dynamics = BallbotTorch().mppi_dynamics(DT_BB, integrator)
    Qt, Rt, Pt = (torch.tensor(a, dtype=torch.double) for a in (Q, R, P))
    xr = torch.tensor(x_ref, dtype=torch.double)

    def cost(x, u):  # same terms as the dmpc running cost, times dt
        dx = x - xr
        track = 0.5 * ((dx @ Qt) * dx).sum(1) + 0.5 * ((u @ Rt) * u).sum(1)
        upright = cs.w_tilt * (1 - torch.cos(x[:, 3]) * torch.cos(x[:, 4])) + 0.5 * cs.w_tilt_rate * (
            x[:, 8] ** 2 + x[:, 9] ** 2)
        return DT_BB * (track + upright)

    def terminal_cost(states, actions):  # states (1, K, T, nx)
        dx = states[..., -1, :] - xr
        return 0.5 * ((dx @ Pt) * dx).sum(-1)

    check_same_step(dyn, dynamics, np.array([0.1, -0.2, 0.3, 0.05, -0.04, 0.2, 0.1, -0.3, 0.2, 0.1]),
                    np.array([1.0, -2.0, 0.5]), DT_BB, integrator)
    return paired_rows(
        dmpc_fn, lambda: torch_step(dynamics, cost, terminal_cost, x0, K_BB, H_BB, sigma, 20.0),
        K_BB * H_BB, min_time, min_calls)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="short run (< 30 s)")
    ap.add_argument("--dmpc-only", action="store_true", help="dmpc rows only (no pytorch_mppi)")
    args = ap.parse_args()
    min_time, min_calls = (0.4, 2) if args.quick else (3.0, 10)
    print(machine_line())
    print("| problem | integrator | implementation | state-steps/s | ratio to pytorch_mppi (same threads) |")
    print("|---|---|---|---:|---:|")
    pend = pendulum_rows(min_time, min_calls, args.dmpc_only)
    for name, rate in pend.items():
        th = name.split(",")[-1].strip().split()[-2] if "thread" in name else "?"
        ref = pend.get(f"pytorch_mppi 0.9.1, torch {th} thread(s)")
        ratio = f"{rate / ref:.2f}" if ref else "-"
        print(f"| pendulum K={K_PEND} H={H_PEND} | rk4 | {name} | {rate:,.0f} | {ratio} |")
    final = float("nan")
    for integrator in ("rk4", "semi_implicit_euler"):
        bb = ballbot_rows(min_time, min_calls, integrator, args.dmpc_only)
        for name, rate in bb.items():
            th = name.split(",")[-1].strip().split()[-2] if "thread" in name else "?"
            ref = bb.get(f"pytorch_mppi 0.9.1, torch {th} thread(s)")
            if rate is None:
                print(f"| ballbot K={K_BB} H={H_BB} | {integrator} | {name} | pending (no torch Ballbot model) | - |")
            else:
                ratio = f"{rate / ref:.2f}" if ref else "-"
                print(f"| ballbot K={K_BB} H={H_BB} | {integrator} | {name} | {rate:,.0f} | {ratio} |")
        ref1 = bb.get("pytorch_mppi 0.9.1, torch 1 thread(s)")
        if integrator == "rk4" and ref1:
            final = bb["dmpc MppiSolver, 1 thread(s)"] / ref1
    print(f"mppi_over_pytorch_mppi={final:.2f}")


if __name__ == "__main__":
    main()
