"""The affine tracking policy on the wire (MPC -> any tracking loop), defined once.

The MPC publishes its latest policy u(t, x) = u_ff(t) + K(t) (x - x_nom(t)) on a grid of N nodes
(t_k = t0 + k dt, zero-order hold or linear interpolation as the solver's ``interpolation``),
the three pieces that a ros2_control feedback controller (e.g. linear_feedback_controller) needs
to track it at 1 kHz. Flat float64 data with labelled dims::

    dim[0]: "t0,dt"                         size 2
    dim[1]: "nodes"                         size N      stride N * W
    dim[2]: "u_ff:nu,K:nu x nx,x_nom:nx"    size W = nu + nu nx + nx (K row-major)
    dim[3]: "x_nom_terminal:nx"             size nx
    data = [t0, dt, row_0 ... row_{N-1}, x_nom_N]

:func:`decode` rebuilds a ``_core.Policy`` that evaluates exactly like the original.
"""
from __future__ import annotations

from typing import List, Tuple

import numpy as np

from dmpc_core import _core


def node_label(nu: int, nx: int) -> str:
    return f"u_ff:{nu},K:{nu}x{nx},x_nom:{nx}"


def encode(pol) -> Tuple[List[Tuple[str, int, int]], np.ndarray]:
    """``(dims, data)`` of a policy; dims = [(label, size, stride)]."""
    u_ff, x_nom = np.asarray(pol.u_ff, float), np.asarray(pol.x_nom, float)
    N, nu = u_ff.shape
    nx = x_nom.shape[1]
    K = np.asarray(pol.K, float).reshape(N, nu * nx)
    rows = np.hstack([u_ff, K, x_nom[:N]])
    W = rows.shape[1]
    dims = [("t0,dt", 2, 2), ("nodes", N, N * W), (node_label(nu, nx), W, W), (f"x_nom_terminal:{nx}", nx, nx)]
    return dims, np.concatenate([[pol.t0, pol.dt], rows.ravel(), x_nom[N]])


def decode(dims: List[Tuple[str, int]], data, nu: int, nx: int, interpolation=None):
    """A ``_core.Policy`` from a message's dims [(label, size)] and data (ValueError if the layout
    is not the one of (nu, nx) or a value is not finite)."""
    labels = [d[0] for d in dims]
    want = ["t0,dt", "nodes", node_label(nu, nx), f"x_nom_terminal:{nx}"]
    if labels != want:
        raise ValueError(f"policy layout {labels} does not match {want}")
    N, W = int(dims[1][1]), nu + nu * nx + nx
    arr = np.asarray(data, float)
    if N < 1 or int(dims[2][1]) != W or arr.size != 2 + N * W + nx:
        raise ValueError(f"policy message has {arr.size} values; layout says 2 + {N} x {W} + {nx}")
    if not np.all(np.isfinite(arr)) or not arr[1] > 0:
        raise ValueError("policy message has non-finite values or dt <= 0")
    rows = arr[2:2 + N * W].reshape(N, W)
    pol = _core.Policy()
    pol.t0, pol.dt = float(arr[0]), float(arr[1])
    pol.u_ff = rows[:, :nu]
    pol.K = np.ascontiguousarray(rows[:, nu:nu + nu * nx]).reshape(N, nu, nx)  # 2x faster than a list
    pol.x_nom = np.vstack([rows[:, nu + nu * nx:], arr[-nx:]])
    if interpolation is not None:
        pol.interpolation = interpolation
    return pol
