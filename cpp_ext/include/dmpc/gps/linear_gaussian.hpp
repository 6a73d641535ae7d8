/// @file linear_gaussian.hpp
/// @brief Time-varying linear-Gaussian controllers and dynamics of guided policy search
///        (MDGPS, Montgomery & Levine 2016, Sec. 3 and App. A, B.3).
///
/// Discrete time t = 0..T-1 with T states and T actions, T-1 transitions:
///   p(u_t | x_t)       = N(K_t x_t + k_t, Sigma_t)                (the controller)
///   p(x_t+1 | x_t, u_t) = N(F_t [x_t; u_t] + f_t, W_t)             (the fitted dynamics)
///   p(x_0)             = N(mu_0, S_0).
/// Quantities over a trajectory are sums over the T steps (ell^k_m of App. B.3, the KL of Eq. 3).
#pragma once

#include <Eigen/Cholesky>
#include <vector>

#include "dmpc/common.hpp"
#include "dmpc/policy.hpp"

namespace dmpc::gps {

/// @brief Time-varying linear-Gaussian dynamics x_t+1 ~ N(F_t [x_t; u_t] + f_t, W_t), t < T-1,
///        with the initial state distribution N(x0_mean, x0_cov).
struct LinearGaussianDynamics {
  std::vector<Mat> F;  ///< T-1 of nx x (nx + nu)
  Mat f;               ///< (T-1) x nx
  std::vector<Mat> W;  ///< T-1 of nx x nx (noise covariance)
  Vec x0_mean;         ///< nx
  Mat x0_cov;          ///< nx x nx
  int horizon() const { return static_cast<int>(F.size()) + 1; }
  int nx() const { return static_cast<int>(x0_mean.size()); }
  int nu() const { return F.empty() ? 0 : static_cast<int>(F[0].cols()) - nx(); }
  /// @brief Throw std::invalid_argument unless every size is consistent with (T, nx, nu) and
  ///        every entry is finite.
  void validate(int T, int nx, int nu) const;
};

/// @brief Quadratic stage costs l_t(z) = cc_t + cv_t^T z + 1/2 z^T Cm_t z, z = [x_t; u_t]
///        (e.g. the sample mean of Taylor expansions, MDGPS Sec. 3.1).
struct QuadraticCost {
  std::vector<Mat> Cm;  ///< T of (nx + nu) x (nx + nu)
  Mat cv;               ///< T x (nx + nu)
  Vec cc;               ///< T
  int horizon() const { return static_cast<int>(Cm.size()); }
  void validate(int T, int D) const;
};

/// @brief Gaussian state-action marginals p(x_t, u_t) = N(mean.row(t), cov[t]) (App. B.3).
struct GaussianMarginals {
  Mat mean;              ///< T x (nx + nu)
  std::vector<Mat> cov;  ///< T of (nx + nu) x (nx + nu)
};

/// @brief u_t ~ N(K_t x_t + k_t, Sigma_t); the Cholesky factor and the inverse of Sigma_t are
///        stored with it.
class LinearGaussianPolicy {
 public:
  /// @throws std::invalid_argument on inconsistent sizes, non-finite values or a Sigma_t that is
  ///         not symmetric positive definite.
  LinearGaussianPolicy(std::vector<Mat> K, Mat k, std::vector<Mat> cov);

  int horizon() const { return static_cast<int>(K_.size()); }
  int nx() const { return static_cast<int>(K_.empty() ? 0 : K_[0].cols()); }
  int nu() const { return static_cast<int>(k_.cols()); }
  const std::vector<Mat>& K() const { return K_; }
  const Mat& k() const { return k_; }
  const std::vector<Mat>& cov() const { return cov_; }
  const std::vector<Mat>& chol() const { return chol_; }    ///< lower L with L L^T = Sigma_t
  const std::vector<Mat>& inv_cov() const { return inv_; }  ///< Sigma_t^{-1}

  /// @brief State-action marginals under `dyn`, propagated forward in time (App. B.3).
  GaussianMarginals forward(const LinearGaussianDynamics& dyn) const;
  /// @brief Per-step expected cost E_p(x_t,u_t)[l_t] = cc + cv^T mu + 1/2 mu^T Cm mu + 1/2 tr(Cm S).
  Vec expected_cost_per_step(const GaussianMarginals& m, const QuadraticCost& cost) const;
  /// @brief Sum over t of expected_cost_per_step (ell of App. B.3).
  double expected_cost(const LinearGaussianDynamics& dyn, const QuadraticCost& cost) const;
  /// @brief Per-step E_p(x_t)[KL(p(u_t|x_t) || q(u_t|x_t))] under this policy's marginals `m`.
  Vec kl_per_step(const LinearGaussianPolicy& q, const GaussianMarginals& m) const;
  /// @brief KL(p(tau) || q(tau)) = sum_t E_p(x_t)[KL(p(u_t|x_t) || q(u_t|x_t))] (Eq. 3, App. A).
  double kl(const LinearGaussianPolicy& q, const LinearGaussianDynamics& dyn) const;
  /// @brief Mean action K_t x + k_t.
  Vec mean_action(int t, const RefV& x) const;
  /// @brief The mean controller as the core's affine Policy (u_ff = k_t, x_nom = 0, gains K_t,
  ///        zero-order hold over [t0 + t dt, t0 + (t+1) dt)), so that the tracking loop can run it.
  Policy to_policy(double t0, double dt) const;

 private:
  std::vector<Mat> K_;
  Mat k_;
  std::vector<Mat> cov_, chol_, inv_;
};

}  // namespace dmpc::gps
