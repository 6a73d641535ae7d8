/// @file quadratic_cost.hpp
/// @brief Quadratic tracking cost l(t, x, u) = 1/2 (x - x_ref)^T Q (x - x_ref)
///        + 1/2 (u - u_ref)^T R (u - u_ref); with nu = 0 (R empty) it is a terminal cost.
#pragma once

#include "dmpc/cost.hpp"

namespace dmpc {

/// @brief Time-invariant quadratic cost (symmetric Q, R; no cross term).
///
/// value = 1/2 dx^T Q dx + 1/2 du^T R du with dx = x - x_ref, du = u - u_ref;
/// lx = Q dx, lu = R du, lxx = Q, luu = R, lux = 0.
class QuadraticCost : public CostModel {
 public:
  /// @param[in] Q state weight, nx x nx, symmetric
  /// @param[in] R control weight, nu x nu, symmetric (0 x 0 for a terminal cost)
  /// @param[in] x_ref state reference, size nx (empty = zero)
  /// @param[in] u_ref control reference, size nu (empty = zero)
  QuadraticCost(const RefM& Q, const RefM& R, const RefV& x_ref = Vec(), const RefV& u_ref = Vec());
  std::string name() const override { return "QuadraticCost"; }
  void calc(CostData& data, double t, const RefV& x, const RefV& u) const override;
  void calc_diff(CostData& data, double t, const RefV& x, const RefV& u) const override;
  const Mat& Q() const { return Q_; }
  const Mat& R() const { return R_; }
  const Vec& x_ref() const { return x_ref_; }
  const Vec& u_ref() const { return u_ref_; }

 private:
  Mat Q_, R_;
  Vec x_ref_, u_ref_;
};

}  // namespace dmpc
