/// @file bind_ballbot.cpp
/// @brief Bindings of models/ballbot.hpp: BallbotParameters, BallbotData, BallbotDynamics.
#include <pybind11/eigen.h>
#include <pybind11/pybind11.h>

#include <time.h>

#include <chrono>
#include <cmath>
#include <sstream>

#include "dmpc/models/ballbot.hpp"
#include "registry.hpp"

namespace py = pybind11;

namespace dmpc::bindings {
namespace {

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

/// Mean time [s] of `repeats` calls of calc and of calc + calc_diff, measured in C++: thread CPU
/// time (insensitive to preemption on a loaded machine) and wall time.
py::dict time_evaluations(const BallbotDynamics& model, const RefV& x, const RefV& u, int repeats) {
  check_vector(x, 10, "x");
  check_vector(u, 3, "u");
  if (repeats < 1) throw std::invalid_argument("repeats must be >= 1");
  auto d = model.create_data();
  double cpu[3], wall[3], sink = 0.0;
  {
    py::gil_scoped_release release;
    using clock = std::chrono::steady_clock;
    auto w0 = clock::now();
    cpu[0] = thread_cpu_seconds();
    for (int i = 0; i < repeats; ++i) {
      model.calc(*d, x, u);
      sink += d->xdot[9];
    }
    auto w1 = clock::now();
    cpu[1] = thread_cpu_seconds();
    for (int i = 0; i < repeats; ++i) {
      model.calc(*d, x, u);
      model.calc_diff(*d, x, u);
      sink += d->fx(9, 0);
    }
    auto w2 = clock::now();
    cpu[2] = thread_cpu_seconds();
    wall[0] = std::chrono::duration<double>(w1 - w0).count();
    wall[1] = std::chrono::duration<double>(w2 - w1).count();
  }
  if (!std::isfinite(sink)) throw std::runtime_error("non-finite dynamics in timing loop");
  py::dict out;
  out["calc_cpu"] = (cpu[1] - cpu[0]) / repeats;
  out["calc_and_diff_cpu"] = (cpu[2] - cpu[1]) / repeats;
  out["calc_wall"] = wall[0] / repeats;
  out["calc_and_diff_wall"] = wall[1] / repeats;
  return out;
}

void bind_ballbot(py::module_& m) {
  py::classh<BallbotParameters>(
      m, "BallbotParameters",
      "Ballbot physical parameters (defaults: the public OCS2 ballbot). base_com and base_inertia are\n"
      "3-vectors: assign a whole array (item assignment on the returned copy has no effect).")
      .def(py::init<>())
      .def_readwrite("ball_radius", &BallbotParameters::ball_radius, "r_b [m]")
      .def_readwrite("ball_mass", &BallbotParameters::ball_mass, "m_b [kg]")
      .def_readwrite("ball_inertia", &BallbotParameters::ball_inertia, "I_b [kg m^2], isotropic")
      .def_readwrite("base_mass", &BallbotParameters::base_mass, "m_B [kg]")
      .def_readwrite("base_com", &BallbotParameters::base_com,
                     "base COM from the ball centre in the base frame, shape (3,) [m]")
      .def_readwrite("base_inertia", &BallbotParameters::base_inertia,
                     "diagonal of the base inertia about its COM, shape (3,) [kg m^2]")
      .def_readwrite("wheel_radius", &BallbotParameters::wheel_radius, "r_w [m]")
      .def_readwrite("wheel_zenith_angle", &BallbotParameters::wheel_zenith_angle,
                     "angle between the base z axis and a wheel contact point [rad]")
      .def_readwrite("gravity", &BallbotParameters::gravity, "g [m/s^2]")
      .def("validate", &BallbotParameters::validate, "raise ValueError if a field is out of range")
      .def("to_vector", [](const BallbotParameters& p) { return Vec(p.to_vector()); },
           "parameter vector p, shape (13,), ordered as tools/derive_ballbot.py PARAM_NAMES")
      .def("__repr__", [](const BallbotParameters& p) {
        std::ostringstream os;
        os << "BallbotParameters(" << p.to_vector().transpose() << ")";
        return os.str();
      });

  py::classh<BallbotData, DynamicsData>(
      m, "BallbotData", "Ballbot buffers: M (5, 5), h (5,), ST (5, 3), a (5,) of the last calc.")
      .def_property_readonly("M", [](const BallbotData& d) { return Mat(d.M); })
      .def_property_readonly("h", [](const BallbotData& d) { return Vec(d.h); })
      .def_property_readonly("ST", [](const BallbotData& d) { return Mat(d.ST); })
      .def_property_readonly("a", [](const BallbotData& d) { return Vec(d.a); });

  py::classh<BallbotDynamics, DynamicsModel>(
      m, "BallbotDynamics",
      "Ballbot, x = [px, py, yaw, pitch, roll, rates] (10,), u = 3 omni-wheel torques (3,):\n"
      "M(q) vdot + h(q, v) = S^T(q) tau, with the ball's rolling inertia (docs/ballbot_model.md).")
      .def(py::init<const BallbotParameters&>(), py::arg("params") = BallbotParameters())
      .def_property_readonly("params", &BallbotDynamics::params)
      .def("mass_matrix", &BallbotDynamics::mass_matrix, py::arg("q"), "M(q), q (5,) -> (5, 5)")
      .def("bias", &BallbotDynamics::bias, py::arg("q"), py::arg("v"),
           "h(q, v) (Coriolis/centrifugal + gravity), q, v (5,) -> (5,)")
      .def("actuation_map", &BallbotDynamics::actuation_map, py::arg("q"), "S^T(q), q (5,) -> (5, 3)")
      .def("wheel_rates", &BallbotDynamics::wheel_rates, py::arg("x"),
           "wheel rates relative to the base S(q) v, x (10,) -> (3,)")
      .def("kinetic_energy", &BallbotDynamics::kinetic_energy, py::arg("x"), "T(x), x (10,)")
      .def("potential_energy", &BallbotDynamics::potential_energy, py::arg("x"), "V(x), x (10,)")
      .def("energy", &BallbotDynamics::energy, py::arg("x"), "T(x) + V(x), x (10,)")
      .def("time_evaluations", &time_evaluations, py::arg("x"), py::arg("u"), py::arg("repeats") = 100000,
           "Benchmark helper: mean seconds per calc and per calc + calc_diff at one point, timed in C++ "
           "(GIL released). x (10,), u (3,). Returns a dict with keys calc_cpu, calc_and_diff_cpu "
           "(thread CPU time) and calc_wall, calc_and_diff_wall (wall time).");
}
}  // namespace
DMPC_REGISTER_BINDINGS(ballbot, 20, bind_ballbot);
}  // namespace dmpc::bindings
