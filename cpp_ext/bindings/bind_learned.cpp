/// @file bind_learned.cpp
/// @brief Bindings of models/learned.hpp: ControlAffineMlpDynamics, EnsembleMeanDynamics.
#include <pybind11/eigen.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "dmpc/models/learned.hpp"
#include "registry.hpp"

namespace py = pybind11;

namespace dmpc::bindings {
namespace {

Feature parse_feature(const std::pair<std::string, int>& f) {
  if (f.first == "id" || f.first == "identity") return {FeatureKind::Identity, f.second};
  if (f.first == "cos") return {FeatureKind::Cos, f.second};
  if (f.first == "sin") return {FeatureKind::Sin, f.second};
  throw std::invalid_argument("unknown feature kind '" + f.first + "' (use 'id', 'cos' or 'sin')");
}

const char* kind_name(FeatureKind k) {
  return k == FeatureKind::Identity ? "id" : (k == FeatureKind::Cos ? "cos" : "sin");
}

void bind_learned(py::module_& m) {
  py::classh<ControlAffineMlpDynamics, DynamicsModel>(
      m, "ControlAffineMlpDynamics",
      "Learned control-affine dynamics xdot = a(phi(x)) + B(phi(x)) u, a tanh MLP with exact\n"
      "forward-mode Jacobians (models/learned.hpp).\n\n"
      "ControlAffineMlpDynamics(nx, nu, nq, features, weights, biases, input_mean, input_std,\n"
      "                         output_scale, output_bias)\n"
      "  nq: 0, or nx/2 for x = [q; v] (then qdot = v and only vdot is learned: nl = nx - nq rows)\n"
      "  features: list of (kind, index), kind in 'id', 'cos', 'sin' -> phi(x)\n"
      "  weights[i] (out, in), biases[i] (out,): tanh hidden layers, linear last layer with\n"
      "  nl (1 + nu) outputs y = [a (nl); B row-major (nl x nu)];\n"
      "  y = output_scale * (W_L h_L + b_L) + output_bias, inputs (phi - input_mean) / input_std.")
      .def(py::init([](int nx, int nu, int nq, const std::vector<std::pair<std::string, int>>& features,
                       const std::vector<Mat>& weights, const std::vector<Vec>& biases, const Vec& input_mean,
                       const Vec& input_std, const Vec& output_scale, const Vec& output_bias) {
             std::vector<Feature> feats;
             for (const auto& f : features) feats.push_back(parse_feature(f));
             VectorTanhMlp net{weights, biases, input_mean, input_std, output_scale, output_bias};
             return std::make_shared<ControlAffineMlpDynamics>(nx, nu, nq, std::move(feats), std::move(net));
           }),
           py::arg("nx"), py::arg("nu"), py::arg("nq"), py::arg("features"), py::arg("weights"), py::arg("biases"),
           py::arg("input_mean"), py::arg("input_std"), py::arg("output_scale"), py::arg("output_bias"))
      .def_property_readonly("num_learned", &ControlAffineMlpDynamics::num_learned)
      .def_property_readonly("features",
                             [](const ControlAffineMlpDynamics& s) {
                               std::vector<std::pair<std::string, int>> out;
                               for (const auto& f : s.features()) out.emplace_back(kind_name(f.kind), f.index);
                               return out;
                             })
      .def_property_readonly("hidden", [](const ControlAffineMlpDynamics& s) {
        std::vector<int> w;
        const auto& W = s.net().weights;
        for (size_t i = 0; i + 1 < W.size(); ++i) w.push_back(static_cast<int>(W[i].rows()));
        return w;
      });

  py::classh<EnsembleMeanDynamics, DynamicsModel>(
      m, "EnsembleMeanDynamics",
      "Mean of M dynamics models (a bootstrap ensemble) with exact mean Jacobians; control-affine\n"
      "when the members are. disagreement(x, u): per-row std of the members' xdot (uncertainty).")
      .def(py::init<std::vector<DynamicsModelPtr>>(), py::arg("members"))
      .def_property_readonly("members", &EnsembleMeanDynamics::members)
      .def_property_readonly("num_members", &EnsembleMeanDynamics::num_members)
      .def("disagreement", &EnsembleMeanDynamics::disagreement, py::arg("x"), py::arg("u"),
           py::call_guard<py::gil_scoped_release>(),
           "Per-row standard deviation (1/M) of the members' xdot at (x, u), shape (nx,)")
      .def("member_xdots", &EnsembleMeanDynamics::member_xdots, py::arg("x"), py::arg("u"),
           py::call_guard<py::gil_scoped_release>(), "xdot of every member, shape (nx, M)");
}
}  // namespace
DMPC_REGISTER_BINDINGS(learned, 12, bind_learned);
}  // namespace dmpc::bindings
