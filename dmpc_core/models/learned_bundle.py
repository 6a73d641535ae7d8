"""ONNX bundles of learned dynamics ensembles: export, validated loading, signing, and the MPC
problem of a controller config that names a learned model.

A bundle is an ONNX model (opset 17, float64) whose graph computes, for states ``state`` (B, nx)
and controls ``action`` (B, nu),

    xdot_members (B, M, nx): every member's xdot = a(phi(x)) + B(phi(x)) u   (models/learned.py)
    xdot         (B, nx):    their mean (the model SLQ plans with)

with the weights as initializers named as the torch state dict of
:class:`~dmpc_core.models.learned.DynamicsEnsemble` (``members.<k>.layers.<i>.weight`` ...). The
same conventions as the critic bundles (``critics/export.py``, ``critics/bundle.py``) hold: the
metadata names the format and sizes, ``dmpc.content_sha256`` is :func:`content_sha256` of the
whole model (graph, weights and the other metadata), files are written atomically (:func:`write_bytes_atomic`), and a pushed bundle may
carry the HMAC trailer of ``critics/signing.py``.

:func:`load_dynamics_bundle` refuses anything a controller must not plan with, raising
:class:`DynamicsBundleError` (a ``ValueError``) that names the problem: unreadable/corrupt data,
foreign format or version, missing metadata, sizes that do not fit the robot (``expected_nx``,
``expected_nu``), opset/operators outside the critic loader's lists (plus Cos/Sin for the
features), wrong graph inputs/outputs, missing/extra/misshaped/non-DOUBLE/non-finite weights,
non-positive input scales, a content-hash mismatch, a bad or missing HMAC when a key is set.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple, Union

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from dmpc_core import _core
from dmpc_core.critics.bundle import ALLOWED_OPS, SUPPORTED_OPSETS
from dmpc_core.critics.export import content_sha256, write_bytes_atomic
from dmpc_core.critics.signing import CriticHeader, CriticSignatureError, sign_bundle, verify
from dmpc_core.models.learned import FEATURE_KINDS, INTEGRATORS, DynamicsEnsemble

FORMAT = "dynamics-bundle"
FORMAT_VERSION = "1"
KIND = "control_affine_mlp_ensemble"
OPSET = 17
#: the critic loader's operators plus the feature maps phi(x)
DYNAMICS_ALLOWED_OPS = frozenset(ALLOWED_OPS | {"Cos", "Sin"})
REQUIRED_METADATA = ("dmpc.format", "dmpc.format_version", "dmpc.kind", "dmpc.nx", "dmpc.nu", "dmpc.nq",
                     "dmpc.features", "dmpc.hidden", "dmpc.activation", "dmpc.num_members", "dmpc.dt",
                     "dmpc.integrator", "dmpc.robot", "dmpc.version", "dmpc.transitions", "dmpc.content_sha256")


class DynamicsBundleError(ValueError):
    """A dynamics bundle is unreadable, inconsistent, unsigned/forged, or does not fit the robot."""


# -- export ----------------------------------------------------------------------------------
def _const(nodes: list, name: str, values, dtype=np.int64) -> str:
    nodes.append(helper.make_node("Constant", [], [name], value=numpy_helper.from_array(np.asarray(values, dtype=dtype), name)))
    return name


def _member_graph(nodes: list, k: int, nx: int, nu: int, nq: int, features, num_layers: int) -> str:
    p = f"members.{k}."
    t = f"m{k}_"
    cols = []
    for i, (kind, idx) in enumerate(features):
        g = f"{t}g{i}"
        nodes.append(helper.make_node("Gather", ["state", _const(nodes, f"{t}idx{i}", [idx])], [g], axis=1))
        if kind != "id":
            nodes.append(helper.make_node("Cos" if kind == "cos" else "Sin", [g], [g + "_f"]))
            g = g + "_f"
        cols.append(g)
    nodes.append(helper.make_node("Concat", cols, [t + "z"], axis=1))
    nodes.append(helper.make_node("Sub", [t + "z", p + "input_mean"], [t + "zc"]))
    nodes.append(helper.make_node("Div", [t + "zc", p + "input_std"], [t + "h0"]))
    h = t + "h0"
    for i in range(num_layers):
        out = f"{t}pre{i}"
        nodes.append(helper.make_node("Gemm", [h, f"{p}layers.{i}.weight", f"{p}layers.{i}.bias"], [out], transB=1))
        if i + 1 < num_layers:
            nodes.append(helper.make_node("Tanh", [out], [f"{t}h{i + 1}"]))
            h = f"{t}h{i + 1}"
        else:
            h = out
    nl = nx - nq
    nodes.append(helper.make_node("Mul", [h, p + "output_scale"], [t + "ys"]))
    nodes.append(helper.make_node("Add", [t + "ys", p + "output_bias"], [t + "y"]))
    one = _const(nodes, t + "ax1", [1])
    nodes.append(helper.make_node("Slice", [t + "y", _const(nodes, t + "s0", [0]), _const(nodes, t + "s1", [nl]), one], [t + "a"]))
    nodes.append(helper.make_node("Slice", [t + "y", _const(nodes, t + "s2", [nl]), _const(nodes, t + "s3", [nl * (1 + nu)]), one],
                                  [t + "bflat"]))
    nodes.append(helper.make_node("Reshape", [t + "bflat", _const(nodes, t + "bshape", [-1, nl, nu])], [t + "B"]))
    nodes.append(helper.make_node("Unsqueeze", ["action", _const(nodes, t + "ax2", [2])], [t + "u3"]))
    nodes.append(helper.make_node("MatMul", [t + "B", t + "u3"], [t + "Bu3"]))
    nodes.append(helper.make_node("Reshape", [t + "Bu3", _const(nodes, t + "ashape", [-1, nl])], [t + "Bu"]))
    nodes.append(helper.make_node("Add", [t + "a", t + "Bu"], [t + "acc"]))
    xd = t + "acc"
    if nq:
        nodes.append(helper.make_node("Slice", ["state", _const(nodes, t + "v0", [nq]), _const(nodes, t + "v1", [nx]), one], [t + "v"]))
        nodes.append(helper.make_node("Concat", [t + "v", t + "acc"], [t + "xd"], axis=1))
        xd = t + "xd"
    nodes.append(helper.make_node("Unsqueeze", [xd, one], [t + "xd3"]))
    return t + "xd3"


def export_dynamics_bundle_proto(ens: DynamicsEnsemble, *, dt: float, integrator: str, robot: str, version: int = 0,
                                 transitions: int = 0) -> onnx.ModelProto:
    """The bundle of ``ens`` (weights as float64 initializers, metadata with the content hash)."""
    if integrator not in INTEGRATORS:
        raise ValueError(f"integrator must be one of {INTEGRATORS}, got {integrator!r}")
    if not dt > 0:
        raise ValueError(f"dt must be > 0, got {dt}")
    nx, nu, nq = ens.nx, ens.nu, ens.nq
    state = {k: v.detach().cpu().numpy().astype(np.float64) for k, v in ens.state_dict().items()}
    for k, v in state.items():
        if not np.all(np.isfinite(v)):
            raise ValueError(f"cannot export: weight {k!r} is not finite")
    inits = [numpy_helper.from_array(v, k) for k, v in sorted(state.items())]
    nodes: list = []
    num_layers = len(ens.members[0].layers)
    outs = [_member_graph(nodes, k, nx, nu, nq, ens.features, num_layers) for k in range(len(ens.members))]
    nodes.append(helper.make_node("Concat", outs, ["xdot_members"], axis=1))
    nodes.append(helper.make_node("ReduceMean", ["xdot_members"], ["xdot"], axes=[1], keepdims=0))
    M = len(ens.members)
    graph = helper.make_graph(
        nodes, "learned_dynamics",
        [helper.make_tensor_value_info("state", TensorProto.DOUBLE, ["batch", nx]),
         helper.make_tensor_value_info("action", TensorProto.DOUBLE, ["batch", nu])],
        [helper.make_tensor_value_info("xdot", TensorProto.DOUBLE, ["batch", nx]),
         helper.make_tensor_value_info("xdot_members", TensorProto.DOUBLE, ["batch", M, nx])],
        initializer=inits)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="dmpc")
    proto.ir_version = 8
    meta = {"dmpc.format": FORMAT, "dmpc.format_version": FORMAT_VERSION, "dmpc.kind": KIND, "dmpc.nx": str(nx),
            "dmpc.nu": str(nu), "dmpc.nq": str(nq), "dmpc.features": json.dumps([list(f) for f in ens.features]),
            "dmpc.hidden": json.dumps(list(ens.hidden)), "dmpc.activation": "tanh", "dmpc.num_members": str(M),
            "dmpc.dt": repr(float(dt)), "dmpc.integrator": integrator, "dmpc.robot": str(robot),
            "dmpc.version": str(int(version)), "dmpc.transitions": str(int(transitions))}
    for k, v in meta.items():
        proto.metadata_props.append(onnx.StringStringEntryProto(key=k, value=v))
    # the hash covers the whole model (graph, weights, the other metadata), as for critic bundles
    proto.metadata_props.append(onnx.StringStringEntryProto(key="dmpc.content_sha256", value=content_sha256(proto)))
    onnx.checker.check_model(proto)
    return proto


def _signed(data: bytes, key: Optional[bytes], kwargs: dict) -> bytes:
    """``data`` with the signed trailer of ``critics/signing.py`` when ``key`` is given; the header
    names the robot and version of the bundle and the task "dynamics"."""
    if key is None:
        return data
    header = CriticHeader("dynamics", int(kwargs.get("version", 0)), str(kwargs["robot"]), "dynamics")
    return sign_bundle(data, key, header)


def dynamics_bundle_bytes(ens: DynamicsEnsemble, key: Optional[bytes] = None, **kwargs) -> bytes:
    """Serialized bundle (HMAC-signed when ``key`` is given); keywords as :func:`export_dynamics_bundle_proto`."""
    data = export_dynamics_bundle_proto(ens, **kwargs).SerializeToString()
    return _signed(data, key, kwargs)


def export_dynamics_bundle(ens: DynamicsEnsemble, path: Union[str, os.PathLike], key: Optional[bytes] = None,
                           **kwargs) -> str:
    """Write the bundle atomically to ``path``; returns its content hash."""
    proto = export_dynamics_bundle_proto(ens, **kwargs)
    data = proto.SerializeToString()
    write_bytes_atomic(path, _signed(data, key, kwargs))
    return next(p.value for p in proto.metadata_props if p.key == "dmpc.content_sha256")


# -- loading ---------------------------------------------------------------------------------
@dataclass
class DynamicsBundle:
    """A validated dynamics bundle: sizes, features, training metadata and the weight arrays."""

    nx: int
    nu: int
    nq: int
    features: List[Tuple[str, int]]
    hidden: Tuple[int, ...]
    num_members: int
    dt: float
    integrator: str
    robot: str
    version: int
    transitions: int
    content_sha256: str
    metadata: Dict[str, str]
    arrays: Dict[str, np.ndarray] = field(repr=False)
    model_bytes: bytes = field(repr=False)

    def to_native(self):
        """(members, mean): ``_core.ControlAffineMlpDynamics`` per member and their ``_core.EnsembleMeanDynamics``."""
        L = len(self.hidden) + 1
        members = []
        for k in range(self.num_members):
            p = f"members.{k}."
            a = self.arrays
            members.append(_core.ControlAffineMlpDynamics(
                self.nx, self.nu, self.nq, list(self.features),
                [np.array(a[f"{p}layers.{i}.weight"]) for i in range(L)], [np.array(a[f"{p}layers.{i}.bias"]) for i in range(L)],
                np.array(a[p + "input_mean"]), np.array(a[p + "input_std"]), np.array(a[p + "output_scale"]),
                np.array(a[p + "output_bias"])))
        return members, _core.EnsembleMeanDynamics(members)

    def to_torch(self) -> DynamicsEnsemble:
        import torch

        ens = DynamicsEnsemble(self.nx, self.nu, self.nq, self.features, self.hidden, self.num_members)
        ens.load_state_dict({k: torch.as_tensor(np.array(v)) for k, v in self.arrays.items()})
        return ens

    def session(self, intra_op_threads: int = 1):
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = int(intra_op_threads)
        return ort.InferenceSession(self.model_bytes, so, providers=["CPUExecutionProvider"])


def _int(meta: Dict[str, str], key: str, minimum: int) -> int:
    try:
        v = int(meta[key])
    except ValueError:
        raise DynamicsBundleError(f"metadata {key}={meta[key]!r} is not an integer") from None
    if v < minimum:
        raise DynamicsBundleError(f"metadata {key}={v} must be >= {minimum}")
    return v


def _expected_initializers(nz: int, hidden, nout: int, M: int) -> Dict[str, Tuple[int, ...]]:
    sizes = [nz, *hidden, nout]
    out: Dict[str, Tuple[int, ...]] = {}
    for k in range(M):
        p = f"members.{k}."
        for i in range(len(sizes) - 1):
            out[f"{p}layers.{i}.weight"] = (sizes[i + 1], sizes[i])
            out[f"{p}layers.{i}.bias"] = (sizes[i + 1],)
        out[p + "input_mean"] = (nz,)
        out[p + "input_std"] = (nz,)
        out[p + "output_scale"] = (nout,)
        out[p + "output_bias"] = (nout,)
    return out


def _io_dims(vi) -> Tuple[int, list]:
    tt = vi.type.tensor_type
    return tt.elem_type, [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in tt.shape.dim]


def load_dynamics_bundle(path_or_bytes: Union[str, os.PathLike, bytes, bytearray, memoryview],
                         expected_nx: Optional[int] = None, expected_nu: Optional[int] = None,
                         key: Optional[bytes] = None, expected_dt: Optional[float] = None) -> DynamicsBundle:
    """Read, authenticate (when ``key`` is set) and validate a dynamics bundle.

    Args:
        path_or_bytes: file path or the (possibly signed) bytes.
        expected_nx, expected_nu: the robot model's sizes (None: not checked).
        key: HMAC key; with a key an unsigned or forged bundle is refused.
        expected_dt: the controller's control step; the model was fitted through its integrator
            at ``dmpc.dt`` and is refused at another step (None: not checked).
    Raises:
        DynamicsBundleError: naming what is wrong.
    """
    if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        blob, source = bytes(path_or_bytes), "<bytes>"
    else:
        source = os.fspath(path_or_bytes)
        try:
            with open(source, "rb") as f:
                blob = f.read()
        except OSError as e:
            raise DynamicsBundleError(f"cannot read dynamics bundle {source}: {e}") from e
    if not blob:
        raise DynamicsBundleError(f"dynamics bundle {source} is empty")
    try:
        # with a key only signed bundles pass; without one, plain bundles (a trailer is ignored)
        data = verify(blob, key, allow_unsigned=key is None).data
    except CriticSignatureError as e:
        raise DynamicsBundleError(f"dynamics bundle {source}: {str(e).replace('critic', 'bundle')}") from e
    try:
        proto = onnx.load_from_string(data)
    except Exception as e:
        raise DynamicsBundleError(f"dynamics bundle {source} is corrupt or truncated (ONNX decode error: {e})") from e
    graph = proto.graph
    meta = {p.key: p.value for p in proto.metadata_props}
    if meta.get("dmpc.format") != FORMAT:
        raise DynamicsBundleError(f"{source} is not a dynamics bundle: metadata dmpc.format="
                                  f"{meta.get('dmpc.format')!r}, expected {FORMAT!r}")
    if meta.get("dmpc.format_version") != FORMAT_VERSION:
        raise DynamicsBundleError(f"unsupported dynamics bundle format version {meta.get('dmpc.format_version')!r}; "
                                  f"this loader reads {FORMAT_VERSION!r}")
    missing = [k for k in REQUIRED_METADATA if k not in meta]
    if missing:
        raise DynamicsBundleError(f"dynamics bundle metadata lacks {missing}")
    if meta["dmpc.kind"] != KIND:
        raise DynamicsBundleError(f"metadata dmpc.kind={meta['dmpc.kind']!r}; expected {KIND!r}")
    nx, nu, nq = _int(meta, "dmpc.nx", 1), _int(meta, "dmpc.nu", 1), _int(meta, "dmpc.nq", 0)
    if nq not in (0, nx // 2) or (nq and 2 * nq != nx):
        raise DynamicsBundleError(f"metadata dmpc.nq={nq} must be 0 or nx/2 (nx={nx})")
    M = _int(meta, "dmpc.num_members", 1)
    version, transitions = _int(meta, "dmpc.version", 0), _int(meta, "dmpc.transitions", 0)
    try:
        feats = json.loads(meta["dmpc.features"])
        features = [(str(k), int(i)) for k, i in feats]
        hidden = json.loads(meta["dmpc.hidden"])
        if not isinstance(hidden, list) or not all(isinstance(h, int) and h > 0 for h in hidden):
            raise ValueError
    except (ValueError, TypeError):
        raise DynamicsBundleError("metadata dmpc.features must be a JSON list of [kind, index] and dmpc.hidden "
                                  "a JSON list of positive ints") from None
    if not features or any(k not in FEATURE_KINDS or not 0 <= i < nx for k, i in features):
        raise DynamicsBundleError(f"metadata dmpc.features={features} has an unknown kind or an index outside [0, {nx})")
    if meta["dmpc.activation"] != "tanh":
        raise DynamicsBundleError(f"metadata dmpc.activation={meta['dmpc.activation']!r}; expected 'tanh'")
    if meta["dmpc.integrator"] not in INTEGRATORS:
        raise DynamicsBundleError(f"metadata dmpc.integrator={meta['dmpc.integrator']!r}; expected one of {INTEGRATORS}")
    try:
        dt = float(meta["dmpc.dt"])
    except ValueError:
        dt = float("nan")
    if not (np.isfinite(dt) and dt > 0):
        raise DynamicsBundleError(f"metadata dmpc.dt={meta['dmpc.dt']!r} must be a positive number")
    sha = meta["dmpc.content_sha256"]
    if not re.fullmatch(r"[0-9a-f]{64}", sha):
        raise DynamicsBundleError(f"metadata dmpc.content_sha256 is not a sha256 hex digest: {sha!r}")
    for name, got, want in (("nx", nx, expected_nx), ("nu", nu, expected_nu)):
        if want is not None and got != int(want):
            raise DynamicsBundleError(f"dynamics bundle has {name}={got} but the robot model expects {name}={int(want)} "
                                      f"(bundle robot={meta['dmpc.robot']!r})")
    if expected_dt is not None and abs(dt - float(expected_dt)) > 1e-12 * max(1.0, dt):
        raise DynamicsBundleError(f"dynamics bundle was fitted at dt={dt} but the controller steps at dt={expected_dt}")
    # opset and operators
    opset = None
    for imp in proto.opset_import:
        if imp.domain in ("", "ai.onnx"):
            opset = int(imp.version)
        else:
            raise DynamicsBundleError(f"unsupported operator set domain {imp.domain!r}")
    if opset not in SUPPORTED_OPSETS:
        raise DynamicsBundleError(f"opset {opset} is outside the supported range {SUPPORTED_OPSETS[0]}..{SUPPORTED_OPSETS[-1]}")
    bad = sorted({n.op_type for n in graph.node if n.domain not in ("", "ai.onnx") or n.op_type not in DYNAMICS_ALLOWED_OPS})
    if bad:
        raise DynamicsBundleError(f"unsupported operator(s) {bad}")
    if len(proto.functions):
        raise DynamicsBundleError("dynamics bundles may not contain local ONNX functions")
    # inputs / outputs
    init_names = [t.name for t in graph.initializer]
    if set(v.name for v in graph.input) & set(init_names):
        raise DynamicsBundleError("initializers are also graph inputs (their weights could be overridden at run time)")
    for kind, actual, want in (("input", graph.input, {"state": [nx], "action": [nu]}),
                               ("output", graph.output, {"xdot": [nx], "xdot_members": [M, nx]})):
        names = [v.name for v in actual]
        if sorted(names) != sorted(want):
            raise DynamicsBundleError(f"graph {kind}s are {names}; expected {list(want)}")
        for v in actual:
            elem, dims = _io_dims(v)
            if elem != TensorProto.DOUBLE or len(dims) != 1 + len(want[v.name]) or list(dims[1:]) != want[v.name]:
                raise DynamicsBundleError(f"{kind} {v.name!r} has shape {dims} ({TensorProto.DataType.Name(elem)}); "
                                          f"expected [batch, {', '.join(map(str, want[v.name]))}] DOUBLE")
    # weights
    nout = (nx - nq) * (1 + nu)
    want_inits = _expected_initializers(len(features), hidden, nout, M)
    if len(set(init_names)) != len(init_names):
        raise DynamicsBundleError("duplicate initializer names in the dynamics bundle")
    miss, extra = sorted(set(want_inits) - set(init_names)), sorted(set(init_names) - set(want_inits))
    if miss or extra:
        raise DynamicsBundleError(f"dynamics bundle initializers do not match dmpc.hidden={hidden}, nx={nx}, nu={nu}: "
                                  f"missing {miss[:6]}, unexpected {extra[:6]}")
    arrays: Dict[str, np.ndarray] = {}
    for t in graph.initializer:
        if t.data_type != TensorProto.DOUBLE:
            raise DynamicsBundleError(f"initializer {t.name!r} is {TensorProto.DataType.Name(t.data_type)}; expected DOUBLE")
        try:
            arr = np.array(numpy_helper.to_array(t), dtype=np.float64)
        except Exception as e:
            raise DynamicsBundleError(f"initializer {t.name!r} cannot be decoded ({e}): corrupt bundle") from e
        if arr.shape != want_inits[t.name]:
            raise DynamicsBundleError(f"initializer {t.name!r} has shape {list(arr.shape)}; expected {list(want_inits[t.name])}")
        if not np.all(np.isfinite(arr)):
            raise DynamicsBundleError(f"initializer {t.name!r} contains non-finite values (NaN/inf)")
        if t.name.endswith("input_std") and not np.all(arr > 0):
            raise DynamicsBundleError(f"initializer {t.name!r} must be positive (it divides the inputs)")
        arr.setflags(write=False)
        arrays[t.name] = arr
    got = content_sha256(proto)
    if got != sha:
        raise DynamicsBundleError(f"content hash mismatch: weights hash to {got[:16]}..., metadata says {sha[:16]}... "
                                  "(tampered or corrupted weights)")
    try:
        onnx.checker.check_model(proto)
    except Exception as e:
        raise DynamicsBundleError(f"dynamics bundle fails the ONNX checker: {e}") from e
    return DynamicsBundle(nx=nx, nu=nu, nq=nq, features=features, hidden=tuple(hidden), num_members=M, dt=dt,
                          integrator=meta["dmpc.integrator"], robot=meta["dmpc.robot"], version=version,
                          transitions=transitions, content_sha256=sha, metadata=meta, arrays=arrays, model_bytes=data)


# -- controller configuration ----------------------------------------------------------------
@dataclass
class DynamicsModelConfig:
    """The dynamics a controller plans with.

    Attributes:
        model: "analytic" (the robot's hand-written model) or "learned" (a dynamics bundle).
        uri: path of the bundle (``file://`` prefix allowed) when model is "learned".
        key_file: HMAC key file; when set, an unsigned or forged bundle is refused.
    """

    model: str = "analytic"
    uri: str = ""
    key_file: str = ""

    def validate(self) -> None:
        if self.model not in ("analytic", "learned"):
            raise ValueError(f"model must be 'analytic' or 'learned', got {self.model!r}")
        if self.model == "learned" and not self.uri:
            raise ValueError("model: learned needs a uri (path of a dynamics bundle)")


def resolve_dynamics(cfg: DynamicsModelConfig, analytic, dt: float):
    """(dynamics, bundle): the analytic model, or the validated learned ensemble mean that
    replaces it (same nx, nu; fitted at the controller's dt). ``bundle`` is None for "analytic".
    Raises DynamicsBundleError (the caller keeps its current model: the rollback of a hot swap)."""
    cfg.validate()
    if cfg.model == "analytic":
        return analytic, None
    path = cfg.uri[len("file://"):] if cfg.uri.startswith("file://") else cfg.uri
    key = None
    if cfg.key_file:
        from dmpc_core.critics.signing import read_key

        key = read_key(cfg.key_file)
    bundle = load_dynamics_bundle(path, expected_nx=analytic.nx, expected_nu=analytic.nu, key=key, expected_dt=dt)
    _, mean = bundle.to_native()
    return mean, bundle


def learned_problem(cfg: DynamicsModelConfig, problem: "_core.Problem"):
    """The controller's MPC problem with its dynamics taken from ``cfg``: the same costs,
    horizon, dt, control weight and discount; the integrator becomes the bundle's (the model was
    fitted through it). Returns (problem, bundle or None)."""
    dyn, bundle = resolve_dynamics(cfg, problem.dynamics, problem.dt)
    if bundle is None:
        return problem, None
    R = np.asarray(problem.control_weight)
    return _core.Problem(dyn, problem.running_cost, problem.terminal_cost, problem.horizon, problem.dt,
                         bundle.integrator, R if R.size else None, problem.discount), bundle


__all__ = ["FORMAT", "FORMAT_VERSION", "KIND", "DynamicsBundle", "DynamicsBundleError", "DynamicsModelConfig",
           "export_dynamics_bundle", "export_dynamics_bundle_proto", "dynamics_bundle_bytes", "load_dynamics_bundle",
           "resolve_dynamics", "learned_problem"]
