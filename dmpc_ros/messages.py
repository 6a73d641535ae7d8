"""Message <-> numpy translation for the dmpc nodes (no algorithm here).

The transitions layout is defined in :mod:`dmpc_core.control.transitions`; this module only
copies it into a std_msgs/Float64MultiArray. :func:`parse_path` reads a serialised
nav_msgs/Path in a plain Python loop with a size cap checked before any pose is read (see its
docstring for why).
"""
from __future__ import annotations

import array
import struct
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray, MultiArrayDimension, UInt8MultiArray

from dmpc_core.control import transitions


def joint_state_to_x(msg: JointState, names: Sequence[str]) -> Tuple[Optional[np.ndarray], str]:
    """Generalised coordinates (positions then velocities, ordered as ``names``) or (None, reason)."""
    n = len(names)
    if len(msg.name) != n or len(msg.position) != n or len(msg.velocity) != n:
        return None, (f"JointState has {len(msg.name)} names, {len(msg.position)} positions, "
                      f"{len(msg.velocity)} velocities; expected {n} each ({list(names)})")
    index = {nm: i for i, nm in enumerate(msg.name)}
    if set(index) != set(names):
        return None, f"JointState joints {list(msg.name)} do not match {list(names)}"
    order = [index[nm] for nm in names]
    q = np.asarray(msg.position, float)[order]
    v = np.asarray(msg.velocity, float)[order]
    x = np.concatenate([q, v])
    if not np.all(np.isfinite(x)):
        return None, "JointState contains non-finite values"
    return x, ""


def x_to_joint_state(x: np.ndarray, names: Sequence[str], stamp, effort=None) -> JointState:
    n = len(names)
    msg = JointState()
    msg.header.stamp = stamp
    msg.name = list(names)
    msg.position = [float(v) for v in x[:n]]
    msg.velocity = [float(v) for v in x[n:2 * n]]
    if effort is not None:
        msg.effort = [float(v) for v in effort]
    return msg


# -- labelled Float64MultiArray --------------------------------------------------------------------
def vector_msg(values, label: str) -> Float64MultiArray:
    msg = Float64MultiArray()
    msg.layout.dim = [MultiArrayDimension(label=label, size=len(values), stride=len(values))]
    msg.data = array.array("d", np.asarray(values, float))
    return msg


class VectorPublisher:
    """Publisher of a fixed-size labelled Float64MultiArray for a high-rate loop: the message and
    its layout are built once; each ``publish`` only refills the data (rclpy serialises the
    message inside ``publish``, so reusing it is safe). A value count other than ``size`` raises
    ValueError (the layout would lie)."""

    def __init__(self, node, topic: str, qos, label: str, size: int):
        self.size = int(size)
        self.pub = node.create_publisher(Float64MultiArray, topic, qos)
        self.msg = vector_msg(np.zeros(self.size), label)

    def publish(self, values) -> None:
        data = array.array("d", np.asarray(values, float).ravel())
        if len(data) != self.size:
            raise ValueError(f"{self.pub.topic_name}: {len(data)} values, layout says {self.size}")
        self.msg.data = data
        self.pub.publish(self.msg)


def labelled_msg(dims, data) -> Float64MultiArray:
    """A Float64MultiArray from [(label, size, stride)] and flat data."""
    msg = Float64MultiArray()
    msg.layout.dim = [MultiArrayDimension(label=lab, size=int(n), stride=int(st)) for lab, n, st in dims]
    msg.data = array.array("d", np.asarray(data, float))
    return msg


def policy_msg(pol) -> Float64MultiArray:
    """The affine policy in the layout of dmpc_core.control.policy_wire."""
    from dmpc_core.control import policy_wire

    return labelled_msg(*policy_wire.encode(pol))


def transitions_msg(rows, nx: int, ng: int) -> Float64MultiArray:
    """A batch of transition rows in the wire format of dmpc_core.control.transitions."""
    dims, data = transitions.encode(rows, nx, ng)
    msg = Float64MultiArray()
    msg.layout.dim = [MultiArrayDimension(label=lab, size=n, stride=s) for lab, n, s in dims]
    msg.data = array.array("d", data)
    return msg


def transitions_from_msg(msg: Float64MultiArray, nx: int, ng: int) -> Dict[str, np.ndarray]:
    """Decode a transitions message (ValueError if the layout does not match nx/ng)."""
    return transitions.decode([(d.label, d.size) for d in msg.layout.dim], msg.data, nx, ng)


def bytes_msg(data: bytes) -> UInt8MultiArray:
    msg = UInt8MultiArray()
    msg.layout.dim = [MultiArrayDimension(label="critic_bundle", size=len(data), stride=len(data))]
    msg.data = array.array("B", data)
    return msg


def wall_time_msg(t: float):
    from builtin_interfaces.msg import Time

    sec = int(t)
    return Time(sec=sec, nanosec=int((t - sec) * 1e9))


def stamp_to_float(stamp) -> float:
    return stamp.sec + 1e-9 * stamp.nanosec


# -- nav_msgs/Path from its serialised form ---------------------------------------------------------
class PathTooLong(ValueError):
    """A path with more poses than allowed (refused before any pose was read)."""


_U32 = struct.Struct("<I")
_I32U32 = struct.Struct("<iI")
_POSE = struct.Struct("<7d")


def _string(buf, pos: int, origin: int) -> Tuple[str, int]:
    (n,) = _U32.unpack_from(buf, pos)
    pos += 4
    if n < 1 or pos + n > len(buf):
        raise ValueError("truncated string")
    return bytes(buf[pos:pos + n - 1]).decode("utf-8", "replace"), pos + n


def _align(pos: int, origin: int, k: int) -> int:
    return pos + (-(pos - origin)) % k


def parse_path(raw: bytes, max_poses: int) -> Tuple[str, np.ndarray, np.ndarray]:
    """(frame_id, points (K, 3), stamps (K,)) of a serialised nav_msgs/Path (CDR, little or big
    endian as its encapsulation header says; big endian is refused).

    Why not rclpy's deserialisation: it builds every PoseStamped as a Python object in one C call
    that holds the GIL (a 100 000-pose path stopped the 400 Hz command stream for 0.3-0.5 s).
    Here the pose count is read first and a path over ``max_poses`` is refused before any pose is
    read; the poses are then read in a Python loop, so the interpreter hands the GIL to the
    tracking thread every switch interval.

    Raises:
        PathTooLong: more than ``max_poses`` poses.
        ValueError: not a little-endian CDR Path, or truncated.
    """
    buf = memoryview(raw)
    if len(buf) < 4 or buf[1] != 0x01:
        raise ValueError("not a little-endian CDR message")
    origin = 4
    try:
        pos = origin + 8                       # header.stamp
        frame, pos = _string(buf, pos, origin)
        pos = _align(pos, origin, 4)
        (n,) = _U32.unpack_from(buf, pos)
        pos += 4
        if n > max_poses:
            raise PathTooLong(f"path has {n} poses; the limit is {max_poses}")
        if n * 68 > len(buf) - pos:            # every pose needs at least 68 bytes
            raise ValueError(f"path says {n} poses but has only {len(buf) - pos} bytes")
        pts = np.empty((n, 3))
        stamps = np.empty(n)
        for k in range(n):
            pos = _align(pos, origin, 4)
            sec, nsec = _I32U32.unpack_from(buf, pos)
            _, pos = _string(buf, pos + 8, origin)   # each pose's own frame_id (unused)
            pos = _align(pos, origin, 8)
            px, py, pz = _POSE.unpack_from(buf, pos)[:3]
            pos += _POSE.size
            pts[k] = (px, py, pz)
            stamps[k] = sec + 1e-9 * nsec
    except struct.error as e:
        raise ValueError(f"truncated Path message ({e})") from e
    return frame, pts, stamps


# -- planned path, markers, diagnostics --------------------------------------------------------------
def plan_messages(points: np.ndarray, goal, stamp, frame: str = "world"):
    """(nav_msgs/Path, visualization_msgs/MarkerArray) of the planned points (n, 3) and the goal."""
    from geometry_msgs.msg import Point, PoseStamped
    from nav_msgs.msg import Path
    from visualization_msgs.msg import Marker, MarkerArray

    path = Path()
    path.header.frame_id, path.header.stamp = frame, stamp
    for x in points:
        ps = PoseStamped()
        ps.header = path.header
        ps.pose.position.x, ps.pose.position.y, ps.pose.position.z = float(x[0]), float(x[1]), float(x[2])
        ps.pose.orientation.w = 1.0
        path.poses.append(ps)
    line = Marker(type=Marker.LINE_STRIP, action=Marker.ADD, ns="plan", id=0)
    line.header = path.header
    line.scale.x = 0.02
    line.color.g, line.color.a = 1.0, 1.0
    line.pose.orientation.w = 1.0
    line.points = [Point(x=float(x[0]), y=float(x[1]), z=float(x[2])) for x in points]
    g = [float(v) for v in goal] + [0.0] * (3 - len(goal))
    sphere = Marker(type=Marker.SPHERE, action=Marker.ADD, ns="goal", id=1)
    sphere.header = path.header
    sphere.pose.position.x, sphere.pose.position.y, sphere.pose.position.z = g[:3]
    sphere.pose.orientation.w = 1.0
    sphere.scale.x = sphere.scale.y = sphere.scale.z = 0.1
    sphere.color.r, sphere.color.a = 1.0, 1.0
    return path, MarkerArray(markers=[line, sphere])


def diagnostic_array(name: str, hardware_id: str, level: str, message: str, values: Dict[str, object], stamp=None):
    """A DiagnosticArray with one status; ``level`` is "OK", "WARN" or "ERROR"."""
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

    st = DiagnosticStatus(name=name, hardware_id=hardware_id, message=message)
    st.level = {"OK": DiagnosticStatus.OK, "WARN": DiagnosticStatus.WARN}.get(level, DiagnosticStatus.ERROR)
    st.values = [KeyValue(key=k, value=str(v)) for k, v in values.items()]
    arr = DiagnosticArray(status=[st])
    if stamp is not None:
        arr.header.stamp = stamp
    return arr
