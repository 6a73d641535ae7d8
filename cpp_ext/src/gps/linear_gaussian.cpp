#include "dmpc/gps/linear_gaussian.hpp"

#include <cmath>
#include <string>

namespace dmpc::gps {

namespace {
std::string at(const char* what, int t) { return std::string(what) + "[" + std::to_string(t) + "]"; }
}  // namespace

void LinearGaussianDynamics::validate(int T, int nx_, int nu_) const {
  if (T < 1) throw std::invalid_argument("LinearGaussianDynamics: horizon must be >= 1");
  check_vector(x0_mean, nx_, "dynamics.x0_mean");
  check_shape(x0_cov, nx_, nx_, "dynamics.x0_cov");
  check_finite(x0_cov, "dynamics.x0_cov");
  if (static_cast<int>(F.size()) != T - 1 || static_cast<int>(W.size()) != T - 1)
    throw std::invalid_argument("dynamics: F and W need T-1 = " + std::to_string(T - 1) + " entries, got " +
                                std::to_string(F.size()) + " and " + std::to_string(W.size()));
  check_shape(f, T - 1, nx_, "dynamics.f");
  check_finite(f, "dynamics.f");
  for (int t = 0; t < T - 1; ++t) {
    check_shape(F[t], nx_, nx_ + nu_, at("dynamics.F", t).c_str());
    check_finite(F[t], at("dynamics.F", t).c_str());
    check_shape(W[t], nx_, nx_, at("dynamics.W", t).c_str());
    check_finite(W[t], at("dynamics.W", t).c_str());
  }
}

void QuadraticCost::validate(int T, int D) const {
  if (static_cast<int>(Cm.size()) != T)
    throw std::invalid_argument("cost.Cm has " + std::to_string(Cm.size()) + " entries, expected T = " +
                                std::to_string(T));
  check_shape(cv, T, D, "cost.cv");
  check_finite(cv, "cost.cv");
  check_vector(cc, T, "cost.cc");
  for (int t = 0; t < T; ++t) {
    check_shape(Cm[t], D, D, at("cost.Cm", t).c_str());
    check_finite(Cm[t], at("cost.Cm", t).c_str());
  }
}

LinearGaussianPolicy::LinearGaussianPolicy(std::vector<Mat> K, Mat k, std::vector<Mat> cov)
    : K_(std::move(K)), k_(std::move(k)), cov_(std::move(cov)) {
  const int T = static_cast<int>(K_.size());
  if (T < 1) throw std::invalid_argument("LinearGaussianPolicy: need at least one time step");
  const int nu_ = static_cast<int>(k_.cols()), nx_ = static_cast<int>(K_[0].cols());
  if (nu_ < 1) throw std::invalid_argument("LinearGaussianPolicy: k must be T x nu with nu >= 1");
  check_shape(k_, T, nu_, "k");
  check_finite(k_, "k");
  if (static_cast<int>(cov_.size()) != T)
    throw std::invalid_argument("LinearGaussianPolicy: cov has " + std::to_string(cov_.size()) +
                                " entries, expected " + std::to_string(T));
  chol_.resize(T);
  inv_.resize(T);
  for (int t = 0; t < T; ++t) {
    check_shape(K_[t], nu_, nx_, at("K", t).c_str());
    check_finite(K_[t], at("K", t).c_str());
    check_shape(cov_[t], nu_, nu_, at("cov", t).c_str());
    check_finite(cov_[t], at("cov", t).c_str());
    if ((cov_[t] - cov_[t].transpose()).cwiseAbs().maxCoeff() > 1e-9 * (1.0 + cov_[t].cwiseAbs().maxCoeff()))
      throw std::invalid_argument(at("cov", t) + " is not symmetric");
    cov_[t] = 0.5 * (cov_[t] + cov_[t].transpose());
    Eigen::LLT<Mat> llt(cov_[t]);
    if (llt.info() != Eigen::Success) throw std::invalid_argument(at("cov", t) + " is not positive definite");
    chol_[t] = llt.matrixL();
    inv_[t] = llt.solve(Mat::Identity(nu_, nu_));
    inv_[t] = 0.5 * (inv_[t] + inv_[t].transpose());
  }
}

GaussianMarginals LinearGaussianPolicy::forward(const LinearGaussianDynamics& dyn) const {
  const int T = horizon(), nx_ = nx(), nu_ = nu(), D = nx_ + nu_;
  dyn.validate(T, nx_, nu_);
  GaussianMarginals m;
  m.mean = Mat::Zero(T, D);
  m.cov.assign(T, Mat::Zero(D, D));
  Vec mx = dyn.x0_mean;
  Mat Sx = dyn.x0_cov;
  for (int t = 0; t < T; ++t) {
    const Mat& K = K_[t];
    m.mean.row(t).head(nx_) = mx.transpose();
    m.mean.row(t).tail(nu_) = (K * mx + k_.row(t).transpose()).transpose();
    Mat& S = m.cov[t];
    const Mat SKt = Sx * K.transpose();
    S.topLeftCorner(nx_, nx_) = Sx;
    S.topRightCorner(nx_, nu_) = SKt;
    S.bottomLeftCorner(nu_, nx_) = SKt.transpose();
    S.bottomRightCorner(nu_, nu_) = K * SKt + cov_[t];
    S = 0.5 * (S + S.transpose()).eval();
    if (t + 1 < T) {
      mx = dyn.F[t] * m.mean.row(t).transpose() + dyn.f.row(t).transpose();
      Sx = dyn.F[t] * S * dyn.F[t].transpose() + dyn.W[t];
      Sx = 0.5 * (Sx + Sx.transpose()).eval();
    }
  }
  return m;
}

Vec LinearGaussianPolicy::expected_cost_per_step(const GaussianMarginals& m, const QuadraticCost& cost) const {
  const int T = horizon(), D = nx() + nu();
  cost.validate(T, D);
  if (m.mean.rows() != T || static_cast<int>(m.cov.size()) != T)
    throw std::invalid_argument("expected_cost: marginals do not have the policy's horizon");
  Vec out(T);
  for (int t = 0; t < T; ++t) {
    const Vec mu = m.mean.row(t).transpose();
    out(t) = cost.cc(t) + cost.cv.row(t).dot(mu) + 0.5 * mu.dot(cost.Cm[t] * mu) +
             0.5 * (cost.Cm[t].cwiseProduct(m.cov[t])).sum();
  }
  return out;
}

double LinearGaussianPolicy::expected_cost(const LinearGaussianDynamics& dyn, const QuadraticCost& cost) const {
  return expected_cost_per_step(forward(dyn), cost).sum();
}

Vec LinearGaussianPolicy::kl_per_step(const LinearGaussianPolicy& q, const GaussianMarginals& m) const {
  const int T = horizon(), nx_ = nx(), nu_ = nu();
  if (q.horizon() != T || q.nx() != nx_ || q.nu() != nu_)
    throw std::invalid_argument("kl: the two policies differ in horizon or sizes");
  if (m.mean.rows() != T || static_cast<int>(m.cov.size()) != T)
    throw std::invalid_argument("kl: marginals do not have the policy's horizon");
  Vec out(T);
  for (int t = 0; t < T; ++t) {
    const Mat& Pq = q.inv_[t];
    const Vec mx = m.mean.row(t).head(nx_).transpose();
    const Mat Sx = m.cov[t].topLeftCorner(nx_, nx_);
    const Mat dK = K_[t] - q.K_[t];
    const Vec dm = dK * mx + (k_.row(t) - q.k_.row(t)).transpose();
    // KL(N(a, Sp) || N(b, Sq)) = 1/2 [tr(Sq^-1 Sp) - nu + log|Sq| - log|Sp| + (a-b)^T Sq^-1 (a-b)],
    // a - b = dK x + dk averaged over x ~ N(mx, Sx).
    const double logdet_p = 2.0 * chol_[t].diagonal().array().log().sum();
    const double logdet_q = 2.0 * q.chol_[t].diagonal().array().log().sum();
    const double tr = (Pq.cwiseProduct(cov_[t])).sum();
    const double mean_term = dm.dot(Pq * dm) + ((dK.transpose() * Pq * dK).cwiseProduct(Sx)).sum();
    out(t) = 0.5 * (tr - nu_ + logdet_q - logdet_p + mean_term);
  }
  return out;
}

double LinearGaussianPolicy::kl(const LinearGaussianPolicy& q, const LinearGaussianDynamics& dyn) const {
  return kl_per_step(q, forward(dyn)).sum();
}

Vec LinearGaussianPolicy::mean_action(int t, const RefV& x) const {
  if (t < 0 || t >= horizon()) throw std::invalid_argument("mean_action: t out of range");
  check_vector(x, nx(), "x");
  return K_[t] * x + k_.row(t).transpose();
}

Policy LinearGaussianPolicy::to_policy(double t0, double dt) const {
  if (!(dt > 0) || !std::isfinite(t0)) throw std::invalid_argument("to_policy: need dt > 0 and a finite t0");
  Policy p;
  p.t0 = t0;
  p.dt = dt;
  p.u_ff = k_;
  p.x_nom = Mat::Zero(horizon() + 1, nx());
  p.K = K_;
  p.interpolation = Interpolation::ZeroOrderHold;
  return p;
}

}  // namespace dmpc::gps
