"""Feasibility of the Panda's Deep Value MPC actor with a known-good value (franka-obstacle).

    python tools/franka_known_value.py [--config config/franka_obstacle.yaml] [--lead 0.2]
        [--offset 2.0] [--penalty 5.0] [--modes running+terminal terminal] [--r R ...]
        [--pairs I ...] [--iterations N --eval-every K] [--set KEY=VALUE ...]
        [--fit-cache FILE.pt] [--save-critic FILE.onnx] [--save-paths FILE.npz] [--out FILE.json]

Learning can only be as good as the actor is with a good value. This script fits the
experiment's own critic (the learner's network class and its input normalisation, exported and
evaluated natively exactly as in training) to a hand-made value

    V(tau, q, v; g) = (tau + offset) * sqrt(D(p_l, g)^2 + eps^2) + penalty * C(q)

* p_l = p_TCP(q + lead v), the TCP of a lead configuration (forward kinematics);
* D: the obstacle-aware distance, the shortest path from p_l to g that stays outside the board
  inflated by ``--inflate`` (over its top or round either end; the straight segment when it
  does not cross the inflated board), :func:`board_geodesic`;
* C(q) = min(1, sum_i max(0, 1 - d_i(q) / m)^2), d_i the clearance of arm sphere i to the
  board and m = ``--contact-margin``: 1 on contact, as high as the contact penalty there;
* offset = ``training.terminal_weight`` makes V(0, x) the Eq. (4) termination cost away from
  the board,

and runs the unmodified Algorithm 1 actor (:class:`dmpc_core.agents.franka_dmpc.FrankaActor`)
from the 8 evaluation starts, in each actor mode. Printed per mode and pair: success, contact,
final distance, first time within the success tolerance; and, at the starts, the value
gradient |V_q|, |V_v|, its cosine with the known value's, and the greedy input about gravity
u* - g = -R^-1 M^-1 V_v against the torque limits and as joint / TCP accelerations.
``--iterations N`` then runs Algorithm 1 from the fitted value (the stability test) and logs,
per iteration, the drift of the exported critic from the known value on the replayed states.

What it showed (docs/log/2026-12-07-franka-obstacle.md): with the 3 x 12 critic fitted to this
value (held-out RMS error 16 % of the value's RMS) the actor reaches none of the pairs tried,
with the torque metric at any r and with the acceleration metric (``actor.control_metric``).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dmpc_core.agents.franka_dmpc import FrankaActor, FrankaDeepValueMpc, run_episode  # noqa: E402
from dmpc_core.experiments.franka_obstacle import load_config  # noqa: E402
from dmpc_core.models.panda import Q_READY  # noqa: E402
from dmpc_core.settings import parse_overrides  # noqa: E402
from dmpc_core.tasks.franka_obstacle import box_distance  # noqa: E402


def _seg_min(P, A0, A1, B0, B1, G, n: int = 21):
    """min over a on segment A0-A1 and b on B0-B1 of |P - a| + |a - b| + |b - G| (grid search),
    per row of P, G (k, 3)."""
    s = np.linspace(0.0, 1.0, n)
    A = A0[None] + s[:, None] * (A1 - A0)[None]  # (n, 3)
    B = B0[None] + s[:, None] * (B1 - B0)[None]
    dPA = np.linalg.norm(P[:, None, :] - A[None], axis=-1)  # (k, n)
    dBG = np.linalg.norm(G[:, None, :] - B[None], axis=-1)  # (k, n)
    dAB = np.linalg.norm(A[:, None, :] - B[None], axis=-1)  # (n, n)
    tot = dPA[:, :, None] + dAB[None] + dBG[:, None, :]
    return tot.reshape(len(P), -1).min(axis=1)


def board_geodesic(P, G, center, half, inflate: float) -> np.ndarray:
    """Obstacle-aware distance from points P (k, 3) to goals G (k, 3) round the board (a box on
    the floor) inflated by ``inflate``: the straight distance if the segment misses the inflated
    box, else the shortest of the paths over the top and round either end (each through one
    point on the box's near and far edges, grid-minimised)."""
    P, G = np.atleast_2d(P).astype(float), np.atleast_2d(G).astype(float)
    c, h = np.asarray(center, float), np.asarray(half, float) + inflate
    lo, hi = c - h, c + h
    lo[2] = min(lo[2], 0.0)
    # does the segment P-G cross the inflated box? (slab test)
    d = G - P
    with np.errstate(divide="ignore", invalid="ignore"):
        t0 = (lo - P) / d
        t1 = (hi - P) / d
    tmin = np.where(d == 0, np.where((P >= lo) & (P <= hi), -np.inf, np.inf), np.minimum(t0, t1)).max(axis=1)
    tmax = np.where(d == 0, np.where((P >= lo) & (P <= hi), np.inf, -np.inf), np.maximum(t0, t1)).min(axis=1)
    blocked = (tmin <= tmax) & (tmax >= 0) & (tmin <= 1)
    out = np.linalg.norm(G - P, axis=1)
    if not np.any(blocked):
        return out
    Pb, Gb = P[blocked], G[blocked]
    res = np.full(len(Pb), np.inf)
    # near side = P's side of the board's mid plane (points exactly on it: the -y side)
    for sp in (-1.0, 1.0):
        rows = np.flatnonzero(np.where(Pb[:, 1] > c[1], 1.0, -1.0) == sp)
        if rows.size == 0:
            continue
        yn, yf = (c[1] + sp * h[1]), (c[1] - sp * h[1])
        Pr, Gr = Pb[rows], Gb[rows]
        top = _seg_min(Pr, np.array([lo[0], yn, hi[2]]), np.array([hi[0], yn, hi[2]]),
                       np.array([lo[0], yf, hi[2]]), np.array([hi[0], yf, hi[2]]), Gr)
        ends = [_seg_min(Pr, np.array([x, yn, lo[2]]), np.array([x, yn, hi[2]]),
                         np.array([x, yf, lo[2]]), np.array([x, yf, hi[2]]), Gr) for x in (lo[0], hi[0])]
        res[rows] = np.minimum(top, np.minimum(*ends))
    out[blocked] = res
    return out


class KnownValue:
    """The hand-made value of the module doc, for arrays of (q, v, g, tau)."""

    def __init__(self, task, lead: float, offset: float, penalty: float, inflate: float,
                 contact_margin: float, eps: float = 0.03):
        self.task, self.lead, self.offset, self.penalty = task, lead, offset, penalty
        self.inflate, self.margin, self.eps = inflate, contact_margin, eps
        s = task.settings
        self.center, self.half = np.asarray(s.box_center, float), np.asarray(s.box_half, float)

    def parts(self, X, G, tau):
        sp = self.task.spheres
        lower, upper = self.task.lower, self.task.upper
        PL = np.array([sp.tcp_position(np.clip(x[:7] + self.lead * x[7:], lower, upper)) for x in X])
        D = board_geodesic(PL, G, self.center, self.half, self.inflate)
        C = np.empty(len(X))
        for i, x in enumerate(X):
            d, _ = box_distance(sp.centers(x[:7]), self.center, self.half)
            gap = np.maximum(0.0, 1.0 - (d - sp.radii) / self.margin)
            C[i] = min(1.0, float(gap @ gap))
        return D, C

    def __call__(self, X, G, tau):
        D, C = self.parts(X, G, tau)
        return (np.asarray(tau) + self.offset) * np.sqrt(D ** 2 + self.eps ** 2) + self.penalty * C


def sample_states(task, rng, samples: int, seeds: int = 400, joint_noise: float = 0.25, vel_std: float = 0.6):
    """Arm states round the task's workspace: IK configurations of random TCP points (start and
    target regions and the space over the board), perturbed in q, with random velocities; goals
    uniform in the target region; tau uniform in [0, T]."""
    s = task.settings
    regions = [s.start_region, s.target_region,
               [s.start_region[0], s.start_region[1], s.start_region[2], s.target_region[3], 0.3, 0.6]]
    qs = []
    while len(qs) < seeds:
        r = np.asarray(regions[len(qs) % 3], float)
        try:
            qs.append(task.ik(rng.uniform(r[0::2], r[1::2])))
        except ValueError:
            continue
    qs = np.asarray(qs)
    q = qs[rng.integers(0, len(qs), samples)] + rng.normal(0.0, joint_noise, (samples, 7))
    q = np.clip(q, task.lower, task.upper)
    v = rng.normal(0.0, vel_std, (samples, 7))
    X = np.hstack([q, v])
    tr = np.asarray(s.target_region, float)
    G = rng.uniform(tr[0::2], tr[1::2], (samples, 3))
    tau = rng.uniform(0.0, s.episode_time, samples)
    return X, G, tau


def fit_known_value(agent: FrankaDeepValueMpc, value: KnownValue, seed: int = 0, samples: int = 20000,
                    steps: int = 4000, extra=None):
    """Fit the agent's critic (model and target network) to ``value``; export it into the actor.
    ``extra``: optional (X, G, tau) added to the samples (e.g. the evaluation starts). Returns
    (last minibatch MSE, RMS error and target RMS on held-out samples)."""
    import torch

    torch.manual_seed(seed)
    torch.set_num_threads(agent.config.training.torch_threads)
    rng = np.random.default_rng(seed)
    X, G, tau = sample_states(agent.task, rng, samples)
    if extra is not None:
        X, G, tau = (np.concatenate([a, b]) for a, b in zip((X, G, tau), extra))
    Y = value(X, G, tau)
    n_hold = len(X) // 10
    Xt, Gt, Tt, Yt = (torch.from_numpy(np.ascontiguousarray(a)) for a in (X, G, tau, Y))
    net = agent.learner.trainer.model
    with torch.no_grad():  # the zero-initialised output layer of training would stall the fit
        torch.nn.init.normal_(net.layers[-1].weight, std=0.1)
    opt = torch.optim.Adam(net.parameters(), 1e-2)
    train_idx = torch.arange(n_hold, len(X))
    for it in range(steps):
        if it in (steps // 2, 5 * steps // 6):
            for group in opt.param_groups:
                group["lr"] *= 0.2
        i = train_idx[torch.randint(0, len(train_idx), (512,))]
        loss = ((net(Xt[i], Gt[i], Tt[i]).squeeze(-1) - Yt[i]) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        h = torch.arange(n_hold)
        err = (net(Xt[h], Gt[h], Tt[h]).squeeze(-1) - Yt[h]).numpy()
    agent.learner.trainer.target.load_state_dict(net.state_dict())
    agent.bundle = agent.learner.export()
    agent.actor.set_critic_bundle(agent.bundle)
    return float(loss.detach()), float(np.sqrt(np.mean(err ** 2))), float(np.sqrt(np.mean(Y[:n_hold] ** 2)))


def start_diagnostics(agent: FrankaDeepValueMpc, value: KnownValue):
    """At each evaluation start (tau = T): fitted and known value, |V_q|, |V_v| of the fitted
    critic, the cosine of its gradient with the known value's, and the greedy input of Eq. 14
    about the gravity torque, u* - g(q) = -R^-1 M^-1 V_v, against the torque limits, as joint
    accelerations M^-1 (u* - g) and as TCP acceleration J M^-1 (u* - g)."""
    import torch

    net = agent.learner.trainer.target
    T = agent.task.settings.episode_time
    pairs = agent.task.eval_pairs()
    X = np.array([x for x, _ in pairs])
    G = np.array([g for _, g in pairs])
    tau = np.full(len(X), T)
    d = net.value_and_derivatives(torch.from_numpy(X), torch.from_numpy(G), torch.from_numpy(tau))
    Vx = d["dvalue_dx"].detach().numpy()
    u_star = np.empty((len(X), 7))
    for i, x in enumerate(X):  # R may depend on the start (actor.control_metric)
        agent.actor.set_start(x)
        u_star[i] = agent.actor.greedy_input(Vx[i:i + 1], X[i:i + 1])[0]
    # the known value's gradient (central differences) and the greedy TCP acceleration J a*
    Vk_x = np.zeros_like(Vx)
    for j in range(14):
        dX = np.zeros_like(X)
        dX[:, j] = 1e-5
        Vk_x[:, j] = (value(X + dX, G, tau) - value(X - dX, G, tau)) / 2e-5
    sp = agent.task.spheres
    tcp_acc = []
    for i, x in enumerate(X):
        J = sp.pin.computeFrameJacobian(sp.model, sp.data, x[:7], sp.tcp, sp.pin.ReferenceFrame.LOCAL_WORLD_ALIGNED)[:3]
        a = np.linalg.solve(np.asarray(agent.task.model.mass_matrix(x[:7]), float), u_star[i])
        tcp_acc.append(J @ a)
    cos = lambda a, b: float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))  # noqa: E731
    lim = np.asarray(agent.task.model.effort_limit, float)
    grav = np.array([np.asarray(agent.task.model.gravity(x[:7]), float) for x in X])
    return [{"cos(V_x fit, V_x known)": round(cos(Vx[i], Vk_x[i]), 2), "cos(V_v fit, V_v known)": round(cos(Vx[i, 7:], Vk_x[i, 7:]), 2),
             "greedy TCP acceleration [m/s^2]": np.round(tcp_acc[i], 2).tolist(),
             "V_fit": round(float(d["value"][i]), 3), "V_known": round(float(value(X[i:i + 1], G[i:i + 1], tau[i:i + 1])[0]), 3),
             "|V_q|": round(float(np.linalg.norm(Vx[i, :7])), 3), "|V_v|": round(float(np.linalg.norm(Vx[i, 7:])), 3),
             "max |u*|/limit": round(float(np.max(np.abs(grav[i] + u_star[i]) / lim)), 2),
             "max |u* - g(q)|/limit": round(float(np.max(np.abs(u_star[i]) / lim)), 2),
             "max |M^-1 (u* - g)| [rad/s^2]": round(float(np.max(np.abs(np.linalg.solve(
                 np.asarray(agent.task.model.mass_matrix(X[i, :7]), float), u_star[i])))), 1)}
            for i in range(len(X))]


def evaluate_pairs(agent: FrankaDeepValueMpc, which=None):
    """The 8 evaluation episodes with the actor as configured: per pair outcome, final distance,
    first time within tolerance, smallest clearance, largest |u - g(q)| / limit is not logged
    (the actor's own run_episode)."""
    task = agent.task
    tol = task.settings.success_tolerance
    rows, eps = [], []
    pairs = task.eval_pairs()
    for i in (range(len(pairs)) if which is None else which):
        x0, g = pairs[i]
        t0 = time.perf_counter()
        ep = run_episode(task, agent.view, agent.actor, x0, g, agent.plant)
        tcp = np.array([task.tcp(x) for x in ep.xs])
        dist = np.linalg.norm(tcp - g, axis=1)
        clear = min(task.clearance(x[:7]) for x in ep.xs)
        first = round(float(np.argmax(dist < tol)) * task.settings.control_dt, 2) if np.any(dist < tol) else None
        rows.append({"pair": i, "success": bool(ep.success(tol)), "contact": ep.outcome == "wall",
                     "final_distance": round(ep.final_distance, 3), "first_within_tol_s": first,
                     "min_clearance": round(float(clear), 3), "max_tcp_z": round(float(tcp[:, 2].max()), 3),
                     "cost": round(ep.total_cost, 3), "wall_s": round(time.perf_counter() - t0, 1)})
        eps.append((ep, tcp))
    return rows, eps


def critic_values(agent: FrankaDeepValueMpc, X, G, tau) -> np.ndarray:
    """The exported (target) critic's V at (X, G, tau)."""
    import torch

    with torch.no_grad():
        return agent.learner.trainer.target(torch.from_numpy(X), torch.from_numpy(G),
                                            torch.from_numpy(tau)).squeeze(-1).numpy()


def algorithm1_from_known(agent: FrankaDeepValueMpc, value: KnownValue, iterations: int, eval_every: int,
                          log=print):
    """Algorithm 1 (``agent.run_iteration``: episodes, critic updates, export) started from the
    fitted known value. Per iteration: training success / contacts, the critic's regression
    target mean, and the drift of the exported critic from the known value on the replayed
    states (RMS and mean of V - V_known, the latter against the replayed states' Monte-Carlo
    cost-to-go); every ``eval_every`` iterations the 8 evaluation pairs."""
    rng = np.random.default_rng(123)
    T, dt = agent.task.settings.episode_time, agent.task.settings.control_dt
    hist = []
    for it in range(1, iterations + 1):
        t0 = time.perf_counter()
        stats = agent.run_iteration()
        data = agent.learner.buffer.valid()
        idx = rng.choice(len(data["state"]), min(1500, len(data["state"])), replace=False)
        X, G, tau = data["state"][idx], data["goal"][idx], data["time_to_go"][idx].reshape(-1)
        Vk, Vf = value(X, G, tau), critic_values(agent, X, G, tau)
        row = {"iteration": it, "train_success": stats["train/success_rate"], "train_contacts": stats["train/contacts"],
               "train_cost": round(stats["train/episode_cost"], 3),
               "target_mean": round(stats.get("critic/target_mean", float("nan")), 3),
               "loss": round(stats.get("critic/loss_mean", float("nan")), 4),
               "V_minus_known_mean": round(float(np.mean(Vf - Vk)), 3),
               "V_minus_known_rms": round(float(np.sqrt(np.mean((Vf - Vk) ** 2))), 3),
               "known_mean": round(float(np.mean(Vk)), 3)}
        if eval_every > 0 and (it % eval_every == 0 or it == iterations):
            rows, _ = evaluate_pairs(agent)
            row["eval_success"] = sum(r["success"] for r in rows)
            row["eval_contacts"] = sum(r["contact"] for r in rows)
            row["eval_first_within_tol_s"] = [r["first_within_tol_s"] for r in rows]
        row["wall_s"] = round(time.perf_counter() - t0, 1)
        log(f"algorithm 1 iteration {it}: {row}")
        hist.append(row)
    return hist


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default=None)
    ap.add_argument("--lead", type=float, default=0.2, help="[s] lead time of the TCP lead point")
    ap.add_argument("--offset", type=float, default=None, help="[s] default: training.terminal_weight")
    ap.add_argument("--penalty", type=float, default=None, help="default: task.contact_penalty")
    ap.add_argument("--inflate", type=float, default=0.08, help="[m] board inflation of the TCP path")
    ap.add_argument("--contact-margin", type=float, default=0.05, help="[m] clearance where C(q) starts")
    ap.add_argument("--samples", type=int, default=20000)
    ap.add_argument("--steps", type=int, default=4000)
    ap.add_argument("--modes", nargs="+", default=["running+terminal", "terminal"])
    ap.add_argument("--r", nargs="+", type=float, default=None,
                    help="actor control weights r to run (R = r I; default: the config's actor.r)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--iterations", type=int, default=0,
                    help="then run this many Algorithm 1 iterations from the fitted value (the last --r and mode)")
    ap.add_argument("--eval-every", type=int, default=5)
    ap.add_argument("--pairs", nargs="+", type=int, default=None,
                    help="evaluation pair indices to run (default all; a subset only for screening)")
    ap.add_argument("--fit-cache", default=None,
                    help="torch file of the fitted network: loaded if it exists (same value settings), else written")
    ap.add_argument("--save-critic", default=None)
    ap.add_argument("--save-paths", default=None, help="write the TCP paths (npz) here")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    cfg = load_config(args.config, parse_overrides(args.set))
    offset = cfg.training.terminal_weight if args.offset is None else args.offset
    penalty = cfg.task.contact_penalty if args.penalty is None else args.penalty
    agent = FrankaDeepValueMpc(cfg)
    value = KnownValue(agent.task, args.lead, offset, penalty, args.inflate, args.contact_margin)
    value_key = json.dumps([args.lead, offset, penalty, args.inflate, args.contact_margin, args.samples, args.steps,
                            list(cfg.learner.hidden)])
    t0 = time.perf_counter()
    if args.fit_cache and Path(args.fit_cache).exists():
        import torch

        cached = torch.load(args.fit_cache)
        if cached["value"] != value_key:
            raise SystemExit(f"{args.fit_cache} holds a fit of another value: {cached['value']}")
        for net in (agent.learner.trainer.model, agent.learner.trainer.target):
            net.load_state_dict(cached["state"])
        agent.bundle = agent.learner.export()
        agent.actor.set_critic_bundle(agent.bundle)
        mse, rms, yrms = cached["fit"]
    else:
        mse, rms, yrms = fit_known_value(agent, value, samples=args.samples, steps=args.steps)
        if args.fit_cache:
            import torch

            torch.save({"value": value_key, "state": agent.learner.trainer.model.state_dict(),
                        "fit": (mse, rms, yrms)}, args.fit_cache)
    print(f"fit: last batch MSE {mse:.4f}, held-out RMS error {rms:.3f} (target RMS {yrms:.3f}), "
          f"{time.perf_counter() - t0:.0f} s", flush=True)
    if args.save_critic:
        Path(args.save_critic).write_bytes(agent.bundle)
    diag = start_diagnostics(agent, value)
    for i, d in enumerate(diag):
        print(f"start {i}: {d}", flush=True)
    report = {"lead": args.lead, "offset": offset, "penalty": penalty, "inflate": args.inflate,
              "contact_margin": args.contact_margin, "hidden": list(cfg.learner.hidden), "fit_mse": mse,
              "fit_rms": rms, "target_rms": yrms, "starts": diag, "modes": {}, "overrides": args.set}
    paths = {}
    for r_u in (args.r or [cfg.actor.r]):
        for mode in args.modes:
            agent.actor = FrankaActor(agent.task, dataclasses.replace(cfg.actor, mode=mode, r=r_u))
            agent.actor.set_critic_bundle(agent.bundle)
            diag = start_diagnostics(agent, value)
            rows, eps = evaluate_pairs(agent, args.pairs)
            key = f"r={r_u:g} {mode}"
            for r in rows:
                print(f"{key}: {r}", flush=True)
            n_ok = sum(r["success"] for r in rows)
            n_c = sum(r["contact"] for r in rows)
            ratio = max(d["max |u* - g(q)|/limit"] for d in diag)
            acc = max(d["max |M^-1 (u* - g)| [rad/s^2]"] for d in diag)
            print(f"{key}: success {n_ok}/{len(rows)}  contacts {n_c}/{len(rows)}  at the starts: greedy |u* - g|/limit <= {ratio}, "
                  f"greedy joint acceleration <= {acc} rad/s^2", flush=True)
            report["modes"][key] = {"success": n_ok, "contacts": n_c, "greedy_ratio": ratio, "greedy_acc": acc,
                                    "pairs": rows}
            paths.update({f"{key}/{i}": tcp for i, (_, tcp) in enumerate(eps)})
    if args.iterations > 0:
        report["algorithm1"] = algorithm1_from_known(agent, value, args.iterations, args.eval_every,
                                                     log=lambda m: print(m, flush=True))
    if args.save_paths:
        np.savez(args.save_paths, **paths)
    print(json.dumps(report))
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
