"""Per control step cost split in MPQ bias_mode rollout / ensemble: drawing + building the
PendulumDynamics models (Python) vs optimize() (C++), 3000 steps each (docs/results/mpq.md).

    PYTHONPATH=. OMP_NUM_THREADS=1 python tools/mpq_rollout_models_bench.py
"""
import time
import numpy as np
from dmpc_core.agents.mpq import MpqAgent, MpqSettings
for mode in ("run", "rollout", "ensemble"):
    a = MpqAgent(MpqSettings(use_q=False, learn=False, bias_mode=mode), seed=0)
    sol = a._solver(1, 8, 24, 1)
    sol.set_state(np.array([2.0, 0.0]), 0.0)
    n = 3000
    t0 = time.perf_counter()
    if mode != "run":
        for _ in range(n):
            a._draw_rollout_models(sol)
    t1 = time.perf_counter()
    for _ in range(n):
        sol.optimize()
    t2 = time.perf_counter()
    print(f"{mode:9s} draw+set_rollout_models {1e6*(t1-t0)/n:7.1f} us/step  optimize {1e6*(t2-t1)/n:7.1f} us/call "
          f"-> C++ rollouts/s {24*n/(t2-t1):.3g}")
