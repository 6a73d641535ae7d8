"""Compare learned Ballbot walls critics with the hand-made oracle value over x-y.

    python tools/ballbot_value_diag.py --run NAME=runs/dv6/base_s0 [--run ...] \
        [--oracle-cache runs/dv6/oracle_t4_s1.pt] [--tau-offset 4 --fit-seed 1 --steps 3000] \
        [--png docs/results/ballbot_value_r5.png] [--json out.json]

Each ``--run`` is a training run directory (its ``config.yaml`` and ``critic.onnx``, the
critic the actor used last, or ``--critic FILE`` per run as NAME=DIR:FILE). The oracle row is
the hand-made geodesic value of ``tools/ballbot_oracle_critic.py`` fitted into a critic of the
first run's architecture (``--oracle-cache`` saves / reuses the fit). For every critic it prints,
per tau, how well -dV/dp and the DMPC greedy input's ball acceleration a* point along the way
round the wall (``dmpc_core.experiments.ballbot_value_diag.agreement``), the greedy
acceleration at the 8 evaluation starts, and plots V with both arrow fields.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from dmpc_core.critics.bundle import load_bundle  # noqa: E402
from dmpc_core.experiments.ballbot_value_diag import (agreement, input_matrix, native_value_fn,  # noqa: E402
                                                      plot_fields, value_field)
from dmpc_core.experiments.ballbot_walls import load_config  # noqa: E402
from dmpc_core.tasks import ballbot  # noqa: E402
from dmpc_core.tasks.ballbot_walls import WallsTask  # noqa: E402

BELOW = [-1.0, 1.0, -1.1, -0.15]  # the region of the evaluation starts, under the wall


def oracle_critic(cfg, args):
    import torch
    from ballbot_oracle_critic import fit_oracle

    from dmpc_core.agents.deep_value_mpc import DeepValueMpc

    agent = DeepValueMpc(cfg)
    cache = Path(args.oracle_cache) if args.oracle_cache else None
    if cache and cache.exists():
        state = torch.load(cache)
        agent.learner.trainer.model.load_state_dict(state["model"])
        agent.learner.trainer.target.load_state_dict(state["model"])
        loss = float(state["loss"])
    else:
        loss = fit_oracle(agent, args.lead, args.steps, seed=args.fit_seed, geodesic=True, margin=args.margin,
                          tau_offset=args.tau_offset)
        if cache:
            cache.parent.mkdir(parents=True, exist_ok=True)
            torch.save({"model": agent.learner.trainer.model.state_dict(), "loss": loss}, cache)
    print(f"oracle fit mse {loss:.4f} (tau_offset {args.tau_offset}, fit seed {args.fit_seed})")
    return load_bundle(agent.learner.export()).to_native()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", action="append", default=[], metavar="NAME=DIR[:CRITIC]")
    ap.add_argument("--no-oracle", action="store_true")
    ap.add_argument("--oracle-cache", default=None)
    ap.add_argument("--tau-offset", type=float, default=4.0)
    ap.add_argument("--fit-seed", type=int, default=1)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--lead", type=float, default=0.3)
    ap.add_argument("--margin", type=float, default=0.05)
    ap.add_argument("--taus", type=float, nargs="+", default=[2.5, 1.5, 0.5])
    ap.add_argument("--grid", type=int, default=41)
    ap.add_argument("--eval-scales", type=float, nargs="*", default=[],
                    help="also run the actor (the first run's config) from the 8 evaluation starts with each --run "
                         "critic's output multiplied by these factors (direction vs magnitude)")
    ap.add_argument("--png", default=None)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    if not args.run:
        ap.error("give at least one --run NAME=DIR")
    runs = []
    for spec in args.run:
        name, _, rest = spec.partition("=")
        d, _, crit = rest.partition(":")
        runs.append((name, Path(d), Path(crit) if crit else Path(d) / "critic.onnx"))
    cfg = load_config(str(runs[0][1] / "config.yaml"))
    task = WallsTask(cfg.task)
    goal = np.asarray(cfg.task.target, float)
    model_ = __import__("dmpc_core._core", fromlist=["BallbotDynamics"]).BallbotDynamics()
    a = cfg.task.arena_half_size - 0.1
    xs = ys = np.linspace(-a, a, args.grid)
    critics = [(name, load_bundle(crit.read_bytes()).to_native()) for name, _, crit in runs]
    if not args.no_oracle:
        critics.append((f"oracle (tau+{args.tau_offset:g}) geo", oracle_critic(cfg, args)))
    fields, report = {}, {}
    starts = np.asarray(cfg.task.eval_starts, float)
    for name, critic in critics:
        fn = native_value_fn(critic, goal)
        f = value_field(fn, model_, cfg.actor.r, xs, ys, args.taus)
        fields[name] = f
        rep = {"all": agreement(f, task, goal, margin=args.margin),
               "below_wall": agreement(f, task, goal, region=BELOW, margin=args.margin)}
        X = np.zeros((len(starts), ballbot.NX))
        X[:, :2] = starts
        V, Vx = fn(np.full(len(starts), 3.0), X)
        G = input_matrix(model_, X[0])
        acc = (-(Vx @ G) / cfg.actor.r) @ G[[5, 6], :].T
        rep["starts_tau3"] = {"V": V.tolist(), "dVdp": Vx[:, :2].tolist(), "dVdv": Vx[:, 5:7].tolist(),
                              "acc": acc.tolist()}
        report[name] = rep
        print(f"\n== {name}")
        for reg in ("all", "below_wall"):
            r = rep[reg]
            print(f"  {reg}: n={r['n'][0]}")
            for k, tau in enumerate(r["tau"]):
                print(f"    tau {tau:.1f}: cos(-dV/dp, geo) {r['cos_p'][k]:+.2f} (>0.9: {r['frac_p'][k]:.2f}), "
                      f"cos(a*, geo) {r['cos_a'][k]:+.2f} (>0.9: {r['frac_a'][k]:.2f}), "
                      f"cos(-dV/dp, straight) {r['cos_p_euclid'][k]:+.2f}, cos(dV/dv, dV/dp) {r['cos_vp'][k]:+.2f}, "
                      f"corr(V, geo) {r['corr_geo'][k]:+.2f}, "
                      f"corr(V, euclid) {r['corr_euclid'][k]:+.2f}, |a*| {r['acc_norm'][k]:.2f}")
        print("  eval starts, tau 3: x | V | -dV/dp | -dV/dv | a*")
        for i, st in enumerate(starts):
            print(f"    {st[0]:+.1f} | {V[i]:6.2f} | ({-Vx[i, 0]:+.2f}, {-Vx[i, 1]:+.2f}) | "
                  f"({-Vx[i, 5]:+.2f}, {-Vx[i, 6]:+.2f}) | ({acc[i, 0]:+.2f}, {acc[i, 1]:+.2f})")
    for name, _, crit in runs:
        for sc in args.eval_scales:
            from dmpc_core.agents.deep_value_mpc import Actor, evaluate
            from dmpc_core.experiments.ballbot_value_diag import scaled_native_critic

            actor = Actor(task, cfg.actor)
            actor.critic = scaled_native_critic(crit.read_bytes(), sc)
            res = evaluate(task, actor)
            print(f"actor with {name} x {sc:g}: successes {int(round(8 * res['eval/success_rate']))}/8, "
                  f"walls {res['eval/wall_hits']:.0f}, falls {res['eval/falls']:.0f}, "
                  f"mean final distance {res['eval/final_distance']:.2f} m, mean cost {res['eval/mean_cost']:.2f}")
            report[name][f"eval_x{sc:g}"] = {k: v for k, v in res.items() if k != "episodes"}
    if args.png:
        plot_fields(fields, task, goal, args.png)
        print(f"wrote {args.png}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
