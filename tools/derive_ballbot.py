#!/usr/bin/env python3
"""Lagrangian derivation of the Ballbot dynamics with CasADi, and C code generation.

Model (see docs/ballbot_model.md for the full derivation):

* generalized coordinates q = (px, py, yaw, pitch, roll): ball centre position on the floor
  and the base orientation as ZYX Euler angles, R = Rz(yaw) Ry(pitch) Rx(roll); v = qdot.
* the ball rolls without slipping and without spinning about the vertical (omega_z = 0,
  "no drilling"): omega_ball (world) = (-vy / r_b, vx / r_b, 0). Its kinetic energy includes
  the rolling rotation: T_ball = 1/2 m_b |v|^2 + 1/2 I_b |omega_ball|^2.
* the base is a rigid body whose frame origin is the ball centre; COM c (base frame),
  inertia diag(I_B) about the COM in base axes.
* three massless omni-wheels on the ball at zenith angle alpha, azimuths 0, 120, 240 deg
  (base frame); wheel i drives along the horizontal tangent t_i = (-sin b_i, cos b_i, 0) of
  the ball at its contact direction d_i. No slip gives the wheel rate (relative to the base)
  w_i = (r_b / r_w) n_i . omega_rel,  n_i = d_i x t_i,  omega_rel = omega_ball - omega_base
  (both in base frame), linear in v: w = J_w(q) v.  Virtual work: S^T(q) = J_w(q)^T.
* equations of motion  M(q) a + h(q, v) = S^T(q) tau.

Run ``python tools/derive_ballbot.py`` (from the repository root) to regenerate
``cpp_ext/src/models/ballbot_generated.{c,h}``. Importing this module only builds the
symbolic functions (``build_functions()``), it never writes files.

The physical parameters are an input ``p`` of every generated function (see PARAM_NAMES),
so BallbotParameters can be changed at run time without regenerating code.
"""
from __future__ import annotations

import argparse
import math
import os
import tempfile
from pathlib import Path

import casadi as ca
import numpy as np

#: Order of the parameter vector p taken by every generated function.
PARAM_NAMES = (
    "ball_radius",        # r_b [m]
    "ball_mass",          # m_b [kg]
    "ball_inertia",       # I_b [kg m^2] (isotropic)
    "base_mass",          # m_B [kg]
    "base_com_x",         # c (base frame) [m]
    "base_com_y",
    "base_com_z",
    "base_inertia_xx",    # diag(I_B) about the COM, base axes [kg m^2]
    "base_inertia_yy",
    "base_inertia_zz",
    "wheel_radius",       # r_w [m]
    "wheel_zenith_angle", # alpha [rad] between the vertical axis of the base and a contact point
    "gravity",            # g [m/s^2]
)
NP = len(PARAM_NAMES)

#: Wheel azimuths in the base frame (fixed: 0, 120, 240 deg).
WHEEL_AZIMUTHS = (0.0, 2.0 * math.pi / 3.0, 4.0 * math.pi / 3.0)

PREFIX = "dmpc_ballbot_"


def default_params() -> np.ndarray:
    """Parameters of the public OCS2 ballbot (reference-facts.md), ordered as PARAM_NAMES."""
    return np.array([
        0.125, 2.65, 0.0166,
        18.66, 0.003, 0.0033, 0.1956,
        1.80, 1.8037, 0.1667,
        0.064, math.pi / 4.0, 9.81,
    ])


def rotation_zyx(yaw, pitch, roll, trig=None):
    """R = Rz(yaw) Ry(pitch) Rx(roll) (base -> world).

    trig: optional (cos yaw, sin yaw, cos pitch, sin pitch, cos roll, sin roll) expressions used
    instead of the trigonometric functions of the angles (see build_forward_function).
    """
    if trig is None:
        trig = (ca.cos(yaw), ca.sin(yaw), ca.cos(pitch), ca.sin(pitch), ca.cos(roll), ca.sin(roll))
    cz, sz, cy, sy, cx, sx = trig
    rz = ca.vertcat(ca.horzcat(cz, -sz, 0), ca.horzcat(sz, cz, 0), ca.horzcat(0, 0, 1))
    ry = ca.vertcat(ca.horzcat(cy, 0, sy), ca.horzcat(0, 1, 0), ca.horzcat(-sy, 0, cy))
    rx = ca.vertcat(ca.horzcat(1, 0, 0), ca.horzcat(0, cx, -sx), ca.horzcat(0, sx, cx))
    return rz @ ry @ rx


def base_angular_velocity_body(q, v, trig=None):
    """omega_base in the base frame from ZYX Euler rates: R^T (yawd e_z + pitchd Rz e_y + rolld Rz Ry e_x).

    trig: optional 6-tuple as in rotation_zyx (only the pitch and roll entries are used).
    """
    pitch, roll = q[3], q[4]
    if trig is None:
        cp, sp, cr, sr = ca.cos(pitch), ca.sin(pitch), ca.cos(roll), ca.sin(roll)
    else:
        cp, sp, cr, sr = trig[2], trig[3], trig[4], trig[5]
    dyaw, dpitch, droll = v[2], v[3], v[4]
    return ca.vertcat(
        droll - sp * dyaw,
        cr * dpitch + sr * cp * dyaw,
        -sr * dpitch + cr * cp * dyaw,
    )


def ball_angular_velocity_world(v, r_b, inv_r_b=None):
    """Rolling without slip or spin: contact point at rest, omega_z = 0. inv_r_b: optional 1/r_b."""
    if inv_r_b is None:
        return ca.vertcat(-v[1] / r_b, v[0] / r_b, 0)
    return ca.vertcat(-v[1] * inv_r_b, v[0] * inv_r_b, 0)


def _symbols():
    q = ca.SX.sym("q", 5)
    v = ca.SX.sym("v", 5)
    a = ca.SX.sym("a", 5)
    tau = ca.SX.sym("tau", 3)
    p = ca.SX.sym("p", NP)
    return q, v, a, tau, p


def wheel_rate_expression(q, v, p, alpha_trig=None, trig=None, inv_r_b=None):
    """No-slip omni-wheel rates w (3) relative to the base: w_i = (r_b / r_w) n_i . omega_rel.

    alpha_trig: optional (cos alpha, sin alpha) expressions used instead of cos(p[11]),
    sin(p[11]) (the forward-dynamics function takes them precomputed as inputs); trig, inv_r_b:
    see rotation_zyx and ball_angular_velocity_world.
    """
    r_b, r_w, alpha = p[0], p[10], p[11]
    cos_a, sin_a = (ca.cos(alpha), ca.sin(alpha)) if alpha_trig is None else alpha_trig
    R = rotation_zyx(q[2], q[3], q[4], trig)
    w_rel = (R.T @ ball_angular_velocity_world(v, r_b, inv_r_b)
             - base_angular_velocity_body(q, v, trig))
    rates = []
    for beta in WHEEL_AZIMUTHS:
        cb, sb = math.cos(beta), math.sin(beta)
        n = ca.vertcat(-cos_a * cb, -cos_a * sb, sin_a)  # d_i x t_i
        rates.append(r_b / r_w * ca.dot(n, w_rel))
    return ca.vertcat(*rates)


def build_expressions(form: str = "lagrange", alpha_trig=None):
    """Symbolic q, v, a, tau, p and the expressions T, V, M, h, S^T, wheel rates, ID.

    form="lagrange": M = d^2 T / dv^2 and h = (d/dq dT/dv) v - dT/dq + dV/dq from the energies
    (the reference derivation). form="jacobian": the same equations written with the COM and
    angular-velocity Jacobians of the base (Newton-Euler in generalized coordinates),
        M = m_b' E^T E + m_B J_c^T J_c + J_w^T I J_w,
        h = m_B J_c^T (Jdot_c v + g e_z) + J_w^T (I Jdot_w v + w x I w),
    with m_b' = m_b + I_b / r_b^2 and E = [I_2 0]: far fewer operations, used for the C code.
    Both forms are compared numerically in test/agreement/test_ballbot_model.py.
    alpha_trig: optional (cos alpha, sin alpha) expressions, see wheel_rate_expression.
    """
    q, v, a, tau, p = _symbols()
    r_b, m_b, i_b, m_B = p[0], p[1], p[2], p[3]
    com = p[4:7]
    inertia = ca.diag(p[7:10])
    g = p[12]

    R = rotation_zyx(q[2], q[3], q[4])
    w_ball = ball_angular_velocity_world(v, r_b)
    p_com = ca.vertcat(q[0], q[1], r_b) + R @ com
    v_com = ca.jtimes(p_com, q, v)
    w_base = base_angular_velocity_body(q, v)
    # Kinetic energy: ball translation + rolling rotation, base translation + rotation.
    T = (0.5 * m_b * (v[0] ** 2 + v[1] ** 2) + 0.5 * i_b * ca.dot(w_ball, w_ball)
         + 0.5 * m_B * ca.dot(v_com, v_com) + 0.5 * ca.dot(w_base, inertia @ w_base))
    V = m_B * g * p_com[2]  # the ball's potential energy is constant

    wheel_rates = wheel_rate_expression(q, v, p, alpha_trig)
    ST = ca.jacobian(wheel_rates, v).T  # virtual work: Q = J_w^T tau

    if form == "lagrange":
        M = ca.hessian(T, v)[0]
        dTdv = ca.gradient(T, v)
        h = ca.jtimes(dTdv, q, v) - ca.gradient(T, q) + ca.gradient(V, q)
        ID = M @ a + h - ST @ tau
    elif form == "jacobian":
        m_eff = m_b + i_b / r_b ** 2
        Jc = ca.jacobian(p_com, q)       # 3 x 5 (v_com = Jc v)
        Jw = ca.jacobian(w_base, v)      # 3 x 5 (omega_base = Jw v)
        E = ca.horzcat(ca.SX.eye(2), ca.SX.zeros(2, 3))
        M = m_eff * E.T @ E + m_B * Jc.T @ Jc + Jw.T @ inertia @ Jw
        acc_c = ca.jtimes(v_com, q, v)   # Jdot_c v
        acc_w = ca.jtimes(w_base, q, v)  # Jdot_w v
        ez = ca.vertcat(0, 0, 1)
        Iw = inertia @ w_base
        h = m_B * Jc.T @ (acc_c + g * ez) + Jw.T @ (inertia @ acc_w + ca.cross(w_base, Iw))
        # ID written so that its q-derivative reuses the same structure.
        ID = (m_eff * E.T @ (E @ a) + m_B * Jc.T @ (Jc @ a + acc_c + g * ez)
              + Jw.T @ (inertia @ (Jw @ a + acc_w) + ca.cross(w_base, Iw)) - ST @ tau)
    else:
        raise ValueError(f"unknown form {form!r}")
    return dict(q=q, v=v, a=a, tau=tau, p=p, T=T, V=V, M=M, h=h, ST=ST,
                wheel_rates=wheel_rates, ID=ID, R=R, p_com=p_com)


def ldlt_solve(M, b):
    """x = M^{-1} b for a symmetric positive definite n x n SX matrix M (lower triangle used),
    by a square-root-free LDL^T factorisation written out on the scalar expressions:

        D_j = M_jj - sum_{k<j} L_jk E_jk,   E_ij = M_ij - sum_{k<j} L_ik E_jk  (= L_ij D_j),
        L_ij = E_ij / D_j  (i > j),         L y = b,  z = D^{-1} y,  L^T x = z.

    n divisions (reciprocals of D_j, then multiplications) and no square roots; CasADi drops the products with M's structural zeros
    (M_01 = 0 for the Ballbot).
    """
    n = M.shape[0]
    L = [[None] * n for _ in range(n)]
    E = [[None] * n for _ in range(n)]
    inv_d = [None] * n
    for j in range(n):
        d = M[j, j]
        for k in range(j):
            d = d - L[j][k] * E[j][k]
        # 1/D_j, written 2/(D_j + D_j) (exactly equal): CasADi rewrites x * (1/D) into x / D,
        # which would turn the multiplications below back into n(n+1)/2 divisions.
        inv_d[j] = 2.0 / (d + d)
        for i in range(j + 1, n):
            e = M[i, j]
            for k in range(j):
                e = e - L[i][k] * E[j][k]
            E[i][j] = e
            L[i][j] = e * inv_d[j]
    y = [None] * n
    for i in range(n):
        s = b[i]
        for k in range(i):
            s = s - L[i][k] * y[k]
        y[i] = s
    x = [None] * n
    for i in reversed(range(n)):
        s = y[i] * inv_d[i]
        for k in range(i + 1, n):
            s = s - L[k][i] * x[k]
        x[i] = s
    return ca.vertcat(*x)


def build_forward_function() -> ca.Function:
    """Forward dynamics only, for rollouts (sampling-based MPC): a = M(q)^{-1} (S^T(q) tau - h(q, v)).

    Inputs trig (6) = (cos, sin) of yaw, pitch, roll (the caller evaluates three sincos instead
    of the scattered sin/cos calls of the expression graph), v (5), tau (3), and
    pc (16) = [p; cos(alpha); sin(alpha); 1/r_b] (parameter trigonometry and the reciprocal
    precomputed once per model, so no division by r_b per call); output a (5). M and h are the
    Jacobian form of build_expressions, with derivatives with respect to q taken through the
    trigonometric inputs (d cos(q_k)/dq_k = -sin(q_k), d sin(q_k)/dq_k = cos(q_k)); nothing
    depends on px, py. The 5 x 5 solve is the symbolic LDL^T of ldlt_solve, and the common
    subexpressions of M, h, S^T and the solve are merged (ca.cse). No derivatives are output.
    Tested equal to the dyn function followed by a dense solve (test/agreement/test_mppi_rollout.py).
    """
    q, v, _, tau, p = _symbols()
    tr = ca.SX.sym("trig", 6)
    ex = ca.SX.sym("pex", 3)  # cos(alpha), sin(alpha), 1/r_b
    trig = tuple(tr[i] for i in range(6))
    dtr_dq = ca.SX.zeros(6, 5)
    for k, qi in enumerate((2, 3, 4)):
        dtr_dq[2 * k, qi] = -tr[2 * k + 1]
        dtr_dq[2 * k + 1, qi] = tr[2 * k]

    def dq(f):  # total Jacobian with respect to q, through the trigonometric inputs
        return ca.jacobian(f, q) + ca.jacobian(f, tr) @ dtr_dq

    r_b, m_b, i_b, m_B = p[0], p[1], p[2], p[3]
    com = p[4:7]
    inertia = ca.diag(p[7:10])
    g = p[12]
    R = rotation_zyx(q[2], q[3], q[4], trig)
    p_com = ca.vertcat(q[0], q[1], r_b) + R @ com
    Jc = dq(p_com)
    v_com = Jc @ v
    w_base = base_angular_velocity_body(q, v, trig)
    Jw = ca.jacobian(w_base, v)
    acc_c = dq(v_com) @ v  # Jdot_c v
    acc_w = dq(w_base) @ v  # Jdot_w v
    ST = ca.jacobian(wheel_rate_expression(q, v, p, (ex[0], ex[1]), trig, ex[2]), v).T
    m_eff = m_b + i_b * ex[2] ** 2
    E = ca.horzcat(ca.SX.eye(2), ca.SX.zeros(2, 3))
    ez = ca.vertcat(0, 0, 1)
    M = m_eff * E.T @ E + m_B * Jc.T @ Jc + Jw.T @ inertia @ Jw
    h = m_B * Jc.T @ (acc_c + g * ez) + Jw.T @ (inertia @ acc_w + ca.cross(w_base, inertia @ w_base))
    acc = ldlt_solve(M, ST @ tau - h)
    pc = ca.vertcat(p, ex)  # purely symbolic: a valid function input
    return ca.Function(PREFIX + "fwd", [tr, v, tau, pc], [ca.cse(ca.densify(acc))],
                       ["trig", "v", "tau", "pc"], ["a"])


def build_functions(form: str = "jacobian") -> dict[str, ca.Function]:
    """CasADi Functions (all outputs dense) named with the C prefix; nothing is written.

    form: "jacobian" (used for the generated C code) or "lagrange" (reference), see
    build_expressions.
    """
    e = build_expressions(form)
    q, v, a, tau, p = e["q"], e["v"], e["a"], e["tau"], e["p"]

    def d(*exprs):  # dense outputs, common subexpressions merged (about 20 % fewer operations)
        out = ca.cse([ca.densify(x) for x in exprs])
        return out[0] if len(out) == 1 else out

    dyn = ca.Function(PREFIX + "dyn", [q, v, p], d(e["M"], e["h"], e["ST"]),
                      ["q", "v", "p"], ["M", "h", "ST"])
    id_jac = ca.Function(PREFIX + "id_jac", [q, v, a, tau, p],
                         d(ca.jacobian(e["ID"], q), ca.jacobian(e["ID"], v)),
                         ["q", "v", "a", "tau", "p"], ["dID_dq", "dID_dv"])
    energy = ca.Function(PREFIX + "energy", [q, v, p], d(e["T"], e["V"]),
                         ["q", "v", "p"], ["T", "V"])
    wheel = ca.Function(PREFIX + "wheel_rates", [q, v, p], [d(e["wheel_rates"])],
                        ["q", "v", "p"], ["w"])
    # Input-matrix derivatives of the Deep Value running cost (BallbotDynamics::
    # calc_input_jacobians). With G = M^-1 S^T (5 x 3) held fixed at the evaluation point,
    # z = M^-1 p_v and alpha = G w:
    #   d(G^T p_v)/dq = d/dq [S(q) z - G^T M(q) z]      (3 x 5, "dy_dq")
    #   d(G w)/dq     = M^-1 d/dq [S^T(q) w - M(q) alpha] (5 x 5, "dgw_dq" is the bracket)
    # Only M(q) and S^T(q) enter, so this is far cheaper than the three inverse-dynamics
    # Jacobians it replaces (one per input channel).
    z = ca.SX.sym("z", 5)
    G = ca.SX.sym("G", 5, 3)
    w = ca.SX.sym("w", 3)
    alpha = ca.SX.sym("alpha", 5)
    ST = e["ST"]
    proj = ST.T @ z - G.T @ (e["M"] @ z)
    gw = ST @ w - e["M"] @ alpha
    input_jac = ca.Function(PREFIX + "input_jac", [q, z, G, w, alpha, p],
                            d(ca.jacobian(proj, q), ca.jacobian(gw, q)),
                            ["q", "z", "G", "w", "alpha", "p"], ["dy_dq", "dgw_dq"])
    out = {"dyn": dyn, "id_jac": id_jac, "energy": energy, "wheel_rates": wheel,
           "input_jac": input_jac}
    if form == "jacobian":
        out["fwd"] = build_forward_function()
    return out


def forward_dynamics(x, tau, p=None) -> np.ndarray:
    """Numeric xdot = [v; M^{-1}(S^T tau - h)] from the CasADi functions (reference for tests)."""
    fns = _cached_functions()
    p = default_params() if p is None else np.asarray(p, float)
    x = np.asarray(x, float)
    q, v = x[:5], x[5:]
    M, h, ST = (np.array(o) for o in fns["dyn"](q, v, p))
    a = np.linalg.solve(M, ST @ np.asarray(tau, float) - h.ravel())
    return np.concatenate([v, a])


_FNS: dict | None = None


def _cached_functions():
    global _FNS
    if _FNS is None:
        _FNS = build_functions()
    return _FNS


HEADER_NOTE = """/* GENERATED FILE - DO NOT EDIT.
 * Ballbot dynamics (M(q), h(q, v), S^T(q), inverse-dynamics Jacobians, energy, wheel rates,
 * the input-matrix derivatives of the Deep Value running cost (input_jac),
 * and the rollout function fwd: a = M^{{-1}} (S^T tau - h) with an unrolled LDL^T solve),
 * generated by CasADi {version} from tools/derive_ballbot.py (Jacobian form of the equations of
 * motion, tested equal to the Lagrangian form) with:
 *     python tools/derive_ballbot.py
 * (run from the repository root). Parameter vector p (size {np}): {names}.
 * Matrices are dense, column-major. See docs/ballbot_model.md.
 */
"""


def generate(out_dir: Path) -> list[Path]:
    """Write ballbot_generated.c / .h into out_dir (functions prefixed dmpc_ballbot_)."""
    fns = build_functions()
    name = "ballbot_generated"
    cg_name = "dmpc_" + name  # CasADi prefixes its non-static helpers with this name
    note = HEADER_NOTE.format(version=ca.__version__, np=NP, names=", ".join(PARAM_NAMES))
    with tempfile.TemporaryDirectory() as tmp:
        cwd = os.getcwd()
        os.chdir(tmp)
        try:
            cg = ca.CodeGenerator(cg_name + ".c", {"with_header": True, "casadi_real": "double",
                                                "casadi_int": "long long int"})
            for f in fns.values():
                cg.add(f)
            cg.generate()
        finally:
            os.chdir(cwd)
        out_dir.mkdir(parents=True, exist_ok=True)
        written = []
        for ext in (".c", ".h"):
            src = Path(tmp) / (cg_name + ext)
            dst = out_dir / (name + ext)
            dst.write_text(note + src.read_text())
            written.append(dst)
    return written


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    root = Path(__file__).resolve().parents[1]
    ap.add_argument("--out-dir", type=Path, default=root / "cpp_ext" / "src" / "models")
    args = ap.parse_args()
    for path in generate(args.out_dir):
        print("wrote", path)


if __name__ == "__main__":
    main()
