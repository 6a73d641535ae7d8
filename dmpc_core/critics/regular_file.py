"""Read a small file that must be a regular file: critic sources and HMAC key files; and write
a file atomically (:func:`write_bytes_atomic`: bundles, checkpoints, critic version files).

Both are named by configuration or by a service request, so the path may name a FIFO (``open`` or
``read`` would block forever), a device such as ``/dev/zero`` (never ends) or a huge file.
:func:`read_regular_file` checks with ``stat`` that the path names a regular file before opening
it (a device is never opened), opens it non-blocking (and never as a controlling terminal),
checks again with ``fstat`` on the open descriptor (the path cannot be swapped for a FIFO in
between), and enforces the size limit by the size and again while reading (a file that grows).
"""
from __future__ import annotations

import os
import stat
import tempfile
from typing import Callable, List, Optional, Union


def file_kind(mode: int) -> str:
    """What a non-regular file is ("a FIFO", "a directory", ...) from its ``st_mode``."""
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a directory")):
        if test(mode):
            return name
    return "not a regular file"


def read_regular_file(path: str, max_bytes: int, what: str, error: Callable[[str], Exception],
                      check: Optional[Callable[[os.stat_result], Optional[str]]] = None) -> bytes:
    """The bytes of the regular file ``path``, at most ``max_bytes`` of them.

    Args:
        what: what the file is, for the messages ("critic", "key file").
        error: the exception type (or factory) raised with the message on every failure.
        check: a further requirement on the open file's ``fstat`` result, returning the message
            of the failure or None (e.g. no group/other permission bits on a key file).
    Raises:
        the ``error`` type: missing or unreadable, not a regular file, above ``max_bytes``, or
        ``check`` failed.
    """
    try:
        st = os.stat(path)
    except OSError as e:
        raise error(f"cannot read {what} {path}: {e.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise error(f"{what} {path} is {file_kind(st.st_mode)}; only regular files are read")
    if st.st_size > max_bytes:
        raise error(f"{what} {path} is {st.st_size} bytes, above the limit of {max_bytes}")
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as e:
        raise error(f"cannot open {what} {path}: {e.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise error(f"{what} {path} is {file_kind(st.st_mode)}; only regular files are read")
        problem = check(st) if check is not None else None
        if problem:
            raise error(problem)
        chunks: List[bytes] = []
        total = 0
        while True:
            chunk = os.read(fd, min(1 << 20, max_bytes + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > max_bytes:
                raise error(f"{what} {path} grew above the limit of {max_bytes} bytes while being read")
        return b"".join(chunks)
    except OSError as e:
        raise error(f"cannot read {what} {path}: {e.strerror}") from None
    finally:
        os.close(fd)


def write_bytes_atomic(path: Union[str, os.PathLike], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: temp file in the same folder, fsync, os.replace."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp_", suffix=os.path.basename(path), dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
