"""Batched PyTorch implementation of the Ballbot dynamics (same model as the C++
``dmpc_core._core.BallbotDynamics``, see docs/ballbot_model.md), for sampling-based MPC
(pytorch_mppi) on CPU or GPU.

Closed form, written independently of the generated C code (Jacobian / Newton-Euler form),
evaluated entry by entry (one element-wise kernel per scalar operation, constant zeros skipped,
unrolled 5 x 5 Cholesky): about 600 kernels per xdot, so the cost per call is roughly constant
up to batches of a few thousand states on CPU.

    M = (m_b + I_b/r_b^2) E^T E + m_B J_c^T J_c + J_w^T I_B J_w
    h = m_B J_c^T (Jdot_c v + g e_z) + J_w^T (I_B Jdot_w v + w x I_B w)
    S^T = (r_b / r_w) (R^T W_ball - J_w)^T N^T,      a = M^{-1} (S^T tau - h)

(W_ball maps v to the ball's angular velocity, N has rows n_i = d_i x t_i.)

with x = [px, py, yaw, pitch, roll, rates] (..., 10) and tau the three wheel torques (..., 3).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import torch

Tensor = torch.Tensor


@dataclass
class BallbotTorchParameters:
    """Same fields and defaults as the C++ BallbotParameters."""

    ball_radius: float = 0.125
    ball_mass: float = 2.65
    ball_inertia: float = 0.0166
    base_mass: float = 18.66
    base_com: tuple[float, float, float] = (0.003, 0.0033, 0.1956)
    base_inertia: tuple[float, float, float] = (1.80, 1.8037, 0.1667)
    wheel_radius: float = 0.064
    wheel_zenith_angle: float = math.pi / 4.0
    gravity: float = 9.81
    wheel_azimuths: tuple[float, float, float] = field(
        default=(0.0, 2.0 * math.pi / 3.0, 4.0 * math.pi / 3.0), repr=False)

    @classmethod
    def from_core(cls, params) -> "BallbotTorchParameters":
        """Copy a dmpc_core._core.BallbotParameters (or any object with the same fields)."""
        return cls(ball_radius=params.ball_radius, ball_mass=params.ball_mass,
                   ball_inertia=params.ball_inertia, base_mass=params.base_mass,
                   base_com=tuple(float(c) for c in params.base_com),
                   base_inertia=tuple(float(i) for i in params.base_inertia),
                   wheel_radius=params.wheel_radius, wheel_zenith_angle=params.wheel_zenith_angle,
                   gravity=params.gravity)


# ---- entry-wise algebra ---------------------------------------------------------------------
# Small matrices are nested lists whose entries are Python floats (constants, zeros are skipped)
# or tensors of the batch shape. Every operation is one element-wise kernel over the batch: far
# faster than batched matmul / LAPACK on 3 x 3 and 5 x 5 blocks.

def _is_zero(a) -> bool:
    return isinstance(a, float) and a == 0.0


def _mul(a, b):
    if _is_zero(a) or _is_zero(b):
        return 0.0
    if isinstance(a, float) and a == 1.0:
        return b
    if isinstance(b, float) and b == 1.0:
        return a
    return a * b


def _add(a, b):
    if _is_zero(a):
        return b
    if _is_zero(b):
        return a
    return a + b


def _sub(a, b):
    if _is_zero(b):
        return a
    if _is_zero(a):
        return -b
    return a - b


def _dot(xs, ys):
    out = 0.0
    for x, y in zip(xs, ys):
        out = _add(out, _mul(x, y))
    return out


def _mv(A, x):
    return [_dot(row, x) for row in A]


def _tmv(A, x):
    """A^T x."""
    return [_dot([row[j] for row in A], x) for j in range(len(A[0]))]


def _rot_z(c, s):
    return [[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]


def _rot_y(c, s):
    return [[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]]


def _rot_x(c, s):
    return [[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]]


def _d_rot_z(c, s):  # d Rz / d angle
    return [[-s, -c, 0.0], [c, -s, 0.0], [0.0, 0.0, 0.0]]


def _d_rot_y(c, s):
    return [[-s, 0.0, c], [0.0, 0.0, 0.0], [-c, 0.0, -s]]


def _d_rot_x(c, s):
    return [[0.0, 0.0, 0.0], [0.0, -s, -c], [0.0, c, -s]]


def _dd_rot_z(c, s):  # d^2 Rz / d angle^2
    return [[-c, s, 0.0], [-s, -c, 0.0], [0.0, 0.0, 0.0]]


def _dd_rot_y(c, s):
    return [[-c, 0.0, -s], [0.0, 0.0, 0.0], [s, 0.0, -c]]


def _dd_rot_x(c, s):
    return [[0.0, 0.0, 0.0], [0.0, -c, s], [0.0, -s, -c]]


def _clean(a: float) -> float:
    """Exact zero for round-off zeros (cos 90 deg), so that they are skipped."""
    return 0.0 if abs(a) < 1e-15 else float(a)


def _rows(A, B):
    """A @ B for nested lists (returns rows)."""
    return [[_dot(A[i], [B[k][j] for k in range(len(B))]) for j in range(len(B[0]))] for i in range(len(A))]


def _spd_solve5(M, b):
    """Solve M x = b for a batch of 5 x 5 SPD matrices given entry-wise (M[i][j], b[i]: floats
    or tensors). Unrolled Cholesky M = L L^T, then forward and backward substitution; exact
    zeros of M (constant floats) are skipped."""
    n = 5
    L = [[0.0] * n for _ in range(n)]
    inv = [None] * n
    for j in range(n):
        d = M[j][j]
        for k in range(j):
            d = _sub(d, _mul(L[j][k], L[j][k]))
        inv[j] = torch.rsqrt(d) if isinstance(d, torch.Tensor) else 1.0 / math.sqrt(d)
        L[j][j] = _mul(d, inv[j])
        for i in range(j + 1, n):
            s = M[i][j]
            for k in range(j):
                s = _sub(s, _mul(L[i][k], L[j][k]))
            L[i][j] = _mul(s, inv[j])
    y = [None] * n
    for i in range(n):
        s = b[i]
        for k in range(i):
            s = _sub(s, _mul(L[i][k], y[k]))
        y[i] = _mul(s, inv[i])
    x = [None] * n
    for i in reversed(range(n)):
        s = y[i]
        for k in range(i + 1, n):
            s = _sub(s, _mul(L[k][i], x[k]))
        x[i] = _mul(s, inv[i])
    return x


class BallbotTorch:
    """Batched Ballbot dynamics xdot = f(x) + g(x) tau.

    Args:
        params: BallbotTorchParameters, a dmpc_core._core.BallbotParameters, or None (defaults).
        dtype: torch dtype of the constants (inputs are cast to it).
        device: torch device.
    """

    def __init__(self, params=None, dtype: torch.dtype = torch.float64, device="cpu"):
        if params is None:
            params = BallbotTorchParameters()
        elif not isinstance(params, BallbotTorchParameters):
            params = BallbotTorchParameters.from_core(params)
        self.params = params
        self.dtype, self.device = dtype, torch.device(device)
        p = params
        self.r_b, self.r_w, self.g, self.m_B = p.ball_radius, p.wheel_radius, p.gravity, p.base_mass
        self.m_eff = p.ball_mass + p.ball_inertia / p.ball_radius**2
        self.com = tuple(float(c) for c in p.base_com)
        self.inertia = tuple(float(i) for i in p.base_inertia)
        ca, sa = math.cos(p.wheel_zenith_angle), math.sin(p.wheel_zenith_angle)
        # rows n_i = d_i x t_i
        self.N = [[_clean(-ca * math.cos(b)), _clean(-ca * math.sin(b)), _clean(sa)] for b in p.wheel_azimuths]

    nx, nu, nq = 10, 3, 5

    # -- building blocks ------------------------------------------------------------------
    def _terms(self, q: Tensor, v: Tensor):
        """Entry-wise M (5 x 5 lists), h (5), S^T (5 x 3) for q, v of shape (..., 5)."""
        cz, sz = torch.cos(q[..., 2]), torch.sin(q[..., 2])
        cy, sy = torch.cos(q[..., 3]), torch.sin(q[..., 3])
        cx, sx = torch.cos(q[..., 4]), torch.sin(q[..., 4])
        Rz, Ry, Rx = _rot_z(cz, sz), _rot_y(cy, sy), _rot_x(cx, sx)
        dRz, dRy, dRx = _d_rot_z(cz, sz), _d_rot_y(cy, sy), _d_rot_x(cx, sx)
        c = list(self.com)
        # COM Jacobian columns for yaw, pitch, roll: dR/dq_i c (px, py columns are e_x, e_y)
        xc, dxc, ddxc = _mv(Rx, c), _mv(dRx, c), _mv(_dd_rot_x(cx, sx), c)
        yxc, dyxc, ydxc = _mv(Ry, xc), _mv(dRy, xc), _mv(Ry, dxc)
        jc_yaw, jc_pitch, jc_roll = _mv(dRz, yxc), _mv(Rz, dyxc), _mv(Rz, ydxc)
        Jc = [[1.0, 0.0, jc_yaw[k], jc_pitch[k], jc_roll[k]] if k == 0 else
              [0.0, 1.0, jc_yaw[k], jc_pitch[k], jc_roll[k]] if k == 1 else
              [0.0, 0.0, jc_yaw[k], jc_pitch[k], jc_roll[k]] for k in range(3)]
        # angular velocity Jacobian (base frame)
        Jw = [[0.0, 0.0, -sy, 0.0, 1.0], [0.0, 0.0, sx * cy, cx, 0.0], [0.0, 0.0, cx * cy, -sx, 0.0]]
        I = self.inertia
        IJw = [[_mul(I[k], e) for e in Jw[k]] for k in range(3)]
        M = [[None] * 5 for _ in range(5)]
        for i in range(5):
            for j in range(i, 5):
                m_ij = _add(_mul(self.m_B, _dot([Jc[k][i] for k in range(3)], [Jc[k][j] for k in range(3)])),
                            _dot([Jw[k][i] for k in range(3)], [IJw[k][j] for k in range(3)]))
                if i == j and i < 2:
                    m_ij = _add(m_ij, self.m_eff)
                M[i][j] = M[j][i] = m_ij
        # Jdot_c v = sum_ij d^2(R c)/dq_i dq_j v_i v_j over the three angles
        vz, vy, vx = v[..., 2], v[..., 3], v[..., 4]
        ddRz, ddRy = _dd_rot_z(cz, sz), _dd_rot_y(cy, sy)
        terms = [
            (_mv(ddRz, yxc), vz * vz), (_mv(Rz, _mv(ddRy, xc)), vy * vy), (_mv(Rz, _mv(Ry, ddxc)), vx * vx),
            (_mv(dRz, dyxc), 2.0 * vz * vy), (_mv(dRz, ydxc), 2.0 * vz * vx), (_mv(Rz, _mv(dRy, dxc)), 2.0 * vy * vx),
        ]
        acc_c = [0.0, 0.0, 0.0]
        for vec, scale in terms:
            acc_c = [_add(acc_c[k], _mul(vec[k], scale)) for k in range(3)]
        acc_c[2] = _add(acc_c[2], self.g)  # + g e_z
        # Jdot_w v and the gyroscopic term
        acc_w = [-cy * vy * vz,
                 -sx * vx * vy + cx * cy * vx * vz - sx * sy * vy * vz,
                 -cx * vx * vy - sx * cy * vx * vz - cx * sy * vy * vz]
        w = _mv(Jw, [v[..., k] for k in range(5)])
        Iw = [I[k] * w[k] for k in range(3)]
        gyro = [w[1] * Iw[2] - w[2] * Iw[1], w[2] * Iw[0] - w[0] * Iw[2], w[0] * Iw[1] - w[1] * Iw[0]]
        rot = [_add(_mul(I[k], acc_w[k]), gyro[k]) for k in range(3)]
        hc, hw = _tmv(Jc, acc_c), _tmv(Jw, rot)
        h = [_add(_mul(self.m_B, hc[i]), hw[i]) for i in range(5)]
        # S = (r_b / r_w) N (R^T W_ball - J_w); R^T W_ball has columns R[1,:]/r_b, -R[0,:]/r_b
        R = [_mv(Rz, [row[j] for row in _rows(Ry, Rx)]) for j in range(3)]  # columns of R
        R = [[R[j][i] for j in range(3)] for i in range(3)]                  # rows
        inv_rb = 1.0 / self.r_b
        A = [[_mul(inv_rb, R[1][k]), _mul(-inv_rb, R[0][k]), 0.0, 0.0, 0.0] for k in range(3)]
        A = [[_sub(A[k][j], Jw[k][j]) for j in range(5)] for k in range(3)]
        k_w = self.r_b / self.r_w
        S = [[_mul(k_w, _dot(n_i, [A[k][j] for k in range(3)])) for j in range(5)] for n_i in self.N]
        ST = [[S[i][j] for i in range(3)] for j in range(5)]
        return M, h, ST

    def _to_tensor(self, M, batch_shape):
        """Stack nested lists of entries (floats or tensors) into a tensor (..., rows[, cols])."""
        def full(e):
            if isinstance(e, float):
                return torch.full(batch_shape, e, dtype=self.dtype, device=self.device)
            return e.expand(batch_shape)
        if isinstance(M[0], list):
            return torch.stack([torch.stack([full(e) for e in row], -1) for row in M], -2)
        return torch.stack([full(e) for e in M], -1)

    def _split(self, x: Tensor, u: Tensor | None = None):
        x = torch.as_tensor(x, dtype=self.dtype, device=self.device)
        if x.shape[-1:] != (10,):
            raise ValueError(f"x has trailing size {tuple(x.shape[-1:])}, expected 10")
        if u is not None:
            u = torch.as_tensor(u, dtype=self.dtype, device=self.device)
            if u.shape[-1:] != (3,):
                raise ValueError(f"u has trailing size {tuple(u.shape[-1:])}, expected 3")
        return x, u

    # -- public API -----------------------------------------------------------------------
    def xdot(self, x: Tensor, u: Tensor) -> Tensor:
        """xdot = [v; M^{-1}(S^T u - h)]; x (..., 10), u (..., 3) (broadcast) -> (..., 10)."""
        x, u = self._split(x, u)
        batch = torch.broadcast_shapes(x.shape[:-1], u.shape[:-1])
        q, v = x[..., :5], x[..., 5:]
        M, h, ST = self._terms(q, v)
        us = [u[..., k] for k in range(3)]
        rhs = [_sub(_dot(ST[i], us), h[i]) for i in range(5)]
        a = self._to_tensor(_spd_solve5(M, rhs), batch)
        return torch.cat([v.expand(batch + (5,)), a], -1)

    __call__ = xdot

    def mass_matrix(self, q: Tensor) -> Tensor:
        """M(q), q (..., 5) -> (..., 5, 5)."""
        q = torch.as_tensor(q, dtype=self.dtype, device=self.device)
        return self._to_tensor(self._terms(q, torch.zeros_like(q))[0], q.shape[:-1])

    def bias(self, q: Tensor, v: Tensor) -> Tensor:
        """h(q, v), (..., 5) -> (..., 5)."""
        q = torch.as_tensor(q, dtype=self.dtype, device=self.device)
        v = torch.as_tensor(v, dtype=self.dtype, device=self.device)
        return self._to_tensor(self._terms(q, v)[1], torch.broadcast_shapes(q.shape[:-1], v.shape[:-1]))

    def actuation_map(self, q: Tensor) -> Tensor:
        """S^T(q), q (..., 5) -> (..., 5, 3)."""
        q = torch.as_tensor(q, dtype=self.dtype, device=self.device)
        return self._to_tensor(self._terms(q, torch.zeros_like(q))[2], q.shape[:-1])

    def step(self, x: Tensor, u: Tensor, dt: float, integrator: str = "rk4") -> Tensor:
        """One step of length dt under constant u ('euler', 'semi_implicit_euler' or 'rk4')."""
        x, u = self._split(x, u)
        if integrator == "euler":
            return x + dt * self.xdot(x, u)
        if integrator == "semi_implicit_euler":
            v_next = x[..., 5:] + dt * self.xdot(x, u)[..., 5:]
            return torch.cat([x[..., :5] + dt * v_next, v_next], -1)
        if integrator == "rk4":
            k1 = self.xdot(x, u)
            k2 = self.xdot(x + 0.5 * dt * k1, u)
            k3 = self.xdot(x + 0.5 * dt * k2, u)
            k4 = self.xdot(x + dt * k3, u)
            return x + dt / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
        raise ValueError(f"unknown integrator {integrator!r}")

    def mppi_dynamics(self, dt: float, integrator: str = "rk4") -> Callable[[Tensor, Tensor], Tensor]:
        """A pytorch_mppi-style dynamics(state (K, 10), action (K, 3)) -> next state (K, 10)."""
        return lambda state, action: self.step(state, action, dt, integrator)
