/// @file bind_small_models.cpp
/// @brief Bindings of the small models (models/small.hpp).
#include <pybind11/eigen.h>
#include <pybind11/pybind11.h>

#include "dmpc/models/small.hpp"
#include "registry.hpp"

namespace py = pybind11;

namespace dmpc::bindings {
namespace {
void bind_small_models(py::module_& m) {
  py::classh<LinearDynamics, DynamicsModel>(m, "LinearDynamics", "xdot = A x + B u; A (nx, nx), B (nx, nu).")
      .def(py::init<const RefM&, const RefM&>(), py::arg("A"), py::arg("B"))
      .def_property_readonly("A", &LinearDynamics::A)
      .def_property_readonly("B", &LinearDynamics::B);
  py::classh<PendulumDynamics, DynamicsModel>(
      m, "PendulumDynamics",
      "Pendulum, x = [theta, theta_dot] (theta = 0 upright), u = [torque]:\n"
      "m l^2 theta_ddot = m g l sin(theta) - b theta_dot + u.")
      .def(py::init<double, double, double, double>(), py::arg("mass") = 1.0, py::arg("length") = 1.0,
           py::arg("damping") = 0.0, py::arg("gravity") = 9.81)
      .def_property_readonly("mass", &PendulumDynamics::mass)
      .def_property_readonly("length", &PendulumDynamics::length)
      .def_property_readonly("damping", &PendulumDynamics::damping)
      .def_property_readonly("gravity", &PendulumDynamics::gravity);
  py::classh<PointMass2D, DynamicsModel>(
      m, "PointMass2D", "Planar point mass, x = [px, py, vx, vy], u = [Fx, Fy]: m v_dot = u - c v.")
      .def(py::init<double, double>(), py::arg("mass") = 1.0, py::arg("damping") = 0.0)
      .def_property_readonly("mass", &PointMass2D::mass)
      .def_property_readonly("damping", &PointMass2D::damping);
}
}  // namespace
DMPC_REGISTER_BINDINGS(small_models, 10, bind_small_models);
}  // namespace dmpc::bindings
