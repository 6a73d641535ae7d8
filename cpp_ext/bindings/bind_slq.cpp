/// @file bind_slq.cpp
/// @brief Bindings of problem.hpp, policy.hpp and slq.hpp.
#include <pybind11/eigen.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "dmpc/slq.hpp"
#include "registry.hpp"

namespace py = pybind11;

namespace dmpc::bindings {
namespace {

Interpolation interpolation_from_string(const std::string& s) {
  if (s == "linear") return Interpolation::Linear;
  if (s == "zoh") return Interpolation::ZeroOrderHold;
  throw std::invalid_argument("unknown interpolation '" + s + "' (expected 'linear' or 'zoh')");
}
std::string interpolation_name(Interpolation i) { return i == Interpolation::Linear ? "linear" : "zoh"; }

void bind_slq(py::module_& m) {
  py::classh<Problem>(
      m, "Problem",
      "Discretised optimal control problem of Eq. (10):\n"
      "min gamma^T phi(t0+T, x_N) + sum_k dt [gamma^(k dt) l(t_k, x_k, u_k) + 1/2 u_k^T R u_k],\n"
      "x_{k+1} = integrate(x_k, u_k, dt). horizon N nodes, dt seconds, discount gamma per second.")
      .def(py::init([](DynamicsModelPtr dyn, CostModelPtr running, CostModelPtr terminal, int horizon,
                       double dt, const std::string& integrator, std::optional<Mat> R, double discount) {
             return std::make_shared<Problem>(std::move(dyn), std::move(running), std::move(terminal),
                                              horizon, dt, integrator_from_string(integrator),
                                              R ? *R : Mat(), discount);
           }),
           py::arg("dynamics"), py::arg("running_cost"), py::arg("terminal_cost"), py::arg("horizon"),
           py::arg("dt"), py::arg("integrator") = "rk4", py::arg("control_weight") = py::none(),
           py::arg("discount") = 1.0)
      .def_property_readonly("horizon", &Problem::horizon)
      .def_property_readonly("dt", &Problem::dt)
      .def_property_readonly("nx", &Problem::nx)
      .def_property_readonly("nu", &Problem::nu)
      .def_property_readonly("discount", &Problem::discount)
      .def_property_readonly("integrator", [](const Problem& p) { return to_string(p.integrator()); })
      .def_property_readonly("control_weight", &Problem::control_weight)
      .def_property_readonly("dynamics", &Problem::dynamics_ptr)
      .def_property_readonly("running_cost", &Problem::running)
      .def_property_readonly("terminal_cost", &Problem::terminal);

  py::class_<Policy>(m, "Policy",
                     "Affine policy u(t, x) = u_ff(t) + K(t) (x - x_nom(t)), interpolated in time.")
      .def(py::init<>())
      .def_readwrite("t0", &Policy::t0)
      .def_readwrite("dt", &Policy::dt)
      .def_readwrite("u_ff", &Policy::u_ff, "feedforward (N, nu)")
      .def_readwrite("x_nom", &Policy::x_nom, "nominal states (N+1, nx)")
      .def_readwrite("K", &Policy::K, "list of N gains (nu, nx)")
      .def_property(
          "interpolation", [](const Policy& p) { return interpolation_name(p.interpolation); },
          [](Policy& p, const std::string& s) { p.interpolation = interpolation_from_string(s); })
      .def_property_readonly("horizon", &Policy::horizon)
      .def_property_readonly("t_end", &Policy::t_end)
      .def("empty", &Policy::empty)
      .def("control", &Policy::control, py::arg("t"), py::arg("x"), "u(t, x), x (nx,) -> (nu,)")
      .def("feedforward", &Policy::feedforward, py::arg("t"))
      .def("nominal_state", &Policy::nominal_state, py::arg("t"))
      .def("gain", &Policy::gain, py::arg("t"))
      .def("shifted", &Policy::shifted, py::arg("t_new0"));

  py::class_<SlqSettings>(m, "SlqSettings", "Settings of SlqSolver (see slq.hpp).")
      .def(py::init([](py::kwargs kw) {
        SlqSettings s;
        py::object obj = py::cast(s);
        for (auto item : kw) {
          const auto key = py::cast<std::string>(item.first);
          if (!py::hasattr(obj, key.c_str()))
            throw std::invalid_argument("SlqSettings has no field '" + key + "'");
          obj.attr(key.c_str()) = item.second;
        }
        SlqSettings out = py::cast<SlqSettings>(obj);
        out.validate();
        return out;
      }))
      .def_readwrite("max_iterations", &SlqSettings::max_iterations)
      .def_readwrite("tol_expected", &SlqSettings::tol_expected)
      .def_readwrite("tol_relative", &SlqSettings::tol_relative)
      .def_readwrite("mu_init", &SlqSettings::mu_init)
      .def_readwrite("mu_min", &SlqSettings::mu_min)
      .def_readwrite("mu_max", &SlqSettings::mu_max)
      .def_readwrite("mu_factor", &SlqSettings::mu_factor)
      .def_readwrite("max_line_search", &SlqSettings::max_line_search)
      .def_readwrite("armijo", &SlqSettings::armijo)
      .def_readwrite("num_threads", &SlqSettings::num_threads)
      .def_property(
          "interpolation", [](const SlqSettings& s) { return interpolation_name(s.interpolation); },
          [](SlqSettings& s, const std::string& v) { s.interpolation = interpolation_from_string(v); });

  py::class_<SlqResult>(m, "SlqResult")
      .def_property_readonly("status", [](const SlqResult& r) { return to_string(r.status); })
      .def_readonly("iterations", &SlqResult::iterations)
      .def_readonly("initial_cost", &SlqResult::initial_cost)
      .def_readonly("cost", &SlqResult::cost)
      .def_readonly("expected_decrease", &SlqResult::expected_decrease)
      .def_readonly("mu", &SlqResult::mu)
      .def_readonly("solve_time", &SlqResult::solve_time)
      .def_readonly("cost_history", &SlqResult::cost_history)
      .def_readonly("message", &SlqResult::message)
      .def("__repr__", [](const SlqResult& r) {
        return "SlqResult(status=" + to_string(r.status) + ", iterations=" + std::to_string(r.iterations) +
               ", cost=" + std::to_string(r.cost) + ")";
      });

  py::classh<SlqSolver>(m, "SlqSolver",
                        "SLQ solver (iLQR-type DDP with Levenberg-Marquardt regularisation and line search).")
      .def(py::init<ProblemPtr, SlqSettings>(), py::arg("problem"), py::arg("settings") = SlqSettings())
      .def("solve", &SlqSolver::solve, py::arg("x0"), py::arg("t0") = 0.0,
           py::call_guard<py::gil_scoped_release>(),
           "Optimise from x0 (nx,) at time t0, warm-started from the current policy. Releases the GIL.")
      .def("set_controls", &SlqSolver::set_controls, py::arg("U"), "Initial guess: open-loop controls (N, nu).")
      .def("set_policy", &SlqSolver::set_policy, py::arg("policy"),
           "Initial guess: an affine feedback policy (u_ff (N, nu), x_nom (N+1, nx), N gains (nu, nx)).")
      .def("shift", &SlqSolver::shift, py::arg("t_new0"), "Shift the policy so node 0 lies at t_new0.")
      .def("reset", &SlqSolver::reset)
      .def("policy", &SlqSolver::policy, "A copy of the current policy.")
      .def("states", &SlqSolver::states, "Nominal states (N+1, nx).")
      .def("controls", &SlqSolver::controls, "Nominal controls (N, nu).")
      .def("gains", [](const SlqSolver& s) { return s.policy().K; }, "List of N gains (nu, nx).")
      .def_property_readonly("last_result", &SlqSolver::last_result)
      .def_property("settings", &SlqSolver::settings, &SlqSolver::set_settings)
      .def("evaluate", &SlqSolver::evaluate, py::arg("x0"), py::arg("U"), py::arg("t0") = 0.0,
           py::call_guard<py::gil_scoped_release>(), "Total cost of open-loop controls U (N, nu) from x0.");
}
}  // namespace
DMPC_REGISTER_BINDINGS(slq, 60, bind_slq);
}  // namespace dmpc::bindings
