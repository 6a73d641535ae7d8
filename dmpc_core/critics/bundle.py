"""Load and validate ONNX critic bundles (contract in ``export.py``).

:func:`load_bundle` rejects anything the controller must not run, raising
:class:`CriticBundleError` (a ``ValueError``) with a message naming the problem:
oversized, corrupt or truncated file, strings that are not UTF-8, wrong format metadata,
duplicate metadata keys, opset outside :data:`SUPPORTED_OPSETS`, operators outside
:data:`ALLOWED_OPS`, missing/renamed/misshaped inputs or outputs, dimensions that do not match the
robot model (``expected_nx``/``expected_ng``/``expected_nu``), external or non-float64 or
misshaped or non-finite weights, and a whole-model content hash mismatch (edited graph, weights
or metadata). Any other failure while reading a bundle (an unforeseen decoder error on crafted
bytes) is also raised as :class:`CriticBundleError`: callers handle one error type.

A validated :class:`CriticBundle` gives the metadata, the weight arrays,
:meth:`CriticBundle.to_torch` and :meth:`CriticBundle.to_native` (builds ``_core.CriticMLP``
for tanh value bundles; other bundles are ONNX-only and say so) and an onnxruntime session
factory. The session never runs the received graph: it runs the graph the exporter builds from
the validated weights (:attr:`CriticBundle.runtime_model_bytes`), so onnxruntime and the native
evaluator compute the same function of the same weights whatever a received graph contains.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple, Union

import numpy as np
import onnx
from onnx import numpy_helper

from dmpc_core.critics.contract import (
    FORMAT,
    FORMAT_VERSION,
    NATIVE_ACTIVATIONS,
    Q_OUTPUTS,
    SUPPORTED_ACTIVATIONS,
    VALUE_OUTPUTS,
    content_sha256,
    expected_output_shapes,
)

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

#: Largest critic bundle read (bytes); the 3 x 12 Ballbot critic is ~26 kB.
MAX_BUNDLE_BYTES = 8 * 1024 * 1024
#: Bounds on the network structure named by the metadata (checked before anything is built).
MAX_LAYERS = 32
MAX_WIDTH = 4096
MAX_MEMBERS = 64

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
        discount, version, training_step, robot, content_sha256: from the metadata
            (content_sha256: the verified whole-model hash).
        metadata: all ``metadata_props`` as strings.
        arrays: initializer name -> float64 numpy array (read-only copies).
        model_bytes: the serialized ONNX model as received (never run, see
            :attr:`runtime_model_bytes`).
        opset: default-domain opset version.
        weights_sha256: sha256 over the initializer names, shapes and float64 values in name
            order: two bundles with equal ``weights_sha256`` evaluate the same function.
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
    weights_sha256: str = ""
    _runtime: Optional[bytes] = field(default=None, repr=False, compare=False)

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
    @property
    def runtime_model_bytes(self) -> bytes:
        """The ONNX model onnxruntime runs: exported again from the validated weights
        (:meth:`to_torch`), so whatever nodes a received graph holds never run. Built on first
        use (~0.5 s) and kept."""
        if self._runtime is None:
            from dmpc_core.critics.export import export_value_bundle_proto

            proto = export_value_bundle_proto(
                self.to_torch(), discount=self.discount, version=self.version,
                training_step=self.training_step, robot=self.robot)
            self._runtime = proto.SerializeToString()
        return self._runtime

    def session(self, intra_op_threads: int = 1):
        """A new onnxruntime CPU InferenceSession (float64) of :attr:`runtime_model_bytes`."""
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(intra_op_threads)
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        return ort.InferenceSession(self.runtime_model_bytes, sess_options=opts, providers=["CPUExecutionProvider"])

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


def weights_sha256(arrays: Dict[str, np.ndarray]) -> str:
    """sha256 over the names, shapes and little-endian float64 values of ``arrays``, in name order."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name], dtype="<f8")
        h.update(json.dumps([name, list(a.shape)]).encode("utf-8"))
        h.update(a.tobytes())
    return h.hexdigest()


def _text_fields(proto: onnx.ModelProto, graph: bool):
    g = proto.graph
    if not graph:
        for p in proto.metadata_props:
            yield "metadata key", p.key
            yield "metadata value", p.value
        return
    for o in proto.opset_import:
        yield "opset domain", o.domain
    for n in g.node:
        yield "operator type", n.op_type
        yield "operator domain", n.domain
        for v in (*n.input, *n.output):
            yield "node input/output", v
    for group, what in ((g.input, "graph input"), (g.output, "graph output"), (g.initializer, "initializer name")):
        for v in group:
            yield what, v.name


def _require_text(proto: onnx.ModelProto, graph: bool) -> None:
    """Every name the loader reads (metadata, or the graph's names) must be a str: a string field
    that is not valid UTF-8 decodes to bytes in the protobuf runtime (``str.join`` refuses them)."""
    try:
        "".join(v for _, v in _text_fields(proto, graph))
    except TypeError:
        what, v = next((w, v) for w, v in _text_fields(proto, graph) if not isinstance(v, str))
        raise CriticBundleError(f"a {what} is not valid UTF-8 text ({bytes(v)[:40]!r}): corrupt bundle") from None


def load_bundle(
    path_or_bytes: Union[str, os.PathLike, bytes, bytearray, memoryview],
    expected_nx: Optional[int] = None,
    expected_ng: Optional[int] = None,
    expected_nu: Optional[int] = None,
    max_bytes: int = MAX_BUNDLE_BYTES,
) -> CriticBundle:
    """Read and validate a critic bundle.

    Args:
        path_or_bytes: file path (read with
            :func:`dmpc_core.critics.source.read_critic_source`: regular files only), or the
            serialized ONNX model (e.g. received on a topic).
        expected_nx: state width of the robot model (None: not checked).
        expected_ng: goal width of the task (None: not checked).
        expected_nu: action width (Q bundles only; None: not checked).
        max_bytes: size limit of the bundle.
    Returns:
        the validated :class:`CriticBundle`.
    Raises:
        CriticBundleError: with a message naming what is wrong (every failure, whatever its cause).
    """
    source = "<bytes>"
    try:
        if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
            data = bytes(path_or_bytes)
        elif isinstance(path_or_bytes, (str, os.PathLike)):
            from dmpc_core.critics.source import read_critic_source

            source = os.fspath(path_or_bytes)
            data = read_critic_source(source, max_bytes=max_bytes, timeout=10.0)
        else:
            raise CriticBundleError(f"a critic bundle is a path or bytes, got {type(path_or_bytes).__name__}")
        return _load(data, source, expected_nx, expected_ng, expected_nu, max_bytes)
    except CriticBundleError:
        raise
    except Exception as e:  # unforeseen decoder failures on crafted bytes: still the loader's error
        raise CriticBundleError(f"critic bundle {source} is invalid ({type(e).__name__}: {e})") from e


def _load(data: bytes, source: str, expected_nx, expected_ng, expected_nu, max_bytes: int) -> CriticBundle:
    if not data:
        raise CriticBundleError(f"critic bundle {source} is empty")
    if len(data) > max_bytes:
        raise CriticBundleError(f"critic bundle {source} is {len(data)} bytes, above the limit of {max_bytes}")
    try:
        proto = onnx.load_from_string(data)
    except Exception as e:  # protobuf DecodeError and friends
        raise CriticBundleError(f"critic bundle {source} is corrupt or truncated (ONNX decode error: {e})") from e
    graph = proto.graph
    _require_text(proto, graph=False)

    # -- metadata ------------------------------------------------------------------------
    keys = [p.key for p in proto.metadata_props]
    if len(set(keys)) != len(keys):
        raise CriticBundleError(f"critic bundle {source} repeats metadata keys {sorted({k for k in keys if keys.count(k) > 1})[:4]}")
    meta = {p.key: p.value for p in proto.metadata_props}
    if meta.get("dmpc.format") != FORMAT:
        raise CriticBundleError(
            f"{source} is not a critic bundle: metadata dmpc.format={meta.get('dmpc.format')!r}, "
            f"expected {FORMAT!r} (corrupt or truncated file, or a foreign ONNX model)"
        )
    if meta.get("dmpc.format_version") != FORMAT_VERSION:
        raise CriticBundleError(
            f"unsupported critic bundle format version {meta.get('dmpc.format_version')!r}; "
            f"this loader reads version {FORMAT_VERSION!r} (re-export the critic with this version)"
        )
    from dmpc_core.critics.contract import REQUIRED_METADATA

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
        if not isinstance(hidden, list) or not 0 < len(hidden) <= MAX_LAYERS or not all(
                isinstance(h, int) and not isinstance(h, bool) and 0 < h <= MAX_WIDTH for h in hidden):
            raise ValueError
    except (ValueError, RecursionError):
        raise CriticBundleError(
            f"metadata dmpc.hidden must be a JSON list of 1..{MAX_LAYERS} ints in 1..{MAX_WIDTH}, "
            f"got {meta['dmpc.hidden'][:80]!r}"
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
        raise CriticBundleError(f"metadata dmpc.content_sha256 is not a sha256 hex digest: {sha[:80]!r}")
    got_sha = content_sha256(proto)
    if got_sha != sha:
        raise CriticBundleError(
            f"content hash mismatch: the model hashes to {got_sha[:16]}..., metadata says {sha[:16]}... "
            "(edited or corrupted graph, weights or metadata)"
        )
    _require_text(proto, graph=True)
    num_members = _meta_int(meta, "dmpc.num_members", 1) if kind == "value_ensemble" else 1
    for name, v in (("nx", nx), ("ng", ng), ("nu", nu)):
        if v > MAX_WIDTH:
            raise CriticBundleError(f"metadata dmpc.{name}={v} is above the limit of {MAX_WIDTH}")
    if num_members > MAX_MEMBERS:
        raise CriticBundleError(f"metadata dmpc.num_members={num_members} is above the limit of {MAX_MEMBERS}")

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
    if len(proto.training_info) or len(graph.sparse_initializer):
        raise CriticBundleError("critic bundles may not contain training graphs or sparse initializers")

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
            raise CriticBundleError(f"initializer {t.name!r} has element type {t.data_type}; expected DOUBLE (11)")
        if t.data_location == onnx.TensorProto.EXTERNAL or len(t.external_data):
            raise CriticBundleError(f"initializer {t.name!r} refers to external data; critic bundles are self-contained")
        if tuple(t.dims) != want_inits[t.name]:
            raise CriticBundleError(
                f"initializer {t.name!r} has shape {list(t.dims)}; expected {list(want_inits[t.name])} "
                f"(dmpc.hidden={hidden}, nz={nz})"
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
    try:
        onnx.checker.check_model(proto)
    except Exception as e:
        raise CriticBundleError(f"critic bundle fails the ONNX checker: {e}") from e

    return CriticBundle(
        kind=kind, nx=nx, ng=ng, nu=nu, hidden=tuple(hidden), activation=activation,
        discount=discount, version=version, training_step=training_step,
        robot=meta["dmpc.robot"], content_sha256=sha, metadata=meta, arrays=arrays,
        model_bytes=data, opset=opset, weights_sha256=weights_sha256(arrays),
    )
