"""What does a Ballbot walls critic look like over x-y? (docs/log/2026-12-07-ballbot-walls-history.md, "Entry 5")

For a value V(tau, x) (a trained critic, or the hand-made oracle of
tools/ballbot_oracle_critic.py) on an x-y grid of upright states at rest (v = 0), and several
time-to-go values tau, :func:`value_field` returns

* V,
* the position gradient dV/dp and the velocity gradient dV/dv,
* the DMPC greedy input u* = -R^-1 g(x)' V_x (the input the Eq. (14) running cost makes the
  actor track, see "Why, as far as we understand it" in the results file) and the ball
  acceleration it causes at once, a* = g_v(x) u* (g_v: the rows of the input matrix for vx, vy).

:func:`agreement` compares the directions -dV/dp and a* with the way round the walls,
-grad geo (the geodesic distance to the goal, ``WallsTask.geodesic_distance``), and the value
with geo and with the Euclidean distance. Plain numpy on top of a ``value_fn(taus, X) ->
(V, Vx)`` callable; :func:`native_value_fn` wraps a native critic (``_core.CriticMLP``, what
the actor evaluates). Used by ``tools/ballbot_value_diag.py``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, Sequence, Tuple

import numpy as np

from dmpc_core.tasks import ballbot
from dmpc_core.tasks.ballbot_walls import WallsTask

ValueFn = Callable[[np.ndarray, np.ndarray], Tuple[np.ndarray, np.ndarray]]


@dataclass
class ValueField:
    xs: np.ndarray  # (nx_grid,)
    ys: np.ndarray  # (ny_grid,)
    taus: np.ndarray  # (nt,)
    V: np.ndarray  # (nt, ny, nx)
    dVdp: np.ndarray  # (nt, ny, nx, 2)
    dVdv: np.ndarray  # (nt, ny, nx, 2)
    u_star: np.ndarray  # (nt, ny, nx, nu)
    acc: np.ndarray  # (nt, ny, nx, 2) ball acceleration of u* at once


def native_value_fn(critic, goal) -> ValueFn:
    """(V, Vx) of a native critic (``_core.CriticMLP``) for goal ``goal``."""
    critic.set_goal(np.asarray(goal, dtype=float))

    def fn(taus: np.ndarray, X: np.ndarray):
        out = critic.evaluate_batch(np.asarray(taus, float), np.asfortranarray(X, dtype=float), True)
        return np.asarray(out["V"]), np.asarray(out["Vx"])

    return fn


def scaled_native_critic(bundle_bytes: bytes, scale: float):
    """The native critic of a bundle with its output multiplied by ``scale`` (V -> scale * V):
    to test whether a critic fails by its direction or by its magnitude."""
    from dmpc_core.critics.bundle import load_bundle

    b = load_bundle(bundle_bytes)
    b.arrays = dict(b.arrays)
    b.arrays["output_scale"] = np.asarray(b.arrays["output_scale"], float) * float(scale)
    b.arrays["output_bias"] = np.asarray(b.arrays["output_bias"], float) * float(scale)
    return b.to_native()


def input_matrix(model, x: np.ndarray) -> np.ndarray:
    """g(x) = df/du (nx, nu) of a control-affine model, row by row from ``drift_input_projection``."""
    nx = x.shape[0]
    rows = []
    for i in range(nx):
        e = np.zeros(nx)
        e[i] = 1.0
        rows.append(np.asarray(model.drift_input_projection(x, e)[1]))
    return np.asarray(rows)


def value_field(value_fn: ValueFn, model, r: float, xs: Sequence[float], ys: Sequence[float],
                taus: Sequence[float]) -> ValueField:
    """V, dV/dp, dV/dv, u* and a* on the grid (upright, at rest, yaw 0), R = r I."""
    xs, ys, taus = (np.asarray(a, float) for a in (xs, ys, taus))
    PX, PY = np.meshgrid(xs, ys)  # (ny, nx)
    m = PX.size
    X = np.zeros((m, ballbot.NX))
    X[:, ballbot.PX], X[:, ballbot.PY] = PX.ravel(), PY.ravel()
    # upright at rest: g does not depend on the position (checked here, not assumed)
    G = input_matrix(model, X[0])
    if not np.allclose(G, input_matrix(model, X[-1])):
        raise RuntimeError("input matrix depends on the position: evaluate it per point")
    gv = G[[5, 6], :]  # rows of vx, vy
    nt = len(taus)
    V = np.zeros((nt, m))
    Vx = np.zeros((nt, m, ballbot.NX))
    for k, tau in enumerate(taus):
        V[k], Vx[k] = value_fn(np.full(m, tau), X)
    u = -(Vx @ G) / r  # (nt, m, nu): -R^-1 g' Vx
    acc = u @ gv.T
    shp = (nt,) + PX.shape
    return ValueField(xs, ys, taus, V.reshape(shp), Vx[..., [0, 1]].reshape(shp + (2,)),
                      Vx[..., [5, 6]].reshape(shp + (2,)), u.reshape(shp + (-1,)), acc.reshape(shp + (2,)))


def geodesic_direction(task: WallsTask, goal, xs, ys, margin: float = 0.05, h: float = 0.01) -> np.ndarray:
    """-grad geo (unit vectors, (ny, nx, 2)) by central differences: the way round the walls."""
    PX, PY = np.meshgrid(np.asarray(xs, float), np.asarray(ys, float))
    P = np.stack([PX, PY], axis=-1)
    gx = (task.geodesic_distance(P + [h, 0], goal, margin) - task.geodesic_distance(P - [h, 0], goal, margin)) / (2 * h)
    gy = (task.geodesic_distance(P + [0, h], goal, margin) - task.geodesic_distance(P - [0, h], goal, margin)) / (2 * h)
    d = -np.stack([gx, gy], axis=-1)
    return d / np.maximum(np.linalg.norm(d, axis=-1, keepdims=True), 1e-12)


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    na, nb = np.linalg.norm(a, axis=-1), np.linalg.norm(b, axis=-1)
    return np.sum(a * b, axis=-1) / np.maximum(na * nb, 1e-12)


def agreement(field: ValueField, task: WallsTask, goal, region=None, margin: float = 0.05) -> Dict[str, list]:
    """Per tau, over the free grid points (clearance > robot radius + margin) inside ``region``
    ([xmin, xmax, ymin, ymax], default: everywhere) whose straight line to the goal is blocked
    (there the Euclidean and the geodesic directions differ; the points with a free line are
    left out so the numbers are about the way round):

    * cos_p / cos_a: mean cosine between -dV/dp (resp. a*) and -grad geo;
    * frac_p / frac_a: fraction of points where that cosine is > 0.9 (within 25 degrees);
    * cos_p_euclid: mean cosine between -dV/dp and the straight direction to the goal;
    * cos_vp: mean cosine between dV/dv and dV/dp (1 for a value of p + lead * v, like the oracle's;
      DMPC's greedy input follows dV/dv, the position gradient enters only through the drift);
    * corr_geo / corr_euclid: correlation of V with the geodesic / Euclidean distance;
    * acc_norm: median |a*| [m/s^2]; n: points used."""
    goal = np.asarray(goal, float)
    PX, PY = np.meshgrid(field.xs, field.ys)
    free = task.clearance(PX, PY) > task.settings.robot_radius + margin
    if region is not None:
        x0, x1, y0, y1 = region
        free &= (PX >= x0) & (PX <= x1) & (PY >= y0) & (PY <= y1)
    blocked = np.array([task.blocks_straight_line((px, py), goal, 50) for px, py in zip(PX.ravel(), PY.ravel())])
    mask = free & blocked.reshape(PX.shape)
    geo_dir = geodesic_direction(task, goal, field.xs, field.ys, margin)
    euclid_dir = np.stack([goal[0] - PX, goal[1] - PY], axis=-1)
    geo = task.geodesic_distance(np.stack([PX, PY], axis=-1), goal, margin)
    euc = np.hypot(PX - goal[0], PY - goal[1])
    out: Dict[str, list] = {k: [] for k in ("tau", "cos_p", "frac_p", "cos_a", "frac_a", "cos_p_euclid",
                                            "cos_vp", "corr_geo", "corr_euclid", "acc_norm", "n")}
    for k, tau in enumerate(field.taus):
        cp = _cos(-field.dVdp[k], geo_dir)[mask]
        ca = _cos(field.acc[k], geo_dir)[mask]
        ce = _cos(-field.dVdp[k], euclid_dir)[mask]
        v = field.V[k][mask]
        out["tau"].append(float(tau))
        out["cos_p"].append(float(np.mean(cp)))
        out["frac_p"].append(float(np.mean(cp > 0.9)))
        out["cos_a"].append(float(np.mean(ca)))
        out["frac_a"].append(float(np.mean(ca > 0.9)))
        out["cos_p_euclid"].append(float(np.mean(ce)))
        out["cos_vp"].append(float(np.mean(_cos(field.dVdv[k], field.dVdp[k])[mask])))
        out["corr_geo"].append(float(np.corrcoef(v, geo[mask])[0, 1]) if np.std(v) > 0 else float("nan"))
        out["corr_euclid"].append(float(np.corrcoef(v, euc[mask])[0, 1]) if np.std(v) > 0 else float("nan"))
        out["acc_norm"].append(float(np.median(np.linalg.norm(field.acc[k][mask], axis=-1))))
        out["n"].append(int(mask.sum()))
    return out


def plot_fields(fields: Dict[str, ValueField], task: WallsTask, goal, path, stride: int = 3) -> None:
    """One row per field (name -> ValueField), one column per tau: V (colour, per-panel scale),
    -dV/dp (wide black arrows, unit length) and a* (red arrows, unit length), walls, target, eval starts."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(fields)
    nt = len(fields[names[0]].taus)
    fig, axes = plt.subplots(len(names), nt, figsize=(4.2 * nt, 4.0 * len(names)), squeeze=False)
    s = task.settings
    for i, name in enumerate(names):
        f = fields[name]
        X, Y = np.meshgrid(f.xs, f.ys)
        for k in range(nt):
            ax = axes[i, k]
            im = ax.pcolormesh(X, Y, f.V[k], shading="auto", cmap="viridis")
            fig.colorbar(im, ax=ax, fraction=0.046)
            sl = (slice(None, None, stride), slice(None, None, stride))
            for vec, col, wid in ((-f.dVdp[k], "k", 0.008), (f.acc[k], "red", 0.004)):
                n = np.maximum(np.linalg.norm(vec, axis=-1, keepdims=True), 1e-12)
                u = (vec / n)[sl]
                ax.quiver(X[sl], Y[sl], u[..., 0], u[..., 1], color=col, scale=30, width=wid)
            for w in task.segments:
                ax.plot([w[0], w[2]], [w[1], w[3]], color="w", lw=4 * s.wall_half_thickness / 0.05,
                        solid_capstyle="round")
            ax.plot(*goal, "x", color="red", ms=10, mew=3)
            st = np.asarray(s.eval_starts)
            ax.plot(st[:, 0], st[:, 1], "o", color="w", ms=4)
            ax.set_aspect("equal")
            ax.set_title(f"{name}, tau = {f.taus[k]:.1f} s", fontsize=9)
    fig.suptitle("V at rest, upright; black (wide): -dV/dp; red: ball acceleration of the DMPC greedy input\n"
                 "u* = -R^-1 g' V_x (unit arrows; they coincide where the value's velocity and position gradients agree)",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=65)
    plt.close(fig)
