"""Ballbot optimal-control tasks: stabilisation and point-to-point reaching.

State order (see docs/ballbot_model.md): x = [px, py, yaw, pitch, roll, vx, vy, yaw_rate,
pitch_rate, roll_rate]; u = 3 omni-wheel torques [N m].

Cost (the reference Ballbot MPC's tracking weights, reference-facts.md):
  l = 1/2 (x - x_ref)' Q (x - x_ref) + upright term,   Q = diag(100, 100, 400, 0, 0, 40, 40, 40, 20, 20)
  1/2 u' R u with R = 2 I (the problem's control weight),
  terminal: 1/2 (x - x_ref)' P (x - x_ref), P from the discrete Riccati equation of the model
  linearised upright (so a short horizon still sees the infinite-horizon LQR tail).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.linalg as sl

from dmpc_core import _core

NX, NU = 10, 3
PX, PY, YAW, PITCH, ROLL = 0, 1, 2, 3, 4
VX, VY = 5, 6
STATE_NAMES = ["px", "py", "yaw", "pitch", "roll", "vx", "vy", "yaw_rate", "pitch_rate", "roll_rate"]
JOINT_NAMES = STATE_NAMES[:5]
WHEEL_NAMES = ["wheel_0", "wheel_1", "wheel_2"]


@dataclass
class BallbotCostSettings:
    """Attributes:
    q_diag: diagonal of the tracking weight Q (10).
    r: control weight R = r I (3 x 3).
    w_tilt: weight of the upright term w_tilt (1 - cos(pitch) cos(roll)).
    w_tilt_rate: weight of 1/2 (pitch_rate^2 + roll_rate^2) in the upright term.
    terminal: 'lqr' (discrete Riccati at upright) or 'q' (terminal weight = terminal_scale * Q).
    terminal_scale: used when terminal == 'q'.
    """

    q_diag: list[float] = field(default_factory=lambda: [100, 100, 400, 0, 0, 40, 40, 40, 20, 20])
    r: float = 2.0
    w_tilt: float = 200.0
    w_tilt_rate: float = 0.0
    terminal: str = "lqr"
    terminal_scale: float = 10.0

    def validate(self) -> None:
        if len(self.q_diag) != NX or min(self.q_diag) < 0:
            raise ValueError(f"q_diag must have {NX} non-negative entries")
        if not self.r > 0:
            raise ValueError("r must be > 0")
        if self.terminal not in ("lqr", "q"):
            raise ValueError("terminal must be 'lqr' or 'q'")


def upright_lqr_value(model: _core.DynamicsModel, Q: np.ndarray, R: np.ndarray, dt: float, integrator: str = "rk4") -> np.ndarray:
    """P of the discrete LQR value 1/2 x'Px of the model linearised at the upright equilibrium,
    for stage cost dt/2 (x'Qx + u'Ru) (position entries of Q regularised to keep the pair
    detectable when they are zero)."""
    _, Ad, Bd = _core.integrate_diff(model, np.zeros(model.nx), np.zeros(model.nu), dt, integrator)
    Qd = (Q + 1e-6 * np.eye(model.nx)) * dt
    return sl.solve_discrete_are(Ad, Bd, Qd, R * dt)


def make_reach_problem(
    target_xy: tuple[float, float],
    horizon: int = 100,
    dt: float = 0.01,
    cost: BallbotCostSettings | None = None,
    integrator: str = "rk4",
    model: _core.DynamicsModel | None = None,
) -> tuple[_core.Problem, _core.QuadraticCost, _core.QuadraticCost]:
    """Problem driving the Ballbot to ``target_xy`` upright at rest.

    Returns the problem and its running and terminal tracking terms (call
    ``set_reference`` on both, between solves, to move the target).
    """
    cost = cost or BallbotCostSettings()
    cost.validate()
    model = model or _core.BallbotDynamics()
    Q = np.diag(np.asarray(cost.q_diag, dtype=float))
    R = cost.r * np.eye(NU)
    x_ref = np.zeros(NX)
    x_ref[PX], x_ref[PY] = target_xy
    track = _core.QuadraticCost(Q, np.zeros((NU, NU)), x_ref, np.zeros(NU))
    running = _core.SumCost(NX, NU)
    running.add("track", track)
    running.add("upright", _core.UprightCost(NX, NU, PITCH, ROLL, 8, 9, cost.w_tilt, cost.w_tilt_rate))
    P = upright_lqr_value(model, Q, R, dt, integrator) if cost.terminal == "lqr" else cost.terminal_scale * Q
    terminal = _core.QuadraticCost(P, np.zeros((NU, NU)), x_ref, np.zeros(NU))
    problem = _core.Problem(model, running, terminal, horizon, dt, integrator, R)
    return problem, track, terminal


def lqr_policy(problem: _core.Problem, target_xy, t0: float = 0.0) -> _core.Policy:
    """A stabilising initial guess: u = K (x - x_ref) with K the discrete LQR gain of the model
    linearised upright, on the problem's grid. Without it, the first SLQ solve starts from a
    rollout in which the unstable robot falls and can converge to a fallen local minimum."""
    model, dt, N = problem.dynamics, problem.dt, problem.horizon
    R = problem.control_weight
    Q = np.diag(BallbotCostSettings().q_diag).astype(float)
    P = upright_lqr_value(model, Q, R, dt, problem.integrator)
    _, Ad, Bd = _core.integrate_diff(model, np.zeros(NX), np.zeros(NU), dt, problem.integrator)
    K = -np.linalg.solve(R * dt + Bd.T @ P @ Bd, Bd.T @ P @ Ad)
    x_ref = np.zeros(NX)
    x_ref[PX], x_ref[PY] = target_xy
    pol = _core.Policy()
    pol.t0, pol.dt = t0, dt
    pol.u_ff = np.zeros((N, NU))
    pol.x_nom = np.tile(x_ref, (N + 1, 1))
    pol.K = [K] * N
    return pol


def set_target(track: _core.QuadraticCost, terminal: _core.QuadraticCost, target_xy) -> None:
    """Move the reach target of a problem made by :func:`make_reach_problem` (between solves)."""
    x_ref = np.zeros(NX)
    x_ref[PX], x_ref[PY] = target_xy
    for c in (track, terminal):
        c.set_reference(x_ref, np.zeros(NU))


def path_reference(points_xy, t_start: float = 0.0, stamps=None, speed: float = 0.5):
    """Knots (times, X_ref) of a ``_core.TrajectoryQuadraticCost`` that follows a planar path
    (e.g. the poses of a nav_msgs/Path) at rest orientation, upright.

    Args:
        points_xy: (K, 2) finite waypoints; consecutive duplicates are dropped.
        t_start: time of the first waypoint, on the solver's clock [s].
        stamps: (K,) waypoint times relative to any origin (e.g. the poses' header stamps),
            strictly increasing after dropping duplicates; None: constant ``speed`` along the
            polyline.
        speed: [m/s] (> 0) when ``stamps`` is None.
    Returns:
        times (K',) starting at ``t_start``, X_ref (K', NX): positions at the waypoints, linear
        velocity the mean of the two adjacent segments' velocities (0 at the first and last
        waypoints: start and arrive at rest), all angles and rates 0.
    Raises:
        ValueError: non-finite or wrongly shaped input, no waypoint, non-increasing stamps,
        speed <= 0.
    """
    P = np.asarray(points_xy, dtype=float)
    if P.ndim != 2 or P.shape[1] != 2 or P.shape[0] < 1:
        raise ValueError(f"points_xy must be a (K, 2) array with K >= 1, got shape {P.shape}")
    if not np.all(np.isfinite(P)):
        raise ValueError("path waypoints must be finite")
    if not np.isfinite(t_start):
        raise ValueError("t_start must be finite")
    keep = np.concatenate([[True], np.any(np.abs(np.diff(P, axis=0)) > 1e-9, axis=1)])
    P = P[keep]
    if stamps is None:
        if not speed > 0:
            raise ValueError(f"speed must be > 0, got {speed}")
        seg = np.hypot(*np.diff(P, axis=0).T) if len(P) > 1 else np.zeros(0)
        rel = np.concatenate([[0.0], np.cumsum(seg)]) / speed
    else:
        s = np.asarray(stamps, dtype=float).reshape(-1)
        if s.shape[0] != keep.shape[0] or not np.all(np.isfinite(s)):
            raise ValueError(f"stamps must be {keep.shape[0]} finite times")
        s = s[keep]
        if np.any(np.diff(s) <= 0):
            raise ValueError("path stamps must be strictly increasing")
        rel = s - s[0]
    times = float(t_start) + rel
    X = np.zeros((len(P), NX))
    X[:, PX], X[:, PY] = P[:, 0], P[:, 1]
    if len(P) > 2:
        v = np.diff(P, axis=0) / np.diff(times)[:, None]
        X[1:-1, 5:7] = 0.5 * (v[:-1] + v[1:])
    return times, X


def tilt(x: np.ndarray) -> np.ndarray:
    """Tilt angle of the base from vertical [rad]: arccos(cos(pitch) cos(roll))."""
    x = np.atleast_2d(x)
    return np.arccos(np.clip(np.cos(x[:, PITCH]) * np.cos(x[:, ROLL]), -1.0, 1.0))
