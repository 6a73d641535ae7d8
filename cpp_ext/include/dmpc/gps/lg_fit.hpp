/// @file lg_fit.hpp
/// @brief Local linear-Gaussian fits of guided policy search (MDGPS Sec. 4 "local time-varying
///        linear-Gaussian approximation", App. B.1): per time step a normal-inverse-Wishart MAP
///        estimate of the joint Gaussian of (inputs, outputs) with a GMM prior, conditioned to
///        outputs ~ N(F inputs + f, Sigma). The same code fits the dynamics p(x_t+1 | x_t, u_t)
///        on (x_t, u_t, x_t+1) and the linearised global policy pi_bar(u_t | x_t) on (x_t, mu^pi(x_t)).
#pragma once

#include <deque>
#include <optional>
#include <vector>

#include "dmpc/common.hpp"
#include "dmpc/gps/gmm.hpp"
#include "dmpc/gps/linear_gaussian.hpp"

namespace dmpc::gps {

/// @brief Settings of a GMM prior (cbfinn/gps DynamicsPriorGMM / PolicyPriorGMM).
struct GmmPriorSettings {
  int max_clusters = 20;             ///< upper bound on K
  int min_samples_per_cluster = 20;  ///< K = max(2, min(max_clusters, floor(points / this)))
  int max_samples = 20;              ///< trajectories kept (the most recent)
  double strength = 1.0;             ///< multiplies the prior's m and n0 (0 = plain least squares)
  int max_iterations = 100;          ///< EM iterations per update
  void validate() const;
};

/// @brief GMM prior over the points of the last `max_samples` trajectories; each trajectory is a
///        (rows x D) matrix of points, e.g. rows [x_t, u_t, x_t+1] (dynamics_points()).
class GmmPrior {
 public:
  explicit GmmPrior(GmmPriorSettings settings = GmmPriorSettings(), std::uint64_t seed = 0);
  /// @brief Append trajectories (oldest dropped beyond max_samples) and refit the GMM (warm start).
  void update(const std::vector<Mat>& trajectories);
  /// @brief NIW hyperparameters for the points `pts` (N x D) of one time step.
  NiwPrior eval(const RefM& pts) const;
  bool fitted() const { return gmm_.num_clusters() > 0; }
  const Gmm& gmm() const { return gmm_; }
  const GmmPriorSettings& settings() const { return settings_; }
  int num_trajectories() const { return static_cast<int>(data_.size()); }

 private:
  GmmPriorSettings settings_;
  Gmm gmm_;
  std::deque<Mat> data_;
};

/// @brief Conditional Gaussian y ~ N(F x + f, cov) from a joint fit.
struct ConditionalGaussian {
  Mat F;
  Vec f;
  Mat cov;
};

/// @brief NIW MAP fit of the joint Gaussian of the rows of `pts` = [inputs (dx), outputs], with
///        equal weights, conditioned on the inputs (cbfinn gauss_fit_joint_prior):
///        Sigma = (N Sigma_hat + Phi + N m / (N + m) (mu_hat - mu0)(mu_hat - mu0)^T) / (N + n0) + sig_reg.
///        Without a prior (nullopt, or m = n0 = 0 and Phi = 0) this is least squares.
ConditionalGaussian gauss_fit_joint_prior(const RefM& pts, const std::optional<NiwPrior>& prior, int dx,
                                          const RefM& sig_reg);

/// @brief Rows [x_t, u_t, x_t+1], t = 0..T-2, of a trajectory X (T x nx), U (T x nu).
Mat dynamics_points(const RefM& X, const RefM& U);

/// @brief Per-step dynamics fit from N sampled trajectories (X[i]: T x nx, U[i]: T x nu), with the
///        GMM prior when given (and fitted). `regularization` is added to the (x, u) block of the
///        joint covariance. The initial state is N(mean of X[i](0), diag(max(var, x0_var_min))).
LinearGaussianDynamics fit_dynamics(const std::vector<Mat>& X, const std::vector<Mat>& U, const GmmPrior* prior,
                                    double regularization = 1e-6, double x0_var_min = 1e-6);

/// @brief Linearisation pi_bar(u_t | x_t) = N(K_t x + k_t, S_t + pol_cov[t]) of a global policy
///        from its mean actions MU[i] (T x nu) at the sampled states X[i] (MDGPS Sec. 4, "the same
///        linear regression method"); pol_cov holds the policy's own covariance per step (T
///        entries) or one for all steps. A 1e-8 regulariser is put on the state block at t = 0.
LinearGaussianPolicy fit_policy_linearization(const std::vector<Mat>& X, const std::vector<Mat>& MU,
                                              const std::vector<Mat>& pol_cov, const GmmPrior* prior);

}  // namespace dmpc::gps
