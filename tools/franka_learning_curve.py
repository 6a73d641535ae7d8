"""Evaluation curve of one ``dmpc train franka-obstacle`` run: success on the 8 pairs, contacts
and the mean final TCP distance against the iteration, from the run's ``scalars.csv`` (the experiments' logger).

    python tools/franka_learning_curve.py RUN_DIR OUT.png
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dmpc_core.experiments._common import read_scalars  # noqa: E402


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    run, out = Path(argv[0]), Path(argv[1])
    scalars = read_scalars(run / "scalars.csv")
    keys = ("eval/success_rate", "eval/contacts", "eval/final_distance")
    if "eval/success_rate" not in scalars:
        print(f"{run / 'scalars.csv'} has no evaluation", file=sys.stderr)
        return 1
    it = [int(i) for i in scalars["eval/success_rate"][:, 0]]
    rows = [{k: dict(map(tuple, scalars[k]))[i] for k in keys} for i in it]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.5))
    for ax, key, label in zip(axes, ("eval/success_rate", "eval/contacts", "eval/final_distance"),
                              ("success rate (8 pairs)", "contacts (of 8)", "mean final TCP distance [m]")):
        ax.plot(it, [float(r[key]) for r in rows], "o-")
        ax.set_xlabel("iteration")
        ax.set_title(label)
    axes[0].set_ylim(-0.05, 1.05)
    fig.suptitle(f"dmpc train franka-obstacle, one seed ({run.name}): evaluation on the 8 pairs")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    for i, r in zip(it, rows):
        print(f"iteration {i}: success {float(r['eval/success_rate']):.3f} contacts {float(r['eval/contacts']):.0f} "
              f"final distance {float(r['eval/final_distance']):.3f} m")
    return 0


if __name__ == "__main__":
    sys.exit(main())
