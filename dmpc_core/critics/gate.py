"""Validation gate and versioned store for critics swapped into a running controller.

A candidate critic (bytes from a file or a topic) passes, in order:

1. size: at most ``GateSettings.max_bundle_bytes``;
2. signature: :func:`dmpc_core.critics.signing.verify` (HMAC-SHA256 over a header naming the
   learner, version, robot and task, and the bytes). Unsigned critics pass only with
   ``GateSettings.allow_unsigned``;
3. header: signed for this controller's robot and task;
4. freshness: the version is above every version already accepted from the same learner
   (:meth:`CriticStore.check_fresh`; a replayed older critic is refused);
5. contract: :func:`dmpc_core.critics.bundle.load_bundle` with the robot's expected ``nx``/``ng``;
   the header's version and robot equal the bundle's metadata;
6. evaluator: the native ``_core.CriticMLP`` is built (single tanh value networks);
7. safety gate: on a fixed set of probe points (state, goal, time-to-go) the value, its gradient
   and Hessian are finite and ``|V| <= max_abs_value``.

Anything failing raises :class:`CriticRejected` with the reason, whatever the cause (a loader
or evaluator error of any type is wrapped): a caller's worker thread handles one error type and
goes on with the next candidate. Nothing here touches the control path, so callers run it in a
worker thread. :class:`CriticStore` keeps the active critic, the previous distinct ones for
rollback, and the highest version accepted per learner; :meth:`CriticStore.install` checks
freshness again atomically, so two candidates validated concurrently cannot both pass as newest.
Unsigned critics (when allowed) are ordered by their ``dmpc.version`` under the learner name
:data:`UNSIGNED`.

Version memory across restarts: with a ``state_file``, :class:`CriticStore` writes the highest
version (and the sha256 of its bundle bytes) per learner atomically after every install and
reads it back when built (:func:`read_version_file`), so a captured old signed critic stays
stale after the controller restarts. The one critic a restarted store accepts at the remembered
version is the same bundle (equal sha256), and only as its first critic: the controller gets back
what it last ran (the learner's latest bundle is re-sent to a new subscriber) and nothing older.
A state file that cannot be read or parsed raises :class:`VersionFileError`; the caller then
refuses every critic (see :class:`dmpc_core.control.critic_source.CriticWorker`) rather than
forget the bounds.
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

import numpy as np

from dmpc_core.critics.bundle import MAX_BUNDLE_BYTES, CriticBundle, load_bundle
from dmpc_core.critics.signing import verify

#: Learner identity under which unsigned critics (if allowed) are ordered.
UNSIGNED = "(unsigned)"
#: first line of a version file (format tag)
VERSION_FILE_FORMAT = "dmpc-critic-versions/1"
#: a version file larger than this is corrupt (one short entry per learner identity)
MAX_VERSION_FILE_BYTES = 1 << 20


class VersionFileError(ValueError):
    """The critic version file cannot be read or is corrupt; the message names the file."""


class CriticRejected(ValueError):
    """A candidate critic failed the gate; the message says why."""


@dataclass
class GateSettings:
    """Attributes:
    max_abs_value: bound on |V| over the probe set (a critic predicting more is refused).
    num_probes: number of probe points.
    seed: seed of the probe set (fixed: every candidate sees the same points).
    allow_unsigned: accept critics without a valid HMAC trailer (no key configured, or no
        trailer). Off: only critics signed with the configured key pass.
    max_bundle_bytes: largest critic accepted (bytes, trailer included).
    """

    max_abs_value: float = 1.0e5
    num_probes: int = 64
    seed: int = 12345
    allow_unsigned: bool = False
    max_bundle_bytes: int = MAX_BUNDLE_BYTES

    def validate(self) -> None:
        if not self.max_abs_value > 0 or self.num_probes < 1:
            raise ValueError("max_abs_value must be > 0 and num_probes >= 1")
        if not isinstance(self.allow_unsigned, bool):
            raise ValueError(f"allow_unsigned must be a bool, got {self.allow_unsigned!r}")
        if not 0 < self.max_bundle_bytes <= MAX_BUNDLE_BYTES:
            raise ValueError(f"max_bundle_bytes must be in 1..{MAX_BUNDLE_BYTES}")


@dataclass
class ProbeSet:
    """Fixed probe points: states (P, nx), goals (P, ng), time-to-go (P,)."""

    states: np.ndarray
    goals: np.ndarray
    taus: np.ndarray

    @staticmethod
    def uniform(state_scale, goal_scale, tau_max: float, n: int, seed: int) -> "ProbeSet":
        """Uniform in [-scale, scale] boxes and tau in [0, tau_max]."""
        rng = np.random.default_rng(seed)
        s = np.asarray(state_scale, float)
        g = np.asarray(goal_scale, float)
        return ProbeSet(rng.uniform(-1, 1, (n, s.size)) * s, rng.uniform(-1, 1, (n, g.size)) * g,
                        rng.uniform(0.0, tau_max, n))


@dataclass
class Candidate:
    """A critic that passed the gate.

    Attributes:
        learner: authenticated publisher identity (:data:`UNSIGNED` for an unsigned critic).
        signed: True if the HMAC verified.
    """

    bundle: CriticBundle
    critic: Any  # _core.CriticMLP
    version: int
    source: str
    max_abs_probe_value: float
    learner: str = UNSIGNED
    signed: bool = False
    digest: str = ""  # sha256 (hex) of the bundle bytes (the signed payload)


def _run_gate(blob, key, nx, ng, probes, settings, source, robot, task, store) -> Candidate:
    if not isinstance(blob, (bytes, bytearray, memoryview)):
        raise CriticRejected(f"a critic must be bytes, got {type(blob).__name__}")
    if len(blob) > settings.max_bundle_bytes:
        raise CriticRejected(f"critic is {len(blob)} bytes, above the limit of {settings.max_bundle_bytes}")
    v = verify(blob, key, allow_unsigned=settings.allow_unsigned)
    h = v.header
    learner = h.learner if h is not None else UNSIGNED
    if h is not None:
        if (h.robot, h.task) != (robot, task):
            raise CriticRejected(f"critic is signed for robot {h.robot!r} task {h.task!r}; this controller runs "
                                 f"robot {robot!r} task {task!r}")
        if store is not None:
            store.check_fresh(learner, h.version, _digest(v.data))
    bundle = load_bundle(v.data, expected_nx=nx, expected_ng=ng, max_bytes=settings.max_bundle_bytes)
    if bundle.robot != robot:
        raise CriticRejected(f"critic bundle is for robot {bundle.robot!r}; this controller runs {robot!r}")
    if h is not None and h.version != bundle.version:
        raise CriticRejected(f"signed header says version {h.version} but the bundle is dmpc.version={bundle.version}")
    if h is None and store is not None:
        store.check_fresh(learner, bundle.version, _digest(v.data))
    critic = bundle.to_native()
    worst = 0.0
    for x, g, tau in zip(probes.states, probes.goals, probes.taus):
        critic.set_goal(g)
        d = critic.create_data()
        critic.calc_diff(d, float(tau), x)
        parts = [np.atleast_1d(d.V), d.Vx, d.Vxx]
        if not all(np.all(np.isfinite(p)) for p in parts):
            raise CriticRejected(f"critic output is not finite at probe state {np.round(x, 3).tolist()}")
        worst = max(worst, float(abs(d.V)))
    if not worst <= settings.max_abs_value:
        raise CriticRejected(f"critic predicts |V| = {worst:.3g} > bound {settings.max_abs_value:.3g} on the probe set")
    return Candidate(bundle, critic, int(bundle.version), source, worst, learner, h is not None, _digest(v.data))


def _digest(data) -> str:
    return hashlib.sha256(bytes(data)).hexdigest()


def validate_candidate(blob: bytes, key: Optional[bytes], nx: int, ng: int, probes: ProbeSet,
                       settings: GateSettings, source: str = "", *, robot: str, task: str,
                       store: Optional["CriticStore"] = None) -> Candidate:
    """Run the whole gate on ``blob``; returns the accepted :class:`Candidate`.

    Args:
        blob: critic bytes (signed or, if ``settings.allow_unsigned``, plain).
        key: the shared HMAC key (None: none configured; then only ``allow_unsigned`` lets critics pass).
        nx, ng: the robot's state width and the task's goal width.
        probes: the probe set; settings: bounds and signature policy.
        source: where the blob came from (for messages).
        robot, task: what this controller runs; a critic signed (or exported) for another is refused.
        store: when given, a version not above the last one accepted from the same learner is
            refused before the bundle is even parsed (checked again by :meth:`CriticStore.install`).
    Raises:
        CriticRejected: naming the failed check (every failure, whatever its cause).
    """
    try:
        return _run_gate(blob, key, nx, ng, probes, settings, source, robot, task, store)
    except CriticRejected:
        raise
    except Exception as e:  # signature, loader, evaluator or any unforeseen error: one type out
        raise CriticRejected(str(e) or type(e).__name__) from e


def read_version_file(path: str | os.PathLike) -> Dict[str, Dict[str, Any]]:
    """Per-learner ``{"version": int, "sha256": str}`` from a version file written by
    :class:`CriticStore` ({} when the file does not exist: nothing accepted yet).

    Raises:
        VersionFileError: unreadable, too large, not the format, or an entry of the wrong type.
    """
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_VERSION_FILE_BYTES + 1)
    except FileNotFoundError:
        return {}
    except OSError as e:
        raise VersionFileError(f"critic version file {path}: cannot read it: {e}") from e
    if len(raw) > MAX_VERSION_FILE_BYTES:
        raise VersionFileError(f"critic version file {path}: larger than {MAX_VERSION_FILE_BYTES} bytes")
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise VersionFileError(f"critic version file {path}: not valid JSON ({e})") from e
    if not isinstance(doc, dict) or doc.get("format") != VERSION_FILE_FORMAT or not isinstance(doc.get("learners"), dict):
        raise VersionFileError(f"critic version file {path}: not a {VERSION_FILE_FORMAT!r} document")
    out = {}
    for learner, entry in doc["learners"].items():
        ok = (isinstance(entry, dict) and isinstance(entry.get("version"), int) and not isinstance(entry["version"], bool)
              and entry["version"] >= 0 and isinstance(entry.get("sha256"), str) and len(entry["sha256"]) in (0, 64))
        if not ok:
            raise VersionFileError(f"critic version file {path}: bad entry for learner {learner!r}: {entry!r}")
        out[learner] = {"version": entry["version"], "sha256": entry["sha256"]}
    return out


def write_version_file(path: str | os.PathLike, learners: Dict[str, Dict[str, Any]]) -> None:
    """Write the per-learner versions atomically (temp file in the same folder, fsync, rename),
    readable by its owner only."""
    from dmpc_core.critics.regular_file import write_bytes_atomic

    data = json.dumps({"format": VERSION_FILE_FORMAT, "learners": learners}, indent=1, sort_keys=True).encode()
    write_bytes_atomic(path, data)
    os.chmod(path, 0o600)


@dataclass
class CriticStore:
    """Active critic, history for rollback and the highest version accepted per learner (thread-safe).

    ``install`` refuses a stale version, makes a candidate active and keeps the previous one for
    rollback; ``rollback`` re-activates the most recent previous critic whose weights differ
    from the active one's.

    Attributes:
        state_file: where the per-learner versions persist ("" = memory only). Read when the
            store is built (:class:`VersionFileError` if corrupt), written after every install.
    """

    history_size: int = 5
    active: Optional[Candidate] = None
    history: List[Candidate] = field(default_factory=list)
    swaps: int = 0
    latest: Dict[str, int] = field(default_factory=dict)
    state_file: str = ""

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self.digests: Dict[str, str] = {}
        #: learner -> (version, sha256) remembered from before a restart; the same bundle may be
        #: installed again as the store's first critic
        self.restored: Dict[str, tuple] = {}
        if self.state_file:
            for learner, e in read_version_file(self.state_file).items():
                if e["version"] > self.latest.get(learner, -1):
                    self.latest[learner], self.digests[learner] = e["version"], e["sha256"]
                    self.restored[learner] = (e["version"], e["sha256"])

    def _check_fresh(self, learner: str, version: int, digest: str = "") -> None:
        last = self.latest.get(learner)
        if last is None or version > last:
            return
        if self.active is None and digest and self.restored.get(learner) == (version, digest):
            return  # the critic this controller last ran before its restart, byte for byte
        raise CriticRejected(f"stale critic: version {version} from learner {learner!r} is not newer than "
                             f"version {last} already accepted (replayed or out of order)")

    def check_fresh(self, learner: str, version: int, digest: str = "") -> None:
        """Raise :class:`CriticRejected` if ``version`` is not above the last accepted from
        ``learner`` (except the remembered last bundle, ``digest`` equal, after a restart)."""
        with self._lock:
            self._check_fresh(learner, int(version), digest)

    def _persist(self, c: Candidate) -> None:
        if self.state_file:
            learners = {k: {"version": v, "sha256": self.digests.get(k, "")} for k, v in self.latest.items()}
            learners[c.learner] = {"version": c.version, "sha256": c.digest}
            write_version_file(self.state_file, learners)

    def persist(self, c: Candidate) -> None:
        """Write the bounds with ``c`` accepted to the state file, without installing ``c``: a
        caller puts the bound on disk before ``c`` can run (if ``c`` then fails to install, a
        restarted store refuses it: the safe side).

        Raises:
            CriticRejected: ``c`` is stale; OSError: the file cannot be written.
        """
        with self._lock:
            self._check_fresh(c.learner, c.version, c.digest)
            self._persist(c)

    def install(self, c: Candidate) -> Optional[Candidate]:
        """Make ``c`` active (after a freshness check); returns the previously active critic.
        With a ``state_file``, the new bound is on disk before ``c`` becomes active.

        Raises:
            CriticRejected: ``c`` is not newer than the last critic accepted from its learner.
            OSError: the state file cannot be written (``c`` is then not installed).
        """
        with self._lock:
            self._check_fresh(c.learner, c.version, c.digest)
            self._persist(c)
            self.latest[c.learner], self.digests[c.learner] = c.version, c.digest
            self.restored.clear()  # from now on only newer versions pass
            prev = self.active
            if prev is not None:
                self.history.append(prev)
                del self.history[: max(0, len(self.history) - self.history_size)]
            self.active = c
            self.swaps += 1
            return prev

    def rollback(self) -> Optional[Candidate]:
        """The re-activated previous distinct critic, or None (nothing to roll back to).

        History entries with the same weights as the active critic are skipped (and dropped):
        rolling back always changes the function the controller evaluates. Rolling back never
        lowers the per-learner version bounds: a replay of a rolled-back-from critic stays stale.
        """
        with self._lock:
            current = self.active.bundle.weights_sha256 if self.active is not None else None
            while self.history:
                c = self.history.pop()
                if c.bundle.weights_sha256 != current:
                    self.active = c
                    self.swaps += 1
                    return c
            return None
