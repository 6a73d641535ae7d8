/// @file bind_mppi.cpp
/// @brief Bindings of mppi.hpp: MppiSettings, MppiResult, MppiTrajectories, MppiSolver.
#include <pybind11/eigen.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "dmpc/mppi.hpp"
#include "registry.hpp"

namespace py = pybind11;

namespace dmpc::bindings {
namespace {

/// Stack equally-shaped matrices into an (n, rows, cols) array.
py::array_t<double> stack(const std::vector<Mat>& ms, Eigen::Index rows, Eigen::Index cols) {
  py::array_t<double> out({static_cast<py::ssize_t>(ms.size()), static_cast<py::ssize_t>(rows),
                           static_cast<py::ssize_t>(cols)});
  auto a = out.mutable_unchecked<3>();
  for (size_t i = 0; i < ms.size(); ++i)
    for (Eigen::Index r = 0; r < rows; ++r)
      for (Eigen::Index c = 0; c < cols; ++c) a(i, r, c) = ms[i](r, c);
  return out;
}

void bind_mppi(py::module_& m) {
  py::classh<MppiSettings> settings(
      m, "MppiSettings",
      "MPPI settings; keyword arguments set the attributes of the same names.\n\n"
      "num_samples K (>= 1), horizon H (>= 1), dt [s] (> 0), noise_sigma Sigma (nu, nu) SPD\n"
      "(empty = identity), lambda_ temperature (> 0), step_size alpha in (0, 1] (Eq. (18) of\n"
      "MPQ), gamma discount in (0, 1], control_cost_weight nu >= 0 scaling the Eq. (16) term\n"
      "(1 = MPQ exactly), num_iterations per optimize() (>= 1), num_threads (>= 1),\n"
      "seed, smoothing beta in [0, 1) (AR(1) noise low-pass), u_min / u_max (nu,) (empty = no\n"
      "limit), integrator ('rk4', 'euler', 'semi_implicit_euler'), tail_fill ('repeat_last',\n"
      "'zero', 'nominal'), tail_nominal (nu,), num_saved_trajectories >= 0 (at most K kept).\n"
      "Validated when an MppiSolver is built (ValueError naming the reason).");
  settings.def(py::init([](const py::kwargs& kwargs) {
                 py::object obj = py::cast(MppiSettings());
                 for (auto item : kwargs) {
                   const auto key = item.first.cast<std::string>();
                   if (!py::hasattr(obj, key.c_str()))
                     throw py::type_error("MppiSettings has no attribute '" + key + "'");
                   py::setattr(obj, key.c_str(), item.second);
                 }
                 return obj.cast<MppiSettings>();
               }))
      .def_readwrite("num_samples", &MppiSettings::num_samples, "K, samples per iteration")
      .def_readwrite("horizon", &MppiSettings::horizon, "H, control steps")
      .def_readwrite("dt", &MppiSettings::dt, "step length [s]")
      .def_readwrite("noise_sigma", &MppiSettings::noise_sigma, "Sigma, (nu, nu) noise covariance")
      .def_readwrite("lambda_", &MppiSettings::lambda_, "temperature lambda")
      .def_readwrite("step_size", &MppiSettings::step_size, "alpha of Eq. (18)")
      .def_readwrite("gamma", &MppiSettings::gamma, "discount on running and terminal cost")
      .def_readwrite("control_cost_weight", &MppiSettings::control_cost_weight,
                     "nu >= 0 scaling the Eq. (16) term (1 = MPQ exactly)")
      .def_readwrite("num_iterations", &MppiSettings::num_iterations)
      .def_readwrite("num_threads", &MppiSettings::num_threads)
      .def_readwrite("seed", &MppiSettings::seed)
      .def_readwrite("smoothing", &MppiSettings::smoothing, "beta of the AR(1) noise low-pass")
      .def_readwrite("u_min", &MppiSettings::u_min, "(nu,) lower limits (empty = none)")
      .def_readwrite("u_max", &MppiSettings::u_max, "(nu,) upper limits (empty = none)")
      .def_property(
          "integrator", [](const MppiSettings& s) { return to_string(s.integrator); },
          [](MppiSettings& s, const std::string& v) { s.integrator = integrator_from_string(v); },
          "'rk4', 'euler' or 'semi_implicit_euler'")
      .def_property(
          "tail_fill", [](const MppiSettings& s) { return to_string(s.tail_fill); },
          [](MppiSettings& s, const std::string& v) { s.tail_fill = tail_fill_from_string(v); },
          "'repeat_last', 'zero' or 'nominal'")
      .def_readwrite("tail_nominal", &MppiSettings::tail_nominal, "(nu,) tail fill and initial plan")
      .def_readwrite("num_saved_trajectories", &MppiSettings::num_saved_trajectories)
      .def("__repr__", [](const MppiSettings& s) {
        std::ostringstream os;
        os << "MppiSettings(num_samples=" << s.num_samples << ", horizon=" << s.horizon
           << ", dt=" << s.dt << ", lambda_=" << s.lambda_ << ", step_size=" << s.step_size
           << ", gamma=" << s.gamma << ", control_cost_weight=" << s.control_cost_weight
           << ", num_iterations=" << s.num_iterations
           << ", num_threads=" << s.num_threads << ", seed=" << s.seed
           << ", smoothing=" << s.smoothing << ", integrator='" << to_string(s.integrator)
           << "', tail_fill='" << to_string(s.tail_fill) << "')";
        return os.str();
      });

  py::classh<MppiResult>(m, "MppiResult", "Outputs of MppiSolver.optimize() (last iteration).")
      .def_readonly("free_energy", &MppiResult::free_energy,
                    "F = -lambda log((1/K) sum_k exp(-C_k/lambda)) (Eq. (7) of MPQ)")
      .def_readonly("cost_min", &MppiResult::cost_min)
      .def_readonly("cost_mean", &MppiResult::cost_mean)
      .def_readonly("cost_max", &MppiResult::cost_max)
      .def_readonly("cost_std", &MppiResult::cost_std)
      .def_readonly("effective_sample_size", &MppiResult::effective_sample_size, "1 / sum w_k^2")
      .def_readonly("num_diverged", &MppiResult::num_diverged)
      .def_readonly("num_iterations", &MppiResult::num_iterations)
      .def_readonly("t", &MppiResult::t, "time of the start state [s]")
      .def_readonly("costs", &MppiResult::costs, "(K,) path costs C_k")
      .def_readonly("weights", &MppiResult::weights, "(K,) weights w_k")
      .def_readonly("plan", &MppiResult::plan, "(H, nu) updated mean plan")
      .def_readonly("nominal_states", &MppiResult::nominal_states, "(H+1, nx) rollout of the plan")
      .def_readonly("nominal_cost", &MppiResult::nominal_cost,
                    "discounted running + terminal cost of the plan's rollout");

  py::classh<MppiTrajectories>(m, "MppiTrajectories",
                               "Highest-weight rollouts of the last iteration (decreasing weight).")
      .def_property_readonly("indices", [](const MppiTrajectories& t) { return t.indices; })
      .def_readonly("weights", &MppiTrajectories::weights, "(n,)")
      .def_readonly("costs", &MppiTrajectories::costs, "(n,)")
      .def_property_readonly(
          "states",
          [](const MppiTrajectories& t) {
            const auto r = t.states.empty() ? 0 : t.states[0].rows();
            const auto c = t.states.empty() ? 0 : t.states[0].cols();
            return stack(t.states, r, c);
          },
          "(n, H+1, nx)")
      .def_property_readonly(
          "controls",
          [](const MppiTrajectories& t) {
            const auto r = t.controls.empty() ? 0 : t.controls[0].rows();
            const auto c = t.controls.empty() ? 0 : t.controls[0].cols();
            return stack(t.controls, r, c);
          },
          "(n, H, nu)");

  py::classh<MppiSolver>(
      m, "MppiSolver",
      "Information-theoretic MPPI with a terminal value (MPQ Eqs. (7), (16)-(18)).\n\n"
      "MppiSolver(dynamics, running_cost, terminal_cost_or_None, settings). The terminal cost\n"
      "phi(t, x_H, 0) is evaluated at the state after the last control with a zero control of\n"
      "size terminal_cost.nu (0 or nu). optimize() releases the GIL.")
      .def(py::init([](DynamicsModelPtr dynamics, CostModelPtr running, CostModelPtr terminal,
                       const MppiSettings& settings) {
             return std::make_shared<MppiSolver>(std::move(dynamics), std::move(running),
                                                 std::move(terminal), settings);
           }),
           py::arg("dynamics"), py::arg("running_cost"), py::arg("terminal_cost").none(true),
           py::arg("settings"))
      .def_property_readonly("nx", &MppiSolver::nx)
      .def_property_readonly("nu", &MppiSolver::nu)
      .def_property_readonly("settings", &MppiSolver::settings, py::return_value_policy::copy)
      .def_property_readonly("state", &MppiSolver::state, "(nx,) current state")
      .def_property_readonly("time", &MppiSolver::time, "current time [s]")
      .def_property_readonly("iteration_counter", &MppiSolver::iteration_counter)
      .def("set_state", &MppiSolver::set_state, py::arg("x"), py::arg("t") = 0.0,
           "Set the current state x (nx,) and time t [s].")
      .def(
          "optimize",
          [](MppiSolver& self) {
            py::gil_scoped_release release;
            return MppiResult(self.optimize());
          },
          "Run num_iterations MPPI iterations; returns an MppiResult (GIL released).")
      .def(
          "action_from_policy",
          [](const MppiSolver& self, py::object t) {
            if (t.is_none()) return self.action_from_policy();
            return self.action_from_policy(t.cast<double>());
          },
          py::arg("t") = py::none(),
          "First action of the published plan (nu,); with t, the zero-order-hold plan entry at t.")
      .def_property("plan", &MppiSolver::plan, &MppiSolver::set_plan, "(H, nu) mean plan")
      .def("set_plan", &MppiSolver::set_plan, py::arg("plan"), "Replace the (H, nu) mean plan.")
      .def("shift", &MppiSolver::shift, py::arg("num_steps") = 1,
           "Warm start: shift the plan num_steps earlier, fill the tail per settings.tail_fill.")
      .def("set_rollout_models", &MppiSolver::set_rollout_models, py::arg("models"),
           py::arg("average") = false,
           "Per-rollout models: sample k is rolled out with models[k % len(models)] (an ensemble /\n"
           "domain-randomised planner); with average=True every sample is rolled out in all models\n"
           "and its cost is the mean. The nominal rollout keeps the solver's dynamics. [] restores\n"
           "the solver's dynamics for every sample. Each model needs the solver's (nx, nu).")
      .def_property_readonly("rollout_models_averaged", &MppiSolver::rollout_models_averaged)
      .def_property_readonly("rollout_models", &MppiSolver::rollout_models,
                             "list of per-rollout models ([]: the solver's dynamics)")
      .def_property_readonly("free_energy", &MppiSolver::free_energy, "last F (Eq. (7))")
      .def_property_readonly("result", [](const MppiSolver& s) { return MppiResult(s.result()); })
      .def(
          "weighted_trajectories",
          [](const MppiSolver& s) { return MppiTrajectories(s.weighted_trajectories()); },
          "The num_saved_trajectories highest-weight rollouts of the last iteration.");
}

}  // namespace
DMPC_REGISTER_BINDINGS(mppi, 50, bind_mppi);
}  // namespace dmpc::bindings
