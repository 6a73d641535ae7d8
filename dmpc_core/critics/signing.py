"""HMAC-SHA256 authentication of critic bundles pushed to a running controller.

Wire format of a *signed* critic (a trailer after the ONNX bytes, which stay untouched)::

    blob   = ONNX || HEADER || LEN || MAGIC || TAG
    LEN    = len(HEADER) as 4 bytes, big-endian (at most MAX_HEADER_BYTES)
    MAGIC  = b"DMPCSIG2"
    TAG    = HMAC-SHA256(key, MAGIC || LEN || HEADER || ONNX)            (32 bytes)
    HEADER = UTF-8 JSON object with exactly the keys
             {"learner": str, "robot": str, "task": str, "version": int}
             written with sorted keys and no spaces (:meth:`CriticHeader.encode`)

The blob is parsed from its end (fixed-size TAG, MAGIC and LEN, then HEADER), so the ONNX bytes
need no length field. The MAC input starts with the fixed-size MAGIC and LEN, so header and ONNX
bytes cannot be re-split: the MAC binds the critic's bytes to *who* published it (``learner``, an
identity string such as the learner node's name), *which* export it is (``version``, strictly
increasing per learner: the gate refuses a replayed older critic) and *what* it is for
(``robot`` and ``task``: a critic signed for another robot or task is refused).

:func:`sign_bundle` builds a signed blob; :func:`verify` checks one in constant time and returns
the ONNX bytes with the authenticated header. Unsigned critics (no trailer) are refused unless the
caller passes ``allow_unsigned=True``; a signed blob is always verified when a key is given, and
without a key it counts as unsigned (its header cannot be trusted). The earlier trailer
``b"DMPCSIG1" || HMAC(key, ONNX)`` (MAC over the bytes only) is refused with a message saying so.

The key is a byte string shared by the learner and the controller, read from a key file that only
its owner can read (:func:`read_key`); it is never sent over ROS. :func:`generate_key_file`
writes a fresh random key (mode 0600) and :func:`ensure_key_file` reuses or creates one, so a
launcher can give both nodes the same key without any setup by the user.
"""
from __future__ import annotations

import errno
import hashlib
import hmac
import json
import os
import secrets
import stat
import struct
from dataclasses import dataclass
from typing import Optional, Union

from dmpc_core.critics.regular_file import read_regular_file

MAGIC = b"DMPCSIG2"
MAGIC_V1 = b"DMPCSIG1"
MAC_SIZE = 32
LEN_SIZE = 4
#: Largest accepted header (the four fields of :class:`CriticHeader` need ~100 bytes).
MAX_HEADER_BYTES = 1024
#: Longest learner identity, robot and task strings.
MAX_NAME_CHARS = 200
#: Bounds on a key file: at least 16 bytes of key, at most 4 KiB of file.
MIN_KEY_BYTES = 16
MAX_KEY_FILE_BYTES = 4096
_TAIL = LEN_SIZE + len(MAGIC) + MAC_SIZE
_HEADER_KEYS = ("learner", "robot", "task", "version")


class CriticSignatureError(ValueError):
    """A critic is unsigned when a signature is required, or its MAC or header is invalid."""


class KeyFileError(ValueError):
    """A key file is missing, empty, too short, not a regular file or readable by others."""


@dataclass(frozen=True)
class CriticHeader:
    """The signed facts about a critic (see the module docstring).

    Attributes:
        learner: identity of the publisher (e.g. the learner node's name); versions are ordered
            per learner.
        version: the learner's export counter (equals the bundle's ``dmpc.version``).
        robot: robot model the critic is for (equals the bundle's ``dmpc.robot``).
        task: task the critic is for (e.g. "reach").
    """

    learner: str
    version: int
    robot: str
    task: str

    def validate(self) -> None:
        for name in ("learner", "robot", "task"):
            v = getattr(self, name)
            if not isinstance(v, str) or not 0 < len(v) <= MAX_NAME_CHARS:
                raise CriticSignatureError(f"header {name} must be a string of 1..{MAX_NAME_CHARS} characters, got {v!r}")
        if isinstance(self.version, bool) or not isinstance(self.version, int) or not 0 <= self.version < 2**63:
            raise CriticSignatureError(f"header version must be an integer in [0, 2^63), got {self.version!r}")

    def encode(self) -> bytes:
        self.validate()
        return json.dumps({k: getattr(self, k) for k in _HEADER_KEYS}, sort_keys=True,
                          separators=(",", ":"), ensure_ascii=True).encode("ascii")

    @staticmethod
    def decode(raw: bytes) -> "CriticHeader":
        try:
            obj = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as e:
            raise CriticSignatureError(f"signed header is not UTF-8 JSON ({e})") from None
        if not isinstance(obj, dict) or sorted(obj) != sorted(_HEADER_KEYS):
            keys = sorted(obj) if isinstance(obj, dict) else type(obj).__name__
            raise CriticSignatureError(f"signed header must have exactly the keys {list(_HEADER_KEYS)}, got {keys}")
        h = CriticHeader(obj["learner"], obj["version"], obj["robot"], obj["task"])
        h.validate()
        return h


@dataclass(frozen=True)
class Verified:
    """Result of :func:`verify`: the ONNX bytes and, for an authenticated blob, its header."""

    data: bytes
    header: Optional[CriticHeader]

    @property
    def signed(self) -> bool:
        return self.header is not None


def mac(message: bytes, key: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


def _mac_input(header: bytes, data: bytes) -> bytes:
    return MAGIC + struct.pack(">I", len(header)) + header + data


def sign_bundle(data: bytes, key: bytes, header: CriticHeader) -> bytes:
    """``data`` (the ONNX bundle bytes) followed by the signed trailer carrying ``header``."""
    if not key:
        raise ValueError("signing needs a non-empty key")
    data = bytes(data)
    raw = header.encode()
    return data + raw + struct.pack(">I", len(raw)) + MAGIC + mac(_mac_input(raw, data), bytes(key))


def has_trailer(blob: bytes) -> bool:
    """True if ``blob`` ends with a trailer of the current format (not checked)."""
    return len(blob) >= _TAIL and blob[-MAC_SIZE - len(MAGIC):-MAC_SIZE] == MAGIC


def _has_v1_trailer(blob: bytes) -> bool:
    return len(blob) > len(MAGIC_V1) + MAC_SIZE and blob[-MAC_SIZE - len(MAGIC_V1):-MAC_SIZE] == MAGIC_V1


def verify(blob: Union[bytes, bytearray, memoryview], key: Optional[bytes], allow_unsigned: bool = False) -> Verified:
    """Check the trailer of ``blob`` against ``key``.

    Args:
        blob: signed or unsigned critic bytes.
        key: the shared key (None: no key configured, nothing can be authenticated).
        allow_unsigned: accept a blob that cannot be authenticated (no trailer, or no key) as
            unsigned (``header`` None). Off by default: only signed critics pass.
    Returns:
        :class:`Verified` with the ONNX bytes.
    Raises:
        CriticSignatureError: naming what is wrong.
    """
    if not isinstance(blob, (bytes, bytearray, memoryview)):
        raise CriticSignatureError(f"a critic must be bytes, got {type(blob).__name__}")
    blob = bytes(blob)
    if not has_trailer(blob):
        if _has_v1_trailer(blob):
            raise CriticSignatureError(
                "critic carries the old DMPCSIG1 trailer (MAC over the bytes only, no version, robot or "
                "task); refused: re-sign it with dmpc_core.critics.signing.sign_bundle")
        if allow_unsigned:
            return Verified(blob, None)
        raise CriticSignatureError(
            "critic is unsigned (no DMPCSIG2 trailer) and unsigned critics are not allowed (refused)")
    if key is None:
        if allow_unsigned:  # cannot be checked: the bytes count as unsigned, the header is ignored
            (hlen,) = struct.unpack(">I", blob[-_TAIL:-_TAIL + LEN_SIZE])
            if hlen > MAX_HEADER_BYTES or hlen > len(blob) - _TAIL:
                raise CriticSignatureError(f"signed header length {hlen} is invalid")
            return Verified(blob[:len(blob) - _TAIL - hlen], None)
        raise CriticSignatureError("critic is signed but no key is configured to verify it, and unsigned "
                                   "critics are not allowed (refused)")
    if not key:
        raise CriticSignatureError("the configured key is empty")
    (hlen,) = struct.unpack(">I", blob[-_TAIL:-_TAIL + LEN_SIZE])
    if hlen > MAX_HEADER_BYTES or hlen > len(blob) - _TAIL:
        raise CriticSignatureError(f"signed header length {hlen} is invalid (at most {MAX_HEADER_BYTES})")
    end = len(blob) - _TAIL
    data, raw = blob[:end - hlen], blob[end - hlen:end]
    tag = blob[-MAC_SIZE:]
    if not hmac.compare_digest(tag, mac(_mac_input(raw, data), bytes(key))):
        raise CriticSignatureError("critic HMAC-SHA256 does not verify (wrong key or tampered bytes/header)")
    return Verified(data, CriticHeader.decode(raw))


# -- key files -------------------------------------------------------------------------------------
def read_key(path: Union[str, os.PathLike]) -> bytes:
    """The shared key from a key file (surrounding whitespace stripped).

    The file must be a regular file of at most 4 KiB, readable and writable by its owner only
    (no group/other permission bits, as ssh requires of private keys), holding at least
    :data:`MIN_KEY_BYTES` bytes of key. It is read as critic sources are
    (:func:`~dmpc_core.critics.regular_file.read_regular_file`: a FIFO or device is never opened).

    Raises:
        KeyFileError: with the reason.
    """
    path = os.fspath(path)

    def owner_only(st: os.stat_result) -> Optional[str]:
        if st.st_mode & 0o077:
            return (f"key file {path} has mode {stat.S_IMODE(st.st_mode):04o}; it must be readable by its owner only "
                    f"(chmod 600 {path})")
        return None

    raw = read_regular_file(path, MAX_KEY_FILE_BYTES, "key file", KeyFileError, owner_only)
    key = raw.strip()
    if len(key) < MIN_KEY_BYTES:
        raise KeyFileError(f"key file {path} holds {len(key)} bytes of key; at least {MIN_KEY_BYTES} are needed")
    return key


def generate_key_file(path: Union[str, os.PathLike], nbytes: int = 32) -> bytes:
    """Write a new random key (``nbytes`` from ``secrets``, hex-encoded) to ``path``, mode 0600.

    The file is created exclusively (an existing file is never overwritten). Returns the key as
    :func:`read_key` will return it.

    Raises:
        FileExistsError: ``path`` exists.
    """
    if nbytes < MIN_KEY_BYTES:
        raise ValueError(f"nbytes must be >= {MIN_KEY_BYTES}")
    path = os.fspath(path)
    key = secrets.token_hex(nbytes).encode("ascii")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, key + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    return key


def ensure_key_file(path: Union[str, os.PathLike], nbytes: int = 32) -> bytes:
    """The key in ``path``, generated there (mode 0600) first if the file does not exist."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, mode=0o700, exist_ok=True)
    try:
        return generate_key_file(path, nbytes)
    except FileExistsError:
        return read_key(path)
    except OSError as e:
        if e.errno == errno.EEXIST:
            return read_key(path)
        raise
