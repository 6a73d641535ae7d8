/// @file small.hpp
/// @brief Small dynamics models for tests and the POLO/MPQ tasks: linear, pendulum, 2-D point mass.
#pragma once

#include "dmpc/dynamics.hpp"

namespace dmpc {

/// @brief Linear time-invariant system xdot = A x + B u (nx from A, nu from B).
class LinearDynamics : public DynamicsModel {
 public:
  /// @param[in] A nx x nx
  /// @param[in] B nx x nu
  LinearDynamics(const RefM& A, const RefM& B);
  std::string name() const override { return "LinearDynamics"; }
  void calc(DynamicsData& d, const RefV& x, const RefV& u) const override;
  void calc_diff(DynamicsData& d, const RefV& x, const RefV& u) const override;
  const Mat& A() const { return A_; }
  const Mat& B() const { return B_; }

 private:
  Mat A_, B_;
};

/// @brief Torque-driven pendulum, x = [theta, theta_dot], theta = 0 upright, theta = pi hanging.
///
/// m l^2 theta_ddot = m g l sin(theta) - b theta_dot + u.
class PendulumDynamics : public DynamicsModel {
 public:
  /// @param[in] mass bob mass m [kg] (> 0)
  /// @param[in] length rod length l [m] (> 0)
  /// @param[in] damping viscous joint damping b [N m s] (>= 0)
  /// @param[in] gravity g [m/s^2]
  explicit PendulumDynamics(double mass = 1.0, double length = 1.0, double damping = 0.0,
                            double gravity = 9.81);
  std::string name() const override { return "PendulumDynamics"; }
  void calc(DynamicsData& d, const RefV& x, const RefV& u) const override;
  void calc_diff(DynamicsData& d, const RefV& x, const RefV& u) const override;
  /// @brief Same arithmetic as calc() on raw arrays (x, xdot: 2 doubles, u: 1), d unused.
  void calc_xdot(DynamicsData& d, const double* x, const double* u, double* xdot) const override;
  double mass() const { return m_; }
  double length() const { return l_; }
  double damping() const { return b_; }
  double gravity() const { return g_; }

 private:
  double m_, l_, b_, g_;
};

/// @brief Planar point mass, x = [px, py, vx, vy], u = [Fx, Fy]: m v_dot = u - c v.
class PointMass2D : public DynamicsModel {
 public:
  /// @param[in] mass m [kg] (> 0)
  /// @param[in] damping linear damping c [N s/m] (>= 0)
  explicit PointMass2D(double mass = 1.0, double damping = 0.0);
  std::string name() const override { return "PointMass2D"; }
  void calc(DynamicsData& d, const RefV& x, const RefV& u) const override;
  void calc_diff(DynamicsData& d, const RefV& x, const RefV& u) const override;
  double mass() const { return m_; }
  double damping() const { return c_; }

 private:
  double m_, c_;
};

}  // namespace dmpc
