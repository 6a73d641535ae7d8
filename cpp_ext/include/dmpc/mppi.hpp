/// @file mppi.hpp
/// @brief Model Predictive Path Integral control (information-theoretic MPPI, Williams et al.
///        2017) in the "infinite horizon" form of MPQ (mpq-model-predictive-q-learning, Eqs.
///        (7), (16)-(18)) with a pluggable terminal value, as used by POLO and MPQ.
///
/// One call to optimize() runs num_iterations of:
///  1. Sampling (Eq. (16) change of variables a_t = u_t + eps_t): for every sample k an RNG
///     seeded by (seed, iteration counter, k) (SplitMix64 with a ziggurat normal sampler,
///     random.hpp) draws white noise n_t ~ N(0, I); optional
///     temporal smoothing z_0 = n_0, z_t = beta z_{t-1} + sqrt(1 - beta^2) n_t (a first-order
///     low-pass that keeps the marginal covariance); eps_t = L z_t with Sigma = L L^T.
///     Controls are clamped, v_t = clamp(u_t + eps_t, u_min, u_max), and the clamped noise
///     eps_t := v_t - u_t is what enters the cost and the update. With smoothing (beta > 0) the
///     samples are correlated in time while the Eq. (16) term keeps the white-noise prior: it is
///     then a regulariser in the spirit of Eq. (16), no longer the exact importance weight.
///  2. Rollouts x_{t+1} = Phi(x_t, v_t, dt) (integrate_forward of rollout.hpp: the model's
///     forward-only DynamicsModel::calc_xdot, no derivatives; the running cost is evaluated with
///     calc(), value only), in parallel on a ThreadPool with per-worker preallocated buffers;
///     workers take chunks of 8 samples from a shared counter (dynamic load balance). Noise
///     depends only on (seed, counter, k) and each sample is processed by exactly one worker,
///     so results are bitwise identical for any num_threads.
///  3. Path cost (Eq. (16), with running cost, discount and terminal value as below):
///       C_k = sum_{t=0}^{H-1} [ gamma^t l(t0 + t dt, x_t, v_t) dt
///                               + nu lambda * 1/2 u_t^T Sigma^{-1} (u_t + 2 eps_t) ]
///             + gamma^H phi(t0 + H dt, x_H, 0).
///     The information-theoretic term lambda/2 u^T Sigma^{-1} (u + 2 eps) is exactly the one in
///     Eq. (16) (it is lambda log pi(U+E)/pibar(U+E) for pi = N(U, Sigma), prior pibar = N(0,
///     Sigma)) for the default nu = control_cost_weight = 1. It is not discounted: then the weights are exact importance weights from
///     N(U, Sigma) to pi*(A) ~ exp(-C_task(A)/lambda) pibar(A) (Eq. (6) with a discounted task
///     cost), so that with gamma = 1 everything is Eqs. (6)-(18) verbatim and with gamma < 1 the
///     fixed point is the mean of the same Boltzmann distribution for the discounted cost.
///     The terminal phi (a learned V, or a soft value derived from Q) replaces Q^pi(s_{H-1},
///     a_{H-1}) of Eq. (16); it receives the state after the last control and a zero control
///     vector of size terminal_cost.nu() (0 or nu), following the convention of cost.hpp.
///  4. Update (Eqs. (17)-(18)): w_k = exp(-(C_k - C_min)/lambda) / sum_j exp(-(C_j - C_min)
///     /lambda) (shift by the minimum for stability; non-finite costs get weight 0), then
///     U <- (1 - alpha) U + alpha sum_k w_k (U + eps_k) = U + alpha sum_k w_k eps_k.
/// The free energy of the last iteration (Eq. (7)),
///     F = -lambda log( (1/K) sum_k exp(-C_k / lambda) )
///       = C_min - lambda log( (1/K) sum_k exp(-(C_k - C_min)/lambda) ),
/// With nu = 1 the Eq. (16) term is exactly the log importance ratio, so for any mean plan U
/// E_{N(U,Sigma)}[exp(-C/lambda)] = E_{N(0,Sigma)}[exp(-C_task/lambda)] and F is an estimate of
/// the free energy V*(x0) of Eq. (7) (prior pibar = N(0, Sigma), running cost plus terminal
/// value); the estimate is sharpest when U is near the mean of pi* (after some iterations).
///
/// Concurrency: set_state / set_plan / shift / optimize must be called from one thread at a
/// time. action_from_policy() may be called from any thread at any time: it reads a published
/// copy of the plan, swapped under a short exclusive lock at the end of optimize().
#pragma once

#include <cstdint>
#include <memory>
#include <shared_mutex>
#include <string>
#include <vector>

#include "dmpc/cost.hpp"
#include "dmpc/dynamics.hpp"
#include "dmpc/integrator.hpp"
#include "dmpc/rollout.hpp"
#include "dmpc/thread_pool.hpp"

namespace dmpc {

/// @brief How shift() fills the freed tail of the plan.
///  - RepeatLast: copy the last control of the plan before the shift.
///  - Zero: zero control (clamped into [u_min, u_max]).
///  - Nominal: the vector MppiSettings::tail_nominal (clamped into [u_min, u_max]).
enum class TailFill { RepeatLast, Zero, Nominal };

TailFill tail_fill_from_string(const std::string& name);
std::string to_string(TailFill mode);

/// @brief MPPI settings (validated by the MppiSolver constructor).
struct MppiSettings {
  int num_samples = 256;        ///< K >= 1 sampled control sequences per iteration
  int horizon = 32;             ///< H >= 1 control steps
  double dt = 0.05;             ///< step length [s] > 0 (zero-order hold)
  Mat noise_sigma;              ///< Sigma, nu x nu symmetric positive definite (empty = identity)
  double lambda_ = 1.0;         ///< temperature lambda > 0
  double step_size = 1.0;       ///< alpha in (0, 1] of Eq. (18)
  double gamma = 1.0;           ///< discount in (0, 1] on running and terminal cost
  /// nu >= 0 scaling the Eq. (16) term: nu lambda/2 u^T Sigma^{-1} (u + 2 eps). 1 (default) is
  /// MPQ Eq. (16) exactly (and the only value for which Eq. (7) is the free energy of the
  /// Boltzmann distribution); smaller values weaken the pull of the N(0, Sigma) prior towards
  /// zero control (nav2's MPPI "gamma" plays this role), which long horizons with large
  /// sustained controls need: the term's spread across samples, sqrt(sum_t u_t^T Sigma^{-1}
  /// u_t) nats, is independent of lambda and collapses the effective sample size.
  double control_cost_weight = 1.0;
  int num_iterations = 1;       ///< MPPI iterations per optimize() call (>= 1)
  int num_threads = 1;          ///< rollout threads including the caller (>= 1)
  std::uint64_t seed = 0;       ///< RNG seed; with the call counter and sample index
  double smoothing = 0.0;       ///< beta in [0, 1): AR(1) low-pass on the noise along the horizon
  Vec u_min;                    ///< lower control limits, size nu (empty = unbounded; -inf allowed)
  Vec u_max;                    ///< upper control limits, size nu (empty = unbounded; +inf allowed)
  Integrator integrator = Integrator::RK4;  ///< discretisation of the dynamics
  TailFill tail_fill = TailFill::RepeatLast;  ///< shift() tail fill mode
  Vec tail_nominal;             ///< size nu, used by TailFill::Nominal and as the initial plan
  int num_saved_trajectories = 8;  ///< rollouts kept for weighted_trajectories() (>= 0; at most K are kept)
};

/// @brief Outputs of one optimize() call (statistics of its last iteration).
struct MppiResult {
  double free_energy = 0.0;  ///< Eq. (7) estimate; +inf if every rollout diverged
  double cost_min = 0.0;     ///< min_k C_k over finite costs
  double cost_mean = 0.0;    ///< mean of the finite C_k
  double cost_max = 0.0;     ///< max of the finite C_k
  double cost_std = 0.0;     ///< standard deviation of the finite C_k
  double effective_sample_size = 0.0;  ///< 1 / sum_k w_k^2
  int num_diverged = 0;      ///< rollouts with a non-finite state or cost (weight 0)
  int num_iterations = 0;    ///< iterations run
  double t = 0.0;            ///< time of the state the plan starts from [s]
  Vec costs;                 ///< C_k, size K
  Vec weights;               ///< w_k, size K (sum 1)
  Mat plan;                  ///< updated mean plan, H x nu
  Mat nominal_states;        ///< rollout of the updated plan, (H+1) x nx
  double nominal_cost = 0.0; ///< task cost of that rollout (running + terminal, discounted, no KL term)
};

/// @brief A subset of the last iteration's rollouts, by decreasing weight (for visualisation).
struct MppiTrajectories {
  std::vector<int> indices;   ///< sample indices k
  Vec weights;                ///< w_k
  Vec costs;                  ///< C_k
  std::vector<Mat> states;    ///< each (H+1) x nx
  std::vector<Mat> controls;  ///< each H x nu (clamped perturbed controls v_t)
};

/// @brief Throw std::invalid_argument naming the first invalid setting (sizes use nu).
void validate_mppi_settings(const MppiSettings& s, int nu);

/// @brief Sampling-based MPC solver (see the file comment for the maths).
class MppiSolver {
 public:
  /// @param[in] dynamics continuous-time model (nx, nu)
  /// @param[in] running_cost l(t, x, u), dimensions (nx, nu)
  /// @param[in] terminal_cost phi(t, x, u0), dimensions (nx, 0 or nu), or nullptr for none
  /// @param[in] settings validated here (std::invalid_argument naming the reason)
  MppiSolver(DynamicsModelPtr dynamics, CostModelPtr running_cost, CostModelPtr terminal_cost,
             const MppiSettings& settings);

  /// @brief Set the current state x (nx) and its absolute time t [s].
  void set_state(const RefV& x, double t);

  /// @brief Run settings.num_iterations MPPI iterations from the current state; publishes the plan.
  const MppiResult& optimize();

  /// @brief First action u_0 of the published plan (size nu). Thread-safe.
  Vec action_from_policy() const;
  /// @brief Zero-order-hold lookup of the published plan at absolute time t (clamped to the
  ///        plan's time span). Thread-safe.
  Vec action_from_policy(double t) const;

  /// @brief Current mean plan, H x nu (row t = u_t).
  Mat plan() const { return U_.transpose(); }
  /// @brief Replace the mean plan (H x nu, clamped into the limits); publishes it.
  void set_plan(const RefM& plan);
  /// @brief Warm start: drop the first num_steps controls and fill the tail per settings.tail_fill;
  ///        the published plan's start time advances by num_steps * dt.
  void shift(int num_steps = 1);

  /// @brief Per-rollout models (a model ensemble / domain-randomised planner, e.g. MPQ's biased
  ///        parameter distribution sampled per rollout): from the next optimize() on, sample k of
  ///        every iteration is rolled out with models[k % models.size()] instead of the solver's
  ///        dynamics. The nominal rollout (MppiResult.nominal_states / nominal_cost) keeps the
  ///        solver's dynamics; weighted_trajectories() replays each sample with its own model.
  ///        An empty list (the default) rolls out every sample with the solver's dynamics.
  ///        Noise streams do not depend on the models, so results stay bitwise deterministic for
  ///        a given seed, model list and thread count (and equal for any thread count).
  ///        With average = true every sample is instead rolled out in ALL the models and its
  ///        cost is their mean (a risk-neutral ensemble planner, M times the rollouts);
  ///        weighted_trajectories() then replays each sample in models[0].
  /// @param[in] models each non-null with the solver's (nx, nu) (nq > 0 for semi_implicit_euler);
  ///                   std::invalid_argument otherwise (the solver is then unchanged)
  void set_rollout_models(const std::vector<DynamicsModelPtr>& models, bool average = false);
  /// @brief Whether the rollout models are averaged per sample (set_rollout_models(.., true)).
  bool rollout_models_averaged() const { return rollout_average_; }
  /// @brief The per-rollout models (empty: the solver's dynamics for every sample).
  const std::vector<DynamicsModelPtr>& rollout_models() const { return rollout_models_; }

  double free_energy() const { return result_.free_energy; }
  const MppiResult& result() const { return result_; }
  const MppiTrajectories& weighted_trajectories() const { return saved_; }
  const MppiSettings& settings() const { return settings_; }
  const Vec& state() const { return x0_; }
  double time() const { return t0_; }
  int nx() const { return nx_; }
  int nu() const { return nu_; }
  /// @brief Number of sampling iterations run so far (enters the noise seeds).
  std::uint64_t iteration_counter() const { return counter_; }

 private:
  /// Per-worker buffers, allocated once (nothing is allocated in a rollout).
  struct Worker {
    explicit Worker(const MppiSolver& s);
    ForwardStepData step;
    std::vector<ForwardStepData> model_steps;  ///< one per rollout model (set_rollout_models)
    std::shared_ptr<CostData> running, terminal;
    Mat X;  ///< rollout states, nx x (H + 1) (column t = x_t)
    Vec z, u_terminal;
  };

  void sample_and_rollout(int k, Worker& w);
  /// Rollout of sample k (k < 0: the nominal plan, solver's dynamics).
  double rollout_cost(const Mat& V, Worker& w, Mat* states, bool with_kl, const Mat* E, int k);
  void fill_tail_value(Vec& u) const;
  void clamp(Eigen::Ref<Vec> u) const;
  void publish();

  DynamicsModelPtr dynamics_;
  std::vector<DynamicsModelPtr> rollout_models_;  ///< sample k uses [k % size] (empty: dynamics_)
  bool rollout_average_ = false;  ///< every sample in every rollout model, mean cost
  CostModelPtr running_, terminal_;
  MppiSettings settings_;
  int nx_, nu_, K_, H_;
  bool bounded_ = false;
  Mat L_;      ///< Cholesky factor of Sigma
  bool sigma_diagonal_ = false;  ///< L_ diagonal: eps = diag(L) .* z
  Mat Sinv_;   ///< Sigma^{-1}
  ThreadPool pool_;
  std::vector<Worker> workers_;

  Vec x0_;
  double t0_ = 0.0;
  bool has_state_ = false;
  Mat U_;      ///< mean plan, nu x H (column t = u_t)
  Mat SinvU_;  ///< nu lambda Sigma^{-1} U, nu x H (per iteration)
  Vec kl0_;    ///< nu lambda/2 u_t^T Sigma^{-1} u_t, size H (per iteration)
  std::vector<Mat> eps_, V_;  ///< per sample: clamped noise and controls, nu x H
  Vec costs_;
  std::uint64_t counter_ = 0;

  MppiResult result_;
  MppiTrajectories saved_;

  mutable std::shared_mutex pub_mutex_;
  Mat U_pub_;  ///< published plan, nu x H
  double t_pub_ = 0.0;
};

}  // namespace dmpc
