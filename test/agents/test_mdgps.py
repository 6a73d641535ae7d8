"""MDGPS on the MuJoCo obstacle course: a short run improves the global policy; step rules."""
import numpy as np
import pytest

from dmpc_core.agents.mdgps import MdgpsAgent, MdgpsSettings, new_step_mult
from dmpc_core.policies.gaussian_mlp import GaussianMlpSettings
from dmpc_core.tasks.obstacle_course import ObstacleCourse, ObstacleCourseSettings


def small_agent(seed=0, **kw):
    task = ObstacleCourse(ObstacleCourseSettings(horizon=100, starts_y=[-0.75, 0.75]))
    s = MdgpsSettings(policy=GaussianMlpSettings(iterations=300), **kw)
    return MdgpsAgent(task, s, seed=seed)


def test_two_iterations_lower_the_global_policy_cost():
    agent = small_agent()
    before = agent.evaluate()["eval/global_cost"]
    for _ in range(2):
        stats = agent.run_iteration()
        # the C-step met its KL bound on every condition
        for i in range(2):
            assert 0.9 <= stats[f"cstep/c{i}_kl_over_eps"] <= 1.1
    assert stats["eval/global_cost"] < 0.8 * before
    assert stats["sstep/loss_last"] < stats["sstep/loss_first"]
    # checkpoint round trip: a restored agent has the same controllers and step sizes
    other = small_agent(seed=1)
    other.policy.load_state_dict(agent.policy.state_dict())
    other.load_state_dict(agent.state_dict())
    assert other.iteration == 2
    for a, b in zip(agent.conds, other.conds):
        assert np.allclose(np.array(a.traj.K), np.array(b.traj.K)) and a.step_mult == b.step_mult
    assert np.isclose(other.evaluate()["eval/global_cost"], stats["eval/global_cost"])


def test_step_rule_hand_computed():
    # predicted 10, actual 10 (as predicted): mult = 10 / (2 * 1e-4) -> clipped to 5
    assert new_step_mult(10.0, 10.0, 1.0, 0.001, 2.0) == 2.0
    # predicted 10, actual 0: mult = 10 / 20 = 0.5
    assert new_step_mult(10.0, 0.0, 1.0, 0.001, 2.0) == pytest.approx(0.5)
    # actual much worse than predicted: the multiplier is clipped at 0.1
    assert new_step_mult(10.0, -500.0, 1.0, 0.001, 2.0) == pytest.approx(0.1)
    # eps' = eps (l^k_{k-1} - l^{k-1,pi}) / 2 (l^k_{k-1} - l^k_k) with l^{k-1,pi} = 100, l^k_{k-1} = 80, l^k_k = 90
    pred, act = 100.0 - 80.0, 100.0 - 90.0
    assert new_step_mult(pred, act, 0.5, 0.001, 2.0) == pytest.approx(0.5 * (80 - 100) / (2 * (80 - 90)))
    assert new_step_mult(10.0, 0.0, 0.002, 0.001, 2.0) == pytest.approx(0.001)


def test_settings_are_validated():
    with pytest.raises(ValueError, match="sampling"):
        small_agent(sampling="both")
    with pytest.raises(ValueError, match="reference"):
        small_agent(sampling="global", reference="local")
    with pytest.raises(ValueError, match="dynamics_control"):
        small_agent(dynamics_control="clipped")


def test_global_policy_controller_runs_the_trained_policy(tmp_path):
    """The deployable controller returns the noise-free network mean (clipped), also after loading
    the policy from a checkpoint written like the experiments write it."""
    from dmpc_core.control.global_policy import GlobalPolicyController
    from dmpc_core.experiments._common import save_run

    agent = small_agent()
    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, 4))
    agent.policy.train(X, X[:, :2] * 3.0, np.tile(np.eye(2), (50, 1, 1)))
    save_run(tmp_path / "checkpoint.pt", agent, [1.0], 0.0, {"experiment": "mdgps-obstacle"})
    ctrl = GlobalPolicyController.from_checkpoint(tmp_path / "checkpoint.pt", 4, 2, agent.s.policy,
                                                  u_min=[-1, -1], u_max=[1, 1])
    assert ctrl.is_ok(ctrl.update(0.0, X[0]))
    for x in X[:5]:
        assert np.allclose(ctrl.control(0.0, x), np.clip(agent.policy.mean(x[None])[0], -1, 1))
    assert not ctrl.is_ok(ctrl.update(0.0, np.full(4, np.nan)))
    assert np.array_equal(ctrl.control(0.0, np.full(4, np.nan)), np.zeros(2))
