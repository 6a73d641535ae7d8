/// @file costs.hpp
/// @brief Concrete cost models: quadratic tracking, upright stabilisation, smooth wall penalty,
///        and a weighted sum. All derivatives are analytic and exact.
#pragma once

#include <vector>

#include "dmpc/cost.hpp"

namespace dmpc {

/// @brief l = 1/2 (x - x_ref)^T Q (x - x_ref) + 1/2 (u - u_ref)^T R (u - u_ref).
class QuadraticCost : public CostModel {
 public:
  /// @param[in] Q state weight nx x nx (symmetrised), @param[in] R control weight nu x nu
  /// @param[in] x_ref (nx), @param[in] u_ref (nu)
  QuadraticCost(const RefM& Q, const RefM& R, const RefV& x_ref, const RefV& u_ref);
  std::string name() const override { return "QuadraticCost"; }
  void calc(CostData& d, double t, const RefV& x, const RefV& u) const override;
  void calc_diff(CostData& d, double t, const RefV& x, const RefV& u) const override;
  /// @brief Change the reference. Not thread-safe against a running solve: call between solves.
  void set_reference(const RefV& x_ref, const RefV& u_ref);
  const Vec& x_ref() const { return x_ref_; }
  const Vec& u_ref() const { return u_ref_; }
  const Mat& Q() const { return Q_; }
  const Mat& R() const { return R_; }

 private:
  Mat Q_, R_;
  Vec x_ref_, u_ref_;
  bool q_diagonal_ = false, r_diagonal_ = false;  ///< calc() then sums w_i d_i^2 (same values)
};

/// @brief Upright stabilisation for a base with pitch/roll angles (ZYX Euler):
///        l = w_tilt (1 - cos(pitch) cos(roll)) + 1/2 w_rate (pitch_rate^2 + roll_rate^2).
///
/// 1 - cos(pitch) cos(roll) = 1 - (R e_z)_z, the drop of the base's z axis; it is ~ (pitch^2 +
/// roll^2)/2 near upright, bounded far from it (the nominal upright term of deep-value-mpc App. B).
class UprightCost : public CostModel {
 public:
  UprightCost(int nx, int nu, int pitch_index, int roll_index, int pitch_rate_index,
              int roll_rate_index, double w_tilt, double w_rate);
  std::string name() const override { return "UprightCost"; }
  void calc(CostData& d, double t, const RefV& x, const RefV& u) const override;
  void calc_diff(CostData& d, double t, const RefV& x, const RefV& u) const override;

 private:
  int ip_, ir_, ipr_, irr_;
  double w_tilt_, w_rate_;
};

/// @brief A wall: segment (a, b) in the plane with half thickness.
struct Wall {
  double ax, ay, bx, by, half_thickness;
};

/// @brief Smooth penalty for a planar position (x[ix], x[iy]) near walls (segments):
///   s_j = d_safe - dist_j(p), l = w * sum_j softplus_beta(s_j)^2,
/// with dist_j the distance to wall j's surface and softplus_beta(s) = log(1 + e^{beta s}) / beta,
/// a C-infinity hinge. Exact gradient and Hessian (the distance Hessian is (I - n n^T)/r near
/// segment end caps and zero along the straight part).
class WallPenalty : public CostModel {
 public:
  WallPenalty(int nx, int nu, int ix, int iy, std::vector<Wall> walls, double d_safe,
              double weight, double beta);
  std::string name() const override { return "WallPenalty"; }
  void calc(CostData& d, double t, const RefV& x, const RefV& u) const override;
  void calc_diff(CostData& d, double t, const RefV& x, const RefV& u) const override;
  /// @brief Signed clearance to the closest wall surface (negative inside a wall).
  double clearance(double px, double py) const;
  const std::vector<Wall>& walls() const { return walls_; }

 private:
  int ix_, iy_;
  std::vector<Wall> walls_;
  double d_safe_, weight_, beta_;
};

/// @brief Weighted sum of cost terms: l = sum_i w_i l_i.
class SumCost : public CostModel {
 public:
  struct Term {
    std::string name;
    CostModelPtr cost;
    double weight;
  };
  SumCost(int nx, int nu);
  std::string name() const override { return "SumCost"; }
  void add(const std::string& name, CostModelPtr cost, double weight = 1.0);
  /// @brief Change the weight of the term ``name`` (finite; between solves only, e.g. to switch a
  /// tracking term on and off without rebuilding the problem). Throws if no term has that name.
  void set_weight(const std::string& name, double weight);
  /// @brief Weight of the term ``name`` (throws if none has that name).
  double weight(const std::string& name) const;
  const std::vector<Term>& terms() const { return terms_; }
  std::shared_ptr<CostData> create_data() const override;
  void calc(CostData& d, double t, const RefV& x, const RefV& u) const override;
  void calc_diff(CostData& d, double t, const RefV& x, const RefV& u) const override;

 private:
  std::vector<Term> terms_;
};

/// @brief Data of a SumCost: one CostData per term.
struct SumCostData : public CostData {
  SumCostData(int nx, int nu) : CostData(nx, nu) {}
  std::vector<std::shared_ptr<CostData>> terms;
};

}  // namespace dmpc
