"""Critic training utilities: replay buffer, targets, trainer, Polyak math, checkpoints."""
import copy

import numpy as np
import pytest
import torch

from dmpc_core.critics import (
    QMLP,
    QMLPSettings,
    ValueEnsemble,
    ValueEnsembleSettings,
    ValueMLP,
    ValueMLPSettings,
)
from dmpc_core.critics.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from dmpc_core.critics.replay import ReplayBuffer, ReplaySpec
from dmpc_core.critics.targets import (
    TrajectoryOptimizationTargets,
    bellman_targets,
    floored_targets,
    n_step_targets,
    one_step_q_targets,
    one_step_value_targets,
    supervised_targets,
)
from dmpc_core.critics.training import CriticTrainer, CriticTrainerSettings, polyak_update

torch.set_num_threads(1)  # small nets: one thread is fastest and robust on a shared machine


def _fill(buffer, n, rng, nu=0):
    spec = buffer.spec
    fields = dict(
        state=rng.normal(size=(n, spec.nx)),
        goal=rng.normal(size=(n, spec.ng)),
        time_to_go=rng.uniform(0, 3, size=n),
        cost=rng.uniform(0, 1, size=n),
        next_state=rng.normal(size=(n, spec.nx)),
        next_time_to_go=rng.uniform(0, 3, size=n),
        done=rng.uniform(size=n) < 0.1,
    )
    if nu:
        fields["action"] = rng.normal(size=(n, nu))
    buffer.add_batch(**fields)
    return fields


# -- replay --------------------------------------------------------------------------------
def test_replay_wraps_around_and_keeps_newest():
    buf = ReplayBuffer(ReplaySpec(capacity=5, nx=2, ng=1))
    for i in range(7):
        buf.add(state=[i, -i], goal=[0.5], time_to_go=i, cost=10 + i, next_state=[i + 1, 0],
                next_time_to_go=i - 1, done=i == 6)
    assert len(buf) == 5 and buf.ptr == 2 and buf.total_added == 7
    # slots 0, 1 were overwritten by transitions 5, 6; slots 2..4 hold 2..4
    assert buf.data["cost"].tolist() == [15, 16, 12, 13, 14]
    assert buf.data["state"][1].tolist() == [6, -6] and buf.data["done"].tolist() == [0, 1, 0, 0, 0]
    # a batch larger than the capacity keeps only its newest transitions
    big = ReplayBuffer(ReplaySpec(capacity=3, nx=1))
    big.add_batch(state=np.arange(8.0)[:, None], time_to_go=np.zeros(8), cost=np.arange(8.0),
                  next_state=np.zeros((8, 1)), next_time_to_go=np.zeros(8), done=np.zeros(8))
    assert sorted(big.data["cost"].tolist()) == [5, 6, 7] and big.total_added == 8
    with pytest.raises(ValueError, match="state must have shape"):
        buf.add(state=[1, 2, 3], goal=[0], time_to_go=0, cost=0, next_state=[0, 0],
                next_time_to_go=0, done=0)
    with pytest.raises(ValueError, match="non-finite"):
        buf.add(state=[np.nan, 2], goal=[0], time_to_go=0, cost=0, next_state=[0, 0],
                next_time_to_go=0, done=0)


def test_replay_save_load_roundtrip_exact(tmp_path):
    rng = np.random.default_rng(0)
    buf = ReplayBuffer(ReplaySpec(capacity=50, nx=3, ng=2, nu=2))
    _fill(buf, 37, rng, nu=2)
    _fill(buf, 30, rng, nu=2)  # wraps
    path = tmp_path / "replay.npz"
    buf.save(path)
    again = ReplayBuffer.load(path)
    assert again.spec == buf.spec
    assert (again.ptr, again.size, again.total_added) == (buf.ptr, buf.size, buf.total_added)
    for k in buf.data:
        assert np.array_equal(again.data[k], buf.data[k]), k
    b1 = buf.sample(16, np.random.default_rng(9))
    b2 = again.sample(16, np.random.default_rng(9))
    for k in b1:
        assert np.array_equal(b1[k], b2[k])
    (tmp_path / "bad.npz").write_bytes(path.read_bytes()[:100])
    with pytest.raises(ValueError, match="cannot read replay buffer"):
        ReplayBuffer.load(tmp_path / "bad.npz")


# -- targets -------------------------------------------------------------------------------
def test_bellman_and_n_step_targets():
    y = bellman_targets([1.0, 2.0], [10.0, 10.0], [False, True], 0.9)
    assert np.allclose(y, [1.0 + 9.0, 2.0])
    costs = np.array([[1.0, 1.0, 1.0], [1.0, 2.0, 4.0]])
    dones = np.array([[0, 0, 0], [0, 1, 0]], dtype=bool)
    y = n_step_targets(costs, np.array([5.0, 5.0]), dones, 0.5)
    assert np.allclose(y, [1 + 0.5 + 0.25 + 0.125 * 5, 1 + 0.5 * 2])
    yk = n_step_targets(costs, np.array([[5.0, 1.0], [5.0, 1.0]]), dones, 0.5)
    assert np.allclose(yk, [[2.375, 1.875], [2.0, 2.0]])


def test_one_step_targets_use_target_network():
    torch.manual_seed(0)
    net = ValueMLP(ValueMLPSettings(nx=2, ng=1, hidden=(4,)))
    rng = np.random.default_rng(1)
    buf = ReplayBuffer(ReplaySpec(capacity=20, nx=2, ng=1))
    _fill(buf, 20, rng)
    batch = buf.sample(8, rng)
    y = one_step_value_targets(0.95)(batch, net)
    with torch.no_grad():
        v = net(torch.from_numpy(batch["next_state"]), torch.from_numpy(batch["goal"]),
                torch.from_numpy(batch["next_time_to_go"])).numpy()
    assert np.allclose(y, batch["cost"] + 0.95 * v * (1 - batch["done"]))


def test_trajectory_optimization_hook():
    """POLO Eq. 7 hook: a fake 2-step planner with known costs gives the n-step target."""
    net = ValueMLP(ValueMLPSettings(nx=1, hidden=(3,)))
    net.set_output_affine(0.0, 7.0)  # V == 7 everywhere
    seen = {}

    def plan(x, g, tau, terminal_value):
        seen["v"] = terminal_value(x, g, tau)
        return np.ones((len(x), 2)), x + 1.0, tau - 0.2, np.zeros((len(x), 2), dtype=bool)

    batch = {"state": np.zeros((4, 1)), "goal": np.zeros((4, 0)), "time_to_go": np.ones(4)}
    y = TrajectoryOptimizationTargets(plan, 0.5)(batch, net)
    assert np.allclose(seen["v"], 7.0) and np.allclose(y, 1 + 0.5 + 0.25 * 7.0)


# -- Polyak --------------------------------------------------------------------------------
def test_polyak_update_math():
    torch.manual_seed(0)
    online = ValueMLP(ValueMLPSettings(nx=2, hidden=(3,)))
    target = copy.deepcopy(online)
    with torch.no_grad():
        for p in online.parameters():
            p.add_(1.0)
        online.input_std.fill_(2.0)
    before = [p.clone() for p in target.parameters()]
    polyak_update(target, online, 0.9)
    for pt, p0, p in zip(target.parameters(), before, online.parameters()):
        assert torch.allclose(pt, 0.9 * p0 + 0.1 * p, rtol=0, atol=1e-15)
    assert torch.equal(target.input_std, online.input_std)
    polyak_update(target, online, 0.0)
    assert all(torch.equal(a, b) for a, b in zip(target.parameters(), online.parameters()))
    with pytest.raises(ValueError):
        polyak_update(target, online, 1.5)


# -- trainer -------------------------------------------------------------------------------
def _quadratic_buffer(n, nx, rng):
    buf = ReplayBuffer(ReplaySpec(capacity=n, nx=nx))
    _fill(buf, n, rng)
    return buf


def _sq_norm(batch):
    return np.sum(batch["state"] ** 2, axis=1)


def test_trainer_fits_known_value_function():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    nx = 2
    buf = _quadratic_buffer(4000, nx, rng)
    net = ValueMLP(ValueMLPSettings(nx=nx, hidden=(32, 32)))
    settings = CriticTrainerSettings(learning_rate=3e-3, weight_decay=0.0, polyak=0.9,
                                     batches_per_update=50, batch_size=256, seed=1)
    trainer = CriticTrainer(net, settings, target_fn=supervised_targets(_sq_norm))
    trainer.fit_input_normalization(buf)
    first = trainer.update(buf)
    for _ in range(29):
        stats = trainer.update(buf)
    assert stats["critic/loss_mean"] < 0.05 * first["critic/loss_mean"]
    # held-out error of the Polyak target network (what the actor gets)
    x = rng.normal(size=(500, nx))
    with torch.no_grad():
        v = trainer.target(torch.from_numpy(x), None, torch.ones(500, 1, dtype=torch.float64)).numpy()
    truth = np.sum(x**2, axis=1)
    rmse = float(np.sqrt(np.mean((v - truth) ** 2)))
    assert rmse < 0.1 * float(np.std(truth)), rmse
    assert trainer.gradient_steps == 1500 and trainer.updates == 30


def test_ensemble_and_q_trainers_reduce_loss():
    torch.manual_seed(2)
    rng = np.random.default_rng(2)
    buf = ReplayBuffer(ReplaySpec(capacity=1000, nx=2, nu=1))
    _fill(buf, 1000, rng, nu=1)
    ens = ValueEnsemble(ValueEnsembleSettings(ValueMLPSettings(nx=2, hidden=(16, 16)), num_members=3, kappa=1.0))
    priors_before = [p.clone() for p in ens.priors.parameters()]
    settings = CriticTrainerSettings(learning_rate=1e-2, batches_per_update=20, batch_size=64,
                                     target_noise_std=0.01)
    tr = CriticTrainer(ens, settings, target_fn=supervised_targets(_sq_norm))
    tr.fit_input_normalization(buf)
    first = tr.update(buf)
    for _ in range(15):
        last = tr.update(buf)
    assert last["critic/loss_mean"] < 0.3 * first["critic/loss_mean"]
    assert all(torch.equal(a, b) for a, b in zip(priors_before, ens.priors.parameters()))

    q = QMLP(QMLPSettings(nx=2, nu=1, hidden=(16,)))
    with pytest.raises(ValueError, match="needs a target_fn"):
        CriticTrainer(q)

    def next_value(x_next, goal, target_q):  # V(x') = 0: Q = expected immediate cost
        return np.zeros(len(x_next))

    trq = CriticTrainer(q, settings, target_fn=one_step_q_targets(0.9, next_value))
    f = trq.update(buf)
    for _ in range(10):
        lq = trq.update(buf)
    assert lq["critic/loss_mean"] < f["critic/loss_mean"]


# -- checkpoints ---------------------------------------------------------------------------
def _learner(seed=0):
    torch.manual_seed(seed)
    net = ValueMLP(ValueMLPSettings(nx=3, ng=1, hidden=(8, 8)))
    settings = CriticTrainerSettings(batches_per_update=3, batch_size=16, seed=5)
    return CriticTrainer(net, settings), ReplayBuffer(ReplaySpec(capacity=64, nx=3, ng=1))


def test_checkpoint_resume_is_identical(tmp_path):
    rng = np.random.default_rng(3)
    trainer, buf = _learner(0)
    _fill(buf, 80, rng)
    trainer.update(buf)
    trainer.update(buf)
    path = tmp_path / "ckpt.pt"
    save_checkpoint(path, trainer, buf, extra={"episode": 12})
    # continue the original
    next_batch = buf.sample(16, copy.deepcopy(trainer.rng))
    trainer.update(buf)
    ref_weights = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    ref_target = {k: v.clone() for k, v in trainer.target.state_dict().items()}
    # a fresh learner with different init resumes from the checkpoint
    trainer2, buf2 = _learner(99)
    extra = load_checkpoint(path, trainer2, buf2)
    assert extra == {"episode": 12}
    assert (trainer2.gradient_steps, trainer2.updates) == (6, 2)
    for k in buf.data:
        assert np.array_equal(buf.data[k], buf2.data[k])
    resumed_batch = buf2.sample(16, copy.deepcopy(trainer2.rng))
    assert np.array_equal(next_batch["indices"], resumed_batch["indices"])
    trainer2.update(buf2)
    for k, v in trainer2.model.state_dict().items():
        assert torch.equal(v, ref_weights[k]), k
    for k, v in trainer2.target.state_dict().items():
        assert torch.equal(v, ref_target[k]), k


def test_corrupted_checkpoint_rejected(tmp_path):
    trainer, buf = _learner(0)
    _fill(buf, 20, np.random.default_rng(0))
    path = tmp_path / "ckpt.pt"
    save_checkpoint(path, trainer, buf)
    blob = bytearray(path.read_bytes())
    # truncated
    (tmp_path / "cut.pt").write_bytes(bytes(blob[: len(blob) - 50]))
    with pytest.raises(CheckpointError, match="truncated"):
        load_checkpoint(tmp_path / "cut.pt", trainer, buf)
    # one flipped byte in the payload
    blob[-100] ^= 0xFF
    (tmp_path / "flip.pt").write_bytes(bytes(blob))
    with pytest.raises(CheckpointError, match="corrupted: payload sha256"):
        load_checkpoint(tmp_path / "flip.pt", trainer, buf)
    # not a checkpoint / missing
    (tmp_path / "junk.pt").write_bytes(b"hello")
    with pytest.raises(CheckpointError, match="not a dmpc critic checkpoint"):
        load_checkpoint(tmp_path / "junk.pt", trainer, buf)
    with pytest.raises(CheckpointError, match="cannot read"):
        load_checkpoint(tmp_path / "missing.pt", trainer, buf)
    # a valid checkpoint for another architecture
    other = CriticTrainer(ValueMLP(ValueMLPSettings(nx=3, ng=1, hidden=(5,))))
    with pytest.raises(CheckpointError, match="does not fit"):
        load_checkpoint(path, other)


def test_export_target_versions_and_weights(tmp_path):
    from dmpc_core.critics import load_bundle

    trainer, buf = _learner(0)
    _fill(buf, 40, np.random.default_rng(1))
    trainer.update(buf)
    b1 = load_bundle(trainer.export_target(robot="ballbot"), expected_nx=3, expected_ng=1)
    trainer.update(buf)
    path = tmp_path / "v2.onnx"
    b2 = load_bundle(trainer.export_target(path=path, robot="ballbot"))
    assert (b1.version, b2.version) == (1, 2)
    assert (b1.training_step, b2.training_step) == (3, 6)
    assert load_bundle(path).content_sha256 == b2.content_sha256 != b1.content_sha256
    # the bundle carries the target network, not the online one
    w = trainer.target.layers[0].weight.detach().numpy()
    assert np.array_equal(b2.arrays["layers.0.weight"], w)
    assert not np.array_equal(w, trainer.model.layers[0].weight.detach().numpy())


def test_ensemble_one_step_targets_are_per_member():
    """POLO Eq. 7: member k bootstraps from its own target member (including its prior)."""
    torch.manual_seed(4)
    ens = ValueEnsemble(ValueEnsembleSettings(ValueMLPSettings(nx=2, hidden=(5,)), num_members=3, kappa=0.5))
    rng = np.random.default_rng(4)
    buf = ReplayBuffer(ReplaySpec(capacity=10, nx=2))
    _fill(buf, 10, rng)
    batch = buf.sample(6, rng)
    y = one_step_value_targets(0.9)(batch, ens)
    assert y.shape == (6, 3)
    with torch.no_grad():
        xt = torch.from_numpy(batch["next_state"])
        tt = torch.from_numpy(batch["next_time_to_go"]).reshape(-1, 1)
        for k in range(3):
            vk = (ens.members[k](xt, None, tt) + ens.prior_beta * ens.priors[k](xt, None, tt)).numpy()
            assert np.allclose(y[:, k], batch["cost"] + 0.9 * vk * (1 - batch["done"]), atol=1e-14)
    assert not np.allclose(y[:, 0], y[:, 1])


def test_floored_targets_raise_only_the_targets_below_the_floor():
    """y' = max(y, floor): targets above the floor are untouched, per row and per member."""
    batch = {"cost": np.array([1.0, 5.0, 2.0])}
    base = lambda b, model: b["cost"]  # noqa: E731
    y = floored_targets(base, lambda b: np.array([3.0, 3.0, 3.0]))(batch, None)
    np.testing.assert_array_equal(y, [3.0, 5.0, 3.0])
    per_member = lambda b, model: np.array([[1.0, 4.0], [6.0, 0.0], [2.0, 2.5]])  # noqa: E731
    y2 = floored_targets(per_member, lambda b: np.array([2.0, 1.0, 3.0]))(batch, None)
    np.testing.assert_array_equal(y2, [[2.0, 4.0], [6.0, 1.0], [3.0, 3.0]])
    with pytest.raises(ValueError, match="finite"):
        floored_targets(base, lambda b: np.array([np.nan, 0.0, 0.0]))(batch, None)
    with pytest.raises(ValueError, match="3 finite"):
        floored_targets(base, lambda b: np.zeros(2))(batch, None)
