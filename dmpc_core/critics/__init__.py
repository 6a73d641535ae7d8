"""Critics for dmpc (pure Python, never imports ROS).

* :mod:`~dmpc_core.critics.networks` - ValueMLP V(x, g, tau), ValueEnsemble (randomized priors,
  optimistic soft-min aggregate), QMLP Q(x, u, g); exact derivatives in torch ops.
* :mod:`~dmpc_core.critics.export` - ONNX critic bundles (value + derivatives + metadata).
* :mod:`~dmpc_core.critics.bundle` - loader/validator, ``CriticBundle.to_native()``.
* :mod:`~dmpc_core.critics.ort_critic` - onnxruntime evaluation and per-state adapter.
* :mod:`~dmpc_core.critics.replay`, :mod:`~dmpc_core.critics.targets`,
  :mod:`~dmpc_core.critics.training`, :mod:`~dmpc_core.critics.checkpoint` - learning.
* :mod:`~dmpc_core.critics.learner` - CriticLearner, the learning half of Algorithm 1 shared by
  ``dmpc train`` and the learner node.
* :mod:`~dmpc_core.critics.gate` - the validation gate and store a controller installs critics through.
* :mod:`~dmpc_core.critics.signing` - the signed trailer (HMAC over a learner/version/robot/task
  header and the bytes) and key files; :mod:`~dmpc_core.critics.source` - safe critic file reads.
"""
from dmpc_core.critics.bundle import CriticBundle, CriticBundleError, NativeCriticUnavailable, load_bundle
from dmpc_core.critics.export import bundle_bytes, export_value_bundle, export_value_bundle_proto
from dmpc_core.critics.networks import (
    QMLP,
    QMLPSettings,
    ValueEnsemble,
    ValueEnsembleSettings,
    ValueMLP,
    ValueMLPSettings,
)
from dmpc_core.critics.quadratic import quadratic_value_mlp
from dmpc_core.critics.ort_critic import OrtCritic, OrtCriticAdapter, make_core_critic_adapter
from dmpc_core.critics.replay import ReplayBuffer, ReplaySpec
from dmpc_core.critics.training import CriticTrainer, CriticTrainerSettings, polyak_update
from dmpc_core.critics.checkpoint import CheckpointError, load_checkpoint, save_checkpoint

__all__ = [
    "CriticBundle", "CriticBundleError", "NativeCriticUnavailable", "load_bundle",
    "bundle_bytes", "export_value_bundle", "export_value_bundle_proto",
    "QMLP", "QMLPSettings", "ValueEnsemble", "ValueEnsembleSettings", "ValueMLP", "ValueMLPSettings",
    "OrtCritic", "OrtCriticAdapter", "make_core_critic_adapter", "quadratic_value_mlp",
    "ReplayBuffer", "ReplaySpec", "CriticTrainer", "CriticTrainerSettings", "polyak_update",
    "CheckpointError", "load_checkpoint", "save_checkpoint",
]
