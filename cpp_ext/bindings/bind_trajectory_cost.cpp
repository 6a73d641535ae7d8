/// @file bind_trajectory_cost.cpp
/// @brief Bindings of trajectory_cost.hpp.
#include <pybind11/eigen.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <optional>

#include "dmpc/trajectory_cost.hpp"
#include "registry.hpp"

namespace py = pybind11;

namespace dmpc::bindings {
namespace {
void bind_trajectory_cost(py::module_& m) {
  py::classh<TrajectoryQuadraticCost, CostModel>(
      m, "TrajectoryQuadraticCost",
      "l(t, x, u) = 1/2 (x - r(t))^T Q (x - r(t)) + 1/2 (u - u_ref)^T R (u - u_ref), with r(t)\n"
      "piecewise linear through the knots (times[k], X_ref[k]) (times strictly increasing, absolute\n"
      "like the solver's t) and held at the first / last knot outside them.")
      .def(py::init([](const RefM& Q, const RefM& R, const RefV& times, const RefM& X_ref,
                       std::optional<Vec> u_ref) {
             return std::make_shared<TrajectoryQuadraticCost>(Q, R, times, X_ref,
                                                              u_ref ? *u_ref : Vec::Zero(R.rows()));
           }),
           py::arg("Q"), py::arg("R"), py::arg("times"), py::arg("X_ref"), py::arg("u_ref") = py::none())
      .def("set_trajectory", &TrajectoryQuadraticCost::set_trajectory, py::arg("times"), py::arg("X_ref"),
           "Replace the knots: times (K,), X_ref (K, nx). Call between solves, not during one.")
      .def(
          "reference",
          [](const TrajectoryQuadraticCost& c, double t) {
            Vec r(c.nx());
            c.reference(t, r);
            return r;
          },
          py::arg("t"), "r(t), (nx,).")
      .def_property_readonly("times", &TrajectoryQuadraticCost::times)
      .def_property_readonly("X_ref", &TrajectoryQuadraticCost::X_ref)
      .def_property_readonly("u_ref", &TrajectoryQuadraticCost::u_ref)
      .def_property_readonly("Q", &TrajectoryQuadraticCost::Q)
      .def_property_readonly("R", &TrajectoryQuadraticCost::R);
}
}  // namespace
DMPC_REGISTER_BINDINGS(trajectory_cost, 16, bind_trajectory_cost);
}  // namespace dmpc::bindings
