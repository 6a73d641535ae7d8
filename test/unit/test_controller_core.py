"""The ROS-free controller core (dmpc_core.control): each required behaviour without DDS."""
from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest

from dmpc_core.control.core import ERROR, ControllerCore, CoreSettings
from dmpc_core.control.critic_source import CriticPolicy, CriticWorker, read_critic_file
from dmpc_core.control.reach_mpc import ReachSettings
from dmpc_core.control.robot import BallbotRobot, make_robot
from dmpc_core.control import transitions
from dmpc_core.critics.gate import CriticRejected, GateSettings, ProbeSet
from dmpc_core.critics.learner import CriticLearner, LearnerSettings
from dmpc_core.critics.signing import CriticHeader, sign_bundle
from dmpc_core.mpc import MpcSettings
from dmpc_core.tasks import ballbot

PERIOD = 1.0 / 400.0
PROBES = ProbeSet.uniform([3, 3, 1, .3, .3, 2, 2, 2, 2, 2], [5, 5], 9.0, 16, 0)


class FakeClock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def small_settings() -> ReachSettings:
    return ReachSettings(mpc=MpcSettings(horizon=20, dt=0.02, initial_iterations=5))


def make_core(u_max=30.0, **kw):
    clock = FakeClock()
    robot = BallbotRobot(small_settings(), u_max=u_max)
    return ControllerCore(robot, CoreSettings(**kw), (0.0, 0.0), clock=clock), clock


def upright(px=0.0, py=0.0, pitch=0.0):
    x = np.zeros(ballbot.NX)
    x[ballbot.PX], x[ballbot.PY], x[ballbot.PITCH] = px, py, pitch
    return x


def tick(core, clock):
    x, age = core.latest()
    return core.command(clock() - 100.0, x, age)


def test_goal_changes_are_queued_and_applied_between_solves():
    core, clock = make_core()
    assert core.request_goal((1.0, 0.5), "world") is None
    assert np.allclose(core.reach.goal, (0.0, 0.0))  # nothing changes during a solve
    core.accept_state(upright())
    core.solve_step(0.0)
    assert np.allclose(core.reach.goal, (1.0, 0.5)) and np.allclose(core.goal, (1.0, 0.5))
    assert core.request_time_budget(float("nan")) is not None
    assert core.request_time_budget(3.0) is None
    core.solve_step(0.01)
    assert core.episode_length == 3.0


def test_goals_in_unknown_frames_are_refused():
    core, _ = make_core(goal_frames=["world", "map"])
    assert "frame 'odom'" in core.request_goal((1.0, 0.0), "odom")
    assert "frame ''" in core.request_point((1.0, 0.0, 0.0), "")
    assert core.request_point((1.0, 0.0, 0.0), "map") is None
    assert "frame 'base_link'" in core.request_path(np.zeros((3, 3)), "base_link")
    assert core.request_goal((100.0, 0.0), "world") is not None  # outside the arena


def test_path_size_is_capped():
    core, _ = make_core(max_path_poses=50)
    pts = np.column_stack([np.linspace(0, 1, 51), np.zeros(51), np.zeros(51)])
    assert "51 poses; the limit is 50" in core.request_path(pts, "world")
    assert core.request_path(pts[:50], "world") is None
    core.accept_state(upright())
    core.solve_step(0.0)
    assert core.path_ref is not None and np.allclose(core.goal, (pts[49, 0], 0.0))


def test_bad_state_is_dropped_and_the_last_good_one_kept_until_the_watchdog():
    core, clock = make_core()
    core.accept_state(upright())
    core.solve_step(0.0)
    for bad in (np.full(ballbot.NX, np.nan), np.zeros(3), "garbage", None):
        assert core.accept_state(bad) is not None
    assert core.states_rejected == 4
    x, _ = core.latest()
    assert np.allclose(x, upright())
    clock.t += PERIOD
    u, st = tick(core, clock)
    assert not st.safe, st
    # the 2-tick rule: ticks 1 and 2 without a new state still use it, tick 3 (age > 2 periods) is safe
    clock.t += PERIOD
    assert not tick(core, clock)[1].safe
    clock.t += PERIOD * 1.01
    u, st = tick(core, clock)
    assert st.safe and st.level == ERROR and "watchdog" in st.message and np.all(u == 0)
    # ticks bunched after a late wake-up: age over the limit but only one tick since the state
    core.accept_state(upright())
    clock.t += 3 * PERIOD
    assert not tick(core, clock)[1].safe


def test_fallen_robot_gets_the_safe_command_until_reset():
    core, clock = make_core()
    core.accept_state(upright())
    core.solve_step(0.0)
    core.accept_state(upright(pitch=np.deg2rad(40)))
    u, st = tick(core, clock)
    assert st.safe and st.level == ERROR and "fallen" in st.message and np.all(u == 0)
    assert core.solve_step(0.01) is None  # no re-planning from a fallen state
    core.accept_state(upright())
    assert tick(core, clock)[1].safe  # latched: upright again is not enough
    assert core.request_reset() == (True, "fault cleared; the MPC restarts")
    assert core.solve_step(0.02) is not None
    u, st = tick(core, clock)
    assert not st.safe and st.level == "OK"
    # a reset while still fallen is armed: the fault clears at the first state back inside
    core.accept_state(upright(pitch=np.deg2rad(60)))
    assert tick(core, clock)[1].safe
    ok, msg = core.request_reset()
    assert not ok and "armed" in msg
    assert tick(core, clock)[1].safe
    core.accept_state(upright())
    tick(core, clock)
    assert core.fault == ""
    core.solve_step(0.03)
    assert not tick(core, clock)[1].safe
    core.accept_state(upright(px=7.0))
    assert "out of the arena" in tick(core, clock)[1].message


def test_commands_are_clipped_to_the_effort_limits_and_saturations_counted():
    core, clock = make_core(u_max=0.05)
    core.accept_state(upright(pitch=np.deg2rad(8)))
    core.solve_step(0.0)
    u, st = tick(core, clock)
    assert not st.safe
    assert np.max(np.abs(u)) == pytest.approx(0.05)
    assert core.saturations == 1


def test_transitions_wire_format_round_trip():
    rows = [{"state": np.arange(10.0) + i, "goal": np.array([1.0, 2.0]), "time_to_go": np.array([3.0]),
             "cost": np.array([0.5]), "next_state": np.arange(10.0) - i, "next_time_to_go": np.array([2.9]),
             "done": np.array([0.0])} for i in range(3)]
    dims, data = transitions.encode(rows, 10, 2)
    out = transitions.decode([(d[0], d[1]) for d in dims], data, 10, 2)
    assert np.allclose(out["state"][2], rows[2]["state"]) and out["cost"].shape == (3,)
    with pytest.raises(ValueError, match="layout"):
        transitions.decode([(d[0], d[1]) for d in dims], data, 10, 3)
    bad = data.copy()
    bad[0] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        transitions.decode([(d[0], d[1]) for d in dims], bad, 10, 2)


def test_core_emits_transitions_while_controlling():
    core, clock = make_core(transitions_batch=2)
    core.accept_state(upright())
    core.solve_step(0.0)
    batches = []
    for k in range(40):
        clock.t += PERIOD
        core.accept_state(upright(px=0.001 * k))
        tick(core, clock)
        batches += core.take_transitions()
    assert batches and len(batches[0]) == 2
    dims, data = transitions.encode(batches[0], ballbot.NX, 2)
    assert data.size == 2 * dims[1][1]


def test_episode_ends_with_the_termination_cost_and_a_fall_with_its_penalty():
    """Deep Value MPC mode: an episode that runs to T ends with a done row whose cost includes q_f
    and the tau = 0 row of q_f; with a fall penalty, a fall ends the next episode with it (done)."""
    settings = ReachSettings(mpc=MpcSettings(horizon=20, dt=0.02, initial_iterations=2), episode_length=0.2,
                             fall_penalty=10.0)
    clock = FakeClock()
    core = ControllerCore(BallbotRobot(settings, u_max=30.0), CoreSettings(transitions_batch=1, episode_length=0.2),
                          (1.0, 0.0), clock=clock)
    rows = []
    for k in range(100):  # 0.25 s: past the end of the first episode
        clock.t += PERIOD
        core.accept_state(upright(px=0.001 * k))
        if k % 4 == 0:
            core.solve_step(clock() - 100.0)
        tick(core, clock)
        rows += [r for b in core.take_transitions() for r in b]
    ends = [i for i, r in enumerate(rows) if r["done"][0] == 1.0]
    assert len(ends) == 2 and ends[1] == ends[0] + 1, [r["time_to_go"][0] for r in rows]
    last, anchor = rows[ends[0]], rows[ends[1]]
    xe = last["next_state"]
    qf = 2.0 * np.hypot(xe[0] + 0.6 * xe[5] - 1.0, xe[1] + 0.6 * xe[6])
    assert anchor["time_to_go"][0] == 0.0 and anchor["cost"][0] == pytest.approx(qf)
    assert last["next_time_to_go"][0] == 0.0 and last["cost"][0] == pytest.approx(qf + 0.02 * np.hypot(last["state"][0] - 1.0, 0.0), rel=0.2)
    assert all(r["time_to_go"][0] > 0 for r in rows[:ends[0]])  # tau never below 0 before the end
    # a fall: the row into the fallen state carries the penalty and ends the episode
    core.accept_state(upright(px=0.1, pitch=np.deg2rad(40)))
    clock.t += PERIOD
    tick(core, clock)
    fell = [r for b in core.take_transitions() for r in b]
    assert len(fell) == 1 and fell[0]["done"][0] == 1.0 and fell[0]["cost"][0] >= 10.0
    assert fell[0]["next_time_to_go"][0] > 0.0


def test_a_watchdog_trip_does_not_split_the_episode_into_pieces():
    """A late state (the watchdog's safe command for a few ticks) leaves the stream of rows
    unbroken: each row starts where the previous one ended, with the time-to-go counting down, so
    the learner's full returns cover the whole episode (a cut made every piece bootstrap from the
    critic)."""
    settings = ReachSettings(mpc=MpcSettings(horizon=20, dt=0.02, initial_iterations=2), episode_length=0.5)
    clock = FakeClock()
    core = ControllerCore(BallbotRobot(settings, u_max=30.0), CoreSettings(transitions_batch=1, episode_length=0.5),
                          (1.0, 0.0), clock=clock)
    rows, safe = [], 0
    for k in range(160):  # 0.4 s of one episode
        clock.t += PERIOD
        if not (60 <= k < 64 or 100 <= k < 110):  # two late-state stretches: 10 ms and 25 ms
            core.accept_state(upright(px=0.001 * k))
        if k % 4 == 0:
            core.solve_step(clock() - 100.0)
        safe += tick(core, clock)[1].safe
        rows += [r for b in core.take_transitions() for r in b]
    assert safe >= 8  # the watchdog did trip
    assert len(rows) > 10
    for a, b in zip(rows, rows[1:]):
        assert np.array_equal(a["next_state"], b["state"]) and a["next_time_to_go"][0] == b["time_to_go"][0]
    spans = [r["time_to_go"][0] - r["next_time_to_go"][0] for r in rows]
    assert max(spans) > 0.03  # the rows around the trips span them


def test_a_critic_waits_for_the_next_episode_with_critic_swap_episode_start():
    """critic_swap: episode_start keeps one MPC instance (one critic) per episode: a swap queued
    mid-episode takes over at the next goal (or reset, or time-out); a newer one queued meanwhile
    replaces the waiting one. immediate: at the next solve."""
    core, clock = make_core(critic_swap="episode_start", episode_length=8.0)
    core.accept_state(upright())
    core.solve_step(0.0)
    first = core.reach
    a, b = core.robot.make_mpc((0.0, 0.0)), core.robot.make_mpc((0.0, 0.0))
    core.request_mpc(a)
    core.solve_step(0.05)
    core.solve_step(0.10)
    assert core.reach is first  # the episode goes on with its critic
    core.request_mpc(b)
    core.solve_step(0.15)
    assert core.reach is first
    assert core.request_goal((0.5, 0.0), "world") is None
    core.solve_step(0.20)
    assert core.reach is b and np.allclose(b.goal, (0.5, 0.0))  # the newest, at the new episode
    c = core.robot.make_mpc((0.5, 0.0))
    core.request_mpc(c)
    core.solve_step(1.0)
    assert core.reach is b
    core.solve_step(8.3)  # the episode timed out: a new one starts
    assert core.reach is c
    with pytest.raises(ValueError, match="critic_swap"):
        CoreSettings(critic_swap="later").validate()
    now, _ = make_core()
    now.accept_state(upright())
    now.solve_step(0.0)
    d = now.robot.make_mpc((0.0, 0.0))
    now.request_mpc(d)
    now.solve_step(0.05)
    assert now.reach is d


def test_a_state_far_from_the_plan_is_held_in_place_until_the_mpc_replans():
    """A reset moves the robot 1.5 m while the policy's plan is for the old state: instead of the
    policy's feedback on that error (saturated wheels), the hold command (upright LQR at the new
    position: zero torque at rest there), WARN, and a cold re-plan from the new state, after which
    the policy is used again."""
    core, clock = make_core()
    core.accept_state(upright())
    core.solve_step(0.0)
    first = core.reach
    clock.t += PERIOD
    moved = upright(px=1.5)
    core.accept_state(moved)
    u, st = tick(core, clock)
    assert not st.safe and st.level == "WARN" and "far from the MPC plan" in st.message
    assert np.allclose(u, 0.0, atol=1e-9) and core.plan_deviation_ticks == 1
    free, _ = make_core(plan_deviation_limit=0.0)  # the check off: the policy's saturated feedback
    free.accept_state(upright())
    free.solve_step(0.0)
    free.accept_state(moved)
    clock2 = FakeClock()
    clock2.t = 100.0 + PERIOD
    free.clock = clock2
    assert np.max(np.abs(tick(free, clock2)[0])) > 5.0
    core.solve_step(0.01)  # the cold re-plan from the new state
    assert core.reach is not first
    clock.t += PERIOD
    u, st = tick(core, clock)
    assert st.level == "OK" and core.plan_deviation_ticks == 1, st
    with pytest.raises(ValueError, match="plan_deviation_limit"):
        CoreSettings(plan_deviation_limit=float("nan")).validate()


# -- critic sources ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def bundle():
    return CriticLearner(LearnerSettings(), 10, 2, "ballbot").export()


def test_critic_file_must_be_a_small_regular_file(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    start = time.monotonic()
    with pytest.raises(CriticRejected, match="only regular files are read"):
        read_critic_file(str(fifo), 1000)
    assert time.monotonic() - start < 5.0  # returned instead of blocking on the FIFO
    with pytest.raises(CriticRejected, match="only regular files are read"):
        read_critic_file(str(tmp_path), 1000)
    big = tmp_path / "big"
    big.write_bytes(b"x" * 2000)
    with pytest.raises(CriticRejected, match="limit of 1000"):
        read_critic_file(str(big), 1000)
    with pytest.raises(CriticRejected, match="cannot read critic"):
        read_critic_file(str(tmp_path / "missing"), 1000)
    assert read_critic_file(str(big), 2000) == b"x" * 2000


def test_unsigned_critics_are_refused_unless_allowed(bundle):
    with pytest.raises(CriticRejected, match="unsigned critics are not allowed"):
        CriticPolicy(key=None).check(bundle)
    CriticPolicy(key=None, allow_unsigned=True).check(bundle)
    with pytest.raises(CriticRejected, match="exceeds the limit"):
        CriticPolicy(key=b"k", max_bytes=10).check(bundle)


def test_critic_worker_answers_with_a_bounded_wait_and_survives_any_failure(bundle, tmp_path):
    installed, calls, release = [], [], threading.Event()

    def install(cand):
        calls.append(cand.version)
        if len(calls) == 1:
            raise TypeError("a bug in the installer")  # any exception: a rejection, not a dead thread
        release.wait(10.0)
        installed.append(cand.version)

    key = b"0123456789abcdef"
    w = CriticWorker(key, "ballbot", "reach", 10, 2, PROBES, GateSettings(num_probes=16), install).start()
    try:
        ok, msg = w.request("bytes", sign_bundle(bundle, key, CriticHeader("learner", 1, "ballbot", "reach")), timeout=20.0)
        assert not ok and "a bug in the installer" in msg
        fifo = tmp_path / "fifo"
        os.mkfifo(fifo)
        ok, msg = w.request("file", str(fifo), timeout=20.0)
        assert not ok and "only regular files are read" in msg
        ok, msg = w.request("bytes", bundle, timeout=20.0)
        assert not ok and "unsigned" in msg
        # a slow validation: the caller gets an answer after its timeout, not an exception
        start = time.monotonic()
        ok, msg = w.request("bytes", sign_bundle(bundle, key, CriticHeader("learner", 1, "ballbot", "reach")), timeout=0.2)
        assert not ok and "still validating" in msg and time.monotonic() - start < 5.0
        release.set()
        assert w.request("rollback", timeout=20.0)[0] is False  # nothing to roll back to yet
        assert installed == [1] and w.rejected >= 4
    finally:
        release.set()
        w.stop()


def test_panda_robot_protocol():
    from dmpc_core.control.panda_reach import PandaReachSettings

    robot = make_robot("panda", PandaReachSettings())
    assert robot.nx == 14 and robot.nu == 7 and len(robot.joint_names) == 7
    assert np.allclose(robot.effort_limits, [87, 87, 87, 87, 12, 12, 12])
    from dmpc_core.models.panda import Q_READY

    x = np.concatenate([Q_READY, np.zeros(7)])
    assert robot.envelope_problem(x) is None
    x[0] = 10.0
    assert "position limits" in robot.envelope_problem(x)
    assert robot.check_goal(robot.ready_goal()) is None
    with pytest.raises(ValueError, match="not supported"):
        make_robot("quadruped", None)


def test_expired_policy_falls_back_to_the_lqr_stabiliser():
    """Past the policy's horizon (solves stalled) the command comes from the upright LQR at the
    goal, not from the last node of the stale plan."""
    core, clock = make_core()
    core.accept_state(upright())
    core.solve_step(0.0)
    pol = core.reach.mpc.policy
    t_end = pol.t0 + pol.horizon * pol.dt
    x = upright(px=0.3, pitch=np.deg2rad(3))
    core.accept_state(x)
    u_in, st = core.command(t_end - 0.01, x, 0.0)
    assert st.level == "OK" and core.fallback_ticks == 0
    core.accept_state(x)
    u, st = core.command(t_end + 0.5, x, 0.0)
    assert not st.safe and st.level == "WARN" and "fallback" in st.message and core.fallback_ticks == 1
    lqr = ballbot.lqr_policy(core.reach.problem, (0.0, 0.0))
    assert np.allclose(u, np.clip(lqr.control(0.0, x), -30, 30))
    assert not np.allclose(u, pol.control(t_end + 0.5, x))


def test_policy_wire_format_round_trip():
    from dmpc_core.control import policy_wire

    core, _ = make_core()
    got = []
    core.policy_listeners.append(got.append)
    core.accept_state(upright(pitch=np.deg2rad(4)))
    core.solve_step(0.0)
    pol = got[-1]
    dims, data = policy_wire.encode(pol)
    assert dims[2][0] == "u_ff:3,K:3x10,x_nom:10" and data.size == 2 + 20 * 43 + 10
    back = policy_wire.decode([(d[0], d[1]) for d in dims], data, 3, 10, pol.interpolation)
    rng = np.random.default_rng(0)
    for t in np.linspace(-0.1, 0.5, 13):
        x = rng.normal(0, 0.1, 10)
        assert np.allclose(back.control(t, x), pol.control(t, x), atol=1e-12)
    with pytest.raises(ValueError, match="layout"):
        policy_wire.decode([(d[0], d[1]) for d in dims], data, 3, 11)
    bad = data.copy()
    bad[5] = np.inf
    with pytest.raises(ValueError, match="non-finite"):
        policy_wire.decode([(d[0], d[1]) for d in dims], bad, 3, 10)
