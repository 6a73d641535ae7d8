"""Export critics to self-contained ONNX "critic bundles" (value, derivatives, metadata).

Bundle contract (shared with the native C++ evaluator ``_core.CriticMLP``):

* Graph inputs (float64): ``state`` [B, nx], ``goal`` [B, ng] (only if ng > 0),
  ``time_to_go`` [B, 1]; for ``dmpc.kind == "q"``: ``state``, ``action`` [B, nu], ``goal``.
* Graph outputs (float64), t being the time-to-go tau:
  ``value`` [B], ``dvalue_dx`` [B, nx], ``d2value_dx2`` [B, nx, nx], ``dvalue_dt`` [B],
  ``d2value_dtdx`` [B, nx]. Q bundles instead have ``value``, ``dvalue_dx``, ``dvalue_du``,
  ``d2value_dx2``, ``d2value_du2``, ``d2value_dudx`` [B, nu, nx].
* Initializers (float64): ``input_mean`` [nz], ``input_std`` [nz], ``layers.{i}.weight``
  [out, in], ``layers.{i}.bias`` [out], ``output_scale`` [1], ``output_bias`` [1].
  Ensembles (``dmpc.kind == "value_ensemble"``) store every member and prior as a complete set
  of these names with the prefixes ``members.{k}.`` and ``priors.{k}.``, plus ``prior_beta`` [1]
  and ``kappa`` [1]; member k is V_k = members.k + prior_beta * priors.k and the outputs are
  those of the soft-min aggregate (see ``networks.py``). A native evaluator can rebuild each
  prefixed set as one ``CriticMLP`` and aggregate itself.
* ``metadata_props``: see :data:`REQUIRED_METADATA` and :func:`build_metadata`; each key once.
  ``dmpc.content_sha256`` is the sha256 of the whole model (graph, initializers, opsets and all
  other metadata): of ``ModelProto.SerializeToString(deterministic=True)`` of the model with the
  ``dmpc.content_sha256`` entry removed (:func:`content_sha256`). A changed node, a rewired
  input, an altered weight or metadata value no longer matches it. (Format version 1 hashed the
  initializers only; such bundles are refused and must be re-exported.) The hash detects
  corruption and edits by anyone who does not recompute it; authenticity comes from the HMAC
  trailer (``signing.py``), and onnxruntime never runs a received graph: it runs one rebuilt from
  the validated weights (``CriticBundle.session``).

How the derivatives get into the graph: the torch.onnx TorchScript exporter in this torch
version cannot trace ``torch.func`` transforms (``jacrev``/``vmap`` fail with "Unsupported
value kind: Tensor") and the dynamo exporter needs ``onnxscript`` (not installed). The graph
therefore contains the exact forward-mode chain rule written in plain torch ops
(:meth:`networks.NormalizedMLP.derivatives_z`): no finite differences anywhere; tests compare
it with ``torch.autograd`` in float64.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import warnings
from typing import Dict, Mapping, Optional, Union

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from torch import nn

from dmpc_core.critics.networks import QMLP, ValueEnsemble, ValueMLP

from dmpc_core.critics.regular_file import write_bytes_atomic  # noqa: F401  (re-exported)
from dmpc_core.critics.contract import (  # noqa: F401  (the bundle contract, re-exported)
    FORMAT,
    FORMAT_VERSION,
    HASH_KEY,
    OPSET,
    Q_OUTPUTS,
    REQUIRED_METADATA,
    VALUE_OUTPUTS,
    content_sha256,
    expected_output_shapes,
)

CriticModel = Union[ValueMLP, ValueEnsemble, QMLP]


class _ValueExport(nn.Module):
    def __init__(self, model: nn.Module, has_goal: bool) -> None:
        super().__init__()
        self.model = model
        self.has_goal = has_goal

    def forward(self, *inputs):
        if self.has_goal:
            state, goal, time_to_go = inputs
        else:
            (state, time_to_go), goal = inputs, None
        d = self.model.value_and_derivatives(state, goal, time_to_go)
        return tuple(d[k] for k in VALUE_OUTPUTS)


class _QExport(nn.Module):
    def __init__(self, model: QMLP) -> None:
        super().__init__()
        self.model = model

    def forward(self, *inputs):
        goal = inputs[2] if self.model.ng > 0 else None
        d = self.model.value_and_derivatives(inputs[0], inputs[1], goal)
        return tuple(d[k] for k in Q_OUTPUTS)


def model_kind(model: nn.Module) -> str:
    """Bundle kind string for a critic model."""
    if isinstance(model, ValueEnsemble):
        return "value_ensemble"
    if isinstance(model, ValueMLP):
        return "value"
    if isinstance(model, QMLP):
        return "q"
    raise TypeError(f"cannot export {type(model).__name__}: expected ValueMLP, ValueEnsemble or QMLP")


def build_metadata(
    model: nn.Module,
    *,
    discount: float,
    version: int,
    training_step: int,
    robot: str,
    extra: Optional[Mapping[str, str]] = None,
) -> Dict[str, str]:
    """Metadata (without the content hash) for ``model``; see the module docstring."""
    kind = model_kind(model)
    base = model.members[0] if isinstance(model, ValueEnsemble) else model
    meta = {
        "dmpc.format": FORMAT,
        "dmpc.format_version": FORMAT_VERSION,
        "dmpc.kind": kind,
        "dmpc.nx": str(base.nx),
        "dmpc.ng": str(base.ng),
        "dmpc.hidden": json.dumps(list(base.hidden)),
        "dmpc.activation": base.activation,
        "dmpc.discount": repr(float(discount)),
        "dmpc.version": str(int(version)),
        "dmpc.training_step": str(int(training_step)),
        "dmpc.robot": str(robot),
    }
    if kind == "q":
        meta["dmpc.nu"] = str(model.nu)
    if kind == "value_ensemble":
        meta["dmpc.num_members"] = str(len(model.members))
        meta["dmpc.kappa"] = repr(float(model.kappa))
        meta["dmpc.prior_beta"] = repr(float(model.prior_beta))
    for k, v in (extra or {}).items():
        if str(k) in meta or str(k) == HASH_KEY:
            raise ValueError(f"extra metadata may not override {k!r}")
        meta[str(k)] = str(v)
    return meta


def _export_graph(model: nn.Module) -> onnx.ModelProto:
    kind = model_kind(model)
    base = model.members[0] if kind == "value_ensemble" else model
    batch = 2
    opts = dict(dtype=torch.float64)
    if kind == "q":
        wrapper = _QExport(model)
        args = [torch.zeros(batch, model.nx, **opts), torch.zeros(batch, model.nu, **opts)]
        names = ["state", "action"]
        outputs = Q_OUTPUTS
    else:
        wrapper = _ValueExport(model, base.ng > 0)
        args = [torch.zeros(batch, base.nx, **opts)]
        names = ["state"]
        outputs = VALUE_OUTPUTS
    if base.ng > 0:
        args.append(torch.zeros(batch, base.ng, **opts))
        names.append("goal")
    if kind != "q":
        args.append(torch.zeros(batch, 1, **opts))
        names.append("time_to_go")
    dynamic = {n: {0: "batch"} for n in [*names, *outputs]}
    buf = io.BytesIO()
    was_training = model.training
    model.eval()
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                wrapper,
                tuple(args),
                buf,
                dynamo=False,
                opset_version=OPSET,
                input_names=names,
                output_names=list(outputs),
                dynamic_axes=dynamic,
                do_constant_folding=False,
                export_params=False,
                keep_initializers_as_inputs=True,
            )
    finally:
        model.train(was_training)
    proto = onnx.load_from_string(buf.getvalue())
    _restore_initializer_names(proto, wrapper)
    _fix_output_shapes(proto, expected_output_shapes(kind, base.nx, getattr(model, "nu", 0)))
    return proto


def _restore_initializer_names(proto: onnx.ModelProto, wrapper: nn.Module) -> None:
    """Turn the parameter inputs into initializers carrying the contract names.

    The graph is exported with ``export_params=False`` so every parameter/buffer appears as a
    graph input named ``model.<state-dict name>``: exporting the weights directly would let the
    exporter merge value-identical tensors (e.g. two unit ``output_scale`` buffers) into one
    initializer, breaking the one-name-per-tensor contract. Here each such input becomes an
    initializer named ``<state-dict name>`` holding the model's float64 values.
    """
    graph = proto.graph
    state = {k[len("model."):]: v for k, v in wrapper.state_dict().items() if k.startswith("model.")}
    rename = {}
    keep_inputs = []
    for inp in graph.input:
        if inp.name.startswith("model.") and inp.name[len("model."):] in state:
            rename[inp.name] = inp.name[len("model."):]
        else:
            keep_inputs.append(inp)
    del graph.input[:]
    graph.input.extend(keep_inputs)
    used = set()
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name in rename:
                node.input[i] = rename[name]
                used.add(rename[name])
    del graph.initializer[:]
    for name in sorted(state):
        if name not in used and name != "kappa":  # kappa == 0 exports the plain mean
            raise RuntimeError(f"exported graph does not use model tensor {name}")
        arr = state[name].detach().cpu().numpy().astype(np.float64)
        graph.initializer.append(numpy_helper.from_array(arr, name))


def _fix_output_shapes(proto: onnx.ModelProto, dims: Mapping[str, tuple]) -> None:
    """Replace the exporter's symbolic output dims by the contract shapes ('batch', n, ...)."""
    for out in proto.graph.output:
        shape = out.type.tensor_type.shape
        del shape.dim[:]
        for d in dims[out.name]:
            dim = shape.dim.add()
            if isinstance(d, str):
                dim.dim_param = d
            else:
                dim.dim_value = int(d)


def export_value_bundle_proto(
    model: CriticModel,
    *,
    discount: float = 1.0,
    version: int = 0,
    training_step: int = 0,
    robot: str = "",
    extra_metadata: Optional[Mapping[str, str]] = None,
) -> onnx.ModelProto:
    """Build the bundle as an in-memory ONNX model (see module docstring for the contract).

    Args:
        model: ValueMLP, ValueEnsemble or QMLP (float64).
        discount: gamma used to train the critic (stored as ``dmpc.discount``).
        version: learner's export counter (``dmpc.version``).
        training_step: gradient steps so far (``dmpc.training_step``).
        robot: free string naming the robot model (``dmpc.robot``).
        extra_metadata: additional string metadata (cannot override ``dmpc.*`` keys).
    """
    for name, tensor in model.state_dict().items():
        if not torch.isfinite(tensor).all():
            raise ValueError(f"refusing to export a critic with non-finite values in {name}")
    proto = _export_graph(model)
    meta = build_metadata(
        model, discount=discount, version=version, training_step=training_step, robot=robot,
        extra=extra_metadata,
    )
    del proto.metadata_props[:]
    for k, v in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = k, v
    proto.producer_name = "dmpc_core.critics"
    digest = content_sha256(proto)  # before the entry exists
    entry = proto.metadata_props.add()
    entry.key, entry.value = HASH_KEY, digest
    onnx.checker.check_model(proto)
    return proto


def bundle_bytes(model: CriticModel, **kwargs) -> bytes:
    """Serialized bundle (e.g. to publish on a topic); same keywords as :func:`export_value_bundle`."""
    return export_value_bundle_proto(model, **kwargs).SerializeToString()


def export_value_bundle(model: CriticModel, path: Union[str, os.PathLike], **kwargs) -> str:
    """Export ``model`` as an ONNX critic bundle written atomically to ``path``.

    Keywords as :func:`export_value_bundle_proto` (discount, version, training_step, robot,
    extra_metadata). Works for value, ensemble and Q models. Returns the content hash.
    """
    proto = export_value_bundle_proto(model, **kwargs)
    write_bytes_atomic(path, proto.SerializeToString())
    return next(p.value for p in proto.metadata_props if p.key == HASH_KEY)
