"""POLO terminal value inside the MPPI rollouts: native C++ ensemble vs a Python CostModel.

Same MPPI problem (point-mass maze, H = 32, K = 120, 6-member randomized-prior ensemble of
2 x 16 tanh nets with the soft-min aggregate) with the terminal value evaluated
  (a) natively: ``_core.MlpEnsembleCost`` (GIL released, one thread or two),
  (b) by a Python ``_core.CostModel`` subclass calling the torch ensemble per sample (GIL-bound),
  (c) no terminal value (anchor: rollouts and the wall cost only).
Prints a table of ms per optimize() and ratios to the anchor, ends with
``python_over_native=<ratio>``. ``--quick`` runs in a few seconds.
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import machine_line, median_time, table  # noqa: E402

from dmpc_core import _core  # noqa: E402
from dmpc_core.agents.polo import MppiAgentSettings, ensemble_to_native  # noqa: E402
from dmpc_core.critics.networks import ValueEnsemble, ValueEnsembleSettings, ValueMLPSettings  # noqa: E402
from dmpc_core.tasks.point_mass_worlds import PointMassWorld, PointMassWorldSettings  # noqa: E402


class TorchTerminal(_core.CostModel):
    """Terminal value evaluated by torch, one state per call (what a Python cost can do)."""

    def __init__(self, ens):
        super().__init__(4, 0)
        self.ens = ens

    def calc(self, data, t, x, u):
        with torch.no_grad():
            data.value = float(self.ens(torch.from_numpy(np.asarray(x)[None]), None, torch.zeros(1, 1)))

    def calc_diff(self, data, t, x, u):
        raise NotImplementedError("value only")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    ens = ValueEnsemble(ValueEnsembleSettings(value=ValueMLPSettings(nx=4, hidden=(16, 16)), num_members=6, kappa=10.0))
    world = PointMassWorld(PointMassWorldSettings(world="maze"))
    dyn, wall = world.planner_model()
    reps = 5 if args.quick else 20
    x0 = np.array([-1.2, -1.2, 0.1, 0.0])
    rows, times = [], {}
    for name, term, threads in [("no terminal (anchor)", None, 1), ("native MlpEnsembleCost", ensemble_to_native(ens), 1),
                                ("native MlpEnsembleCost", ensemble_to_native(ens), 2),
                                ("Python CostModel + torch", TorchTerminal(ens), 1)]:
        cfg = MppiAgentSettings(horizon=32, num_samples=120, num_threads=threads).to_core(0.05, 1.0, 2, seed=0)
        solver = _core.MppiSolver(dyn, wall, term, cfg)
        solver.set_state(x0, 0.0)
        t = median_time(solver.optimize, reps if "Python" not in name else max(3, reps // 4))
        times[(name, threads)] = t
        rows.append([name, threads, 1e3 * t])
    anchor = times[("no terminal (anchor)", 1)]
    rows = [r + [r[2] / (1e3 * anchor)] for r in rows]
    print(machine_line())
    print(table(["terminal value", "threads", "ms per optimize (K=120, H=32)", "ratio to anchor"], rows))
    ratio = times[("Python CostModel + torch", 1)] / times[("native MlpEnsembleCost", 1)]
    print(f"python_over_native={ratio:.1f}")


if __name__ == "__main__":
    main()
