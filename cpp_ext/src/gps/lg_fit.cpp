#include "dmpc/gps/lg_fit.hpp"

#include <Eigen/Cholesky>
#include <cmath>

namespace dmpc::gps {

void GmmPriorSettings::validate() const {
  if (max_clusters < 2) throw std::invalid_argument("GmmPriorSettings.max_clusters must be >= 2");
  if (min_samples_per_cluster < 1) throw std::invalid_argument("GmmPriorSettings.min_samples_per_cluster must be >= 1");
  if (max_samples < 1) throw std::invalid_argument("GmmPriorSettings.max_samples must be >= 1");
  if (!(strength >= 0) || !std::isfinite(strength)) throw std::invalid_argument("GmmPriorSettings.strength must be >= 0");
  if (max_iterations < 1) throw std::invalid_argument("GmmPriorSettings.max_iterations must be >= 1");
}

GmmPrior::GmmPrior(GmmPriorSettings settings, std::uint64_t seed) : settings_(settings), gmm_(true, seed) {
  settings_.validate();
}

void GmmPrior::update(const std::vector<Mat>& trajectories) {
  if (trajectories.empty()) throw std::invalid_argument("GmmPrior.update: no trajectories");
  const Eigen::Index D = data_.empty() ? trajectories[0].cols() : data_.front().cols();
  for (const auto& tr : trajectories) {
    if (tr.cols() != D || tr.rows() < 1)
      throw std::invalid_argument("GmmPrior.update: every trajectory must be a (rows >= 1) x " + std::to_string(D) +
                                  " matrix of points");
    check_finite(tr, "GmmPrior.update trajectory");
  }
  for (const auto& tr : trajectories) data_.push_back(tr);
  while (static_cast<int>(data_.size()) > settings_.max_samples) data_.pop_front();
  Eigen::Index rows = 0;
  for (const auto& tr : data_) rows += tr.rows();
  Mat all(rows, D);
  Eigen::Index r = 0;
  for (const auto& tr : data_) {
    all.middleRows(r, tr.rows()) = tr;
    r += tr.rows();
  }
  const int K = std::max(2, std::min(settings_.max_clusters,
                                     static_cast<int>(std::floor(static_cast<double>(rows) /
                                                                 settings_.min_samples_per_cluster))));
  gmm_.update(all, K, settings_.max_iterations);
}

NiwPrior GmmPrior::eval(const RefM& pts) const {
  if (!fitted()) throw std::invalid_argument("GmmPrior.eval: the prior has no data yet (call update first)");
  return gmm_.inference(pts, settings_.strength);
}

ConditionalGaussian gauss_fit_joint_prior(const RefM& pts, const std::optional<NiwPrior>& prior, int dx,
                                          const RefM& sig_reg) {
  const Eigen::Index N = pts.rows(), D = pts.cols();
  if (N < 1) throw std::invalid_argument("gauss_fit_joint_prior: need at least one point");
  if (dx < 1 || dx >= D) throw std::invalid_argument("gauss_fit_joint_prior: need 1 <= dx < number of columns");
  check_finite(pts, "gauss_fit_joint_prior pts");
  check_shape(sig_reg, D, D, "sig_reg");
  const Vec mun = pts.colwise().mean().transpose();
  const Mat diff = pts.rowwise() - mun.transpose();
  Mat empsig = diff.transpose() * diff / static_cast<double>(N);
  empsig = 0.5 * (empsig + empsig.transpose()).eval();
  Mat sigma;
  const double n = static_cast<double>(N);
  if (prior) {
    check_vector(prior->mu0, D, "prior.mu0");
    check_shape(prior->Phi, D, D, "prior.Phi");
    const Vec d = mun - prior->mu0;
    const double mix = (prior->m > 0) ? n * prior->m / (n + prior->m) : 0.0;
    sigma = (n * empsig + prior->Phi + mix * d * d.transpose()) / (n + prior->n0);
  } else {
    sigma = empsig;
  }
  sigma = 0.5 * (sigma + sigma.transpose()).eval();
  sigma += sig_reg;
  const Eigen::Index dy = D - dx;
  Eigen::LDLT<Mat> ldlt(sigma.topLeftCorner(dx, dx));
  if (ldlt.info() != Eigen::Success) throw std::runtime_error("gauss_fit_joint_prior: input covariance factorisation failed");
  ConditionalGaussian out;
  out.F = ldlt.solve(sigma.topRightCorner(dx, dy)).transpose();
  out.f = mun.tail(dy) - out.F * mun.head(dx);
  out.cov = sigma.bottomRightCorner(dy, dy) - out.F * sigma.topLeftCorner(dx, dx) * out.F.transpose();
  out.cov = 0.5 * (out.cov + out.cov.transpose()).eval();
  if (!out.F.allFinite() || !out.f.allFinite() || !out.cov.allFinite())
    throw std::runtime_error("gauss_fit_joint_prior: the fit is not finite (singular input covariance; "
                             "add regularisation or a prior)");
  return out;
}

Mat dynamics_points(const RefM& X, const RefM& U) {
  if (X.rows() != U.rows() || X.rows() < 2)
    throw std::invalid_argument("dynamics_points: X and U need the same number (>= 2) of rows");
  const Eigen::Index T = X.rows(), nx = X.cols(), nu = U.cols();
  Mat P(T - 1, 2 * nx + nu);
  P.leftCols(nx) = X.topRows(T - 1);
  P.middleCols(nx, nu) = U.topRows(T - 1);
  P.rightCols(nx) = X.bottomRows(T - 1);
  return P;
}

namespace {
void check_batch(const std::vector<Mat>& A, const std::vector<Mat>& B, const char* a, const char* b) {
  if (A.empty()) throw std::invalid_argument(std::string(a) + ": no trajectories");
  if (A.size() != B.size())
    throw std::invalid_argument(std::string(a) + " and " + b + " hold different numbers of trajectories");
  for (size_t i = 0; i < A.size(); ++i) {
    check_shape(A[i], A[0].rows(), A[0].cols(), a);
    check_shape(B[i], A[0].rows(), B[0].cols(), b);
    check_finite(A[i], a);
    check_finite(B[i], b);
  }
}
}  // namespace

LinearGaussianDynamics fit_dynamics(const std::vector<Mat>& X, const std::vector<Mat>& U, const GmmPrior* prior,
                                    double regularization, double x0_var_min) {
  check_batch(X, U, "X", "U");
  if (!(regularization >= 0) || !(x0_var_min >= 0)) throw std::invalid_argument("fit_dynamics: regularisers must be >= 0");
  const int N = static_cast<int>(X.size()), T = static_cast<int>(X[0].rows()), nx = static_cast<int>(X[0].cols()),
            nu = static_cast<int>(U[0].cols());
  if (T < 2) throw std::invalid_argument("fit_dynamics: need trajectories of >= 2 steps");
  const bool use_prior = prior != nullptr && prior->fitted() && prior->settings().strength > 0;
  LinearGaussianDynamics dyn;
  dyn.F.resize(T - 1);
  dyn.W.resize(T - 1);
  dyn.f = Mat::Zero(T - 1, nx);
  Mat sig_reg = Mat::Zero(2 * nx + nu, 2 * nx + nu);
  sig_reg.topLeftCorner(nx + nu, nx + nu).diagonal().setConstant(regularization);
  Mat pts(N, 2 * nx + nu);
  for (int t = 0; t < T - 1; ++t) {
    for (int i = 0; i < N; ++i) {
      pts.row(i).head(nx) = X[i].row(t);
      pts.row(i).segment(nx, nu) = U[i].row(t);
      pts.row(i).tail(nx) = X[i].row(t + 1);
    }
    std::optional<NiwPrior> pr;
    if (use_prior) pr = prior->eval(pts);
    ConditionalGaussian c = gauss_fit_joint_prior(pts, pr, nx + nu, sig_reg);
    dyn.F[t] = std::move(c.F);
    dyn.f.row(t) = c.f.transpose();
    dyn.W[t] = std::move(c.cov);
  }
  Mat X0(N, nx);
  for (int i = 0; i < N; ++i) X0.row(i) = X[i].row(0);
  dyn.x0_mean = X0.colwise().mean().transpose();
  const Vec var = (X0.rowwise() - dyn.x0_mean.transpose()).colwise().squaredNorm().transpose() / N;
  dyn.x0_cov = var.cwiseMax(x0_var_min).asDiagonal();
  return dyn;
}

LinearGaussianPolicy fit_policy_linearization(const std::vector<Mat>& X, const std::vector<Mat>& MU,
                                              const std::vector<Mat>& pol_cov, const GmmPrior* prior) {
  check_batch(X, MU, "X", "MU");
  const int N = static_cast<int>(X.size()), T = static_cast<int>(X[0].rows()), nx = static_cast<int>(X[0].cols()),
            nu = static_cast<int>(MU[0].cols());
  if (pol_cov.size() != 1 && static_cast<int>(pol_cov.size()) != T)
    throw std::invalid_argument("fit_policy_linearization: pol_cov needs 1 or T entries");
  for (const auto& S : pol_cov) {
    check_shape(S, nu, nu, "pol_cov");
    check_finite(S, "pol_cov");
  }
  const bool use_prior = prior != nullptr && prior->fitted() && prior->settings().strength > 0;
  std::vector<Mat> K(T), cov(T);
  Mat k(T, nu);
  Mat pts(N, nx + nu);
  for (int t = 0; t < T; ++t) {
    for (int i = 0; i < N; ++i) {
      pts.row(i).head(nx) = X[i].row(t);
      pts.row(i).tail(nu) = MU[i].row(t);
    }
    Mat sig_reg = Mat::Zero(nx + nu, nx + nu);
    if (t == 0) sig_reg.topLeftCorner(nx, nx).diagonal().setConstant(1e-8);
    std::optional<NiwPrior> pr;
    if (use_prior) pr = prior->eval(pts);
    ConditionalGaussian c = gauss_fit_joint_prior(pts, pr, nx, sig_reg);
    K[t] = std::move(c.F);
    k.row(t) = c.f.transpose();
    cov[t] = c.cov + pol_cov[pol_cov.size() == 1 ? 0 : t];
  }
  return LinearGaussianPolicy(std::move(K), std::move(k), std::move(cov));
}

}  // namespace dmpc::gps
