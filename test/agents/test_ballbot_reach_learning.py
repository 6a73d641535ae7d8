"""Deep Value MPC learns on Ballbot reach (config/ballbot_reach.yaml): a fixed seed, a small budget,
and the last critic must beat the untrained one on the 8 evaluation starts by a margin.

The untrained critic has a zero output layer (a constant value): the actor only balances and the
evaluation cost is that of standing still (deterministic, the same for every seed). The margin
comes from the measured spread of the improvement after this budget (docs/log/2026-12-07-ballbot-reach.md,
"Suite test margin"): 3.23-4.12 over six seeds (0-4 and 7), against 0 for a critic that does not
move the actor and < 0 for one that drives it away or makes it fall (a fall costs a penalty of 10).
MARGIN = 2.0 is well below the smallest of them, so the test fails if learning breaks."""
from __future__ import annotations

import numpy as np
import pytest

from dmpc_core.agents.deep_value_mpc import DeepValueMpc, evaluate
from dmpc_core.critics.networks import LeadValueMLP, LeadValueMLPSettings
from dmpc_core.experiments.ballbot_reach import load_config

SEED = 7
ITERATIONS = 12  # the start curriculum ends at iteration 8 (before it the far starts get worse)
MARGIN = 2.0  # eval cost units (mean over the 8 starts of sum ||p - g|| dt + q_f)


def budget_config(seed: int = SEED):
    return load_config(None, {"training.seed": seed, "training.iterations": ITERATIONS, "training.eval_every": 0})


def learned_improvement(seed: int = SEED) -> tuple:
    agent = DeepValueMpc(budget_config(seed))
    before = evaluate(agent.task, agent.actor)
    for _ in range(ITERATIONS):
        agent.run_iteration()
    after = evaluate(agent.task, agent.actor)
    return before, after


def test_last_critic_beats_the_untrained_one():
    before, after = learned_improvement()
    assert before["eval/success_rate"] <= 1 / 8  # the layout needs learning
    assert after["eval/falls"] == 0
    assert after["eval/mean_cost"] < before["eval/mean_cost"] - MARGIN, (before["eval/mean_cost"], after["eval/mean_cost"])


def test_lead_critic_ties_velocity_to_position_and_exports_as_a_plain_mlp():
    import torch

    from dmpc_core.critics.bundle import load_bundle
    from dmpc_core.critics.export import bundle_bytes

    torch.manual_seed(0)
    net = LeadValueMLP(LeadValueMLPSettings(nx=10, ng=2, hidden=(8, 8), lead=0.3, time_to_go_scale=1.5))
    x = torch.randn(5, 10, dtype=torch.float64)
    g = torch.randn(5, 2, dtype=torch.float64)
    tau = torch.rand(5, dtype=torch.float64) * 3
    d = {k: v.detach().numpy() for k, v in net.value_and_derivatives(x, g, tau).items()}
    np.testing.assert_allclose(d["dvalue_dx"][:, [5, 6]], 0.3 * d["dvalue_dx"][:, [0, 1]], rtol=1e-10, atol=1e-12)
    assert np.all(d["dvalue_dx"][:, [2, 3, 4, 7, 8, 9]] == 0)
    # goal-relative: shifting p and g together leaves V unchanged
    shift = torch.zeros(5, 10, dtype=torch.float64)
    shift[:, :2] = 0.7
    np.testing.assert_allclose(net(x + shift, g + 0.7, tau).detach(), net(x, g, tau).detach(), rtol=1e-12)
    # the exported bundle (a plain MLP) evaluates the same value natively
    native = load_bundle(bundle_bytes(net.plain())).to_native()
    for i in range(5):
        native.set_goal(g[i].numpy())
        assert native.value(float(tau[i]), x[i].numpy()) == pytest.approx(
            float(net(x[i:i + 1], g[i:i + 1], tau[i:i + 1]).detach()), rel=1e-10)
    with pytest.raises(ValueError, match="fixed"):
        net.set_input_normalization(torch.zeros(13), torch.ones(13))
