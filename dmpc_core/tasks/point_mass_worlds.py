"""Reward-free 2-D point-mass worlds of POLO Fig. 2: an open box and a maze.

The agent is ``_core.PointMass2D`` (x = [px, py, vx, vy], u = [Fx, Fy] in [-1, 1]^2, m = 1,
damping 0.1), in an arena |px|, |py| <= 1.5 m, simulated at dt = 0.01 s with a frame skip of 5
(one control step = 0.05 s), the setting of reference-facts.md (POLO line).

Contacts (the plant, not the planner): after every 0.01 s sub-step the position is checked per
axis against the arena and the obstacle rectangles (inflated by the agent radius); a move along
an axis that would enter a wall is undone and that velocity component set to zero (an inelastic,
frictionless contact). The planner's model (MPPI) has no contacts: it sees the walls through a
smooth proximity penalty (``_core.WallPenalty``) on the same geometry, the only running cost of
these worlds (zero in free space: there is no task reward).

Coverage (POLO Fig. 2a): the fraction of free cells of a 30 x 30 occupancy grid over the arena
visited by the agent's position (cells whose centre lies inside an obstacle are excluded).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Sequence, Tuple

import numpy as np

from dmpc_core import _core

ARENA = 1.5  # half width [m]
WALL_THICKNESS = 0.15

# obstacle rectangles (xmin, xmax, ymin, ymax): an S-shaped maze of three corridors with a
# dead-end pocket in the middle corridor (start bottom left, far end top right)
MAZE_OBSTACLES: Tuple[Tuple[float, float, float, float], ...] = (
    (-1.5, 0.8, -0.575, -0.425),   # lower wall from the left, gap on the right
    (-0.8, 1.5, 0.425, 0.575),     # upper wall from the right, gap on the left
    (0.2, 0.35, -0.425, 0.05),     # stub hanging into the middle corridor (dead end at right)
)


@dataclass
class PointMassWorldSettings:
    """Attributes:
    world: "box" (no obstacles) or "maze" (:data:`MAZE_OBSTACLES`).
    mass: m [kg]; damping: c [N s/m] (m v_dot = u - c v).
    sim_dt: plant sub-step [s]; frame_skip: sub-steps per control step.
    u_max: control bound (|u_i| <= u_max).
    radius: agent radius [m] used by the contact check.
    start: initial position.
    grid_cells: occupancy grid resolution per axis.
    wall_d_safe / wall_weight / wall_beta: planner's WallPenalty (d_safe [m], weight, softness).
    """

    world: str = "maze"
    mass: float = 1.0
    damping: float = 0.1
    sim_dt: float = 0.01
    frame_skip: int = 5
    u_max: float = 1.0
    radius: float = 0.05
    start: Tuple[float, float] = (-1.2, -1.2)
    grid_cells: int = 30
    wall_d_safe: float = 0.12
    wall_weight: float = 200.0
    wall_beta: float = 30.0

    def validate(self) -> None:
        if self.world not in ("box", "maze"):
            raise ValueError(f"world must be 'box' or 'maze', got {self.world!r}")
        if self.sim_dt <= 0 or self.frame_skip < 1 or self.u_max <= 0 or self.grid_cells < 2:
            raise ValueError("sim_dt, frame_skip, u_max, grid_cells must be positive")

    @property
    def control_dt(self) -> float:
        return self.sim_dt * self.frame_skip


def obstacles(world: str) -> Tuple[Tuple[float, float, float, float], ...]:
    return MAZE_OBSTACLES if world == "maze" else ()


def _rect_to_wall(r) -> "_core.Wall":
    xmin, xmax, ymin, ymax = r
    if xmax - xmin >= ymax - ymin:  # horizontal bar
        yc, h = 0.5 * (ymin + ymax), 0.5 * (ymax - ymin)
        return _core.Wall(xmin + h, yc, xmax - h, yc, h)
    xc, h = 0.5 * (xmin + xmax), 0.5 * (xmax - xmin)
    return _core.Wall(xc, ymin + h, xc, ymax - h, h)


def planner_walls(world: str) -> List["_core.Wall"]:
    """Arena boundary (as 4 thin walls just outside +-ARENA) plus the obstacles, as segments."""
    a, t = ARENA, 0.05
    walls = [
        _core.Wall(-a - t, -a - t, a + t, -a - t, t), _core.Wall(-a - t, a + t, a + t, a + t, t),
        _core.Wall(-a - t, -a - t, -a - t, a + t, t), _core.Wall(a + t, -a - t, a + t, a + t, t),
    ]
    walls += [_rect_to_wall(r) for r in obstacles(world)]
    return walls


class PointMassWorld:
    """Plant of a point-mass world with hard wall contacts and an occupancy grid.

    Args:
        settings: :class:`PointMassWorldSettings`.
    """

    nx, nu = 4, 2

    def __init__(self, settings: PointMassWorldSettings) -> None:
        settings.validate()
        self.settings = settings
        self.obstacles = np.array(obstacles(settings.world), dtype=float).reshape(-1, 4)
        self.state = np.zeros(4)
        n = settings.grid_cells
        edges = np.linspace(-ARENA, ARENA, n + 1)
        centres = 0.5 * (edges[:-1] + edges[1:])
        cx, cy = np.meshgrid(centres, centres, indexing="ij")
        self.free_cells = ~self._inside_obstacle(cx.ravel(), cy.ravel(), 0.0).reshape(n, n)
        self.visited = np.zeros((n, n), dtype=bool)
        self.reset()

    # -- geometry ------------------------------------------------------------------------
    def _inside_obstacle(self, px, py, inflate: float):
        px, py = np.asarray(px, dtype=float), np.asarray(py, dtype=float)
        inside = np.zeros(px.shape, dtype=bool)
        for xmin, xmax, ymin, ymax in self.obstacles:
            inside |= (px > xmin - inflate) & (px < xmax + inflate) & (py > ymin - inflate) & (py < ymax + inflate)
        return inside

    def blocked(self, px: float, py: float) -> bool:
        """True if a disc of the agent radius at (px, py) overlaps a wall or leaves the arena."""
        r = self.settings.radius
        if abs(px) > ARENA - r or abs(py) > ARENA - r:
            return True
        return bool(self._inside_obstacle(px, py, r))

    def cell_of(self, px: float, py: float) -> Tuple[int, int]:
        n = self.settings.grid_cells
        i = int(np.clip((px + ARENA) / (2 * ARENA) * n, 0, n - 1))
        j = int(np.clip((py + ARENA) / (2 * ARENA) * n, 0, n - 1))
        return i, j

    # -- plant ---------------------------------------------------------------------------
    def reset(self, start: Sequence[float] | None = None) -> np.ndarray:
        s = self.settings
        p = np.asarray(start if start is not None else s.start, dtype=float)
        if self.blocked(*p):
            raise ValueError(f"start {p} is inside a wall")
        self.state = np.array([p[0], p[1], 0.0, 0.0])
        self.visited[:] = False
        self._mark()
        return self.state.copy()

    def _mark(self) -> None:
        self.visited[self.cell_of(self.state[0], self.state[1])] = True

    def step(self, u) -> np.ndarray:
        """Apply u (clipped to the bounds) for one control step; returns the new state."""
        s = self.settings
        u = np.clip(np.asarray(u, dtype=float).reshape(2), -s.u_max, s.u_max)
        x = self.state
        for _ in range(s.frame_skip):
            # semi-implicit Euler of m v_dot = u - c v, then per-axis contact resolution
            v = x[2:] + s.sim_dt * (u - s.damping * x[2:]) / s.mass
            p = x[:2].copy()
            for axis in (0, 1):
                trial = p.copy()
                trial[axis] += s.sim_dt * v[axis]
                if self.blocked(*trial):
                    v[axis] = 0.0  # inelastic contact: the position stays, the normal velocity dies
                else:
                    p = trial
            x = np.concatenate([p, v])
            self.visited[self.cell_of(p[0], p[1])] = True
        self.state = x
        return x.copy()

    def coverage(self) -> float:
        """Fraction of free grid cells visited since the last reset."""
        return float(np.sum(self.visited & self.free_cells) / np.sum(self.free_cells))

    # -- planner model -------------------------------------------------------------------
    def planner_model(self):
        """(dynamics, running cost) for MPPI: PointMass2D and the smooth wall proximity penalty."""
        s = self.settings
        dyn = _core.PointMass2D(s.mass, s.damping)
        cost = _core.WallPenalty(4, 2, 0, 1, planner_walls(s.world), s.wall_d_safe, s.wall_weight, s.wall_beta)
        return dyn, cost


def random_exploration_coverage(settings: PointMassWorldSettings, steps: int, seed: int,
                                curve_every: int = 10) -> np.ndarray:
    """Baseline: u ~ U[-u_max, u_max]^2 i.i.d. per control step. Returns the coverage curve
    sampled every ``curve_every`` steps (index i = coverage after i * curve_every steps)."""
    world = PointMassWorld(settings)
    rng = np.random.default_rng(seed)
    curve = [world.coverage()]
    for t in range(1, steps + 1):
        world.step(rng.uniform(-settings.u_max, settings.u_max, size=2))
        if t % curve_every == 0:
            curve.append(world.coverage())
    return np.array(curve)


__all__ = ["PointMassWorldSettings", "PointMassWorld", "planner_walls", "obstacles", "MAZE_OBSTACLES",
           "random_exploration_coverage", "ARENA"]
