/// @file value_costs.hpp
/// @brief Deep Value MPC costs built from a critic V(tau, x; g): the terminal (heuristic) cost of
///        Eq. (13) and the running cost of Eq. (14) of deep-value-mpc.
///
/// Time: the costs receive the absolute time t and use the time-to-go tau = t_goal - t
/// clamped at zero: for t >= t_goal the episode has ended and V(tau <= 0, x) = V(0, x), the
/// termination cost q_f of Eq. (4) that the critic is trained to equal at tau = 0 (so the last H
/// of an episode never queries the critic at tau < 0, where it has no data). d/dt = -d/dtau
/// before t_goal, 0 after.
/// The discount gamma of Eq. (10) is applied by the problem, not here. The control cost
/// 1/2 u^T R u is the problem's own term, so both costs have lu = 0, luu = 0, lux = 0.
/// set_t_goal() (like CriticModel::set_goal()) must only be called between solves.
#pragma once

#include <Eigen/Cholesky>
#include <Eigen/Eigenvalues>

#include "dmpc/cost.hpp"
#include "dmpc/critic.hpp"
#include "dmpc/dynamics.hpp"

namespace dmpc {

/// @brief Data of ValueTerminalCost: the critic's data.
struct ValueTerminalCostData : public CostData {
  ValueTerminalCostData(int nx, int nu, std::shared_ptr<CriticData> c) : CostData(nx, nu), critic(c) {}
  std::shared_ptr<CriticData> critic;
};

/// @brief Heuristic (terminal) cost phi(t, x) = V(tau = t_goal - t, x)  (Eq. (13)).
///
/// lx = dV/dx, lxx = d2V/dx2 (exact, as exact as the critic); lu, luu, lux = 0.
class ValueTerminalCost : public CostModel {
 public:
  /// @param[in] critic value function (nx from critic.nx())
  /// @param[in] t_goal absolute time [s] at which the time-to-go reaches zero (finite)
  /// @param[in] nu control dimension reported by the cost (the terminal cost ignores u)
  ValueTerminalCost(CriticModelPtr critic, double t_goal, int nu);
  std::string name() const override { return "ValueTerminalCost"; }
  std::shared_ptr<CostData> create_data() const override;
  void calc(CostData& data, double t, const RefV& x, const RefV& u) const override;
  void calc_diff(CostData& data, double t, const RefV& x, const RefV& u) const override;

  const CriticModelPtr& critic() const { return critic_; }
  double t_goal() const { return t_goal_; }
  /// @brief Change t_goal (finite). Not thread-safe: between solves only.
  void set_t_goal(double t_goal);

 private:
  CriticModelPtr critic_;
  double t_goal_;
};

/// @brief Data of ValueRunningCost (all buffers preallocated).
struct ValueRunningCostData : public CostData {
  ValueRunningCostData(int nx, int nu, std::shared_ptr<CriticData> c, std::shared_ptr<DynamicsData> d0,
                       std::shared_ptr<DynamicsData> dj);
  std::shared_ptr<CriticData> critic;
  std::shared_ptr<DynamicsData> dyn0;  ///< dynamics at (x, 0): f(x), fx(x, 0), g(x)
  std::shared_ptr<DynamicsData> dynj;  ///< scratch of calc_input_jacobians
  Vec u0, ej;                          ///< zero control and a control scratch, size nu
  Vec f;                               ///< f(x), size nx
  Vec y;                               ///< y = g^T Vx, size nu
  Vec w;                               ///< w = R^{-1} g^T Vx, size nu (optimal control u* = -w)
  Mat A;                               ///< A = d(g(x)^T p)/dx at fixed p = Vx, nu x nx
  Mat Dgw;                             ///< d(g(x) w)/dx at fixed w = fx(x, w) - fx(x, 0), nx x nx
  Mat M;                               ///< fx(x, u*) = fx(x, 0) - Dgw, nx x nx
  Mat B2;                              ///< A + g^T Vxx, nu x nx
  Mat RiB2;                            ///< R^{-1} B2, nu x nx
  Vec v;                               ///< g w - f, size nx (third-derivative direction)
  std::shared_ptr<CriticData> critic_fd;  ///< second critic buffer (finite-difference K(v))
  Vec xp;                              ///< x +- h v, size nx
  Mat Kfd;                             ///< finite-difference K(v), nx x nx
  Eigen::SelfAdjointEigenSolver<Mat> eig;  ///< for the optional PSD projection
  Eigen::LDLT<Mat> ldlt;                   ///< PSD test before the projection
  Vec evals;
};

/// @brief Deep Value MPC running cost (Eq. (14)), in time-to-go form (V_t = -V_tau):
///
///   l(t, x) = V_tau - f(x)^T V_x + 1/2 V_x^T Xi(x) V_x,   Xi = g R^{-1} g^T,
///
/// with f(x) = xdot(x, 0) and g(x) = fu (control-affine dynamics).
///
/// Gradient (exact): with p = V_x, H = V_xx, y = g^T p, w = R^{-1} y,
///   A = d(g^T p)/dx at fixed p, row j: A_j = p^T (fx(x, e_j) - fx(x, 0)),
///   lx = V_taux - fx(x,0)^T p - H f + H g w + A^T w
/// (A^T w = (fx(x, w) - fx(x, 0))^T p by control affinity).
///
/// Hessian: with u* = -w and M = fx(x, u*) = fx(x,0) - (fx(x,w) - fx(x,0)),
///   lxx = (A + g^T H)^T R^{-1} (A + g^T H)       [Gauss-Newton term of 1/2 y^T R^{-1} y, PSD]
///       - (M^T H + H M)                            [first derivatives of f, g times V_xx]
///       + K(v),  v = [g w - f; 1]                  [third derivatives of V: K(v)_ik =
///                                                   d/dx_k (V_xx (g w - f) + V_taux)_i]
/// This is exact except for the single term - d2/dx2 [ p^T xdot(x, u) ] at fixed p = V_x and
/// fixed u = u* (second derivatives of f and g), which is dropped; it vanishes for dynamics
/// that are linear in x (LinearDynamics, PointMass2D).
/// K(v) (third_order): Auto = the critic's exact calc_third() if provides_third(), otherwise
/// FiniteDifference; FiniteDifference = central difference of the critic's Hessian along v,
/// using K(v) = d/de Vxx(x + e v_x, tau + e v_tau) (symmetry of third derivatives; two extra
/// critic calc_diff calls, step h = eps^(1/3) max(1, |x|, |tau|) / max(1, |v|), relative error
/// of lxx ~1e-8 in the tests); Drop = leave K(v) out (Gauss-Newton-style, cheapest, inexact).
/// So a Python critic without calc_third (e.g. ONNX Runtime) gives the same lxx as the native
/// CriticMLP up to the finite-difference error.
/// lxx is symmetrised. No PSD projection by default: the SLQ backward pass regularises its own
/// Hessians, and projecting would bias the curvature exactly where Proposition 1 needs it
/// (e.g. the LQR case, where lxx = Q is reproduced exactly); project_psd = true clips negative
/// eigenvalues to zero. It first tests lxx with a pivoted LDL^T (~0.3 us at nx = 10): when all
/// pivots are >= 0 the matrix is already PSD and is left as it is; only otherwise does it run
/// the nx x nx symmetric eigendecomposition (~7 us; the only path that heap-allocates, inside
/// Eigen's SelfAdjointEigenSolver).
/// Cost of calc: one critic calc_grad and one DynamicsModel::calc_drift_input_projection
/// (f(x) and g(x)^T V_x; default one calc_diff at (x, 0)). Cost of
/// calc_diff: one critic calc_diff (+ calc_third, or 2 calc_diff for FD), one dynamics
/// calc_diff at (x, 0) and one DynamicsModel::calc_input_jacobians (A and Dgw together; by
/// default nu more calc_diff calls at (x, e_j), BallbotDynamics: one generated function of
/// M(q) and S^T(q)). With a native critic and C++ dynamics neither allocates (checked with
/// EIGEN_RUNTIME_NO_MALLOC).
class ValueRunningCost : public CostModel {
 public:
  /// @brief How the third-derivative term K(v) of lxx is obtained (see the class comment).
  enum class ThirdOrder { Auto, FiniteDifference, Drop };

  /// @param[in] critic value function, critic.nx() == dynamics.nx()
  /// @param[in] dynamics control-affine dynamics
  /// @param[in] R control weight of the problem's 1/2 u^T R u, nu x nu, symmetric positive definite
  /// @param[in] t_goal absolute time [s] at which the time-to-go reaches zero
  /// @param[in] project_psd clip negative eigenvalues of lxx to zero
  /// @param[in] third_order source of the third-derivative term K(v)
  ValueRunningCost(CriticModelPtr critic, DynamicsModelPtr dynamics, const RefM& R, double t_goal,
                   bool project_psd = false, ThirdOrder third_order = ThirdOrder::Auto);
  std::string name() const override { return "ValueRunningCost"; }
  std::shared_ptr<CostData> create_data() const override;
  void calc(CostData& data, double t, const RefV& x, const RefV& u) const override;
  void calc_diff(CostData& data, double t, const RefV& x, const RefV& u) const override;

  const CriticModelPtr& critic() const { return critic_; }
  const DynamicsModelPtr& dynamics() const { return dynamics_; }
  const Mat& R() const { return R_; }
  const Mat& R_inv() const { return Rinv_; }
  double t_goal() const { return t_goal_; }
  bool project_psd() const { return project_psd_; }
  ThirdOrder third_order() const { return third_order_; }
  /// @brief Change t_goal (finite). Not thread-safe: between solves only.
  void set_t_goal(double t_goal);

 private:
  ValueRunningCostData& cast(CostData& data) const;
  CriticModelPtr critic_;
  DynamicsModelPtr dynamics_;
  Mat R_, Rinv_;
  double t_goal_;
  bool project_psd_;
  ThirdOrder third_order_;
};

}  // namespace dmpc
