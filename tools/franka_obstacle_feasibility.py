"""Feasibility of the Franka obstacle task (dmpc_core.tasks.franka_obstacle) by the layout rule:
an MPC that knows the board reaches 8/8 evaluation targets with margin (the known-geometry
anchor), and the obstacle-blind reach MPC (the actor's problem without a critic, V = 0) scores at
most 1/8.

    python tools/franka_obstacle_feasibility.py [--pairs 0 1 ...] [--out docs/results]

Prints, per evaluation pair and controller: success, contact, final TCP distance, the first time
the TCP is within the success tolerance (margin against T), the smallest arm-board clearance
and the wall-clock time; then the totals. With ``--out`` it writes
``franka_obstacle_feasibility.json`` and ``franka_obstacle_paths.png`` (top and side views of the
TCP paths of both controllers round the board).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dmpc_core.tasks.franka_obstacle import (FrankaObstacleTask, ObstaclePandaPlant, make_reach_controller,  # noqa: E402
                                             run_episode)


def evaluate(task, plant, pairs, known_geometry: bool):
    rows = []
    for i in pairs:
        x0, goal = task.eval_pairs()[i]
        start = time.perf_counter()
        res = run_episode(task, plant, make_reach_controller(task, x0, goal, known_geometry), x0, goal)
        d = np.linalg.norm(res.tcp - goal, axis=1)
        within = np.flatnonzero(d < task.settings.success_tolerance)
        rows.append({"pair": i, "success": bool(res.success), "contact": bool(res.touched),
                     "final_distance": float(res.final_distance),
                     "time_to_tolerance": float(within[0] * task.settings.control_dt) if within.size else None,
                     "min_clearance": float(min(task.clearance(x[:7]) for x in res.xs)),
                     "wall_time": time.perf_counter() - start, "tcp": res.tcp.tolist()})
        r = rows[-1]
        print(f"{'known-geometry' if known_geometry else 'obstacle-blind':>14} pair {i}: success {r['success']!s:5} "
              f"contact {r['contact']!s:5} final {r['final_distance']:.3f} m  within tol at "
              f"{r['time_to_tolerance'] if r['time_to_tolerance'] is not None else '-'} s  "
              f"min clearance {r['min_clearance']:+.3f} m  ({r['wall_time']:.1f} s)", flush=True)
    return rows


def plot(task, results, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    s = task.settings
    c, h = np.asarray(s.box_center), np.asarray(s.box_half)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    views = ((0, 1, "x [m]", "y [m]", "top view"), (1, 2, "y [m]", "z [m]", "side view (from +x)"))
    for ax, (a, b, la, lb, title) in zip(axes, views):
        ax.add_patch(Rectangle((c[a] - h[a], c[b] - h[b]), 2 * h[a], 2 * h[b], color="0.6", label="board"))
        for name, style in (("obstacle-blind", "r-"), ("known-geometry", "b-")):
            for k, r in enumerate(results[name]):
                p = np.asarray(r["tcp"])
                ax.plot(p[:, a], p[:, b], style, lw=1, label=f"{name} MPC" if k == 0 else None)
                if r["contact"]:
                    ax.plot(p[-1, a], p[-1, b], "rx")
        for k, (x0, g) in enumerate(task.eval_pairs()):
            p0 = task.tcp(x0)
            ax.plot(p0[a], p0[b], "ko", ms=4, label="starts" if k == 0 else None)
            ax.plot(g[a], g[b], "g*", ms=9, label="targets" if k == 0 else None)
        ax.set_xlabel(la)
        ax.set_ylabel(lb)
        ax.set_title(title)
        ax.set_aspect("equal")
    axes[0].legend(fontsize=7, loc="lower right")
    fig.suptitle("Franka obstacle task: TCP paths of the 8 evaluation pairs (x = contact, episode ended)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, nargs="*", default=None, help="evaluation pairs (default: all 8)")
    ap.add_argument("--out", default="", help="folder for the JSON summary and the figure")
    args = ap.parse_args(argv)
    task = FrankaObstacleTask()
    plant = ObstaclePandaPlant(task.settings)
    pairs = args.pairs if args.pairs is not None else list(range(len(task.settings.eval_pairs)))
    for i, (x0, g) in enumerate(task.eval_pairs()):
        assert task.blocks_straight_line(task.tcp(x0), g), f"pair {i}: the straight TCP path misses the board"
    results = {name: evaluate(task, plant, pairs, kg) for name, kg in (("obstacle-blind", False), ("known-geometry", True))}
    n = len(pairs)
    for name, rows in results.items():
        ok = sum(r["success"] for r in rows)
        times = [r["time_to_tolerance"] for r in rows if r["success"]]
        print(f"{name}: {ok}/{n} successes, {sum(r['contact'] for r in rows)} contacts"
              + (f", slowest success within tolerance at {max(times):.2f} s of T = {task.settings.episode_time} s" if times else ""))
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "franka_obstacle_feasibility.json").write_text(json.dumps(
            {name: [{k: v for k, v in r.items() if k != "tcp"} for r in rows] for name, rows in results.items()}, indent=1))
        plot(task, results, out / "franka_obstacle_paths.png")
        print(f"wrote {out / 'franka_obstacle_feasibility.json'} and {out / 'franka_obstacle_paths.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
