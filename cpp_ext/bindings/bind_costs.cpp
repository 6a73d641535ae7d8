/// @file bind_costs.cpp
/// @brief Bindings of costs.hpp.
#include <pybind11/eigen.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "dmpc/costs.hpp"
#include "registry.hpp"

namespace py = pybind11;

namespace dmpc::bindings {
namespace {
void bind_costs(py::module_& m) {
  py::classh<QuadraticCost, CostModel>(
      m, "QuadraticCost",
      "l = 1/2 (x - x_ref)^T Q (x - x_ref) + 1/2 (u - u_ref)^T R (u - u_ref); Q (nx, nx), R (nu, nu).")
      .def(py::init([](const RefM& Q, const RefM& R, std::optional<Vec> x_ref, std::optional<Vec> u_ref) {
             return std::make_shared<QuadraticCost>(Q, R, x_ref ? *x_ref : Vec::Zero(Q.rows()),
                                                    u_ref ? *u_ref : Vec::Zero(R.rows()));
           }),
           py::arg("Q"), py::arg("R"), py::arg("x_ref") = py::none(), py::arg("u_ref") = py::none())
      .def("set_reference", &QuadraticCost::set_reference, py::arg("x_ref"), py::arg("u_ref"),
           "Set x_ref (nx,) and u_ref (nu,). Call between solves, not during one.")
      .def_property_readonly("x_ref", &QuadraticCost::x_ref)
      .def_property_readonly("u_ref", &QuadraticCost::u_ref)
      .def_property_readonly("Q", &QuadraticCost::Q)
      .def_property_readonly("R", &QuadraticCost::R);

  py::classh<UprightCost, CostModel>(
      m, "UprightCost",
      "l = w_tilt (1 - cos(pitch) cos(roll)) + 1/2 w_rate (pitch_rate^2 + roll_rate^2), by state indices.")
      .def(py::init<int, int, int, int, int, int, double, double>(), py::arg("nx"), py::arg("nu"),
           py::arg("pitch_index"), py::arg("roll_index"), py::arg("pitch_rate_index"),
           py::arg("roll_rate_index"), py::arg("w_tilt"), py::arg("w_rate"));

  py::class_<Wall>(m, "Wall", "A wall: segment (ax, ay)-(bx, by) with a half thickness [m].")
      .def(py::init<double, double, double, double, double>(), py::arg("ax"), py::arg("ay"),
           py::arg("bx"), py::arg("by"), py::arg("half_thickness") = 0.0)
      .def_readwrite("ax", &Wall::ax)
      .def_readwrite("ay", &Wall::ay)
      .def_readwrite("bx", &Wall::bx)
      .def_readwrite("by", &Wall::by)
      .def_readwrite("half_thickness", &Wall::half_thickness)
      .def("__repr__", [](const Wall& w) {
        return "Wall((" + std::to_string(w.ax) + ", " + std::to_string(w.ay) + ") -> (" +
               std::to_string(w.bx) + ", " + std::to_string(w.by) + "), half_thickness=" +
               std::to_string(w.half_thickness) + ")";
      });

  py::classh<WallPenalty, CostModel>(
      m, "WallPenalty",
      "Smooth wall penalty on the planar position (x[ix], x[iy]):\n"
      "l = weight * sum_j softplus_beta(d_safe - clearance_j)^2.")
      .def(py::init<int, int, int, int, std::vector<Wall>, double, double, double>(), py::arg("nx"),
           py::arg("nu"), py::arg("ix"), py::arg("iy"), py::arg("walls"), py::arg("d_safe"),
           py::arg("weight"), py::arg("beta") = 20.0)
      .def("clearance", &WallPenalty::clearance, py::arg("px"), py::arg("py"),
           "Distance from (px, py) to the closest wall surface (negative inside a wall).")
      .def_property_readonly("walls", &WallPenalty::walls);

  py::classh<SumCost, CostModel>(m, "SumCost", "Weighted sum of cost terms. Add all terms before solving.")
      .def(py::init<int, int>(), py::arg("nx"), py::arg("nu"))
      .def("add", &SumCost::add, py::arg("name"), py::arg("cost"), py::arg("weight") = 1.0)
      .def("set_weight", &SumCost::set_weight, py::arg("name"), py::arg("weight"),
           "Change the weight of term ``name`` (finite). Call between solves, not during one.")
      .def("weight", &SumCost::weight, py::arg("name"), "Weight of term ``name``.")
      .def_property_readonly("term_names", [](const SumCost& s) {
        std::vector<std::string> names;
        for (const auto& t : s.terms()) names.push_back(t.name);
        return names;
      });
}
}  // namespace
DMPC_REGISTER_BINDINGS(costs, 15, bind_costs);
}  // namespace dmpc::bindings
