"""Deep Value MPC (deep-value-mpc Algorithm 1) on the Ballbot walls task.

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
Time-to-go: tau = T - t (t_goal = T, the episode end).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import numpy as np

from dmpc_core import _core
from dmpc_core.critics.learner import CriticLearner, LearnerSettings
from dmpc_core.costs import BoxBarrierCost
from dmpc_core.critics.bundle import load_bundle
from dmpc_core.critics.training import CriticTrainerSettings
from dmpc_core.mpc import MpcController, MpcSettings
from dmpc_core.sim.plant import Plant, PlantSettings
from dmpc_core.tasks import ballbot
from dmpc_core.tasks.ballbot_walls import WallsTask, WallsTaskSettings

MODES = ("terminal", "running+terminal")


@dataclass
class ActorSettings:
    """MPC actor (Eq. 10 with Eqs. 13-14).

    Attributes:
        mode: "terminal" (value as heuristic only: the vanilla/POLO baseline) or
            "running+terminal" (DMPC: Eq. 14 running cost too).
        horizon_time: H [s]; node_dt: SLQ node spacing [s] (H / node_dt nodes).
        r: control weight R = r I (also the R of Xi = g R^-1 g' in Eq. 14).
        w_tilt / w_tilt_rate: upright nominal term (Appendix B), ``_core.UprightCost``.
        w_tilt_quadratic: extra 1/2 w (pitch^2 + roll^2) nominal term. The upright term
            1 - cos(pitch) cos(roll) saturates, while the drift term -f' dV/dx of Eq. (14) (and a
            terminal value that rewards speed) grows with the tilt, so with a learned value the
            optimiser can buy speed by leaning until the robot falls; a quadratic keeps growing.
        running_weight: scale of the Eq. 14 term in the running cost.
        initial_iterations: SLQ iterations of the first solve of an episode (then 1 per step).
        third_order: ValueRunningCost third-order handling ('auto', 'fd', 'drop').
        project_psd: project the Eq. 14 Hessian to PSD (robust SLQ backward pass).
        tilt_limit: |pitch|, |roll| <= tilt_limit [rad] as a relaxed log barrier in the actor's
            running cost (``dmpc_core.costs.BoxBarrierCost``; 0 = none). SLQ has no hard bounds;
            the barrier keeps the plan out of unrecoverable leans that a learned value's drift
            term -f' dV/dx can otherwise buy.
        torque_limit: |u_i| <= torque_limit [N m] as a relaxed barrier (0 = none); set it to
            the plant's limit so that the plan does not count on torque the plant clips.
        barrier_mu / barrier_delta: barrier weight and relaxation margin (relative: the margin is
            barrier_delta * tilt_limit [rad] for both barriers; torques then switch to the
            quadratic branch only within that many N m of the limit).
        slq_iterations_per_step: SLQ iterations per control step after the first solve. 1 is
            Algorithm 1 (one real-time iteration per delta t); k > 1 is a departure (standard in
            OCS2-style MPC when the time allows): each step costs up to k times the solve time
            (SLQ stops earlier when it converges).
        wall_weight: > 0 adds a known-geometry wall term to the actor's running cost
            (``_core.WallPenalty`` on the ball position with the task's walls, boundary
            included): wall_weight * sum_j softplus_beta(d_safe - clearance_j)^2 with
            d_safe = robot_radius + wall_margin and beta = wall_beta [1/m]. A departure: the
            paper's actor sees the walls only through the value. 0 (default) = none.
        wall_margin: [m] clearance beyond the robot radius at which the wall term starts.
        wall_beta: [1/m] softness of the wall term (larger = sharper, ~0 beyond d_safe + 3/beta).
    """

    mode: str = "running+terminal"
    horizon_time: float = 1.0
    node_dt: float = 0.05
    r: float = 0.02
    w_tilt: float = 20.0
    w_tilt_rate: float = 5.0
    w_tilt_quadratic: float = 0.0
    running_weight: float = 1.0
    initial_iterations: int = 3
    third_order: str = "drop"
    project_psd: bool = True
    tilt_limit: float = 0.0
    torque_limit: float = 0.0
    barrier_mu: float = 0.1
    barrier_delta: float = 0.05
    slq_iterations_per_step: int = 1
    wall_weight: float = 0.0
    wall_margin: float = 0.1
    wall_beta: float = 50.0

    def validate(self) -> None:
        if self.slq_iterations_per_step < 1:
            raise ValueError("slq_iterations_per_step must be >= 1")
        if self.wall_weight < 0 or not self.wall_beta > 0:
            raise ValueError("wall_weight must be >= 0 and wall_beta > 0")
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        n = self.horizon_time / self.node_dt
        if n < 1 or abs(n - round(n)) > 1e-6:
            raise ValueError("horizon_time must be a positive multiple of node_dt")
        if not self.r > 0:
            raise ValueError("r must be > 0")
        if self.tilt_limit < 0 or self.torque_limit < 0:
            raise ValueError("tilt_limit and torque_limit must be >= 0 (0 = none)")
        if (self.tilt_limit > 0 or self.torque_limit > 0) and not (self.barrier_mu > 0 and 0 < self.barrier_delta < 1):
            raise ValueError("barrier_mu must be > 0 and barrier_delta in (0, 1)")

    @property
    def horizon(self) -> int:
        return int(round(self.horizon_time / self.node_dt))


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
    seed: int = 0
    torch_threads: int = 1

    def validate(self) -> None:
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


class Actor:
    """SLQ-MPC actor whose costs come from a native critic (see module doc)."""

    def __init__(self, task: WallsTask, settings: ActorSettings):
        settings.validate()
        self.task, self.settings = task, settings
        self.model = _core.BallbotDynamics()
        self.R = settings.r * np.eye(ballbot.NU)
        self.critic: Optional[_core.CriticMLP] = None

    def nominal_cost(self, x: np.ndarray, u: np.ndarray) -> float:
        """The actor's own (non-value) running cost at (x, u): upright + tilt terms + 1/2 u'Ru."""
        if getattr(self, "_nominal", None) is None:
            self._nominal = [c for _, c in self.nominal_terms()]
        return float(sum(c.value(0.0, x, u) for c in self._nominal) + 0.5 * u @ self.R @ u)

    def nominal_terms(self):
        """[(name, cost)] of the actor's running terms other than the value: the upright term
        (App. B), the quadratic tilt term and the tilt / torque barriers (as configured)."""
        s = self.settings
        terms = [("upright", _core.UprightCost(ballbot.NX, ballbot.NU, ballbot.PITCH, ballbot.ROLL, 8, 9,
                                               s.w_tilt, s.w_tilt_rate))]
        if s.w_tilt_quadratic > 0:
            q = np.zeros(ballbot.NX)
            q[[ballbot.PITCH, ballbot.ROLL]] = s.w_tilt_quadratic
            terms.append(("tilt", _core.QuadraticCost(np.diag(q), np.zeros((ballbot.NU, ballbot.NU)),
                                                      np.zeros(ballbot.NX), np.zeros(ballbot.NU))))
        if s.tilt_limit > 0 or s.torque_limit > 0:  # one term: each Python cost call costs ~20 us
            sx = [ballbot.PITCH, ballbot.ROLL] if s.tilt_limit > 0 else []
            su = list(range(ballbot.NU)) if s.torque_limit > 0 else []
            terms.append(("barrier", BoxBarrierCost(ballbot.NX, ballbot.NU, sx, [s.tilt_limit] * len(sx), su,
                                                    [s.torque_limit] * len(su), mu=s.barrier_mu,
                                                    delta=s.barrier_delta * max(s.tilt_limit, 1e-9))))
        if s.wall_weight > 0:  # departure: the walls' known geometry in the actor's cost
            d_safe = self.task.settings.robot_radius + s.wall_margin
            terms.append(("walls", _core.WallPenalty(ballbot.NX, ballbot.NU, ballbot.PX, ballbot.PY,
                                                     self.task.core_walls(), d_safe, s.wall_weight, s.wall_beta)))
        return terms

    def set_critic_bundle(self, bundle_bytes: bytes) -> None:
        """Swap in a new critic (an exported ONNX bundle)."""
        b = load_bundle(bundle_bytes, expected_nx=ballbot.NX, expected_ng=WallsTask.NG)
        self.critic = b.to_native()

    def make_problem(self, goal: np.ndarray) -> _core.Problem:
        s, T = self.settings, self.task.settings.episode_time
        self.critic.set_goal(np.asarray(goal, dtype=float))
        running = _core.SumCost(ballbot.NX, ballbot.NU)
        for name, term in self.nominal_terms():
            running.add(name, term)
        if s.mode == "running+terminal":
            running.add("value", _core.ValueRunningCost(self.critic, self.model, np.asfortranarray(self.R), T,
                                                        s.project_psd, s.third_order), s.running_weight)
        terminal = _core.ValueTerminalCost(self.critic, T, ballbot.NU)
        return _core.Problem(self.model, running, terminal, s.horizon, s.node_dt, "rk4", self.R)

    def controller(self, goal: np.ndarray, x0: np.ndarray) -> MpcController:
        s = self.settings
        problem = self.make_problem(goal)
        mpc_settings = MpcSettings(horizon=s.horizon, dt=s.node_dt, iterations_per_update=s.slq_iterations_per_step,
                                   initial_iterations=s.initial_iterations)
        return MpcController(problem, mpc_settings, initial_policy=self.lqr_policy(problem, x0))

    def lqr_policy(self, problem: _core.Problem, x0: np.ndarray) -> _core.Policy:
        """``tasks.ballbot.lqr_policy`` stabilising at the start position (the Riccati gain is
        computed once per actor: it depends only on the model, R and the node dt)."""
        if getattr(self, "_lqr", None) is None:
            self._lqr = ballbot.lqr_policy(problem, (0.0, 0.0))
        base = self._lqr
        pol = _core.Policy()
        pol.t0, pol.dt = 0.0, base.dt
        pol.u_ff = np.array(base.u_ff)
        x_ref = np.zeros(ballbot.NX)
        x_ref[:2] = x0[:2]
        pol.x_nom = np.tile(x_ref, (problem.horizon + 1, 1))
        pol.K = list(base.K)
        return pol


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
    done when j is the episode's last step (wall/fall termination or tau' = 0).
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
    done = (j == n).astype(float)  # wall/fall termination, or tau' = 0 at the episode end (V(0, .) = 0)
    return {
        "state": ep.xs[:-1], "goal": np.tile(ep.goal, (n, 1)), "time_to_go": tau, "cost": csum[j] - csum[k],
        "next_state": ep.xs[j], "next_time_to_go": tau - dt * (j - k), "done": done,
    }


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
        if tr.input_normalization == "task":
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
        return stats

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
