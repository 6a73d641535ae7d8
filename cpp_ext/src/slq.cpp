#include "dmpc/slq.hpp"

#include <Eigen/Cholesky>
#include <chrono>
#include <cmath>

namespace dmpc {

void SlqSettings::validate() const {
  if (max_iterations < 1) throw std::invalid_argument("SlqSettings.max_iterations must be >= 1");
  if (num_threads < 1) throw std::invalid_argument("SlqSettings.num_threads must be >= 1");
  if (max_line_search < 1) throw std::invalid_argument("SlqSettings.max_line_search must be >= 1");
  if (!(mu_init >= 0) || !(mu_max > 0) || !(mu_factor > 1) || !(mu_min >= 0))
    throw std::invalid_argument("SlqSettings: need mu_init >= 0, mu_min >= 0, mu_max > 0, mu_factor > 1");
  if (!(armijo >= 0 && armijo < 1)) throw std::invalid_argument("SlqSettings.armijo must be in [0, 1)");
  if (!(tol_expected >= 0) || !(tol_relative >= 0))
    throw std::invalid_argument("SlqSettings: tolerances must be >= 0");
}

std::string to_string(SlqStatus s) {
  switch (s) {
    case SlqStatus::NotSolved: return "not_solved";
    case SlqStatus::Converged: return "converged";
    case SlqStatus::MaxIterations: return "max_iterations";
    case SlqStatus::LineSearchFailed: return "line_search_failed";
    case SlqStatus::Diverged: return "diverged";
  }
  return "unknown";
}

SlqSolver::Node::Node(const Problem& p) : step(p.dynamics()) {
  cost = p.running() ? p.running()->create_data() : std::make_shared<CostData>(p.nx(), p.nu());
}

SlqSolver::SlqSolver(ProblemPtr problem, SlqSettings settings)
    : problem_(std::move(problem)),
      settings_(settings),
      scratch_step_(problem_ ? problem_->dynamics() : throw std::invalid_argument("SlqSolver: problem is None")),
      mu_(settings.mu_init) {
  settings_.validate();
  pool_ = std::make_unique<ThreadPool>(settings_.num_threads);
  const Problem& p = *problem_;
  const int N = p.horizon(), nx = p.nx(), nu = p.nu();
  nodes_.reserve(N);
  for (int k = 0; k < N; ++k) nodes_.emplace_back(p);
  terminal_data_ = p.terminal() ? p.terminal()->create_data() : std::make_shared<CostData>(nx, nu);
  scratch_cost_ = p.running() ? p.running()->create_data() : std::make_shared<CostData>(nx, nu);
  X_ = Mat::Zero(N + 1, nx);
  U_ = Mat::Zero(N, nu);
  X_trial_ = X_;
  U_trial_ = U_;
  lx_.assign(N, Vec::Zero(nx));
  lu_.assign(N, Vec::Zero(nu));
  lxx_.assign(N, Mat::Zero(nx, nx));
  luu_.assign(N, Mat::Zero(nu, nu));
  lux_.assign(N, Mat::Zero(nu, nx));
  kff_.assign(N, Vec::Zero(nu));
  Kfb_.assign(N, Mat::Zero(nu, nx));
  Vx_ = Vec::Zero(nx);
  Vxx_ = Mat::Zero(nx, nx);
  riccati_.resize(nx, nu);
}

void SlqSolver::set_settings(const SlqSettings& s) {
  s.validate();
  if (s.num_threads != settings_.num_threads) pool_ = std::make_unique<ThreadPool>(s.num_threads);
  settings_ = s;
  policy_.interpolation = s.interpolation;
}

void SlqSolver::reset() {
  policy_ = Policy();
  result_ = SlqResult();
}

void SlqSolver::set_controls(const RefM& U) {
  const Problem& p = *problem_;
  check_shape(U, p.horizon(), p.nu(), "U");
  check_finite(U, "U");
  Policy pol;
  pol.t0 = policy_.empty() ? 0.0 : policy_.t0;
  pol.dt = p.dt();
  pol.u_ff = U;
  pol.x_nom = Mat::Zero(p.horizon() + 1, p.nx());
  pol.K.assign(p.horizon(), Mat::Zero(p.nu(), p.nx()));
  pol.interpolation = settings_.interpolation;
  policy_ = std::move(pol);
}

void SlqSolver::set_policy(const Policy& pol) {
  const Problem& p = *problem_;
  const int N = p.horizon(), nx = p.nx(), nu = p.nu();
  check_shape(pol.u_ff, N, nu, "policy.u_ff");
  check_shape(pol.x_nom, N + 1, nx, "policy.x_nom");
  if (static_cast<int>(pol.K.size()) != N)
    throw std::invalid_argument("policy.K has " + std::to_string(pol.K.size()) + " gains, expected " +
                                std::to_string(N));
  for (const auto& K : pol.K) {
    check_shape(K, nu, nx, "policy.K[k]");
    check_finite(K, "policy.K[k]");
  }
  check_finite(pol.u_ff, "policy.u_ff");
  check_finite(pol.x_nom, "policy.x_nom");
  if (std::abs(pol.dt - p.dt()) > 1e-12)
    throw std::invalid_argument("policy.dt does not match the problem's dt");
  policy_ = pol;
  policy_.interpolation = settings_.interpolation;
}

void SlqSolver::shift(double t_new0) {
  if (!std::isfinite(t_new0)) throw std::invalid_argument("shift: t must be finite");
  if (!policy_.empty()) policy_ = policy_.shifted(t_new0);
}

double SlqSolver::stage_cost(int k, double t, const RefV& x, const RefV& u, CostData& cd) const {
  const Problem& p = *problem_;
  double l = 0.0;
  if (p.running()) {
    p.running()->calc(cd, t, x, u);
    l = p.discount_factor(k) * cd.value;
  }
  return p.dt() * (l + 0.5 * u.dot(p.control_weight() * u));
}

double SlqSolver::terminal_cost(double t, const RefV& x, CostData& cd) const {
  const Problem& p = *problem_;
  if (!p.terminal()) return 0.0;
  p.terminal()->calc(cd, t, x, Vec::Zero(p.nu()));
  return p.discount_factor(p.horizon()) * cd.value;
}

// Closed-loop rollout u_k = u_ff_k + alpha kff_k + K_k (x_k - x_nom_k); alpha = 0 rolls out `pol`.
double SlqSolver::rollout(const Policy& pol, const RefV& x0, double t0, double alpha, Mat& X, Mat& U) {
  const Problem& p = *problem_;
  const int N = p.horizon();
  const double dt = p.dt();
  X.row(0) = x0.transpose();
  double J = 0.0;
  Vec x(p.nx()), u(p.nu());
  for (int k = 0; k < N; ++k) {
    x = X.row(k).transpose();
    u = pol.u_ff.row(k).transpose();
    if (alpha != 0.0) u += alpha * kff_[k];
    u.noalias() += pol.K[k] * (x - pol.x_nom.row(k).transpose());
    if (!u.allFinite()) return std::numeric_limits<double>::quiet_NaN();
    U.row(k) = u.transpose();
    J += stage_cost(k, t0 + k * dt, x, u, *scratch_cost_);
    integrate(p.dynamics(), p.integrator(), dt, scratch_step_, x, u);
    if (!scratch_step_.x_next.allFinite()) return std::numeric_limits<double>::quiet_NaN();
    X.row(k + 1) = scratch_step_.x_next.transpose();
  }
  J += terminal_cost(t0 + N * dt, X.row(N).transpose(), *terminal_data_);
  return std::isfinite(J) ? J : std::numeric_limits<double>::quiet_NaN();
}

void SlqSolver::lq_approximation(double t0) {
  const Problem& p = *problem_;
  const int N = p.horizon();
  const double dt = p.dt();
  const Mat& R = p.control_weight();
  pool_->parallel_for(N, [&](int k, int) {
    Node& n = nodes_[k];
    const Vec x = X_.row(k).transpose();
    const Vec u = U_.row(k).transpose();
    integrate_diff(p.dynamics(), p.integrator(), dt, n.step, x, u);
    const double w = dt * p.discount_factor(k);
    if (p.running()) {
      p.running()->calc_diff(*n.cost, t0 + k * dt, x, u);
      lx_[k] = w * n.cost->lx;
      lu_[k] = w * n.cost->lu;
      lxx_[k] = w * n.cost->lxx;
      luu_[k] = w * n.cost->luu;
      lux_[k] = w * n.cost->lux;
    } else {
      lx_[k].setZero();
      lu_[k].setZero();
      lxx_[k].setZero();
      luu_[k].setZero();
      lux_[k].setZero();
    }
    lu_[k].noalias() += dt * (R * u);
    luu_[k] += dt * R;
  });
  if (p.terminal()) {
    const double wN = p.discount_factor(N);
    p.terminal()->calc_diff(*terminal_data_, t0 + N * dt, X_.row(N).transpose(), Vec::Zero(p.nu()));
    lxN_ = wN * terminal_data_->lx;
    lxxN_ = wN * terminal_data_->lxx;
  } else {
    lxN_ = Vec::Zero(p.nx());
    lxxN_ = Mat::Zero(p.nx(), p.nx());
  }
}

bool SlqSolver::backward_pass(double mu, double& dV1, double& dV2) {
  const Problem& p = *problem_;
  const int N = p.horizon();
  Vx_ = lxN_;
  Vxx_ = lxxN_;
  dV1 = 0.0;
  dV2 = 0.0;
  for (int k = N - 1; k >= 0; --k) {
    if (!riccati_step(nodes_[k].step.Fx, nodes_[k].step.Fu, nullptr, lx_[k], lu_[k], lxx_[k], luu_[k], lux_[k], mu,
                      Vx_, Vxx_, kff_[k], Kfb_[k], dV1, dV2, riccati_))
      return false;
  }
  return std::isfinite(dV1) && std::isfinite(dV2);
}

namespace {
using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}
}  // namespace

SlqResult SlqSolver::solve(const RefV& x0, double t0) {
  const Problem& p = *problem_;
  check_vector(x0, p.nx(), "x0");
  if (!std::isfinite(t0)) throw std::invalid_argument("t0 must be finite");
  const auto start = std::chrono::steady_clock::now();
  const int N = p.horizon(), nx = p.nx(), nu = p.nu();
  SlqResult res;

  // Initial guess: the current policy shifted to t0 (warm start), or zero controls.
  if (policy_.empty()) {
    set_controls(Mat::Zero(N, nu));
    policy_.t0 = t0;
  } else if (std::abs(policy_.t0 - t0) > 1e-12) {
    policy_ = policy_.shifted(t0);
  }
  const Policy previous = policy_;

  auto tic = Clock::now();
  double J = rollout(policy_, x0, t0, 0.0, X_, U_);
  res.time_rollout += seconds_since(tic);
  res.initial_cost = J;
  if (!std::isfinite(J)) {
    res.status = SlqStatus::Diverged;
    res.message = "the rollout of the current policy from x0 is not finite; policy kept";
    res.cost = J;
    res.solve_time = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    result_ = res;
    return res;
  }
  double mu = settings_.mu_init;
  bool improved = false, have_gains = false;
  res.status = SlqStatus::MaxIterations;
  for (int it = 0; it < settings_.max_iterations; ++it) {
    res.iterations = it + 1;
    tic = Clock::now();
    lq_approximation(t0);
    res.time_lq += seconds_since(tic);
    double dV1 = 0.0, dV2 = 0.0;
    bool ok = false;
    tic = Clock::now();
    while (!(ok = backward_pass(mu, dV1, dV2))) {
      mu = std::max(mu * settings_.mu_factor, std::max(settings_.mu_min, 1e-8));
      if (mu > settings_.mu_max) break;
    }
    res.time_backward += seconds_since(tic);
    if (!ok) {
      res.status = SlqStatus::LineSearchFailed;
      res.message = "Q_uu not positive definite up to mu_max";
      break;
    }
    have_gains = true;
    const double expected = -(dV1 + dV2);
    res.expected_decrease = expected;
    if (expected < settings_.tol_expected * (1.0 + std::abs(J))) {
      res.status = SlqStatus::Converged;
      res.cost_history.push_back(J);
      break;
    }
    // Line search on the feedforward step around the nominal (X_, U_) with the new gains.
    candidate_.t0 = t0;
    candidate_.dt = p.dt();
    candidate_.u_ff = U_;
    candidate_.x_nom = X_;
    candidate_.K = Kfb_;
    double alpha = 1.0, J_new = J;
    bool accepted = false;
    for (int ls = 0; ls < settings_.max_line_search; ++ls, alpha *= 0.5) {
      tic = Clock::now();
      J_new = rollout(candidate_, x0, t0, alpha, X_trial_, U_trial_);
      res.time_rollout += seconds_since(tic);
      const double predicted = -(alpha * dV1 + alpha * alpha * dV2);
      if (std::isfinite(J_new) && J - J_new >= settings_.armijo * predicted && J_new <= J) {
        accepted = true;
        break;
      }
    }
    if (accepted) {
      const double rel = (J - J_new) / std::max(std::abs(J), 1e-12);
      X_.swap(X_trial_);
      U_.swap(U_trial_);
      J = J_new;
      improved = true;
      res.cost_history.push_back(J);
      mu /= settings_.mu_factor;
      if (mu < settings_.mu_min) mu = 0.0;
      if (rel < settings_.tol_relative) {
        res.status = SlqStatus::Converged;
        break;
      }
    } else {
      res.cost_history.push_back(J);
      mu = std::max(mu * settings_.mu_factor, 1e-6);
      if (mu > settings_.mu_max) {
        res.status = SlqStatus::LineSearchFailed;
        res.message = "no step decreased the cost up to mu_max";
        break;
      }
    }
  }
  mu_ = mu;
  res.mu = mu;
  if ((improved || res.status == SlqStatus::Converged) && have_gains) {
    policy_.t0 = t0;
    policy_.dt = p.dt();
    policy_.u_ff = U_;
    policy_.x_nom = X_;
    policy_.K = Kfb_;
    policy_.interpolation = settings_.interpolation;
    res.cost = J;
  } else {
    policy_ = previous;  // keep the last good policy
    res.cost = J;
    if (res.status == SlqStatus::MaxIterations) res.status = SlqStatus::LineSearchFailed;
  }
  (void)nx;
  res.solve_time = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  result_ = res;
  return res;
}

double SlqSolver::evaluate(const RefV& x0, const RefM& U, double t0) {
  const Problem& p = *problem_;
  check_vector(x0, p.nx(), "x0");
  check_shape(U, p.horizon(), p.nu(), "U");
  check_finite(U, "U");
  Policy pol;
  pol.t0 = t0;
  pol.dt = p.dt();
  pol.u_ff = U;
  pol.x_nom = Mat::Zero(p.horizon() + 1, p.nx());
  pol.K.assign(p.horizon(), Mat::Zero(p.nu(), p.nx()));
  Mat X(p.horizon() + 1, p.nx()), Uo(p.horizon(), p.nu());
  return rollout(pol, x0, t0, 0.0, X, Uo);
}

}  // namespace dmpc
