/// @file policy.hpp
/// @brief Time-indexed affine feedback policy u(t, x) = u_ff(t) + K(t) (x - x_nom(t)).
#pragma once

#include <vector>

#include "dmpc/common.hpp"

namespace dmpc {

/// @brief How a Policy interpolates between nodes.
///  - Linear: u_ff, K and x_nom linear in t between nodes (default; smooth commands at 400 Hz).
///  - ZeroOrderHold: u_ff and K held over [t_k, t_k+1) exactly as the discretised problem
///    assumed, x_nom still linear.
enum class Interpolation { Linear, ZeroOrderHold };

struct Policy {
  double t0 = 0.0;                 ///< time of node 0 [s]
  double dt = 0.0;                 ///< node spacing [s]
  Mat u_ff;                        ///< feedforward, N x nu
  Mat x_nom;                       ///< nominal states, (N+1) x nx
  std::vector<Mat> K;              ///< feedback gains, N of nu x nx
  Interpolation interpolation = Interpolation::Linear;

  bool empty() const { return u_ff.rows() == 0; }
  int horizon() const { return static_cast<int>(u_ff.rows()); }
  int nx() const { return static_cast<int>(x_nom.cols()); }
  int nu() const { return static_cast<int>(u_ff.cols()); }
  double t_end() const { return t0 + dt * horizon(); }

  /// @brief u(t, x); t outside [t0, t_end) is clamped to the first / last node.
  /// @param[in] x state (nx); throws std::invalid_argument on wrong size or non-finite values
  Vec control(double t, const RefV& x) const;
  /// @brief The feedforward part u_ff(t) (nu).
  Vec feedforward(double t) const;
  /// @brief Interpolated nominal state x_nom(t) (nx).
  Vec nominal_state(double t) const;
  /// @brief Interpolated gain K(t) (nu x nx).
  Mat gain(double t) const;

  /// @brief A copy shifted so that node 0 lies at t_new0, resampled on the same grid; nodes past
  ///        the old end repeat the last node (warm start for MPC).
  Policy shifted(double t_new0) const;
};

}  // namespace dmpc
