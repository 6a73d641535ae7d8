"""Receding-horizon control around the compiled SLQ and MPPI solvers (no ROS).

:class:`MpcController` owns one :class:`dmpc_core._core.SlqSolver`. ``update(t, x)`` re-plans from
the measured state (warm started from the previous policy shifted to ``t``; one real-time
iteration by default, more on the first call), and ``control(t, x)`` evaluates the latest affine
policy -- the cheap call a high-rate tracking loop makes. The ROS controller node calls exactly
these two methods from its MPC thread and its tracking timer.

:class:`MppiMpcController` offers the same interface around :class:`dmpc_core._core.MppiSolver`
(``MpcSettings.solver = "mppi"``, settings in ``MpcSettings.mppi``); :func:`make_controller`
builds the one the settings select.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import numpy as np

from dmpc_core import _core

SOLVERS = ("slq", "mppi")


@dataclass
class MppiMpcSettings:
    """MPPI settings of :class:`MppiMpcController` (used when ``MpcSettings.solver == "mppi"``).
    Horizon, dt, integrator and discount come from :class:`MpcSettings` (the problem's grid).

    Attributes:
        num_samples: K sampled control sequences per iteration.
        noise_std: per-input standard deviation of the exploration noise (Sigma = noise_std^2 I).
        lambda_: temperature lambda.
        control_cost_weight: nu scaling the Eq. (16) term of MPQ (1 = exact; long horizons with
            sustained torques need less, see ``_core.MppiSettings``).
        step_size: alpha of Eq. (18).
        smoothing: AR(1) low-pass beta of the noise along the horizon (0 = white).
        iterations_per_update: MPPI iterations per re-plan.
        initial_iterations: MPPI iterations of the first (cold) solve.
        num_threads: rollout threads (results are identical for any count).
        seed: RNG seed.
        u_limit: |u_i| <= u_limit on the sampled and planned controls (0: unbounded).
        feedback: "none" (track the plan open loop, zero-order hold) or "lqr" (add u = K (x -
            x_nom(t)) around the plan's nominal rollout; the gain comes from the task, e.g. the
            Ballbot's upright LQR gain).
        reset_deviation: when the measured state differs from the last plan's prediction
            x_nom(t) by more than this (max-norm over the state vector; 0: never), the warm start
            is dropped: the solve starts from the initial plan (e.g. after the robot was reset or
            pushed far away: a plan shifted from a fallen robot's recovery attempt is a poor start
            for MPPI, which moves it by one weighted average per iteration); ``control`` returns
            the safe command instead of a policy planned for a state that far away, until the
            next solve ends.
    """

    num_samples: int = 256
    noise_std: float = 0.5
    lambda_: float = 3.0
    control_cost_weight: float = 0.01
    step_size: float = 1.0
    smoothing: float = 0.0
    iterations_per_update: int = 1
    initial_iterations: int = 10
    num_threads: int = 1
    seed: int = 0
    u_limit: float = 20.0
    feedback: str = "lqr"
    reset_deviation: float = 2.0

    def validate(self) -> None:
        if self.num_samples < 1:
            raise ValueError("mppi.num_samples must be >= 1")
        if not (np.isfinite(self.noise_std) and self.noise_std > 0):
            raise ValueError("mppi.noise_std must be > 0")
        if not (np.isfinite(self.lambda_) and self.lambda_ > 0):
            raise ValueError("mppi.lambda_ must be > 0")
        if not self.control_cost_weight >= 0:
            raise ValueError("mppi.control_cost_weight must be >= 0")
        if not 0 < self.step_size <= 1:
            raise ValueError("mppi.step_size must be in (0, 1]")
        if not 0 <= self.smoothing < 1:
            raise ValueError("mppi.smoothing must be in [0, 1)")
        if self.iterations_per_update < 1 or self.initial_iterations < 1:
            raise ValueError("mppi iterations must be >= 1")
        if self.num_threads < 1:
            raise ValueError("mppi.num_threads must be >= 1")
        if self.seed < 0:
            raise ValueError("mppi.seed must be >= 0")
        if not self.u_limit >= 0:
            raise ValueError("mppi.u_limit must be >= 0 (0: unbounded)")
        if self.feedback not in ("none", "lqr"):
            raise ValueError(f"mppi.feedback must be 'none' or 'lqr', got {self.feedback!r}")
        if not self.reset_deviation >= 0:
            raise ValueError("mppi.reset_deviation must be >= 0 (0: never)")


@dataclass
class MpcSettings:
    """Receding-horizon settings.

    Attributes:
        horizon: number of nodes N of the optimal control problem.
        dt: node spacing [s] (the horizon covers N * dt seconds).
        integrator: 'rk4', 'euler' or 'semi_implicit_euler'.
        discount: gamma per second of Eq. (10).
        mpc_rate: re-planning rate [Hz] (the reference Ballbot MPC runs at 100 Hz).
        tracking_rate: policy evaluation rate [Hz] (400 Hz in the reference).
        iterations_per_update: SLQ iterations per re-plan (1 = real-time iteration).
        initial_iterations: SLQ iterations of the first (cold) solve.
        num_threads: threads of the LQ approximation.
        interpolation: 'linear' or 'zoh' policy interpolation in time (SLQ; MPPI plans are
            zero-order hold).
        solver: 'slq' (default, :class:`MpcController`) or 'mppi' (:class:`MppiMpcController`).
        mppi: MPPI settings (used when solver == 'mppi').
    """

    horizon: int = 100
    dt: float = 0.01
    integrator: str = "rk4"
    discount: float = 1.0
    mpc_rate: float = 100.0
    tracking_rate: float = 400.0
    iterations_per_update: int = 1
    initial_iterations: int = 30
    num_threads: int = 1
    interpolation: str = "linear"
    solver: str = "slq"
    mppi: MppiMpcSettings = dataclasses.field(default_factory=MppiMpcSettings)

    def validate(self) -> None:
        if self.solver not in SOLVERS:
            raise ValueError(f"solver must be one of {list(SOLVERS)}, got {self.solver!r}")
        if self.horizon < 1:
            raise ValueError("horizon must be >= 1")
        if not self.dt > 0:
            raise ValueError("dt must be > 0")
        if not 0 < self.discount <= 1:
            raise ValueError("discount must be in (0, 1]")
        if not (self.mpc_rate > 0 and self.tracking_rate > 0):
            raise ValueError("rates must be > 0")
        if self.iterations_per_update < 1 or self.initial_iterations < 1:
            raise ValueError("iterations must be >= 1")
        self.mppi.validate()


class _PolicyController:
    """What the receding-horizon controllers share: the latest good policy, its evaluation with
    the safe command as fallback, and the success test of an update."""

    OK_STATUSES: tuple = ()
    u_safe: np.ndarray
    _policy: "_core.Policy | None"

    @property
    def policy(self) -> _core.Policy | None:
        """The latest good policy (None before the first successful solve)."""
        return self._policy

    def is_ok(self, result) -> bool:
        """Whether ``result`` (of ``update``) produced a new policy."""
        return result.status in self.OK_STATUSES

    def adopt_policy(self, pol: _core.Policy) -> None:
        """Use a policy solved elsewhere (the MPC worker process) as the latest good policy; it
        is evaluated by :meth:`control` as if this controller had solved it. The caller checks
        its values (``policy_wire.decode`` refuses non-finite ones); an empty policy is refused
        here (ValueError)."""
        if pol is None or pol.empty():
            raise ValueError("cannot adopt an empty policy")
        self._policy = pol

    def _evaluate(self, pol: _core.Policy, t: float, x: np.ndarray) -> np.ndarray:
        """u(t, x) of ``pol``; the safe command if it is not finite."""
        u = pol.control(float(t), x)
        return u if np.all(np.isfinite(u)) else self.u_safe.copy()


class MpcController(_PolicyController):
    """Receding-horizon SLQ controller.

    Args:
        problem: the optimal control problem (its horizon/dt must match ``settings``).
        settings: receding-horizon settings.
        u_safe: command returned before the first successful solve (default zeros).
        initial_policy: initial guess of the first solve (e.g. an LQR stabiliser for an unstable
            robot); zero controls if None.
    """

    #: solver name (diagnostics)
    name = "slq"
    #: result statuses after which the new policy is used
    OK_STATUSES = ("converged", "max_iterations")

    def __init__(
        self,
        problem: _core.Problem,
        settings: MpcSettings,
        u_safe: np.ndarray | None = None,
        initial_policy: _core.Policy | None = None,
    ):
        settings.validate()
        if problem.horizon != settings.horizon or abs(problem.dt - settings.dt) > 1e-12:
            raise ValueError("problem horizon/dt do not match the MPC settings")
        self.problem = problem
        self.settings = settings
        self.u_safe = np.zeros(problem.nu) if u_safe is None else np.asarray(u_safe, float)
        self._slq_settings = _core.SlqSettings(
            max_iterations=settings.initial_iterations,
            num_threads=settings.num_threads,
            interpolation=settings.interpolation,
        )
        self.solver = _core.SlqSolver(problem, self._slq_settings)
        if initial_policy is not None:
            self.solver.set_policy(initial_policy)
        self._policy: _core.Policy | None = None
        self.last_result: _core.SlqResult | None = None
        self.num_updates = 0

    def update(self, t: float, x: np.ndarray) -> _core.SlqResult:
        """Re-plan from state ``x`` (nx,) at time ``t``. Keeps the previous policy if the solve
        fails (the result's status says why)."""
        iters = self.settings.initial_iterations if self._policy is None else self.settings.iterations_per_update
        if self._slq_settings.max_iterations != iters:
            self._slq_settings.max_iterations = iters
            self.solver.settings = self._slq_settings
        result = self.solver.solve(np.asarray(x, dtype=float), float(t))
        if result.status in self.OK_STATUSES:
            self._policy = self.solver.policy()
        self.last_result = result
        self.num_updates += 1
        return result

    def control(self, t: float, x: np.ndarray) -> np.ndarray:
        """u(t, x) from the latest policy; the safe command if there is none or it is not finite."""
        if self._policy is None:
            return self.u_safe.copy()
        return self._evaluate(self._policy, t, np.asarray(x, dtype=float))

    def warm_start_from(self, other: "MpcController") -> None:
        """Start from another controller's latest policy (e.g. right after a critic swap): it is
        the initial guess of the next solve and the active policy until then."""
        if other.policy is not None:
            self.solver.set_policy(other.policy)
            self._policy = other.policy

    def set_policy_interpolation(self, mode: str) -> None:
        self.settings = dataclasses.replace(self.settings, interpolation=mode)
        self._slq_settings.interpolation = mode
        self.solver.settings = self._slq_settings


@dataclass
class MppiUpdateResult:
    """Outcome of one :meth:`MppiMpcController.update`.

    Attributes:
        status: "ok" (new plan active), "diverged" (every rollout non-finite) or "non_finite"
            (plan or nominal rollout not finite); on failure the previous policy is kept.
        solve_time: wall time of the MPPI iterations [s].
        iterations: MPPI iterations run.
        cost: task cost of the plan's nominal rollout (running + terminal, no Eq. (16) term).
        free_energy: Eq. (7) estimate of the last iteration.
        effective_sample_size: 1 / sum w_k^2 of the last iteration.
        num_diverged: rollouts with a non-finite state or cost.
        message: human-readable detail.
    """

    status: str
    solve_time: float
    iterations: int
    cost: float
    free_energy: float
    effective_sample_size: float
    num_diverged: int
    message: str = ""


class MppiMpcController(_PolicyController):
    """Receding-horizon MPPI with the interface of :class:`MpcController`.

    The sampled rollouts use the problem's dynamics, its running cost plus the control cost
    1/2 u' R u (R = ``problem.control_weight``, which SLQ adds separately), its terminal cost
    and discount (gamma = discount^dt per step), on the problem's horizon and dt.

    ``update(t, x)`` shifts the previous plan by the whole steps of dt elapsed on its time grid
    (warm start; the freed tail repeats the last control), runs MPPI from ``x`` at ``t`` and
    publishes a :class:`_core.Policy` with feedforward = the plan (zero-order hold on the plan's
    nodes t + k dt), nominal states = the plan's rollout from ``x`` and gains K = ``feedback_gain``
    (zeros: open loop). ``control(t, x) = u_plan(t) + K (x - x_nom(t))`` -- with a gain, this is
    an ancillary tracking controller around the MPPI nominal trajectory (as in tube / robust
    MPPI), evaluated at the tracking rate between re-plans.

    Args:
        problem: the optimal control problem (its horizon/dt must match ``settings``).
        settings: receding-horizon settings (``settings.mppi`` for the sampler).
        u_safe: command returned before the first successful solve (default zeros).
        initial_policy: initial guess of the first solve: its feedforward on the plan's grid
            (e.g. zeros for the Ballbot's LQR policy); zero controls if None.
        feedback_gain: (nu, nx) gain, or a list of H such gains, used when
            ``settings.mppi.feedback == "lqr"``; ignored for "none".
    """

    name = "mppi"
    OK_STATUSES = ("ok",)

    def __init__(
        self,
        problem: _core.Problem,
        settings: MpcSettings,
        u_safe: np.ndarray | None = None,
        initial_policy: _core.Policy | None = None,
        feedback_gain=None,
    ):
        settings.validate()
        if problem.horizon != settings.horizon or abs(problem.dt - settings.dt) > 1e-12:
            raise ValueError("problem horizon/dt do not match the MPC settings")
        m = settings.mppi
        nx, nu, H = problem.nx, problem.nu, problem.horizon
        self.problem = problem
        self.settings = settings
        self.u_safe = np.zeros(nu) if u_safe is None else np.asarray(u_safe, float)
        if m.feedback == "lqr":
            if feedback_gain is None:
                raise ValueError("mppi.feedback = 'lqr' needs a feedback gain from the task")
            gains = [np.asarray(feedback_gain, float)] * H if np.ndim(feedback_gain) == 2 else \
                [np.asarray(k, float) for k in feedback_gain]
            if len(gains) != H or any(k.shape != (nu, nx) for k in gains):
                raise ValueError(f"feedback_gain must be ({nu}, {nx}) or a list of {H} such gains")
        else:
            gains = [np.zeros((nu, nx))] * H
        self._gains = gains
        self.running_cost = _core.SumCost(nx, nu)
        self.running_cost.add("stage", problem.running_cost)
        R = np.asarray(problem.control_weight, float)
        if R.size:
            self.running_cost.add("control", _core.QuadraticCost(np.zeros((nx, nx)), R, np.zeros(nx), np.zeros(nu)))
        self.terminal_cost = problem.terminal_cost
        bounds = {}
        if m.u_limit > 0:
            bounds = dict(u_min=-m.u_limit * np.ones(nu), u_max=m.u_limit * np.ones(nu))
        self._core_settings = _core.MppiSettings(
            num_samples=m.num_samples, horizon=H, dt=problem.dt, noise_sigma=np.eye(nu) * m.noise_std**2,
            lambda_=m.lambda_, step_size=m.step_size, gamma=float(problem.discount) ** problem.dt,
            control_cost_weight=m.control_cost_weight, num_iterations=1, num_threads=m.num_threads,
            seed=m.seed, smoothing=m.smoothing, integrator=problem.integrator, tail_fill="repeat_last",
            num_saved_trajectories=0, **bounds)
        self.solver = _core.MppiSolver(problem.dynamics, self.running_cost, self.terminal_cost, self._core_settings)
        self._initial_plan = np.zeros((H, nu))
        if initial_policy is not None and not initial_policy.empty():
            self._initial_plan = np.array([initial_policy.feedforward(initial_policy.t0 + k * problem.dt)
                                           for k in range(H)])
        self.solver.set_plan(self._initial_plan)
        self.num_resets = 0  # warm starts dropped (reset_deviation)
        self._grid_t0: float | None = None  # time of node 0 of the solver's plan grid
        self._policy: _core.Policy | None = None
        self.last_result: MppiUpdateResult | None = None
        self.num_updates = 0

    def update(self, t: float, x: np.ndarray) -> MppiUpdateResult:
        """Re-plan from state ``x`` (nx,) at time ``t``. Keeps the previous policy if the solve
        fails (the result's status says why)."""
        x = np.asarray(x, dtype=float)
        t = float(t)
        if x.shape != (self.problem.nx,) or not np.all(np.isfinite(x)) or not np.isfinite(t):
            raise ValueError(f"MPPI update: state must be a finite vector of size {self.problem.nx} "
                             "and t finite (non-finite or wrong-size input)")
        dt, H = self.problem.dt, self.problem.horizon
        m = self.settings.mppi
        if (self._policy is not None and m.reset_deviation > 0
                and np.max(np.abs(x - self._policy.nominal_state(t))) > m.reset_deviation):
            # the stale policy (planned for a state far from this one) would act on the robot
            # until this solve ends: send the safe command meanwhile
            self._policy = None
            self.solver.set_plan(self._initial_plan)
            self._grid_t0 = None
            self.num_resets += 1
        # Warm start: the plan's nodes sit on a grid t_grid + k dt. Shift by the whole steps elapsed
        # (floor: node 0 is then the one whose hold interval contains t) and advance the grid by
        # exactly those steps, so that re-plans faster than dt (e.g. 100 Hz with dt = 0.02 s)
        # still shift once per dt on average instead of never.
        if self._grid_t0 is None or t < self._grid_t0:
            self._grid_t0 = t
        else:
            steps = int(np.floor((t - self._grid_t0) / dt + 1e-9))
            if steps > 0:
                self.solver.shift(min(steps, H))
                self._grid_t0 += steps * dt
        self.solver.set_state(x, t)
        # (initial_iterations only for the very first solve: after a reset the robot cannot wait)
        iters = m.initial_iterations if self.num_updates == 0 else m.iterations_per_update
        start = time.perf_counter()
        for _ in range(iters):
            r = self.solver.optimize()
        solve_time = time.perf_counter() - start
        plan, xs = np.asarray(r.plan), np.asarray(r.nominal_states)
        if r.num_diverged == m.num_samples:
            status, msg = "diverged", "every rollout diverged"
        elif not (np.all(np.isfinite(plan)) and np.all(np.isfinite(xs))):
            status, msg = "non_finite", "plan or nominal rollout not finite"
        else:
            status, msg = "ok", ""
            pol = _core.Policy()
            pol.t0, pol.dt = t, dt
            pol.u_ff = plan
            pol.x_nom = xs
            pol.K = self._gains
            pol.interpolation = "zoh"
            self._policy = pol
        result = MppiUpdateResult(status, solve_time, iters, float(r.nominal_cost), float(r.free_energy),
                                  float(r.effective_sample_size), int(r.num_diverged), msg)
        self.last_result = result
        self.num_updates += 1
        return result

    def control(self, t: float, x: np.ndarray) -> np.ndarray:
        """u(t, x) from the latest policy; the safe command if there is none or it is not finite."""
        pol = self._policy
        if pol is None:
            return self.u_safe.copy()
        x = np.asarray(x, dtype=float)
        dev = self.settings.mppi.reset_deviation
        if dev > 0 and np.max(np.abs(x - pol.nominal_state(float(t)))) > dev:
            return self.u_safe.copy()  # the plan is for another state; the next update re-plans
        return self._evaluate(pol, t, x)

    def warm_start_from(self, other: "MppiMpcController") -> None:
        """Start from another MPPI controller's plan (e.g. right after a critic swap): its plan is
        the warm start of the next solve and its policy is active until then."""
        if other.policy is not None:
            self.solver.set_plan(np.asarray(other.solver.plan))
            self._grid_t0 = other._grid_t0
            self._policy = other.policy

    def set_policy_interpolation(self, mode: str) -> None:
        if mode != "zoh":
            raise ValueError("MPPI plans are zero-order hold: interpolation must be 'zoh'")


def make_controller(problem: _core.Problem, settings: MpcSettings, u_safe=None, initial_policy=None,
                    feedback_gain=None):
    """The receding-horizon controller ``settings.solver`` selects (SLQ or MPPI)."""
    settings.validate()
    if settings.solver == "mppi":
        return MppiMpcController(problem, settings, u_safe, initial_policy, feedback_gain)
    return MpcController(problem, settings, u_safe, initial_policy)
