#include "dmpc/rollout.hpp"

#include <stdexcept>

namespace dmpc {

ForwardStepData::ForwardStepData(const DynamicsModel& model)
    : data(model.create_data()),
      k0(Vec::Zero(model.nx())),
      k1(Vec::Zero(model.nx())),
      k2(Vec::Zero(model.nx())),
      k3(Vec::Zero(model.nx())),
      xs(Vec::Zero(model.nx())) {}

void integrate_forward(const DynamicsModel& model, Integrator integrator, double dt,
                       ForwardStepData& d, const double* x, const double* u, double* x_next) {
  const int nx = model.nx();
  double* k0 = d.k0.data();
  switch (integrator) {
    case Integrator::Euler:
      model.calc_xdot(*d.data, x, u, k0);
      for (int i = 0; i < nx; ++i) x_next[i] = x[i] + dt * k0[i];
      return;
    case Integrator::SemiImplicitEuler: {
      const int nq = model.nq();
      if (nq == 0)
        throw std::invalid_argument("semi_implicit_euler needs a second-order model (nq > 0), got " +
                                    model.name());
      model.calc_xdot(*d.data, x, u, k0);
      for (int i = nq; i < nx; ++i) x_next[i] = x[i] + dt * k0[i];        // v+ = v + dt a
      for (int i = 0; i < nq; ++i) x_next[i] = x[i] + dt * x_next[nq + i];  // q+ = q + dt v+
      return;
    }
    case Integrator::RK4: {
      double* k1 = d.k1.data();
      double* k2 = d.k2.data();
      double* k3 = d.k3.data();
      double* xs = d.xs.data();
      const double h2 = 0.5 * dt, h6 = dt / 6.0;
      model.calc_xdot(*d.data, x, u, k0);
      for (int i = 0; i < nx; ++i) xs[i] = x[i] + h2 * k0[i];
      model.calc_xdot(*d.data, xs, u, k1);
      for (int i = 0; i < nx; ++i) xs[i] = x[i] + h2 * k1[i];
      model.calc_xdot(*d.data, xs, u, k2);
      for (int i = 0; i < nx; ++i) xs[i] = x[i] + dt * k2[i];
      model.calc_xdot(*d.data, xs, u, k3);
      for (int i = 0; i < nx; ++i)
        x_next[i] = x[i] + h6 * (k0[i] + 2.0 * k1[i] + 2.0 * k2[i] + k3[i]);
      return;
    }
  }
}

}  // namespace dmpc
