"""The local dynamics fit on the MuJoCo obstacle course agrees with MuJoCo's own finite-difference
linearisation (mjd_transitionFD chained over the 5 sub-steps of a control step) in free space."""
import numpy as np

from dmpc_core import _core
from dmpc_core.tasks.obstacle_course import ObstacleCourse, ObstacleCourseSettings


def test_dynamics_fit_matches_mujoco_finite_differences():
    task = ObstacleCourse(ObstacleCourseSettings(horizon=20, starts_y=[0.0]))
    rng = np.random.default_rng(0)
    X, U = [], []
    for _ in range(25):  # sigma = 0.3 exploration around zero force from spread starts, far from the walls
        x0 = np.concatenate([0.2 * rng.standard_normal(2), 0.3 * rng.standard_normal(2)])
        x, u = task.rollout(0, lambda t, x, eps: np.clip(0.3 * eps, -1, 1), rng, noise=True, x0=x0)
        X.append(x)
        U.append(u)
    prior = _core.GmmPrior(_core.GmmPriorSettings(max_clusters=5, min_samples_per_cluster=40, max_samples=40))
    prior.update([_core.dynamics_points(x, u) for x, u in zip(X, U)])
    dyn = _core.fit_dynamics(X, U, prior)
    errs = []
    for t in range(task.T - 1):
        xm, um = np.mean([x[t] for x in X], 0), np.mean([u[t] for u in U], 0)
        A, B = task.linearize_fd(xm, um)
        errs.append(np.abs(dyn.F[t] - np.hstack([A, B])).max())
        # the fitted offset predicts the next mean state
        assert np.allclose(dyn.F[t] @ np.concatenate([xm, um]) + dyn.f[t], np.mean([x[t + 1] for x in X], 0), atol=1e-3)
    assert max(errs) <= 1e-3, errs  # measured 6e-5 (the specification asks for 1e-2)
    # the fit is not trivially right: zero-force dynamics without the input column is far off
    A, B = task.linearize_fd(np.zeros(4), np.zeros(2))
    assert np.abs(B).max() > 5e-3


def _saturated_samples(task, sigma, n=25, seed=1):
    """Rollouts in free space whose commands (N(0, sigma^2) per step) mostly exceed the +-1 range."""
    rng = np.random.default_rng(seed)
    X, U = [], []
    for _ in range(n):
        x0 = np.concatenate([0.2 * rng.standard_normal(2), 0.3 * rng.standard_normal(2)])
        x, u = task.rollout(0, lambda t, x, eps: sigma * eps, rng, noise=True, x0=x0)
        X.append(x)
        U.append(u)
    return X, U


def test_saturated_commands_fit_the_plants_control_authority():
    """With commands that mostly saturate, the agent's dynamics fit (on the applied control, the
    default) keeps MuJoCo's control columns; a fit on the commanded control regresses x' on commands
    the plant never applied and shrinks them (the failure this guards against)."""
    from dmpc_core.agents.mdgps import MdgpsAgent, MdgpsSettings
    from dmpc_core.policies.gaussian_mlp import GaussianMlpSettings

    task = ObstacleCourse(ObstacleCourseSettings(horizon=20, starts_y=[0.0]))
    X, U = _saturated_samples(task, sigma=3.0)
    assert np.mean(np.abs(np.concatenate(U)) > 1.0) > 0.6  # most commands saturate
    ratios = {}
    for mode in ("applied", "commanded"):
        agent = MdgpsAgent(task, MdgpsSettings(dynamics_control=mode, policy=GaussianMlpSettings(iterations=1)))
        dyn = agent.fit_dynamics(agent.conds[0], X, U)
        r = []
        for t in range(task.T - 1):
            xm = np.mean([x[t] for x in X], 0)
            um = np.mean([task.applied_control(u[t]) for u in U], 0)
            _, B = task.linearize_fd(xm, um)
            r.append(np.diag(np.array(dyn.F[t])[2:, 4:]) / np.diag(B[2:]))
        ratios[mode] = np.array(r)
    assert np.all(np.abs(ratios["applied"] - 1.0) < 0.02), ratios["applied"]
    assert np.all(ratios["commanded"] < 0.6), ratios["commanded"]  # measured about 0.3
    assert MdgpsSettings().dynamics_control == "applied"
