"""Summarise several main-job runs (``python -m dmpc_ros.main_job --seed S --out DIR``): a markdown
table of success and distance at T before and after learning per run, with the mean and the
95 % Student-t interval over the runs, and a figure of the per-run before/after success.

    python tools/main_job_runs.py runs/main_s0 runs/main_s3 runs/main_s4 [--out docs/results/ballbot_make_run_runs.png]

The main job drives the node graph in real time, so its runs go one after another (two graphs
on two cores would starve each other's control loops); each run's ``summary.json`` and
``episodes.csv`` are read from its folder.
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ballbot_reach_seeds import t_interval  # noqa: E402


def read_run(folder: Path) -> dict:
    s = json.loads((folder / "summary.json").read_text())
    with open(folder / "episodes.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    seed = s.get("seed")
    if seed is None:  # summaries written before the seed was recorded: the folder's "..._s<N>" suffix
        tail = folder.name.rsplit("_s", 1)[-1]
        seed = int(tail) if tail.isdigit() else None
    out = {"run": folder.name, "seed": seed, "wall_s": s["wall_time_s"]}
    for ph in ("before", "learn", "after"):
        out[ph] = s[ph]
    out["learn_last16"] = np.mean([r["success"] == "True" for r in rows if r["phase"] == "learn"][-16:])
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--out", type=Path, default=None, help="PNG of the per-run before/after success")
    args = ap.parse_args(argv)
    runs = [read_run(r) for r in args.runs]
    print("| run | seed | before: reached (fell) | after: reached (fell) | mean distance at T before -> after [m] "
          "| last 16 learning episodes reached | learning episodes fell | wall time [s] |")
    print("|---|---|---|---|---|---|---|---|")
    for r in runs:
        b, a = r["before"], r["after"]
        print(f"| {r['run']} | {r['seed']} | {b['success']}/{b['episodes']} ({b['fallen']}) | {a['success']}/{a['episodes']} "
              f"({a['fallen']}) | {b['mean_final_distance_m']:.2f} -> {a['mean_final_distance_m']:.2f} "
              f"| {r['learn_last16']:.2f} | {r['learn']['fallen']}/{r['learn']['episodes']} | {r['wall_s']:.0f} |")
    before = np.array([r["before"]["success_rate"] for r in runs])
    after = np.array([r["after"]["success_rate"] for r in runs])
    db = np.array([r["before"]["mean_final_distance_m"] for r in runs])
    da = np.array([r["after"]["mean_final_distance_m"] for r in runs])
    for name, v in (("success before", before), ("success after", after), ("after - before (paired)", after - before),
                    ("distance at T before [m]", db), ("distance at T after [m]", da)):
        m, h = t_interval(v)
        print(f"{name}: {m:.2f} +- {h:.2f} (95 % t-interval, {len(v)} runs)")
    if args.out:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 2, figsize=(11, 4))
        k = np.arange(len(runs))
        labels = [f"seed {r['seed']}" for r in runs] + ["mean, 95 %"]
        for ax, (vb, va, ylabel) in zip(axes, ((before, after, "success on the 8 goals (within 0.25 m at T)"),
                                               (db, da, "mean distance to the goal at T [m]"))):
            ax.bar(k - 0.2, vb, 0.4, label="before learning", color="0.6")
            ax.bar(k + 0.2, va, 0.4, label="after learning", color="tab:green")
            for v, off, c in ((vb, -0.2, "0.4"), (va, 0.2, "tab:green")):
                m, h = t_interval(v)
                ax.errorbar(len(runs) + off, m, yerr=h, fmt="o", color=c, capsize=4)
            ax.set_xticks(list(k) + [len(runs)], labels)
            ax.axhline(0, color="k", lw=0.6)
            ax.set(ylabel=ylabel)
        axes[0].axhline(1, color="k", lw=0.6, ls=":")
        axes[0].legend(loc="upper left")
        fig.suptitle(f"make run: Deep Value MPC learning through the ROS 2 graph, {len(runs)} runs "
                     "(bars: 95 % t-interval of the mean)")
        fig.tight_layout()
        fig.savefig(args.out, dpi=100)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
