"""The critic bundle contract without the exporter: format names, output names and shapes,
required metadata, the content hash, and the activations the loaders accept. The loader
(:mod:`dmpc_core.critics.bundle`), the gate and the controller use it without importing torch;
the exporter (:mod:`dmpc_core.critics.export`) and the networks re-export it.
"""
from __future__ import annotations

import hashlib
from typing import Dict

import onnx

FORMAT = "critic-bundle"
FORMAT_VERSION = "2"
#: Metadata key of the whole-model hash.
HASH_KEY = "dmpc.content_sha256"
OPSET = 17

VALUE_OUTPUTS = ("value", "dvalue_dx", "d2value_dx2", "dvalue_dt", "d2value_dtdx")
Q_OUTPUTS = ("value", "dvalue_dx", "dvalue_du", "d2value_dx2", "d2value_du2", "d2value_dudx")

REQUIRED_METADATA = (
    "dmpc.format",
    "dmpc.format_version",
    "dmpc.kind",
    "dmpc.nx",
    "dmpc.ng",
    "dmpc.hidden",
    "dmpc.activation",
    "dmpc.discount",
    "dmpc.version",
    "dmpc.training_step",
    "dmpc.content_sha256",
    "dmpc.robot",
)

SUPPORTED_ACTIVATIONS = ("tanh", "softplus")
#: Activations that the native C++ evaluator (``_core.CriticMLP``) implements.
NATIVE_ACTIVATIONS = ("tanh",)


def expected_output_shapes(kind: str, nx: int, nu: int = 0) -> Dict[str, tuple]:
    """Contract output shapes ('batch' is the symbolic batch dimension)."""
    if kind == "q":
        return {
            "value": ("batch",), "dvalue_dx": ("batch", nx), "dvalue_du": ("batch", nu),
            "d2value_dx2": ("batch", nx, nx), "d2value_du2": ("batch", nu, nu),
            "d2value_dudx": ("batch", nu, nx),
        }
    return {
        "value": ("batch",), "dvalue_dx": ("batch", nx), "d2value_dx2": ("batch", nx, nx),
        "dvalue_dt": ("batch",), "d2value_dtdx": ("batch", nx),
    }


def content_sha256(model: onnx.ModelProto) -> str:
    """sha256 (hex) of the whole model without its ``dmpc.content_sha256`` metadata entry."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    keep = [p for p in m.metadata_props if p.key != HASH_KEY]
    del m.metadata_props[:]
    m.metadata_props.extend(keep)
    return hashlib.sha256(m.SerializeToString(deterministic=True)).hexdigest()
