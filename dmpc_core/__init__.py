"""dmpc_core: the pure-Python side of dmpc (never imports ROS).

The compiled solvers and models live in :mod:`dmpc_core._core` (built from ``cpp_ext/``).
"""
from dmpc_core import _core  # noqa: F401  (fails loudly if the core was not built)

__all__ = ["_core"]
__version__ = "0.1.0"
