/// @file bind_integrator.cpp
/// @brief Bindings of integrator.hpp: one discrete step and its Jacobians.
#include <pybind11/eigen.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "dmpc/integrator.hpp"
#include "registry.hpp"

namespace py = pybind11;

namespace dmpc::bindings {
namespace {
void check_step_args(const DynamicsModel& model, const RefV& x, const RefV& u, double dt) {
  check_vector(x, model.nx(), "x");
  check_vector(u, model.nu(), "u");
  if (!(dt > 0.0) || !std::isfinite(dt)) throw std::invalid_argument("dt must be finite and > 0");
}

void bind_integrator(py::module_& m) {
  m.def(
      "integrate",
      [](const DynamicsModel& model, const RefV& x, const RefV& u, double dt, const std::string& integrator) {
        check_step_args(model, x, u, dt);
        const Integrator integ = integrator_from_string(integrator);
        StepData d(model);
        {
          py::gil_scoped_release release;
          integrate(model, integ, dt, d, x, u);
        }
        return Vec(d.x_next);
      },
      py::arg("model"), py::arg("x"), py::arg("u"), py::arg("dt"), py::arg("integrator") = "rk4",
      "One step x(t+dt) from x (nx,) under constant u (nu,); integrator in {'euler', "
      "'semi_implicit_euler', 'rk4'}. Returns (nx,).");
  m.def(
      "integrate_diff",
      [](const DynamicsModel& model, const RefV& x, const RefV& u, double dt, const std::string& integrator) {
        check_step_args(model, x, u, dt);
        const Integrator integ = integrator_from_string(integrator);
        StepData d(model);
        {
          py::gil_scoped_release release;
          integrate_diff(model, integ, dt, d, x, u);
        }
        return py::make_tuple(Vec(d.x_next), Mat(d.Fx), Mat(d.Fu));
      },
      py::arg("model"), py::arg("x"), py::arg("u"), py::arg("dt"), py::arg("integrator") = "rk4",
      "One step and its exact Jacobians: returns (x_next (nx,), Fx (nx, nx), Fu (nx, nu)).");
}
}  // namespace
DMPC_REGISTER_BINDINGS(integrator, 5, bind_integrator);
}  // namespace dmpc::bindings
