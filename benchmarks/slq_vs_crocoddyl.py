"""SLQ vs crocoddyl FDDP on the identical Panda reaching problem (100 nodes, dt = 10 ms,
semi-implicit Euler, same costs): time per iteration on 1 and 2 threads, measured side by side.

    python benchmarks/slq_vs_crocoddyl.py [--quick]

Per-iteration time = full solve time / iterations (both solvers start from the same
quasi-static guess and converge to the same optimum; their costs are printed). The last line is
``slq_over_fddp=<ratio>`` on 1 thread (goal <= 0.7). Also prints the resident memory
growth of building (and running once) the dmpc solver and crocoddyl's problem + FDDP solver.
Threads: 1 and 2 for both (SlqSettings.num_threads, crocoddyl's nthreads); OPENBLAS_NUM_THREADS=1.
"""
from __future__ import annotations

import os as _os

_os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import gc
import os
import resource
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np  # noqa: E402
from _common import machine_line, median_time, table  # noqa: E402

from dmpc_core import _core  # noqa: E402
from dmpc_core.baselines import crocoddyl_panda as cp  # noqa: E402
from dmpc_core.tasks import panda  # noqa: E402


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def rss_mb() -> float:
    """Current resident set size [MB] (Linux /proc/self/statm)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def memory_rows(problem, U0, x0):
    """RSS growth of building (and running once) each side's 100-node solver, objects kept alive."""
    gc.collect()
    r0 = rss_mb()
    solver = _core.SlqSolver(problem, _core.SlqSettings(max_iterations=200, num_threads=1))
    solver.set_controls(U0)
    solver.solve(x0)
    r1 = rss_mb()
    cproblem, fddp = cp.build_crocoddyl_problem(nthreads=1)
    cp.solve_fddp(cproblem, fddp)
    r2 = rss_mb()
    rows = [["dmpc SlqSolver (problem shared, built before)", r1 - r0],
            ["crocoddyl ShootingProblem + SolverFDDP (incl. its models)", r2 - r1]]
    del solver, cproblem, fddp
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="fewer repeats (< 30 s)")
    args = ap.parse_args(argv)
    repeats = 3 if args.quick else 15
    problem, setup = panda.make_reach_problem()
    U0 = panda.gravity_controls(problem, setup)
    mem = memory_rows(problem, U0, setup["x0"])
    rows, ratio = [], {}
    for threads in (1, 2):
        solver = _core.SlqSolver(problem, _core.SlqSettings(max_iterations=200, num_threads=threads))
        info = {}

        def run_slq():
            solver.set_controls(U0)
            res = solver.solve(setup["x0"])
            info["slq"] = res

        t_slq = median_time(run_slq, repeats)
        cproblem, fddp = cp.build_crocoddyl_problem(nthreads=threads)

        def run_fddp():
            cp.solve_fddp(cproblem, fddp)
            info["fddp"] = (fddp.cost, fddp.iter)

        t_fddp = median_time(run_fddp, repeats)
        slq, (fcost, fiter) = info["slq"], info["fddp"]
        per_slq = t_slq / slq.iterations * 1e3
        per_fddp = t_fddp / max(fiter, 1) * 1e3
        ratio[threads] = per_slq / per_fddp
        rows.append([threads, slq.iterations, per_slq, fiter, per_fddp, ratio[threads], slq.cost, fcost,
                     abs(slq.cost - fcost) / fcost])
    print(machine_line())
    print(table(["threads", "SLQ iters", "SLQ ms/iter", "FDDP iters", "FDDP ms/iter", "SLQ/FDDP",
                 "SLQ cost", "FDDP cost", "rel. cost diff"], rows))
    print("\nmemory: resident-set growth of building and running once the 100-node solver")
    print(table(["solver", "RSS growth [MB]"], mem))
    print(f"(process peak {peak_rss_mb():.0f} MB, mostly Python/pinocchio/crocoddyl imports)")
    print(f"slq_over_fddp={ratio[1]:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
