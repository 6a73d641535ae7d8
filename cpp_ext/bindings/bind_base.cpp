/// @file bind_base.cpp
/// @brief Bindings of the abstract DynamicsModel / CostModel and their Data, with trampolines
///        so that a Python subclass can define a dynamics or cost model (for prototyping).
///
/// All classes use pybind11's smart_holder (py::classh) so that a Python subclass handed to a
/// C++ solver as shared_ptr stays alive and keeps its Python overrides.
#include <pybind11/eigen.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "dmpc/cost.hpp"
#include "dmpc/dynamics.hpp"
#include "registry.hpp"

namespace py = pybind11;

namespace dmpc::bindings {
namespace {

void check_data_shapes(const DynamicsData& d, int nx, int nu, bool diff, const std::string& who) {
  if (d.xdot.size() != nx)
    throw std::invalid_argument(who + ".calc must leave data.xdot with size " + std::to_string(nx));
  if (diff && (d.fx.rows() != nx || d.fx.cols() != nx || d.fu.rows() != nx || d.fu.cols() != nu))
    throw std::invalid_argument(who + ".calc_diff must leave data.fx (" + std::to_string(nx) + "x" +
                                std::to_string(nx) + ") and data.fu (" + std::to_string(nx) + "x" +
                                std::to_string(nu) + ")");
}

/// Trampoline: Python implements calc(data, x, u) and calc_diff(data, x, u).
class PyDynamicsModel : public DynamicsModel, public py::trampoline_self_life_support {
 public:
  using DynamicsModel::DynamicsModel;
  void calc(DynamicsData& data, const RefV& x, const RefV& u) const override {
    {
      py::gil_scoped_acquire gil;
      py::function f = py::get_override(static_cast<const DynamicsModel*>(this), "calc");
      if (!f) throw std::runtime_error("DynamicsModel subclass must implement calc(data, x, u)");
      f(py::cast(&data, py::return_value_policy::reference), Vec(x), Vec(u));
    }
    check_data_shapes(data, nx_, nu_, false, name());
  }
  void calc_diff(DynamicsData& data, const RefV& x, const RefV& u) const override {
    {
      py::gil_scoped_acquire gil;
      py::function f = py::get_override(static_cast<const DynamicsModel*>(this), "calc_diff");
      if (!f) throw std::runtime_error("DynamicsModel subclass must implement calc_diff(data, x, u)");
      f(py::cast(&data, py::return_value_policy::reference), Vec(x), Vec(u));
    }
    check_data_shapes(data, nx_, nu_, true, name());
  }
  /// The Python class name (the `name` property is not overridable from Python).
  std::string name() const override {
    py::gil_scoped_acquire gil;
    return py::str(py::type::of(py::cast(static_cast<const DynamicsModel*>(this))).attr("__name__"));
  }
};

void check_cost_shapes(const CostData& d, int nx, int nu, bool diff, const std::string& who) {
  if (!diff) return;
  if (d.lx.size() != nx || d.lu.size() != nu || d.lxx.rows() != nx || d.lxx.cols() != nx ||
      d.luu.rows() != nu || d.luu.cols() != nu || d.lux.rows() != nu || d.lux.cols() != nx)
    throw std::invalid_argument(who + ".calc_diff must leave lx(" + std::to_string(nx) + "), lu(" +
                                std::to_string(nu) + "), lxx, luu, lux with their sizes");
}

class PyCostModel : public CostModel, public py::trampoline_self_life_support {
 public:
  using CostModel::CostModel;
  void calc(CostData& data, double t, const RefV& x, const RefV& u) const override {
    py::gil_scoped_acquire gil;
    py::function f = py::get_override(static_cast<const CostModel*>(this), "calc");
    if (!f) throw std::runtime_error("CostModel subclass must implement calc(data, t, x, u)");
    f(py::cast(&data, py::return_value_policy::reference), t, Vec(x), Vec(u));
  }
  void calc_diff(CostData& data, double t, const RefV& x, const RefV& u) const override {
    {
      py::gil_scoped_acquire gil;
      py::function f = py::get_override(static_cast<const CostModel*>(this), "calc_diff");
      if (!f) throw std::runtime_error("CostModel subclass must implement calc_diff(data, t, x, u)");
      f(py::cast(&data, py::return_value_policy::reference), t, Vec(x), Vec(u));
    }
    check_cost_shapes(data, nx_, nu_, true, name());
  }
  std::string name() const override {
    py::gil_scoped_acquire gil;
    return py::str(py::type::of(py::cast(static_cast<const CostModel*>(this))).attr("__name__"));
  }
};

void bind_base(py::module_& m) {
  py::classh<DynamicsData>(m, "DynamicsData",
                           "Buffers of one dynamics evaluation: xdot (nx), fx (nx x nx), fu (nx x nu).")
      .def(py::init<int, int>(), py::arg("nx"), py::arg("nu"))
      .def_readwrite("xdot", &DynamicsData::xdot, "state derivative, shape (nx,)")
      .def_readwrite("fx", &DynamicsData::fx, "d xdot/dx, shape (nx, nx)")
      .def_readwrite("fu", &DynamicsData::fu, "d xdot/du = g(x), shape (nx, nu)");

  py::classh<DynamicsModel, PyDynamicsModel>(
      m, "DynamicsModel",
      "Continuous-time control-affine dynamics xdot = f(x) + g(x) u.\n\n"
      "Subclass in Python: call DynamicsModel.__init__(self, nx, nu, nq=0) and implement\n"
      "calc(data, x, u) (set data.xdot) and calc_diff(data, x, u) (set data.fx, data.fu).")
      .def(py::init<int, int, int>(), py::arg("nx"), py::arg("nu"), py::arg("nq") = 0)
      .def_property_readonly("nx", &DynamicsModel::nx)
      .def_property_readonly("nu", &DynamicsModel::nu)
      .def_property_readonly("nq", &DynamicsModel::nq)
      .def_property_readonly("name", &DynamicsModel::name)
      .def("create_data", &DynamicsModel::create_data)
      .def(
          "calc",
          [](const DynamicsModel& self, DynamicsData& d, const RefV& x, const RefV& u) {
            check_vector(x, self.nx(), "x");
            check_vector(u, self.nu(), "u");
            self.calc(d, x, u);
          },
          py::arg("data"), py::arg("x"), py::arg("u"), "data.xdot = f(x) + g(x) u; x (nx,), u (nu,)")
      .def(
          "calc_diff",
          [](const DynamicsModel& self, DynamicsData& d, const RefV& x, const RefV& u) {
            check_vector(x, self.nx(), "x");
            check_vector(u, self.nu(), "u");
            self.calc_diff(d, x, u);
          },
          py::arg("data"), py::arg("x"), py::arg("u"), "fill data.fx (nx, nx) and data.fu (nx, nu)")
      .def(
          "xdot",
          [](const DynamicsModel& self, const RefV& x, const RefV& u) {
            check_vector(x, self.nx(), "x");
            check_vector(u, self.nu(), "u");
            auto d = self.create_data();
            self.calc(*d, x, u);
            return Vec(d->xdot);
          },
          py::arg("x"), py::arg("u"), "Convenience: returns f(x) + g(x) u, shape (nx,)")
      .def(
          "jacobians",
          [](const DynamicsModel& self, const RefV& x, const RefV& u) {
            check_vector(x, self.nx(), "x");
            check_vector(u, self.nu(), "u");
            auto d = self.create_data();
            self.calc(*d, x, u);
            self.calc_diff(*d, x, u);
            return py::make_tuple(Mat(d->fx), Mat(d->fu));
          },
          py::arg("x"), py::arg("u"), "Convenience: returns (fx (nx, nx), fu (nx, nu))");

  py::classh<CostData>(m, "CostData",
                       "Results of one cost evaluation: value, lx (nx), lu (nu), lxx, luu, lux (nu x nx).")
      .def(py::init<int, int>(), py::arg("nx"), py::arg("nu"))
      .def_readwrite("value", &CostData::value)
      .def_readwrite("lx", &CostData::lx)
      .def_readwrite("lu", &CostData::lu)
      .def_readwrite("lxx", &CostData::lxx)
      .def_readwrite("luu", &CostData::luu)
      .def_readwrite("lux", &CostData::lux);

  py::classh<CostModel, PyCostModel>(
      m, "CostModel",
      "Cost l(t, x, u) with analytic derivatives. Subclass in Python: CostModel.__init__(self, nx, nu),\n"
      "implement calc(data, t, x, u) (set data.value) and calc_diff(data, t, x, u) (value and derivatives).")
      .def(py::init<int, int>(), py::arg("nx"), py::arg("nu"))
      .def_property_readonly("nx", &CostModel::nx)
      .def_property_readonly("nu", &CostModel::nu)
      .def_property_readonly("name", &CostModel::name)
      .def("create_data", &CostModel::create_data)
      .def(
          "calc",
          [](const CostModel& self, CostData& d, double t, const RefV& x, const RefV& u) {
            check_vector(x, self.nx(), "x");
            check_vector(u, self.nu(), "u");
            self.calc(d, t, x, u);
          },
          py::arg("data"), py::arg("t"), py::arg("x"), py::arg("u"))
      .def(
          "calc_diff",
          [](const CostModel& self, CostData& d, double t, const RefV& x, const RefV& u) {
            check_vector(x, self.nx(), "x");
            check_vector(u, self.nu(), "u");
            self.calc_diff(d, t, x, u);
          },
          py::arg("data"), py::arg("t"), py::arg("x"), py::arg("u"))
      .def(
          "value",
          [](const CostModel& self, double t, const RefV& x, const RefV& u) {
            check_vector(x, self.nx(), "x");
            check_vector(u, self.nu(), "u");
            auto d = self.create_data();
            self.calc(*d, t, x, u);
            return d->value;
          },
          py::arg("t"), py::arg("x"), py::arg("u"), "Convenience: l(t, x, u)")
      .def(
          "derivatives",
          [](const CostModel& self, double t, const RefV& x, const RefV& u) {
            check_vector(x, self.nx(), "x");
            check_vector(u, self.nu(), "u");
            auto d = self.create_data();
            self.calc_diff(*d, t, x, u);
            py::dict out;
            out["value"] = d->value;
            out["lx"] = Vec(d->lx);
            out["lu"] = Vec(d->lu);
            out["lxx"] = Mat(d->lxx);
            out["luu"] = Mat(d->luu);
            out["lux"] = Mat(d->lux);
            return out;
          },
          py::arg("t"), py::arg("x"), py::arg("u"),
          "Convenience: dict with value, lx (nx,), lu (nu,), lxx (nx,nx), luu (nu,nu), lux (nu,nx)");
}

}  // namespace
DMPC_REGISTER_BINDINGS(base, 0, bind_base);
}  // namespace dmpc::bindings
