"""Read critic files safely: regular files only, a size cap and a bounded wait.

A critic source named by a parameter or a service request (``critic_uri``) is untrusted input.
A FIFO would block ``open``/``read`` forever, a device such as ``/dev/zero`` never ends and a
huge file exhausts memory. :func:`read_critic_source` therefore

* accepts a plain path or a ``file://`` URI (any other scheme is refused);
* checks with ``stat`` that the path names a regular file before opening it (a device is never
  opened), opens it non-blocking and checks again with ``fstat`` on the open descriptor (the
  path cannot be swapped for a FIFO in between);
* refuses files larger than ``max_bytes`` (by size, and again while reading, should it grow);
* runs the read in a helper thread and waits at most ``timeout`` seconds (a file on a hung
  network mount cannot stall the caller); at most :data:`MAX_STUCK_READERS` such helper threads
  may still be stuck at any time, later calls fail at once instead of piling up threads.

Every failure raises :class:`CriticSourceError`, a :class:`~dmpc_core.critics.bundle.CriticBundleError`,
so callers that handle loader errors handle these too. Callers run it off the control path
(the read can take up to ``timeout``).
"""
from __future__ import annotations

import os
import stat
import threading
from typing import List, Optional, Union
from urllib.parse import unquote, urlsplit

from dmpc_core.critics.bundle import MAX_BUNDLE_BYTES, CriticBundleError

#: Helper threads that may be stuck in a read at once (each call that times out leaves one).
MAX_STUCK_READERS = 2
_stuck = threading.BoundedSemaphore(MAX_STUCK_READERS)


class CriticSourceError(CriticBundleError):
    """A critic source is not a readable regular file within the size limit and the wait bound."""


def critic_path(uri: str) -> str:
    """The file path named by ``uri`` (a path or a ``file://`` URI)."""
    if not isinstance(uri, str):
        raise CriticSourceError(f"a critic source must be a string, got {type(uri).__name__}")
    if not uri:
        raise CriticSourceError("the critic source is empty")
    if "\x00" in uri:
        raise CriticSourceError("the critic source contains a NUL character")
    if "://" in uri:
        parts = urlsplit(uri)
        if parts.scheme != "file":
            raise CriticSourceError(f"unsupported critic URI scheme {parts.scheme!r} (only file paths and file:// URIs)")
        if parts.netloc not in ("", "localhost"):
            raise CriticSourceError(f"file URI {uri!r} names host {parts.netloc!r}; only local files are read")
        path = unquote(parts.path)
        if not path or "\x00" in path:
            raise CriticSourceError(f"file URI {uri!r} names no path")
        return path
    return uri


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a directory")):
        if test(mode):
            return name
    return "not a regular file"


def _read_regular(path: str, max_bytes: int) -> bytes:
    try:
        st = os.stat(path)
    except OSError as e:
        raise CriticSourceError(f"cannot read critic {path}: {e.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise CriticSourceError(f"critic {path} is {_kind(st.st_mode)}; only regular files are read")
    if st.st_size > max_bytes:
        raise CriticSourceError(f"critic {path} is {st.st_size} bytes, above the limit of {max_bytes}")
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as e:
        raise CriticSourceError(f"cannot open critic {path}: {e.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise CriticSourceError(f"critic {path} is {_kind(st.st_mode)}; only regular files are read")
        chunks: List[bytes] = []
        total = 0
        while True:
            chunk = os.read(fd, min(1 << 20, max_bytes + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > max_bytes:
                raise CriticSourceError(f"critic {path} grew above the limit of {max_bytes} bytes while being read")
        return b"".join(chunks)
    except OSError as e:
        raise CriticSourceError(f"cannot read critic {path}: {e.strerror}") from None
    finally:
        os.close(fd)


def read_critic_source(uri: Union[str, os.PathLike], max_bytes: int = MAX_BUNDLE_BYTES, timeout: float = 2.0) -> bytes:
    """The bytes of the critic file named by ``uri`` (see the module docstring).

    Args:
        uri: a file path or ``file://`` URI.
        max_bytes: size limit.
        timeout: longest wait for the read [s].
    Raises:
        CriticSourceError: not a regular file, too large, unreadable, or not read within ``timeout``.
    """
    path = critic_path(os.fspath(uri) if isinstance(uri, os.PathLike) else uri)
    if not max_bytes > 0 or not timeout > 0:
        raise ValueError("max_bytes and timeout must be > 0")
    if not _stuck.acquire(blocking=False):
        raise CriticSourceError(f"{MAX_STUCK_READERS} earlier critic reads are still blocked; not reading {path}")
    result: List[Optional[bytes]] = [None]
    error: List[Optional[BaseException]] = [None]
    done = threading.Event()

    def work() -> None:
        try:
            result[0] = _read_regular(path, max_bytes)
        except BaseException as e:  # handed to the caller's thread below
            error[0] = e
        finally:
            done.set()
            _stuck.release()

    threading.Thread(target=work, name="critic-read", daemon=True).start()
    if not done.wait(timeout):
        raise CriticSourceError(f"reading critic {path} took longer than {timeout:g} s (abandoned)")
    if error[0] is not None:
        e = error[0]
        if isinstance(e, CriticSourceError):
            raise CriticSourceError(str(e)) from None
        raise CriticSourceError(f"cannot read critic {path}: {type(e).__name__}: {e}") from None
    assert result[0] is not None
    return result[0]
