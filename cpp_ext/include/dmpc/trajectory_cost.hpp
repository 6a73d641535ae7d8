/// @file trajectory_cost.hpp
/// @brief Quadratic tracking of a time-parameterised reference trajectory (e.g. a nav_msgs/Path
///        published to the controller).
#pragma once

#include "dmpc/cost.hpp"

namespace dmpc {

/// @brief Data of TrajectoryQuadraticCost: the interpolated reference and the state error.
struct TrajectoryQuadraticCostData : public CostData {
  TrajectoryQuadraticCostData(int nx, int nu) : CostData(nx, nu), r(Vec::Zero(nx)), dx(Vec::Zero(nx)) {}
  Vec r;   ///< r(t), size nx
  Vec dx;  ///< x - r(t), size nx
};

/// @brief l(t, x, u) = 1/2 (x - r(t))^T Q (x - r(t)) + 1/2 (u - u_ref)^T R (u - u_ref),
///
/// r(t) piecewise linear through the knots (t_k, r_k), k = 0..K-1 (times strictly increasing),
/// held at r_0 before t_0 and at r_{K-1} after t_{K-1}; one knot is a constant reference
/// (the same cost as QuadraticCost). Derivatives in x and u are exact; r(t) only depends on t.
/// Finding the segment is a binary search (O(log K)); calc/calc_diff do not allocate.
class TrajectoryQuadraticCost : public CostModel {
 public:
  /// @param[in] Q state weight nx x nx (symmetrised), @param[in] R control weight nu x nu
  /// @param[in] times knot times (K >= 1, finite, strictly increasing) [s], absolute like t
  /// @param[in] X_ref knot states, K x nx (row k = r_k, finite)
  /// @param[in] u_ref (nu)
  TrajectoryQuadraticCost(const RefM& Q, const RefM& R, const RefV& times, const RefM& X_ref, const RefV& u_ref);
  std::string name() const override { return "TrajectoryQuadraticCost"; }
  std::shared_ptr<CostData> create_data() const override;
  void calc(CostData& d, double t, const RefV& x, const RefV& u) const override;
  void calc_diff(CostData& d, double t, const RefV& x, const RefV& u) const override;
  /// @brief Replace the reference (same checks as the constructor). Not thread-safe against a
  ///        running solve: call between solves.
  void set_trajectory(const RefV& times, const RefM& X_ref);
  /// @brief r(t) into r (size nx).
  void reference(double t, Vec& r) const;
  const Vec& times() const { return times_; }
  const Mat& X_ref() const { return X_ref_; }
  const Vec& u_ref() const { return u_ref_; }
  const Mat& Q() const { return Q_; }
  const Mat& R() const { return R_; }

 private:
  TrajectoryQuadraticCostData& cast(CostData& d) const;
  Mat Q_, R_;
  Vec times_;
  Mat X_ref_;  ///< K x nx
  Vec u_ref_;
};

}  // namespace dmpc
