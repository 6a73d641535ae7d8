"""HMAC-SHA256 authentication of critic bundles pushed to a running controller.

Wire format of a *signed* bundle (appended trailer, so the ONNX bytes stay untouched)::

    <ONNX bundle bytes> || b"DMPCSIG1" || HMAC-SHA256(key, <ONNX bundle bytes>)   (32 bytes)

:func:`sign_bundle` appends the trailer; :func:`verify_and_strip` checks it in constant time and
returns the ONNX bytes. With a key configured, a blob without a trailer or with a wrong MAC is
refused; without a key, a trailer (if any) is stripped unchecked and plain bundles pass.
The key is a byte string shared by the learner and the controller (read from a key file; never
sent over ROS).
"""
from __future__ import annotations

import hashlib
import hmac
from typing import Optional

MAGIC = b"DMPCSIG1"
MAC_SIZE = 32
TRAILER_SIZE = len(MAGIC) + MAC_SIZE


class CriticSignatureError(ValueError):
    """A bundle is unsigned while a key is configured, or its MAC does not verify."""


def read_key(path: str) -> bytes:
    """The shared key from a file (surrounding whitespace stripped; must not be empty)."""
    with open(path, "rb") as f:
        key = f.read().strip()
    if not key:
        raise ValueError(f"HMAC key file {path} is empty")
    return key


def mac(data: bytes, key: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()


def sign_bundle(data: bytes, key: bytes) -> bytes:
    """``data`` followed by the signature trailer."""
    return bytes(data) + MAGIC + mac(bytes(data), key)


def has_trailer(blob: bytes) -> bool:
    return len(blob) > TRAILER_SIZE and blob[-TRAILER_SIZE:-MAC_SIZE] == MAGIC


def verify_and_strip(blob: bytes, key: Optional[bytes]) -> bytes:
    """The ONNX bytes of ``blob`` after checking its trailer against ``key``.

    Raises:
        CriticSignatureError: ``key`` is set and the blob is unsigned or its MAC is wrong.
    """
    blob = bytes(blob)
    signed = has_trailer(blob)
    if key is None:
        return blob[:-TRAILER_SIZE] if signed else blob
    if not signed:
        raise CriticSignatureError("critic is unsigned but an HMAC key is configured (refused)")
    data, tag = blob[:-TRAILER_SIZE], blob[-MAC_SIZE:]
    if not hmac.compare_digest(tag, mac(data, key)):
        raise CriticSignatureError("critic HMAC-SHA256 does not verify (wrong key or tampered bytes)")
    return data
