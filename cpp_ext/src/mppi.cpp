#include "dmpc/mppi.hpp"

#include <Eigen/Cholesky>
#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <mutex>
#include <numeric>

#include "dmpc/random.hpp"

namespace dmpc {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

/// SplitMix64 finaliser (Steele, Lea, Flood 2014): a bijective 64-bit mixer.
std::uint64_t splitmix64(std::uint64_t z) {
  z += 0x9E3779B97F4A7C15ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

/// Seed of sample k in iteration `counter`: a chain of SplitMix64 mixes, so that streams of
/// different (seed, counter, k) are decorrelated and independent of the thread that runs k.
std::uint64_t sample_seed(std::uint64_t seed, std::uint64_t counter, std::uint64_t k) {
  return splitmix64(splitmix64(splitmix64(seed) ^ counter) ^ k);
}

std::string fmt(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

MppiSettings validated(const DynamicsModelPtr& dyn, const CostModelPtr& running,
                       const CostModelPtr& terminal, MppiSettings s) {
  if (!dyn) throw std::invalid_argument("MppiSolver: dynamics must not be None");
  if (!running) throw std::invalid_argument("MppiSolver: running_cost must not be None");
  const int nx = dyn->nx(), nu = dyn->nu();
  if (running->nx() != nx || running->nu() != nu)
    throw std::invalid_argument("MppiSolver: running_cost has (nx, nu) = (" +
                                std::to_string(running->nx()) + ", " +
                                std::to_string(running->nu()) + "), expected (" +
                                std::to_string(nx) + ", " + std::to_string(nu) + ")");
  if (terminal && (terminal->nx() != nx || (terminal->nu() != 0 && terminal->nu() != nu)))
    throw std::invalid_argument("MppiSolver: terminal_cost has (nx, nu) = (" +
                                std::to_string(terminal->nx()) + ", " +
                                std::to_string(terminal->nu()) + "), expected nx = " +
                                std::to_string(nx) + " and nu = 0 or " + std::to_string(nu));
  if (s.noise_sigma.size() == 0) s.noise_sigma = Mat::Identity(nu, nu);
  if (s.tail_nominal.size() == 0) s.tail_nominal = Vec::Zero(nu);
  validate_mppi_settings(s, nu);
  if (s.integrator == Integrator::SemiImplicitEuler && dyn->nq() == 0)
    throw std::invalid_argument("MppiSettings.integrator: semi_implicit_euler needs a second-order "
                                "model (nq > 0), got " + dyn->name());
  return s;
}

}  // namespace

TailFill tail_fill_from_string(const std::string& name) {
  if (name == "repeat_last") return TailFill::RepeatLast;
  if (name == "zero") return TailFill::Zero;
  if (name == "nominal") return TailFill::Nominal;
  throw std::invalid_argument("unknown tail fill mode '" + name +
                              "' (expected 'repeat_last', 'zero' or 'nominal')");
}

std::string to_string(TailFill mode) {
  switch (mode) {
    case TailFill::RepeatLast: return "repeat_last";
    case TailFill::Zero: return "zero";
    case TailFill::Nominal: return "nominal";
  }
  return "unknown";
}

void validate_mppi_settings(const MppiSettings& s, int nu) {
  auto fail = [](const std::string& msg) { throw std::invalid_argument("MppiSettings." + msg); };
  if (s.num_samples < 1) fail("num_samples must be >= 1, got " + std::to_string(s.num_samples));
  if (s.horizon < 1) fail("horizon must be >= 1, got " + std::to_string(s.horizon));
  if (!(s.dt > 0.0) || !std::isfinite(s.dt)) fail("dt must be finite and > 0, got " + fmt(s.dt));
  if (!(s.lambda_ > 0.0) || !std::isfinite(s.lambda_))
    fail("lambda_ (temperature) must be finite and > 0, got " + fmt(s.lambda_));
  if (!(s.step_size > 0.0 && s.step_size <= 1.0))
    fail("step_size (alpha) must be in (0, 1], got " + fmt(s.step_size));
  if (!(s.gamma > 0.0 && s.gamma <= 1.0)) fail("gamma must be in (0, 1], got " + fmt(s.gamma));
  if (!(s.control_cost_weight >= 0.0) || !std::isfinite(s.control_cost_weight))
    fail("control_cost_weight must be finite and >= 0, got " + fmt(s.control_cost_weight));
  if (s.num_iterations < 1)
    fail("num_iterations must be >= 1, got " + std::to_string(s.num_iterations));
  if (s.num_threads < 1) fail("num_threads must be >= 1, got " + std::to_string(s.num_threads));
  if (!(s.smoothing >= 0.0 && s.smoothing < 1.0))
    fail("smoothing must be in [0, 1), got " + fmt(s.smoothing));
  if (s.num_saved_trajectories < 0)
    fail("num_saved_trajectories must be >= 0, got " +
         std::to_string(s.num_saved_trajectories));
  const Mat& S = s.noise_sigma;
  if (S.rows() != nu || S.cols() != nu)
    fail("noise_sigma has shape (" + std::to_string(S.rows()) + ", " + std::to_string(S.cols()) +
         "), expected (" + std::to_string(nu) + ", " + std::to_string(nu) + ")");
  if (!S.allFinite()) fail("noise_sigma contains non-finite values");
  if ((S - S.transpose()).cwiseAbs().maxCoeff() > 1e-12 * (1.0 + S.cwiseAbs().maxCoeff()))
    fail("noise_sigma must be symmetric");
  Eigen::LLT<Mat> llt(S);
  if (llt.info() != Eigen::Success || !(llt.matrixL().toDenseMatrix().diagonal().minCoeff() > 0.0))
    fail("noise_sigma must be positive definite (Cholesky failed)");
  if (s.u_min.size() != 0 && s.u_min.size() != nu)
    fail("u_min has size " + std::to_string(s.u_min.size()) + ", expected " + std::to_string(nu) +
         " (or empty for no limit)");
  if (s.u_max.size() != 0 && s.u_max.size() != nu)
    fail("u_max has size " + std::to_string(s.u_max.size()) + ", expected " + std::to_string(nu) +
         " (or empty for no limit)");
  if (s.u_min.hasNaN() || s.u_max.hasNaN()) fail("u_min/u_max contain NaN");
  if (s.u_min.size() == nu && s.u_max.size() == nu && (s.u_min.array() > s.u_max.array()).any())
    fail("u_min must be <= u_max in every dimension");
  if (s.tail_nominal.size() != nu)
    fail("tail_nominal has size " + std::to_string(s.tail_nominal.size()) + ", expected " +
         std::to_string(nu));
  if (!s.tail_nominal.allFinite()) fail("tail_nominal contains non-finite values");
}

MppiSolver::Worker::Worker(const MppiSolver& s)
    : step(*s.dynamics_),
      running(s.running_->create_data()),
      terminal(s.terminal_ ? s.terminal_->create_data() : nullptr),
      X(Mat::Zero(s.nx_, s.H_ + 1)),
      z(Vec::Zero(s.nu_)),
      u_terminal(Vec::Zero(s.terminal_ ? s.terminal_->nu() : 0)) {}

MppiSolver::MppiSolver(DynamicsModelPtr dynamics, CostModelPtr running_cost,
                       CostModelPtr terminal_cost, const MppiSettings& settings)
    : dynamics_(std::move(dynamics)),
      running_(std::move(running_cost)),
      terminal_(std::move(terminal_cost)),
      settings_(validated(dynamics_, running_, terminal_, settings)),
      nx_(dynamics_->nx()),
      nu_(dynamics_->nu()),
      K_(settings_.num_samples),
      H_(settings_.horizon),
      pool_(settings_.num_threads) {
  const MppiSettings& s = settings_;
  if (s.u_min.size() == 0) settings_.u_min = Vec::Constant(nu_, -kInf);
  if (s.u_max.size() == 0) settings_.u_max = Vec::Constant(nu_, kInf);
  bounded_ = (settings_.u_min.array() > -kInf).any() || (settings_.u_max.array() < kInf).any();
  Eigen::LLT<Mat> llt(s.noise_sigma);
  L_ = llt.matrixL();
  sigma_diagonal_ = L_.isDiagonal(0.0);
  Sinv_ = llt.solve(Mat::Identity(nu_, nu_));
  Sinv_ = 0.5 * (Sinv_ + Sinv_.transpose());

  workers_.reserve(s.num_threads);
  for (int w = 0; w < s.num_threads; ++w) workers_.emplace_back(*this);

  x0_ = Vec::Zero(nx_);
  U_ = Mat::Zero(nu_, H_);
  Vec u0(nu_);
  if (s.tail_fill == TailFill::Nominal) {
    u0 = s.tail_nominal;
  } else {
    u0.setZero();
  }
  clamp(u0);
  U_.colwise() = u0;
  SinvU_ = Mat::Zero(nu_, H_);
  kl0_ = Vec::Zero(H_);
  eps_.assign(K_, Mat::Zero(nu_, H_));
  V_.assign(K_, Mat::Zero(nu_, H_));
  costs_ = Vec::Zero(K_);
  result_.costs = Vec::Zero(K_);
  result_.weights = Vec::Zero(K_);
  result_.plan = U_.transpose();
  result_.nominal_states = Mat::Zero(H_ + 1, nx_);
  U_pub_ = U_;
}

void MppiSolver::clamp(Eigen::Ref<Vec> u) const {
  if (!bounded_) return;
  u = u.cwiseMax(settings_.u_min).cwiseMin(settings_.u_max);
}

void MppiSolver::set_state(const RefV& x, double t) {
  check_vector(x, nx_, "x");
  if (!std::isfinite(t)) throw std::invalid_argument("t must be finite");
  x0_ = x;
  t0_ = t;
  has_state_ = true;
}

void MppiSolver::set_rollout_models(const std::vector<DynamicsModelPtr>& models, bool average) {
  for (std::size_t i = 0; i < models.size(); ++i) {
    const auto& m = models[i];
    const std::string where = "set_rollout_models: models[" + std::to_string(i) + "]";
    if (!m) throw std::invalid_argument(where + " must not be None");
    if (m->nx() != nx_ || m->nu() != nu_)
      throw std::invalid_argument(where + " has (nx, nu) = (" + std::to_string(m->nx()) + ", " +
                                  std::to_string(m->nu()) + "), expected (" + std::to_string(nx_) +
                                  ", " + std::to_string(nu_) + ")");
    if (settings_.integrator == Integrator::SemiImplicitEuler && m->nq() == 0)
      throw std::invalid_argument(where + ": semi_implicit_euler needs a second-order model (nq > 0), got " +
                                  m->name());
  }
  rollout_models_ = models;
  rollout_average_ = average && !models.empty();
  for (Worker& w : workers_) {
    w.model_steps.clear();
    w.model_steps.reserve(models.size());
    for (const auto& m : models) w.model_steps.emplace_back(*m);
  }
}

double MppiSolver::rollout_cost(const Mat& V, Worker& w, Mat* states, bool with_kl, const Mat* E,
                                int k) {
  const MppiSettings& s = settings_;
  const bool own = k >= 0 && !rollout_models_.empty();
  const std::size_t mi = own ? static_cast<std::size_t>(k) % rollout_models_.size() : 0;
  const DynamicsModel& model = own ? *rollout_models_[mi] : *dynamics_;
  ForwardStepData& step = own ? w.model_steps[mi] : w.step;
  const double dt = s.dt;
  const int nx = nx_;
  double* X = w.X.data();  // column t = x_t
  for (int i = 0; i < nx; ++i) X[i] = x0_[i];
  double cost = 0.0, disc = 1.0;
  int done = 0;  // columns of X filled after x_0
  bool diverged = false;
  for (int t = 0; t < H_; ++t) {
    const double* xt = X + static_cast<Eigen::Index>(t) * nx;
    double* xn = X + static_cast<Eigen::Index>(t + 1) * nx;
    const auto v = V.col(t);
    running_->calc(*w.running, t0_ + t * dt, Eigen::Map<const Vec>(xt, nx), v);
    cost += disc * w.running->value * dt;
    if (with_kl) cost += kl0_[t] + E->col(t).dot(SinvU_.col(t));
    integrate_forward(model, s.integrator, dt, step, xt, v.data(), xn);
    ++done;
    bool finite = std::isfinite(cost);
    for (int i = 0; i < nx; ++i) finite = finite && std::isfinite(xn[i]);
    if (!finite) {
      diverged = true;
      break;
    }
    disc *= s.gamma;
  }
  if (states) {
    states->topRows(done + 1) = w.X.leftCols(done + 1).transpose();
    // steps after a divergence were not computed
    states->bottomRows(H_ - done).setConstant(std::numeric_limits<double>::quiet_NaN());
  }
  if (diverged) return kInf;
  if (terminal_) {
    terminal_->calc(*w.terminal, t0_ + H_ * dt,
                    Eigen::Map<const Vec>(X + static_cast<Eigen::Index>(H_) * nx, nx),
                    w.u_terminal);
    cost += disc * w.terminal->value;
  }
  return std::isfinite(cost) ? cost : kInf;
}

void MppiSolver::sample_and_rollout(int k, Worker& w) {
  const double beta = settings_.smoothing;
  const double c = std::sqrt(1.0 - beta * beta);
  SplitMix64 rng(sample_seed(settings_.seed, counter_, static_cast<std::uint64_t>(k)));
  const ZigguratNormal& normal = ZigguratNormal::instance();
  Mat& E = eps_[k];
  Mat& V = V_[k];
  const int nu = nu_;
  double* z = w.z.data();
  const double* umin = settings_.u_min.data();
  const double* umax = settings_.u_max.data();
  for (int t = 0; t < H_; ++t) {
    for (int j = 0; j < nu; ++j) {
      const double n = normal(rng);
      z[j] = t == 0 ? n : beta * z[j] + c * n;
    }
    double* e = E.col(t).data();
    double* v = V.col(t).data();
    const double* u = U_.col(t).data();
    if (sigma_diagonal_) {
      for (int i = 0; i < nu; ++i) e[i] = L_(i, i) * z[i];  // eps ~ N(0, Sigma) marginally
    } else {
      for (int i = 0; i < nu; ++i) {
        double acc = 0.0;
        for (int j = 0; j <= i; ++j) acc += L_(i, j) * z[j];
        e[i] = acc;
      }
    }
    for (int j = 0; j < nu; ++j) {
      double vj = u[j] + e[j];
      if (bounded_) vj = std::min(std::max(vj, umin[j]), umax[j]);
      v[j] = vj;
      e[j] = vj - u[j];  // clamped noise, used in the cost and the update
    }
  }
  if (rollout_average_) {
    // risk-neutral ensemble: the mean path cost over all rollout models (model m is index m)
    const int M = static_cast<int>(rollout_models_.size());
    double sum = 0.0;
    for (int m = 0; m < M; ++m) sum += rollout_cost(V, w, nullptr, true, &E, m);
    costs_[k] = std::isfinite(sum) ? sum / M : kInf;
  } else {
    costs_[k] = rollout_cost(V, w, nullptr, true, &E, k);
  }
}

const MppiResult& MppiSolver::optimize() {
  if (!has_state_) throw std::runtime_error("MppiSolver: call set_state(x, t) before optimize()");
  const MppiSettings& s = settings_;
  const double lambda = s.lambda_;
  Vec w(K_);
  int num_diverged = 0;
  double free_energy = kInf;
  for (int it = 0; it < s.num_iterations; ++it) {
    // nu * lambda * Sigma^{-1} u_t and nu * lambda/2 u_t^T Sigma^{-1} u_t (nu = 1: Eq. (16)).
    SinvU_.noalias() = (s.control_cost_weight * lambda) * (Sinv_ * U_);
    for (int t = 0; t < H_; ++t) kl0_[t] = 0.5 * U_.col(t).dot(SinvU_.col(t));
    // Dynamic split: every worker takes chunks of kChunk samples from a shared counter until
    // none are left, so a worker slowed down by other processes on its core does less of the
    // work (a static split waits for the slowest). Sample k's noise and result depend on k only
    // (not on the worker that runs it), so the outcome is bitwise the same for any thread count.
    constexpr int kChunk = 8;
    std::atomic<int> next{0};
    pool_.parallel_for(pool_.num_threads(), [this, &next](int, int worker) {
      Worker& wk = workers_[worker];
      for (int begin = next.fetch_add(kChunk, std::memory_order_relaxed); begin < K_;
           begin = next.fetch_add(kChunk, std::memory_order_relaxed)) {
        const int end = std::min(begin + kChunk, K_);
        for (int k = begin; k < end; ++k) sample_and_rollout(k, wk);
      }
    });
    ++counter_;

    // Weights (Eq. (17)) with the minimum-cost shift; free energy (Eq. (7)).
    double cmin = kInf;
    num_diverged = 0;
    for (int k = 0; k < K_; ++k) {
      if (std::isfinite(costs_[k])) {
        cmin = std::min(cmin, costs_[k]);
      } else {
        ++num_diverged;
      }
    }
    if (num_diverged == K_) {  // nothing to learn from: keep the plan
      w.setZero();
      free_energy = kInf;
      continue;
    }
    double sum = 0.0;
    for (int k = 0; k < K_; ++k) {
      w[k] = std::isfinite(costs_[k]) ? std::exp(-(costs_[k] - cmin) / lambda) : 0.0;
      sum += w[k];
    }
    w /= sum;  // sum >= 1 (the minimum contributes exp(0))
    free_energy = cmin - lambda * std::log(sum / K_);

    // Update (Eq. (18)): U <- U + alpha sum_k w_k eps_k, summed in sample order.
    Mat dU = Mat::Zero(nu_, H_);
    for (int k = 0; k < K_; ++k)
      if (w[k] > 0.0) dU += w[k] * eps_[k];
    U_ += s.step_size * dU;
    if (bounded_)
      for (int t = 0; t < H_; ++t) clamp(U_.col(t));
  }

  // Statistics of the last iteration.
  MppiResult& r = result_;
  r.free_energy = free_energy;
  r.num_diverged = num_diverged;
  r.num_iterations = s.num_iterations;
  r.t = t0_;
  r.costs = costs_;
  r.weights = w;
  double cmin = kInf, cmax = -kInf, csum = 0.0;
  int nfin = 0;
  for (int k = 0; k < K_; ++k) {
    if (!std::isfinite(costs_[k])) continue;
    cmin = std::min(cmin, costs_[k]);
    cmax = std::max(cmax, costs_[k]);
    csum += costs_[k];
    ++nfin;
  }
  r.cost_min = nfin ? cmin : kInf;
  r.cost_max = nfin ? cmax : kInf;
  r.cost_mean = nfin ? csum / nfin : kInf;
  double var = 0.0;
  for (int k = 0; k < K_; ++k)
    if (std::isfinite(costs_[k])) var += (costs_[k] - r.cost_mean) * (costs_[k] - r.cost_mean);
  r.cost_std = nfin ? std::sqrt(var / nfin) : kInf;
  const double w2 = w.squaredNorm();
  r.effective_sample_size = w2 > 0.0 ? 1.0 / w2 : 0.0;

  // Nominal rollout of the updated plan (task cost only).
  Worker& w0 = workers_[0];
  r.plan = U_.transpose();
  Mat states(H_ + 1, nx_);
  r.nominal_cost = rollout_cost(U_, w0, &states, false, nullptr, -1);
  r.nominal_states = states;

  // Highest-weight rollouts for visualisation (ties broken by sample index).
  const int n_save = std::min(s.num_saved_trajectories, K_);
  std::vector<int> order(K_);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
    const double ca = std::isfinite(costs_[a]) ? costs_[a] : kInf;
    const double cb = std::isfinite(costs_[b]) ? costs_[b] : kInf;
    return ca < cb;  // decreasing weight == increasing cost
  });
  saved_.indices.assign(order.begin(), order.begin() + n_save);
  saved_.weights.resize(n_save);
  saved_.costs.resize(n_save);
  saved_.states.assign(n_save, Mat());
  saved_.controls.assign(n_save, Mat());
  for (int i = 0; i < n_save; ++i) {
    const int k = saved_.indices[i];
    saved_.weights[i] = w[k];
    saved_.costs[i] = costs_[k];
    Mat xs(H_ + 1, nx_);
    rollout_cost(V_[k], w0, &xs, false, nullptr, rollout_average_ ? 0 : k);
    saved_.states[i] = xs;
    saved_.controls[i] = V_[k].transpose();
  }

  publish();
  return result_;
}

void MppiSolver::publish() {
  std::unique_lock<std::shared_mutex> lock(pub_mutex_);
  U_pub_ = U_;
  t_pub_ = t0_;
}

Vec MppiSolver::action_from_policy() const {
  std::shared_lock<std::shared_mutex> lock(pub_mutex_);
  return U_pub_.col(0);
}

Vec MppiSolver::action_from_policy(double t) const {
  if (!std::isfinite(t)) throw std::invalid_argument("t must be finite");
  std::shared_lock<std::shared_mutex> lock(pub_mutex_);
  const double idx = std::floor((t - t_pub_) / settings_.dt + 1e-9);
  const int i = static_cast<int>(std::clamp(idx, 0.0, static_cast<double>(H_ - 1)));
  return U_pub_.col(i);
}

void MppiSolver::set_plan(const RefM& plan) {
  check_shape(plan, H_, nu_, "plan");
  check_finite(plan, "plan");
  U_ = plan.transpose();
  if (bounded_)
    for (int t = 0; t < H_; ++t) clamp(U_.col(t));
  std::unique_lock<std::shared_mutex> lock(pub_mutex_);
  U_pub_ = U_;
  t_pub_ = t0_;
}

void MppiSolver::fill_tail_value(Vec& u) const {
  switch (settings_.tail_fill) {
    case TailFill::RepeatLast: u = U_.col(H_ - 1); break;
    case TailFill::Zero: u.setZero(); break;
    case TailFill::Nominal: u = settings_.tail_nominal; break;
  }
  clamp(u);
}

void MppiSolver::shift(int num_steps) {
  if (num_steps < 0) throw std::invalid_argument("shift: num_steps must be >= 0");
  if (num_steps == 0) return;
  Vec fill(nu_);
  fill_tail_value(fill);
  const int keep = std::max(0, H_ - num_steps);
  for (int t = 0; t < keep; ++t) U_.col(t) = U_.col(t + num_steps);
  for (int t = keep; t < H_; ++t) U_.col(t) = fill;
  std::unique_lock<std::shared_mutex> lock(pub_mutex_);
  U_pub_ = U_;
  t_pub_ += num_steps * settings_.dt;
}

}  // namespace dmpc
