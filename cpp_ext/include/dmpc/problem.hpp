/// @file problem.hpp
/// @brief The finite-horizon optimal control problem of Eq. (10) (deep-value-mpc), discretised.
///
///   minimise  gamma^{T} phi(t0+T, x_N) + sum_{k<N} dt [ gamma^{k dt} l(t_k, x_k, u_k) + 1/2 u_k^T R u_k ]
///   s.t.      x_{k+1} = Phi(x_k, u_k, dt)   (Euler, semi-implicit Euler or RK4 of xdot = f + g u)
///
/// with T = N dt, t_k = t0 + k dt. gamma is a discount per second (gamma = 1: undiscounted).
/// The running cost l may already contain control terms (then R may be zero).
#pragma once

#include "dmpc/cost.hpp"
#include "dmpc/dynamics.hpp"
#include "dmpc/integrator.hpp"

namespace dmpc {

class Problem {
 public:
  /// @param[in] dynamics continuous dynamics (required)
  /// @param[in] running running cost l(t, x, u), may be null
  /// @param[in] terminal terminal cost phi(t, x), may be null (evaluated with u = 0)
  /// @param[in] horizon number of nodes N (>= 1)
  /// @param[in] dt node spacing [s] (> 0)
  /// @param[in] integrator discretisation
  /// @param[in] control_weight R, nu x nu (symmetrised, undiscounted), or an empty matrix for 0
  /// @param[in] discount gamma in (0, 1] per second
  Problem(DynamicsModelPtr dynamics, CostModelPtr running, CostModelPtr terminal, int horizon,
          double dt, Integrator integrator, const RefM& control_weight, double discount);

  const DynamicsModel& dynamics() const { return *dynamics_; }
  const DynamicsModelPtr& dynamics_ptr() const { return dynamics_; }
  const CostModelPtr& running() const { return running_; }
  const CostModelPtr& terminal() const { return terminal_; }
  int horizon() const { return N_; }
  double dt() const { return dt_; }
  Integrator integrator() const { return integrator_; }
  const Mat& control_weight() const { return R_; }
  double discount() const { return gamma_; }
  int nx() const { return dynamics_->nx(); }
  int nu() const { return dynamics_->nu(); }
  /// @brief gamma^{k dt}, the weight of the running cost at node k (k = N: terminal).
  double discount_factor(int k) const;

 private:
  DynamicsModelPtr dynamics_;
  CostModelPtr running_, terminal_;
  int N_;
  double dt_;
  Integrator integrator_;
  Mat R_;
  double gamma_;
};

using ProblemPtr = std::shared_ptr<const Problem>;

}  // namespace dmpc
