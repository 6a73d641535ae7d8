"""The dmpc discretised optimal control problem written again in CasADi and solved with IPOPT.

Used as an independent check and speed anchor for SLQ: the same RK4 discretisation with the
control held over each step, the same stage cost ``dt * (l(x_k, u_k) + 1/2 u_k' R u_k)`` and the
same terminal cost, as a multiple-shooting NLP. Only cost terms that have a CasADi twin here are
supported (quadratic tracking and the upright term); that is all the Ballbot benchmark uses.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import casadi as ca
import numpy as np


@dataclass
class QuadraticTerm:
    """1/2 (x - x_ref)' Q (x - x_ref) + 1/2 (u - u_ref)' R (u - u_ref)."""

    Q: np.ndarray
    R: np.ndarray
    x_ref: np.ndarray
    u_ref: np.ndarray

    def expr(self, x, u):
        dx = x - self.x_ref
        e = 0.5 * ca.mtimes([dx.T, self.Q, dx])
        if self.R.size:
            du = u - self.u_ref
            e += 0.5 * ca.mtimes([du.T, self.R, du])
        return e


@dataclass
class UprightTerm:
    """w_tilt (1 - cos(pitch) cos(roll)) + 1/2 w_rate (pitch_rate^2 + roll_rate^2)."""

    pitch_index: int
    roll_index: int
    pitch_rate_index: int
    roll_rate_index: int
    w_tilt: float
    w_rate: float

    def expr(self, x, u):
        return self.w_tilt * (1 - ca.cos(x[self.pitch_index]) * ca.cos(x[self.roll_index])) + 0.5 * self.w_rate * (
            x[self.pitch_rate_index] ** 2 + x[self.roll_rate_index] ** 2
        )


@dataclass
class CasadiResult:
    cost: float
    X: np.ndarray
    U: np.ndarray
    solve_time: float
    iterations: int
    status: str


def rk4_step(f: Callable, x, u, dt: float):
    k1 = f(x, u)
    k2 = f(x + 0.5 * dt * k1, u)
    k3 = f(x + 0.5 * dt * k2, u)
    k4 = f(x + dt * k3, u)
    return x + dt / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)


def build_ocp_nlp(f: Callable, nx: int, nu: int, x0: np.ndarray, horizon: int, dt: float, running: list,
                  terminal: list, control_weight: np.ndarray | None = None, sym=ca.MX) -> dict:
    """The multiple-shooting NLP {x, f, g} of the problem: decision vector vec(X) (nx x N+1,
    column-major) then vec(U) (nu x N); constraints x_0 = x0 and x_{k+1} = RK4(x_k, u_k).

    Args:
        sym: ``ca.MX`` (general) or ``ca.SX`` (faster for small dense problems).
    """
    R = np.zeros((nu, nu)) if control_weight is None else np.asarray(control_weight)
    X = sym.sym("X", nx, horizon + 1)
    U = sym.sym("U", nu, horizon)
    J = 0
    g = [X[:, 0] - x0]
    for k in range(horizon):
        xk, uk = X[:, k], U[:, k]
        lk = sum(t.expr(xk, uk) for t in running) if running else 0
        J += dt * (lk + 0.5 * ca.mtimes([uk.T, R, uk]))
        g.append(X[:, k + 1] - rk4_step(f, xk, uk, dt))
    J += sum(t.expr(X[:, horizon], ca.DM.zeros(nu)) for t in terminal) if terminal else 0
    return {"x": ca.vertcat(ca.vec(X), ca.vec(U)), "f": J, "g": ca.vertcat(*g)}


def solve_ocp_ipopt(
    f: Callable,
    nx: int,
    nu: int,
    x0: np.ndarray,
    horizon: int,
    dt: float,
    running: list,
    terminal: list,
    control_weight: np.ndarray | None = None,
    U_init: np.ndarray | None = None,
    tol: float = 1e-8,
    max_iter: int = 500,
) -> CasadiResult:
    """Solve min sum_k dt (sum(running) + 1/2 u'Ru) + sum(terminal) s.t. RK4 dynamics, x(0) = x0.

    Args:
        f: CasADi-callable continuous dynamics ``f(x, u) -> xdot`` (MX in, MX out).
        running, terminal: lists of terms with ``expr(x, u)``.
        U_init: initial controls (N, nu); the state guess is their rollout.
    The reported time covers IPOPT's solve only (not building the NLP).
    """
    nlp = build_ocp_nlp(f, nx, nu, x0, horizon, dt, running, terminal, control_weight, ca.MX)
    opts = {"ipopt.print_level": 0, "print_time": False, "ipopt.tol": tol, "ipopt.max_iter": max_iter,
            "ipopt.sb": "yes"}
    solver = ca.nlpsol("ocp", "ipopt", nlp, opts)
    U0 = np.zeros((horizon, nu)) if U_init is None else np.asarray(U_init)
    # state guess: rollout of the initial controls with the same RK4
    xs = ca.MX.sym("xs", nx)
    us = ca.MX.sym("us", nu)
    step = ca.Function("step", [xs, us], [rk4_step(f, xs, us, dt)])
    Xg = np.zeros((horizon + 1, nx))
    Xg[0] = x0
    for k in range(horizon):
        Xg[k + 1] = np.asarray(step(Xg[k], U0[k])).ravel()
    w0 = np.concatenate([Xg.T.ravel(order="F"), U0.T.ravel(order="F")])
    t0 = time.perf_counter()
    sol = solver(x0=w0, lbg=0, ubg=0)
    elapsed = time.perf_counter() - t0
    stats = solver.stats()
    wopt = np.asarray(sol["x"]).ravel()
    nX = nx * (horizon + 1)
    Xo = wopt[:nX].reshape(horizon + 1, nx)
    Uo = wopt[nX:].reshape(horizon, nu)
    return CasadiResult(float(sol["f"]), Xo, Uo, elapsed, int(stats.get("iter_count", -1)), str(stats.get("return_status")))
