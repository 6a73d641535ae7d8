/// @file ballbot.hpp
/// @brief Ballbot (ball-balancing robot with three omni-wheels), the robot of deep-value-mpc.
///
/// Generalized coordinates q = (px, py, yaw, pitch, roll): ball centre on the floor and the base
/// orientation as ZYX Euler angles R = Rz(yaw) Ry(pitch) Rx(roll); state x = [q; v], v = qdot
/// (nx = 10); control u = tau, the three omni-wheel torques [N m] (nu = 3).
///
/// Equations of motion (Lagrange, derived symbolically in tools/derive_ballbot.py, code in
/// src/models/ballbot_generated.c, derivation in docs/ballbot_model.md):
///     M(q) vdot + h(q, v) = S^T(q) tau,     xdot = [v; M^{-1} (S^T tau - h)].
/// Unlike OCS2's chain model, the ball's rolling inertia is included (the ball rolls without
/// slipping; its spin about the vertical is constrained to zero and is not a coordinate).
/// S^T(q) = J_w(q)^T where w = J_w(q) v are the wheel rates relative to the base given by the
/// no-slip condition between each omni-wheel and the ball (virtual work).
#pragma once

#include <Eigen/Core>

#include "dmpc/dynamics.hpp"

namespace dmpc {

/// @brief Physical parameters of the Ballbot (defaults: the public OCS2 ballbot).
///
/// All fields are run-time parameters of the generated code. The three wheels are always at
/// azimuths 0, 120, 240 deg around the base z axis (fixed in the derivation).
struct BallbotParameters {
  double ball_radius = 0.125;    ///< r_b [m]
  double ball_mass = 2.65;       ///< m_b [kg]
  double ball_inertia = 0.0166;  ///< I_b [kg m^2], isotropic
  double base_mass = 18.66;      ///< m_B [kg]
  Eigen::Vector3d base_com{0.003, 0.0033, 0.1956};  ///< base COM from the ball centre, base frame [m]
  Eigen::Vector3d base_inertia{1.80, 1.8037, 0.1667};  ///< diag of the base inertia about its COM [kg m^2]
  double wheel_radius = 0.064;                          ///< r_w [m]
  double wheel_zenith_angle = 0.78539816339744830962;  ///< alpha: contact-point angle from the base z axis [rad]
  double gravity = 9.81;                                ///< g [m/s^2]

  /// @brief Throw std::invalid_argument unless masses, radii and inertias are > 0 (ball inertia
  ///        >= 0), 0 < alpha < pi/2 and everything is finite.
  void validate() const;
  /// @brief Parameter vector p (size 13) in the order of tools/derive_ballbot.py PARAM_NAMES.
  Eigen::Matrix<double, 13, 1> to_vector() const;
};

/// @brief Buffers of one Ballbot evaluation (fixed-size, nothing is allocated in calc/calc_diff).
struct BallbotData : public DynamicsData {
  BallbotData() : DynamicsData(10, 3) {
    M.setZero(); h.setZero(); ST.setZero(); a.setZero(); rhs.setZero(); dID_dq.setZero();
    dID_dv.setZero(); L.setZero(); Minv.setZero(); x_fwd.setZero(); u_fwd.setZero();
  }
  Eigen::Matrix<double, 5, 5> M;       ///< mass matrix M(q)
  Eigen::Matrix<double, 5, 1> h;       ///< bias h(q, v): Coriolis, centrifugal and gravity
  Eigen::Matrix<double, 5, 3> ST;      ///< actuation map S^T(q)
  Eigen::Matrix<double, 5, 1> a;       ///< acceleration vdot
  Eigen::Matrix<double, 5, 1> rhs;     ///< S^T tau - h
  Eigen::Matrix<double, 5, 5> dID_dq;  ///< d(M a + h - S^T tau)/dq at the computed a
  Eigen::Matrix<double, 5, 5> dID_dv;  ///< d h / dv
  Eigen::Matrix<double, 5, 5> L;       ///< Cholesky factor of M (lower): M = L L^T
  Eigen::Matrix<double, 5, 5> Minv;    ///< M^{-1} (filled by calc_diff)
  Eigen::Matrix<double, 10, 1> x_fwd;  ///< (x, u) of the last forward evaluation: calc_diff
  Eigen::Matrix<double, 3, 1> u_fwd;   ///< reuses M, h, S^T, L, a when called at the same point
  bool fwd_valid = false;
};

/// @brief Ballbot dynamics xdot = [v; M(q)^{-1} (S^T(q) tau - h(q, v))], nx = 10, nu = 3, nq = 5.
///
/// calc_diff uses the inverse-dynamics residual ID(q, v, a, tau) = M a + h - S^T tau:
/// da/dq = -M^{-1} dID/dq, da/dv = -M^{-1} dID/dv (at the forward-dynamics a), da/dtau = M^{-1} S^T.
/// M is factorised by a hand-unrolled 5 x 5 Cholesky (Eigen's blocked solvers are slower at this
/// size). M is singular at the ZYX Euler singularity |pitch| = 90 deg (base lying flat): results
/// there are non-finite or huge; keep |pitch| well below 90 deg (the base is upright in use).
class BallbotDynamics : public DynamicsModel {
 public:
  /// @param[in] params physical parameters (validated)
  explicit BallbotDynamics(const BallbotParameters& params = BallbotParameters());
  std::string name() const override { return "BallbotDynamics"; }
  std::shared_ptr<DynamicsData> create_data() const override;

  /// @brief data.xdot (10) = [v; M^{-1}(S^T u - h)]; also fills M, h, ST, a of BallbotData.
  /// @param[in] x state [q; v], size 10; @param[in] u wheel torques, size 3
  void calc(DynamicsData& data, const RefV& x, const RefV& u) const override;
  /// @brief data.fx (10 x 10), data.fu (10 x 3) and data.xdot. data must come from create_data().
  void calc_diff(DynamicsData& data, const RefV& x, const RefV& u) const override;
  /// @brief Rollout path: xdot (10) = [v; a] with a = M^{-1}(S^T u - h) from the single generated
  ///        function dmpc_ballbot_fwd (M, h, S^T and an unrolled LDL^T solve, common
  ///        subexpressions merged), given cos/sin of yaw, pitch, roll (three sincos here) and the
  ///        precomputed [p; cos(alpha); sin(alpha); 1/r_b]. data is unused (nothing is cached).
  ///        Agrees with calc() to rounding.
  /// @param[in] x 10 doubles; @param[in] u 3 doubles; @param[out] xdot 10 doubles
  void calc_xdot(DynamicsData& data, const double* x, const double* u,
                 double* xdot) const override;
  /// @brief f(x) = [v; a(x, 0)] and y = g(x)^T p = S(q) M(q)^{-1} p_v (p_v = last 5 entries of
  ///        p): the forward dynamics at u = 0 (M, h, S^T, Cholesky of M) and one more Cholesky
  ///        solve; no inverse-dynamics Jacobian (see DynamicsModel::calc_drift_input_projection).
  void calc_drift_input_projection(DynamicsData& data, const RefV& x, const RefV& p, Vec& u_scratch,
                                   Vec& f, Vec& y) const override;
  /// @brief Input-matrix derivatives (see DynamicsModel::calc_input_jacobians) from one
  ///        generated function of M(q) and S^T(q) (dmpc_ballbot_input_jac): with g = [0; G],
  ///        G = M^{-1} S^T frozen at x, z = M^{-1} p_v and alpha = G w,
  ///          Gp = d/dq [S z - G^T M z],  Gw (rows of vdot) = M^{-1} d/dq [S^T w - M alpha].
  ///        g does not depend on v (only the columns of q are non-zero); `scratch` is unused.
  void calc_input_jacobians(const DynamicsData& at_zero, DynamicsData& scratch, const RefV& x,
                            const RefV& p, const RefV& w, Vec& u_scratch, Mat& Gp,
                            Mat& Gw) const override;

  const BallbotParameters& params() const { return params_; }

  /// @brief Mass matrix M(q), 5 x 5 (symmetric positive definite). @param[in] q size 5
  Mat mass_matrix(const RefV& q) const;
  /// @brief Bias h(q, v) = Coriolis/centrifugal + gravity, size 5. @param[in] q, v size 5
  Vec bias(const RefV& q, const RefV& v) const;
  /// @brief Actuation map S^T(q), 5 x 3: generalized forces = S^T tau. @param[in] q size 5
  Mat actuation_map(const RefV& q) const;
  /// @brief Wheel rates relative to the base, w = S(q) v, size 3 [rad/s]. @param[in] x size 10
  Vec wheel_rates(const RefV& x) const;
  /// @brief Kinetic energy T(x) [J] (ball translation + rolling rotation + base). @param[in] x size 10
  double kinetic_energy(const RefV& x) const;
  /// @brief Potential energy V(x) = m_B g z_com with z_com = r_b + (R(q) c)_z [J] (the ball's
  ///        constant potential energy is omitted). @param[in] x size 10
  double potential_energy(const RefV& x) const;
  /// @brief Total mechanical energy T + V [J]; conserved when tau = 0. @param[in] x size 10
  double energy(const RefV& x) const;

 private:
  BallbotData& cast(DynamicsData& data) const;
  void eval_dyn(BallbotData& d, const double* q, const double* v) const;
  void forward(BallbotData& d, const RefV& x, const RefV& u) const;

  BallbotParameters params_;
  Eigen::Matrix<double, 13, 1> p_;
  Eigen::Matrix<double, 16, 1> pc_;  ///< [p; cos(alpha); sin(alpha); 1/r_b], input of dmpc_ballbot_fwd
};

}  // namespace dmpc
