#include "dmpc/models/small.hpp"

#include <cmath>

namespace dmpc {

LinearDynamics::LinearDynamics(const RefM& A, const RefM& B)
    : DynamicsModel(static_cast<int>(A.rows()), static_cast<int>(B.cols())), A_(A), B_(B) {
  check_shape(A, A.rows(), A.rows(), "A");
  check_shape(B, A.rows(), B.cols(), "B");
  check_finite(A, "A");
  check_finite(B, "B");
}

void LinearDynamics::calc(DynamicsData& d, const RefV& x, const RefV& u) const {
  d.xdot.noalias() = A_ * x;
  d.xdot.noalias() += B_ * u;
}

void LinearDynamics::calc_diff(DynamicsData& d, const RefV& x, const RefV& u) const {
  calc(d, x, u);
  d.fx = A_;
  d.fu = B_;
}

PendulumDynamics::PendulumDynamics(double mass, double length, double damping, double gravity)
    : DynamicsModel(2, 1, 1), m_(mass), l_(length), b_(damping), g_(gravity) {
  if (!(mass > 0) || !(length > 0) || !(damping >= 0) || !std::isfinite(gravity))
    throw std::invalid_argument("PendulumDynamics needs mass > 0, length > 0, damping >= 0");
}

void PendulumDynamics::calc(DynamicsData& d, const RefV& x, const RefV& u) const {
  const double ml2 = m_ * l_ * l_;
  d.xdot[0] = x[1];
  d.xdot[1] = (g_ / l_) * std::sin(x[0]) + (u[0] - b_ * x[1]) / ml2;
}

void PendulumDynamics::calc_xdot(DynamicsData&, const double* x, const double* u,
                                 double* xdot) const {
  const double ml2 = m_ * l_ * l_;
  xdot[0] = x[1];
  xdot[1] = (g_ / l_) * std::sin(x[0]) + (u[0] - b_ * x[1]) / ml2;
}

void PendulumDynamics::calc_diff(DynamicsData& d, const RefV& x, const RefV& u) const {
  calc(d, x, u);
  const double ml2 = m_ * l_ * l_;
  d.fx << 0.0, 1.0, (g_ / l_) * std::cos(x[0]), -b_ / ml2;
  d.fu << 0.0, 1.0 / ml2;
}

PointMass2D::PointMass2D(double mass, double damping)
    : DynamicsModel(4, 2, 2), m_(mass), c_(damping) {
  if (!(mass > 0) || !(damping >= 0))
    throw std::invalid_argument("PointMass2D needs mass > 0 and damping >= 0");
}

void PointMass2D::calc(DynamicsData& d, const RefV& x, const RefV& u) const {
  d.xdot.head<2>() = x.tail<2>();
  d.xdot.tail<2>() = (u - c_ * x.tail<2>()) / m_;
}

void PointMass2D::calc_diff(DynamicsData& d, const RefV& x, const RefV& u) const {
  calc(d, x, u);
  d.fx.setZero();
  d.fx(0, 2) = 1.0;
  d.fx(1, 3) = 1.0;
  d.fx(2, 2) = -c_ / m_;
  d.fx(3, 3) = -c_ / m_;
  d.fu.setZero();
  d.fu(2, 0) = 1.0 / m_;
  d.fu(3, 1) = 1.0 / m_;
}

}  // namespace dmpc
