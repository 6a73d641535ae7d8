"""The MPC in a worker process (dmpc_core.control.mpc_worker) behind the controller core, without
DDS: the policy handed over through shared memory equals the in-process solve's policy for the
same inputs, a policy with non-finite values is never applied, and a killed worker is detected,
replaced by the fallback policy (ERROR) and restarted."""
from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest

from dmpc_core import _core
from dmpc_core.control import mpc_worker
from dmpc_core.control.core import ERROR, ControllerCore, CoreSettings
from dmpc_core.control.reach_mpc import ReachSettings
from dmpc_core.control.robot import BallbotRobot
from dmpc_core.mpc import MpcSettings
from dmpc_core.tasks import ballbot

GOAL = (0.5, -0.2)
# 0.5 Hz re-planning: the test reads each policy long before the next one is written
SETTINGS = ReachSettings(mpc=MpcSettings(horizon=20, dt=0.02, initial_iterations=5, mpc_rate=0.5))


def state():
    x = np.zeros(ballbot.NX)
    x[ballbot.PX], x[ballbot.PITCH], x[ballbot.PY] = 0.1, 0.02, -0.05
    return x


def pump(core, t_origin, until, timeout=90.0):
    """Feed fresh states and run the MPC thread's step every 2 ms until ``until()``."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        now = time.monotonic()
        core.accept_state(state(), now=now)
        core.solve_step(now - t_origin, now)
        if until():
            return
        time.sleep(0.002)
    raise AssertionError("timed out")


@pytest.fixture(scope="module")
def worker_core():
    robot = BallbotRobot(SETTINGS)
    core = ControllerCore(robot, CoreSettings(), GOAL, worker=mpc_worker.WorkerSpec("ballbot", SETTINGS, {}))
    adopted = []
    core.policy_listeners.append(adopted.append)
    t_origin = time.monotonic()
    pump(core, t_origin, lambda: adopted)
    head = core.worker.policy.read()[1]
    yield core, t_origin, adopted[0], head
    core.stop_worker()


def test_policy_channel_round_trip_evaluates_like_the_original():
    from dmpc_core.control.reach_mpc import ReachMpc
    import multiprocessing as mp

    r = ReachMpc(SETTINGS, GOAL)
    r.update(0.3, state())
    pol = r.mpc.policy
    ch = mpc_worker.PolicyChannel.allocate(mp.get_context("spawn"), 3, 10, SETTINGS.mpc.horizon + 1)
    assert ch.read() is None
    ch.write(pol, 4, 7, 1)
    seq, head, data = ch.read()
    assert seq == 2.0 and head["generation"] == 4 and head["snapshot"] == 7
    back = ch.decode(head, data)
    for t in (0.3, 0.31, 0.5, 0.69):
        x = state() + 0.01 * t
        assert np.array_equal(back.control(t, x), pol.control(t, x))
    # a torn read is impossible: a block left odd (writer inside) is never returned
    ch.block.a[0] += 1.0
    assert ch.block.read(retries=3) is None


def test_handed_over_policy_equals_the_in_process_solve(worker_core):
    core, _, first, head = worker_core
    assert head["solve_index"] == 1  # the worker's first solve (from the same initial guess)
    ref = BallbotRobot(SETTINGS).make_mpc(GOAL)
    ref.set_goal(GOAL)
    ref.set_episode(0.0, SETTINGS.episode_length)
    res = ref.update(first.t0, state())
    assert ref.mpc.is_ok(res)
    pol = ref.mpc.policy
    assert pol.t0 == first.t0 and pol.dt == first.dt and pol.interpolation == first.interpolation
    np.testing.assert_allclose(np.asarray(first.u_ff), np.asarray(pol.u_ff), rtol=0, atol=1e-12)
    np.testing.assert_allclose(np.asarray(first.x_nom), np.asarray(pol.x_nom), rtol=0, atol=1e-12)
    np.testing.assert_allclose(np.asarray(first.K), np.asarray(pol.K), rtol=0, atol=1e-12)


def test_a_non_finite_policy_from_the_worker_is_never_applied(worker_core):
    core, t_origin, _, _ = worker_core
    pump(core, t_origin, lambda: core.reach.mpc.policy is not None)
    good = core.reach.mpc.policy
    time.sleep(0.02)  # no new state for 3 ticks: the next step holds the worker (stale state)
    for _ in range(3):
        core.command(time.monotonic() - t_origin, *core.latest())
    core.solve_step(time.monotonic() - t_origin)
    assert core.worker.status[mpc_worker.HOLD] == 1.0
    bad = _core.Policy()
    bad.t0, bad.dt = good.t0, good.dt
    u_ff = np.asarray(good.u_ff).copy()
    u_ff[3, 1] = np.nan
    bad.u_ff, bad.K, bad.x_nom = u_ff, list(good.K), np.asarray(good.x_nom)
    rejected = core.policies_rejected
    w = core.worker
    w.policy.write(bad, w.generation, core._snapshot_id, 10**6)  # as a misbehaving worker would
    assert core.solve_step(time.monotonic() - t_origin) is None
    assert core.policies_rejected == rejected + 1 and "non-finite" in core.last_policy_problem
    assert core.reach.mpc.policy is good
    t = good.t0 + 0.05
    u, st = core.command(t, state(), 0.0)
    assert not st.safe and np.all(np.isfinite(u))
    np.testing.assert_allclose(u, np.clip(good.control(t, state()), -30, 30))
    # a corrupt header (count out of range) is refused the same way
    w.policy.block.write(np.full(mpc_worker.P_HEADER, 1e9))
    core.solve_step(time.monotonic() - t_origin)
    assert core.policies_rejected == rejected + 2 and core.reach.mpc.policy is good


def test_killing_the_worker_falls_back_and_restarts_it(worker_core):
    core, t_origin, _, _ = worker_core
    w = core.worker
    pid, generation, restarts = w.pid, w.generation, core.worker_restarts
    os.kill(pid, signal.SIGKILL)
    pump(core, t_origin, lambda: core.worker_problem != "", timeout=10.0)
    assert "exited with code -9" in core.worker_problem
    t = time.monotonic() - t_origin
    u, st = core.command(t, state(), 0.0)
    assert not st.safe and st.level == ERROR and "MPC worker" in st.message
    lqr = BallbotRobot(SETTINGS).fallback_policy(core.reach, 0.0)
    np.testing.assert_allclose(u, np.clip(lqr.control(t, state()), -30, 30))
    # restarted: a new process of the next generation delivers policies again
    pump(core, t_origin, lambda: core.worker_problem == "")
    assert w.generation == generation + 1 and w.pid != pid and core.worker_restarts == restarts + 1
    u, st = core.command(time.monotonic() - t_origin, state(), 0.0)
    assert st.level != ERROR and "MPC worker" not in st.message
