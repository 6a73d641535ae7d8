"""Tests of the compiled MPPI solver (cpp_ext/include/dmpc/mppi.hpp).

Every test is seeded. The maths under test is MPQ (mpq-model-predictive-q-learning.txt):
path cost with the information-theoretic term lambda/2 u^T Sigma^-1 (u + 2 eps) (Eq. (16)),
exponentiated weights (Eq. (17)), the step-size update (Eq. (18)) and the free energy (Eq. (7)).
"""
from __future__ import annotations

import numpy as np
import pytest

from dmpc_core import _core

# ----------------------------------------------------------------------------------------------
# Shared linear-quadratic problem: double integrator, Euler discretisation (as in the solver).
DT, H = 0.1, 10
A = np.array([[0.0, 1.0], [0.0, 0.0]])
B = np.array([[0.0], [1.0]])
AD = np.eye(2) + DT * A
BD = DT * B
Q = np.diag([10.0, 1.0])
R = np.array([[0.1]])
P = np.diag([20.0, 2.0])


def lq_solver(sigma, lam, gamma, seed=1, num_samples=2000, **kw):
    s = _core.MppiSettings(
        num_samples=num_samples, horizon=H, dt=DT, noise_sigma=sigma, lambda_=lam, step_size=0.5,
        gamma=gamma, num_iterations=1, integrator="euler", seed=seed, **kw)
    return _core.MppiSolver(_core.LinearDynamics(A, B), _core.QuadraticCost(Q, R),
                            _core.QuadraticCost(P, np.zeros((0, 0))), s)


def riccati_first_gain(r_extra, gamma, P=P):
    """Finite-horizon discrete LQR on the solver's discretisation; stage t costs
    gamma^t (1/2 x'Q x + 1/2 u'R u) dt + 1/2 u' r_extra u, terminal gamma^H 1/2 x'P x."""
    V = gamma**H * P
    gains = []
    for t in reversed(range(H)):
        Qt = gamma**t * Q * DT
        Rt = gamma**t * R * DT + r_extra
        K = np.linalg.solve(Rt + BD.T @ V @ BD, BD.T @ V @ AD)
        V = Qt + AD.T @ V @ (AD - BD @ K)
        gains.append(K)
    return gains[::-1]


def batch_quadratic(x0, r_extra, gamma, P=P):
    """Total cost as 1/2 U'M U + m'U + const over the stacked plan U (H*nu): independent of the
    Riccati recursion, gives the minimiser and the Hessian."""
    nu = 1
    G = np.zeros((H + 1, 2, H * nu))  # x_t = AD^t x0 + G_t U
    F = np.zeros((H + 1, 2))
    F[0] = x0
    for t in range(H):
        F[t + 1] = AD @ F[t]
        G[t + 1] = AD @ G[t]
        G[t + 1][:, t * nu:(t + 1) * nu] += BD
    M = np.zeros((H * nu, H * nu))
    m = np.zeros(H * nu)
    for t in range(H):
        W = gamma**t * Q * DT
        M += G[t].T @ W @ G[t]
        m += G[t].T @ W @ F[t]
        M[t * nu:(t + 1) * nu, t * nu:(t + 1) * nu] += gamma**t * R * DT + r_extra
    W = gamma**H * P
    M += G[H].T @ W @ G[H]
    m += G[H].T @ W @ F[H]
    return M, m


def averaged_plan(solver, x0, calls=40, skip=20):
    """Mean plan over MPPI calls ``skip..calls`` from ``x0`` (one iteration each, warm started),
    and the smallest effective sample size among them."""
    solver.set_state(x0, 0.0)
    plans, ess = [], []
    for _ in range(calls):
        r = solver.optimize()
        plans.append(r.plan[:, 0].copy())
        ess.append(r.effective_sample_size)
    return np.array(plans)[skip:].mean(axis=0), min(ess[skip:])


def test_lq_mppi_converges_to_lqr_first_control():
    """With Sigma-weighted KL term, the MPPI fixed point is the mean of the Boltzmann
    distribution pi*(A) ~ exp(-C_task/lambda) N(0, Sigma) (Eq. (6)): for linear dynamics and
    quadratic cost that is the LQR solution with control weight gamma^t R dt + lambda Sigma^-1."""
    sigma, lam, gamma = np.array([[4.0]]), 1.0, 0.9
    x0 = np.array([2.0, 0.0])
    r_kl = lam * np.linalg.inv(sigma)
    u_lqr = (-riccati_first_gain(r_kl, gamma)[0] @ x0)[0]
    u_plain = (-riccati_first_gain(np.zeros((1, 1)), gamma)[0] @ x0)[0]
    M, m = batch_quadratic(x0, r_kl, gamma)
    U_star = -np.linalg.solve(M, m)
    assert U_star[0] == pytest.approx(u_lqr, rel=1e-10)  # two independent references agree

    mean_plan, min_ess = averaged_plan(lq_solver(sigma, lam, gamma), x0)
    # Monte-Carlo error: the self-normalised importance-sampling estimate of the mean of pi*
    # has standard deviation about sqrt(Var_pi*(u_t) / ESS); Var_pi* = lambda (M^-1)_tt.
    # (ESS of the averaged calls: the first calls, far from the optimum, have a small ESS)
    sd = np.sqrt(lam * np.diag(np.linalg.inv(M)) / min_ess)
    tol = 4.0 * sd  # the mean over 20 calls is tighter still; 4 sd of a single estimate
    assert abs(mean_plan[0] - u_lqr) < tol[0], (mean_plan[0], u_lqr, tol[0])
    assert np.all(np.abs(mean_plan - U_star) < tol)
    # the tolerance separates the right answer from the LQR without the KL term
    assert tol[0] < 0.5 * abs(u_lqr - u_plain)


def test_lq_mppi_with_an_exported_lqr_value_as_terminal_and_running_cost(tmp_path):
    """The MPPI solver takes a critic (an ONNX critic bundle file, native evaluator) as
    its terminal value, and optionally the Deep Value running cost of Eq. (14). With the exact
    continuous LQR value V = 1/2 x'P_c x of this system the running cost is 1/2 x'Qx, so MPPI
    with [ValueRunningCost + 1/2 u'Ru] and ValueTerminalCost solves the problem of
    test_lq_mppi_converges_to_lqr_first_control with terminal P_c: same reference, same
    Monte-Carlo tolerance."""
    import scipy.linalg as sl

    from dmpc_core.critics import export_value_bundle, load_bundle, quadratic_value_mlp

    Pc = sl.solve_continuous_are(A, B, Q, R)
    path = tmp_path / "lqr_value.onnx"
    export_value_bundle(quadratic_value_mlp(Pc), path, robot="double_integrator")
    critic = load_bundle(path, expected_nx=2, expected_ng=0).to_native()
    sigma, lam, gamma = np.array([[4.0]]), 1.0, 0.9
    x0 = np.array([2.0, 0.0])
    r_kl = lam * np.linalg.inv(sigma)
    u_lqr = (-riccati_first_gain(r_kl, gamma, Pc)[0] @ x0)[0]
    M, m = batch_quadratic(x0, r_kl, gamma, Pc)
    U_star = -np.linalg.solve(M, m)
    assert U_star[0] == pytest.approx(u_lqr, rel=1e-10)

    t_goal = 10.0  # time-invariant value: any t_goal
    dyn = _core.LinearDynamics(A, B)
    running = _core.SumCost(2, 1)
    running.add("value", _core.ValueRunningCost(critic, dyn, R, t_goal))
    running.add("control", _core.QuadraticCost(np.zeros((2, 2)), R))
    terminal = _core.ValueTerminalCost(critic, t_goal, 1)
    rng = np.random.default_rng(2)
    for _ in range(3):  # the stage and terminal costs are those of the LQ problem
        x, u = rng.normal(size=2), rng.normal(size=1)
        assert running.value(0.1, x, u) == pytest.approx(0.5 * x @ Q @ x + 0.5 * u @ R @ u, rel=1e-6)
        assert terminal.value(0.1, x, np.zeros(1)) == pytest.approx(0.5 * x @ Pc @ x, rel=1e-7)
    s = _core.MppiSettings(num_samples=2000, horizon=H, dt=DT, noise_sigma=sigma, lambda_=lam, step_size=0.5,
                           gamma=gamma, num_iterations=1, integrator="euler", seed=1)
    mean_plan, min_ess = averaged_plan(_core.MppiSolver(dyn, running, terminal, s), x0)
    sd = np.sqrt(lam * np.diag(np.linalg.inv(M)) / min_ess)
    assert np.all(np.abs(mean_plan - U_star) < 4.0 * sd), (mean_plan[:3], U_star[:3], sd[:3])
    # the tolerance separates this terminal value from the module's P = diag(20, 2)
    u_other = (-riccati_first_gain(r_kl, gamma)[0] @ x0)[0]
    assert 4.0 * sd[0] < 0.5 * abs(u_lqr - u_other), (u_lqr, u_other, sd[0])


def test_deterministic_for_any_thread_count_and_seed_dependent():
    def run(threads, seed):
        s = _core.MppiSettings(num_samples=97, horizon=20, dt=0.05, noise_sigma=np.eye(1) * 4.0,
                               lambda_=1.0, step_size=0.7, num_iterations=3, num_threads=threads,
                               seed=seed, smoothing=0.3, u_min=[-3.0], u_max=[3.0])
        solver = _core.MppiSolver(_core.PendulumDynamics(), _core.QuadraticCost(np.diag([10.0, 1.0]), np.zeros((1, 1))),
                                  None, s)
        out = []
        for k in range(2):  # second call uses new noise (the iteration counter enters the seed)
            solver.set_state([np.pi - 0.1 * k, 0.0], 0.05 * k)
            r = solver.optimize()
            out.append((r.plan.copy(), r.costs.copy(), r.weights.copy(), r.free_energy,
                        solver.weighted_trajectories().states.copy()))
            solver.shift(1)
        return out

    one, two, other = run(1, 5), run(2, 5), run(2, 6)
    for a, b in zip(one, two):
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)  # bitwise
    assert not np.array_equal(one[0][0], other[0][0])
    assert not np.array_equal(one[0][1], other[0][1])
    assert not np.array_equal(one[0][1], one[1][1])


def log_mean_exp_gaussian(c0, c1, c2, sigma, tau):
    """log E[exp(-C(eps)/tau)] for eps ~ N(0, Sigma), C = c0 + c1'eps + 1/2 eps'c2 eps:
    the Gaussian integral det(I + Sigma c2/tau)^(-1/2) exp(1/2 b'(Sigma^-1 + c2/tau)^-1 b - c0/tau)
    with b = c1/tau."""
    n = len(c1)
    prec = np.linalg.inv(sigma) + c2 / tau
    b = c1 / tau
    _, logdet = np.linalg.slogdet(np.eye(n) + sigma @ c2 / tau)
    return -c0 / tau - 0.5 * logdet + 0.5 * b @ np.linalg.solve(prec, b)


def one_step_problem(lam=0.5, gamma=0.9, K=20000, limits=None, **extra):
    """H = 1, x+ = Ad x + Bd u (Euler), running 1/2 x'Qx + 1/2 u'Ru (times dt), terminal 1/2 x'Px."""
    A1 = np.array([[0.3, 1.0], [-0.5, 0.1]])
    B1 = np.array([[1.0, 0.2], [0.0, 1.5]])
    Q1, R1, P1 = np.diag([2.0, 1.0]), np.array([[0.5, 0.1], [0.1, 0.3]]), np.diag([3.0, 1.0])
    S1 = np.array([[0.8, 0.3], [0.3, 0.5]])
    dt = 0.2
    x0, U = np.array([1.0, -0.5]), np.array([0.4, -0.3])
    kw = {} if limits is None else dict(u_min=limits[0], u_max=limits[1])
    kw.update(extra)
    s = _core.MppiSettings(num_samples=K, horizon=1, dt=dt, noise_sigma=S1, lambda_=lam,
                           gamma=gamma, step_size=0.3, num_iterations=1, integrator="euler",
                           seed=11, num_saved_trajectories=K, **kw)
    solver = _core.MppiSolver(_core.LinearDynamics(A1, B1), _core.QuadraticCost(Q1, R1),
                              _core.QuadraticCost(P1, np.zeros((0, 0))), s)
    solver.set_state(x0, 1.0)
    solver.set_plan(U[None, :])
    Ad, Bd = np.eye(2) + dt * A1, dt * B1

    def path_cost(eps):  # Eq. (16) with H = 1, written out
        v = U + eps
        x1 = Ad @ x0 + Bd @ v
        return (dt * (0.5 * x0 @ Q1 @ x0 + 0.5 * v @ R1 @ v)
                + lam * 0.5 * U @ np.linalg.solve(S1, U + 2 * eps) + gamma * 0.5 * x1 @ P1 @ x1)

    # C(eps) = c0 + c1'eps + 1/2 eps'c2 eps
    Sinv = np.linalg.inv(S1)
    c0 = path_cost(np.zeros(2))
    c1 = dt * R1 @ U + lam * Sinv @ U + gamma * Bd.T @ P1 @ (Ad @ x0 + Bd @ U)
    c2 = dt * R1 + gamma * Bd.T @ P1 @ Bd
    return solver, U, S1, path_cost, (c0, c1, c2)


def test_free_energy_matches_gaussian_closed_form():
    lam, K = 0.5, 20000
    solver, U, S1, path_cost, (c0, c1, c2) = one_step_problem(lam=lam, K=K)
    r = solver.optimize()

    # 1) every sampled path cost is Eq. (16) (with the discounted terminal value)
    tr = solver.weighted_trajectories()
    eps = tr.controls[:, 0, :] - U
    expected = np.array([path_cost(e) for e in eps[:200]])
    np.testing.assert_allclose(tr.costs[:200], expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(np.sort(r.costs), np.sort(tr.costs), rtol=0, atol=0)

    # 2) the reported F is Eq. (7) of the sampled costs (log-sum-exp)
    C = r.costs
    F_emp = C.min() - lam * np.log(np.mean(np.exp(-(C - C.min()) / lam)))
    assert r.free_energy == pytest.approx(F_emp, rel=1e-12)
    assert solver.free_energy == r.free_energy

    # 3) ... and it matches the closed form within Monte-Carlo error
    le1 = log_mean_exp_gaussian(c0, c1, c2, S1, lam)
    le2 = log_mean_exp_gaussian(c0, c1, c2, S1, lam / 2)  # E[w^2] for w = exp(-C/lam)
    F_true = -lam * le1
    rel_var = np.exp(le2 - 2 * le1) - 1.0  # Var(w) / E[w]^2
    sd_F = lam * np.sqrt(rel_var / K)  # delta method on -lam log(mean w)
    assert abs(r.free_energy - F_true) < 5 * sd_F, (r.free_energy, F_true, sd_F)
    assert sd_F < 0.01 * abs(F_true)  # the check is sharp

    # 4) update (Eq. (18)): U+ = U + alpha sum_k w_k eps_k with the reported weights
    w = np.exp(-(C - C.min()) / lam)
    w /= w.sum()
    np.testing.assert_allclose(r.weights, w, rtol=1e-12)
    order = np.argsort(C, kind="stable")
    U_new = U + 0.3 * (w[order][:, None] * eps).sum(axis=0)
    np.testing.assert_allclose(r.plan[0], U_new, rtol=1e-10, atol=1e-12)


def test_control_limits_respected_and_clamped_noise_in_cost():
    lo, hi = np.array([-0.2, -1.0]), np.array([0.6, 0.1])
    solver, U, S1, path_cost, _ = one_step_problem(K=3000, limits=(lo, hi))
    r = solver.optimize()
    tr = solver.weighted_trajectories()
    v = tr.controls[:, 0, :]
    assert np.all(v >= lo) and np.all(v <= hi)
    assert np.mean(np.isclose(v, lo) | np.isclose(v, hi)) > 0.2  # limits were active
    # costs use the clamped noise eps = clamp(U + eps) - U
    np.testing.assert_allclose(tr.costs[:300], [path_cost(e) for e in v[:300] - U], rtol=1e-12)
    assert np.all(r.plan >= lo) and np.all(r.plan <= hi)
    assert np.all(solver.action_from_policy() >= lo) and np.all(solver.action_from_policy() <= hi)

    # closed loop on the pendulum: every applied torque within [-1.5, 2]
    s = _core.MppiSettings(num_samples=128, horizon=50, dt=0.05, noise_sigma=np.eye(1) * 25.0,
                           lambda_=1.0, smoothing=0.5, u_min=[-1.5], u_max=[2.0], seed=2)
    p = _core.MppiSolver(_core.PendulumDynamics(), _core.QuadraticCost(np.diag([10.0, 1.0]), np.zeros((1, 1))),
                         None, s)
    x = np.array([np.pi, 0.0])
    applied, at_limit = [], []
    for i in range(20):
        p.set_state(x, 0.05 * i)
        r = p.optimize()
        assert r.plan.min() >= -1.5 and r.plan.max() <= 2.0
        v = p.weighted_trajectories().controls
        assert v.min() >= -1.5 and v.max() <= 2.0
        at_limit.append(np.mean((v == -1.5) | (v == 2.0)))
        u = p.action_from_policy()
        applied.append(u[0])
        x = _core.integrate(_core.PendulumDynamics(), x, u, 0.05, "rk4")
        p.shift(1)
    assert min(applied) >= -1.5 and max(applied) <= 2.0
    assert np.mean(at_limit) > 0.2  # the limits were active on the sampled controls


def test_pendulum_swing_up_closed_loop():
    """Swing-up from hanging (theta = pi) with 5 N m (< m g l = 9.81 N m: needs pumping)."""
    dyn = _core.PendulumDynamics()
    s = _core.MppiSettings(num_samples=256, horizon=50, dt=0.05, noise_sigma=np.eye(1) * 25.0,
                           lambda_=1.0, step_size=0.5, num_iterations=4, smoothing=0.5,
                           u_min=[-5.0], u_max=[5.0], seed=0, num_threads=2)
    solver = _core.MppiSolver(dyn, _core.QuadraticCost(np.diag([10.0, 1.0]), np.zeros((1, 1))), None, s)
    x, dt = np.array([np.pi, 0.0]), 0.05
    thetas = []
    for i in range(160):  # 8 s
        solver.set_state(x, i * dt)
        solver.optimize()
        u = solver.action_from_policy()
        x = _core.integrate(dyn, x, u, dt, "rk4")
        solver.shift(1)
        thetas.append(x[0])
    thetas = np.array(thetas)
    assert np.max(np.abs(thetas[-20:])) < 0.15, np.abs(thetas[-20:]).max()  # last second upright
    assert np.max(np.abs(thetas)) < 2 * np.pi


def test_shift_tail_modes_and_action_lookup():
    for mode, expected_tail in [("repeat_last", 10.0), ("zero", 0.0), ("nominal", -2.0)]:
        s = _core.MppiSettings(num_samples=4, horizon=5, dt=0.1, tail_fill=mode, tail_nominal=[-2.0])
        solver = _core.MppiSolver(_core.PendulumDynamics(), _core.QuadraticCost(np.eye(2), np.eye(1)), None, s)
        if mode == "nominal":
            np.testing.assert_array_equal(solver.plan, -2.0 * np.ones((5, 1)))  # initial plan
        solver.set_state([0.0, 0.0], 1.0)
        plan = np.arange(1.0, 6.0)[:, None] * 2.0  # 2, 4, ..., 10
        solver.set_plan(plan)
        assert solver.action_from_policy(1.25)[0] == 6.0  # zero-order hold, step 2 starts at 1.2
        solver.shift(2)
        np.testing.assert_array_equal(solver.plan[:, 0], [6.0, 8.0, 10.0, expected_tail, expected_tail])
        assert solver.action_from_policy()[0] == 6.0
        assert solver.action_from_policy(1.25)[0] == 6.0  # same time, same control after the shift
        solver.shift(9)
        np.testing.assert_array_equal(solver.plan[:, 0], [10.0 if mode == "repeat_last" else expected_tail] * 5)


def test_smoothing_is_an_ar1_low_pass_with_sigma_marginals():
    K, Hs, beta = 4000, 40, 0.8
    s = _core.MppiSettings(num_samples=K, horizon=Hs, dt=0.05, noise_sigma=np.eye(1) * 2.0,
                           smoothing=beta, num_saved_trajectories=K, seed=4)
    solver = _core.MppiSolver(_core.PendulumDynamics(), _core.QuadraticCost(np.eye(2), np.eye(1)), None, s)
    solver.set_state([0.0, 0.0], 0.0)
    solver.optimize()
    eps = solver.weighted_trajectories().controls[:, :, 0]  # plan was zero: v = eps
    var = eps.var(axis=0)
    np.testing.assert_allclose(var, 2.0, rtol=0.12)  # marginal covariance stays Sigma
    lag1 = np.mean(eps[:, 1:] * eps[:, :-1]) / np.mean(eps**2)
    assert abs(lag1 - beta) < 0.02


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(lambda_=0.0), "lambda_"),
        (dict(lambda_=-1.0), "lambda_"),
        (dict(noise_sigma=np.array([[1.0, 2.0], [2.0, 1.0]])), "positive definite"),
        (dict(noise_sigma=np.array([[1.0, 0.5], [0.0, 1.0]])), "symmetric"),
        (dict(noise_sigma=np.eye(3)), "noise_sigma has shape"),
        (dict(num_samples=0), "num_samples"),
        (dict(horizon=0), "horizon"),
        (dict(dt=0.0), "dt"),
        (dict(dt=float("nan")), "dt"),
        (dict(step_size=0.0), "step_size"),
        (dict(gamma=1.5), "gamma"),
        (dict(control_cost_weight=-0.1), "control_cost_weight"),
        (dict(num_iterations=0), "num_iterations"),
        (dict(num_threads=0), "num_threads"),
        (dict(smoothing=1.0), "smoothing"),
        (dict(u_min=[-1.0]), "u_min has size"),
        (dict(u_min=[1.0, 1.0], u_max=[0.0, 2.0]), "u_min must be <= u_max"),
        (dict(tail_nominal=[1.0]), "tail_nominal"),
        (dict(num_saved_trajectories=-1), "num_saved_trajectories"),
        (dict(integrator="semi_implicit_euler"), "semi_implicit_euler"),
    ],
)
def test_invalid_settings_raise_value_error(change, message):
    s = _core.MppiSettings(num_samples=10, horizon=5, dt=0.1, noise_sigma=np.eye(2))
    for k, v in change.items():
        setattr(s, k, v)
    dyn = _core.LinearDynamics(np.eye(2), np.eye(2))  # nq = 0
    with pytest.raises(ValueError, match=message):
        _core.MppiSolver(dyn, _core.QuadraticCost(np.eye(2), np.eye(2)), None, s)


def test_invalid_models_and_arguments():
    s = _core.MppiSettings(num_samples=10, horizon=5, dt=0.1)
    dyn = _core.LinearDynamics(np.eye(2), np.eye(2)[:, :1])
    with pytest.raises(ValueError, match="running_cost"):
        _core.MppiSolver(dyn, _core.QuadraticCost(np.eye(2), np.eye(2)), None, s)
    with pytest.raises(ValueError, match="terminal_cost"):
        _core.MppiSolver(dyn, _core.QuadraticCost(np.eye(2), np.eye(1)), _core.QuadraticCost(np.eye(3), np.zeros((0, 0))), s)
    with pytest.raises(ValueError, match="unknown integrator"):
        s.integrator = "rk5"
    with pytest.raises(ValueError, match="unknown tail fill"):
        s.tail_fill = "wrap"
    with pytest.raises(TypeError, match="no attribute"):
        _core.MppiSettings(num_sample=3)
    solver = _core.MppiSolver(dyn, _core.QuadraticCost(np.eye(2), np.eye(1)), None, s)
    with pytest.raises(RuntimeError, match="set_state"):
        solver.optimize()
    with pytest.raises(ValueError, match="x has size 3, expected 2"):
        solver.set_state(np.zeros(3), 0.0)
    with pytest.raises(ValueError, match="plan has shape"):
        solver.set_plan(np.zeros((4, 1)))
    with pytest.raises(ValueError, match="num_steps"):
        solver.shift(-1)


def test_python_terminal_value_hook_receives_final_state_and_zero_control():
    """The terminal hook is any CostModel (e.g. a learned value written in Python)."""
    seen = []

    class Terminal(_core.CostModel):
        def __init__(self):
            _core.CostModel.__init__(self, 2, 1)

        def calc(self, data, t, x, u):
            seen.append((t, np.array(x), np.array(u)))
            data.value = 100.0 * x[0] ** 2

        def calc_diff(self, data, t, x, u):
            self.calc(data, t, x, u)

    s = _core.MppiSettings(num_samples=8, horizon=3, dt=0.1, num_saved_trajectories=8, num_threads=2, seed=3)
    dyn = _core.PendulumDynamics()
    zero = _core.QuadraticCost(np.zeros((2, 2)), np.zeros((1, 1)))
    solver = _core.MppiSolver(dyn, zero, Terminal(), s)
    solver.set_state([0.3, 0.0], 2.0)
    r = solver.optimize()
    tr = solver.weighted_trajectories()
    t_term = [t for t, _, _ in seen]
    assert np.allclose(t_term, 2.3)
    assert all(np.array_equal(u, [0.0]) for _, _, u in seen)
    # cost = KL term (plan is zero: 0) + terminal at the last state
    np.testing.assert_allclose(tr.costs, 100.0 * tr.states[:, -1, 0] ** 2, rtol=1e-12)
    assert r.nominal_cost == pytest.approx(100.0 * r.nominal_states[-1, 0] ** 2)


# ----------------------------------------------------------------------------------------------
def test_ballbot_stabilise_and_reach_target():
    """Ballbot (deep-value-mpc): stay upright and reach a target 2 m away within 5 s.

    Costs of dmpc_core.tasks.ballbot (tracking Q with heavier ball-velocity weights for damping,
    R = 2 I, upright term, discrete-LQR terminal value) on a 0.5 s horizon. The Eq. (16) term is
    scaled by control_cost_weight = 0.01: with nu = 1 its spread across samples (sustained
    torques of several N m against sigma = 0.5 over 25 steps) collapses the effective sample
    size to 1 and the robot falls (checked while tuning)."""
    from dmpc_core.tasks import ballbot as task

    dyn = _core.BallbotDynamics()
    dt, target = 0.02, np.array([2.0, 0.0])
    cs = task.BallbotCostSettings()
    q = np.asarray(cs.q_diag, dtype=float)
    q[5:7] = 200.0
    Q, R = np.diag(q), cs.r * np.eye(3)
    x_ref = np.zeros(10)
    x_ref[:2] = target
    running = _core.SumCost(10, 3)
    running.add("track", _core.QuadraticCost(Q, R, x_ref, np.zeros(3)))
    running.add("upright", _core.UprightCost(10, 3, task.PITCH, task.ROLL, 8, 9, cs.w_tilt, cs.w_tilt_rate))
    P = task.upright_lqr_value(dyn, Q, R, dt)
    terminal = _core.QuadraticCost(P, np.zeros((0, 0)), x_ref, np.zeros(0))
    s = _core.MppiSettings(num_samples=256, horizon=25, dt=dt, noise_sigma=np.eye(3) * 0.25,
                           lambda_=3.0, control_cost_weight=0.01, u_min=[-20.0] * 3,
                           u_max=[20.0] * 3, seed=0, num_threads=2)
    solver = _core.MppiSolver(dyn, running, terminal, s)
    x = np.zeros(10)
    tilt, dist = [], []
    for i in range(250):  # 5 s
        solver.set_state(x, i * dt)
        solver.optimize()
        x = _core.integrate(dyn, x, solver.action_from_policy(), dt, "rk4")
        solver.shift(1)
        tilt.append(task.tilt(x)[0])
        dist.append(np.linalg.norm(x[:2] - target))
    assert max(tilt) < 0.2, max(tilt)  # stayed upright (about 0.1 rad at most when tuned)
    assert min(dist) < 0.15, min(dist)  # reached the target (0.06-0.12 m over three seeds)
    assert dist[-1] < 0.3, dist[-1]  # and stayed near it


def test_control_cost_weight_scales_the_eq16_term():
    for nu in (0.0, 0.25):
        solver, U, S1, path_cost, _ = one_step_problem(K=200, control_cost_weight=nu)
        solver.optimize()
        tr = solver.weighted_trajectories()
        eps = tr.controls[:, 0, :] - U
        kl = np.array([0.5 * U @ np.linalg.solve(S1, U + 2 * e) for e in eps]) * 0.5  # lambda=0.5
        np.testing.assert_allclose(tr.costs, [path_cost(e) - (1 - nu) * k for e, k in zip(eps, kl)],
                                   rtol=1e-12, atol=1e-12)
