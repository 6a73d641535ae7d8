"""Load and validate ONNX critic bundles (contract in ``export.py``).

:func:`load_bundle` rejects anything the controller must not run, raising
:class:`CriticBundleError` (a ``ValueError``) with a message naming the problem:
corrupt/truncated file, wrong format metadata, opset outside :data:`SUPPORTED_OPSETS`,
operators outside :data:`ALLOWED_OPS`, missing/renamed/misshaped inputs or outputs, dimensions
that do not match the robot model (``expected_nx``/``expected_ng``/``expected_nu``),
non-finite weights and a content hash mismatch (tampered weights).

A validated :class:`CriticBundle` gives the metadata, the weight arrays, an onnxruntime
session factory, :meth:`CriticBundle.to_torch` and :meth:`CriticBundle.to_native` (builds
``_core.CriticMLP`` for tanh value bundles; other bundles are ONNX-only and say so).
"""
from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple, Union

import numpy as np
import onnx
from onnx import numpy_helper

from dmpc_core.critics.export import (
    FORMAT,
    FORMAT_VERSION,
    Q_OUTPUTS,
    VALUE_OUTPUTS,
    content_sha256,
    expected_output_shapes,
)
from dmpc_core.critics.networks import NATIVE_ACTIVATIONS, SUPPORTED_ACTIVATIONS

#: Default-domain opsets the loader accepts (the exporter writes 17).
SUPPORTED_OPSETS = (17, 18, 19, 20, 21)

#: Operators the exporter emits (tanh and softplus networks, value/ensemble/Q graphs).
ALLOWED_OPS = frozenset(
    {
        "Add", "Sub", "Mul", "Div", "Neg", "Reciprocal", "MatMul", "Gemm", "Einsum",
        "Tanh", "Relu", "Abs", "Exp", "Log", "Sigmoid", "Softmax", "ReduceLogSumExp",
        "ReduceMean", "ReduceSum", "Concat", "Slice", "Gather", "Reshape", "Squeeze",
        "Unsqueeze", "Expand", "Shape", "Constant", "ConstantOfShape", "Equal", "Where",
        "Identity", "Cast", "Transpose",
    }
)

KINDS = ("value", "value_ensemble", "q")

_DOUBLE = onnx.TensorProto.DOUBLE


class CriticBundleError(ValueError):
    """A critic bundle is unreadable, inconsistent, or does not fit the robot model."""


class NativeCriticUnavailable(RuntimeError):
    """The bundle cannot be evaluated by the native C++ critic (or it is not built)."""


def _meta_int(meta: Dict[str, str], key: str, minimum: int = 0) -> int:
    try:
        v = int(meta[key])
    except (KeyError, ValueError):
        raise CriticBundleError(f"metadata {key} must be an integer, got {meta.get(key)!r}") from None
    if v < minimum:
        raise CriticBundleError(f"metadata {key} must be >= {minimum}, got {v}")
    return v


def _meta_float(meta: Dict[str, str], key: str) -> float:
    try:
        v = float(meta[key])
    except (KeyError, ValueError):
        raise CriticBundleError(f"metadata {key} must be a number, got {meta.get(key)!r}") from None
    if not math.isfinite(v):
        raise CriticBundleError(f"metadata {key} must be finite, got {v}")
    return v


@dataclass
class CriticBundle:
    """A validated critic bundle.

    Attributes:
        kind: "value", "value_ensemble" or "q".
        nx, ng, nu: state, goal and action widths (nu = 0 unless kind == "q").
        hidden: hidden layer widths; activation: "tanh" or "softplus".
        discount, version, training_step, robot, content_sha256: from the metadata.
        metadata: all ``metadata_props`` as strings.
        arrays: initializer name -> float64 numpy array (read-only copies).
        model_bytes: the serialized ONNX model.
        opset: default-domain opset version.
    """

    kind: str
    nx: int
    ng: int
    nu: int
    hidden: Tuple[int, ...]
    activation: str
    discount: float
    version: int
    training_step: int
    robot: str
    content_sha256: str
    metadata: Dict[str, str]
    arrays: Dict[str, np.ndarray]
    model_bytes: bytes = field(repr=False)
    opset: int = 17

    # -- structure -----------------------------------------------------------------------
    @property
    def input_names(self) -> List[str]:
        """Graph input names in order."""
        names = ["state"] + (["action"] if self.kind == "q" else [])
        names += ["goal"] if self.ng > 0 else []
        return names + ([] if self.kind == "q" else ["time_to_go"])

    @property
    def output_names(self) -> Tuple[str, ...]:
        """Graph output names."""
        return Q_OUTPUTS if self.kind == "q" else VALUE_OUTPUTS

    def layer_arrays(self, prefix: str = "") -> Tuple[List[np.ndarray], List[np.ndarray]]:
        """(weights [out, in], biases [out]) of one MLP (``prefix`` e.g. "members.0.")."""
        n_layers = len(self.hidden) + 1
        w = [self.arrays[f"{prefix}layers.{i}.weight"] for i in range(n_layers)]
        b = [self.arrays[f"{prefix}layers.{i}.bias"] for i in range(n_layers)]
        return w, b

    # -- evaluators ----------------------------------------------------------------------
    def session(self, intra_op_threads: int = 1):
        """A new onnxruntime CPU InferenceSession (float64) for this bundle."""
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(intra_op_threads)
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        return ort.InferenceSession(self.model_bytes, sess_options=opts, providers=["CPUExecutionProvider"])

    @property
    def native_unsupported_reason(self) -> Optional[str]:
        """Why the native C++ critic cannot evaluate this bundle (None if it can)."""
        if self.kind != "value":
            return (
                f"native critic evaluates single value networks only; this bundle is "
                f"dmpc.kind={self.kind!r} (use the onnxruntime evaluator)"
            )
        if self.activation not in NATIVE_ACTIVATIONS:
            return (
                f"native critic supports activations {list(NATIVE_ACTIVATIONS)} only; this bundle "
                f"uses {self.activation!r} (use the onnxruntime evaluator)"
            )
        return None

    @property
    def native_supported(self) -> bool:
        """True if :meth:`to_native` can work for this bundle (given a built core)."""
        return self.native_unsupported_reason is None

    def to_native(self):
        """Build the native ``_core.CriticMLP`` from the initializers.

        Raises:
            NativeCriticUnavailable: bundle not natively supported, or ``_core.CriticMLP``
                not built into this core.
        """
        reason = self.native_unsupported_reason
        if reason is not None:
            raise NativeCriticUnavailable(reason)
        from dmpc_core import _core

        if not hasattr(_core, "CriticMLP"):
            raise NativeCriticUnavailable(
                "dmpc_core._core has no CriticMLP: the native critic is not built in this core "
                "(it comes from the critics-cpp branch); use the onnxruntime evaluator"
            )
        w, b = self.layer_arrays()
        return _core.CriticMLP(
            [np.ascontiguousarray(x) for x in w],
            [np.ascontiguousarray(x) for x in b],
            np.ascontiguousarray(self.arrays["input_mean"]),
            np.ascontiguousarray(self.arrays["input_std"]),
            float(self.arrays["output_scale"][0]),
            float(self.arrays["output_bias"][0]),
            int(self.nx),
            int(self.ng),
        )

    def to_torch(self):
        """Rebuild the float64 torch model (ValueMLP, ValueEnsemble or QMLP) from the arrays."""
        import torch

        from dmpc_core.critics import networks as nw

        if self.kind == "q":
            model = nw.QMLP(nw.QMLPSettings(self.nx, self.nu, self.ng, self.hidden, self.activation))
        else:
            vs = nw.ValueMLPSettings(self.nx, self.ng, self.hidden, self.activation)
            if self.kind == "value":
                model = nw.ValueMLP(vs)
            else:
                model = nw.ValueEnsemble(
                    nw.ValueEnsembleSettings(
                        vs,
                        num_members=int(self.metadata["dmpc.num_members"]),
                        prior_beta=float(self.arrays["prior_beta"][0]),
                        kappa=float(self.arrays["kappa"][0]),
                    )
                )
        model.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in self.arrays.items()})
        return model


def _expected_initializers(kind: str, nz: int, hidden, num_members: int) -> Dict[str, Tuple[int, ...]]:
    widths = [nz, *hidden, 1]
    one = {"input_mean": (nz,), "input_std": (nz,), "output_scale": (1,), "output_bias": (1,)}
    for i in range(len(widths) - 1):
        one[f"layers.{i}.weight"] = (widths[i + 1], widths[i])
        one[f"layers.{i}.bias"] = (widths[i + 1],)
    if kind != "value_ensemble":
        return one
    out = {"prior_beta": (1,), "kappa": (1,)}
    for k in range(num_members):
        for group in ("members", "priors"):
            out.update({f"{group}.{k}.{n}": s for n, s in one.items()})
    return out


def _value_info_shape(vi) -> Tuple[int, List[Union[int, str]]]:
    tt = vi.type.tensor_type
    dims = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in tt.shape.dim]
    return tt.elem_type, dims


def _check_io(kind_of_io: str, actual, expected: Dict[str, Tuple]) -> None:
    names = [v.name for v in actual]
    missing = [n for n in expected if n not in names]
    extra = [n for n in names if n not in expected]
    if missing or extra:
        raise CriticBundleError(
            f"graph {kind_of_io}s are {names}; expected {list(expected)}"
            + (f" (missing {missing})" if missing else "")
            + (f" (unexpected {extra})" if extra else "")
        )
    for v in actual:
        elem, dims = _value_info_shape(v)
        if elem != _DOUBLE:
            raise CriticBundleError(
                f"{kind_of_io} {v.name!r} has element type "
                f"{onnx.TensorProto.DataType.Name(elem)}; expected DOUBLE (float64)"
            )
        want = expected[v.name]
        if len(dims) != len(want) or any(
            isinstance(w, int) and d != w for d, w in zip(dims, want)
        ):
            shown = ["B" if isinstance(w, str) else w for w in want]
            raise CriticBundleError(f"{kind_of_io} {v.name!r} has shape {dims}; expected {shown}")


def load_bundle(
    path_or_bytes: Union[str, os.PathLike, bytes, bytearray, memoryview],
    expected_nx: Optional[int] = None,
    expected_ng: Optional[int] = None,
    expected_nu: Optional[int] = None,
) -> CriticBundle:
    """Read and validate a critic bundle.

    Args:
        path_or_bytes: file path, or the serialized ONNX model (e.g. received on a topic).
        expected_nx: state width of the robot model (None: not checked).
        expected_ng: goal width of the task (None: not checked).
        expected_nu: action width (Q bundles only; None: not checked).
    Returns:
        the validated :class:`CriticBundle`.
    Raises:
        CriticBundleError: with a message naming what is wrong.
    """
    if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        data = bytes(path_or_bytes)
        source = "<bytes>"
    else:
        source = os.fspath(path_or_bytes)
        try:
            with open(source, "rb") as f:
                data = f.read()
        except OSError as e:
            raise CriticBundleError(f"cannot read critic bundle {source}: {e}") from e
    if not data:
        raise CriticBundleError(f"critic bundle {source} is empty")
    try:
        proto = onnx.load_from_string(data)
    except Exception as e:  # protobuf DecodeError and friends
        raise CriticBundleError(f"critic bundle {source} is corrupt or truncated (ONNX decode error: {e})") from e
    graph = proto.graph

    # -- metadata ------------------------------------------------------------------------
    meta = {p.key: p.value for p in proto.metadata_props}
    if meta.get("dmpc.format") != FORMAT:
        raise CriticBundleError(
            f"{source} is not a critic bundle: metadata dmpc.format={meta.get('dmpc.format')!r}, "
            f"expected {FORMAT!r} (corrupt or truncated file, or a foreign ONNX model)"
        )
    if meta.get("dmpc.format_version") != FORMAT_VERSION:
        raise CriticBundleError(
            f"unsupported critic bundle format version {meta.get('dmpc.format_version')!r}; "
            f"this loader reads version {FORMAT_VERSION!r}"
        )
    from dmpc_core.critics.export import REQUIRED_METADATA

    missing = [k for k in REQUIRED_METADATA if k not in meta]
    if missing:
        raise CriticBundleError(f"critic bundle metadata lacks {missing}")
    kind = meta["dmpc.kind"]
    if kind not in KINDS:
        raise CriticBundleError(f"metadata dmpc.kind={kind!r}; expected one of {list(KINDS)}")
    nx = _meta_int(meta, "dmpc.nx", 1)
    ng = _meta_int(meta, "dmpc.ng", 0)
    nu = _meta_int(meta, "dmpc.nu", 1) if kind == "q" else 0
    try:
        hidden = json.loads(meta["dmpc.hidden"])
        if not isinstance(hidden, list) or not all(isinstance(h, int) and h > 0 for h in hidden):
            raise ValueError
    except ValueError:
        raise CriticBundleError(
            f"metadata dmpc.hidden must be a JSON list of positive ints, got {meta['dmpc.hidden']!r}"
        ) from None
    activation = meta["dmpc.activation"]
    if activation not in SUPPORTED_ACTIVATIONS:
        raise CriticBundleError(
            f"metadata dmpc.activation={activation!r} is not supported; expected one of {list(SUPPORTED_ACTIVATIONS)}"
        )
    discount = _meta_float(meta, "dmpc.discount")
    version = _meta_int(meta, "dmpc.version", 0)
    training_step = _meta_int(meta, "dmpc.training_step", 0)
    sha = meta["dmpc.content_sha256"]
    if not re.fullmatch(r"[0-9a-f]{64}", sha):
        raise CriticBundleError(f"metadata dmpc.content_sha256 is not a sha256 hex digest: {sha!r}")
    num_members = _meta_int(meta, "dmpc.num_members", 1) if kind == "value_ensemble" else 1

    # -- robot model dimensions ----------------------------------------------------------
    for name, got, want in (("nx", nx, expected_nx), ("ng", ng, expected_ng), ("nu", nu, expected_nu)):
        if want is not None and got != int(want):
            raise CriticBundleError(
                f"critic bundle has {name}={got} but the robot model/task expects {name}={int(want)} "
                f"(bundle robot={meta.get('dmpc.robot')!r})"
            )

    # -- opset and operators -------------------------------------------------------------
    opset = None
    for imp in proto.opset_import:
        if imp.domain in ("", "ai.onnx"):
            opset = int(imp.version)
        else:
            raise CriticBundleError(f"unsupported operator set domain {imp.domain!r} (version {imp.version})")
    if opset is None or opset not in SUPPORTED_OPSETS:
        raise CriticBundleError(
            f"opset {opset} is outside the supported range {SUPPORTED_OPSETS[0]}..{SUPPORTED_OPSETS[-1]}"
        )
    bad = sorted({(n.domain or "") + ("::" if n.domain else "") + n.op_type for n in graph.node
                  if n.domain not in ("", "ai.onnx") or n.op_type not in ALLOWED_OPS})
    if bad:
        raise CriticBundleError(f"unsupported operator(s) {bad}; allowed: {sorted(ALLOWED_OPS)}")
    if len(proto.functions):
        raise CriticBundleError("critic bundles may not contain local ONNX functions")

    # -- inputs / outputs ----------------------------------------------------------------
    init_names = [t.name for t in graph.initializer]
    overridable = sorted({v.name for v in graph.input} & set(init_names))
    if overridable:
        raise CriticBundleError(
            f"initializer(s) {overridable[:4]} are also graph inputs (their weights could be "
            "overridden at run time); critic bundles keep weights as initializers only"
        )
    inputs = list(graph.input)
    exp_in: Dict[str, Tuple] = {"state": ("B", nx)}
    if kind == "q":
        exp_in["action"] = ("B", nu)
    if ng > 0:
        exp_in["goal"] = ("B", ng)
    if kind != "q":
        exp_in["time_to_go"] = ("B", 1)
    _check_io("input", inputs, exp_in)
    exp_out = {k: tuple("B" if isinstance(d, str) else d for d in v)
               for k, v in expected_output_shapes(kind, nx, nu).items()}
    _check_io("output", graph.output, exp_out)

    # -- initializers --------------------------------------------------------------------
    nz = nx + ng + (nu if kind == "q" else 1)
    want_inits = _expected_initializers(kind, nz, hidden, num_members)
    if len(set(init_names)) != len(init_names):
        raise CriticBundleError("duplicate initializer names in the critic bundle")
    missing = sorted(set(want_inits) - set(init_names))
    extra = sorted(set(init_names) - set(want_inits))
    if missing:
        raise CriticBundleError(f"critic bundle lacks initializer(s) {missing[:8]}")
    if extra:
        raise CriticBundleError(f"critic bundle has unexpected initializer(s) {extra[:8]}")
    arrays: Dict[str, np.ndarray] = {}
    for t in graph.initializer:
        if t.data_type != _DOUBLE:
            raise CriticBundleError(
                f"initializer {t.name!r} is {onnx.TensorProto.DataType.Name(t.data_type)}; expected DOUBLE"
            )
        try:
            arr = np.array(numpy_helper.to_array(t), dtype=np.float64)
        except Exception as e:
            raise CriticBundleError(f"initializer {t.name!r} cannot be decoded ({e}): corrupt bundle") from e
        if arr.shape != want_inits[t.name]:
            raise CriticBundleError(
                f"initializer {t.name!r} has shape {list(arr.shape)}; expected {list(want_inits[t.name])} "
                f"(dmpc.hidden={hidden}, nz={nz})"
            )
        if not np.all(np.isfinite(arr)):
            raise CriticBundleError(f"initializer {t.name!r} contains non-finite values (NaN/inf)")
        arr.setflags(write=False)
        arrays[t.name] = arr
    for name, arr in arrays.items():
        if name.endswith("input_std") and not np.all(arr > 0):
            raise CriticBundleError(f"initializer {name!r} must be positive (it divides the inputs)")
    got_sha = content_sha256(graph.initializer)
    if got_sha != sha:
        raise CriticBundleError(
            f"content hash mismatch: weights hash to {got_sha[:16]}..., metadata says {sha[:16]}... "
            "(tampered or corrupted weights)"
        )
    try:
        onnx.checker.check_model(proto)
    except Exception as e:
        raise CriticBundleError(f"critic bundle fails the ONNX checker: {e}") from e

    return CriticBundle(
        kind=kind, nx=nx, ng=ng, nu=nu, hidden=tuple(hidden), activation=activation,
        discount=discount, version=version, training_step=training_step,
        robot=meta["dmpc.robot"], content_sha256=sha, metadata=meta, arrays=arrays,
        model_bytes=data, opset=opset,
    )
