"""Deep Value MPC (Algorithm 1 of deep-value-mpc) on the Franka obstacle task
(:mod:`dmpc_core.tasks.franka_obstacle`): the actor is the Panda's DMPC problem
(:class:`dmpc_core.control.dmpc_problem.PandaDmpcActor`, Eq. 13 + 14 with the critic
V(tau, q, v; goal)), the critic learner and its transitions are the Ballbot's
(:class:`dmpc_core.critics.learner.CriticLearner`, :func:`dmpc_core.agents.deep_value_mpc.transitions`).

One iteration: ``episodes_per_iteration`` training episodes from random IK starts to random
targets (random side of the board), their transitions into the replay buffer, ``updates_per_iteration``
critic updates, the exported critic swapped into the actor. Evaluation: the 8 fixed pairs.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import numpy as np

from dmpc_core import _core
from dmpc_core.agents.deep_value_mpc import EpisodeResult, transitions
from dmpc_core.control.dmpc_problem import PandaActorSettings, PandaDmpcActor
from dmpc_core.critics.bundle import load_bundle
from dmpc_core.critics.learner import CriticLearner, LearnerSettings
from dmpc_core.critics.training import CriticTrainerSettings
from dmpc_core.models.panda import Q_READY
from dmpc_core.mpc import MpcController, MpcSettings
from dmpc_core.tasks.franka_obstacle import FrankaObstacleSettings, FrankaObstacleTask, ObstaclePandaPlant

NX, NU, NG = 14, 7, 3


@dataclass
class FrankaTrainingSettings:
    """Attributes:
    iterations: learning iterations (Algorithm 1 outer loop).
    episodes_per_iteration: training episodes before each critic update.
    updates_per_iteration: ``learner.update()`` calls per iteration.
    eval_every: evaluate on the 8 pairs every this many iterations (and at 0 and the end).
    output_scale: critic output scale (V = scale * net + bias).
    zero_init_output: start the critic with a zero output layer (V constant: the first actor
        only regularises, it does not chase an untrained network's slopes).
    terminal_weight: w of the Eq. (4) termination cost q_f = w ||p(T) - g|| added when an
        episode reaches T (the critic's target at tau = 0).
    joint_scale / velocity_scale / goal_scale: input normalisation of the critic (fixed from the
        task): (q - q_ready) / joint_scale, v / velocity_scale, (g - g_mean) / goal_scale,
        tau centred and scaled by T / 2.
    seed: seeds the episode sampler, torch and the trainer.
    torch_threads: torch intra-op threads.
    """

    iterations: int = 20
    episodes_per_iteration: int = 4
    updates_per_iteration: int = 1
    eval_every: int = 5
    output_scale: float = 2.0
    zero_init_output: bool = True
    terminal_weight: float = 2.0
    joint_scale: float = 1.0
    velocity_scale: float = 1.0
    goal_scale: float = 0.2
    seed: int = 0
    torch_threads: int = 1


@dataclass
class FrankaDmpcConfig:
    """One YAML (config/franka_obstacle.yaml) = one of these."""

    task: FrankaObstacleSettings = field(default_factory=FrankaObstacleSettings)
    actor: PandaActorSettings = field(default_factory=PandaActorSettings)
    learner: LearnerSettings = field(
        default_factory=lambda: LearnerSettings(
            min_transitions=200, fit_normalization_at=0,
            trainer=CriticTrainerSettings(discount=1.0, batches_per_update=100, batch_size=64, polyak=0.95,
                                          weight_decay=1e-4, learning_rate=3e-3)))
    training: FrankaTrainingSettings = field(default_factory=FrankaTrainingSettings)


class _TaskView:
    """What :func:`~dmpc_core.agents.deep_value_mpc.transitions` reads from a task."""

    def __init__(self, task: FrankaObstacleTask, terminal_weight: float):
        self.settings, self.task, self.w = task.settings, task, float(terminal_weight)
        self.steps = int(round(task.settings.episode_time / task.settings.control_dt))

    def terminal_cost(self, x, goal) -> float:
        return self.w * float(np.linalg.norm(self.task.tcp(x) - np.asarray(goal, float)))


class FrankaActor(PandaDmpcActor):
    """The DMPC actor with an exported critic bundle; the episode ends at T (t_goal = T)."""

    def __init__(self, task: FrankaObstacleTask, settings: PandaActorSettings):
        super().__init__(settings, task.model)
        self.task = task
        self.critic: Optional[_core.CriticMLP] = None

    def set_critic_bundle(self, bundle_bytes: bytes) -> None:
        self.critic = load_bundle(bundle_bytes, expected_nx=NX, expected_ng=NG).to_native()

    def controller(self, goal, x0, initial_iterations: int = 5) -> MpcController:
        s = self.settings
        self.set_start(x0)
        problem, _, _ = self.make_problem(self.critic, goal, self.task.settings.episode_time)
        ms = MpcSettings(horizon=s.horizon, dt=s.node_dt, integrator=s.integrator, iterations_per_update=1,
                         initial_iterations=initial_iterations)
        return MpcController(problem, ms, initial_policy=self.gravity_policy(x0))


def run_episode(task: FrankaObstacleTask, view: _TaskView, actor: FrankaActor, x0, goal,
                plant: ObstaclePandaPlant) -> EpisodeResult:
    """One episode of Algorithm 1 on the board scene: per-step task cost, the contact penalty
    on contact (episode ends, outcome "wall"), the Eq. (4) termination cost at T."""
    s = task.settings
    plant.reset(np.asarray(x0, float))
    mpc = actor.controller(goal, x0)
    x = plant.x.copy()
    xs, costs, outcome, solve = [x], [], "timeout", 0.0
    h = s.control_dt / s.tracking_substeps
    for k in range(view.steps):
        res = mpc.update(plant.t, x)
        solve += res.solve_time
        for _ in range(s.tracking_substeps):
            u = np.asarray(mpc.control(plant.t, plant.x), float)
            if not np.all(np.isfinite(u)):
                u = np.asarray(task.model.gravity(plant.x[:7]), float)
            plant.step(u, h)
        c = task.step_cost(x, goal)
        x = plant.x.copy()
        xs.append(x)
        if plant.touched:
            outcome, c = "wall", c + s.contact_penalty
        costs.append(c)
        if outcome != "timeout":
            break
    if outcome == "timeout":
        costs[-1] += view.terminal_cost(xs[-1], goal)
    xs = np.asarray(xs)
    dist = float(np.linalg.norm(task.tcp(xs[-1]) - np.asarray(goal, float)))
    return EpisodeResult(xs, np.asarray(costs), np.asarray(goal, float), outcome, dist, solve,
                         np.zeros(len(costs)))


def evaluate(task: FrankaObstacleTask, view: _TaskView, actor: FrankaActor, plant: ObstaclePandaPlant) -> Dict:
    eps = [run_episode(task, view, actor, x0, g, plant) for x0, g in task.eval_pairs()]
    tol = task.settings.success_tolerance
    return {"eval/success_rate": float(np.mean([e.outcome == "timeout" and e.final_distance < tol for e in eps])),
            "eval/mean_cost": float(np.mean([e.total_cost for e in eps])),
            "eval/contacts": float(sum(e.outcome == "wall" for e in eps)),
            "eval/final_distance": float(np.mean([e.final_distance for e in eps])),
            "episodes": eps}


class FrankaDeepValueMpc:
    """Algorithm 1 on the Franka obstacle task, with checkpoint state (learner and replay,
    iteration, sampler RNG, the exported critic)."""

    def __init__(self, config: FrankaDmpcConfig):
        import torch

        self.config = cfg = copy.deepcopy(config)
        tr = cfg.training
        torch.manual_seed(tr.seed)
        cfg.learner.trainer.seed = tr.seed
        cfg.learner.trainer.torch_threads = tr.torch_threads
        self.task = FrankaObstacleTask(cfg.task)
        self.view = _TaskView(self.task, tr.terminal_weight)
        self.actor = FrankaActor(self.task, cfg.actor)
        self.learner = CriticLearner(cfg.learner, NX, NG, robot="panda")
        ts = cfg.task
        std = np.r_[np.full(7, tr.joint_scale), np.full(7, tr.velocity_scale), np.full(3, tr.goal_scale), ts.episode_time / 2]
        r = np.asarray(ts.target_region, float)
        mean = np.r_[Q_READY, np.zeros(7), 0.5 * (r[0::2] + r[1::2]), ts.episode_time / 2]
        for net in (self.learner.trainer.model, self.learner.trainer.target):
            net.set_output_affine(tr.output_scale, 0.0)
            net.set_input_normalization(mean, std)
            if tr.zero_init_output:
                with torch.no_grad():
                    net.layers[-1].weight.zero_()
                    net.layers[-1].bias.zero_()
        self.learner.normalization_fitted = True
        self.rng = np.random.default_rng(tr.seed)
        self.plant = ObstaclePandaPlant(ts)
        self.iteration = 0
        self.bundle = self.learner.export()
        self.actor.set_critic_bundle(self.bundle)

    def collect(self) -> Dict[str, float]:
        eps: List[EpisodeResult] = []
        for _ in range(self.config.training.episodes_per_iteration):
            x0, goal = self.task.sample_pair(self.rng)
            ep = run_episode(self.task, self.view, self.actor, x0, goal, self.plant)
            self.learner.add(**transitions(ep, self.view))
            eps.append(ep)
        tol = self.task.settings.success_tolerance
        return {"train/episode_cost": float(np.mean([e.total_cost for e in eps])),
                "train/success_rate": float(np.mean([e.outcome == "timeout" and e.final_distance < tol for e in eps])),
                "train/contacts": float(sum(e.outcome == "wall" for e in eps)),
                "train/transitions": float(len(self.learner.buffer)),
                "train/solve_ms_per_step": 1e3 * sum(e.solve_time for e in eps) / max(1, sum(len(e.costs) for e in eps))}

    def run_iteration(self) -> Dict[str, float]:
        stats = self.collect()
        for _ in range(self.config.training.updates_per_iteration):
            stats.update(self.learner.update())
        self.bundle = self.learner.export()
        self.actor.set_critic_bundle(self.bundle)
        self.iteration += 1
        return stats

    def evaluate(self) -> Dict:
        return evaluate(self.task, self.view, self.actor, self.plant)

    def save(self, path) -> None:
        self.learner.save(path, extra={"iteration": self.iteration, "sampler_rng": self.rng.bit_generator.state,
                                       "bundle": self.bundle})

    def load(self, path) -> dict:
        extra = self.learner.load(path)
        self.iteration = int(extra["iteration"])
        self.rng.bit_generator.state = extra["sampler_rng"]
        self.bundle = bytes(extra["bundle"])
        self.actor.set_critic_bundle(self.bundle)
        return extra
