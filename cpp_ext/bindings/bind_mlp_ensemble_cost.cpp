/// @file bind_mlp_ensemble_cost.cpp
/// @brief Bindings of mlp_ensemble_cost.hpp: MlpEnsembleCost, HorizonSwitchCost, PendulumSwingUpCost.
#include <pybind11/eigen.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <tuple>

#include "dmpc/mlp_ensemble_cost.hpp"
#include "registry.hpp"

namespace py = pybind11;

namespace dmpc::bindings {
namespace {


FeatureKind feature_kind(const std::string& s) {
  if (s == "id" || s == "identity") return FeatureKind::Identity;
  if (s == "cos") return FeatureKind::Cos;
  if (s == "sin") return FeatureKind::Sin;
  throw std::invalid_argument("unknown feature kind '" + s + "' (use 'id', 'cos' or 'sin')");
}

void bind_mlp_ensemble_cost(py::module_& m) {
  py::classh<MlpEnsembleCost, CostModel>(
      m, "MlpEnsembleCost",
      "Soft-min ensemble of tanh MLP sums as a cost (POLO Eqs. (5)-(6); K = 1: a plain V or Q).\n\n"
      "MlpEnsembleCost(nx, nu, features, use_action, extra_inputs, members, kappa, scale, fd_step=1e-5)\n"
      "  features: list of (kind, index), kind in 'id', 'cos', 'sin' -> phi(x)\n"
      "  z = [phi(x); u if use_action (nu); extra_inputs (ne)]\n"
      "  members: list (K) of lists of (weights [W_i (out, in)], biases [b_i], input_mean (nz,),\n"
      "           input_std (nz,), output_scale, output_bias, coefficient): V_k = sum_j c_kj net_kj(z)\n"
      "  l = scale * softmin_kappa(V_1..V_K) = scale * -(1/kappa)(logsumexp(-kappa V) - log K)\n"
      "      (mean for kappa = 0). calc_diff: central finite differences of calc.")
      .def(py::init([](int nx, int nu, const std::vector<std::pair<std::string, int>>& features,
                       bool use_action, const Vec& extra_inputs,
                       const std::vector<std::vector<std::tuple<std::vector<Mat>, std::vector<Vec>, Vec,
                                                                Vec, double, double, double>>>& members,
                       double kappa, double scale, double fd_step) {
             std::vector<Feature> feats;
             for (const auto& f : features) feats.push_back({feature_kind(f.first), f.second});
             std::vector<std::vector<TanhMlp>> nets;
             std::vector<Vec> coefs;
             for (const auto& member : members) {
               std::vector<TanhMlp> group;
               Vec c(static_cast<Eigen::Index>(member.size()));
               for (size_t j = 0; j < member.size(); ++j) {
                 TanhMlp n;
                 n.weights = std::get<0>(member[j]);
                 n.biases = std::get<1>(member[j]);
                 n.input_mean = std::get<2>(member[j]);
                 n.input_std = std::get<3>(member[j]);
                 n.output_scale = std::get<4>(member[j]);
                 n.output_bias = std::get<5>(member[j]);
                 c[static_cast<Eigen::Index>(j)] = std::get<6>(member[j]);
                 group.push_back(std::move(n));
               }
               nets.push_back(std::move(group));
               coefs.push_back(c);
             }
             return std::make_shared<MlpEnsembleCost>(nx, nu, std::move(feats), use_action, extra_inputs,
                                                      std::move(nets), std::move(coefs), kappa, scale,
                                                      fd_step);
           }),
           py::arg("nx"), py::arg("nu"), py::arg("features"), py::arg("use_action"),
           py::arg("extra_inputs"), py::arg("members"), py::arg("kappa"), py::arg("scale") = 1.0,
           py::arg("fd_step") = 1e-5)
      .def_property_readonly("num_members", &MlpEnsembleCost::num_members)
      .def_property_readonly("input_size", &MlpEnsembleCost::input_size)
      .def_property_readonly("kappa", &MlpEnsembleCost::kappa)
      .def_property_readonly("scale", &MlpEnsembleCost::scale)
      .def("member_values", &MlpEnsembleCost::member_values, py::arg("x"), py::arg("u"),
           "(K,) member values V_k at x (nx,), u (nu,), without the scale");

  py::classh<HorizonSwitchCost, CostModel>(
      m, "HorizonSwitchCost",
      "l(t,x,u) = stage(t,x,u) for t < t_switch else last(t,x,u) (MPQ Eq. (16): Q replaces the\n"
      "last running cost when MPPI runs from t0 = 0 with t_switch = (H - 1/2) dt - dt).")
      .def(py::init<CostModelPtr, CostModelPtr, double>(), py::arg("stage"), py::arg("last"),
           py::arg("t_switch"))
      .def_property_readonly("t_switch", &HorizonSwitchCost::t_switch);

  py::classh<PendulumSwingUpCost, CostModel>(
      m, "PendulumSwingUpCost",
      "l = scale * (wrap(theta)^2 + w_rate theta_dot^2), x = [theta, theta_dot] (MPQ Table 3).")
      .def(py::init<int, double, double>(), py::arg("nu") = 1, py::arg("w_rate") = 0.1,
           py::arg("scale") = 1.0);
}

}  // namespace
DMPC_REGISTER_BINDINGS(mlp_ensemble_cost, 60, bind_mlp_ensemble_cost);
}  // namespace dmpc::bindings
