"""Bare receding-horizon rate of the Ballbot reach MPC per solver (no ROS, one thread).

    python benchmarks/mppi_mpc_rate.py [--quick] [--feedback-check]

Times ``ReachMpc.mpc.update`` back to back (the Ballbot upright at the origin, goal 0.8 m away,
t advancing 10 ms per update, i.e. a 100 Hz re-plan clock) for SLQ with the config's grid
(100 x 10 ms, one iteration) and for MPPI (``solver: mppi``, one iteration per update,
num_threads 1) on 25 x 20 ms with K = 256 (the config's mppi block) and K = 128, and on the SLQ
grid. Rate = 1 / median wall time of one update (Python overhead included: shift, set_state,
policy construction). Prints a markdown table; the last line is ``mppi_mpc_rate_hz=`` (K = 256,
25 x 20 ms).

``--feedback-check`` instead runs the closed-loop check behind ``mppi.feedback``: the Ballbot on
the Python plant (1 kHz RK4, input noise), goal 0.8 m away, 5 s, MPPI (25 x 20 ms, K = 256)
re-planning at a given rate with a simulated computational delay (a plan computed from x(t) acts
from t + delay on), with feedback "none" (open-loop plan, ZOH) and "lqr".
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine_line, reach_mpc_rate, table  # noqa: E402


def rate(solver: str, horizon: int, dt: float, num_samples: int, repeats: int) -> tuple:
    from dmpc_core.control.reach_mpc import ReachSettings
    from dmpc_core.mpc import MpcSettings, MppiMpcSettings

    s = ReachSettings(mpc=MpcSettings(horizon=horizon, dt=dt, solver=solver,
                                      mppi=MppiMpcSettings(num_samples=num_samples or 256, num_threads=1)))
    return reach_mpc_rate(s, (0.8, 0.0), repeats)


class Delayed:
    """A plan computed from x(t) acts only from t + delay (the previous one until then)."""

    def __init__(self, mpc, delay: float):
        self.mpc, self.delay, self.settings = mpc, delay, mpc.settings
        self.active, self.pending = None, []

    def update(self, t, x):
        res = self.mpc.update(t, x)
        self.pending.append((t + self.delay, self.mpc.policy))
        return res

    def control(self, t, x):
        while self.pending and t >= self.pending[0][0] - 1e-9:
            self.active = self.pending.pop(0)[1]
        return np.zeros(3) if self.active is None else self.active.control(t, x)


def feedback_check() -> None:
    from dmpc_core.control.reach_mpc import ReachMpc, ReachSettings
    from dmpc_core.mpc import MpcSettings, MppiMpcSettings
    from dmpc_core.sim import Plant, PlantSettings, simulate_closed_loop
    from dmpc_core.tasks import ballbot

    goal = (0.8, 0.0)
    rows = []
    for rate, delay, noise in [(100, 0.0, 0.0), (40, 0.02, 0.1), (25, 0.035, 0.1), (25, 0.035, 0.0)]:
        for fb in ("none", "lqr"):
            s = ReachSettings(mpc=MpcSettings(horizon=25, dt=0.02, mpc_rate=rate, tracking_rate=400.0, solver="mppi",
                                              mppi=MppiMpcSettings(feedback=fb)))
            r = ReachMpc(s, goal)
            x0 = np.zeros(10)
            x0[ballbot.PITCH] = 0.03
            plant = Plant(r.model, x0, PlantSettings(physics_dt=1e-3, input_noise_std=noise, seed=1))
            try:
                a = simulate_closed_loop(plant, Delayed(r.mpc, delay), duration=5.0).arrays()
            except ValueError:  # the plant state blew up after a fall
                rows.append([rate, 1e3 * delay, noise, fb, "fell (diverged)", "-"])
                continue
            tilt = ballbot.tilt(a["x"])
            d = np.hypot(a["x"][:, 0] - goal[0], a["x"][:, 1] - goal[1])
            rows.append([rate, 1e3 * delay, noise, fb, f"{tilt.max():.3f}", f"{d[-1]:.2f}"])
    print(table(["re-plan [Hz]", "delay [ms]", "input noise", "feedback", "max tilt [rad]", "final dist [m]"], rows))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--feedback-check", action="store_true")
    args = ap.parse_args()
    if args.feedback_check:
        feedback_check()
        return
    n = 30 if args.quick else 200
    cases = [("slq", 100, 0.01, 0), ("mppi", 25, 0.02, 256), ("mppi", 25, 0.02, 128), ("mppi", 100, 0.01, 256)]
    rows, main_rate = [], float("nan")
    for solver, H, dt, K in cases:
        hz, ms = rate(solver, H, dt, K, n)
        rows.append([solver, f"{H} x {1e3 * dt:.0f} ms", K or "-", f"{ms:.2f}", f"{hz:.0f}"])
        if (solver, H, K) == ("mppi", 25, 256):
            main_rate = hz
    print(machine_line())
    print(table(["solver", "grid", "K", "median solve [ms]", "updates/s"], rows))
    print(f"mppi_mpc_rate_hz={main_rate:.1f}")


if __name__ == "__main__":
    main()
