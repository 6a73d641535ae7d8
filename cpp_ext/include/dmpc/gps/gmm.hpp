/// @file gmm.hpp
/// @brief Gaussian mixture model fitted by EM, used as the normal-inverse-Wishart prior of the
///        local linear-Gaussian fits of guided policy search (MDGPS App. B.1, following Levine &
///        Abbeel 2014: "a Gaussian mixture model prior ... incorporates samples from other time
///        steps and previous iterations").
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "dmpc/common.hpp"

namespace dmpc::gps {

/// @brief Normal-inverse-Wishart hyperparameters (mu0, Phi, m, n0) of a per-step MAP fit.
struct NiwPrior {
  Vec mu0;
  Mat Phi;
  double m = 0.0;
  double n0 = 0.0;
};

/// @brief K-cluster GMM over rows of a data matrix, fitted with EM.
///
/// update(): with warm start and an unchanged (K, D) EM starts from the previous clusters,
/// otherwise from a random assignment of points to clusters (seeded). EM runs at most
/// max_iterations iterations and stops when the log-likelihood falls or its change is below
/// 1e-5 of its magnitude; after each M-step Sigma_k += 1e-6 I, and clusters whose mass fell
/// below 1e-4 / K are refitted to all points with equal weight.
class Gmm {
 public:
  explicit Gmm(bool warm_start = true, std::uint64_t seed = 0) : warm_start_(warm_start), rng_(seed) {}

  /// @brief Fit K clusters to `data` (N x D, N >= 1). Returns the number of EM iterations run.
  int update(const RefM& data, int K, int max_iterations = 100);
  /// @brief Per-point, per-cluster log(weight_k N(x | mu_k, Sigma_k)) (N x K).
  Mat estep(const RefM& data) const;
  /// @brief Sum over points of log p(x) under the mixture.
  double log_likelihood(const RefM& data) const;
  /// @brief The prior for the points `pts` (cbfinn gmm.inference): posterior cluster weights
  ///        averaged over pts, their moment-matched mean and covariance (Phi = Sigma since the
  ///        normalised m = 1), and the normalised m = 1, n0 = (N_gmm - 2 - D) / N_gmm, both
  ///        multiplied by `strength` (Phi is multiplied by m).
  NiwPrior inference(const RefM& pts, double strength = 1.0) const;

  int num_clusters() const { return static_cast<int>(mu_.size()); }
  int dim() const { return mu_.empty() ? 0 : static_cast<int>(mu_[0].size()); }
  int num_points() const { return N_; }
  const std::vector<Vec>& means() const { return mu_; }
  const std::vector<Mat>& covariances() const { return sigma_; }
  Vec weights() const { return logmass_.array().exp(); }
  /// @brief Log-likelihoods at the E-step of each EM iteration of the last update(), including
  ///        the one that stopped it.
  const std::vector<double>& log_likelihood_history() const { return ll_history_; }
  bool warm_start() const { return warm_start_; }

 private:
  bool warm_start_;
  std::mt19937_64 rng_;
  int N_ = 0;
  std::vector<Vec> mu_;
  std::vector<Mat> sigma_;
  Vec logmass_;
  std::vector<double> ll_history_;
};

}  // namespace dmpc::gps
