#include "dmpc/gps/gmm.hpp"

#include <Eigen/Cholesky>
#include <cmath>
#include <limits>

namespace dmpc::gps {

namespace {
constexpr double kLog2Pi = 1.8378770664093453;

/// log sum exp over a row vector
double logsumexp(const Eigen::Ref<const Eigen::RowVectorXd>& v) {
  const double m = v.maxCoeff();
  if (!std::isfinite(m)) return m;
  return m + std::log((v.array() - m).exp().sum());
}
}  // namespace

Mat Gmm::estep(const RefM& data) const {
  const int K = num_clusters(), D = dim();
  if (K == 0) throw std::invalid_argument("Gmm: not fitted yet");
  if (data.cols() != D)
    throw std::invalid_argument("Gmm: data has " + std::to_string(data.cols()) + " columns, expected " +
                                std::to_string(D));
  const Eigen::Index N = data.rows();
  Mat logobs(N, K);
  for (int i = 0; i < K; ++i) {
    Eigen::LLT<Mat> llt(sigma_[i]);
    if (llt.info() != Eigen::Success) throw std::runtime_error("Gmm: a cluster covariance is not positive definite");
    const Mat L = llt.matrixL();
    const double logdet = 2.0 * L.diagonal().array().log().sum();
    Mat diff = (data.rowwise() - mu_[i].transpose()).transpose();  // D x N
    L.triangularView<Eigen::Lower>().solveInPlace(diff);
    logobs.col(i) = (-0.5 * diff.colwise().squaredNorm().array() - 0.5 * (D * kLog2Pi + logdet) + logmass_(i))
                        .transpose();
  }
  return logobs;
}

double Gmm::log_likelihood(const RefM& data) const {
  const Mat logobs = estep(data);
  double ll = 0.0;
  for (Eigen::Index n = 0; n < logobs.rows(); ++n) ll += logsumexp(logobs.row(n));
  return ll;
}

int Gmm::update(const RefM& data, int K, int max_iterations) {
  const int N = static_cast<int>(data.rows()), D = static_cast<int>(data.cols());
  if (K < 1) throw std::invalid_argument("Gmm.update: K must be >= 1");
  if (N < 1 || D < 1) throw std::invalid_argument("Gmm.update: need a non-empty N x D data matrix");
  if (max_iterations < 1) throw std::invalid_argument("Gmm.update: max_iterations must be >= 1");
  check_finite(data, "Gmm.update data");
  N_ = N;
  ll_history_.clear();
  if (!warm_start_ || num_clusters() != K || dim() != D) {
    // random assignment of the points to the K clusters
    std::uniform_int_distribution<int> pick(0, K - 1);
    std::vector<int> cidx(N);
    for (int n = 0; n < N; ++n) cidx[n] = pick(rng_);
    mu_.assign(K, Vec::Zero(D));
    sigma_.assign(K, Mat::Identity(D, D));
    logmass_ = Vec::Constant(K, -std::log(static_cast<double>(K)));
    for (int i = 0; i < K; ++i) {
      int cnt = 0;
      for (int n = 0; n < N; ++n)
        if (cidx[n] == i) {
          mu_[i] += data.row(n).transpose();
          ++cnt;
        }
      if (cnt == 0) {  // an empty cluster starts at the data mean and covariance
        mu_[i] = data.colwise().mean().transpose();
        Mat diff = data.rowwise() - mu_[i].transpose();
        sigma_[i] = diff.transpose() * diff / std::max(1, N) + 2e-6 * Mat::Identity(D, D);
        continue;
      }
      mu_[i] /= cnt;
      Mat S = Mat::Zero(D, D);
      for (int n = 0; n < N; ++n)
        if (cidx[n] == i) {
          const Vec d = data.row(n).transpose() - mu_[i];
          S.noalias() += d * d.transpose();
        }
      sigma_[i] = S / K + 2e-6 * Mat::Identity(D, D);
    }
  }
  double prevll = -std::numeric_limits<double>::infinity();
  int it = 0;
  for (; it < max_iterations; ++it) {
    const Mat logobs = estep(data);
    Vec lse(N);
    for (int n = 0; n < N; ++n) lse(n) = logsumexp(logobs.row(n));
    const double ll = lse.sum();
    ll_history_.push_back(ll);
    if (ll < prevll) break;
    if (std::abs(ll - prevll) < 1e-5 * std::abs(prevll)) break;
    prevll = ll;
    // responsibilities, normalised per point, then per cluster for refitting
    Mat logw = logobs.colwise() - lse;
    Vec logmass(K);
    Mat w(N, K);
    for (int i = 0; i < K; ++i) {
      logmass(i) = logsumexp(logw.col(i).transpose());
      w.col(i) = (logw.col(i).array() - logmass(i)).exp();
    }
    logmass_ = logmass.array() - logsumexp(logmass.transpose());
    for (int i = 0; i < K; ++i) {
      if (std::exp(logmass_(i)) < 1e-4 / K) w.col(i).setConstant(1.0 / N);  // reboot a small cluster
      mu_[i] = data.transpose() * w.col(i);
      Mat S = data.transpose() * w.col(i).asDiagonal() * data;
      S.noalias() -= mu_[i] * mu_[i].transpose();
      sigma_[i] = 0.5 * (S + S.transpose()) + 1e-6 * Mat::Identity(D, D);
    }
  }
  return static_cast<int>(ll_history_.size());
}

NiwPrior Gmm::inference(const RefM& pts, double strength) const {
  if (!(strength >= 0) || !std::isfinite(strength)) throw std::invalid_argument("Gmm.inference: strength must be >= 0");
  if (pts.rows() < 1) throw std::invalid_argument("Gmm.inference: need at least one point");
  check_finite(pts, "Gmm.inference pts");
  const int K = num_clusters(), D = dim();
  const Mat logobs = estep(pts);
  // posterior cluster weights of each point, averaged over the points
  Vec logwts(K);
  Mat logw(pts.rows(), K);
  for (Eigen::Index n = 0; n < pts.rows(); ++n) logw.row(n) = logobs.row(n).array() - logsumexp(logobs.row(n));
  for (int i = 0; i < K; ++i) logwts(i) = logsumexp(logw.col(i).transpose()) - std::log(static_cast<double>(pts.rows()));
  const Vec wts = logwts.array().exp();
  NiwPrior p;
  p.mu0 = Vec::Zero(D);
  for (int i = 0; i < K; ++i) p.mu0 += wts(i) * mu_[i];
  p.Phi = Mat::Zero(D, D);
  for (int i = 0; i < K; ++i) {
    const Vec diff = mu_[i] - p.mu0;
    p.Phi += wts(i) * (sigma_[i] + mu_[i] * diff.transpose());
  }
  p.Phi = 0.5 * (p.Phi + p.Phi.transpose()).eval();
  p.m = strength;
  p.n0 = strength * (static_cast<double>(N_) - 2.0 - D) / static_cast<double>(N_);
  p.Phi *= p.m;
  return p;
}

}  // namespace dmpc::gps
