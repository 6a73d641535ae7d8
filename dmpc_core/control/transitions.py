"""The transitions wire format, defined once (controller -> learner).

A batch of n transitions travels as a row-major (n, W) float64 matrix with a two-level label::

    dim[0]: label "transition", size n, stride n * W
    dim[1]: label "state:10,goal:2,time_to_go:1,cost:1,next_state:10,next_time_to_go:1,done:1",
            size W (26 for the Ballbot), stride W

The field order and widths are ``dmpc_core.control.reach_mpc.field_widths`` (the learner's
``TRANSITION_FIELDS``); the second label names every field with its width so that a receiver
checks it expects the same layout. The ROS glue only copies these pieces into a
std_msgs/Float64MultiArray (``dmpc_ros.messages``).
"""
from __future__ import annotations

from typing import Dict, List, Tuple

import numpy as np

from dmpc_core.control.reach_mpc import field_widths, pack_rows, unpack_rows

ROWS_LABEL = "transition"


def label(nx: int, ng: int) -> str:
    """The field label of one transition row for state size ``nx`` and goal size ``ng``."""
    return ",".join(f"{k}:{w}" for k, w in field_widths(nx, ng).items())


def encode(rows: List[dict], nx: int, ng: int) -> Tuple[List[Tuple[str, int, int]], np.ndarray]:
    """``(dims, data)``: dims = [(label, size, stride)] x 2 and the flat float64 data."""
    mat = pack_rows(rows, nx, ng)
    n, w = mat.shape
    return [(ROWS_LABEL, n, n * w), (label(nx, ng), w, w)], mat.ravel()


def decode(dims: List[Tuple[str, int]], data, nx: int, ng: int) -> Dict[str, np.ndarray]:
    """Fields of a batch from its dims [(label, size), ...] and flat data.

    Raises:
        ValueError: the layout is not the one of (nx, ng), the sizes do not match the data, or a
            value is not finite.
    """
    want = label(nx, ng)
    if len(dims) != 2 or dims[0][0] != ROWS_LABEL or dims[1][0] != want:
        raise ValueError(f"transition layout {[d[0] for d in dims]} does not match [{ROWS_LABEL!r}, {want!r}]")
    n, w = int(dims[0][1]), int(dims[1][1])
    if w != sum(field_widths(nx, ng).values()):
        raise ValueError(f"transition row width {w} does not match the label {want!r}")
    arr = np.asarray(data, float)
    if arr.size != n * w:
        raise ValueError(f"transition message has {arr.size} values; layout says {n} x {w}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("transition message contains non-finite values")
    return unpack_rows(arr.reshape(n, w), nx, ng)
