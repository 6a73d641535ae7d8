"""Native critic (CriticMLP) and Deep Value MPC costs (Eqs. (13)-(14) of deep-value-mpc).

References used here are independent of the C++ code:
  * the critic is re-implemented as a float64 PyTorch function and differentiated with
    torch.func (grad, hessian, jacfwd for the third-derivative contraction);
  * Eq. (14) is composed in numpy from the torch critic derivatives and the dynamics' xdot / fu;
  * derivatives of the costs are checked by central finite differences of the C++ values /
    gradients.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.func import grad, hessian, jacfwd

from dmpc_core import _core

torch.set_default_dtype(torch.float64)


# ----------------------------------------------------------------------------- helpers
def random_mlp(nx: int, ng: int, hidden: list[int], seed: int, scale: float = 0.6):
    """Random weights in PyTorch layout plus a non-trivial input normalisation."""
    rng = np.random.default_rng(seed)
    nz = nx + ng + 1
    sizes = [nz, *hidden, 1]
    weights = [rng.normal(0.0, scale, (sizes[i + 1], sizes[i])) for i in range(len(sizes) - 1)]
    biases = [rng.normal(0.0, 0.3, sizes[i + 1]) for i in range(len(sizes) - 1)]
    mean = rng.normal(0.0, 0.5, nz)
    std = rng.uniform(0.5, 2.0, nz)
    return dict(weights=weights, biases=biases, input_mean=mean, input_std=std,
                output_scale=float(rng.uniform(0.5, 3.0)), output_bias=float(rng.normal()), nx=nx, ng=ng)


def make_native(p: dict) -> _core.CriticMLP:
    return _core.CriticMLP(p["weights"], p["biases"], p["input_mean"], p["input_std"],
                           p["output_scale"], p["output_bias"], p["nx"], p["ng"])


class TorchValue:
    """Float64 PyTorch reference V(zeta; g), zeta = (x, tau)."""

    def __init__(self, p: dict):
        self.p = p
        self.W = [torch.tensor(w) for w in p["weights"]]
        self.b = [torch.tensor(b) for b in p["biases"]]
        self.mean = torch.tensor(p["input_mean"])
        self.std = torch.tensor(p["input_std"])
        self.nx = p["nx"]

    def f(self, zeta: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        z = torch.cat([zeta[: self.nx], g, zeta[self.nx:]])
        h = (z - self.mean) / self.std
        for W, b in zip(self.W[:-1], self.b[:-1]):
            h = torch.tanh(W @ h + b)
        y = self.W[-1] @ h + self.b[-1]
        return self.p["output_scale"] * y[0] + self.p["output_bias"]

    def all(self, tau: float, x: np.ndarray, g: np.ndarray, v: np.ndarray | None = None) -> dict:
        nx = self.nx
        zeta = torch.tensor(np.concatenate([x, [tau]]))
        gt = torch.tensor(g, dtype=torch.float64)
        fz = lambda zz: self.f(zz, gt)  # noqa: E731
        G = grad(fz)(zeta).numpy()
        H = hessian(fz)(zeta).numpy()
        out = dict(V=float(fz(zeta)), Vx=G[:nx], Vtau=G[nx], Vxx=H[:nx, :nx], Vtaux=H[:nx, nx])
        if v is not None:
            vt = torch.tensor(v)
            K = jacfwd(lambda zz: hessian(fz)(zz) @ vt)(zeta).numpy()
            out["Kv"] = K[:nx, :nx]
        return out


def assert_rel(a, b, rel, what=""):
    """|a - b| <= rel * max(|b|_inf, 1e-3) element-wise (relative to the array's scale)."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    scale = max(np.max(np.abs(b)), 1e-3)
    err = np.max(np.abs(a - b)) if a.size else 0.0
    assert err <= rel * scale, f"{what}: max error {err:.3e} > {rel:.1e} * scale {scale:.3e}"


# ----------------------------------------------------------------------------- (a) critic vs torch
@pytest.mark.parametrize("hidden", [[12, 12, 12], [32, 32], [5], []], ids=str)
@pytest.mark.parametrize("ng", [0, 2])
def test_critic_mlp_matches_torch(hidden, ng):
    nx = 10 if len(hidden) == 3 else 4  # [12, 12, 12] at Ballbot size (nx = 10)
    p = random_mlp(nx, ng, hidden, seed=len(hidden) * 10 + ng)
    critic = make_native(p)
    ref = TorchValue(p)
    rng = np.random.default_rng(1)
    goal = rng.normal(size=ng)
    critic.set_goal(goal)
    np.testing.assert_array_equal(critic.goal, goal)
    data = critic.create_data()
    for _ in range(5):
        x = rng.normal(size=nx)
        tau = float(rng.uniform(0.0, 3.0))
        v = rng.normal(size=nx + 1)
        r = ref.all(tau, x, goal, v)
        critic.calc(data, tau, x)
        assert_rel(data.V, r["V"], 1e-9, "V (calc)")
        critic.calc_grad(data, tau, x)
        assert_rel(data.Vx, r["Vx"], 1e-9, "Vx (calc_grad)")
        assert_rel(data.Vtau, r["Vtau"], 1e-9, "Vtau (calc_grad)")
        critic.calc_diff(data, tau, x)
        assert_rel(data.V, r["V"], 1e-9, "V")
        assert_rel(data.Vx, r["Vx"], 1e-9, "Vx")
        assert_rel(data.Vxx, r["Vxx"], 1e-9, "Vxx")
        assert_rel(data.Vtau, r["Vtau"], 1e-9, "Vtau")
        assert_rel(data.Vtaux, r["Vtaux"], 1e-9, "Vtaux")
        critic.calc_third(data, tau, x, v[:nx], float(v[nx]))
        assert_rel(data.Kv, r["Kv"], 1e-9, "Kv (third-derivative contraction)")
    # batch evaluation agrees with the per-point torch reference
    B = 7
    X = rng.normal(size=(B, nx))
    taus = rng.uniform(0.0, 3.0, B)
    out = critic.evaluate_batch(taus, X)
    assert out["Vxx"].shape == (B, nx, nx) and out["Vx"].shape == (B, nx)
    for b in range(B):
        r = ref.all(float(taus[b]), X[b], goal)
        for k in ("V", "Vx", "Vxx", "Vtau", "Vtaux"):
            assert_rel(out[k][b], r[k], 1e-9, f"batch {k}")
    only_v = critic.evaluate_batch(taus, X, derivatives=False)
    assert set(only_v) == {"V"}
    np.testing.assert_allclose(only_v["V"], out["V"], rtol=0, atol=1e-14)


def test_goal_changes_value():
    p = random_mlp(3, 2, [8, 8], seed=5)
    critic = make_native(p)
    x = np.array([0.1, -0.2, 0.3])
    critic.set_goal([0.0, 0.0])
    v0 = critic.value(1.0, x)
    critic.goal = np.array([1.0, -1.0])
    v1 = critic.value(1.0, x)
    assert abs(v1 - TorchValue(p).all(1.0, x, np.array([1.0, -1.0]))["V"]) < 1e-12
    assert abs(v0 - v1) > 1e-6
    with pytest.raises(ValueError, match="goal"):
        critic.set_goal([1.0])
    with pytest.raises(ValueError, match="goal"):
        critic.set_goal([np.nan, 0.0])


# ----------------------------------------------------------------------------- dynamics
class ControlAffine3(_core.DynamicsModel):
    """Nonlinear control-affine test system with state-dependent g(x), nx = 3, nu = 2."""

    def __init__(self):
        _core.DynamicsModel.__init__(self, 3, 2)

    @staticmethod
    def f(x):
        return np.array([x[0] * x[1] - np.sin(x[0]), np.cos(x[2]) * x[0], -x[2] + x[0] ** 2])

    @staticmethod
    def g(x):
        return np.array([[1.0 + x[1] ** 2, 0.5 * np.sin(x[0])],
                         [x[2], np.cos(x[1])],
                         [0.3, x[0] * x[1]]])

    @staticmethod
    def jac(x, u):
        fx = np.array([[x[1] - np.cos(x[0]), x[0], 0.0],
                       [np.cos(x[2]), 0.0, -np.sin(x[2]) * x[0]],
                       [2 * x[0], 0.0, -1.0]])
        # d(g u)/dx
        gux = np.array([[0.5 * np.cos(x[0]) * u[1], 2 * x[1] * u[0], 0.0],
                        [0.0, -np.sin(x[1]) * u[1], u[0]],
                        [x[1] * u[1], x[0] * u[1], 0.0]])
        return fx + gux

    def calc(self, data, x, u):
        data.xdot = self.f(x) + self.g(x) @ u

    def calc_diff(self, data, x, u):
        data.fx = self.jac(x, u)
        data.fu = self.g(x)


def test_python_dynamics_jacobians():
    dyn = ControlAffine3()
    rng = np.random.default_rng(3)
    x, u = rng.normal(size=3), rng.normal(size=2)
    fx, fu = dyn.jacobians(x, u)
    h = 1e-6
    fd = np.column_stack([(dyn.xdot(x + h * e, u) - dyn.xdot(x - h * e, u)) / (2 * h) for e in np.eye(3)])
    np.testing.assert_allclose(fx, fd, atol=1e-8)
    fdu = np.column_stack([(dyn.xdot(x, u + h * e) - dyn.xdot(x, u - h * e)) / (2 * h) for e in np.eye(2)])
    np.testing.assert_allclose(fu, fdu, atol=1e-8)


def dynamics_cases():
    return [
        ("pendulum", _core.PendulumDynamics(mass=1.2, length=0.8, damping=0.1), np.array([[0.7]])),
        ("pointmass", _core.PointMass2D(mass=1.5, damping=0.3), np.array([[0.5, 0.1], [0.1, 0.8]])),
        ("control_affine3", ControlAffine3(), np.array([[0.4, -0.1], [-0.1, 0.9]])),
    ]


def eq14_numpy(ref: TorchValue, dyn, R, t_goal, t, x, goal):
    """Direct evaluation of Eq. (14) with V_t = -V_tau: l = V_tau - f^T V_x + 1/2 V_x^T g R^-1 g^T V_x."""
    r = ref.all(t_goal - t, x, goal)
    nu = dyn.nu
    f = dyn.xdot(x, np.zeros(nu))
    _, g = dyn.jacobians(x, np.zeros(nu))
    Xi = g @ np.linalg.solve(R, g.T)
    return r["Vtau"] - f @ r["Vx"] + 0.5 * r["Vx"] @ Xi @ r["Vx"]


def fd_grad(fun, x, h=1e-6):
    return np.array([(fun(x + h * e) - fun(x - h * e)) / (2 * h) for e in np.eye(len(x))])


def fd_jac(fun, x, h=1e-5):
    return np.column_stack([(fun(x + h * e) - fun(x - h * e)) / (2 * h) for e in np.eye(len(x))])


def dropped_second_order_dynamics_term(dyn, x, p, ustar):
    """D = d2/dx2 [p^T xdot(x, u)] at fixed p and u = u*: the only term ValueRunningCost drops."""
    return fd_jac(lambda xx: dyn.jacobians(xx, ustar)[0].T @ p, x)


# ----------------------------------------------------------------------------- (b) running cost
@pytest.mark.parametrize("case", dynamics_cases(), ids=lambda c: c[0])
def test_value_running_cost(case):
    name, dyn, R = case
    nx, nu = dyn.nx, dyn.nu
    p = random_mlp(nx, 2, [12, 12], seed=11 + nx)
    critic = make_native(p)
    ref = TorchValue(p)
    goal = np.array([0.3, -0.4])
    critic.set_goal(goal)
    t_goal = 2.5
    cost = _core.ValueRunningCost(critic, dyn, R, t_goal)
    assert cost.nx == nx and cost.nu == nu
    np.testing.assert_allclose(cost.R_inv @ R, np.eye(nu), atol=1e-12)
    rng = np.random.default_rng(7)
    data = cost.create_data()
    for _ in range(3):
        x = rng.normal(scale=0.8, size=nx)
        t = float(rng.uniform(0.0, 2.0))
        u = rng.normal(size=nu)  # ignored by the cost
        # value vs a direct numpy evaluation of Eq. (14)
        l_ref = eq14_numpy(ref, dyn, R, t_goal, t, x, goal)
        cost.calc(data, t, x, u)
        assert_rel(data.value, l_ref, 1e-9, f"{name} value (calc)")
        cost.calc_diff(data, t, x, u)
        assert_rel(data.value, l_ref, 1e-9, f"{name} value (calc_diff)")
        assert not data.lu.any() and not data.luu.any() and not data.lux.any()
        # gradient (exact) vs central differences of the C++ value
        val = lambda xx: cost.value(t, xx, u)  # noqa: E731
        assert_rel(data.lx, fd_grad(val, x), 1e-6, f"{name} lx vs FD")
        # Hessian: exact except D = d2/dx2[p^T xdot(x, u*)] (p = Vx, u* = -R^-1 g^T Vx fixed).
        # So FD(lx) (the exact Hessian) must equal lxx - D, with D from FD of the dynamics Jacobian.
        lxx = data.lxx.copy()
        np.testing.assert_array_equal(lxx, lxx.T)
        H_fd = fd_jac(lambda xx: cost.derivatives(t, xx, u)["lx"], x)
        r = ref.all(t_goal - t, x, goal)
        _, g = dyn.jacobians(x, np.zeros(nu))
        ustar = -np.linalg.solve(R, g.T @ r["Vx"])
        D = dropped_second_order_dynamics_term(dyn, x, r["Vx"], ustar)
        assert_rel(lxx - D, H_fd, 2e-6, f"{name} lxx - D vs FD Hessian")
        if name == "pointmass":  # linear dynamics: nothing dropped, lxx is the exact Hessian
            assert np.max(np.abs(D)) < 1e-8
            assert_rel(lxx, H_fd, 2e-6, f"{name} lxx exact")
        else:  # the dropped term is non-zero here, so the comparison above is not vacuous
            assert np.max(np.abs(D)) > 1e-3


def test_running_cost_hessian_terms_and_psd_projection():
    dyn = ControlAffine3()
    R = np.array([[0.4, -0.1], [-0.1, 0.9]])
    p = random_mlp(3, 0, [12, 12], seed=21)
    critic = make_native(p)
    cost = _core.ValueRunningCost(critic, dyn, R, 1.0)
    cost_psd = _core.ValueRunningCost(critic, dyn, R, 1.0, project_psd=True)
    assert cost_psd.project_psd and not cost.project_psd
    rng = np.random.default_rng(4)
    saw_negative = saw_psd = False
    for scale in (0.1, 1.0, 3.0):
        for _ in range(6):
            x = scale * rng.normal(size=3)
            d = cost.derivatives(0.3, x, np.zeros(2))
            dp = cost_psd.derivatives(0.3, x, np.zeros(2))
            np.testing.assert_allclose(dp["lx"], d["lx"], rtol=0, atol=0)
            w, V = np.linalg.eigh(d["lxx"])
            saw_negative |= w.min() < -1e-6
            saw_psd |= w.min() > 1e-6
            np.testing.assert_allclose(dp["lxx"], V @ np.diag(np.maximum(w, 0)) @ V.T, atol=1e-10)
            assert np.linalg.eigvalsh(dp["lxx"]).min() > -1e-10
    # Both branches of the projection: the LDL^T test leaves a PSD lxx as it is, an indefinite
    # one goes through the eigendecomposition.
    assert saw_negative and saw_psd, "test points should include an indefinite and a PSD lxx"


# ----------------------------------------------------------------------------- (c) terminal cost
def test_value_terminal_cost_time_sign_and_derivatives():
    p = random_mlp(4, 2, [12, 12, 12], seed=31)
    critic = make_native(p)
    goal = np.array([1.0, 0.5])
    critic.set_goal(goal)
    t_goal = 3.0
    cost = _core.ValueTerminalCost(critic, t_goal, nu=2)
    assert (cost.nx, cost.nu) == (4, 2)
    ref = TorchValue(p)
    rng = np.random.default_rng(8)
    for _ in range(3):
        x = rng.normal(size=4)
        t = float(rng.uniform(0.0, 3.0))
        u = rng.normal(size=2)
        d = cost.derivatives(t, x, u)
        r = ref.all(t_goal - t, x, goal)
        assert_rel(d["value"], r["V"], 1e-9, "phi = V(t_goal - t, x)")
        assert_rel(d["lx"], fd_grad(lambda xx: cost.value(t, xx, u), x), 1e-6, "lx vs FD")
        assert_rel(d["lxx"], fd_jac(lambda xx: cost.derivatives(t, xx, u)["lx"], x), 1e-6, "lxx vs FD")
        np.testing.assert_array_equal(d["lxx"], d["lxx"].T)
        assert not d["lu"].any() and not d["luu"].any() and not d["lux"].any()
        # d phi / dt = - dV/dtau  (time sign)
        h = 1e-6
        dphidt = (cost.value(t + h, x, u) - cost.value(t - h, x, u)) / (2 * h)
        assert abs(r["Vtau"]) > 1e-4
        assert abs(dphidt + r["Vtau"]) < 1e-6 * max(1.0, abs(r["Vtau"]))
    cost.t_goal = 4.0
    assert abs(cost.value(1.0, x, u) - ref.all(3.0, x, goal)["V"]) < 1e-12
    with pytest.raises(ValueError):
        cost.t_goal = float("nan")


# ----------------------------------------------------------------------------- (d) Python critic
class TorchCritic(_core.CriticModel):
    """Python CriticModel backed by the torch reference (stands in for e.g. ONNX Runtime)."""

    def __init__(self, p: dict, third: bool = True):
        _core.CriticModel.__init__(self, p["nx"], p["ng"])
        self.ref = TorchValue(p)
        self.third_enabled = third

    def calc(self, data, tau, x):
        data.V = self.ref.all(tau, x, self.goal)["V"]

    def calc_diff(self, data, tau, x):
        r = self.ref.all(tau, x, self.goal)
        data.V, data.Vx, data.Vxx, data.Vtau, data.Vtaux = r["V"], r["Vx"], r["Vxx"], r["Vtau"], r["Vtaux"]


class TorchCriticThird(TorchCritic):
    def calc_third(self, data, tau, x, vx, vtau):
        data.Kv = self.ref.all(tau, x, self.goal, np.concatenate([vx, [vtau]]))["Kv"]


@pytest.mark.parametrize("case", dynamics_cases(), ids=lambda c: c[0])
def test_python_critic_equals_native_in_costs(case):
    name, dyn, R = case
    nx, nu = dyn.nx, dyn.nu
    p = random_mlp(nx, 2, [12, 12, 12], seed=41)
    native = make_native(p)
    py3 = TorchCriticThird(p)
    py2 = TorchCritic(p)
    assert native.provides_third and py3.provides_third and not py2.provides_third
    goal = np.array([-0.2, 0.7])
    for c in (native, py3, py2):
        c.set_goal(goal)
    rng = np.random.default_rng(9)
    costs = {k: _core.ValueRunningCost(c, dyn, R, 2.0) for k, c in
             (("native", native), ("py3", py3), ("py2", py2))}
    costs["native_fd"] = _core.ValueRunningCost(native, dyn, R, 2.0, third_order="fd")
    costs["native_drop"] = _core.ValueRunningCost(native, dyn, R, 2.0, third_order="drop")
    costs["py2_drop"] = _core.ValueRunningCost(py2, dyn, R, 2.0, third_order="drop")
    assert costs["native"].third_order == "auto" and costs["native_fd"].third_order == "fd"
    with pytest.raises(ValueError, match="third_order"):
        _core.ValueRunningCost(native, dyn, R, 2.0, third_order="exact")
    terms = {k: _core.ValueTerminalCost(c, 2.0, nu) for k, c in (("native", native), ("py3", py3))}
    for _ in range(3):
        x = rng.normal(size=nx)
        t = float(rng.uniform(0, 2))
        u = np.zeros(nu)
        dn = costs["native"].derivatives(t, x, u)
        d3 = costs["py3"].derivatives(t, x, u)
        for k in ("value", "lx", "lxx"):
            assert_rel(d3[k], dn[k], 1e-9, f"{name} python critic vs native: {k}")
        tn, t3 = terms["native"].derivatives(t, x, u), terms["py3"].derivatives(t, x, u)
        for k in ("value", "lx", "lxx"):
            assert_rel(t3[k], tn[k], 1e-9, f"{name} terminal python vs native: {k}")
        # Without calc_third ('auto' -> 'fd') K(v), v = [g w - f; 1], comes from a central
        # difference of the critic Hessian along v: same lxx up to the FD error.
        d2 = costs["py2"].derivatives(t, x, u)
        assert_rel(d2["value"], dn["value"], 1e-9, "value without calc_third")
        assert_rel(d2["lx"], dn["lx"], 1e-9, "lx without calc_third")
        assert_rel(d2["lxx"], dn["lxx"], 1e-6, "lxx without calc_third (FD of Vxx along v)")
        assert_rel(costs["native_fd"].derivatives(t, x, u)["lxx"], dn["lxx"], 1e-6, "native 'fd' vs exact")
        # 'drop' leaves K(v) out, exactly:
        r = py3.derivatives(2.0 - t, x)
        _, g = dyn.jacobians(x, np.zeros(nu))
        w = np.linalg.solve(R, g.T @ r["Vx"])
        v = g @ w - dyn.xdot(x, np.zeros(nu))
        K = native.third(2.0 - t, x, v, 1.0)
        assert np.max(np.abs(K)) > 1e-2 * np.max(np.abs(dn["lxx"]))  # the term matters
        for k in ("native_drop", "py2_drop"):
            assert_rel(costs[k].derivatives(t, x, u)["lxx"], dn["lxx"] - K, 1e-9, f"{k}: lxx - K(v)")
    # batch evaluation through the trampoline is the same as native
    X = rng.normal(size=(4, nx))
    taus = rng.uniform(0, 3, 4)
    bn, bp = native.evaluate_batch(taus, X), py3.evaluate_batch(taus, X)
    for k in bn:
        assert_rel(bp[k], bn[k], 1e-9, f"batch {k}")


def test_python_critic_errors_are_reported():
    class Bad(_core.CriticModel):
        def __init__(self):
            _core.CriticModel.__init__(self, 2, 0)

        def calc(self, data, tau, x):
            data.V = 0.0

        def calc_diff(self, data, tau, x):
            data.V = 0.0
            data.Vx = np.zeros(3)  # wrong size

    cost = _core.ValueRunningCost(Bad(), _core.PendulumDynamics(), np.eye(1), 1.0)
    with pytest.raises(ValueError, match="Vx"):
        cost.derivatives(0.0, np.zeros(2), np.zeros(1))


# ----------------------------------------------------------------------------- (e) validation
def test_invalid_weights_and_shapes_raise():
    p = random_mlp(3, 1, [6, 6], seed=51)

    def build(**over):
        q = {**p, **over}
        return make_native(q)

    build()  # valid
    w = [a.copy() for a in p["weights"]]
    w[1] = w[1][:, :5]
    with pytest.raises(ValueError, match=r"weights\[1\]"):
        build(weights=w)
    w = [a.copy() for a in p["weights"]]
    w[0] = np.zeros((6, 4))  # first layer input must be nx + ng + 1 = 5
    with pytest.raises(ValueError, match=r"weights\[0\]"):
        build(weights=w)
    w = [a.copy() for a in p["weights"]]
    w[2] = np.zeros((2, 6))  # two outputs
    with pytest.raises(ValueError, match=r"weights\[2\]"):
        build(weights=w)
    w = [a.copy() for a in p["weights"]]
    w[1][0, 0] = np.inf
    with pytest.raises(ValueError, match=r"weights\[1\].*non-finite"):
        build(weights=w)
    b = [a.copy() for a in p["biases"]]
    b[0] = np.zeros(5)
    with pytest.raises(ValueError, match=r"biases\[0\]"):
        build(biases=b)
    b = [a.copy() for a in p["biases"]]
    b[1][2] = np.nan
    with pytest.raises(ValueError, match=r"biases\[1\]"):
        build(biases=b)
    with pytest.raises(ValueError, match="bias vectors"):
        build(biases=p["biases"][:2])
    with pytest.raises(ValueError, match="empty"):
        build(weights=[], biases=[])
    with pytest.raises(ValueError, match="input_std"):
        build(input_std=np.array([1.0, 1.0, 0.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match="input_std"):
        build(input_std=np.ones(4))
    with pytest.raises(ValueError, match="input_mean"):
        build(input_mean=np.array([0.0, np.nan, 0.0, 0.0, 0.0]))
    with pytest.raises(ValueError, match="output_scale"):
        build(output_scale=float("inf"))
    with pytest.raises(ValueError, match="output_bias"):
        build(output_bias=float("nan"))
    critic = build()
    with pytest.raises(ValueError, match="x"):
        critic.value(1.0, np.zeros(2))
    with pytest.raises(ValueError, match="tau"):
        critic.value(float("nan"), np.zeros(3))
    with pytest.raises(ValueError, match="X"):
        critic.evaluate_batch(np.zeros(3), np.zeros((2, 3)))
    # cost construction checks
    with pytest.raises(ValueError, match="nx"):
        _core.ValueRunningCost(critic, _core.PendulumDynamics(), np.eye(1), 1.0)
    c2 = make_native(random_mlp(2, 0, [4], seed=1))
    with pytest.raises(ValueError, match="R"):
        _core.ValueRunningCost(c2, _core.PendulumDynamics(), np.eye(2), 1.0)
    with pytest.raises(ValueError, match="positive definite"):
        _core.ValueRunningCost(c2, _core.PendulumDynamics(), -np.eye(1), 1.0)
    with pytest.raises(ValueError, match="symmetric"):
        _core.ValueRunningCost(make_native(random_mlp(4, 0, [4], seed=2)), _core.PointMass2D(),
                               np.array([[1.0, 0.5], [0.0, 1.0]]), 1.0)
