/// @file bind_critics.cpp
/// @brief Bindings of critic.hpp (CriticModel with a trampoline, CriticMLP) and value_costs.hpp
///        (ValueTerminalCost, ValueRunningCost).
#include <pybind11/eigen.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cmath>

#include "dmpc/critic.hpp"
#include "dmpc/value_costs.hpp"
#include "registry.hpp"

namespace py = pybind11;

namespace dmpc::detail {
const char* kernel_isa();  // src/critic_kernels.cpp
}  // namespace dmpc::detail

namespace dmpc::bindings {
namespace {
const char* critic_kernel_isa() { return detail::kernel_isa(); }

/// Shape check after a Python override; the (GIL-taking) name is only built on failure.
void check_critic_data(const CriticData& d, int nx, bool diff, const CriticModel& model) {
  if (!std::isfinite(d.V)) throw std::invalid_argument(model.name() + ": data.V is not finite");
  if (!diff) return;
  if (d.Vx.size() != nx || d.Vxx.rows() != nx || d.Vxx.cols() != nx || d.Vtaux.size() != nx)
    throw std::invalid_argument(model.name() + ".calc_diff must leave data.Vx (" + std::to_string(nx) +
                                "), data.Vxx (" + std::to_string(nx) + "x" + std::to_string(nx) +
                                ") and data.Vtaux (" + std::to_string(nx) + ")");
}

/// Trampoline: Python implements calc(data, tau, x) and calc_diff(data, tau, x); optionally
/// calc_grad(data, tau, x) and calc_third(data, tau, x, vx, vtau).
class PyCriticModel : public CriticModel, public py::trampoline_self_life_support {
 public:
  using CriticModel::CriticModel;
  void calc(CriticData& data, double tau, const RefV& x) const override {
    {
      py::gil_scoped_acquire gil;
      py::function f = py::get_override(static_cast<const CriticModel*>(this), "calc");
      if (!f) throw std::runtime_error("CriticModel subclass must implement calc(data, tau, x)");
      f(py::cast(&data, py::return_value_policy::reference), tau, Vec(x));
    }
    check_critic_data(data, nx_, false, *this);
  }
  void calc_grad(CriticData& data, double tau, const RefV& x) const override {
    {
      py::gil_scoped_acquire gil;
      py::function f = py::get_override(static_cast<const CriticModel*>(this), "calc_grad");
      if (f) {
        f(py::cast(&data, py::return_value_policy::reference), tau, Vec(x));
        if (data.Vx.size() != nx_)
          throw std::invalid_argument(name() + ".calc_grad must leave data.Vx with size " +
                                      std::to_string(nx_));
        return;
      }
    }
    calc_diff(data, tau, x);
  }
  void calc_diff(CriticData& data, double tau, const RefV& x) const override {
    {
      py::gil_scoped_acquire gil;
      py::function f = py::get_override(static_cast<const CriticModel*>(this), "calc_diff");
      if (!f) throw std::runtime_error("CriticModel subclass must implement calc_diff(data, tau, x)");
      f(py::cast(&data, py::return_value_policy::reference), tau, Vec(x));
    }
    check_critic_data(data, nx_, true, *this);
  }
  bool provides_third() const override {
    py::gil_scoped_acquire gil;
    return static_cast<bool>(py::get_override(static_cast<const CriticModel*>(this), "calc_third"));
  }
  void calc_third(CriticData& data, double tau, const RefV& x, const RefV& vx,
                  double vtau) const override {
    {
      py::gil_scoped_acquire gil;
      py::function f = py::get_override(static_cast<const CriticModel*>(this), "calc_third");
      if (!f) throw std::logic_error(name() + " does not implement calc_third");
      f(py::cast(&data, py::return_value_policy::reference), tau, Vec(x), Vec(vx), vtau);
    }
    if (data.Kv.rows() != nx_ || data.Kv.cols() != nx_)
      throw std::invalid_argument(name() + ".calc_third must leave data.Kv with shape (" +
                                  std::to_string(nx_) + ", " + std::to_string(nx_) + ")");
  }
  /// The Python class name (the `name` property is not overridable from Python).
  std::string name() const override {
    py::gil_scoped_acquire gil;
    return py::str(py::type::of(py::cast(static_cast<const CriticModel*>(this))).attr("__name__"));
  }
};

ValueRunningCost::ThirdOrder third_order_from_string(const std::string& s) {
  if (s == "auto") return ValueRunningCost::ThirdOrder::Auto;
  if (s == "fd") return ValueRunningCost::ThirdOrder::FiniteDifference;
  if (s == "drop") return ValueRunningCost::ThirdOrder::Drop;
  throw std::invalid_argument("third_order must be 'auto', 'fd' or 'drop', got '" + s + "'");
}

std::string third_order_to_string(ValueRunningCost::ThirdOrder t) {
  switch (t) {
    case ValueRunningCost::ThirdOrder::Auto: return "auto";
    case ValueRunningCost::ThirdOrder::FiniteDifference: return "fd";
    case ValueRunningCost::ThirdOrder::Drop: return "drop";
  }
  return "auto";
}

void check_tau(double tau) {
  if (!std::isfinite(tau)) throw std::invalid_argument("tau must be finite");
}

py::dict evaluate_batch(const CriticModel& self, const RefV& taus, const RefM& X, bool derivatives) {
  const Eigen::Index B = taus.size();
  const int nx = self.nx();
  check_shape(X, B, nx, "X (B x nx, B = len(taus))");
  check_finite(taus, "taus");
  check_finite(X, "X");
  py::array_t<double> V({B}), Vtau({B}), Vx({B, static_cast<Eigen::Index>(nx)}),
      Vtaux({B, static_cast<Eigen::Index>(nx)}),
      Vxx({B, static_cast<Eigen::Index>(nx), static_cast<Eigen::Index>(nx)});
  double* pV = V.mutable_data();
  double* pVtau = Vtau.mutable_data();
  double* pVx = Vx.mutable_data();
  double* pVtaux = Vtaux.mutable_data();
  double* pVxx = Vxx.mutable_data();
  {
    py::gil_scoped_release release;
    if (const auto* mlp = dynamic_cast<const CriticMLP*>(&self); mlp != nullptr && derivatives) {
      // Batched path, written straight into the row-major numpy arrays.
      mlp->calc_diff_batch(taus, X, pV, pVtau, pVx, pVtaux, pVxx);
    } else {
    auto d = self.create_data();
    Vec x(nx);
    for (Eigen::Index b = 0; b < B; ++b) {
      x = X.row(b).transpose();
      if (!derivatives) {
        self.calc(*d, taus(b), x);
        pV[b] = d->V;
        continue;
      }
      self.calc_diff(*d, taus(b), x);
      pV[b] = d->V;
      pVtau[b] = d->Vtau;
      for (int i = 0; i < nx; ++i) {
        pVx[b * nx + i] = d->Vx(i);
        pVtaux[b * nx + i] = d->Vtaux(i);
        for (int j = 0; j < nx; ++j) pVxx[(b * nx + i) * nx + j] = d->Vxx(i, j);
      }
    }
    }
  }
  py::dict out;
  out["V"] = V;
  if (derivatives) {
    out["Vx"] = Vx;
    out["Vxx"] = Vxx;
    out["Vtau"] = Vtau;
    out["Vtaux"] = Vtaux;
  }
  return out;
}

void bind_critics(py::module_& m) {
  // DynamicsModel.input_jacobians (the hook of dynamics.hpp used by ValueRunningCost), added
  // to the class bound in bind_base.cpp.
  {
    py::object cls = m.attr("DynamicsModel");
    cls.attr("input_jacobians") = py::cpp_function(
        [](const DynamicsModel& s, const RefV& x, const RefV& p, const RefV& w) {
          check_vector(x, s.nx(), "x");
          check_vector(p, s.nx(), "p");
          check_vector(w, s.nu(), "w");
          auto at_zero = s.create_data();
          auto scratch = s.create_data();
          Vec u0 = Vec::Zero(s.nu()), us(s.nu());
          Mat Gp(s.nu(), s.nx()), Gw(s.nx(), s.nx());
          s.calc_diff(*at_zero, x, u0);
          s.calc_input_jacobians(*at_zero, *scratch, x, p, w, us, Gp, Gw);
          return py::make_tuple(Gp, Gw);
        },
        py::is_method(cls), py::name("input_jacobians"), py::arg("x"), py::arg("p"), py::arg("w"),
        "Input-matrix derivatives (Deep Value running cost): returns (Gp, Gw) with\n"
        "Gp[j, :] = p^T d g_j(x)/dx, shape (nu, nx), and Gw = d(g(x) w)/dx, shape (nx, nx);\n"
        "x (nx,), p (nx,), w (nu,). g = fu (control-affine dynamics).");
  }
  {
    py::object cls = m.attr("DynamicsModel");
    cls.attr("drift_input_projection") = py::cpp_function(
        [](const DynamicsModel& s, const RefV& x, const RefV& p) {
          check_vector(x, s.nx(), "x");
          check_vector(p, s.nx(), "p");
          auto data = s.create_data();
          Vec f(s.nx()), y(s.nu()), us(s.nu());
          s.calc_drift_input_projection(*data, x, p, us, f, y);
          return py::make_tuple(f, y);
        },
        py::is_method(cls), py::name("drift_input_projection"), py::arg("x"), py::arg("p"),
        "Drift and projected input matrix (rollout path of the Deep Value running cost):\n"
        "returns (f, y) with f = xdot(x, 0), shape (nx,), and y = g(x)^T p, shape (nu,);\n"
        "x (nx,), p (nx,).");
  }
  py::classh<CriticData>(m, "CriticData",
                         "Critic results: V, Vx (nx), Vxx (nx, nx), Vtau, Vtaux (nx), Kv (nx, nx).\n"
                         "tau is the time-to-go; Kv = d/dx [Vxx vx + Vtaux vtau] (calc_third).")
      .def(py::init<int>(), py::arg("nx"))
      .def_readwrite("V", &CriticData::V)
      .def_readwrite("Vx", &CriticData::Vx, "dV/dx, shape (nx,)")
      .def_readwrite("Vxx", &CriticData::Vxx, "d2V/dx2, shape (nx, nx)")
      .def_readwrite("Vtau", &CriticData::Vtau, "dV/dtau (tau = time-to-go)")
      .def_readwrite("Vtaux", &CriticData::Vtaux, "d2V/(dtau dx), shape (nx,)")
      .def_readwrite("Kv", &CriticData::Kv, "third-derivative contraction, shape (nx, nx)");

  py::classh<CriticModel, PyCriticModel>(
      m, "CriticModel",
      "Value function V(tau, x; goal), tau = time-to-go [s] (Deep Value MPC critic).\n\n"
      "Subclass in Python: CriticModel.__init__(self, nx, ng) and implement\n"
      "  calc(data, tau, x): set data.V\n"
      "  calc_diff(data, tau, x): set data.V, Vx (nx,), Vxx (nx, nx), Vtau, Vtaux (nx,)\n"
      "optionally calc_grad(data, tau, x) (V, Vx, Vtau only; defaults to calc_diff) and\n"
      "calc_third(data, tau, x, vx, vtau): set data.Kv = d/dx [Vxx vx + Vtaux vtau] (nx, nx)\n"
      "(called right after calc_diff at the same point; without it ValueRunningCost obtains that\n"
      "term of its Hessian by finite differences of calc_diff). The goal is read with self.goal.\n"
      "Thread-safety: set_goal only between solves.")
      .def(py::init<int, int>(), py::arg("nx"), py::arg("ng") = 0)
      .def_property_readonly("nx", &CriticModel::nx)
      .def_property_readonly("ng", &CriticModel::ng)
      .def_property_readonly("name", &CriticModel::name)
      .def_property_readonly("provides_third", &CriticModel::provides_third)
      .def("set_goal", &CriticModel::set_goal, py::arg("goal"),
           "Set the goal, shape (ng,). Call between solves only (not thread-safe).")
      .def_property("goal", [](const CriticModel& s) { return Vec(s.goal()); }, &CriticModel::set_goal,
                    "goal, shape (ng,)")
      .def("create_data", &CriticModel::create_data)
      .def(
          "calc",
          [](const CriticModel& s, CriticData& d, double tau, const RefV& x) {
            check_tau(tau);
            check_vector(x, s.nx(), "x");
            s.calc(d, tau, x);
          },
          py::arg("data"), py::arg("tau"), py::arg("x"), "data.V = V(tau, x); x (nx,)")
      .def(
          "calc_grad",
          [](const CriticModel& s, CriticData& d, double tau, const RefV& x) {
            check_tau(tau);
            check_vector(x, s.nx(), "x");
            s.calc_grad(d, tau, x);
          },
          py::arg("data"), py::arg("tau"), py::arg("x"), "data.V, Vx (nx,), Vtau")
      .def(
          "calc_diff",
          [](const CriticModel& s, CriticData& d, double tau, const RefV& x) {
            check_tau(tau);
            check_vector(x, s.nx(), "x");
            s.calc_diff(d, tau, x);
          },
          py::arg("data"), py::arg("tau"), py::arg("x"), "data.V, Vx, Vxx, Vtau, Vtaux")
      .def(
          "calc_third",
          [](const CriticModel& s, CriticData& d, double tau, const RefV& x, const RefV& vx, double vtau) {
            check_tau(tau);
            check_vector(x, s.nx(), "x");
            check_vector(vx, s.nx(), "vx");
            s.calc_third(d, tau, x, vx, vtau);
          },
          py::arg("data"), py::arg("tau"), py::arg("x"), py::arg("vx"), py::arg("vtau"),
          "data.Kv (nx, nx); call calc_diff(data, tau, x) first")
      .def(
          "value",
          [](const CriticModel& s, double tau, const RefV& x) {
            check_tau(tau);
            check_vector(x, s.nx(), "x");
            auto d = s.create_data();
            s.calc(*d, tau, x);
            return d->V;
          },
          py::arg("tau"), py::arg("x"), "Convenience: V(tau, x)")
      .def(
          "derivatives",
          [](const CriticModel& s, double tau, const RefV& x) {
            check_tau(tau);
            check_vector(x, s.nx(), "x");
            auto d = s.create_data();
            s.calc_diff(*d, tau, x);
            py::dict out;
            out["V"] = d->V;
            out["Vx"] = Vec(d->Vx);
            out["Vxx"] = Mat(d->Vxx);
            out["Vtau"] = d->Vtau;
            out["Vtaux"] = Vec(d->Vtaux);
            return out;
          },
          py::arg("tau"), py::arg("x"), "Convenience: dict V, Vx (nx,), Vxx (nx,nx), Vtau, Vtaux (nx,)")
      .def(
          "third",
          [](const CriticModel& s, double tau, const RefV& x, const RefV& vx, double vtau) {
            check_tau(tau);
            check_vector(x, s.nx(), "x");
            check_vector(vx, s.nx(), "vx");
            auto d = s.create_data();
            s.calc_diff(*d, tau, x);
            s.calc_third(*d, tau, x, vx, vtau);
            return Mat(d->Kv);
          },
          py::arg("tau"), py::arg("x"), py::arg("vx"), py::arg("vtau"),
          "Convenience: d/dx [Vxx vx + Vtaux vtau], shape (nx, nx)")
      .def("evaluate_batch", &evaluate_batch, py::arg("taus"), py::arg("X"), py::arg("derivatives") = true,
           "Evaluate B points: taus (B,), X (B, nx). Returns dict V (B,), and if derivatives:\n"
           "Vx (B, nx), Vxx (B, nx, nx), Vtau (B,), Vtaux (B, nx). Releases the GIL.");

  py::classh<CriticMLP, CriticModel>(
      m, "CriticMLP",
      "Native tanh MLP critic with exact derivatives. z = [x, goal, tau] (nz = nx + ng + 1),\n"
      "zn = (z - input_mean) / input_std, h_{i+1} = tanh(W_i h_i + b_i), y = W_L h_L + b_L,\n"
      "V = output_scale * y + output_bias. weights: list of (out, in) arrays (PyTorch layout,\n"
      "first in = nz, last out = 1), biases: list of (out,) arrays.")
      .def(py::init<const std::vector<Mat>&, const std::vector<Vec>&, const RefV&, const RefV&, double,
                    double, int, int>(),
           py::arg("weights"), py::arg("biases"), py::arg("input_mean"), py::arg("input_std"),
           py::arg("output_scale"), py::arg("output_bias"), py::arg("nx"), py::arg("ng"))
      .def_property_readonly("n_layers", &CriticMLP::n_layers)
      .def_property_readonly("weights", &CriticMLP::weights)
      .def_property_readonly("biases", &CriticMLP::biases)
      .def_property_readonly("input_mean", &CriticMLP::input_mean)
      .def_property_readonly("input_std", &CriticMLP::input_std)
      .def_property_readonly("output_scale", &CriticMLP::output_scale)
      .def_property_readonly("output_bias", &CriticMLP::output_bias)
      .def_property_readonly("vectorized", &CriticMLP::vectorized,
                             "True if the vectorised kernels are used (>= 1 hidden layer, nx <= 15)")
      .def_property_readonly_static(
          "kernel_isa", [](py::object) { return std::string(critic_kernel_isa()); },
          "'avx2+fma' or 'baseline': kernel variant chosen on this CPU (environment variable\n"
          "DMPC_CRITIC_BASELINE=1 at import forces 'baseline')")
      .def(
          "reference_derivatives",
          [](const CriticMLP& s, double tau, const RefV& x, const RefV& vx, double vtau) {
            check_tau(tau);
            check_vector(x, s.nx(), "x");
            check_vector(vx, s.nx(), "vx");
            auto d = s.create_data();
            static_cast<CriticMLPData&>(*d).use_reference = true;
            s.calc_diff(*d, tau, x);
            s.calc_third(*d, tau, x, vx, vtau);
            py::dict out;
            out["V"] = d->V;
            out["Vx"] = Vec(d->Vx);
            out["Vxx"] = Mat(d->Vxx);
            out["Vtau"] = d->Vtau;
            out["Vtaux"] = Vec(d->Vtaux);
            out["Kv"] = Mat(d->Kv);
            return out;
          },
          py::arg("tau"), py::arg("x"), py::arg("vx"), py::arg("vtau"),
          "calc_diff + calc_third by the Eigen forward-over-reverse reference implementation\n"
          "(not the vectorised kernels): dict V, Vx, Vxx, Vtau, Vtaux, Kv. For cross-checks.");

  py::classh<ValueTerminalCost, CostModel>(
      m, "ValueTerminalCost",
      "Deep Value MPC heuristic cost (Eq. (13)): phi(t, x) = V(tau = t_goal - t, x).\n"
      "lx = Vx, lxx = Vxx; lu, luu, lux = 0. nu: control size of the problem (required; u is ignored).")
      .def(py::init<CriticModelPtr, double, int>(), py::arg("critic"), py::arg("t_goal"), py::arg("nu"))
      .def_property_readonly("critic", &ValueTerminalCost::critic)
      .def_property("t_goal", &ValueTerminalCost::t_goal, &ValueTerminalCost::set_t_goal,
                    "absolute time [s] where the time-to-go is zero (set between solves only)");

  py::classh<ValueRunningCost, CostModel>(
      m, "ValueRunningCost",
      "Deep Value MPC running cost (Eq. (14)), tau = t_goal - t:\n"
      "l(t, x) = V_tau - f(x)^T V_x + 1/2 V_x^T g R^-1 g^T V_x, f = xdot(x, 0), g = fu.\n"
      "Exact value and gradient; lxx exact except -d2/dx2[V_x^T xdot(x, u*)] (second derivatives\n"
      "of the dynamics at fixed V_x and u* = -R^-1 g^T V_x).\n"
      "R (nu, nu) symmetric positive definite. lu, luu, lux = 0.\n"
      "third_order: 'auto' (critic's exact calc_third if it has one, else 'fd'), 'fd' (central\n"
      "difference of the critic Hessian along v, 2 extra calc_diff), 'drop' (omit the term).")
      .def(py::init([](CriticModelPtr critic, DynamicsModelPtr dyn, const RefM& R, double t_goal,
                       bool project_psd, const std::string& third_order) {
             return std::make_shared<ValueRunningCost>(std::move(critic), std::move(dyn), R, t_goal,
                                                       project_psd, third_order_from_string(third_order));
           }),
           py::arg("critic"), py::arg("dynamics"), py::arg("R"), py::arg("t_goal"),
           py::arg("project_psd") = false, py::arg("third_order") = "auto")
      .def_property_readonly("critic", &ValueRunningCost::critic)
      .def_property_readonly("dynamics", &ValueRunningCost::dynamics)
      .def_property_readonly("R", &ValueRunningCost::R)
      .def_property_readonly("R_inv", &ValueRunningCost::R_inv)
      .def_property_readonly("project_psd", &ValueRunningCost::project_psd)
      .def_property_readonly("third_order",
                             [](const ValueRunningCost& c) { return third_order_to_string(c.third_order()); })
      .def_property("t_goal", &ValueRunningCost::t_goal, &ValueRunningCost::set_t_goal,
                    "absolute time [s] where the time-to-go is zero (set between solves only)");
}

}  // namespace
DMPC_REGISTER_BINDINGS(critics, 40, bind_critics);
}  // namespace dmpc::bindings
