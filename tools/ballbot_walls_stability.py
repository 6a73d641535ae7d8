"""Does Algorithm 1 keep a value the actor can use? The stability test on Ballbot walls.

    python tools/ballbot_walls_stability.py --init runs/walls_kv/h64_L0.3_T5.0_f0.pt --iterations 20 \
        --eval-every 5 --eval-at 0 1 2 3 --out runs/walls_stab/base [--set KEY=VALUE ...] [--config config/ballbot_walls.yaml]

Starts Algorithm 1 (``DeepValueMpc``, the experiment's settings with ``--set`` overrides) from a
saved critic state (``training.init_critic``, e.g. the wall-aware value fitted by
tools/ballbot_walls_known_value.py --save-critic), runs ``--iterations`` iterations and evaluates
the 8 fixed starts at iteration 0 if ``--eval-at`` lists it, every ``--eval-every`` iterations and at ``--eval-at``. It records, per
iteration, the fixed point that the critic's regression moves towards:

* the exported critic's value at rest along the line from the evaluation start (0.5, -0.8) to
  the target (through the wall) and along the way round it (start -> (0.8, 0) -> target), at
  tau = T;
* the regression targets of that iteration's data (full returns) against the value the critic
  had there before the update, at the start states (tau = T) and the slope of the targets on
  the value over all states (1 is a fixed point, < 1 a value that flattens), for the task cost
  (Eq. 11) and with the actor's own nominal cost added (``training.critic_cost: task+actor``).

Writes ``stability.json`` and ``stability.png`` (success per evaluation; the value along the two
lines at iterations 0, 1, 2, 5, ... and the last) to ``--out``.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dmpc_core.agents.deep_value_mpc import DeepValueMpc, transitions  # noqa: E402
from dmpc_core.experiments.ballbot_walls import load_config  # noqa: E402
from dmpc_core.settings import parse_overrides  # noqa: E402
from dmpc_core.tasks import ballbot  # noqa: E402

START = np.array([0.5, -0.8])
CORNER = np.array([0.8, 0.0])  # 0.25 m beyond the wall's end: outside the value's wall term


def line_states(a, b, n: int = 25) -> np.ndarray:
    lam = np.linspace(0.0, 1.0, n)[:, None]
    X = np.zeros((n, ballbot.NX))
    X[:, :2] = (1 - lam) * np.asarray(a, float) + lam * np.asarray(b, float)
    return X


def critic_values(agent: DeepValueMpc, X: np.ndarray, tau: float) -> np.ndarray:
    """The exported (target) network's value at states X, time-to-go tau, the task's goal."""
    import torch

    g = np.tile(np.asarray(agent.task.settings.target, float), (len(X), 1))
    with torch.no_grad():
        return agent.learner.trainer.target(torch.from_numpy(X), torch.from_numpy(g),
                                            torch.full((len(X),), float(tau), dtype=torch.float64)).squeeze(-1).numpy()


def critic_values_tau(agent: DeepValueMpc, X: np.ndarray, tau: np.ndarray) -> np.ndarray:
    """The exported network's value at states X (n, nx) with time-to-go tau (n,)."""
    import torch

    g = np.tile(np.asarray(agent.task.settings.target, float), (len(X), 1))
    with torch.no_grad():
        return agent.learner.trainer.target(torch.from_numpy(X), torch.from_numpy(g),
                                            torch.from_numpy(np.asarray(tau, float))).squeeze(-1).numpy()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default=None)
    ap.add_argument("--init", required=True, help="critic state to start from (training.init_critic)")
    ap.add_argument("--iterations", type=int, default=20)
    ap.add_argument("--eval-every", type=int, default=4)
    ap.add_argument("--eval-at", type=int, nargs="*", default=[], help="further iterations to evaluate at")
    ap.add_argument("--out", required=True)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--plot-only", action="store_true", help="only redraw stability.png from --out's stability.json")
    args = ap.parse_args(argv)
    if args.plot_only:
        rec = json.loads((Path(args.out) / "stability.json").read_text())
        cfg = load_config(args.config, parse_overrides(rec["settings"]["sets"]))
        plot(rec, Path(args.out), cfg.task.episode_time, np.asarray(cfg.task.target, float))
        return 0
    over = parse_overrides(args.set)
    over["training.init_critic"] = args.init
    cfg = load_config(args.config, over)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    agent = DeepValueMpc(cfg)
    T = cfg.task.episode_time
    goal = np.asarray(cfg.task.target, float)
    direct = line_states(START, goal)
    around = np.concatenate([line_states(START, CORNER, 13), line_states(CORNER, goal, 13)[1:]])
    rec = {"settings": {"init": args.init, "sets": args.set, "iterations": args.iterations},
           "evals": [], "iterations": [], "lines": {}, "corner": CORNER.tolist()}

    def snapshot(it):
        rec["lines"][it] = {"direct": critic_values(agent, direct, T).tolist(),
                            "around": critic_values(agent, around, T).tolist()}

    def do_eval(it):
        r = agent.evaluate()
        e = {"iteration": it, "successes": int(round(8 * r["eval/success_rate"])), "walls": r["eval/wall_hits"],
             "falls": r["eval/falls"], "final_distance": r["eval/final_distance"], "cost": r["eval/mean_cost"]}
        rec["evals"].append(e)
        print(f"eval it {it}: {e['successes']}/8 walls {e['walls']:.0f} falls {e['falls']:.0f} "
              f"final {e['final_distance']:.2f} m cost {e['cost']:.2f}", flush=True)

    snapshot(0)
    if 0 in args.eval_at:
        do_eval(0)
    t0 = time.time()
    for it in range(1, args.iterations + 1):
        stats = agent.collect()
        # this iteration's regression targets (full returns) against the value the critic has
        # there now, for the task cost (the paper's Eq. 11) and with the actor's own nominal
        # cost added (training.critic_cost: task+actor, Prop. 1)
        fp = {}
        for kind in ("task", "task+actor"):
            rows = [transitions(e, agent.task, cfg.training.n_step, kind) for e in agent.last_episodes]
            S = np.concatenate([r["state"] for r in rows])
            tau = np.concatenate([r["time_to_go"] for r in rows]).reshape(-1)
            y = np.concatenate([r["cost"] for r in rows]).reshape(-1)
            v = critic_values_tau(agent, S, tau)
            st = np.abs(tau - T) < 1e-9
            fp[kind] = {"start_target_mean": float(y[st].mean()), "start_prior_mean": float(v[st].mean()),
                        "all_target_mean": float(y.mean()), "all_prior_mean": float(v.mean()),
                        "slope_target_on_prior": float(np.polyfit(v, y, 1)[0]), "corr": float(np.corrcoef(v, y)[0, 1])}
        prior, target = fp["task"]["start_prior_mean"], fp["task"]["start_target_mean"]
        for _ in range(cfg.training.updates_per_iteration):
            stats.update(agent.learner.update())
        agent.bundle = agent.learner.export()
        agent.actor.set_critic_bundle(agent.bundle)
        agent.iteration += 1
        row = {"iteration": it, "train_success": stats["train/success_rate"], "train_walls": stats["train/wall_hits"],
               "train_falls": stats["train/falls"], "start_prior_mean": prior, "start_target_mean": target,
               "fixed_point": fp,
               "critic_loss": stats.get("critic/loss_mean"), "wall_s": time.time() - t0}
        rec["iterations"].append(row)
        print(f"it {it}: train success {row['train_success']:.2f} walls {row['train_walls']:.0f} "
              f"falls {row['train_falls']:.0f}; start states: value before {prior:.2f}, return target {target:.2f}, "
              f"with the actor's cost {fp['task+actor']['start_target_mean']:.2f}; all states: slope of the "
              f"targets on the value {fp['task']['slope_target_on_prior']:.2f} (task), "
              f"{fp['task+actor']['slope_target_on_prior']:.2f} (task+actor) ({time.time() - t0:.0f} s)", flush=True)
        if it in (1, 2, 5, 10, 15) or it == args.iterations:
            snapshot(it)
        if it % args.eval_every == 0 or it in args.eval_at or it == args.iterations:
            do_eval(it)
        (out / "stability.json").write_text(json.dumps(rec, indent=1))
    plot(rec, out, T, goal)
    return 0


def plot(rec: dict, out: Path, T: float, goal: np.ndarray) -> None:
    """stability.png: successes per evaluation and the value along the two lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axs = plt.subplots(1, 3, figsize=(15, 4))
    ev = rec["evals"]
    axs[0].plot([e["iteration"] for e in ev], [e["successes"] for e in ev], "-o")
    axs[0].set(xlabel="iteration", ylabel="successes of 8", ylim=(-0.3, 8.3), title="evaluation (8 starts)")
    direct = line_states(START, goal)
    corner = np.asarray(rec.get("corner", [0.6, 0.0]), float)  # runs before the corner was recorded: (0.6, 0)
    around = np.concatenate([line_states(START, corner, 13), line_states(corner, goal, 13)[1:]])
    sd = np.linalg.norm(direct[:, :2] - direct[0, :2], axis=1)
    sa = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(around[:, :2], axis=0), axis=1))])
    for it, v in rec["lines"].items():
        axs[1].plot(sd, v["direct"], label=f"it {it}")
        axs[2].plot(sa, v["around"], label=f"it {it}")
    axs[1].set(xlabel="distance along start (0.5, -0.8) -> target [m]", ylabel=f"V at rest, tau = {T:g} s",
               title="straight line (through the wall)")
    axs[2].set(xlabel=f"distance along start -> ({corner[0]:g}, {corner[1]:g}) -> target [m]", title="the way round")
    axs[2].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "stability.png", dpi=110)


if __name__ == "__main__":
    raise SystemExit(main())
