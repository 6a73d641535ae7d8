/// @file bind_rollout.cpp
/// @brief Bindings of the rollout hot path (rollout.hpp, DynamicsModel::calc_xdot) and of the
///        MPPI noise generator (random.hpp), mainly to cross-check them from Python.
#include <pybind11/eigen.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <string>

#include "dmpc/random.hpp"
#include "dmpc/rollout.hpp"
#include "registry.hpp"

namespace py = pybind11;

namespace dmpc::bindings {
namespace {
void bind_rollout(py::module_& m) {
  m.def(
      "calc_xdot",
      [](const DynamicsModel& model, const RefV& x, const RefV& u) {
        check_vector(x, model.nx(), "x");
        check_vector(u, model.nu(), "u");
        const Vec xc = x, uc = u;
        Vec xdot = Vec::Zero(model.nx());
        auto data = model.create_data();
        model.calc_xdot(*data, xc.data(), uc.data(), xdot.data());
        return xdot;
      },
      py::arg("model"), py::arg("x"), py::arg("u"),
      "Forward-only xdot (nx,) = f(x) + g(x) u of the rollout path (DynamicsModel::calc_xdot) "
      "from x (nx,) and u (nu,); equals model.calc(...).xdot to rounding.");
  m.def(
      "integrate_forward",
      [](const DynamicsModel& model, const RefV& x, const RefV& u, double dt,
         const std::string& integrator) {
        check_vector(x, model.nx(), "x");
        check_vector(u, model.nu(), "u");
        if (!(dt > 0.0) || !std::isfinite(dt)) throw std::invalid_argument("dt must be finite and > 0");
        const Integrator integ = integrator_from_string(integrator);
        const Vec xc = x, uc = u;
        Vec x_next = Vec::Zero(model.nx());
        ForwardStepData d(model);
        {
          py::gil_scoped_release release;
          integrate_forward(model, integ, dt, d, xc.data(), uc.data(), x_next.data());
        }
        return x_next;
      },
      py::arg("model"), py::arg("x"), py::arg("u"), py::arg("dt"), py::arg("integrator") = "rk4",
      "One value-only step x(t+dt) (nx,) of the MPPI rollout path from x (nx,) under constant "
      "u (nu,); integrator in {'euler', 'semi_implicit_euler', 'rk4'}. Same scheme as "
      "integrate().");
  m.def(
      "ziggurat_normal_samples",
      [](std::uint64_t seed, int n) {
        if (n < 0) throw std::invalid_argument("n must be >= 0");
        Vec out(n);
        SplitMix64 rng(seed);
        const ZigguratNormal& z = ZigguratNormal::instance();
        {
          py::gil_scoped_release release;
          for (int i = 0; i < n; ++i) out[i] = z(rng);
        }
        return out;
      },
      py::arg("seed"), py::arg("n"),
      "n (>= 0) standard normal draws (n,) of the MPPI noise generator (SplitMix64 stream seeded "
      "with seed, ziggurat sampler); deterministic in seed.");
}
}  // namespace
DMPC_REGISTER_BINDINGS(rollout, 60, bind_rollout);
}  // namespace dmpc::bindings
