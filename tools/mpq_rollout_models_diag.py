"""Diagnostic: what per-rollout model draws do to the MPPI weights and the free energy (no Q, H=8,
Table 3 settings), from 400 random states and random mean plans; seeded. Compares per-rollout draws
(bias_mode "rollout") with one model at the distribution mean, same noise (docs/results/mpq.md).

    PYTHONPATH=. python tools/mpq_rollout_models_diag.py
"""
import numpy as np
from dmpc_core import _core
from dmpc_core.agents.mpq import MpqAgent, MpqSettings
from dmpc_core.tasks.pendulum import sample_biased_parameter_sets

def main():
    s = MpqSettings(use_q=False, learn=False, bias_mode="rollout")
    a = MpqAgent(s, seed=0)
    rng = np.random.default_rng(123)
    K = s.mppi.num_samples
    rows = []
    true_agent = MpqAgent(MpqSettings(use_q=False, learn=False, true_model=True), seed=0)
    for trial in range(400):
        x = np.array([rng.uniform(-np.pi, np.pi), rng.uniform(-3, 3)])
        plan = rng.uniform(-2, 2, size=(8, 1))
        sol = a._solver(1000 + trial, 8, K, 1)
        P = sample_biased_parameter_sets(s.task, rng, K)
        sol.set_rollout_models([_core.PendulumDynamics(m, l, s.task.damping) for m, l in P])
        sol.set_plan(plan); sol.set_state(x, 0.0); r = sol.optimize()
        fixed = a._solver(1000 + trial, 8, K, 1)  # same noise, one model at the distribution mean
        fixed.set_plan(plan); fixed.set_state(x, 0.0); rf = fixed.optimize()
        true = true_agent._solver(1000 + trial, 8, K, 1)
        true.set_plan(plan); true.set_state(x, 0.0); rt = true.optimize()
        ml2 = P[:, 0] * P[:, 1] ** 2
        c, cf = np.array(r.costs), np.array(rf.costs)
        w = np.array(r.weights)
        rows.append(dict(model_var_share=np.var(c - cf) / max(np.var(c), 1e-12),
                         w_ml2=float(w @ ml2), mean_ml2=float(ml2.mean()),
                         ess=r.effective_sample_size, ess_fixed=rf.effective_sample_size,
                         F=r.free_energy, F_fixed=rf.free_energy, F_true=rt.free_energy,
                         corr_w=np.corrcoef(c, cf)[0, 1]))
    g = lambda k: np.array([d[k] for d in rows])
    print(f"states: {len(rows)}, K={K}, H=8, lambda={s.mppi.lambda_}")
    print(f"corr(costs per-rollout, costs one mean model; same noise): median {np.median(g('corr_w')):.3f}")
    print(f"share of cost variance from the model draw, Var(C - C_fixed)/Var(C): median {np.median(g('model_var_share')):.3f}")
    print(f"m l^2: weighted by MPPI weights {g('w_ml2').mean():.3f} vs unweighted mean {g('mean_ml2').mean():.3f}")
    print(f"ESS per-rollout {g('ess').mean():.2f} vs one mean model {g('ess_fixed').mean():.2f}")
    print(f"free energy minus true-model F: per-rollout {np.mean(g('F') - g('F_true')):.2f}, one mean model {np.mean(g('F_fixed') - g('F_true')):.2f} (mean over states)")

main()
