"""Batched PyTorch implementation of the Ballbot dynamics (same model as the C++
``dmpc_core._core.BallbotDynamics``, see docs/ballbot_model.md), for sampling-based MPC
(pytorch_mppi) on CPU or GPU.

Closed form, written independently of the generated C code (Jacobian / Newton-Euler form):

    M = (m_b + I_b/r_b^2) E^T E + m_B J_c^T J_c + J_w^T I_B J_w
    h = m_B J_c^T (Jdot_c v + g e_z) + J_w^T (I_B Jdot_w v + w x I_B w)
    S^T = (r_b / r_w) (R^T W_ball - J_w)^T N^T,      a = M^{-1} (S^T tau - h)

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


def _rot_z(c, s, one, zero):
    return torch.stack([torch.stack([c, -s, zero], -1), torch.stack([s, c, zero], -1),
                        torch.stack([zero, zero, one], -1)], -2)


def _rot_y(c, s, one, zero):
    return torch.stack([torch.stack([c, zero, s], -1), torch.stack([zero, one, zero], -1),
                        torch.stack([-s, zero, c], -1)], -2)


def _rot_x(c, s, one, zero):
    return torch.stack([torch.stack([one, zero, zero], -1), torch.stack([zero, c, -s], -1),
                        torch.stack([zero, s, c], -1)], -2)


def _mm(A: Tensor, B: Tensor) -> Tensor:
    """Batched product of tiny matrices by broadcasting (torch's bmm is slow for 3 x 3 blocks)."""
    return (A.unsqueeze(-1) * B.unsqueeze(-3)).sum(-2)


def _mv(A: Tensor, x: Tensor) -> Tensor:
    """Batched matrix-vector product A (..., m, n) x (..., n) -> (..., m)."""
    return (A * x.unsqueeze(-2)).sum(-1)


def _t(A: Tensor) -> Tensor:
    return A.transpose(-1, -2)


def spd_solve5(M: Tensor, b: Tensor) -> Tensor:
    """Solve M x = b for a batch of 5 x 5 SPD matrices, M (..., 5, 5), b (..., 5).

    Unrolled Cholesky with element-wise tensor operations: much faster than LAPACK-backed
    torch.linalg.cholesky on large batches of tiny matrices (one kernel per entry, not per matrix).
    """
    n = 5
    L = [[None] * n for _ in range(n)]
    for j in range(n):
        d = M[..., j, j]
        for k in range(j):
            d = d - L[j][k] * L[j][k]
        L[j][j] = torch.sqrt(d)
        for i in range(j + 1, n):
            s = M[..., i, j]
            for k in range(j):
                s = s - L[i][k] * L[j][k]
            L[i][j] = s / L[j][j]
    y = [None] * n
    for i in range(n):
        s = b[..., i]
        for k in range(i):
            s = s - L[i][k] * y[k]
        y[i] = s / L[i][i]
    x = [None] * n
    for i in reversed(range(n)):
        s = y[i]
        for k in range(i + 1, n):
            s = s - L[k][i] * x[k]
        x[i] = s / L[i][i]
    return torch.stack(x, -1)


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
        kw = dict(dtype=dtype, device=self.device)
        p = params
        self.r_b, self.r_w, self.g, self.m_B = p.ball_radius, p.wheel_radius, p.gravity, p.base_mass
        self.m_eff = p.ball_mass + p.ball_inertia / p.ball_radius**2
        self.com = torch.tensor(p.base_com, **kw)
        self.inertia = torch.tensor(p.base_inertia, **kw)
        ca, sa = math.cos(p.wheel_zenith_angle), math.sin(p.wheel_zenith_angle)
        # rows n_i = d_i x t_i
        self.N = torch.tensor([[-ca * math.cos(b), -ca * math.sin(b), sa] for b in p.wheel_azimuths], **kw)
        w_ball = torch.zeros(3, 5, **kw)  # omega_ball (world) = W_ball v
        w_ball[0, 1] = -1.0 / p.ball_radius
        w_ball[1, 0] = 1.0 / p.ball_radius
        self.W_ball = w_ball

    nx, nu, nq = 10, 3, 5

    # -- building blocks ------------------------------------------------------------------
    def _terms(self, q: Tensor, v: Tensor):
        """M (..., 5, 5), h (..., 5), S^T (..., 5, 3)."""
        one, zero = torch.ones_like(q[..., 0]), torch.zeros_like(q[..., 0])
        cz, sz = torch.cos(q[..., 2]), torch.sin(q[..., 2])
        cy, sy = torch.cos(q[..., 3]), torch.sin(q[..., 3])
        cx, sx = torch.cos(q[..., 4]), torch.sin(q[..., 4])
        Rz, Ry, Rx = _rot_z(cz, sz, one, zero), _rot_y(cy, sy, one, zero), _rot_x(cx, sx, one, zero)
        # first and second derivatives of the elementary rotations w.r.t. their angle
        dRz, dRy, dRx = _rot_z(-sz, cz, zero, zero), _rot_y(-sy, cy, zero, zero), _rot_x(-sx, cx, zero, zero)
        ddRz, ddRy, ddRx = _rot_z(-cz, -sz, zero, zero), _rot_y(-cy, -sy, zero, zero), _rot_x(-cx, -sx, zero, zero)
        RyRx, dRyRx, RydRx = _mm(Ry, Rx), _mm(dRy, Rx), _mm(Ry, dRx)
        R = _mm(Rz, RyRx)
        c = self.com
        # COM Jacobian J_c (..., 3, 5)
        ex = torch.stack([one, zero, zero], -1)
        ey = torch.stack([zero, one, zero], -1)
        Jc = torch.stack([ex, ey, _mv(_mm(dRz, RyRx), c), _mv(_mm(Rz, dRyRx), c), _mv(_mm(Rz, RydRx), c)], -1)
        # angular velocity Jacobian (base frame) J_w (..., 3, 5)
        Jw = torch.stack([
            torch.stack([zero, zero, -sy, zero, one], -1),
            torch.stack([zero, zero, sx * cy, cx, zero], -1),
            torch.stack([zero, zero, cx * cy, -sx, zero], -1)], -2)
        I = self.inertia
        M = self.m_B * _mm(_t(Jc), Jc) + _mm(_t(Jw), I[..., :, None] * Jw)
        M[..., 0, 0] += self.m_eff
        M[..., 1, 1] += self.m_eff
        # Jdot_c v = (d^2 R / dt^2 at zero angular acceleration) c
        dz, dy, dx = v[..., 2, None, None], v[..., 3, None, None], v[..., 4, None, None]
        Rdd = (_mm(ddRz, RyRx) * dz**2 + _mm(Rz, _mm(ddRy, Rx)) * dy**2 + _mm(Rz, _mm(Ry, ddRx)) * dx**2
               + 2.0 * (_mm(dRz, dRyRx) * (dz * dy) + _mm(dRz, RydRx) * (dz * dx)
                        + _mm(Rz, _mm(dRy, dRx)) * (dy * dx)))
        acc_c = _mv(Rdd, c)
        # Jdot_w v
        vz, vy, vx = v[..., 2], v[..., 3], v[..., 4]
        acc_w = torch.stack([
            -cy * vy * vz,
            -sx * vx * vy + cx * cy * vx * vz - sx * sy * vy * vz,
            -cx * vx * vy - sx * cy * vx * vz - cx * sy * vy * vz], -1)
        w = _mv(Jw, v)
        Iw = I * w
        ez = torch.stack([zero, zero, one], -1)
        h = (self.m_B * _mv(_t(Jc), acc_c + self.g * ez)
             + _mv(_t(Jw), I * acc_w + torch.linalg.cross(w, Iw)))
        # wheel rates w = S v, S = (r_b / r_w) N (R^T W_ball - J_w)
        S = (self.r_b / self.r_w) * _mm(self.N, _mm(_t(R), self.W_ball) - Jw)
        return M, h, _t(S)

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
        q, v = x[..., :5], x[..., 5:]
        M, h, ST = self._terms(q, v)
        rhs = _mv(ST, u) - h
        a = spd_solve5(M, rhs)
        return torch.cat([v.expand_as(a), a], -1)

    __call__ = xdot

    def mass_matrix(self, q: Tensor) -> Tensor:
        """M(q), q (..., 5) -> (..., 5, 5)."""
        q = torch.as_tensor(q, dtype=self.dtype, device=self.device)
        return self._terms(q, torch.zeros_like(q))[0]

    def bias(self, q: Tensor, v: Tensor) -> Tensor:
        """h(q, v), (..., 5) -> (..., 5)."""
        q = torch.as_tensor(q, dtype=self.dtype, device=self.device)
        v = torch.as_tensor(v, dtype=self.dtype, device=self.device)
        return self._terms(q, v)[1]

    def actuation_map(self, q: Tensor) -> Tensor:
        """S^T(q), q (..., 5) -> (..., 5, 3)."""
        q = torch.as_tensor(q, dtype=self.dtype, device=self.device)
        return self._terms(q, torch.zeros_like(q))[2]

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
