"""The Panda's Deep Value MPC SLQ iteration (100 nodes of 10 ms, Eq. 13 + 14 with a critic of the
learner's shape) against the same iteration without the value terms (the reach MPC's problem:
regularisation + TCP distance) and against one crocoddyl FDDP iteration on the same reach
problem, measured side by side in one run, on 1 thread.

    python benchmarks/panda_dmpc_iteration.py [--quick]

Per-iteration time: an SLQ solve limited to one iteration from the same gravity-compensation
guess (what the in-node MPC does at each update: one real-time iteration), median over repeats;
FDDP: the full solve time / its iterations. The last line is
``dmpc_mpc_rate_hz=<1 / DMPC iteration>`` (the in-node re-planning rate one core sustains with
Eq. 14 on; goal >= 100 Hz).
"""
from __future__ import annotations

import os as _os

_os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np  # noqa: E402
from _common import machine_line, median_time, table  # noqa: E402

from dmpc_core import _core  # noqa: E402
from dmpc_core.baselines import crocoddyl_panda as cp  # noqa: E402
from dmpc_core.control.dmpc_problem import PandaActorSettings, PandaDmpcActor  # noqa: E402
from dmpc_core.models.panda import Q_READY, default_urdf_path  # noqa: E402
from dmpc_core.tasks import panda  # noqa: E402


def learner_shaped_critic(seed: int = 0):
    """A native tanh critic of the learner's default shape (3 x 12 hidden) on (q, v, goal, tau)."""
    rng = np.random.default_rng(seed)
    sizes = [14 + 3 + 1, 12, 12, 12, 1]
    W = [0.3 * rng.standard_normal((sizes[i + 1], sizes[i])) for i in range(len(sizes) - 1)]
    b = [0.1 * rng.standard_normal(sizes[i + 1]) for i in range(len(sizes) - 1)]
    return _core.CriticMLP(W, b, np.zeros(sizes[0]), np.ones(sizes[0]), 1.0, 0.0, 14, 3)


def one_iteration_time(problem, U0, x0, repeats: int) -> float:
    solver = _core.SlqSolver(problem, _core.SlqSettings(max_iterations=1, num_threads=1))

    def run():
        solver.set_controls(U0)
        solver.solve(x0)

    return median_time(run, repeats)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="fewer repeats")
    args = ap.parse_args(argv)
    repeats = 5 if args.quick else 30
    reach, setup = panda.make_reach_problem()
    x0 = setup["x0"]
    U0 = panda.gravity_controls(reach, setup)
    model = _core.PandaDynamics(str(default_urdf_path()))
    actor = PandaDmpcActor(PandaActorSettings(horizon_time=1.0, node_dt=0.01), model)
    dmpc, _, _ = actor.make_problem(learner_shaped_critic(), setup["p_ref"], t_goal=3.0)
    assert dmpc.horizon == reach.horizon == 100
    t_reach = one_iteration_time(reach, U0, x0, repeats)
    t_dmpc = one_iteration_time(dmpc, U0, x0, repeats)
    term = PandaDmpcActor(PandaActorSettings(mode="terminal", horizon_time=1.0, node_dt=0.01), model)
    dterm, _, _ = term.make_problem(learner_shaped_critic(), setup["p_ref"], t_goal=3.0)
    t_term = one_iteration_time(dterm, U0, x0, repeats)
    cproblem, fddp = cp.build_crocoddyl_problem(nthreads=1)
    info = {}

    def run_fddp():
        info["ok"] = cp.solve_fddp(cproblem, fddp)
        info["iters"] = max(1, fddp.iter)

    t_fddp = median_time(run_fddp, max(3, repeats // 5)) / info["iters"]
    rows = [["reach MPC problem, no value terms (SLQ)", 1e3 * t_reach, 1.0],
            ["DMPC terminal-only (Eq. 13) (SLQ)", 1e3 * t_term, t_term / t_reach],
            ["DMPC running + terminal (Eq. 13 + 14) (SLQ)", 1e3 * t_dmpc, t_dmpc / t_reach],
            ["crocoddyl FDDP, reach problem (per iteration)", 1e3 * t_fddp, t_fddp / t_reach]]
    print(machine_line())
    print(table(["one iteration, 100 nodes, 1 thread", "ms", "ratio to no value terms"], rows))
    print(f"dmpc_over_no_value={t_dmpc / t_reach:.3f}")
    print(f"dmpc_over_fddp={t_dmpc / t_fddp:.3f}")
    print(f"dmpc_mpc_rate_hz={1.0 / t_dmpc:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
