"""onnxruntime evaluation of critic bundles (CPU execution provider, float64).

:class:`OrtCritic` evaluates batches and returns a dict of numpy arrays keyed by the bundle's
output names. Its session runs :attr:`CriticBundle.runtime_model_bytes`, the graph exported
again from the validated weights, never the graph a received bundle carries. :class:`OrtCriticAdapter` is the per-state interface the C++ side expects from a
critic: ``evaluate(x, goal, time_to_go) -> (V, Vx, Vxx, Vtau, Vtaux)``. The abstract
``_core.CriticModel`` has a Python-subclassable trampoline: the adapter itself is a plain Python
class, and :func:`make_core_critic_adapter` subclasses ``_core.CriticModel`` (overriding
``calc``/``calc_diff`` as the trampoline expects) so that the C++ solvers can call it.
"""
from __future__ import annotations

import os
import threading
from typing import Dict, Optional, Tuple, Union

import numpy as np

from dmpc_core.critics.bundle import CriticBundle, CriticBundleError, load_bundle


def _as_batch(name: str, arr, width: int, batch: Optional[int]) -> np.ndarray:
    a = np.asarray(arr, dtype=np.float64)
    if a.ndim == 1:
        a = a.reshape(1, -1) if width > 1 or batch in (None, 1) else a.reshape(-1, 1)
    if a.ndim != 2 or a.shape[1] != width:
        raise ValueError(f"{name} must have shape [B, {width}], got {list(np.shape(arr))}")
    if batch is not None and a.shape[0] != batch:
        raise ValueError(f"{name} has batch {a.shape[0]}, expected {batch}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains non-finite values")
    return np.ascontiguousarray(a)


class OrtCritic:
    """Batched onnxruntime evaluator of a validated critic bundle.

    Args:
        bundle: a :class:`CriticBundle`, or a path/bytes passed to :func:`load_bundle`.
        expected_nx, expected_ng, expected_nu: dimension checks forwarded to the loader.
        intra_op_threads: onnxruntime threads (1 keeps the control loop predictable).
    """

    def __init__(
        self,
        bundle: Union[CriticBundle, str, os.PathLike, bytes],
        expected_nx: Optional[int] = None,
        expected_ng: Optional[int] = None,
        expected_nu: Optional[int] = None,
        intra_op_threads: int = 1,
    ) -> None:
        if not isinstance(bundle, CriticBundle):
            bundle = load_bundle(bundle, expected_nx, expected_ng, expected_nu)
        else:
            for name, got, want in (("nx", bundle.nx, expected_nx), ("ng", bundle.ng, expected_ng),
                                    ("nu", bundle.nu, expected_nu)):
                if want is not None and got != want:
                    raise CriticBundleError(f"critic bundle has {name}={got}, expected {want}")
        self.bundle = bundle
        try:
            self.session = bundle.session(intra_op_threads)
        except Exception as e:  # rebuilding or compiling the graph failed: still the loader's error
            raise CriticBundleError(f"cannot build an onnxruntime session for this critic ({type(e).__name__}: {e})") from e
        self._outputs = list(bundle.output_names)

    @property
    def nx(self) -> int:
        return self.bundle.nx

    @property
    def ng(self) -> int:
        return self.bundle.ng

    def evaluate_batch(self, state, goal=None, time_to_go=None, action=None) -> Dict[str, np.ndarray]:
        """Evaluate a batch.

        Args:
            state: [B, nx] (or [nx] for one state).
            goal: [B, ng] (None when the bundle has ng == 0).
            time_to_go: [B, 1] or [B] (value bundles).
            action: [B, nu] (Q bundles).
        Returns:
            dict output name -> float64 array (see ``export.py`` for shapes).
        """
        b = self.bundle
        x = _as_batch("state", state, b.nx, None)
        n = x.shape[0]
        feeds = {"state": x}
        if b.kind == "q":
            if action is None:
                raise ValueError("a Q critic needs an action")
            feeds["action"] = _as_batch("action", action, b.nu, n)
        if b.ng > 0:
            if goal is None:
                raise ValueError(f"this critic needs a goal of width {b.ng}")
            feeds["goal"] = _as_batch("goal", goal, b.ng, n)
        elif goal is not None and np.size(goal) > 0:
            raise ValueError("this critic has no goal input (ng = 0) but a goal was given")
        if b.kind != "q":
            if time_to_go is None:
                raise ValueError("a value critic needs time_to_go")
            feeds["time_to_go"] = _as_batch("time_to_go", np.reshape(time_to_go, (-1, 1)), 1, n)
        results = self.session.run(self._outputs, feeds)
        return dict(zip(self._outputs, results))


class OrtCriticAdapter:
    """Per-state critic with the interface of the native ``CriticModel``.

    ``evaluate(x, goal, time_to_go)`` returns ``(V, Vx, Vxx, Vtau, Vtaux)``: value (float),
    dV/dx [nx], d2V/dx2 [nx, nx], dV/dtau (float) and d2V/dtau dx [nx], tau being the
    time-to-go. Thread-safe (onnxruntime sessions allow concurrent ``run``); the bundle can be
    swapped atomically with :meth:`swap`.

    Args:
        bundle: a value or value-ensemble :class:`CriticBundle` (or path/bytes).
        expected_nx, expected_ng: dimension checks.
    """

    def __init__(self, bundle, expected_nx: Optional[int] = None, expected_ng: Optional[int] = None) -> None:
        self._lock = threading.Lock()
        self._critic = self._make(bundle, expected_nx, expected_ng)
        self._expected = (expected_nx, expected_ng)

    @staticmethod
    def _make(bundle, expected_nx, expected_ng) -> OrtCritic:
        critic = OrtCritic(bundle, expected_nx, expected_ng)
        if critic.bundle.kind == "q":
            raise CriticBundleError("OrtCriticAdapter needs a value bundle, got dmpc.kind='q'")
        return critic

    @property
    def nx(self) -> int:
        return self._critic.nx

    @property
    def ng(self) -> int:
        return self._critic.ng

    @property
    def bundle(self) -> CriticBundle:
        return self._critic.bundle

    def swap(self, bundle) -> None:
        """Replace the evaluated bundle (validated against the same dimensions first)."""
        new = self._make(bundle, *self._expected)
        with self._lock:
            self._critic = new

    def evaluate(self, x, goal, time_to_go: float) -> Tuple[float, np.ndarray, np.ndarray, float, np.ndarray]:
        """(V, Vx [nx], Vxx [nx, nx], Vtau, Vtaux [nx]) at one state."""
        with self._lock:
            critic = self._critic
        g = None if critic.ng == 0 else np.reshape(np.asarray(goal, dtype=np.float64), (1, -1))
        out = critic.evaluate_batch(np.reshape(np.asarray(x, dtype=np.float64), (1, -1)), g,
                                    np.array([[float(time_to_go)]]))
        return (
            float(out["value"][0]),
            out["dvalue_dx"][0],
            out["d2value_dx2"][0],
            float(out["dvalue_dt"][0]),
            out["d2value_dtdx"][0],
        )


def make_core_critic_adapter(bundle, expected_nx: Optional[int] = None, expected_ng: Optional[int] = None):
    """A critic the C++ solvers can call, when ``_core.CriticModel`` exists.

    With ``_core.CriticModel`` (``__init__(nx, ng)``, Python overrides
    ``calc(data, tau, x)`` / ``calc_diff(data, tau, x)`` filling ``data.V, Vx, Vxx, Vtau,
    Vtaux``, goal read from ``self.goal``) this returns such a subclass delegating to
    onnxruntime; otherwise the plain :class:`OrtCriticAdapter` (Python callers only).
    """
    adapter = OrtCriticAdapter(bundle, expected_nx, expected_ng)
    from dmpc_core import _core

    base = getattr(_core, "CriticModel", None)
    if base is None:
        return adapter

    class OrtCoreCritic(base):  # type: ignore[misc, valid-type]
        """``_core.CriticModel`` evaluated by onnxruntime (GIL held during each call)."""

        def __init__(self, inner: OrtCriticAdapter) -> None:
            base.__init__(self, inner.nx, inner.ng)
            self.inner = inner

        def _goal(self):
            return np.asarray(self.goal, dtype=np.float64) if self.inner.ng > 0 else None

        def calc(self, data, tau, x):
            data.V = self.inner.evaluate(x, self._goal(), tau)[0]

        def calc_diff(self, data, tau, x):
            v, vx, vxx, vtau, vtaux = self.inner.evaluate(x, self._goal(), tau)
            data.V, data.Vx, data.Vxx, data.Vtau, data.Vtaux = v, vx, vxx, vtau, vtaux

        def name(self):
            return f"OrtCoreCritic({self.inner.bundle.robot or 'critic'} v{self.inner.bundle.version})"

    return OrtCoreCritic(adapter)
