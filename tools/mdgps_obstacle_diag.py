"""Why the MDGPS obstacle course stalls: actuator saturation, the fitted control authority and where
the particle ends, per iteration of one short run.

    python tools/mdgps_obstacle_diag.py [--variant off_global] [--seed 0] [--iterations 4]
        [--dynamics-control applied|commanded] [--control-weight 0] [--sstep-iterations 500]
        [--out docs/log/mdgps_diag_<tag>.json]

Per iteration (after the C-step and S-step) it prints, averaged over the conditions:
- ``sat_mean``: fraction of the new local controllers' noise-free mean commands (rolled out on the
  plant) with a component outside the actuator range [-1, 1]; ``|u|max`` their largest entry;
- ``sat_samp``: the same for the commands sampled in this iteration;
- ``std``: mean noise std sqrt(diag Sigma_t) of the new local controllers;
- ``B_fit/B_fd``: the fitted F_t's control columns against MuJoCo's finite-difference linearisation
  (``ObstacleCourse.linearize_fd``, chained over the sub-steps) at the sampled mean states and the
  applied mean control (kept 1 % inside the range so that the central differences do not straddle
  the clip): the
  median over t of the velocity rows' diagonal ratios (1 = the fit knows the actuator's authority);
- ``|pi-p|``: RMS over the sampled states of the applied (clipped) command of the global policy's
  mean minus that of the new local controller's mean (how well the S-step imitates the plant-level
  behaviour; 0 for local_only, which has no global policy in its loop);
- where the noise-free local controller and the global policy end: final distance, speed, and
  whether the particle touches a wall or the disc at the last step.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import mujoco  # noqa: E402

from dmpc_core.agents.mdgps import MdgpsAgent, MdgpsSettings, lg_sampler  # noqa: E402
from dmpc_core.experiments.mdgps_obstacle import VARIANTS  # noqa: E402
from dmpc_core.policies.gaussian_mlp import GaussianMlpSettings  # noqa: E402
from dmpc_core.tasks.obstacle_course import ObstacleCourse, ObstacleCourseSettings  # noqa: E402


def in_contact(task: ObstacleCourse, x: np.ndarray) -> bool:
    task.set_state(x)
    mujoco.mj_forward(task.model, task.data)
    return task.data.ncon > 0


def saturated(U: np.ndarray, task: ObstacleCourse) -> np.ndarray:
    return np.any((U < task.u_min - 1e-9) | (U > task.u_max + 1e-9), axis=-1)


def authority_ratio(task: ObstacleCourse, dyn, X: list, U: list) -> float:
    """median over t of diag(B_fit[2:, :]) / diag(B_fd[2:, :]) at the sample-mean state and applied control"""
    xm = np.mean(X, axis=0)
    um = np.clip(np.mean([task.applied_control(u) for u in U], axis=0), 0.99 * task.u_min, 0.99 * task.u_max)
    F = np.array(dyn.F)
    r = []
    for t in range(0, task.T - 1, 5):
        _, B = task.linearize_fd(xm[t], um[t])
        Bf = F[t][:, task.nx:]
        r.append(np.diag(Bf[2:]) / np.diag(B[2:]))
    return float(np.median(np.array(r)))


def where(task: ObstacleCourse, X: np.ndarray) -> dict:
    return {"final_distance": float(np.linalg.norm(X[-1, :2] - task.target)),
            "final_pos": X[-1, :2].round(3).tolist(), "final_speed": float(np.linalg.norm(X[-1, 2:])),
            "contact_at_end": bool(in_contact(task, X[-1])),
            "contact_steps": int(sum(in_contact(task, x) for x in X[::5]) * 5)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--variant", choices=sorted(VARIANTS), default="off_global")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--iterations", type=int, default=4)
    p.add_argument("--dynamics-control", choices=("applied", "commanded"), default="commanded")
    p.add_argument("--control-weight", type=float, default=0.0)
    p.add_argument("--kl-step", type=float, default=2.0)
    p.add_argument("--sstep-iterations", type=int, default=500)
    p.add_argument("--out", default=None, help="JSON with the per-iteration, per-condition numbers")
    a = p.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    task = ObstacleCourse(ObstacleCourseSettings(control_weight=a.control_weight))
    sampling, rule, ref = VARIANTS[a.variant]
    s = MdgpsSettings(sampling=sampling, step_rule=rule, reference=ref, kl_step=a.kl_step,
                      dynamics_control=a.dynamics_control, policy=GaussianMlpSettings(iterations=a.sstep_iterations))
    s.policy_prior.max_clusters, s.policy_prior.min_samples_per_cluster, s.policy_prior.max_samples = 5, 40, 40
    agent = MdgpsAgent(task, s, seed=a.seed)
    stash = {}
    sample = agent.sample

    def recording_sample(i, use_global):
        stash[i] = sample(i, use_global)
        return stash[i]

    agent.sample = recording_sample
    rows = []
    print(f"{a.variant} seed {a.seed} dynamics_control={a.dynamics_control} control_weight={a.control_weight} "
          f"kl_step={a.kl_step}")
    for it in range(a.iterations):
        tic = time.perf_counter()
        st = agent.run_iteration()
        per = []
        for i, c in enumerate(agent.conds):
            Xs, Us = stash[i]
            Xa = np.concatenate(Xs)
            K, k = np.array(c.traj.K), np.array(c.traj.k)
            up = np.concatenate([np.einsum("tux,tx->tu", K, x) + k for x in Xs])
            upi = agent.policy.mean(agent.obs_fn(Xa))
            dpi = float(np.sqrt(np.mean(np.sum((task.applied_control(upi) - task.applied_control(up)) ** 2, -1))))
            Xl, Ul = task.rollout(i, lg_sampler(c.traj, noise=False), None, noise=False)
            Xg, _ = task.rollout(i, agent.global_sampler(noise=False), None, noise=False)
            per.append({"pi_minus_p": 0.0 if s.reference == "local" else dpi,
                        "sat_mean": float(saturated(Ul, task).mean()), "umax": float(np.abs(Ul).max()),
                        "sat_samp": float(np.mean([saturated(u, task).mean() for u in Us])),
                        "std": float(np.mean(np.sqrt(np.diagonal(np.array(c.traj.cov), axis1=1, axis2=2)))),
                        "B_ratio": authority_ratio(task, c.prev["dyn"], Xs, Us),
                        "kl_over_eps": st.get(f"cstep/c{i}_kl_over_eps", float("nan")),
                        "step_mult": c.step_mult, "local": where(task, Xl), "global": where(task, Xg)})
        m = lambda k: np.mean([r[k] for r in per])  # noqa: E731
        print(f"it {it + 1}: sat_mean {m('sat_mean'):.2f} |u|max {max(r['umax'] for r in per):6.1f} "
              f"sat_samp {m('sat_samp'):.2f} std {m('std'):.2f} B_fit/B_fd {m('B_ratio'):.2f} "
              f"|pi-p| {m('pi_minus_p'):.2f}  "
              f"local final {np.mean([r['local']['final_distance'] for r in per]):.3f} "
              f"global final {np.mean([r['global']['final_distance'] for r in per]):.3f} m "
              f"({time.perf_counter() - tic:.0f} s)", flush=True)
        for i, r in enumerate(per):
            print(f"    c{i}: B {r['B_ratio']:.2f} sat {r['sat_mean']:.2f} kl/eps {r['kl_over_eps']:.2f} "
                  f"mult {r['step_mult']:.3f} | local end {r['local']['final_pos']} v {r['local']['final_speed']:.2f} "
                  f"contact end {r['local']['contact_at_end']} steps {r['local']['contact_steps']} | global end "
                  f"{r['global']['final_pos']} v {r['global']['final_speed']:.2f} "
                  f"contact {r['global']['contact_at_end']}")
        rows.append(per)
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(json.dumps({"args": vars(a), "iterations": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
