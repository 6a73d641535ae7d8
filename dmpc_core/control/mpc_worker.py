"""The MPC solver in a process of its own (the MPC / tracking split of OCS2's MPC and MRT).

In one Python process the tracking loop and the MPC solve share the GIL: every solve step holds
it for the interpreter work around the C++ calls, and the 400 Hz tracking ticks wait. Here the
solver runs in a worker process (``multiprocessing``, spawn context) that owns its own reach MPC
(``ReachMpc`` / ``PandaReachMpc`` built by the robot from the same settings); the controller
process only evaluates the latest affine policy ``u = u_ff(t) + K(t) (x - x_nom(t))``.

Data between the two processes:

* **state** (controller -> worker, every accepted state): a shared float64 block
  ``[seq, x_time, x]`` written under a sequence lock (:class:`SeqlockBlock`; no pickling);
* **policy** (worker -> controller, after every successful solve): a shared seqlock block
  ``[seq, generation, snapshot, solve_index, nodes, interpolation, count, data]`` whose data is
  the wire layout of :mod:`dmpc_core.control.policy_wire` (defined once);
* **status** (plain shared floats, each written by one side): ``hold`` (the controller forbids
  solves: a latched fault or a stale state), the worker's heartbeat, solves, overruns, the last
  solve time and failed solves;
* **plan snapshots** (controller -> worker, a pipe, only when something changed): goal or path
  or joint goal, the episode, and the critic bundle of the current MPC instance
  (:func:`apply_snapshot`). The worker applies them between solves, exactly as the in-process
  core applies its queue.

The worker re-plans at ``mpc.mpc_rate`` from the latest state while ``hold`` is clear (the
controller's freshness rule: a new state within ``watchdog_ticks`` ticks or periods, and no
latched fault) and the state is at most ``max_state_age`` old (a backstop for a controller
process that stopped updating ``hold``), at MPC time ``t = time.monotonic() - origin`` (the
controller sends its clock origin with each snapshot). Its death or a hang (no heartbeat for
:data:`HANG_TIMEOUT`) is detected by :meth:`MpcWorker.problem`; the controller core then uses
the robot's fallback policy, reports ERROR and calls :meth:`MpcWorker.restart`.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import time
from dataclasses import dataclass, field
from typing import Optional, Tuple

import numpy as np

from dmpc_core.control import policy_wire

#: a worker whose heartbeat is older than this [s] (after its first one) counts as hung
HANG_TIMEOUT = 2.0
#: longest wait for a new worker's first heartbeat (imports and the MPC build) [s]; generous:
#: on a loaded 2-core machine the imports alone took over 60 s, and a start that fails raises
#: and exits (detected at once)
START_TIMEOUT = 300.0
INTERPOLATIONS = ("linear", "zoh")

# status block slots
HOLD, HEARTBEAT, SOLVES, OVERRUNS, SOLVE_TIME, FAILED, STATUS_SIZE = range(7)
# policy header slots (after the sequence number)
P_GENERATION, P_SNAPSHOT, P_SOLVE_INDEX, P_NODES, P_INTERPOLATION, P_COUNT, P_HEADER = range(7)


@dataclass
class WorkerSpec:
    """What the worker process needs to build the same MPC as the controller (picklable).

    Attributes:
        robot: robot name for :func:`dmpc_core.control.robot.make_robot`.
        settings: the robot's reach settings (``ReachSettings`` / ``PandaReachSettings``).
        robot_kwargs: further arguments of ``make_robot``.
        max_state_age: the worker never solves from a state older than this [s] (a backstop:
            ``hold`` carries the controller's own freshness rule).
        cpu: CPU to pin the worker process to (-1: none).
    """

    robot: str
    settings: object
    robot_kwargs: dict = field(default_factory=dict)
    max_state_age: float = 0.1
    cpu: int = -1


class SeqlockBlock:
    """A float64 shared block ``[seq, payload...]`` with one writer and any number of readers.

    The writer makes ``seq`` odd, writes the payload and makes it even again; a reader copies the
    payload and retries while ``seq`` was odd or changed meanwhile, so it never sees a half-written
    payload. (x86 keeps stores in program order; numpy writes the slot ``seq`` with one store.)
    """

    def __init__(self, raw):
        self.raw = raw
        self.a = np.frombuffer(raw, dtype=np.float64)

    @classmethod
    def allocate(cls, ctx, size: int) -> "SeqlockBlock":
        return cls(ctx.RawArray("d", int(size) + 1))

    @property
    def seq(self) -> float:
        return float(self.a[0])

    def write(self, *parts) -> None:
        a, s = self.a, self.a[0]
        n = sum(np.size(p) for p in parts)
        if 1 + n > a.size:
            raise ValueError(f"{n} values do not fit a shared block of {a.size - 1}")
        a[0] = s + 1.0
        i = 1
        for p in parts:
            k = np.size(p)
            a[i:i + k] = np.ravel(p)
            i += k
        a[0] = s + 2.0

    def read(self, count: Optional[int] = None, retries: int = 1000) -> Optional[Tuple[float, np.ndarray]]:
        """(seq, copy of the first ``count`` payload values), or None if nothing was written yet
        or the writer kept the block busy for ``retries`` attempts."""
        a = self.a
        count = a.size - 1 if count is None else count
        for _ in range(retries):
            s1 = a[0]
            if s1 == 0.0:
                return None
            if s1 % 2.0:
                time.sleep(0)
                continue
            out = a[1:1 + count].copy()
            if a[0] == s1:
                return float(s1), out
        return None


class PolicyChannel:
    """The latest affine policy in shared memory (worker writes, controller reads)."""

    def __init__(self, block: SeqlockBlock, nu: int, nx: int):
        self.block, self.nu, self.nx = block, int(nu), int(nx)

    @classmethod
    def allocate(cls, ctx, nu: int, nx: int, max_nodes: int) -> "PolicyChannel":
        size = P_HEADER + 2 + max_nodes * (nu + nu * nx + nx) + nx
        return cls(SeqlockBlock.allocate(ctx, size), nu, nx)

    def write(self, pol, generation: int, snapshot: int, solve_index: int) -> None:
        dims, data = policy_wire.encode(pol)
        header = [generation, snapshot, solve_index, dims[1][1], INTERPOLATIONS.index(pol.interpolation), data.size]
        self.block.write(np.asarray(header, float), data)

    def read(self) -> Optional[Tuple[float, dict, np.ndarray]]:
        """(seq, header dict, wire data) of the latest policy, or None."""
        got = self.block.read()
        if got is None:
            return None
        seq, v = got
        n = int(v[P_COUNT]) if np.isfinite(v[P_COUNT]) else -1
        if not 0 < n <= v.size - P_HEADER:
            raise ValueError(f"policy block announces {v[P_COUNT]} values")
        head = {"generation": int(v[P_GENERATION]), "snapshot": int(v[P_SNAPSHOT]),
                "solve_index": int(v[P_SOLVE_INDEX]), "nodes": int(v[P_NODES]),
                "interpolation": INTERPOLATIONS[int(v[P_INTERPOLATION]) % len(INTERPOLATIONS)]}
        return seq, head, v[P_HEADER:P_HEADER + n]

    def decode(self, head: dict, data: np.ndarray):
        """A ``_core.Policy`` (ValueError if the layout is wrong or a value is not finite)."""
        nu, nx = self.nu, self.nx
        dims = [("t0,dt", 2), ("nodes", head["nodes"]), (policy_wire.node_label(nu, nx), nu + nu * nx + nx),
                (f"x_nom_terminal:{nx}", nx)]
        return policy_wire.decode(dims, data, nu, nx, head["interpolation"])


def snapshot_of(reach, instance: int, critic_bundle, cold: bool, mode: str, joint_goal, origin: float, ident: int,
                trajectory=None) -> dict:
    """The plan state of the controller's MPC instance, for :func:`apply_snapshot` (picklable).

    ``instance`` changes whenever the controller built a new MPC instance (critic swap, reset;
    ``cold``: no warm start from the previous one); ``mode`` is "goal", "path", "joint" or
    "trajectory" (a timed joint trajectory: ``trajectory`` holds the arguments of the MPC's
    ``set_joint_trajectory``)."""
    return {"id": ident, "instance": instance, "critic": critic_bundle,
            "critic_version": int(getattr(reach, "critic_version", 0)), "cold": bool(cold), "mode": mode,
            "goal": np.asarray(reach.goal, float).copy(),
            "path": None if mode != "path" else (np.asarray(reach.path[0]).copy(), np.asarray(reach.path[1]).copy()),
            "joint_goal": None if joint_goal is None else np.asarray(joint_goal, float).copy(),
            "trajectory": None if mode != "trajectory" else tuple(np.asarray(k).copy() for k in trajectory),
            "episode": (float(reach.episode_start), float(reach.episode_length)), "origin": float(origin)}


def apply_snapshot(robot, reach, instance: Optional[int], snap: dict):
    """Bring the worker's MPC to the controller's plan state; returns (reach, instance)."""
    if reach is None or snap["instance"] != instance:
        critic = snap["critic"].to_native() if snap["critic"] is not None else None
        new = robot.make_mpc(snap["goal"], critic, snap["critic_version"])
        if reach is not None and not snap["cold"]:
            new.warm_start_from(reach)
        reach, instance = new, snap["instance"]
    if snap["mode"] == "path":
        reach.set_path(*snap["path"])
    elif snap["mode"] == "joint":
        reach.set_joint_goal(snap["joint_goal"])
    elif snap["mode"] == "trajectory":
        reach.set_joint_trajectory(*snap["trajectory"])
    else:
        reach.set_goal(snap["goal"])
    reach.set_episode(*snap["episode"])
    return reach, instance


def serve(spec: WorkerSpec, policy_raw, state_raw, status_raw, conn) -> None:
    """The worker process: build the robot (imports included), wait for ``("go", generation)``
    (a spare waits here, warm, until it replaces a dead worker), then apply snapshots, re-plan
    from the latest state and publish policies until it receives None or the pipe closes."""
    import signal

    from dmpc_core.control.robot import make_robot

    # Ctrl-C reaches the whole process group: the controller decides when the worker ends
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if spec.cpu >= 0 and hasattr(os, "sched_setaffinity") and spec.cpu in os.sched_getaffinity(0):
        os.sched_setaffinity(0, {spec.cpu})
    status = np.frombuffer(status_raw, dtype=np.float64)
    robot = make_robot(spec.robot, spec.settings, **spec.robot_kwargs)
    robot.make_mpc(robot.goal_from_point(np.zeros(3)) if spec.robot == "ballbot" else robot.ready_goal())  # warm: imports
    try:
        conn.send(("ready", ""))
        msg = conn.recv()
    except (EOFError, OSError):
        return
    if not (isinstance(msg, tuple) and msg[0] == "go"):
        return
    generation = int(msg[1])
    status[HEARTBEAT] = time.monotonic()
    channel = PolicyChannel(SeqlockBlock(policy_raw), robot.nu, robot.nx)
    state = SeqlockBlock(state_raw)
    period = 1.0 / spec.settings.mpc.mpc_rate
    reach, instance, snap_id, origin = None, None, 0, 0.0
    solve_index, problem = 0, ""
    while True:
        status[HEARTBEAT] = time.monotonic()
        try:
            while conn.poll(0 if reach is not None else 0.05):
                snap = conn.recv()
                if snap is None:
                    return
                reach, instance = apply_snapshot(robot, reach, instance, snap)
                snap_id, origin = snap["id"], snap["origin"]
        except (EOFError, OSError):
            return  # the controller is gone
        if reach is None:
            continue
        start = time.monotonic()
        got = state.read(1 + robot.nx)  # [x_time, x]
        if got is not None and not status[HOLD] and start - got[1][0] <= spec.max_state_age:
            x = got[1][1:]
            t_solve = time.perf_counter()
            try:
                res = reach.update(start - origin, x)
                ok, why = reach.mpc.is_ok(res), f"solver status {res.status} (previous policy kept)"
            except Exception as e:  # noqa: BLE001 - a failing solve keeps the last policy
                ok, why = False, f"MPC solve failed: {e!r}"
            elapsed = time.perf_counter() - t_solve
            status[SOLVE_TIME] = elapsed
            status[SOLVES] += 1
            if elapsed > period:
                status[OVERRUNS] += 1
            if ok:
                solve_index += 1
                channel.write(reach.mpc.policy, generation, snap_id, solve_index)
            else:
                status[FAILED] += 1
            if (why if not ok else "") != problem:
                problem = why if not ok else ""
                conn.send(("problem", problem))
        else:
            period_left = min(period, 0.001)  # no fresh state: look again soon
            time.sleep(period_left)
            continue
        time.sleep(max(0.0, start + period - time.monotonic()))


class MpcWorker:
    """The controller's handle on the worker process: shared blocks, start, restart, liveness.

    Starting a process costs seconds here (spawn imports numpy, the core and the critic stack
    again; over a minute on a loaded 2-core machine), so once the active worker runs, a *spare*
    is spawned, builds the robot and waits (:attr:`spare_state`): a restart promotes it at once
    (its generation is sent with the ``go``) and spawns the next spare. The spare starts after
    the active worker so that the two imports do not slow each other's start.

    Args:
        spec: :class:`WorkerSpec`.
        nu, nx: sizes of the robot's command and state.
        max_nodes: largest policy (nodes) the worker may publish (the MPC horizon).
    """

    def __init__(self, spec: WorkerSpec, nu: int, nx: int, max_nodes: int):
        self.spec = spec
        self.ctx = mp.get_context("spawn")
        self.policy = PolicyChannel.allocate(self.ctx, nu, nx, max_nodes + 1)
        self.state = SeqlockBlock.allocate(self.ctx, 1 + nx)
        self.status_raw = self.ctx.RawArray("d", STATUS_SIZE)
        self.status = np.frombuffer(self.status_raw, dtype=np.float64)
        self.process = None
        self.conn = None
        self._spare = None  # (process, conn) building or waiting, or None
        self._spare_ready = False
        self.generation = 0
        self.restarts = 0
        self.started_at = -np.inf
        self.problem_text = ""  # last solver problem reported by the worker
        self._base = np.zeros(STATUS_SIZE)  # counters of earlier generations

    # -- life cycle -----------------------------------------------------------------------------
    def _spawn(self):
        parent, child = self.ctx.Pipe()
        p = self.ctx.Process(target=serve, name="dmpc-mpc-worker", daemon=True,
                             args=(self.spec, self.policy.block.raw, self.state.raw, self.status_raw, child))
        p.start()
        child.close()
        return p, parent

    def start(self) -> "MpcWorker":
        """Make the spare (or a new process) the active worker of the next generation."""
        spare, self._spare = self._spare, None
        if spare is None or spare[0].exitcode is not None:
            spare = self._spawn()
        self._spare_ready = False
        self.generation += 1
        self.status[HEARTBEAT] = 0.0
        self.process, self.conn = spare
        self.started_at = time.monotonic()
        try:
            self.conn.send(("go", self.generation))
        except (OSError, ValueError):
            pass  # died meanwhile: problem() reports it
        return self

    def maintain(self) -> None:
        """Keep a spare: spawn one once the active worker runs, and again when it died."""
        if self._spare is not None and self._spare[0].exitcode is not None:
            self._spare[1].close()
            self._spare, self._spare_ready = None, False
        if self._spare is None and self.process is not None and self.status[HEARTBEAT] > 0.0:
            self._spare = self._spawn()
        if self._spare is not None and not self._spare_ready:
            try:
                self._spare_ready = self._spare[1].poll(0) and self._spare[1].recv()[0] == "ready"
            except (EOFError, OSError):
                pass

    @property
    def spare_state(self) -> str:
        """"ready" (built and waiting), "starting" or "none"."""
        return "none" if self._spare is None else "ready" if self._spare_ready else "starting"

    @property
    def pid(self) -> Optional[int]:
        return None if self.process is None else self.process.pid

    def problem(self, now: Optional[float] = None) -> Optional[str]:
        """None while the worker runs, else what is wrong (exited, never started, hung)."""
        if self.process is None:
            return "MPC worker not started"
        now = time.monotonic() if now is None else now
        code = self.process.exitcode
        if code is not None:
            return f"MPC worker exited with code {code}"
        beat = self.status[HEARTBEAT]
        if beat == 0.0:
            return None if now - self.started_at <= START_TIMEOUT else f"MPC worker did not start within {START_TIMEOUT:g} s"
        if now - beat > max(HANG_TIMEOUT, 20.0 / self.spec.settings.mpc.mpc_rate):
            return f"MPC worker hung: no heartbeat for {now - beat:.1f} s"
        return None

    def restart(self) -> None:
        """Stop the current worker (SIGKILL if it does not stop) and start the next generation."""
        self.stop(timeout=0.2, spare=False)
        self.restarts += 1
        self.start()

    def stop(self, timeout: float = 0.5, spare: bool = True) -> None:
        """Stop the active worker (and the spare unless ``spare`` is False): asked to end, then
        SIGKILL after ``timeout``. A spare holds nothing: it is killed at once."""
        if spare and self._spare is not None:
            sp, sconn = self._spare
            self._spare, self._spare_ready = None, False
            sconn.close()
            sp.kill()
            sp.join(1.0)
        p, conn = self.process, self.conn
        if p is None:
            return
        try:
            conn.send(None)
        except (OSError, ValueError):
            pass
        p.join(timeout)
        if p.exitcode is None:
            p.kill()
            p.join(1.0)
        conn.close()
        for slot in (SOLVES, OVERRUNS, FAILED):  # the process has ended: no more writes
            self._base[slot] += self.status[slot]
            self.status[slot] = 0.0
        self.process = self.conn = None

    # -- data -----------------------------------------------------------------------------------
    def send(self, snapshot: dict) -> bool:
        """Send a plan snapshot; False if the pipe is broken (the worker died)."""
        try:
            self.conn.send(snapshot)
            return True
        except (OSError, ValueError, AttributeError):
            return False

    def write_state(self, x: np.ndarray, x_time: float) -> None:
        self.state.write(np.asarray([x_time], float), x)

    def set_hold(self, hold: bool) -> None:
        self.status[HOLD] = 1.0 if hold else 0.0

    def messages(self) -> list:
        """Messages from the worker since the last call (solver problems)."""
        out = []
        try:
            while self.conn is not None and self.conn.poll(0):
                out.append(self.conn.recv())
        except (EOFError, OSError):
            pass
        for kind, text in out:
            if kind == "problem":
                self.problem_text = text  # ("ready", "") of the start needs nothing
        return out

    def counter(self, slot: int) -> int:
        """Solves, overruns or failed solves over all generations."""
        return int(self._base[slot] + self.status[slot])
