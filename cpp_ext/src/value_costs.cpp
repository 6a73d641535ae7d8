/// @file value_costs.cpp
/// @brief Deep Value MPC terminal and running costs (Eqs. (13)-(14) of deep-value-mpc).
#include "dmpc/value_costs.hpp"

#include <algorithm>
#include <cmath>

namespace dmpc {

namespace {
void check_t_goal(double t_goal) {
  if (!std::isfinite(t_goal)) throw std::invalid_argument("t_goal must be finite");
}
// Time-to-go of a node at absolute time t, clamped at zero: the episode ends at t_goal, and a
// node beyond it (the last H of an episode) sees the termination value V(0, x) (Eq. (4)'s
// q_f, which the critic is trained to equal at tau = 0). The critic is never queried at
// tau < 0, where it has no data.
inline double time_to_go(double t_goal, double t) { return std::max(t_goal - t, 0.0); }
ValueTerminalCostData& terminal_cast(CostData& data) {
  auto* d = data_cast<ValueTerminalCostData>(&data);
  if (d == nullptr) throw std::invalid_argument("ValueTerminalCost: data not created by create_data()");
  return *d;
}
// True when the symmetric matrix S is positive semi-definite: by Sylvester's law of inertia
// the pivoted LDL^T of S has as many negative pivots as S has negative eigenvalues. Pivots down
// to -1e-12 max|D| count as zero (rounding in a singular PSD matrix; clipping such an eigenvalue
// would change lxx by that much). A failed factorisation (zero pivot with a non-zero column,
// e.g. [[0, 1], [1, 0]]) is reported as not PSD, so the eigendecomposition decides.
bool psd_by_ldlt(Eigen::LDLT<Mat>& ldlt, const Mat& S) {
  ldlt.compute(S);
  if (ldlt.info() != Eigen::Success) return false;
  const auto& D = ldlt.vectorD();
  return D.minCoeff() >= -1e-12 * D.cwiseAbs().maxCoeff();
}
template <class C>
void check_critic(const C& critic) {
  if (!critic) throw std::invalid_argument("critic must not be None");
}
}  // namespace

// ---------------------------------------------------------------- ValueTerminalCost
ValueTerminalCost::ValueTerminalCost(CriticModelPtr critic, double t_goal, int nu)
    : CostModel(critic ? critic->nx() : 1, nu), critic_(std::move(critic)), t_goal_(t_goal) {
  check_critic(critic_);
  check_t_goal(t_goal);
}

void ValueTerminalCost::set_t_goal(double t_goal) {
  check_t_goal(t_goal);
  t_goal_ = t_goal;
}

std::shared_ptr<CostData> ValueTerminalCost::create_data() const {
  return std::make_shared<ValueTerminalCostData>(nx_, nu_, critic_->create_data());
}

void ValueTerminalCost::calc(CostData& data, double t, const RefV& x, const RefV&) const {
  ValueTerminalCostData& d = terminal_cast(data);
  critic_->calc(*d.critic, time_to_go(t_goal_, t), x);
  d.value = d.critic->V;
}

void ValueTerminalCost::calc_diff(CostData& data, double t, const RefV& x, const RefV&) const {
  ValueTerminalCostData& d = terminal_cast(data);
  critic_->calc_diff(*d.critic, time_to_go(t_goal_, t), x);
  d.value = d.critic->V;
  d.lx = d.critic->Vx;
  d.lxx = d.critic->Vxx;
  d.lu.setZero();
  d.luu.setZero();
  d.lux.setZero();
}

// ---------------------------------------------------------------- ValueRunningCost
ValueRunningCostData::ValueRunningCostData(int nx, int nu, std::shared_ptr<CriticData> c,
                                           std::shared_ptr<DynamicsData> d0,
                                           std::shared_ptr<DynamicsData> dj)
    : CostData(nx, nu),
      critic(std::move(c)),
      dyn0(std::move(d0)),
      dynj(std::move(dj)),
      u0(Vec::Zero(nu)),
      ej(Vec::Zero(nu)),
      f(Vec::Zero(nx)),
      y(Vec::Zero(nu)),
      w(Vec::Zero(nu)),
      A(Mat::Zero(nu, nx)),
      Dgw(Mat::Zero(nx, nx)),
      M(Mat::Zero(nx, nx)),
      B2(Mat::Zero(nu, nx)),
      RiB2(Mat::Zero(nu, nx)),
      v(Vec::Zero(nx)),
      xp(Vec::Zero(nx)),
      Kfd(Mat::Zero(nx, nx)),
      eig(nx),
      ldlt(nx),
      evals(Vec::Zero(nx)) {}

ValueRunningCost::ValueRunningCost(CriticModelPtr critic, DynamicsModelPtr dynamics, const RefM& R,
                                   double t_goal, bool project_psd, ThirdOrder third_order)
    : CostModel(critic ? critic->nx() : 1, dynamics ? dynamics->nu() : 0),
      critic_(std::move(critic)),
      dynamics_(std::move(dynamics)),
      t_goal_(t_goal),
      project_psd_(project_psd),
      third_order_(third_order) {
  check_critic(critic_);
  if (!dynamics_) throw std::invalid_argument("dynamics must not be None");
  if (dynamics_->nx() != critic_->nx()) {
    std::ostringstream os;
    os << "ValueRunningCost: critic.nx = " << critic_->nx() << " but dynamics.nx = " << dynamics_->nx();
    throw std::invalid_argument(os.str());
  }
  check_t_goal(t_goal);
  check_shape(R, nu_, nu_, "R");
  check_finite(R, "R");
  if ((R - R.transpose()).cwiseAbs().maxCoeff() > 1e-12 * (1.0 + R.cwiseAbs().maxCoeff()))
    throw std::invalid_argument("R must be symmetric");
  Eigen::LLT<Mat> llt(R);
  if (llt.info() != Eigen::Success) throw std::invalid_argument("R must be positive definite");
  R_ = R;
  Rinv_ = llt.solve(Mat::Identity(nu_, nu_));
  Rinv_ = 0.5 * (Rinv_ + Rinv_.transpose()).eval();
}

void ValueRunningCost::set_t_goal(double t_goal) {
  check_t_goal(t_goal);
  t_goal_ = t_goal;
}

std::shared_ptr<CostData> ValueRunningCost::create_data() const {
  auto d = std::make_shared<ValueRunningCostData>(nx_, nu_, critic_->create_data(),
                                                  dynamics_->create_data(), dynamics_->create_data());
  d->critic_fd = critic_->create_data();
  return d;
}

ValueRunningCostData& ValueRunningCost::cast(CostData& data) const {
  auto* d = data_cast<ValueRunningCostData>(&data);
  if (d == nullptr) throw std::invalid_argument("ValueRunningCost: data not created by create_data()");
  return *d;
}

void ValueRunningCost::calc(CostData& data, double t, const RefV& x, const RefV&) const {
  ValueRunningCostData& d = cast(data);
  CriticData& c = *d.critic;
  const bool ended = t >= t_goal_;  // V(tau <= 0, x) = V(0, x): constant in time there
  critic_->calc_grad(c, time_to_go(t_goal_, t), x);
  if (ended) c.Vtau = 0.0;
  // f(x) and y = g(x)^T Vx only (the model's hook; no state Jacobians on the rollout path)
  dynamics_->calc_drift_input_projection(*d.dyn0, x, c.Vx, d.ej, d.f, d.y);
  d.w.noalias() = Rinv_ * d.y;
  // l = -dV/dt - f^T Vx + 1/2 Vx^T g R^-1 g^T Vx, with dV/dt = -dV/dtau
  d.value = c.Vtau - d.f.dot(c.Vx) + 0.5 * d.y.dot(d.w);
}

void ValueRunningCost::calc_diff(CostData& data, double t, const RefV& x, const RefV&) const {
  ValueRunningCostData& d = cast(data);
  CriticData& c = *d.critic;
  const double tau = time_to_go(t_goal_, t);
  const bool ended = t >= t_goal_;  // V(tau <= 0, x) = V(0, x): no tau dependence there
  critic_->calc_diff(c, tau, x);
  if (ended) {
    c.Vtau = 0.0;
    c.Vtaux.setZero();
  }
  dynamics_->calc_diff(*d.dyn0, x, d.u0);  // fills xdot = f(x) too (DynamicsModel contract)
  d.f = d.dyn0->xdot;
  const Mat& fx0 = d.dyn0->fx;
  const Mat& g = d.dyn0->fu;
  const Vec& p = c.Vx;
  const Mat& H = c.Vxx;
  d.y.noalias() = g.transpose() * p;
  d.w.noalias() = Rinv_ * d.y;
  d.value = c.Vtau - d.f.dot(p) + 0.5 * d.y.dot(d.w);

  // A_j = p^T d g_j / dx,  Dgw = sum_j w_j d g_j / dx (the model's hook; its default uses
  // d g_j / dx = fx(x, e_j) - fx(x, 0)).
  dynamics_->calc_input_jacobians(*d.dyn0, *d.dynj, x, p, d.w, d.ej, d.A, d.Dgw);

  // Gradient (exact).
  d.lx = c.Vtaux;
  d.lx.noalias() -= fx0.transpose() * p;
  d.v.noalias() = g * d.w;
  d.v -= d.f;  // v = g w - f
  d.lx.noalias() += H * d.v;
  d.lx.noalias() += d.A.transpose() * d.w;

  // Hessian. Small dense products written as contiguous-column loops (Eigen's dynamic-size
  // GEMM path costs more than the arithmetic at nx ~ 10); only the lower triangle is formed.
  const Eigen::Index n = nx_, m = nu_;
  for (Eigen::Index c = 0; c < n; ++c)  // B2 = A + g^T H  (nu x nx)
    for (Eigen::Index j = 0; j < m; ++j) d.B2(j, c) = d.A(j, c) + g.col(j).dot(H.col(c));
  d.RiB2.noalias() = Rinv_.lazyProduct(d.B2);
  d.M = fx0 - d.Dgw;
  // (H M)(r, c) = H.col(r) . M.col(c) since H is symmetric: contiguous dot products.
  {  // lxx = B2^T R^-1 B2 - (H M + (H M)^T), lower part (raw loops: no per-call overhead)
    const double* __restrict Hp = H.data();
    const double* __restrict Mp = d.M.data();
    const double* __restrict Bp = d.B2.data();
    const double* __restrict RBp = d.RiB2.data();
    double* __restrict L = d.lxx.data();
    for (Eigen::Index c = 0; c < n; ++c) {
      for (Eigen::Index r = c; r < n; ++r) {
        double acc = 0.0;
        for (Eigen::Index j = 0; j < m; ++j) acc += Bp[r * m + j] * RBp[c * m + j];
        for (Eigen::Index k = 0; k < n; ++k) acc -= Hp[r * n + k] * Mp[c * n + k] + Hp[c * n + k] * Mp[r * n + k];
        L[c * n + r] = acc;
      }
    }
  }
  for (Eigen::Index c = 0; c < n; ++c)
    for (Eigen::Index r = c + 1; r < n; ++r) d.lxx(c, r) = d.lxx(r, c);
  const bool exact = third_order_ == ThirdOrder::Auto && critic_->provides_third();
  if (exact) {
    critic_->calc_third(c, tau, x, d.v, ended ? 0.0 : 1.0);
    d.lxx += c.Kv;
  } else if (third_order_ != ThirdOrder::Drop) {
    // K(v) = d/de Vxx(x + e v, tau + e v_tau): central difference, v_tau = 1 (0 past the
    // episode end, where V does not depend on tau).
    const double vtau = ended ? 0.0 : 1.0;
    const double scale = std::max({1.0, x.cwiseAbs().maxCoeff(), std::abs(tau)});
    const double h = std::cbrt(Eigen::NumTraits<double>::epsilon()) * scale /
                     std::max(1.0, d.v.cwiseAbs().maxCoeff());
    CriticData& cf = *d.critic_fd;
    d.xp = x + h * d.v;
    critic_->calc_diff(cf, tau + h * vtau, d.xp);
    d.Kfd = cf.Vxx;
    d.xp = x - h * d.v;
    critic_->calc_diff(cf, std::max(tau - h * vtau, 0.0), d.xp);
    d.Kfd -= cf.Vxx;
    d.lxx += (0.5 / h) * d.Kfd;
  }
  for (Eigen::Index col = 0; col < nx_; ++col)
    for (Eigen::Index r = col + 1; r < nx_; ++r)
      d.lxx(r, col) = d.lxx(col, r) = 0.5 * (d.lxx(r, col) + d.lxx(col, r));
  if (project_psd_ && !psd_by_ldlt(d.ldlt, d.lxx)) {
    d.eig.compute(d.lxx);
    d.evals = d.eig.eigenvalues().cwiseMax(0.0);
    d.M.noalias() = d.eig.eigenvectors() * d.evals.asDiagonal();  // reuse M as scratch
    d.lxx.noalias() = d.M * d.eig.eigenvectors().transpose();
  }
  d.lu.setZero();
  d.luu.setZero();
  d.lux.setZero();
}

}  // namespace dmpc
