/// @file bind_quadratic_cost.cpp
/// @brief Bindings of quadratic_cost.hpp.
#include <pybind11/eigen.h>
#include <pybind11/pybind11.h>

#include "dmpc/quadratic_cost.hpp"
#include "registry.hpp"

namespace py = pybind11;

namespace dmpc::bindings {
namespace {
void bind_quadratic_cost(py::module_& m) {
  py::classh<QuadraticCost, CostModel>(
      m, "QuadraticCost",
      "l(t, x, u) = 1/2 (x - x_ref)^T Q (x - x_ref) + 1/2 (u - u_ref)^T R (u - u_ref).\n"
      "Q (nx, nx) and R (nu, nu) symmetric; R of shape (0, 0) gives a terminal cost (nu = 0);\n"
      "x_ref (nx,) and u_ref (nu,) default to zero.")
      .def(py::init([](const Mat& Q, const Mat& R, const Vec& x_ref, const Vec& u_ref) {
             return std::make_shared<QuadraticCost>(Q, R, x_ref, u_ref);
           }),
           py::arg("Q"), py::arg("R"), py::arg("x_ref") = Vec(), py::arg("u_ref") = Vec())
      .def_property_readonly("Q", &QuadraticCost::Q)
      .def_property_readonly("R", &QuadraticCost::R)
      .def_property_readonly("x_ref", &QuadraticCost::x_ref)
      .def_property_readonly("u_ref", &QuadraticCost::u_ref);
}
}  // namespace
DMPC_REGISTER_BINDINGS(quadratic_cost, 20, bind_quadratic_cost);
}  // namespace dmpc::bindings
