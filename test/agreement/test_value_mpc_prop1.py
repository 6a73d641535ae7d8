"""Proposition 1 of deep-value-mpc on a linear-quadratic problem, solved by SLQ.

With the exact value of the continuous LQR problem (running cost 1/2 x'Qx + 1/2 u'Ru),
V*(x) = 1/2 x'Px with P from the continuous algebraic Riccati equation, the Deep Value MPC
running cost of Eq. (14) is
    l = -V_t - f'V_x + 1/2 V_x' B R^-1 B' V_x = 1/2 x'(-A'P - PA + P B R^-1 B' P) x = 1/2 x'Qx,
and the heuristic (Eq. (13)) is V* itself. So the short-horizon problem (18) has the same
optimal first control as the infinite-horizon one: u = -R^-1 B' P x.

SLQ solves the *discretised* problem (RK4, piecewise-constant u, stage cost dt (l + 1/2 u'Ru)),
whose optimal first control is that of the finite-horizon discrete Riccati recursion started at
P_N = P. It differs from the continuous gain by O(dt) (the continuous P is not the fixed point of
the discrete recursion). The test therefore checks:
  1. SLQ with the Deep Value costs == the discrete Riccati recursion (tight, 1e-6): the costs
     produce exactly l = 1/2 x'Qx and phi = 1/2 x'Px with exact derivatives;
  2. SLQ first control == continuous LQR feedback within 3 dt relative, and the error halves
     (ratio in [0.4, 0.6]) when dt halves (first-order discretisation error, not a model error).
The same holds for the finite-horizon problem with terminal cost 1/2 x'P_f x at t_goal, whose value
V(tau, x) = 1/2 x'P(tau)x (tau = time-to-go, dP/dtau = Q + A'P + PA - P B R^-1 B'P, P(0) = P_f)
depends on time: there the running cost is 1/2 x'Qx only with the right sign of V_t = -V_tau,
so this case checks the time convention through the whole chain (critic -> cost -> SLQ).

The time-invariant case runs three ways: with the value as a Python critic, and (the theory
check) exported as a critic bundle -- a real ONNX file written to disk, read back through the
loader's checks -- evaluated by onnxruntime (make_core_critic_adapter, third derivatives by finite
differences) and by the native C++ evaluator (exact third derivatives). The bundle is a tanh MLP
that represents 1/2 x'Px to ~1e-8 relative (dmpc_core.critics.quadratic), so its tolerances are
looser than the Python critic's exact ones.
"""
from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg as sl
from scipy.integrate import solve_ivp

from dmpc_core import _core
from dmpc_core.critics import export_value_bundle, load_bundle, make_core_critic_adapter, quadratic_value_mlp

A = np.array([[0.0, 1.0, 0.0], [2.0, -0.1, 0.5], [0.0, 0.3, -1.0]])
B = np.array([[0.0, 0.0], [1.0, 0.2], [0.0, 1.0]])
Q = np.diag([3.0, 0.5, 1.0])
R = np.diag([0.2, 0.4])


class QuadraticValue(_core.CriticModel):
    """Exact LQR value V(tau, x) = 1/2 x'Px (time-invariant: V_tau = 0)."""

    def __init__(self, P):
        _core.CriticModel.__init__(self, P.shape[0], 0)
        self.P = P

    def calc(self, data, tau, x):
        data.V = 0.5 * x @ self.P @ x

    def calc_diff(self, data, tau, x):
        data.V = 0.5 * x @ self.P @ x
        data.Vx = self.P @ x
        data.Vxx = self.P
        data.Vtau = 0.0
        data.Vtaux = np.zeros(len(x))

    def calc_third(self, data, tau, x, vx, vtau):
        data.Kv = np.zeros((len(x), len(x)))


def lqr_critic(kind: str, P: np.ndarray, tmp_path=None):
    """The value 1/2 x'Px as a critic: "python" (exact), or exported to an ONNX bundle file and
    loaded back as "ort" (onnxruntime) or "native" (C++ CriticMLP)."""
    if kind == "python":
        return QuadraticValue(P)
    path = tmp_path / "lqr_value.onnx"
    export_value_bundle(quadratic_value_mlp(P), path, robot="linear3")
    bundle = load_bundle(path, expected_nx=P.shape[0], expected_ng=0)
    return make_core_critic_adapter(bundle) if kind == "ort" else bundle.to_native()


def solve_dvmpc(dt: float, horizon_s: float, x0: np.ndarray, critic=None):
    P = sl.solve_continuous_are(A, B, Q, R)
    dyn = _core.LinearDynamics(A, B)
    critic = QuadraticValue(P) if critic is None else critic
    t_goal = 10.0
    run = _core.ValueRunningCost(critic, dyn, R, t_goal)
    term = _core.ValueTerminalCost(critic, t_goal, 2)
    N = int(round(horizon_s / dt))
    prob = _core.Problem(dyn, run, term, N, dt, integrator="rk4", control_weight=R, discount=1.0)
    solver = _core.SlqSolver(prob, _core.SlqSettings(max_iterations=20, mu_init=0.0))
    res = solver.solve(x0)
    # discrete finite-horizon Riccati recursion of the same discretised problem
    Ad = np.column_stack([_core.integrate(dyn, e, np.zeros(2), dt, "rk4") for e in np.eye(3)])
    Bd = np.column_stack([_core.integrate(dyn, np.zeros(3), e, dt, "rk4") for e in np.eye(2)])
    Pk = P.copy()
    for _ in range(N):
        K = -np.linalg.solve(R * dt + Bd.T @ Pk @ Bd, Bd.T @ Pk @ Ad)
        Pk = Q * dt + Ad.T @ Pk @ Ad + Ad.T @ Pk @ Bd @ K
    return solver, res, P, K, run


def test_running_cost_is_state_cost_for_exact_lqr_value():
    P = sl.solve_continuous_are(A, B, Q, R)
    run = _core.ValueRunningCost(QuadraticValue(P), _core.LinearDynamics(A, B), R, 1.0)
    rng = np.random.default_rng(0)
    for _ in range(3):
        x = rng.normal(size=3)
        d = run.derivatives(0.3, x, np.zeros(2))
        assert d["value"] == pytest.approx(0.5 * x @ Q @ x, rel=1e-9)
        np.testing.assert_allclose(d["lx"], Q @ x, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(d["lxx"], Q, rtol=1e-9, atol=1e-12)


def test_exported_lqr_value_bundle_gives_the_state_cost(tmp_path):
    """The bundle file, through both backends: V, V_x, V_xx of 1/2 x'Px, V_tau = 0, and the Deep
    Value running cost 1/2 x'Qx (Eq. (14) with the exact LQR value)."""
    P = sl.solve_continuous_are(A, B, Q, R)
    rng = np.random.default_rng(4)
    for kind in ("ort", "native"):
        critic = lqr_critic(kind, P, tmp_path)
        run = _core.ValueRunningCost(critic, _core.LinearDynamics(A, B), R, 1.0)
        for _ in range(3):
            x = rng.normal(size=3)
            d = critic.derivatives(0.7, x)
            assert d["V"] == pytest.approx(0.5 * x @ P @ x, rel=1e-7)
            np.testing.assert_allclose(d["Vx"], P @ x, rtol=1e-7, atol=1e-8)
            np.testing.assert_allclose(d["Vxx"], P, rtol=1e-6, atol=1e-7)
            assert abs(d["Vtau"]) < 1e-12 and np.abs(d["Vtaux"]).max() < 1e-12
            c = run.derivatives(0.3, x, np.zeros(2))
            assert c["value"] == pytest.approx(0.5 * x @ Q @ x, rel=1e-6)
            np.testing.assert_allclose(c["lx"], Q @ x, rtol=1e-6, atol=1e-6)
            np.testing.assert_allclose(c["lxx"], Q, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", ["python", "native", "ort"])
def test_proposition1_slq_reproduces_lqr_feedback(kind, tmp_path):
    x0 = np.array([0.5, -0.3, 0.2])
    P = sl.solve_continuous_are(A, B, Q, R)
    critic = lqr_critic(kind, P, tmp_path)
    # the exported bundle represents 1/2 x'Px to ~1e-8 (module doc of dmpc_core.critics.quadratic)
    tol = 1e-6 if kind == "python" else 1e-5
    errs = []
    for dt in (0.02, 0.01):
        solver, res, P, K0, _ = solve_dvmpc(dt, 0.3, x0, critic)
        assert res.status == "converged", res
        u0 = solver.controls()[0]
        # 1. exact optimum of the discretised problem
        np.testing.assert_allclose(u0, K0 @ x0, rtol=0, atol=tol * np.linalg.norm(K0 @ x0))
        np.testing.assert_allclose(solver.gains()[0], K0, atol=tol)
        # 2. continuous-time LQR feedback up to the discretisation error
        u_lqr = -np.linalg.solve(R, B.T @ P @ x0)
        err = np.linalg.norm(u0 - u_lqr) / np.linalg.norm(u_lqr)
        assert err < 3 * dt, f"dt={dt}: relative error {err:.3e}"
        errs.append(err)
    assert 0.4 < errs[1] / errs[0] < 0.6, errs


class RiccatiValue(_core.CriticModel):
    """Finite-horizon LQR value V(tau, x) = 1/2 x'P(tau)x, tau = time-to-go (Riccati ODE)."""

    def __init__(self, Pf, tau_max):
        _core.CriticModel.__init__(self, Pf.shape[0], 0)
        n = Pf.shape[0]
        Ri = np.linalg.inv(R)

        def rhs(_, p):
            P = p.reshape(n, n)
            return (Q + A.T @ P + P @ A - P @ B @ Ri @ B.T @ P).ravel()

        self.rhs = lambda P: rhs(0.0, P.ravel()).reshape(n, n)
        sol = solve_ivp(rhs, (0.0, tau_max), Pf.ravel(), method="DOP853", rtol=1e-12, atol=1e-12,
                        dense_output=True)
        self.sol, self.n = sol, n

    def P(self, tau):
        P = self.sol.sol(tau).reshape(self.n, self.n)
        return 0.5 * (P + P.T)

    def calc(self, data, tau, x):
        data.V = 0.5 * x @ self.P(tau) @ x

    def calc_diff(self, data, tau, x):
        P = self.P(tau)
        dP = self.rhs(P)
        data.V = 0.5 * x @ P @ x
        data.Vx = P @ x
        data.Vxx = P
        data.Vtau = 0.5 * x @ dP @ x
        data.Vtaux = dP @ x

    def calc_third(self, data, tau, x, vx, vtau):
        data.Kv = self.rhs(self.P(tau)) * vtau  # d/dx [P vx + P'(tau) x vtau]


def test_time_varying_value_gives_state_cost_only_with_correct_time_sign():
    Pf = np.diag([5.0, 1.0, 2.0])
    t_goal = 1.0
    critic = RiccatiValue(Pf, 1.5)
    dyn = _core.LinearDynamics(A, B)
    run = _core.ValueRunningCost(critic, dyn, R, t_goal)
    rng = np.random.default_rng(1)
    for t in (0.0, 0.4, 0.9):
        x = rng.normal(size=3)
        d = run.derivatives(t, x, np.zeros(2))
        # l = 1/2 x'Qx: the V_tau term cancels the Riccati terms (sign check); the ODE residual
        # is ~1e-12, so 1e-9 relative is tight.
        assert d["value"] == pytest.approx(0.5 * x @ Q @ x, rel=1e-9)
        np.testing.assert_allclose(d["lx"], Q @ x, rtol=1e-9, atol=1e-10)
        np.testing.assert_allclose(d["lxx"], Q, rtol=1e-9, atol=1e-10)
        # and the value really is time-varying here (otherwise the check would be vacuous)
        assert abs(critic.derivatives(t_goal - t, x)["Vtau"]) > 1e-2


def test_proposition1_finite_horizon_time_varying_value():
    Pf = np.diag([5.0, 1.0, 2.0])
    t_goal, H = 1.0, 0.3
    critic = RiccatiValue(Pf, 1.5)
    dyn = _core.LinearDynamics(A, B)
    x0 = np.array([0.5, -0.3, 0.2])
    errs = []
    for dt in (0.02, 0.01):
        N = int(round(H / dt))
        prob = _core.Problem(dyn, _core.ValueRunningCost(critic, dyn, R, t_goal),
                             _core.ValueTerminalCost(critic, t_goal, 2), N, dt, integrator="rk4",
                             control_weight=R, discount=1.0)
        solver = _core.SlqSolver(prob, _core.SlqSettings(max_iterations=20, mu_init=0.0))
        res = solver.solve(x0, 0.0)
        assert res.status == "converged", res
        u0 = solver.controls()[0]
        # discrete Riccati recursion of the discretised problem: stage dt/2 (x'Qx + u'Ru),
        # terminal 1/2 x'P(t_goal - H)x at t0 + H
        Ad = np.column_stack([_core.integrate(dyn, e, np.zeros(2), dt, "rk4") for e in np.eye(3)])
        Bd = np.column_stack([_core.integrate(dyn, np.zeros(3), e, dt, "rk4") for e in np.eye(2)])
        Pk = critic.P(t_goal - H)
        for _ in range(N):
            K = -np.linalg.solve(R * dt + Bd.T @ Pk @ Bd, Bd.T @ Pk @ Ad)
            Pk = Q * dt + Ad.T @ Pk @ Ad + Ad.T @ Pk @ Bd @ K
        np.testing.assert_allclose(u0, K @ x0, rtol=0, atol=1e-6 * np.linalg.norm(K @ x0))
        # continuous finite-horizon optimal feedback at t0 = 0 (time-to-go t_goal)
        u_opt = -np.linalg.solve(R, B.T @ critic.P(t_goal) @ x0)
        err = np.linalg.norm(u0 - u_opt) / np.linalg.norm(u_opt)
        assert err < 3 * dt, f"dt={dt}: relative error {err:.3e}"
        errs.append(err)
    assert 0.4 < errs[1] / errs[0] < 0.6, errs


@pytest.mark.parametrize("P, message", [
    (np.diag([1.0, -0.5]), "positive semi-definite"),
    (np.array([[1.0, 0.3], [0.0, 1.0]]), "symmetric"),
    (np.zeros((2, 2)), "zero"),
    (np.array([[1.0, np.nan], [np.nan, 1.0]]), "finite"),
    (np.ones(3), "square"),
])
def test_quadratic_value_mlp_rejects_bad_matrices(P, message):
    with pytest.raises(ValueError, match=message):
        quadratic_value_mlp(P)


def test_quadratic_value_mlp_handles_a_singular_psd_matrix():
    """Rank-deficient P (e.g. a value that ignores a state): only the range is represented."""
    v = np.array([1.0, 2.0, -1.0])
    P = np.outer(v, v)
    model = quadratic_value_mlp(P, ng=2)
    assert model.hidden == (4,)  # rank 1: two offsets x (+d, -d)
    import torch
    x = torch.tensor([[0.3, -0.2, 0.5], [1.0, 0.0, 0.0]], dtype=torch.float64)
    g = torch.tensor([[5.0, -3.0], [0.0, 1.0]], dtype=torch.float64)
    tau = torch.tensor([0.2, 7.0], dtype=torch.float64)
    V = model(x, g, tau).detach().numpy()
    np.testing.assert_allclose(V, 0.5 * (x.numpy() @ v) ** 2, rtol=1e-7, atol=1e-9)
