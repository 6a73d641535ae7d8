"""Ballbot walls-and-target task of deep-value-mpc (Sec. 6.1, Fig. 2a), sparse task cost.

The paper gives the task (reach a target within T = 3 s from any start; walls end the episode
with a fixed penalty; target cost = Euclidean distance) but not the arena, the wall layout
or the penalty. Our choice (documented in docs/log/2026-12-07-ballbot-walls-history.md, figure
``docs/results/ballbot_layout.png``). ``config/ballbot_walls.yaml`` is the source of truth for
the layout; it ships, in metres:

* arena: the square [-1.6, 1.6]^2 bounded by four walls;
* one interior wall, the segment y = 0, x in [-0.4, 0.4], half thickness 0.05;
* target (0, 0.8) above the wall; evaluation starts: 8 points on y = -0.8,
  x in {+-0.1, +-0.3, +-0.5, +-0.7}. With the robot radius 0.15 the straight line from every
  evaluation start to the target crosses the wall (it crosses y = 0 at |x| <= 0.35 < 0.6);
* training starts: uniform in the free arena (clearance > ``start_clearance``);
* episode: T (the shipped 5 s: docs/results/ballbot_walls.md) of control steps dt; per-step cost c = ||p - g|| dt (``cost = "distance"``)
  or c = dt * [||p - g|| > tolerance] (``cost = "binary"``), p the ball position at the start
  of the step; touching a wall (clearance < robot radius) or falling (tilt > ``max_tilt``)
  ends the episode and adds ``wall_penalty`` (resp. ``fall_penalty``) to that step's cost;
* success: no wall/fall and ||p(T) - g|| < ``success_tolerance`` at the end of the episode.

Geometry is plain numpy (vectorised for the figures); ``test_deep_value_mpc.py`` cross-checks
it against ``_core.WallPenalty(...).clearance``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dmpc_core.tasks.ballbot import NX, PITCH, PX, PY, ROLL, VX, VY


@dataclass
class WallsTaskSettings:
    """Attributes:
    arena_half_size: the arena is [-a, a]^2, bounded by walls on its edges.
    walls: interior wall segments [[ax, ay, bx, by], ...] (boundary walls are added).
    wall_half_thickness: half thickness of every wall.
    robot_radius: a wall is touched when the clearance of the ball centre is below this.
    episode_time: T [s].
    control_dt: delta t of Algorithm 1 (one MPC update and one stored transition per step).
    physics_dt: plant integration step [s].
    tracking_substeps: policy evaluations per control step (feedback between re-plans).
    target: fixed target [x, y] (used when ``sample_target`` is False and for evaluation).
    sample_target: training targets uniform in ``target_region`` instead of ``target``.
    target_region: [xmin, xmax, ymin, ymax].
    start_region: [xmin, xmax, ymin, ymax] of the training starts.
    start_clearance: minimal wall clearance of a sampled start / target.
    eval_starts: the fixed evaluation starts [[x, y], ...] (paper: 8).
    cost: "distance" (c = ||p - g|| dt) or "binary" (c = dt if ||p - g|| > tolerance else 0).
    tolerance: radius of the zero-cost region of the binary cost.
    success_tolerance: final distance counted as success.
    wall_penalty / fall_penalty: fixed cost added when the episode ends on a wall / a fall.
    max_tilt: tilt [rad] counted as a fall.
    input_noise_std: plant input-channel noise intensity (Eq. 1; 0 = deterministic plant).
    torque_limit: plant actuator limit |u_i| <= torque_limit [N m].
    terminal_weight: w of the Eq. (4) termination cost q_f = w ||p(T) + l v(T) - g|| added when an
        episode reaches T (0 = none).
    terminal_lead: l [s] of q_f: the distance of a lead point p + l v to the goal. With l equal
        to the look-ahead of the goal-relative critic (``LearnerSettings.lead``) the value at tau = 0,
        V(0, x) = q_f(x), is a function of p + l v as the critic is, so it can be represented
        exactly; it also asks the robot to be at the goal and not leaving it. 0 = position only.

    The defaults are the first layout (wall x in [-0.7, 0.7], target (0, 1), starts on y = -1),
    kept so that code building ``WallsTaskSettings()`` directly does not change; the shipped task
    is ``config/ballbot_walls.yaml`` (see the module docstring).
    """

    arena_half_size: float = 1.6
    walls: list = field(default_factory=lambda: [[-0.7, 0.0, 0.7, 0.0]])
    wall_half_thickness: float = 0.05
    robot_radius: float = 0.15
    episode_time: float = 3.0
    control_dt: float = 0.05
    physics_dt: float = 0.005
    tracking_substeps: int = 5
    target: list = field(default_factory=lambda: [0.0, 1.0])
    sample_target: bool = False
    target_region: list = field(default_factory=lambda: [-1.2, 1.2, -1.2, 1.2])
    start_region: list = field(default_factory=lambda: [-1.3, 1.3, -1.3, 1.3])
    start_clearance: float = 0.3
    eval_starts: list = field(
        default_factory=lambda: [[x, -1.0] for x in (-1.2, -0.85, -0.5, -0.15, 0.15, 0.5, 0.85, 1.2)]
    )
    cost: str = "distance"
    tolerance: float = 0.2
    success_tolerance: float = 0.25
    wall_penalty: float = 10.0
    fall_penalty: float = 10.0
    max_tilt: float = 0.7
    input_noise_std: float = 0.0
    torque_limit: float = 30.0
    terminal_weight: float = 0.0
    terminal_lead: float = 0.0

    def validate(self) -> None:
        if self.cost not in ("distance", "binary"):
            raise ValueError("cost must be 'distance' or 'binary'")
        if not (self.episode_time > 0 and self.control_dt > 0 and self.physics_dt > 0):
            raise ValueError("episode_time, control_dt and physics_dt must be > 0")
        n = self.episode_time / self.control_dt
        if abs(n - round(n)) > 1e-6:
            raise ValueError("episode_time must be a multiple of control_dt")
        if self.tracking_substeps < 1:
            raise ValueError("tracking_substeps must be >= 1")
        for w in self.walls:
            if len(w) != 4:
                raise ValueError("each wall is [ax, ay, bx, by]")
        for name in ("target_region", "start_region"):
            r = getattr(self, name)
            if len(r) != 4 or r[0] >= r[1] or r[2] >= r[3]:
                raise ValueError(f"{name} must be [xmin, xmax, ymin, ymax] with min < max")
        if len(self.target) != 2 or any(len(s) != 2 for s in self.eval_starts) or not self.eval_starts:
            raise ValueError("target and eval_starts entries must be [x, y]")
        if min(self.wall_penalty, self.fall_penalty, self.input_noise_std, self.terminal_weight,
               self.terminal_lead) < 0:
            raise ValueError("penalties, terminal_weight, terminal_lead and noise must be >= 0")


class WallsTask:
    """Geometry, costs and termination of the walls task (see module doc)."""

    NG = 2  # goal = target xy

    def __init__(self, settings: WallsTaskSettings):
        settings.validate()
        self.settings = s = settings
        a = float(s.arena_half_size)
        boundary = [[-a, -a, a, -a], [a, -a, a, a], [a, a, -a, a], [-a, a, -a, -a]]
        self.segments = np.asarray([list(map(float, w)) for w in s.walls] + boundary, dtype=float).reshape(-1, 4)
        self.steps = int(round(s.episode_time / s.control_dt))

    def plant_settings(self, seed: int):
        from dmpc_core.sim.plant import PlantSettings

        lim = float(self.settings.torque_limit)
        return PlantSettings(physics_dt=self.settings.physics_dt, input_noise_std=self.settings.input_noise_std,
                             u_min=[-lim] * 3, u_max=[lim] * 3, seed=seed)

    # -- geometry --------------------------------------------------------------------------
    def clearance(self, px, py) -> np.ndarray:
        """Distance from (px, py) to the nearest wall surface (negative inside a wall);
        broadcasts over arrays."""
        p = np.stack(np.broadcast_arrays(np.asarray(px, float), np.asarray(py, float)), axis=-1)[..., None, :]
        a, b = self.segments[:, :2], self.segments[:, 2:]
        ab = b - a
        L2 = np.maximum(np.sum(ab * ab, axis=1), 1e-300)
        s = np.clip(np.sum((p - a) * ab, axis=-1) / L2, 0.0, 1.0)
        d = np.linalg.norm(p - (a + s[..., None] * ab), axis=-1)
        a_half = self.settings.arena_half_size
        inside = ((np.abs(p[..., 0]) < a_half) & (np.abs(p[..., 1]) < a_half))[..., 0]
        d_min = d.min(axis=-1)
        d_min = np.where(inside, d_min, -d_min)  # outside the arena counts as inside a wall
        return d_min - self.settings.wall_half_thickness

    def core_walls(self):
        """The same walls as ``_core.Wall`` objects (for ``_core.WallPenalty``)."""
        from dmpc_core import _core

        h = self.settings.wall_half_thickness
        return [_core.Wall(*map(float, w), h) for w in self.segments]

    def hits_wall(self, x: np.ndarray) -> bool:
        return bool(self.clearance(x[PX], x[PY]) < self.settings.robot_radius)

    def fallen(self, x: np.ndarray) -> bool:
        return bool(np.arccos(np.clip(np.cos(x[PITCH]) * np.cos(x[ROLL]), -1, 1)) > self.settings.max_tilt)

    def blocks_straight_line(self, start, goal, n: int = 200) -> bool:
        """True if the robot disc moving straight from ``start`` to ``goal`` touches a wall."""
        lam = np.linspace(0.0, 1.0, n)[:, None]
        pts = (1 - lam) * np.asarray(start, float) + lam * np.asarray(goal, float)
        return bool(np.any(self.clearance(pts[:, 0], pts[:, 1]) < self.settings.robot_radius))

    def geodesic_distance(self, p, goal, margin: float = 0.05) -> np.ndarray:
        """Length of the shortest path from ``p`` (..., 2) to ``goal`` (2,) that keeps the ball
        centre ``robot_radius + margin`` clear of every interior wall surface (boundary walls
        ignored). Each wall is inflated to a capsule of radius rc = half thickness + robot radius +
        margin; paths go through the vertices of 16-gons circumscribing the capsule's end caps
        (9 per end, radius rc / cos(pi/16)), so the returned length is an upper bound of the
        exact capsule geodesic, tight to ~2 % (cross-checked against exact tangent-arc paths in
        test_deep_value_mpc.py). Points inside a capsule get the graph distance via any vertex.
        Used by the hand-made wall-aware value of tools/ballbot_oracle_critic.py."""
        s = self.settings
        P = np.asarray(p, float)
        shape = P.shape[:-1]
        P = P.reshape(-1, 2)
        g = np.asarray(goal, float)
        walls = np.asarray([list(map(float, w)) for w in s.walls], float).reshape(-1, 4)
        if len(walls) == 0:
            return np.linalg.norm(P - g, axis=1).reshape(shape)
        rc = s.wall_half_thickness + s.robot_radius + margin
        rv = rc / np.cos(np.pi / 16) * (1 + 1e-6)
        nodes = []
        for ax, ay, bx, by in walls:
            a, b = np.array([ax, ay]), np.array([bx, by])
            e = (b - a) / max(np.linalg.norm(b - a), 1e-12)
            for end, out in ((a, -e), (b, e)):
                perp = np.array([-out[1], out[0]])
                for ang in np.linspace(-np.pi / 2, np.pi / 2, 9):
                    nodes.append(end + rv * (np.cos(ang) * out + np.sin(ang) * perp))
        N = np.asarray(nodes)

        def visible(A, B):  # (m, 2), (m, 2) -> (m,) segment AB clear of every capsule
            ok = np.ones(len(A), bool)
            for w in walls:
                ok &= _segment_distance(A, B, w[:2], w[2:]) >= rc * (1 - 1e-9)
            return ok

        k = len(N)
        # Dijkstra (dense, k small) from the goal over the vertices
        I, J = np.meshgrid(np.arange(k), np.arange(k), indexing="ij")
        W = np.where(visible(N[I.ravel()], N[J.ravel()]).reshape(k, k),
                     np.linalg.norm(N[I] - N[J], axis=-1), np.inf)
        D = np.where(visible(N, np.tile(g, (k, 1))), np.linalg.norm(N - g, axis=1), np.inf)
        done = np.zeros(k, bool)
        for _ in range(k):
            i = int(np.argmin(np.where(done, np.inf, D)))
            if not np.isfinite(D[i]):
                break
            done[i] = True
            D = np.minimum(D, D[i] + W[i])
        direct = np.linalg.norm(P - g, axis=1)
        out = np.where(visible(P, np.tile(g, (len(P), 1))), direct, np.inf)
        Pi = np.repeat(P, k, axis=0)
        Nj = np.tile(N, (len(P), 1))
        dpn = np.linalg.norm(Pi - Nj, axis=1).reshape(len(P), k)
        vis = visible(Pi, Nj).reshape(len(P), k)
        via = np.min(np.where(vis, dpn, np.inf) + D[None, :], axis=1)
        out = np.minimum(out, via)
        stuck = ~np.isfinite(out)  # inside a capsule: nothing visible
        if np.any(stuck):
            out[stuck] = np.min(dpn[stuck] + D[None, :], axis=1)
        return out.reshape(shape)

    # -- cost --------------------------------------------------------------------------------
    def step_cost(self, x: np.ndarray, goal: np.ndarray) -> float:
        """Task cost of one control step from state ``x`` (before the termination penalty)."""
        s = self.settings
        d = float(np.hypot(x[PX] - goal[0], x[PY] - goal[1]))
        if s.cost == "distance":
            return d * s.control_dt
        return s.control_dt * float(d > s.tolerance)

    def terminal_cost(self, x: np.ndarray, goal: np.ndarray) -> float:
        """q_f of an episode that reaches T at state ``x``: ``terminal_weight`` times the distance
        of that lead point p + ``terminal_lead`` v to the goal."""
        w, lead = self.settings.terminal_weight, self.settings.terminal_lead
        if not w > 0:
            return 0.0
        return float(w * np.hypot(x[PX] + lead * x[VX] - goal[0], x[PY] + lead * x[VY] - goal[1]))

    def standing_value(self, X: np.ndarray, goals: np.ndarray, time_to_go: np.ndarray) -> np.ndarray:
        """The task cost of standing still for the time-to-go, at the look-ahead point:
        (tau + ``terminal_weight``) * ||p + ``terminal_lead`` v - g|| for states X (n, nx), goals
        (n, 2), tau (n,). For a state at rest it is the distance cost summed over tau plus q_f
        (Eq. 4): an upper bound of the optimal task value where the goal is in sight, and it knows
        nothing of the walls. Only defined for the "distance" cost."""
        s = self.settings
        if s.cost != "distance":
            raise ValueError("standing_value is defined for the distance cost only")
        X, goals = np.atleast_2d(X), np.atleast_2d(goals)
        e = X[:, [PX, PY]] + s.terminal_lead * X[:, [VX, VY]] - goals
        return (np.reshape(time_to_go, -1) + s.terminal_weight) * np.linalg.norm(e, axis=1)

    # -- sampling ----------------------------------------------------------------------------
    def _sample_free(self, rng: np.random.Generator, region) -> np.ndarray:
        for _ in range(10_000):
            p = np.array([rng.uniform(region[0], region[1]), rng.uniform(region[2], region[3])])
            if self.clearance(p[0], p[1]) > self.settings.start_clearance:
                return p
        raise RuntimeError("could not sample a free position: region fully blocked")

    def sample_start(self, rng: np.random.Generator, goal=None, max_distance=None) -> np.ndarray:
        """A free start in ``start_region``; with ``max_distance`` (a curriculum), one whose
        geodesic distance (margin 0) to ``goal`` is at most that (rejection sampling)."""
        if max_distance is None:
            return self._sample_free(rng, self.settings.start_region)
        g = np.asarray(self.settings.target if goal is None else goal, float)
        for _ in range(1000):
            cand = np.asarray([self._sample_free(rng, self.settings.start_region) for _ in range(64)])
            ok = np.flatnonzero(self.geodesic_distance(cand, g, 0.0) <= max_distance)
            if len(ok):
                return cand[ok[0]]
        raise RuntimeError(f"no free start within {max_distance} m of the goal")

    def sample_goal(self, rng: np.random.Generator) -> np.ndarray:
        if not self.settings.sample_target:
            return np.asarray(self.settings.target, dtype=float)
        return self._sample_free(rng, self.settings.target_region)

    @staticmethod
    def initial_state(start_xy) -> np.ndarray:
        """Upright at rest at ``start_xy``."""
        x = np.zeros(NX)
        x[PX], x[PY] = start_xy
        return x


def _point_segment_distance(P, a, b) -> np.ndarray:
    """Distance of points P (m, 2) to the segment ab."""
    ab = b - a
    t = np.clip(((P - a) @ ab) / max(float(ab @ ab), 1e-300), 0.0, 1.0)
    return np.linalg.norm(P - (a + t[:, None] * ab), axis=1)


def _segment_distance(A, B, c, d) -> np.ndarray:
    """Distance between the segments A_i B_i (m, 2 each) and the segment cd (0 if they cross)."""
    def cross(u, v):
        return u[..., 0] * v[..., 1] - u[..., 1] * v[..., 0]

    AB, cd = B - A, d - c
    d1, d2 = cross(cd, A - c), cross(cd, B - c)
    d3, d4 = cross(AB, c - A), cross(AB, d - A)
    crosses = (d1 * d2 < 0) & (d3 * d4 < 0)
    dist = np.minimum.reduce([_point_segment_distance(A, c, d), _point_segment_distance(B, c, d),
                              _pts_to_segments(c, A, B), _pts_to_segments(d, A, B)])
    return np.where(crosses, 0.0, dist)


def _pts_to_segments(q, A, B) -> np.ndarray:
    """Distance of the point q (2,) to each segment A_i B_i."""
    AB = B - A
    L2 = np.maximum(np.sum(AB * AB, axis=1), 1e-300)
    t = np.clip(np.sum((q - A) * AB, axis=1) / L2, 0.0, 1.0)
    return np.linalg.norm(q - (A + t[:, None] * AB), axis=1)
