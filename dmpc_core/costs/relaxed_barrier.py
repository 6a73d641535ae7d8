"""Relaxed log-barrier penalty for box limits on chosen states and inputs (OCS2-style soft
inequality constraints; SLQ has no hard bounds).

For a constraint margin h >= 0 (h = limit - z and h = limit + z for |z| <= limit):

    B(h) = -mu ln h                                   for h >= delta,
    B(h) = mu [ 1/2 ((h - 2 delta) / delta)^2 - 1/2 - ln delta ]   for h < delta,

C^2 at h = delta (value -mu ln delta, slope -mu/delta, curvature mu/delta^2 on both sides) and
quadratic, hence finite and convex, beyond the bound. The cost is
l(x, u) = sum over bounded entries z of [B(limit - z) + B(limit + z) - 2 B(limit)]: the constant
makes l = 0 at z = 0, and l >= 0 since B(limit - z) + B(limit + z) is minimal at z = 0 (B convex).
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from dmpc_core import _core


def relaxed_log_barrier(h, mu: float, delta: float):
    """Value, first and second derivative of B(h) (see module doc); broadcasts over h."""
    h = np.asarray(h, dtype=float)
    inner = h >= delta
    hs = np.where(inner, h, 1.0)
    r = (h - 2.0 * delta) / delta
    v = np.where(inner, -mu * np.log(hs), mu * (0.5 * r * r - 0.5 - np.log(delta)))
    d1 = np.where(inner, -mu / hs, mu * r / delta)
    d2 = np.where(inner, mu / (hs * hs), mu / (delta * delta))
    return v, d1, d2


class BoxBarrierCost(_core.CostModel):
    """Relaxed log barrier on |x[i]| <= x_limit[i] for i in ``state_indices`` and on
    |u[j]| <= u_limit[j] for j in ``input_indices`` (see module doc).

    Args:
        nx, nu: dimensions.
        state_indices / state_limits: bounded state entries and their limits (> 0).
        input_indices / input_limits: bounded inputs and their limits (> 0).
        mu: barrier weight; delta: relaxation margin in (0, limit).
    """

    def __init__(self, nx: int, nu: int, state_indices: Sequence[int] = (), state_limits: Sequence[float] = (),
                 input_indices: Sequence[int] = (), input_limits: Sequence[float] = (),
                 mu: float = 0.1, delta: float = 0.05):
        super().__init__(nx, nu)
        self.sx, self.lx_lim = np.asarray(state_indices, int), np.asarray(state_limits, float)
        self.su, self.lu_lim = np.asarray(input_indices, int), np.asarray(input_limits, float)
        if self.sx.shape != self.lx_lim.shape or self.su.shape != self.lu_lim.shape:
            raise ValueError("each bounded index needs one limit")
        if np.any(self.sx < 0) or np.any(self.sx >= nx) or np.any(self.su < 0) or np.any(self.su >= nu):
            raise ValueError(f"state indices must be in [0, {nx}), input indices in [0, {nu})")
        if not (mu > 0 and delta > 0) or np.any(self.lx_lim <= delta) or np.any(self.lu_lim <= delta):
            raise ValueError("mu, delta must be > 0 and every limit > delta")
        self.mu, self.delta = float(mu), float(delta)

        self._x = list(zip(self.sx.tolist(), self.lx_lim.tolist()))
        self._u = list(zip(self.su.tolist(), self.lu_lim.tolist()))
        self._b0 = {lim: _barrier(lim, self.mu, self.delta)[0] for _, lim in self._x + self._u}

    # scalar loops: this is called per node and per line-search step from inside SLQ, where
    # numpy's per-call overhead on 2-3 entries dominated (~10x slower)
    def _value(self, pairs, z):
        mu, de, b0 = self.mu, self.delta, self._b0
        v = 0.0
        for i, lim in pairs:
            v += _barrier(lim - z[i], mu, de)[0] + _barrier(lim + z[i], mu, de)[0] - 2.0 * b0[lim]
        return v

    def calc(self, data, t, x, u):
        data.value = self._value(self._x, x.tolist()) + self._value(self._u, u.tolist())

    def calc_diff(self, data, t, x, u):
        mu, de, b0 = self.mu, self.delta, self._b0
        lx = np.zeros(self.nx)
        lxx = np.zeros((self.nx, self.nx))
        lu = np.zeros(self.nu)
        luu = np.zeros((self.nu, self.nu))
        v = 0.0
        for pairs, z, g, H in ((self._x, x.tolist(), lx, lxx), (self._u, u.tolist(), lu, luu)):
            for i, lim in pairs:
                vp, dp, ddp = _barrier(lim - z[i], mu, de)
                vm, dm, ddm = _barrier(lim + z[i], mu, de)
                v += vp + vm - 2.0 * b0[lim]
                g[i] += dm - dp
                H[i, i] += ddp + ddm
        data.value = v
        data.lx, data.lxx, data.lu, data.luu = lx, lxx, lu, luu
        data.lux = np.zeros((self.nu, self.nx))


def _barrier(h: float, mu: float, delta: float):
    """Scalar B(h), B'(h), B''(h) (same as relaxed_log_barrier)."""
    if h >= delta:
        return -mu * math.log(h), -mu / h, mu / (h * h)
    r = (h - 2.0 * delta) / delta
    return mu * (0.5 * r * r - 0.5 - math.log(delta)), mu * r / delta, mu / (delta * delta)
