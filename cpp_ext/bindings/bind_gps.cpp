/// @file bind_gps.cpp
/// @brief Bindings of the guided-policy-search core (gps/*.hpp): linear-Gaussian controllers and
///        dynamics, the GMM prior and local linear-Gaussian fits, and the KL-constrained LQR.
///        Per-time-step matrices are lists of 2-D arrays (a 3-D numpy array is accepted as input).
///        The numerical work runs with the GIL released.
#include <pybind11/eigen.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "dmpc/gps/kl_lqr.hpp"
#include "dmpc/gps/lg_fit.hpp"
#include "registry.hpp"

namespace py = pybind11;

namespace dmpc::bindings {
namespace {

using namespace dmpc::gps;

void bind_gps(py::module_& m) {
  py::class_<LinearGaussianDynamics>(
      m, "LinearGaussianDynamics",
      "Time-varying linear-Gaussian dynamics x_t+1 ~ N(F_t [x_t; u_t] + f_t, W_t), t = 0..T-2, "
      "x_0 ~ N(x0_mean, x0_cov) (MDGPS Sec. 3).")
      .def(py::init([](std::vector<Mat> F, Mat f, std::vector<Mat> W, Vec x0_mean, Mat x0_cov) {
             LinearGaussianDynamics d{std::move(F), std::move(f), std::move(W), std::move(x0_mean), std::move(x0_cov)};
             d.validate(d.horizon(), d.nx(), d.nu());
             return d;
           }),
           py::arg("F"), py::arg("f"), py::arg("W"), py::arg("x0_mean"), py::arg("x0_cov"))
      .def_readonly("F", &LinearGaussianDynamics::F, "T-1 of (nx, nx + nu)")
      .def_readonly("f", &LinearGaussianDynamics::f, "(T-1, nx)")
      .def_readonly("W", &LinearGaussianDynamics::W, "T-1 of (nx, nx) noise covariances")
      .def_readonly("x0_mean", &LinearGaussianDynamics::x0_mean)
      .def_readonly("x0_cov", &LinearGaussianDynamics::x0_cov)
      .def_property_readonly("horizon", &LinearGaussianDynamics::horizon)
      .def_property_readonly("nx", &LinearGaussianDynamics::nx)
      .def_property_readonly("nu", &LinearGaussianDynamics::nu)
      .def(py::pickle(
          [](const LinearGaussianDynamics& d) { return py::make_tuple(d.F, d.f, d.W, d.x0_mean, d.x0_cov); },
          [](py::tuple s) {
            LinearGaussianDynamics d{s[0].cast<std::vector<Mat>>(), s[1].cast<Mat>(), s[2].cast<std::vector<Mat>>(),
                                     s[3].cast<Vec>(), s[4].cast<Mat>()};
            d.validate(d.horizon(), d.nx(), d.nu());
            return d;
          }));

  py::class_<QuadraticCost>(m, "LgQuadraticCost",
                            "Stage costs l_t(z) = cc_t + cv_t^T z + 1/2 z^T Cm_t z, z = [x_t; u_t], t = 0..T-1.")
      .def(py::init([](std::vector<Mat> Cm, Mat cv, Vec cc) {
             QuadraticCost c{std::move(Cm), std::move(cv), std::move(cc)};
             c.validate(c.horizon(), static_cast<int>(c.cv.cols()));
             return c;
           }),
           py::arg("Cm"), py::arg("cv"), py::arg("cc"))
      .def_readonly("Cm", &QuadraticCost::Cm)
      .def_readonly("cv", &QuadraticCost::cv)
      .def_readonly("cc", &QuadraticCost::cc)
      .def_property_readonly("horizon", &QuadraticCost::horizon);

  py::class_<LinearGaussianPolicy>(m, "LinearGaussianPolicy",
                                   "Time-varying linear-Gaussian controller u_t ~ N(K_t x_t + k_t, cov_t).")
      .def(py::init<std::vector<Mat>, Mat, std::vector<Mat>>(), py::arg("K"), py::arg("k"), py::arg("cov"))
      .def_property_readonly("K", &LinearGaussianPolicy::K)
      .def_property_readonly("k", &LinearGaussianPolicy::k)
      .def_property_readonly("cov", &LinearGaussianPolicy::cov)
      .def_property_readonly("chol", &LinearGaussianPolicy::chol, "lower Cholesky factors of cov")
      .def_property_readonly("inv_cov", &LinearGaussianPolicy::inv_cov)
      .def_property_readonly("horizon", &LinearGaussianPolicy::horizon)
      .def_property_readonly("nx", &LinearGaussianPolicy::nx)
      .def_property_readonly("nu", &LinearGaussianPolicy::nu)
      .def(
          "forward",
          [](const LinearGaussianPolicy& p, const LinearGaussianDynamics& d) {
            GaussianMarginals g;
            {
              py::gil_scoped_release nogil;
              g = p.forward(d);
            }
            return py::make_tuple(g.mean, g.cov);
          },
          py::arg("dynamics"),
          "State-action marginals (mean (T, nx+nu), list of T covariances) propagated forward (App. B.3).")
      .def(
          "expected_cost_per_step",
          [](const LinearGaussianPolicy& p, const LinearGaussianDynamics& d, const QuadraticCost& c) {
            py::gil_scoped_release nogil;
            return p.expected_cost_per_step(p.forward(d), c);
          },
          py::arg("dynamics"), py::arg("cost"))
      .def("expected_cost", &LinearGaussianPolicy::expected_cost, py::arg("dynamics"), py::arg("cost"),
           py::call_guard<py::gil_scoped_release>(), "sum_t E_p(x_t,u_t)[l_t] under the marginals")
      .def(
          "kl_per_step",
          [](const LinearGaussianPolicy& p, const LinearGaussianPolicy& q, const LinearGaussianDynamics& d) {
            py::gil_scoped_release nogil;
            return p.kl_per_step(q, p.forward(d));
          },
          py::arg("other"), py::arg("dynamics"))
      .def("kl", &LinearGaussianPolicy::kl, py::arg("other"), py::arg("dynamics"),
           py::call_guard<py::gil_scoped_release>(),
           "KL(p(tau) || q(tau)) = sum_t E_p(x_t)[KL(p(u_t|x_t) || q(u_t|x_t))] (Eq. 3, App. A)")
      .def("mean_action", &LinearGaussianPolicy::mean_action, py::arg("t"), py::arg("x"))
      .def("to_policy", &LinearGaussianPolicy::to_policy, py::arg("t0"), py::arg("dt"),
           "the mean controller as an affine Policy (zero-order hold) for the tracking loop")
      .def(py::pickle(
          [](const LinearGaussianPolicy& p) { return py::make_tuple(p.K(), p.k(), p.cov()); },
          [](py::tuple s) {
            return LinearGaussianPolicy(s[0].cast<std::vector<Mat>>(), s[1].cast<Mat>(), s[2].cast<std::vector<Mat>>());
          }));

  py::class_<NiwPrior>(m, "NiwPrior", "Normal-inverse-Wishart hyperparameters (mu0, Phi, m, n0).")
      .def(py::init([](Vec mu0, Mat Phi, double mm, double n0) { return NiwPrior{mu0, Phi, mm, n0}; }),
           py::arg("mu0"), py::arg("Phi"), py::arg("m"), py::arg("n0"))
      .def_readonly("mu0", &NiwPrior::mu0)
      .def_readonly("Phi", &NiwPrior::Phi)
      .def_readonly("m", &NiwPrior::m)
      .def_readonly("n0", &NiwPrior::n0);

  py::class_<Gmm>(m, "Gmm", "Gaussian mixture model fitted by EM (warm-started), the prior of the local fits.")
      .def(py::init<bool, std::uint64_t>(), py::arg("warm_start") = true, py::arg("seed") = 0)
      .def("update", &Gmm::update, py::arg("data"), py::arg("K"), py::arg("max_iterations") = 100,
           py::call_guard<py::gil_scoped_release>())
      .def("estep", &Gmm::estep, py::arg("data"), py::call_guard<py::gil_scoped_release>())
      .def("log_likelihood", &Gmm::log_likelihood, py::arg("data"), py::call_guard<py::gil_scoped_release>())
      .def("inference", &Gmm::inference, py::arg("pts"), py::arg("strength") = 1.0)
      .def_property_readonly("means", &Gmm::means)
      .def_property_readonly("covariances", &Gmm::covariances)
      .def_property_readonly("weights", &Gmm::weights)
      .def_property_readonly("num_clusters", &Gmm::num_clusters)
      .def_property_readonly("log_likelihood_history", &Gmm::log_likelihood_history);

  py::class_<GmmPriorSettings>(m, "GmmPriorSettings")
      .def(py::init([](int max_clusters, int min_samples_per_cluster, int max_samples, double strength, int max_iterations) {
             GmmPriorSettings s{max_clusters, min_samples_per_cluster, max_samples, strength, max_iterations};
             s.validate();
             return s;
           }),
           py::arg("max_clusters") = 20, py::arg("min_samples_per_cluster") = 20, py::arg("max_samples") = 20,
           py::arg("strength") = 1.0, py::arg("max_iterations") = 100)
      .def_readonly("max_clusters", &GmmPriorSettings::max_clusters)
      .def_readonly("min_samples_per_cluster", &GmmPriorSettings::min_samples_per_cluster)
      .def_readonly("max_samples", &GmmPriorSettings::max_samples)
      .def_readonly("strength", &GmmPriorSettings::strength)
      .def_readonly("max_iterations", &GmmPriorSettings::max_iterations);

  py::class_<GmmPrior>(m, "GmmPrior",
                       "GMM prior over the points of the last max_samples trajectories (one (rows, D) matrix each).")
      .def(py::init<GmmPriorSettings, std::uint64_t>(), py::arg("settings") = GmmPriorSettings(), py::arg("seed") = 0)
      .def("update", &GmmPrior::update, py::arg("trajectories"), py::call_guard<py::gil_scoped_release>())
      .def("eval", &GmmPrior::eval, py::arg("pts"), py::call_guard<py::gil_scoped_release>())
      .def_property_readonly("fitted", &GmmPrior::fitted)
      .def_property_readonly("gmm", &GmmPrior::gmm, py::return_value_policy::reference_internal)
      .def_property_readonly("num_trajectories", &GmmPrior::num_trajectories)
      .def_property_readonly("settings", &GmmPrior::settings);

  m.def(
      "gauss_fit_joint_prior",
      [](const Mat& pts, std::optional<NiwPrior> prior, int dx, std::optional<Mat> sig_reg) {
        const Mat reg = sig_reg ? *sig_reg : Mat::Zero(pts.cols(), pts.cols());
        py::gil_scoped_release nogil;
        ConditionalGaussian c = gauss_fit_joint_prior(pts, prior, dx, reg);
        return std::make_tuple(c.F, c.f, c.cov);
      },
      py::arg("pts"), py::arg("prior"), py::arg("dx"), py::arg("sig_reg") = py::none(),
      "NIW MAP fit of the rows [inputs (dx), outputs] conditioned on the inputs: (F, f, cov).");
  m.def("dynamics_points", &dynamics_points, py::arg("X"), py::arg("U"), "rows [x_t, u_t, x_t+1], t < T-1");
  m.def(
      "fit_dynamics",
      [](const std::vector<Mat>& X, const std::vector<Mat>& U, const GmmPrior* prior, double reg, double x0v) {
        py::gil_scoped_release nogil;
        return fit_dynamics(X, U, prior, reg, x0v);
      },
      py::arg("X"), py::arg("U"), py::arg("prior") = nullptr, py::arg("regularization") = 1e-6,
      py::arg("x0_var_min") = 1e-6, "per-step NIW MAP dynamics fit of N trajectories (X[i]: (T, nx), U[i]: (T, nu))");
  m.def(
      "fit_policy_linearization",
      [](const std::vector<Mat>& X, const std::vector<Mat>& MU, const std::vector<Mat>& pol_cov, const GmmPrior* prior) {
        py::gil_scoped_release nogil;
        return fit_policy_linearization(X, MU, pol_cov, prior);
      },
      py::arg("X"), py::arg("MU"), py::arg("pol_cov"), py::arg("prior") = nullptr,
      "linear-Gaussian fit pi_bar(u_t|x_t) of a global policy from its mean actions MU[i] at states X[i]");

  py::class_<KlLqrSettings>(m, "KlLqrSettings", "Dual search settings of the KL-constrained LQR.")
      .def(py::init([](double eta_min, double eta_max, int max_tries, double tolerance, double delta0) {
             KlLqrSettings s{eta_min, eta_max, max_tries, tolerance, delta0};
             s.validate();
             return s;
           }),
           py::arg("eta_min") = 1e-8, py::arg("eta_max") = 1e16, py::arg("max_tries") = 50, py::arg("tolerance") = 0.1,
           py::arg("delta0") = 1e-4)
      .def_readonly("eta_min", &KlLqrSettings::eta_min)
      .def_readonly("eta_max", &KlLqrSettings::eta_max)
      .def_readonly("max_tries", &KlLqrSettings::max_tries)
      .def_readonly("tolerance", &KlLqrSettings::tolerance)
      .def_readonly("delta0", &KlLqrSettings::delta0);

  py::class_<KlLqrResult>(m, "KlLqrResult")
      .def_property_readonly("policy", [](const KlLqrResult& r) { return *r.policy; })
      .def_readonly("eta", &KlLqrResult::eta)
      .def_readonly("kl", &KlLqrResult::kl)
      .def_readonly("epsilon", &KlLqrResult::epsilon)
      .def_readonly("tries", &KlLqrResult::tries)
      .def_readonly("converged", &KlLqrResult::converged)
      .def_readonly("eta_history", &KlLqrResult::eta_history)
      .def_readonly("kl_history", &KlLqrResult::kl_history)
      .def_readonly("message", &KlLqrResult::message);

  m.def(
      "kl_lqr_backward",
      [](const LinearGaussianDynamics& d, const QuadraticCost& c, const LinearGaussianPolicy* ref, double eta,
         const KlLqrSettings& s) {
        py::gil_scoped_release nogil;
        LinearGaussianPolicy p = kl_lqr_backward(d, c, ref, eta, s);
        return std::make_tuple(p, eta);
      },
      py::arg("dynamics"), py::arg("cost"), py::arg("reference"), py::arg("eta"),
      py::arg("settings") = KlLqrSettings(),
      "max-entropy LQR with surrogate cost (C + eta P) / eta: (policy, eta actually used)");
  m.def("kl_lqr_solve", &kl_lqr_solve, py::arg("dynamics"), py::arg("cost"), py::arg("reference"), py::arg("epsilon"),
        py::arg("eta0") = 1.0, py::arg("settings") = KlLqrSettings(), py::call_guard<py::gil_scoped_release>(),
        "the C-step: KL-constrained LQR with the dual search on eta");
}

}  // namespace

DMPC_REGISTER_BINDINGS(gps, 65, bind_gps);

}  // namespace dmpc::bindings
