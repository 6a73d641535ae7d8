"""A known quadratic value V(x) = 1/2 x'Px as a tanh ValueMLP, so that it ships as a critic bundle.

Why: the Deep Value MPC theory check (Proposition 1 of deep-value-mpc) takes the LQR
value of a linear system, exports it as a critic bundle and hands it to the solvers through the
same path as a learned critic (ONNX file -> loader checks -> onnxruntime or the native C++
evaluator). The bundle contract is a tanh MLP, which cannot be exactly quadratic, so the
quadratic is built from second differences of tanh:

    with P = sum_i l_i l_i' (eigen-decomposition, rank r) and d_i = eps l_i'x,
    1/2 x'Px = 1/(2 eps^2) sum_i d_i^2,
    d^2 ~ sum_j a_j [tanh(c_j + d) + tanh(c_j - d) - 2 tanh(c_j)]      (even in d)

where the weights a_j of the offsets c_j make the d^2 coefficient 1 and cancel the d^4 one, so
the relative error of V is O((eps max_i |l_i'x|)^4) and that of its gradient and Hessian the
same order (measured for a 3-state LQR value with |x| ~ 1: V 1e-9, gradient 3e-9, Hessian
2e-8 relative at eps = 3e-3). The network has one hidden layer of 4 r units (2 offsets x +-d),
input weights +-eps l_i' on x and 0 on the goal and the time-to-go, so V_tau = 0 exactly.
Smaller eps lowers the truncation error but raises the rounding error of the value, which is a
difference of O(1) tanh values scaled by 1/eps^2 (about 1e-16 / eps^2 absolute).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from dmpc_core.critics.networks import ValueMLP, ValueMLPSettings

#: tanh offsets c_j of the two second differences (any two with different
#: tanh''''/tanh'' ratios work; these keep the a_j of order one)
OFFSETS = (0.5, 1.2)


def _tanh_derivatives(c: float, kmax: int) -> list:
    """[d^k tanh / dc^k at c for k = 0..kmax], via polynomials in t = tanh(c):
    p_0(t) = t, p_{k+1}(t) = p_k'(t) (1 - t^2)."""
    p = np.array([0.0, 1.0])
    t = math.tanh(c)
    out = []
    for _ in range(kmax + 1):
        out.append(float(np.polynomial.polynomial.polyval(t, p)))
        p = np.polynomial.polynomial.polymul(np.polynomial.polynomial.polyder(p), [1.0, 0.0, -1.0])
    return out


def quadratic_value_mlp(P, *, ng: int = 0, eps: float = 3e-3) -> ValueMLP:
    """ValueMLP with V(x, g, tau) ~= 1/2 x'Px for every goal g and time-to-go tau (see module doc).

    Args:
        P: (nx, nx) symmetric positive semi-definite matrix (e.g. a Riccati solution).
        ng: goal width of the network (the goal is ignored: zero input weights).
        eps: input scale of the second differences; the relative error is O((eps |l_i'x|)^4).
    Raises:
        ValueError: P not square, not finite, not symmetric, not PSD, or zero; eps not in (0, 1).
    """
    P = np.asarray(P, dtype=float)
    if P.ndim != 2 or P.shape[0] != P.shape[1] or P.shape[0] == 0:
        raise ValueError(f"P must be a non-empty square matrix, got shape {P.shape}")
    if not np.all(np.isfinite(P)):
        raise ValueError("P must be finite")
    scale = max(1.0, float(np.abs(P).max()))
    if np.abs(P - P.T).max() > 1e-10 * scale:
        raise ValueError("P must be symmetric")
    if not 0.0 < eps < 1.0:
        raise ValueError(f"eps must be in (0, 1), got {eps}")
    lam, vecs = np.linalg.eigh(0.5 * (P + P.T))
    if lam.min() < -1e-10 * scale:
        raise ValueError(f"P must be positive semi-definite (smallest eigenvalue {lam.min():.3g})")
    keep = lam > 1e-12 * scale
    if not np.any(keep):
        raise ValueError("P is zero: nothing to represent")
    L = (vecs[:, keep] * np.sqrt(lam[keep])).T  # rows l_i, P = L'L
    nx, r, K = P.shape[0], L.shape[0], len(OFFSETS)
    # a_j: sum_j a_j * 2 tanh^(2k)(c_j) / (2k)! = [k == 1] for k = 1..K
    D = [_tanh_derivatives(c, 2 * K) for c in OFFSETS]
    M = np.array([[2.0 * D[j][2 * k] / math.factorial(2 * k) for j in range(K)] for k in range(1, K + 1)])
    a = np.linalg.solve(M, np.eye(K)[0])
    W0 = np.zeros((2 * K * r, nx + ng + 1))
    b0 = np.zeros(2 * K * r)
    w1 = np.zeros(2 * K * r)
    bias = 0.0
    for j, c in enumerate(OFFSETS):
        for block, sign in enumerate((1.0, -1.0)):
            rows = slice((2 * j + block) * r, (2 * j + block + 1) * r)
            W0[rows, :nx] = sign * eps * L
            b0[rows] = c
            w1[rows] = 0.5 * a[j] / eps**2
        bias -= 2 * r * math.tanh(c) * 0.5 * a[j] / eps**2
    model = ValueMLP(ValueMLPSettings(nx=nx, ng=ng, hidden=(2 * K * r,)))
    with torch.no_grad():
        model.layers[0].weight.copy_(torch.from_numpy(W0))
        model.layers[0].bias.copy_(torch.from_numpy(b0))
        model.layers[1].weight.copy_(torch.from_numpy(w1[None, :]))
        model.layers[1].bias.fill_(bias)
    return model
