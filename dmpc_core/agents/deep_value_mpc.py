"""Deep Value MPC (deep-value-mpc Algorithm 1) on the Ballbot walls and reach tasks.

One readable loop (:meth:`DeepValueMpc.run_iteration`):

    for each learning iteration:
        for each of E episodes:                                   (Alg. 1 lines 3-10)
            sample a start (and a target); t = 0; LQR initial policy
            while t < T:
                one warm-started SLQ iteration of Eq. (10) with        (Alg. 1 line 6)
                    phi = V(tau = T - (t + H), x(t + H))   Eq. (13)
                    l   = Eq. (14) running cost (mode "running+terminal" only)
                          + upright nominal term, tilt/torque barriers, 1/2 u'Ru
                execute u on the plant for dt (policy tracked at dt/substeps), cost c(t)
                store (s, g, tau, c, s', tau - dt, done)           (Alg. 1 line 8)
                done on a wall / fall (fixed penalty) or at t = T
        learner.update(): K minibatches of N, Eq. (11)-(12), Polyak target  (line 11)
        export the target network, rebuild the actor's native critic
        every eval_every iterations: the 8 fixed starts -> success, cost, wall hits

The critic is the shared :class:`dmpc_core.critics.learner.CriticLearner`; the actor only sees
its Polyak-averaged target network, exported as an ONNX bundle and evaluated natively
(``CriticBundle.to_native()`` -> ``_core.CriticMLP``). Costs and the SLQ problem are rebuilt
when the critic changes (the cost objects hold the critic; building them takes microseconds).
Time-to-go: tau = max(T - t, 0) (t_goal = T, the episode end); nodes beyond T see V(0, x), which
the critic learns to equal the termination cost q_f from one tau = 0 row per finished episode.
The actor's problem comes from :class:`dmpc_core.control.dmpc_actor.DmpcActor`, the builder the
controller node (``ReachMpc``) uses too.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import numpy as np

from dmpc_core import _core
from dmpc_core.critics.learner import CriticLearner, LearnerSettings
from dmpc_core.critics.bundle import load_bundle
from dmpc_core.critics.targets import floored_targets
from dmpc_core.critics.training import CriticTrainerSettings
from dmpc_core.control.dmpc_actor import MODES, ActorSettings, DmpcActor  # noqa: F401 (re-exported)
from dmpc_core.mpc import MpcController, MpcSettings
from dmpc_core.sim.plant import Plant, PlantSettings
from dmpc_core.tasks import ballbot
from dmpc_core.tasks.ballbot_walls import WallsTask, WallsTaskSettings


@dataclass
class TrainingSettings:
    """Attributes:
    iterations: learning iterations (Alg. 1 outer loop).
    critic_ignored_states: state indices the critic is made insensitive to (their input std
        is set to 1e6). Default: yaw, tilt and their rates, so V = V(px, py, vx, vy, goal, tau)
        and balancing is left to the upright nominal terms (Appendix B). The critic must see
        states the inputs act on: with a position-only value g' dV/dx = 0 and the Eq. (14)
        running cost telescopes against the heuristic, so the DMPC actor ignores the value
        (test/agreement/test_value_mpc_telescoping.py). Empty: full-state critic.
    episodes_per_iteration: episodes collected before each critic update.
    updates_per_iteration: ``learner.update()`` calls (each K minibatches of N) per iteration.
    eval_every: evaluate on the fixed starts every this many iterations (and at 0 and the end).
    output_scale: critic output scale (V = scale * net + bias; the penalties are O(10)).
    zero_init_output: start the critic (and its target) with a zero output layer, so V is
        constant and the first actor only balances (Appendix B: "the system will stand from the
        beginning") instead of chasing the random slopes of an untrained network.
    input_normalization: "task" fixes the critic's input normalisation from the task geometry
        when the agent is built (positions and goal / arena half size, linear velocities /
        ``velocity_scale``, angles / 0.5 rad, angular rates / 2 rad/s, tau centred and scaled by
        T / 2); "data" fits it on the first replay data (mean/std). The data fit is fragile
        here: the first episodes barely move, so the velocity std is ~0.07 m/s and the value's
        velocity gradient -- which Eq. (14) turns into the greedy input -R^-1 g' dV/dx -- is
        amplified ~15x when the robot later moves.
    velocity_scale: [m/s], see input_normalization.
    n_step: transitions span n control steps: c = sum of the n step costs, s' = s(t + n dt)
        (truncated at the episode end). 1 is Eq. (11) exactly; n > 1 is the n-step target of
        the trainer's hook (POLO Eq. 7 without re-planning) and propagates the sparse wall
        penalty n times faster through the value.
    critic_cost: what the critic's targets accumulate. "task": the task cost c(t) only (the
        paper's Eq. 11). "task+actor": c(t) plus the actor's own nominal cost of the executed
        step, the integral of upright + tilt terms + 1/2 u'Ru (u the clipped plant command).
        Prop. 1 / the HJB equation: Eq. (14) with V recovers a state cost q only if V is the
        value of q + 1/2 u'Ru; with "task" V omits the terms the actor optimises besides c, so
        the greedy input -R^-1 g' V_x that Eq. (14) makes the actor track ignores them.
    curriculum_distance: [d0, d1] (empty = off): training starts are drawn in the free arena
        with a geodesic distance to the goal (``WallsTask.geodesic_distance``, margin 0) of at most
        d0 + (d1 - d0) * min(1, i / curriculum_iterations) at iteration i, so the first episodes
        start near the target (exploration by curriculum; evaluation starts are unchanged).
    curriculum_iterations: iterations over which the curriculum's bound grows from d0 to d1.
    train_input_noise_std: input-channel noise intensity (Eq. 1) of the TRAINING plant only
        (exploration); the evaluation plant keeps ``task.input_noise_std``. 0 = use
        ``task.input_noise_std`` for training too.
    init_critic: path of a critic state (``{"model": state_dict}``, as written by
        ``tools/ballbot_oracle_critic.py --critic-cache``) loaded into the critic and its target
        network before the first iteration, instead of the zero-output initialisation. A
        departure (the paper starts from an untrained critic) for diagnosis: does Algorithm 1
        keep, improve or destroy a value the actor can use? "" (default) = off.
    value_floor: "off" (the paper's targets) or "standing": every regression target is raised to
        at least the task's value of standing still at the critic's lead point minus
        ``value_floor_margin`` (``WallsTask.standing_value``: (tau + terminal_weight) ||p + l v - g||,
        no wall knowledge). A departure: the fixed point of the critic's regression becomes
        max(V^pi, floor) instead of the current policy's return V^pi, which is 2-3x flatter than
        a value the actor can follow round the wall (docs/results/ballbot_walls.md, section 2).
        Returns above the floor (wall contacts, detours) are learned as before.
    value_floor_margin: how far below the standing-still value the floor lies.
    seed: seeds the episode sampler, the plant noise, torch and the trainer.
    torch_threads: torch intra-op threads.
    """

    iterations: int = 40
    critic_ignored_states: list = field(default_factory=lambda: [2, 3, 4, 7, 8, 9])
    episodes_per_iteration: int = 4
    updates_per_iteration: int = 1
    eval_every: int = 5
    output_scale: float = 5.0
    zero_init_output: bool = False
    input_normalization: str = "data"
    velocity_scale: float = 1.0
    n_step: int = 1
    critic_cost: str = "task"
    curriculum_distance: list = field(default_factory=list)
    curriculum_iterations: int = 10
    train_input_noise_std: float = 0.0
    init_critic: str = ""
    value_floor: str = "off"
    value_floor_margin: float = 0.0
    seed: int = 0
    torch_threads: int = 1

    def validate(self) -> None:
        if self.value_floor not in ("off", "standing"):
            raise ValueError("training.value_floor must be 'off' or 'standing'")
        if not (np.isfinite(self.value_floor_margin) and self.value_floor_margin >= 0):
            raise ValueError("training.value_floor_margin must be finite and >= 0")
        c = self.curriculum_distance
        if c and (len(c) != 2 or not 0 < c[0] <= c[1]):
            raise ValueError("training.curriculum_distance must be [] or [d0, d1] with 0 < d0 <= d1")
        if self.curriculum_iterations < 1:
            raise ValueError("training.curriculum_iterations must be >= 1")
        if self.train_input_noise_std < 0:
            raise ValueError("training.train_input_noise_std must be >= 0")

    def start_distance_bound(self, iteration: int) -> Optional[float]:
        """The curriculum's bound on the training start's geodesic distance to the goal at
        ``iteration`` (None when the curriculum is off)."""
        if not self.curriculum_distance:
            return None
        d0, d1 = map(float, self.curriculum_distance)
        return d0 + (d1 - d0) * min(1.0, iteration / self.curriculum_iterations)


@dataclass
class DmpcConfig:
    """One YAML (config/ballbot_walls.yaml) = one of these."""

    task: WallsTaskSettings = field(default_factory=WallsTaskSettings)
    actor: ActorSettings = field(default_factory=ActorSettings)
    learner: LearnerSettings = field(
        default_factory=lambda: LearnerSettings(
            min_transitions=200, fit_normalization_at=200,
            trainer=CriticTrainerSettings(discount=1.0, batches_per_update=100, batch_size=64, polyak=0.95,
                                          weight_decay=1e-4, learning_rate=3e-3),
        )
    )
    training: TrainingSettings = field(default_factory=TrainingSettings)


@dataclass
class EpisodeResult:
    xs: np.ndarray  # (n + 1, nx) states at the control steps
    costs: np.ndarray  # (n,) per-step costs (penalty included)
    goal: np.ndarray
    outcome: str  # "timeout", "wall", "fall"
    final_distance: float
    solve_time: float  # total SLQ time [s]
    actor_costs: Optional[np.ndarray] = None  # (n,) integral of the actor's nominal cost per step

    @property
    def total_cost(self) -> float:
        return float(self.costs.sum())

    def success(self, tol: float) -> bool:
        return self.outcome == "timeout" and self.final_distance < tol


class Actor(DmpcActor):
    """The shared DMPC actor (:class:`~dmpc_core.control.dmpc_actor.DmpcActor`) on a walls/reach
    task: the critic comes as an exported bundle, the episode ends at T (t_goal = T)."""

    def __init__(self, task: WallsTask, settings: ActorSettings):
        super().__init__(settings, walls=task.core_walls() if settings.wall_weight > 0 else None,
                         robot_radius=task.settings.robot_radius)
        self.task = task
        self.critic: Optional[_core.CriticMLP] = None

    def set_critic_bundle(self, bundle_bytes: bytes) -> None:
        """Swap in a new critic (an exported ONNX bundle)."""
        b = load_bundle(bundle_bytes, expected_nx=ballbot.NX, expected_ng=WallsTask.NG)
        self.critic = b.to_native()

    def controller(self, goal: np.ndarray, x0: np.ndarray) -> MpcController:
        s = self.settings
        problem, _, _ = self.make_problem(self.critic, goal, self.task.settings.episode_time)
        mpc_settings = MpcSettings(horizon=s.horizon, dt=s.node_dt, iterations_per_update=s.slq_iterations_per_step,
                                   initial_iterations=s.initial_iterations)
        return MpcController(problem, mpc_settings, initial_policy=self.lqr_policy(problem, x0))


def run_episode(task: WallsTask, actor: Actor, start_xy, goal, plant: Plant, record: bool = True) -> EpisodeResult:
    """One episode of Algorithm 1 (lines 3-10); transitions are derived from the result."""
    s = task.settings
    x = task.initial_state(start_xy)
    plant.reset(x)
    mpc = actor.controller(goal, x)
    xs, costs, actor_costs = [x.copy()], [], []
    outcome, solve_time = "timeout", 0.0
    sub = s.control_dt / s.tracking_substeps
    for k in range(task.steps):
        t = k * s.control_dt
        res = mpc.update(t, x)
        solve_time += res.solve_time
        a = 0.0
        for j in range(s.tracking_substeps):
            u = plant.clip(mpc.control(plant.t, plant.x))
            try:
                a += sub * actor.nominal_cost(plant.x, u) if np.all(np.isfinite(u)) else 0.0
                plant.step(u, sub)
            except ValueError:  # the state diverged (non-finite): counted as a fall below
                plant.x = np.full(ballbot.NX, np.nan)
                break
        actor_costs.append(a)
        c = task.step_cost(x, goal)
        x = plant.x.copy()
        if not np.all(np.isfinite(x)) or task.fallen(x):
            outcome, c = "fall", c + s.fall_penalty
        elif task.hits_wall(x):
            outcome, c = "wall", c + s.wall_penalty
        xs.append(x.copy() if np.all(np.isfinite(x)) else xs[-1].copy())
        costs.append(c)
        if outcome != "timeout":
            break
    xe = xs[-1]
    if outcome == "timeout" and costs:  # Eq. (4) termination cost q_f (task.terminal_weight, 0 = none)
        costs[-1] += task.terminal_cost(xe, goal)
    return EpisodeResult(np.asarray(xs), np.asarray(costs), np.asarray(goal, float), outcome,
                         float(np.hypot(xe[0] - goal[0], xe[1] - goal[1])), solve_time,
                         np.asarray(actor_costs[:len(costs)]))


def transitions(ep: EpisodeResult, task: WallsTask, n_step: int = 1, critic_cost: str = "task") -> Dict[str, np.ndarray]:
    """The episode's transition tuples (state, goal, tau, cost, next_state, next_tau, done).

    With ``n_step`` = m > 1 the tuple from step k spans steps k .. j-1, j = min(k + m, n):
    cost = sum of those step costs, next state s_j, next tau = tau_k - (j - k) dt, and
    done when j is the episode's last step (wall/fall termination or tau' = 0). An episode that
    runs to T adds one row at tau = 0 whose target is the termination cost q_f(x(T)) (Eq. 4):
    the value of every state once the episode has ended, which the actor's costs use beyond T.
    ``critic_cost`` "task+actor" adds the episode's ``actor_costs`` to the step costs
    (TrainingSettings.critic_cost)."""
    n = len(ep.costs)
    if n_step < 1:
        raise ValueError("n_step must be >= 1")
    if critic_cost not in ("task", "task+actor"):
        raise ValueError("critic_cost must be 'task' or 'task+actor'")
    step = ep.costs if critic_cost == "task" else ep.costs + ep.actor_costs
    T, dt = task.settings.episode_time, task.settings.control_dt
    k = np.arange(n)
    j = np.minimum(k + n_step, n)
    csum = np.concatenate([[0.0], np.cumsum(step)])
    tau = T - dt * k
    done = (j == n).astype(float)  # wall/fall termination, or tau' = 0 at the episode end
    out = {
        "state": ep.xs[:-1], "goal": np.tile(ep.goal, (n, 1)), "time_to_go": tau, "cost": csum[j] - csum[k],
        "next_state": ep.xs[j], "next_time_to_go": tau - dt * (j - k), "done": done,
    }
    if ep.outcome == "timeout" and n == task.steps:
        # the termination value: V(0, x(T)) = q_f(x(T)) (Eq. 4), the value the actor's costs use
        # for every node beyond the episode end (the time-to-go is clamped at 0)
        xe = ep.xs[-1:]
        anchor = {"state": xe, "goal": ep.goal[None], "time_to_go": np.zeros(1),
                  "cost": np.array([task.terminal_cost(xe[0], ep.goal)]), "next_state": xe,
                  "next_time_to_go": np.zeros(1), "done": np.ones(1)}
        out = {k: np.concatenate([out[k], anchor[k]]) for k in out}
    return out


def evaluate(task: WallsTask, actor: Actor, seed: int = 12345, starts=None, goal=None) -> Dict:
    """The fixed evaluation starts (paper: mean over 8); returns metrics and the episodes."""
    s = task.settings
    goal = np.asarray(s.target if goal is None else goal, dtype=float)
    plant = Plant(actor.model, np.zeros(ballbot.NX), task.plant_settings(seed))
    eps = [run_episode(task, actor, st, goal, plant) for st in (s.eval_starts if starts is None else starts)]
    return {
        "eval/success_rate": float(np.mean([e.success(s.success_tolerance) for e in eps])),
        "eval/mean_cost": float(np.mean([e.total_cost for e in eps])),
        "eval/wall_hits": float(sum(e.outcome == "wall" for e in eps)),
        "eval/falls": float(sum(e.outcome == "fall" for e in eps)),
        "eval/final_distance": float(np.mean([e.final_distance for e in eps])),
        "episodes": eps,
    }


class DeepValueMpc:
    """Algorithm 1: actor (SLQ-MPC) + critic learner + episode sampler, with full state for
    checkpoint/resume (learner incl. replay, loop counter, sampler/plant RNG states)."""

    def __init__(self, config: DmpcConfig):
        import torch

        self.config = cfg = copy.deepcopy(config)
        tr = cfg.training
        tr.validate()
        torch.manual_seed(tr.seed)
        cfg.learner.trainer.seed = tr.seed
        cfg.learner.trainer.torch_threads = tr.torch_threads
        self.task = WallsTask(cfg.task)
        self.actor = Actor(self.task, cfg.actor)
        self.learner = CriticLearner(cfg.learner, ballbot.NX, WallsTask.NG, robot="ballbot")
        if tr.value_floor == "standing":  # departure, see TrainingSettings.value_floor
            if cfg.task.cost != "distance":
                raise ValueError("training.value_floor 'standing' needs task.cost 'distance'")
            margin, task = float(tr.value_floor_margin), self.task
            self.learner.trainer.target_fn = floored_targets(
                self.learner.trainer.target_fn,
                lambda b: task.standing_value(b["state"], b["goal"], b["time_to_go"]) - margin)
        for net in (self.learner.model, self.learner.trainer.target):
            net.set_output_affine(tr.output_scale, 0.0)
            if tr.zero_init_output:
                with torch.no_grad():
                    net.layers[-1].weight.zero_()
                    net.layers[-1].bias.zero_()
        self.rng = np.random.default_rng(tr.seed)
        plant_settings = self.task.plant_settings(tr.seed + 1)
        if tr.train_input_noise_std > 0:  # exploration noise on the training plant only
            plant_settings.input_noise_std = float(tr.train_input_noise_std)
        self.plant = Plant(self.actor.model, np.zeros(ballbot.NX), plant_settings)
        if cfg.learner.critic == "lead":
            pass  # the structured critic's input scaling is fixed (LearnerSettings.critic)
        elif tr.input_normalization == "task":
            self.set_task_normalization()
        elif tr.input_normalization != "data":
            raise ValueError("training.input_normalization must be 'task' or 'data'")
        if tr.init_critic:  # departure (diagnosis): start from a given critic, e.g. the oracle fit
            state = torch.load(tr.init_critic)
            for net in (self.learner.trainer.model, self.learner.trainer.target):
                net.load_state_dict(state["model"])
            self.learner.normalization_fitted = True
        self.iteration = 0
        self.bundle = self.learner.export()
        self.actor.set_critic_bundle(self.bundle)

    # -- Algorithm 1 ---------------------------------------------------------------------------
    def collect(self) -> Dict[str, float]:
        eps: List[EpisodeResult] = []
        bound = self.config.training.start_distance_bound(self.iteration)
        for _ in range(self.config.training.episodes_per_iteration):
            goal = self.task.sample_goal(self.rng)
            start = self.task.sample_start(self.rng, goal=goal, max_distance=bound)
            ep = run_episode(self.task, self.actor, start, goal, self.plant)
            tr = self.config.training
            self.learner.add(**transitions(ep, self.task, tr.n_step, tr.critic_cost))
            eps.append(ep)
        self.last_episodes = eps
        tol = self.task.settings.success_tolerance
        return {
            "train/episode_cost": float(np.mean([e.total_cost for e in eps])),
            "train/success_rate": float(np.mean([e.success(tol) for e in eps])),
            "train/wall_hits": float(sum(e.outcome == "wall" for e in eps)),
            "train/falls": float(sum(e.outcome == "fall" for e in eps)),
            "train/transitions": float(len(self.learner.buffer)),
            "train/start_distance_bound": float("nan") if bound is None else bound,
            "train/solve_ms_per_step": 1e3 * sum(e.solve_time for e in eps) / max(1, sum(len(e.costs) for e in eps)),
        }

    def run_iteration(self) -> Dict[str, float]:
        """Collect episodes, update the critic, swap the actor's critic. Returns scalars."""
        stats = self.collect()
        if self.learner.ready() and not self.learner.normalization_fitted:
            self.fit_normalization()
        for _ in range(self.config.training.updates_per_iteration):
            stats.update(self.learner.update())
        self.bundle = self.learner.export()
        self.actor.set_critic_bundle(self.bundle)
        self.iteration += 1
        stats.update(self.greedy_input_stats(self.last_episodes))
        return stats

    def greedy_input_stats(self, episodes: List[EpisodeResult], every: int = 4) -> Dict[str, float]:
        """|u*| = |R^-1 g(x)' dV/dx| of the exported critic (the input Eq. 14 makes the actor
        track) on every ``every``-th state of ``episodes``, relative to the plant's torque limit:
        max, mean and the fraction of states where some |u*_i| exceeds the limit."""
        import torch

        xs = np.concatenate([e.xs[:-1:every] for e in episodes if len(e.xs) > 1])
        goals = np.concatenate([np.tile(e.goal, (len(e.xs[:-1:every]), 1)) for e in episodes if len(e.xs) > 1])
        T, dt = self.task.settings.episode_time, self.task.settings.control_dt
        taus = np.concatenate([T - dt * every * np.arange(len(e.xs[:-1:every])) for e in episodes if len(e.xs) > 1])
        with torch.no_grad():
            d = self.learner.trainer.target.value_and_derivatives(
                torch.from_numpy(xs), torch.from_numpy(goals), torch.from_numpy(taus))
        u = np.abs(self.actor.greedy_input(d["dvalue_dx"].numpy(), xs)).max(axis=1)
        r = u / float(self.task.settings.torque_limit)
        return {"critic/greedy_u_max_ratio": float(r.max()), "critic/greedy_u_mean_ratio": float(r.mean()),
                "critic/greedy_u_over_limit_frac": float(np.mean(r > 1.0))}

    def set_task_normalization(self) -> None:
        """Input normalisation from the task geometry (see TrainingSettings.input_normalization)."""
        tr, ts = self.config.training, self.task.settings
        half = ts.arena_half_size
        std = np.array([half, half, 0.5, 0.5, 0.5, tr.velocity_scale, tr.velocity_scale, 2.0, 2.0, 2.0]
                       + [half] * WallsTask.NG + [ts.episode_time / 2.0])
        mean = np.zeros_like(std)
        mean[-1] = ts.episode_time / 2.0
        std[list(tr.critic_ignored_states)] = 1e6
        for net in (self.learner.trainer.model, self.learner.trainer.target):
            net.set_input_normalization(mean, std)
        self.learner.normalization_fitted = True

    def fit_normalization(self) -> None:
        """Fit the critic input normalisation on the stored data, masking the ignored states."""
        tr = self.learner.trainer
        tr.fit_input_normalization(self.learner.buffer)
        std = tr.model.input_std.detach().numpy().copy()
        std[list(self.config.training.critic_ignored_states)] = 1e6
        mean = tr.model.input_mean.detach().numpy().copy()
        tr.model.set_input_normalization(mean, std)
        tr.target.set_input_normalization(mean, std)
        self.learner.normalization_fitted = True

    def evaluate(self) -> Dict:
        return evaluate(self.task, self.actor)

    # -- state ---------------------------------------------------------------------------------
    def save(self, path) -> None:
        extra = {
            "iteration": self.iteration,
            "sampler_rng": self.rng.bit_generator.state,
            "plant_rng": self.plant.rng.bit_generator.state,
            "bundle": self.bundle,
        }
        self.learner.save(path, extra=extra)

    def load(self, path) -> dict:
        extra = self.learner.load(path)
        self.iteration = int(extra["iteration"])
        self.rng.bit_generator.state = extra["sampler_rng"]
        self.plant.rng.bit_generator.state = extra["plant_rng"]
        self.bundle = bytes(extra["bundle"])
        self.actor.set_critic_bundle(self.bundle)
        return extra
