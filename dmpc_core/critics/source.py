"""Read critic files safely: regular files only, a size cap and a bounded wait.

A critic source named by a parameter or a service request (``critic_uri``) is untrusted input.
A FIFO would block ``open``/``read`` forever, a device such as ``/dev/zero`` never ends and a
huge file exhausts memory. :func:`read_critic_source` therefore

* accepts a plain path or a ``file://`` URI (any other scheme is refused);
* reads regular files only, checked before opening and again on the open descriptor, up to
  ``max_bytes`` (:func:`~dmpc_core.critics.regular_file.read_regular_file`, shared with the key
  files of :mod:`dmpc_core.critics.signing`);
* runs the read in a helper thread and waits at most ``timeout`` seconds (a file on a hung
  network mount cannot stall the caller); at most :data:`MAX_STUCK_READERS` such helper threads
  may still be stuck at any time, later calls fail at once instead of piling up threads.

Every failure raises :class:`CriticSourceError`, a :class:`~dmpc_core.critics.bundle.CriticBundleError`,
so callers that handle loader errors handle these too. Callers run it off the control path
(the read can take up to ``timeout``).
"""
from __future__ import annotations

import os
import threading
from typing import List, Optional, Union
from urllib.parse import unquote, urlsplit

from dmpc_core.critics.bundle import MAX_BUNDLE_BYTES, CriticBundleError
from dmpc_core.critics.regular_file import read_regular_file

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


def _read_regular(path: str, max_bytes: int) -> bytes:
    return read_regular_file(path, max_bytes, "critic", CriticSourceError)


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
