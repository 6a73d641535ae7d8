"""Franka Panda reach round an obstacle: the TCP reaches a target within T seconds while a board
blocks the straight TCP path; contact of any link with the board ends the episode with a penalty.

Layout (``FrankaObstacleSettings`` defaults, in metres, robot base at the origin):

* the obstacle is a vertical board, an axis-aligned box of centre ``box_center`` (0.5, 0, 0.15)
  and half sizes ``box_half`` (0.2, 0.015, 0.15): x in [0.3, 0.7], y in [-0.015, 0.015],
  z in [0, 0.3];
* evaluation: 8 fixed (start, target) pairs, TCP starts on y = -0.25 and targets on y = +0.25,
  x in [0.4, 0.6], z in [0.12, 0.25]. The start configuration is the damped least-squares IK
  solution (:meth:`FrankaObstacleTask.ik`) from Franka's ready pose, so the hand points down. The
  straight TCP segment of every pair crosses the board (checked by
  :meth:`FrankaObstacleTask.blocks_straight_line`); the arm has to lift the hand over the
  board's top edge (or go round its ends);
* training: TCP starts uniform in ``start_region`` and targets uniform in ``target_region``
  (IK starts at rest), rejected when the arm is within ``start_clearance`` of the board;
* episode: T = ``episode_time`` of control steps ``control_dt``; per-step cost
  c = ||p - g|| dt (``cost = "distance"``) or c = dt [||p - g|| > tolerance] (``"binary"``), p the
  TCP at the start of the step; a contact of any arm sphere with the board ends the episode and
  adds ``contact_penalty``; success: no contact and ||p(T) - g|| < ``success_tolerance``.

Arm collision model (:data:`ARM_SPHERES`): spheres in the link frames covering the URDF's visual
primitives (cylinders of links 1-7, the hand box, the fingers). The MuJoCo scene
(:func:`obstacle_scene_model`) puts exactly these spheres on the URDF's bodies and the board in
the world, with contacts between arm and board only; the known-geometry MPC's distance cost
(:class:`BoardDistanceCost`) uses the same spheres through pinocchio's frame kinematics, so the
plant's contacts and the MPC's distances agree (``test/agreement/test_franka_obstacle.py``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np

from dmpc_core import _core
from dmpc_core.models.panda import JOINT_NAMES, Q_READY, TCP_FRAME, default_urdf_path

NQ = 7
NX = 2 * NQ

#: (link, centre in the link frame [m], radius [m]): spheres covering the URDF's visual primitives
ARM_SPHERES: Tuple[Tuple[str, Tuple[float, float, float], float], ...] = (
    ("panda_link1", (0.0, 0.0, -0.15), 0.06), ("panda_link1", (0.0, 0.0, -0.05), 0.06),
    ("panda_link2", (0.0, -0.02, 0.0), 0.06), ("panda_link2", (0.0, -0.14, 0.0), 0.06),
    ("panda_link3", (0.0, 0.0, -0.02), 0.06), ("panda_link3", (0.0, 0.0, -0.14), 0.06),
    ("panda_link4", (0.0, 0.0, -0.05), 0.06), ("panda_link4", (0.0, 0.0, 0.05), 0.06),
    ("panda_link5", (0.0, 0.0, -0.28), 0.055), ("panda_link5", (0.0, 0.0, -0.17), 0.055),
    ("panda_link5", (0.0, 0.0, -0.06), 0.055),
    ("panda_link6", (0.0, 0.0, 0.0), 0.05), ("panda_link6", (0.088, 0.0, 0.0), 0.05),
    ("panda_link7", (0.0, 0.0, 0.02), 0.045), ("panda_link7", (0.0, 0.0, 0.08), 0.045),
    ("panda_hand", (0.0, 0.07, 0.03), 0.035), ("panda_hand", (0.0, 0.0, 0.03), 0.035),
    ("panda_hand", (0.0, -0.07, 0.03), 0.035), ("panda_hand", (0.0, 0.0, 0.085), 0.025),
)


def _default_pairs() -> list:
    starts = [(0.40, -0.25, 0.15), (0.50, -0.25, 0.15), (0.60, -0.25, 0.15), (0.45, -0.25, 0.25),
              (0.55, -0.25, 0.25), (0.40, -0.25, 0.22), (0.60, -0.25, 0.22), (0.50, -0.25, 0.12)]
    targets = [(0.55, 0.25, 0.18), (0.45, 0.25, 0.20), (0.50, 0.25, 0.15), (0.60, 0.25, 0.22),
               (0.40, 0.25, 0.15), (0.50, 0.25, 0.25), (0.45, 0.25, 0.12), (0.55, 0.25, 0.25)]
    return [[list(s), list(g)] for s, g in zip(starts, targets)]


@dataclass
class FrankaObstacleSettings:
    """Attributes:
    box_center / box_half: the board, an axis-aligned box (centre, half sizes) [m].
    episode_time: T [s].
    control_dt: one MPC update and one stored transition per step [s].
    physics_dt: MuJoCo step [s] (contacts need a fine step).
    tracking_substeps: policy evaluations per control step.
    eval_pairs: the 8 evaluation pairs [[start TCP (3), target (3)], ...].
    start_region / target_region: [xmin, xmax, ymin, ymax, zmin, zmax] of training TCP starts /
        targets.
    start_clearance: minimal arm-board clearance of a training start [m].
    cost: "distance" (c = ||p - g|| dt) or "binary" (c = dt if ||p - g|| > tolerance else 0).
    tolerance: radius of the zero-cost region of the binary cost [m].
    success_tolerance: final TCP distance counted as success [m].
    contact_penalty: fixed cost added when the episode ends on a contact.
    joint_damping: viscous joint friction of plant and model [N m s/rad]. 0.1: light enough for
        the actor's 20 ms semi-implicit Euler nodes (see ``PandaActorSettings.node_dt``).
    """

    box_center: list = field(default_factory=lambda: [0.5, 0.0, 0.15])
    box_half: list = field(default_factory=lambda: [0.2, 0.015, 0.15])
    episode_time: float = 3.0
    control_dt: float = 0.02
    physics_dt: float = 0.001
    tracking_substeps: int = 4
    eval_pairs: list = field(default_factory=_default_pairs)
    start_region: list = field(default_factory=lambda: [0.35, 0.65, -0.35, -0.15, 0.12, 0.3])
    target_region: list = field(default_factory=lambda: [0.35, 0.65, 0.15, 0.35, 0.12, 0.3])
    start_clearance: float = 0.03
    cost: str = "distance"
    tolerance: float = 0.03
    success_tolerance: float = 0.03
    contact_penalty: float = 5.0
    joint_damping: float = 0.1

    def validate(self) -> None:
        if len(self.box_center) != 3 or len(self.box_half) != 3 or min(self.box_half) <= 0:
            raise ValueError("box_center needs 3 numbers and box_half 3 positive numbers")
        if not (self.episode_time > 0 and self.control_dt > 0 and self.physics_dt > 0):
            raise ValueError("episode_time, control_dt and physics_dt must be > 0")
        if int(self.tracking_substeps) != self.tracking_substeps or self.tracking_substeps < 1:
            raise ValueError("tracking_substeps must be an integer >= 1")
        if not self.eval_pairs or any(np.shape(p) != (2, 3) for p in self.eval_pairs):
            raise ValueError("eval_pairs must list [[start (3)], [target (3)]] pairs")
        for name in ("start_region", "target_region"):
            r = getattr(self, name)
            if len(r) != 6 or r[0] >= r[1] or r[2] >= r[3] or r[4] >= r[5]:
                raise ValueError(f"{name} must be [xmin, xmax, ymin, ymax, zmin, zmax] with min < max")
        if self.cost not in ("distance", "binary"):
            raise ValueError(f"cost must be 'distance' or 'binary', got {self.cost!r}")
        if not (self.success_tolerance > 0 and self.tolerance > 0 and self.contact_penalty >= 0):
            raise ValueError("tolerances must be > 0 and contact_penalty >= 0")


def box_distance(points: np.ndarray, center, half) -> Tuple[np.ndarray, np.ndarray]:
    """Signed distance of points (n, 3) to an axis-aligned box (negative inside) and its gradient
    (n, 3) (unit outward normal; inside: the axis of least penetration)."""
    P = np.atleast_2d(np.asarray(points, float)) - np.asarray(center, float)
    h = np.asarray(half, float)
    a = np.abs(P) - h
    outside = np.maximum(a, 0.0)
    d_out = np.linalg.norm(outside, axis=1)
    inside = np.max(a, axis=1)
    d = np.where(d_out > 0, d_out, inside)
    grad = np.zeros_like(P)
    out = d_out > 0
    grad[out] = np.sign(P[out]) * outside[out] / d_out[out, None]
    idx = np.flatnonzero(~out)
    if idx.size:
        k = np.argmax(a[idx], axis=1)
        grad[idx, k] = np.sign(P[idx, k]) + (P[idx, k] == 0)
    return d, grad


class ArmSpheres:
    """World centres of :data:`ARM_SPHERES` and their position Jacobians (pinocchio)."""

    def __init__(self, urdf_path: str | Path | None = None):
        import pinocchio as pin  # noqa: PLC0415

        self.pin = pin
        self.model = pin.buildModelFromUrdf(str(urdf_path or default_urdf_path()))
        if self.model.nq != NQ:
            raise ValueError(f"expected a {NQ}-joint arm, got nq = {self.model.nq}")
        self.data = self.model.createData()
        self.frames = [self.model.getFrameId(link) for link, _, _ in ARM_SPHERES]
        self.local = np.array([c for _, c, _ in ARM_SPHERES], float)
        self.radii = np.array([r for _, _, r in ARM_SPHERES], float)
        self.tcp = self.model.getFrameId(TCP_FRAME)

    def centers(self, q) -> np.ndarray:
        pin = self.pin
        pin.framesForwardKinematics(self.model, self.data, np.asarray(q, float))
        return np.array([self.data.oMf[f].act(c) for f, c in zip(self.frames, self.local)])

    def centers_and_jacobians(self, q) -> Tuple[np.ndarray, np.ndarray]:
        """Centres (n, 3) and d centre / dq (n, 3, 7)."""
        return self.centers(q), self.jacobians(q, range(len(self.frames)))

    def jacobians(self, q, which) -> np.ndarray:
        """d centre / dq (len(which), 3, 7) of the spheres ``which``."""
        pin = self.pin
        pin.computeJointJacobians(self.model, self.data, np.asarray(q, float))
        pin.updateFramePlacements(self.model, self.data)
        out = []
        for i in which:
            f = self.frames[i]
            M = self.data.oMf[f]
            r = M.act(self.local[i]) - M.translation
            Jf = pin.getFrameJacobian(self.model, self.data, f, pin.ReferenceFrame.LOCAL_WORLD_ALIGNED)
            skew = np.array([[0, -r[2], r[1]], [r[2], 0, -r[0]], [-r[1], r[0], 0]])
            out.append(Jf[:3] - skew @ Jf[3:])
        return np.array(out)

    def tcp_position(self, q) -> np.ndarray:
        self.pin.framesForwardKinematics(self.model, self.data, np.asarray(q, float))
        return self.data.oMf[self.tcp].translation.copy()


class BoardDistanceCost(_core.CostModel):
    """Known-geometry obstacle cost on x = [q; v]: l = 1/2 w sum_i max(0, m - d_i(q))^2, d_i the
    distance of arm sphere i to the board minus its radius, m the safety margin. lx = [-w sum_i
    max(0, m - d_i) J_i' n_i; 0]; lxx is the Gauss-Newton term w sum_{active} J_i' n_i n_i' J_i
    (n_i the box-distance gradient, J_i the sphere centre's Jacobian)."""

    def __init__(self, spheres: ArmSpheres, center, half, weight: float = 1e4, margin: float = 0.03):
        super().__init__(NX, NQ)
        if not (weight >= 0 and margin >= 0):
            raise ValueError("weight and margin must be >= 0")
        self.spheres, self.center, self.half = spheres, np.asarray(center, float), np.asarray(half, float)
        self.weight, self.margin = float(weight), float(margin)

    def _gaps(self, q):
        d, _ = box_distance(self.spheres.centers(q), self.center, self.half)
        return np.maximum(0.0, self.margin - (d - self.spheres.radii))

    def calc(self, data, t, x, u):
        g = self._gaps(x[:NQ])
        data.value = 0.5 * self.weight * float(g @ g)

    def calc_diff(self, data, t, x, u):
        q = x[:NQ]
        d, n = box_distance(self.spheres.centers(q), self.center, self.half)
        g = np.maximum(0.0, self.margin - (d - self.spheres.radii))
        lx = np.zeros(NX)
        lxx = np.zeros((NX, NX))
        active = np.flatnonzero(g > 0)
        if active.size:  # Jacobians only for the spheres within the margin (most nodes: none)
            J = self.spheres.jacobians(q, active)
            for i, Ji in zip(active, J):
                row = n[i] @ Ji  # d d_i / dq
                lx[:NQ] -= self.weight * g[i] * row
                lxx[:NQ, :NQ] += self.weight * np.outer(row, row)
        data.value = 0.5 * self.weight * float(g @ g)
        data.lx, data.lxx = lx, lxx
        data.lu, data.luu, data.lux = np.zeros(NQ), np.zeros((NQ, NQ)), np.zeros((NQ, NX))


class FrankaObstacleTask:
    """The task: geometry, IK starts, costs, sampling (see the module docstring)."""

    def __init__(self, settings: FrankaObstacleSettings | None = None, urdf_path: str | Path | None = None):
        self.settings = settings or FrankaObstacleSettings()
        self.settings.validate()
        self.urdf_path = str(urdf_path or default_urdf_path())
        self.spheres = ArmSpheres(self.urdf_path)
        self.model = _core.PandaDynamics(self.urdf_path, self.settings.joint_damping)
        self.lower = np.asarray(self.model.lower_position_limit, float)
        self.upper = np.asarray(self.model.upper_position_limit, float)
        self._eval: Optional[List[Tuple[np.ndarray, np.ndarray]]] = None

    # -- geometry --------------------------------------------------------------------------------
    def clearance(self, q) -> float:
        """Smallest distance between an arm sphere and the board [m] (negative: penetration)."""
        d, _ = box_distance(self.spheres.centers(q), self.settings.box_center, self.settings.box_half)
        return float(np.min(d - self.spheres.radii))

    def blocks_straight_line(self, start, goal, n: int = 200) -> bool:
        """Whether the straight TCP segment start -> goal passes through the board."""
        s = np.linspace(0.0, 1.0, n)[:, None]
        P = (1 - s) * np.asarray(start, float) + s * np.asarray(goal, float)
        d, _ = box_distance(P, self.settings.box_center, self.settings.box_half)
        return bool(np.any(d <= 0))

    def tcp(self, x) -> np.ndarray:
        return np.asarray(self.model.frame_position(np.asarray(x, float)[:NQ], TCP_FRAME), float)

    def ik(self, p, q0=None, iters: int = 300, damping: float = 1e-4, posture: float = 0.2) -> np.ndarray:
        """Joint configuration with the TCP at ``p``: damped least squares from ``q0`` (default the
        ready pose), with a pull toward the ready pose projected into the null space of the TCP
        Jacobian (keeps the hand pointing down). Raises ValueError if the TCP ends farther than
        1 mm from ``p``."""
        pin, sp = self.spheres.pin, self.spheres
        q = np.array(Q_READY if q0 is None else q0, float)
        p = np.asarray(p, float)
        for _ in range(iters):
            pin.computeJointJacobians(sp.model, sp.data, q)
            pin.updateFramePlacements(sp.model, sp.data)
            e = p - sp.data.oMf[sp.tcp].translation
            J = pin.getFrameJacobian(sp.model, sp.data, sp.tcp, pin.ReferenceFrame.LOCAL_WORLD_ALIGNED)[:3]
            J_pinv = J.T @ np.linalg.inv(J @ J.T + damping * np.eye(3))
            dq = J_pinv @ e + (np.eye(NQ) - J_pinv @ J) @ (posture * (Q_READY - q))
            q = np.clip(q + dq, self.lower + 0.05, self.upper - 0.05)
            if np.linalg.norm(e) < 1e-6:
                break
        err = float(np.linalg.norm(sp.tcp_position(q) - p))
        if err > 1e-3:
            raise ValueError(f"IK: TCP {err:.4f} m from {p.tolist()}")
        return q

    # -- episodes --------------------------------------------------------------------------------
    def eval_pairs(self) -> List[Tuple[np.ndarray, np.ndarray]]:
        """[(x0 (14,) at rest, target (3,))] of the evaluation pairs (IK computed once)."""
        if self._eval is None:
            self._eval = [(np.concatenate([self.ik(s), np.zeros(NQ)]), np.asarray(g, float))
                          for s, g in self.settings.eval_pairs]
        return self._eval

    def _uniform(self, rng, region) -> np.ndarray:
        r = np.asarray(region, float)
        return rng.uniform(r[0::2], r[1::2])

    def sample_pair(self, rng: np.random.Generator, max_tries: int = 100) -> Tuple[np.ndarray, np.ndarray]:
        """A training (x0 at rest, target) with the arm clear of the board at the start."""
        for _ in range(max_tries):
            try:
                q = self.ik(self._uniform(rng, self.settings.start_region))
            except ValueError:
                continue
            if self.clearance(q) > self.settings.start_clearance:
                return np.concatenate([q, np.zeros(NQ)]), self._uniform(rng, self.settings.target_region)
        raise RuntimeError("no training start clear of the board")

    def step_cost(self, x, goal) -> float:
        s = self.settings
        dist = float(np.linalg.norm(self.tcp(x) - np.asarray(goal, float)))
        return s.control_dt * (dist if s.cost == "distance" else float(dist > s.tolerance))

    def success(self, x, goal, touched: bool) -> bool:
        return (not touched) and float(np.linalg.norm(self.tcp(x) - np.asarray(goal, float))) < self.settings.success_tolerance


# -- MuJoCo scene with contacts ----------------------------------------------------------------------
def obstacle_scene_model(settings: FrankaObstacleSettings, urdf_path: str | Path | None = None):
    """``mujoco.MjModel`` of the Panda (compiled from the URDF as :mod:`dmpc_core.sim.panda` does)
    with the :data:`ARM_SPHERES` as collision spheres on its bodies and the board as a static box;
    contacts between arm and board only (arm spheres: contype 1, conaffinity 0; board: contype 0,
    conaffinity 1), joint limits on, RK4 at ``physics_dt``, joint damping ``joint_damping``."""
    import mujoco  # noqa: PLC0415

    from dmpc_core.sim.panda import urdf_text_for_mujoco  # noqa: PLC0415

    spec = mujoco.MjSpec.from_string(urdf_text_for_mujoco(urdf_path))
    for i, (link, c, r) in enumerate(ARM_SPHERES):
        g = spec.body(link).add_geom()
        g.name, g.type, g.size = f"arm_sphere_{i}", mujoco.mjtGeom.mjGEOM_SPHERE, [r, 0, 0]
        g.pos, g.contype, g.conaffinity, g.mass = list(c), 1, 0, 0.0
    b = spec.worldbody.add_geom()
    b.name, b.type = "board", mujoco.mjtGeom.mjGEOM_BOX
    b.size, b.pos, b.contype, b.conaffinity = list(settings.box_half), list(settings.box_center), 0, 1
    model = spec.compile()
    names = tuple(model.joint(i).name for i in range(model.njnt))
    if names != JOINT_NAMES:
        raise ValueError(f"MuJoCo model has joints {names}; expected {JOINT_NAMES}")
    model.opt.timestep = settings.physics_dt
    model.opt.integrator = mujoco.mjtIntegrator.mjINT_RK4
    model.opt.gravity[:] = (0.0, 0.0, -9.81)
    model.dof_damping[:] = settings.joint_damping
    return model


class ObstaclePandaPlant:
    """The Panda in the board scene, stepped by MuJoCo with joint torques (clipped to the URDF
    effort limits). ``touched`` latches at the first MuJoCo step with an arm-board contact."""

    nx, nu = NX, NQ

    def __init__(self, settings: FrankaObstacleSettings, urdf_path: str | Path | None = None):
        import mujoco  # noqa: PLC0415

        self._mj = mujoco
        self.model = obstacle_scene_model(settings, urdf_path)
        self.data = mujoco.MjData(self.model)
        self.u_max = np.asarray(_core.PandaDynamics(str(urdf_path or default_urdf_path())).effort_limit, float)
        self.touched = False
        self.reset(np.concatenate([Q_READY, np.zeros(NQ)]))

    @property
    def x(self) -> np.ndarray:
        return np.concatenate([self.data.qpos, self.data.qvel])

    @property
    def t(self) -> float:
        return float(self.data.time)

    def reset(self, x0, t0: float = 0.0) -> None:
        x0 = np.asarray(x0, float)
        if x0.shape != (NX,) or not np.all(np.isfinite(x0)):
            raise ValueError(f"x0 must be a finite vector of size {NX}")
        self._mj.mj_resetData(self.model, self.data)
        self.data.qpos[:], self.data.qvel[:], self.data.time = x0[:NQ], x0[NQ:], float(t0)
        self._t_target = float(t0)
        self._mj.mj_forward(self.model, self.data)
        self.touched = self.data.ncon > 0

    def step(self, u, duration: float) -> np.ndarray:
        u = np.asarray(u, float)
        if u.shape != (NQ,) or not np.all(np.isfinite(u)):
            raise ValueError(f"command must be a finite vector of size {NQ}")
        self.data.qfrc_applied[:] = np.clip(u, -self.u_max, self.u_max)
        self._t_target += duration
        n = int(np.floor((self._t_target - self.data.time) / self.model.opt.timestep + 1e-9))
        for _ in range(n):
            self._mj.mj_step(self.model, self.data)
            if self.data.ncon > 0:
                self.touched = True
        x = self.x
        if not np.all(np.isfinite(x)):
            raise ValueError("MuJoCo state became non-finite")
        return x

    def sphere_centers(self) -> np.ndarray:
        """World centres of the arm spheres (for the agreement test)."""
        self._mj.mj_kinematics(self.model, self.data)
        return np.array([self.data.geom(f"arm_sphere_{i}").xpos.copy() for i in range(len(ARM_SPHERES))])


# -- controllers and episodes ----------------------------------------------------------------------
@dataclass
class ReachController:
    """A receding-horizon SLQ on the Panda for one target: the TCP distance cost of the reach MPC
    (:mod:`dmpc_core.control.panda_reach` weights) and, for the known-geometry anchor, the board
    distance cost and a via point.

    The known-geometry anchor knows the board's geometry twice: :class:`BoardDistanceCost` keeps
    the arm ``margin`` away from it, and while the straight TCP segment to the target is blocked
    the TCP goal is a via point above the board's top edge (``via_height`` over it, on the
    segment's crossing of the board plane) -- the TCP distance alone has a local minimum in front
    of the board, which a 1 s horizon cannot see past.
    """

    mpc: object
    goal_costs: tuple
    target: np.ndarray
    via: Optional[np.ndarray] = None

    def update(self, t, x, task: "FrankaObstacleTask"):
        if self.via is not None:
            p = task.tcp(x)
            # the via point is dropped for good once the TCP is above the board's top or past its plane
            s = task.settings
            top = s.box_center[2] + s.box_half[2]
            if p[2] > top + 0.05 or np.sign(p[1] - s.box_center[1]) == np.sign(self.target[1] - s.box_center[1]):
                self.via = None
                for c in self.goal_costs:
                    c.set_reference(self.target)
        return self.mpc.update(t, x)

    def control(self, t, x):
        return self.mpc.control(t, x)


def make_reach_controller(task: FrankaObstacleTask, x0, target, known_geometry: bool, horizon: int = 100,
                          dt: float = 0.01, board_weight: float = 1e4, margin: float = 0.03,
                          via_height: float = 0.12, initial_iterations: int = 20) -> ReachController:
    """The obstacle-blind reach MPC (``known_geometry=False``: TCP distance and regularisation
    only, i.e. the actor's problem without a critic) or the known-geometry anchor (see
    :class:`ReachController`), warm-started from gravity compensation at ``x0``."""
    from dmpc_core.control.panda_reach import PandaCostSettings  # noqa: PLC0415
    from dmpc_core.mpc import MpcController, MpcSettings  # noqa: PLC0415

    c = PandaCostSettings()
    model = task.model
    q0 = np.asarray(x0, float)[:NQ]
    x_ref = np.concatenate([q0, np.zeros(NQ)])
    u_ref = np.asarray(model.gravity(q0), float)
    target = np.asarray(target, float)
    goal = target
    via = None
    s = task.settings
    p0 = task.tcp(x0)
    if known_geometry and task.blocks_straight_line(p0, target):
        # crossing of the board plane y = box y on the straight segment, lifted over the top edge
        lam = (s.box_center[1] - p0[1]) / (target[1] - p0[1])
        via = p0 + lam * (target - p0)
        via[2] = s.box_center[2] + s.box_half[2] + via_height
        goal = via
    running = _core.SumCost(NX, NQ)
    running.add("reg", _core.QuadraticCost(np.diag(np.r_[np.full(NQ, c.w_q), np.full(NQ, c.w_v)]), c.w_u * np.eye(NQ), x_ref, u_ref))
    g_run = _core.FrameTranslationCost(model, TCP_FRAME, goal, c.w_goal)
    running.add("goal", g_run)
    terminal = _core.SumCost(NX, NQ)
    terminal.add("reg", _core.QuadraticCost(np.diag(np.r_[np.full(NQ, c.w_q_terminal), np.full(NQ, c.w_v_terminal)]),
                                            np.zeros((NQ, NQ)), x_ref, np.zeros(NQ)))
    g_term = _core.FrameTranslationCost(model, TCP_FRAME, goal, c.w_goal_terminal)
    terminal.add("goal", g_term)
    if known_geometry:
        board = BoardDistanceCost(task.spheres, s.box_center, s.box_half, board_weight, margin)
        running.add("board", board)
        terminal.add("board", board)
    problem = _core.Problem(model, running, terminal, horizon, dt, "semi_implicit_euler")
    ms = MpcSettings(horizon=horizon, dt=dt, integrator="semi_implicit_euler", mpc_rate=1.0 / s.control_dt,
                     tracking_rate=s.tracking_substeps / s.control_dt, iterations_per_update=1,
                     initial_iterations=initial_iterations)
    omega = 10.0
    M = np.asarray(model.mass_matrix(q0), float)
    pol = _core.Policy()
    pol.t0, pol.dt = 0.0, dt
    pol.u_ff = np.tile(u_ref, (horizon, 1))
    pol.x_nom = np.tile(x_ref, (horizon + 1, 1))
    pol.K = [-np.hstack([omega ** 2 * M, 2.0 * omega * M])] * horizon
    ctrl = ReachController(MpcController(problem, ms, initial_policy=pol), (g_run, g_term), target, via)
    ctrl.problem = problem
    return ctrl


@dataclass
class EpisodeResult:
    success: bool
    touched: bool
    final_distance: float
    cost: float
    steps: int
    tcp: np.ndarray      # (steps + 1, 3) TCP path
    xs: np.ndarray       # (steps + 1, 14)
    us: np.ndarray       # (steps, 7) first command of each step


def run_episode(task: FrankaObstacleTask, plant: ObstaclePandaPlant, controller, x0, target) -> EpisodeResult:
    """One episode on the board scene: ``controller.update(t, x, task)`` every control step,
    ``controller.control(t, x)`` at each of the ``tracking_substeps``; ends at T or at the first
    contact (cost + ``contact_penalty``)."""
    s = task.settings
    plant.reset(np.asarray(x0, float))
    n_steps = int(round(s.episode_time / s.control_dt))
    h = s.control_dt / s.tracking_substeps
    xs, us, cost = [plant.x.copy()], [], 0.0
    for k in range(n_steps):
        t, x = plant.t, plant.x.copy()
        cost += task.step_cost(x, target)
        controller.update(t, x, task)
        for j in range(s.tracking_substeps):
            u = np.asarray(controller.control(plant.t, plant.x), float)
            if not np.all(np.isfinite(u)):
                u = np.asarray(task.model.gravity(plant.x[:NQ]), float)
            if j == 0:
                us.append(u)
            plant.step(u, h)
        xs.append(plant.x.copy())
        if plant.touched:
            cost += s.contact_penalty
            break
    xs = np.array(xs)
    tcp = np.array([task.tcp(x) for x in xs])
    dist = float(np.linalg.norm(tcp[-1] - np.asarray(target, float)))
    return EpisodeResult(task.success(xs[-1], target, plant.touched), plant.touched, dist, cost, len(us), tcp, xs, np.array(us))
