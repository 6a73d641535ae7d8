#include "dmpc/problem.hpp"

#include <cmath>

namespace dmpc {

Problem::Problem(DynamicsModelPtr dynamics, CostModelPtr running, CostModelPtr terminal, int horizon,
                 double dt, Integrator integrator, const RefM& control_weight, double discount)
    : dynamics_(std::move(dynamics)),
      running_(std::move(running)),
      terminal_(std::move(terminal)),
      N_(horizon),
      dt_(dt),
      integrator_(integrator),
      gamma_(discount) {
  if (!dynamics_) throw std::invalid_argument("Problem: dynamics is required");
  const int nx = dynamics_->nx(), nu = dynamics_->nu();
  if (horizon < 1) throw std::invalid_argument("Problem: horizon must be >= 1");
  if (!(dt > 0) || !std::isfinite(dt)) throw std::invalid_argument("Problem: dt must be finite and > 0");
  if (!(discount > 0 && discount <= 1)) throw std::invalid_argument("Problem: discount must be in (0, 1]");
  for (const auto* c : {running_.get(), terminal_.get()}) {
    if (c && (c->nx() != nx || c->nu() != nu))
      throw std::invalid_argument("Problem: cost '" + c->name() + "' has (nx, nu) = (" +
                                  std::to_string(c->nx()) + ", " + std::to_string(c->nu()) +
                                  "), expected (" + std::to_string(nx) + ", " + std::to_string(nu) + ")");
  }
  if (integrator == Integrator::SemiImplicitEuler && dynamics_->nq() == 0)
    throw std::invalid_argument("Problem: semi_implicit_euler needs a second-order model (nq > 0)");
  if (control_weight.size() == 0) {
    R_ = Mat::Zero(nu, nu);
  } else {
    check_shape(control_weight, nu, nu, "control_weight");
    check_finite(control_weight, "control_weight");
    R_ = 0.5 * (control_weight + control_weight.transpose());
  }
}

double Problem::discount_factor(int k) const {
  return gamma_ == 1.0 ? 1.0 : std::pow(gamma_, k * dt_);
}

}  // namespace dmpc
