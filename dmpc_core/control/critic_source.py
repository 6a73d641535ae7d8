"""Critic candidates for a running controller: reading a source safely and validating it in a
worker thread, with a bounded wait for whoever asked.

* :func:`read_critic_file` opens without blocking and accepts only a regular file of at most
  ``max_bytes`` (a FIFO, a device or a directory would block or flood the reader).
* :class:`CriticWorker` runs every job (file, bytes, rollback) in one thread. A job's failure of
  any kind becomes a ``(False, reason)`` result: the thread never dies and later candidates are
  still processed. :meth:`CriticWorker.request` waits at most ``timeout`` seconds and then
  answers ``(False, "still validating ...")`` instead of raising.
* The signature and size policy is the gate's (``GateSettings.allow_unsigned``,
  ``GateSettings.max_bundle_bytes``: one source): with a key, bundles must carry a valid HMAC
  trailer; without a key, unsigned bundles are refused unless ``allow_unsigned`` is set.
* With a ``state_file``, the highest version accepted per learner survives restarts
  (:class:`dmpc_core.critics.gate.CriticStore`). A corrupt state file refuses every critic, with
  the reason, until it is repaired or removed: forgetting the bounds would let a captured old
  critic in again, and the control loop does not need a new critic to keep running.
"""
from __future__ import annotations

import queue
import threading
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Callable, Optional, Tuple

from dmpc_core.critics.bundle import CriticBundleError
from dmpc_core.critics.gate import CriticRejected, CriticStore, GateSettings, ProbeSet, VersionFileError, validate_candidate
from dmpc_core.critics.source import read_critic_source
from dmpc_core.critics.signing import has_trailer

Result = Tuple[bool, str]


def read_critic_file(path: str, max_bytes: int, timeout: float = 2.0) -> bytes:
    """The bytes of the regular file ``path`` (at most ``max_bytes``), read by
    :func:`dmpc_core.critics.source.read_critic_source` (non-blocking open, fstat on the open
    descriptor, bounded wait).

    Raises:
        CriticRejected: not a regular file, too large, unreadable, or not read within ``timeout``.
    """
    try:
        return read_critic_source(path, max_bytes, timeout)
    except CriticBundleError as e:
        raise CriticRejected(str(e)) from e


@dataclass
class CriticPolicy:
    """What a candidate must satisfy before the gate.

    Attributes:
        key: HMAC key shared with the learner (None: no key configured).
        allow_unsigned: accept unsigned bundles when no key is configured (off by default: any
            DDS participant could install a critic).
        max_bytes: size limit of a critic file or message.
    """

    key: Optional[bytes] = None
    allow_unsigned: bool = False
    max_bytes: int = 16 << 20

    @staticmethod
    def of_gate(key: Optional[bytes], gate: GateSettings) -> "CriticPolicy":
        """The policy of ``gate`` (its ``allow_unsigned`` and ``max_bundle_bytes``) with ``key``."""
        return CriticPolicy(key, gate.allow_unsigned, gate.max_bundle_bytes)

    def check(self, blob: bytes) -> None:
        if len(blob) > self.max_bytes:
            raise CriticRejected(f"critic of {len(blob)} bytes exceeds the limit of {self.max_bytes}")
        if self.key is None and not self.allow_unsigned:
            raise CriticRejected("no HMAC key is configured and unsigned critics are not allowed "
                                 "(set critic_hmac_key_file, or gate.allow_unsigned for a trusted network)")
        if self.key is None and has_trailer(blob):
            raise CriticRejected("critic is signed but no HMAC key is configured to verify it")


class CriticWorker:
    """Validates critic candidates in its own thread and hands accepted ones to ``install``.

    Args:
        key: HMAC key shared with the learner (None: none configured).
        robot, task: what this controller runs (a critic signed or exported for another is refused).
        nx, ng: dimensions the critic must have.
        probes, gate: the safety gate's probe set and settings (also the signature and size policy).
        install: called (in the worker thread) with the accepted ``Candidate``; it builds the new
            MPC and queues the swap. An exception from it rejects the candidate.
        on_result: called with every job's (ok, message) (logging, diagnostics).
        state_file: where the per-learner version bounds persist ("" = memory only).
    Attributes:
        disabled: "" or why every critic is refused (a corrupt ``state_file``).
    """

    def __init__(self, key: Optional[bytes], robot: str, task: str, nx: int, ng: int, probes: Optional[ProbeSet],
                 gate: GateSettings, install: Callable, on_result: Optional[Callable[[bool, str], None]] = None,
                 state_file: str = ""):
        self.policy, self.gate = CriticPolicy.of_gate(key, gate), gate
        self.robot, self.task, self.nx, self.ng, self.probes = robot, task, nx, ng, probes
        self.install, self.on_result = install, on_result
        self.disabled = ""
        try:
            self.store = CriticStore(state_file=state_file)
        except VersionFileError as e:
            self.disabled = f"{e}; every critic is refused until the file is repaired or removed"
            self.store = CriticStore()
        self.rejected = 0
        self.reject_reason = ""
        self.jobs: "queue.Queue" = queue.Queue(maxsize=16)
        self._running = True
        self.thread = threading.Thread(target=self._run, name="critic", daemon=True)

    def start(self) -> "CriticWorker":
        self.thread.start()
        return self

    def submit(self, kind: str, arg=None) -> Future:
        """Queue a job: ("file", path), ("bytes", blob) or ("rollback", None). A full queue
        answers at once with a rejection (the newest candidates are not worth a backlog)."""
        fut: Future = Future()
        try:
            self.jobs.put_nowait((kind, arg, fut))
        except queue.Full:
            fut.set_result((False, "critic queue is full; try again later"))
        return fut

    def request(self, kind: str, arg=None, timeout: float = 5.0) -> Result:
        """Submit and wait at most ``timeout`` seconds; never raises."""
        fut = self.submit(kind, arg)
        try:
            return fut.result(timeout=timeout)
        except FutureTimeout:
            return False, f"still validating after {timeout:g} s; the result will show in the diagnostics"

    def stop(self) -> None:
        self._running = False
        if self.thread.is_alive() and threading.current_thread() is not self.thread:
            self.thread.join(timeout=1.0)

    def _run(self) -> None:
        while self._running:
            try:
                kind, arg, fut = self.jobs.get(timeout=0.1)
            except queue.Empty:
                continue
            fut.set_result(self.handle(kind, arg))

    def handle(self, kind: str, arg=None) -> Result:
        """Process one job in the calling thread (the worker's loop; tests). Never raises: any
        failure, whatever its type, is a rejection with its reason."""
        try:
            result = self._process(kind, arg)
        except Exception as e:  # noqa: BLE001 - any failure is a rejection, never the thread's end
            result = (False, f"rejected: {type(e).__name__}: {e}")
        if not result[0]:
            self.rejected += 1
            self.reject_reason = result[1]
        if self.on_result is not None:
            try:
                self.on_result(*result)
            except Exception:  # noqa: BLE001 - a logging failure must not stop the worker
                pass
        return result

    def _process(self, kind: str, arg) -> Result:
        if self.disabled:
            return False, f"rejected: {self.disabled}"
        if kind == "rollback":
            cand = self.store.rollback()
            if cand is None:
                return False, "no previous critic to roll back to"
            cand.critic = cand.bundle.to_native()
            self.install(cand)
            return True, f"rolled back to critic v{cand.version} from {cand.source}"
        try:
            if kind == "file":
                blob, source = read_critic_file(str(arg), self.policy.max_bytes), str(arg)
            elif kind == "bytes":
                blob, source = bytes(arg), "topic"
            else:
                raise CriticRejected(f"unknown critic job {kind!r}")
            if self.probes is None:
                raise CriticRejected("no critic is wired for this robot")
            self.policy.check(blob)
            cand = validate_candidate(blob, self.policy.key, self.nx, self.ng, self.probes, self.gate, source,
                                      robot=self.robot, task=self.task, store=self.store)
            self.store.persist(cand)  # the new bound is on disk before the critic can run
            self.install(cand)
        except (CriticRejected, ValueError) as e:
            return False, f"rejected: {e}"
        self.store.install(cand)
        return True, f"critic v{cand.version} from {cand.source} active (max |V| on probes {cand.max_abs_probe_value:.3g})"
