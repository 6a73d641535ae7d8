#include "dmpc/quadratic_cost.hpp"

namespace dmpc {

namespace {
void check_symmetric(const Mat& M, const char* what) {
  if (M.size() > 0 && !((M - M.transpose()).cwiseAbs().maxCoeff() <= 1e-12 * (1.0 + M.cwiseAbs().maxCoeff())))
    throw std::invalid_argument(std::string(what) + " must be symmetric");
}

/// 1/2 d^T W d with d = a - ref, without heap temporaries (called in every rollout step).
double half_quad(const Mat& W, const RefV& a, const Vec& ref) {
  const Eigen::Index n = W.rows();
  double s = 0.0;
  for (Eigen::Index j = 0; j < n; ++j) {
    const double dj = a[j] - ref[j];
    double wj = 0.0;
    for (Eigen::Index i = 0; i < n; ++i) wj += W(i, j) * (a[i] - ref[i]);
    s += dj * wj;
  }
  return 0.5 * s;
}
}  // namespace

QuadraticCost::QuadraticCost(const RefM& Q, const RefM& R, const RefV& x_ref, const RefV& u_ref)
    : CostModel(static_cast<int>(Q.rows()), static_cast<int>(R.rows())), Q_(Q), R_(R) {
  check_shape(Q, nx_, nx_, "Q");
  check_shape(R, nu_, nu_, "R");
  check_finite(Q, "Q");
  check_finite(R, "R");
  check_symmetric(Q_, "Q");
  check_symmetric(R_, "R");
  x_ref_ = x_ref.size() == 0 ? Vec(Vec::Zero(nx_)) : Vec(x_ref);
  u_ref_ = u_ref.size() == 0 ? Vec(Vec::Zero(nu_)) : Vec(u_ref);
  check_vector(x_ref_, nx_, "x_ref");
  check_vector(u_ref_, nu_, "u_ref");
}

void QuadraticCost::calc(CostData& d, double, const RefV& x, const RefV& u) const {
  d.value = half_quad(Q_, x, x_ref_);
  if (nu_ > 0) d.value += half_quad(R_, u, u_ref_);
}

void QuadraticCost::calc_diff(CostData& d, double t, const RefV& x, const RefV& u) const {
  calc(d, t, x, u);
  for (int i = 0; i < nx_; ++i) {
    double s = 0.0;
    for (int j = 0; j < nx_; ++j) s += Q_(i, j) * (x[j] - x_ref_[j]);
    d.lx[i] = s;
  }
  d.lxx = Q_;
  d.lux.setZero();
  for (int i = 0; i < nu_; ++i) {
    double s = 0.0;
    for (int j = 0; j < nu_; ++j) s += R_(i, j) * (u[j] - u_ref_[j]);
    d.lu[i] = s;
  }
  d.luu = R_;
}

}  // namespace dmpc
