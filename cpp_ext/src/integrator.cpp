#include "dmpc/integrator.hpp"

namespace dmpc {

Integrator integrator_from_string(const std::string& name) {
  if (name == "euler") return Integrator::Euler;
  if (name == "semi_implicit_euler") return Integrator::SemiImplicitEuler;
  if (name == "rk4") return Integrator::RK4;
  throw std::invalid_argument("unknown integrator '" + name +
                              "' (expected 'euler', 'semi_implicit_euler' or 'rk4')");
}

std::string to_string(Integrator integrator) {
  switch (integrator) {
    case Integrator::Euler: return "euler";
    case Integrator::SemiImplicitEuler: return "semi_implicit_euler";
    case Integrator::RK4: return "rk4";
  }
  return "unknown";
}

StepData::StepData(const DynamicsModel& model)
    : xs(Vec::Zero(model.nx())),
      Ixs(Mat::Zero(model.nx(), model.nx())),
      x_next(Vec::Zero(model.nx())),
      Fx(Mat::Zero(model.nx(), model.nx())),
      Fu(Mat::Zero(model.nx(), model.nu())) {
  // The stages are evaluated one after the other and each stage's xdot/fx/fu is copied into
  // k/kx/ku before the next stage runs, so all four stages share one DynamicsData (for Panda a
  // pinocchio::Data of ~100 kB: one instead of four per node).
  const auto shared = model.create_data();
  for (int i = 0; i < 4; ++i) {
    stage[i] = shared;
    k[i] = Vec::Zero(model.nx());
    kx[i] = Mat::Zero(model.nx(), model.nx());
    ku[i] = Mat::Zero(model.nx(), model.nu());
  }
}

namespace {
void check_semi_implicit(const DynamicsModel& model) {
  if (model.nq() == 0)
    throw std::invalid_argument("semi_implicit_euler needs a second-order model (nq > 0), got " +
                                model.name());
}
}  // namespace

void integrate(const DynamicsModel& model, Integrator integrator, double dt, StepData& d,
               const RefV& x, const RefV& u) {
  switch (integrator) {
    case Integrator::Euler:
      model.calc(*d.stage[0], x, u);
      d.x_next = x + dt * d.stage[0]->xdot;
      return;
    case Integrator::SemiImplicitEuler: {
      check_semi_implicit(model);
      const int nq = model.nq();
      model.calc(*d.stage[0], x, u);
      d.x_next.tail(nq) = x.tail(nq) + dt * d.stage[0]->xdot.tail(nq);
      d.x_next.head(nq) = x.head(nq) + dt * d.x_next.tail(nq);
      return;
    }
    case Integrator::RK4: {
      model.calc(*d.stage[0], x, u);
      d.k[0] = d.stage[0]->xdot;
      d.xs = x + 0.5 * dt * d.k[0];
      model.calc(*d.stage[1], d.xs, u);
      d.k[1] = d.stage[1]->xdot;
      d.xs = x + 0.5 * dt * d.k[1];
      model.calc(*d.stage[2], d.xs, u);
      d.k[2] = d.stage[2]->xdot;
      d.xs = x + dt * d.k[2];
      model.calc(*d.stage[3], d.xs, u);
      d.k[3] = d.stage[3]->xdot;
      d.x_next = x + (dt / 6.0) * (d.k[0] + 2.0 * d.k[1] + 2.0 * d.k[2] + d.k[3]);
      return;
    }
  }
}

void integrate_diff(const DynamicsModel& model, Integrator integrator, double dt, StepData& d,
                    const RefV& x, const RefV& u) {
  const int nx = model.nx();
  switch (integrator) {
    case Integrator::Euler: {
      auto& s = *d.stage[0];
      model.calc_diff(s, x, u);
      d.x_next = x + dt * s.xdot;
      d.Fx = dt * s.fx;
      d.Fx.diagonal().array() += 1.0;
      d.Fu = dt * s.fu;
      return;
    }
    case Integrator::SemiImplicitEuler: {
      check_semi_implicit(model);
      const int nq = model.nq();
      auto& s = *d.stage[0];
      model.calc_diff(s, x, u);
      d.x_next.tail(nq) = x.tail(nq) + dt * s.xdot.tail(nq);
      d.x_next.head(nq) = x.head(nq) + dt * d.x_next.tail(nq);
      // v+ rows: [0 I] + dt * fx(v rows); q+ rows: [I 0] + dt * (v+ rows).
      d.Fx.bottomRows(nq) = dt * s.fx.bottomRows(nq);
      d.Fx.bottomRightCorner(nq, nq).diagonal().array() += 1.0;
      d.Fx.topRows(nq) = dt * d.Fx.bottomRows(nq);
      d.Fx.topLeftCorner(nq, nq).diagonal().array() += 1.0;
      d.Fu.bottomRows(nq) = dt * s.fu.bottomRows(nq);
      d.Fu.topRows(nq) = dt * d.Fu.bottomRows(nq);
      return;
    }
    case Integrator::RK4: {
      const double c[4] = {0.0, 0.5 * dt, 0.5 * dt, dt};
      for (int i = 0; i < 4; ++i) {
        auto& s = *d.stage[i];
        if (i == 0) {
          d.xs = x;
        } else {
          d.xs = x + c[i] * d.k[i - 1];
        }
        model.calc_diff(s, d.xs, u);
        d.k[i] = s.xdot;
        if (i == 0) {
          d.kx[0] = s.fx;
          d.ku[0] = s.fu;
        } else {
          // d xs/dx = I + c_i d k_{i-1}/dx ; d xs/du = c_i d k_{i-1}/du
          d.Ixs = c[i] * d.kx[i - 1];
          d.Ixs.diagonal().array() += 1.0;
          d.kx[i].noalias() = s.fx * d.Ixs;
          d.ku[i] = s.fu;
          d.ku[i].noalias() += c[i] * (s.fx * d.ku[i - 1]);
        }
      }
      d.x_next = x + (dt / 6.0) * (d.k[0] + 2.0 * d.k[1] + 2.0 * d.k[2] + d.k[3]);
      d.Fx = (dt / 6.0) * (d.kx[0] + 2.0 * d.kx[1] + 2.0 * d.kx[2] + d.kx[3]);
      d.Fx.diagonal().array() += 1.0;
      d.Fu = (dt / 6.0) * (d.ku[0] + 2.0 * d.ku[1] + 2.0 * d.ku[2] + d.ku[3]);
      (void)nx;
      return;
    }
  }
}

}  // namespace dmpc
