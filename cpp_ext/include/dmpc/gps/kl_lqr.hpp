/// @file kl_lqr.hpp
/// @brief The KL-constrained LQR C-step of guided policy search (MDGPS Eq. 2, App. B.1):
///        min_p E_p[sum_t l(x_t, u_t)]  s.t.  KL(p(tau) || pbar(tau)) <= epsilon
///        over linear-Gaussian p under fitted linear-Gaussian dynamics, where pbar is the
///        linearised global policy (MDGPS) or the previous local policy (trajectory-centric RL).
///
/// For a fixed dual variable eta the Lagrangian is minimised by the maximum-entropy LQR with the
/// surrogate cost l~ = l / eta - log pbar(u | x) (App. B.1): C~_t = (C_t + eta P_t) / eta with
/// P_t = [[Kb^T Sb^-1 Kb, -Kb^T Sb^-1], [-Sb^-1 Kb, Sb^-1]] and c~_t = (c_t + eta [Kb^T Sb^-1 kb;
/// -Sb^-1 kb]) / eta; the new policy is N(K x + k, Q~_uu^-1). The backward pass is the shared
/// Riccati step (lq.hpp) with the affine term of the fitted dynamics. eta is found by a bracketing
/// search on the convex dual (cbfinn/gps traj_opt_lqr_python): start at eta0 in [eta_min, eta_max];
/// KL < epsilon: hi = eta, eta = max(sqrt(lo hi), 0.1 hi); else lo = eta, eta = min(sqrt(lo hi), 10 lo);
/// stop when |KL - epsilon| < tolerance * epsilon or after max_tries. When Q~_uu is not positive
/// definite, eta grows by delta (from delta0, doubling each time).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "dmpc/gps/linear_gaussian.hpp"

namespace dmpc::gps {

struct KlLqrSettings {
  double eta_min = 1e-8;     ///< lower end of the bracket
  double eta_max = 1e16;     ///< upper end of the bracket
  int max_tries = 50;        ///< backward/forward passes of the dual search
  double tolerance = 0.1;    ///< accept |KL - epsilon| < tolerance epsilon
  double delta0 = 1e-4;      ///< first eta increment when Q~_uu is not positive definite
  void validate() const;
};

struct KlLqrResult {
  std::optional<LinearGaussianPolicy> policy;  ///< the new controller (always set on return)
  double eta = 0.0;                            ///< dual variable of the returned policy
  double kl = 0.0;                             ///< KL(p || pbar) of the returned policy
  double epsilon = 0.0;                        ///< the bound asked for
  int tries = 0;                               ///< backward passes of the dual search
  bool converged = false;                      ///< |KL - epsilon| < tolerance epsilon
  std::vector<double> eta_history, kl_history;
  std::string message;
};

/// @brief Maximum-entropy LQR with surrogate cost C~ = (C + eta P) / eta (P from `reference`, or
///        none when reference is null): the policy N(K x + k, Q~_uu^-1). When Q~_uu is not PD,
///        eta is increased (delta0, doubling) and the pass repeated; `eta` returns the value used.
/// @throws std::runtime_error when eta exceeds eta_max without a PD Q~_uu.
LinearGaussianPolicy kl_lqr_backward(const LinearGaussianDynamics& dyn, const QuadraticCost& cost,
                                     const LinearGaussianPolicy* reference, double& eta,
                                     const KlLqrSettings& settings = KlLqrSettings());

/// @brief The C-step: the dual search for eta so that KL(p || reference) ~= epsilon.
KlLqrResult kl_lqr_solve(const LinearGaussianDynamics& dyn, const QuadraticCost& cost,
                         const LinearGaussianPolicy& reference, double epsilon, double eta0,
                         const KlLqrSettings& settings = KlLqrSettings());

}  // namespace dmpc::gps
