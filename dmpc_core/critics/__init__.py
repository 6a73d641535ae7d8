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
import importlib

#: public name -> submodule; imported on first use (PEP 562), so that a process that only loads,
#: checks and evaluates critics (the controller node, its MPC worker) never imports torch
_EXPORTS = {
    "CriticBundle": "bundle", "CriticBundleError": "bundle", "NativeCriticUnavailable": "bundle", "load_bundle": "bundle",
    "bundle_bytes": "export", "export_value_bundle": "export", "export_value_bundle_proto": "export",
    "QMLP": "networks", "QMLPSettings": "networks", "ValueEnsemble": "networks", "ValueEnsembleSettings": "networks",
    "ValueMLP": "networks", "ValueMLPSettings": "networks",
    "quadratic_value_mlp": "quadratic",
    "OrtCritic": "ort_critic", "OrtCriticAdapter": "ort_critic", "make_core_critic_adapter": "ort_critic",
    "ReplayBuffer": "replay", "ReplaySpec": "replay",
    "CriticTrainer": "training", "CriticTrainerSettings": "training", "polyak_update": "training",
    "CheckpointError": "checkpoint", "load_checkpoint": "checkpoint", "save_checkpoint": "checkpoint",
}


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))


__all__ = [
    "CriticBundle", "CriticBundleError", "NativeCriticUnavailable", "load_bundle",
    "bundle_bytes", "export_value_bundle", "export_value_bundle_proto",
    "QMLP", "QMLPSettings", "ValueEnsemble", "ValueEnsembleSettings", "ValueMLP", "ValueMLPSettings",
    "OrtCritic", "OrtCriticAdapter", "make_core_critic_adapter", "quadratic_value_mlp",
    "ReplayBuffer", "ReplaySpec", "CriticTrainer", "CriticTrainerSettings", "polyak_update",
    "CheckpointError", "load_checkpoint", "save_checkpoint",
]
