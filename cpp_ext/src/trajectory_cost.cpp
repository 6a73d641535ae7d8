/// @file trajectory_cost.cpp
#include "dmpc/trajectory_cost.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>

namespace dmpc {

TrajectoryQuadraticCost::TrajectoryQuadraticCost(const RefM& Q, const RefM& R, const RefV& times,
                                                 const RefM& X_ref, const RefV& u_ref)
    : CostModel(static_cast<int>(Q.rows()), static_cast<int>(R.rows())) {
  check_shape(Q, Q.rows(), Q.rows(), "Q");
  check_shape(R, R.rows(), R.rows(), "R");
  check_finite(Q, "Q");
  check_finite(R, "R");
  check_vector(u_ref, nu_, "u_ref");
  Q_ = 0.5 * (Q + Q.transpose());
  R_ = 0.5 * (R + R.transpose());
  u_ref_ = u_ref;
  set_trajectory(times, X_ref);
}

void TrajectoryQuadraticCost::set_trajectory(const RefV& times, const RefM& X_ref) {
  const Eigen::Index K = times.size();
  if (K < 1) throw std::invalid_argument("times must have at least one knot");
  check_finite(times, "times");
  for (Eigen::Index k = 1; k < K; ++k)
    if (!(times(k) > times(k - 1))) {
      std::ostringstream os;
      os << "times must be strictly increasing (times[" << k - 1 << "] = " << times(k - 1) << ", times[" << k
         << "] = " << times(k) << ")";
      throw std::invalid_argument(os.str());
    }
  check_shape(X_ref, K, nx_, "X_ref (K x nx, K = len(times))");
  check_finite(X_ref, "X_ref");
  times_ = times;
  X_ref_ = X_ref;
}

void TrajectoryQuadraticCost::reference(double t, Vec& r) const {
  const Eigen::Index K = times_.size();
  if (K == 1 || !(t > times_(0))) {  // before the first knot (or NaN t: the first knot)
    r = X_ref_.row(0).transpose();
    return;
  }
  if (t >= times_(K - 1)) {
    r = X_ref_.row(K - 1).transpose();
    return;
  }
  // first knot with time > t: 1 <= k <= K - 1
  const double* begin = times_.data();
  const Eigen::Index k = std::upper_bound(begin, begin + K, t) - begin;
  const double s = (t - times_(k - 1)) / (times_(k) - times_(k - 1));
  r = (1.0 - s) * X_ref_.row(k - 1).transpose() + s * X_ref_.row(k).transpose();
}

std::shared_ptr<CostData> TrajectoryQuadraticCost::create_data() const {
  return std::make_shared<TrajectoryQuadraticCostData>(nx_, nu_);
}

TrajectoryQuadraticCostData& TrajectoryQuadraticCost::cast(CostData& d) const {
  auto* p = data_cast<TrajectoryQuadraticCostData>(&d);
  if (p == nullptr) throw std::invalid_argument("TrajectoryQuadraticCost: data not created by create_data()");
  return *p;
}

void TrajectoryQuadraticCost::calc(CostData& data, double t, const RefV& x, const RefV& u) const {
  TrajectoryQuadraticCostData& d = cast(data);
  reference(t, d.r);
  d.dx = x - d.r;
  d.lx.noalias() = Q_ * d.dx;  // scratch
  double v = 0.5 * d.dx.dot(d.lx);
  if (nu_ > 0) {
    d.lu.noalias() = R_ * u;  // scratch: R (u - u_ref) as two products (no temporary)
    d.lu.noalias() -= R_ * u_ref_;
    v += 0.5 * (u.dot(d.lu) - u_ref_.dot(d.lu));
  }
  d.value = v;
}

void TrajectoryQuadraticCost::calc_diff(CostData& data, double t, const RefV& x, const RefV& u) const {
  TrajectoryQuadraticCostData& d = cast(data);
  reference(t, d.r);
  d.dx = x - d.r;
  d.lx.noalias() = Q_ * d.dx;
  d.lxx = Q_;
  d.value = 0.5 * d.dx.dot(d.lx);
  if (nu_ > 0) {
    d.lu.noalias() = R_ * u;
    d.lu.noalias() -= R_ * u_ref_;
    d.luu = R_;
    d.value += 0.5 * (u.dot(d.lu) - u_ref_.dot(d.lu));
  }
  d.lux.setZero();
}

}  // namespace dmpc
